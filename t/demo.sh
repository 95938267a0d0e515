#!/bin/sh
# t/demo.sh - "make demo": one message end to end through a local test MX.
#
# dnsmasq serves "example.test MX 10 mx.example.test", mx.example.test is
# 127.0.0.2, where Postfix's smtp-sink listens; ./sendmail -odi -v -t sends
# a sample message there.  Shows the SMTP dialogue, then the message as the
# sink received it.  Exits 0 only when the message arrived.
# Needs the tools of "make deps" (dnsmasq, Postfix's smtp-sink unpacked).
set -u

TOP=$(pwd)
SENDMAIL=${SENDMAIL:-$TOP/sendmail}
POSTFIX_DIR=${MXSEND_POSTFIX_DIR:-/var/cache/mxsend-test/postfix}
SINK=$POSTFIX_DIR/usr/sbin/smtp-sink
MXADDR=127.0.0.2

if [ ! -x /usr/sbin/dnsmasq ] || [ ! -x "$SINK" ]; then
	echo "demo: dnsmasq or Postfix's smtp-sink is missing; install them with:" >&2
	echo "    make deps" >&2
	exit 1
fi
[ -x "$SENDMAIL" ] || { echo "demo: no ./sendmail; run: make" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mxsend-demo.XXXXXX")
chmod 755 "$tmp"
dns_pid= sink_pid=
cleanup() {
	[ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null
	[ -n "$dns_pid" ] && kill "$dns_pid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

busy() { [ -n "$(ss -Hltun "( sport = :$1 )" 2>/dev/null)" ]; }
pick_port() {
	while :; do
		p=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
		p=$((p % 30000 + 20000))
		busy "$p" || { echo "$p"; return; }
	done
}
DNSPORT=$(pick_port)
SMTP_PORT=$(pick_port)

echo "== dnsmasq on 127.0.0.1:$DNSPORT: example.test MX 10 mx.example.test ($MXADDR)"
/usr/sbin/dnsmasq --keep-in-foreground --no-resolv --no-hosts \
    --conf-file=/dev/null --pid-file= --port="$DNSPORT" \
    --listen-address=127.0.0.1 --bind-interfaces --user=root --local=/test/ \
    --mx-host=example.test,mx.example.test,10 \
    --host-record=mx.example.test,$MXADDR \
    --log-facility="$tmp/dns.log" --log-queries >"$tmp/dns.err" 2>&1 &
dns_pid=$!

echo "== smtp-sink on $MXADDR:$SMTP_PORT, dumping messages to $tmp/sink/"
mkdir "$tmp/sink"
chmod 777 "$tmp/sink"
user=
[ "$(id -u)" = 0 ] && user="-u nobody"
# shellcheck disable=SC2086
LD_LIBRARY_PATH=$POSTFIX_DIR/usr/lib/postfix "$SINK" $user -h mx.example.test \
    -d "$tmp/sink/%Y%m%d%H%M%S." "$MXADDR:$SMTP_PORT" 10 >"$tmp/sink.log" 2>&1 &
sink_pid=$!

i=0
until ss -Hltn "( sport = :$SMTP_PORT )" | grep -q "$MXADDR:$SMTP_PORT" &&
    ss -Hlun "( sport = :$DNSPORT )" | grep -q .; do
	i=$((i + 1))
	if [ $i -gt 100 ]; then
		echo "demo: servers did not start" >&2
		cat "$tmp/dns.err" "$tmp/sink.log" >&2
		exit 1
	fi
	sleep 0.05
done

cat >"$tmp/conf" <<CONF
hostname demo.example
queue_dir $tmp/queue
dns_server 127.0.0.1:$DNSPORT
smtp_port $SMTP_PORT
tls none
local_delivery none
connect_timeout 5s
CONF

cat >"$tmp/message" <<'MSG'
From: Demo Sender <demo@demo.example>
To: Someone <someone@example.test>
Bcc: secret@example.test
Subject: mxsend demo

Hello from mxsend.  This message went through a real DNS server
(dnsmasq) and a real SMTP receiver (Postfix's smtp-sink).
.a line starting with a dot
MSG

echo "== the message"
sed 's/^/   | /' "$tmp/message"
echo "== ./sendmail -C $tmp/conf -odi -v -t < message"
"$SENDMAIL" -C "$tmp/conf" -odi -v -t <"$tmp/message" 2>&1
rc=$?
echo "== sendmail exited $rc"

i=0
while [ -z "$(ls "$tmp/sink")" ] && [ $i -lt 40 ]; do
	sleep 0.05
	i=$((i + 1))
done
sleep 0.1
f=$(ls "$tmp/sink" | head -n 1)
if [ $rc -ne 0 ] || [ -z "$f" ]; then
	echo "== demo FAILED: the message did not arrive"
	echo "-- dnsmasq log:"; cat "$tmp/dns.log" 2>/dev/null
	echo "-- smtp-sink log:"; cat "$tmp/sink.log"
	exit 1
fi
echo "== what smtp-sink received ($tmp/sink/$f; the X- lines and Received: are its own)"
sed 's/^/   | /' "$tmp/sink/$f"
echo "== demo OK: the message arrived"
exit 0
