#!/bin/bash
# bench.sh - make bench: figures for this machine, not pass/fail.
#  1. submission latency with -odq (median of 100), full fsync discipline
#     and through -bs (one message a session, and 100 a session)
#  2. -odi latency for one 4 KB message to a loopback MX (dnsmasq + smtp-sink),
#     next to Postfix's smtp-source -m 1 -l 4096 on the same sink
. t/lib.sh

N=${BENCH_N:-100}
MXADDR=127.0.0.250
start_dns --mx-host=bench.test,mx.bench.test,10 \
    --host-record=mx.bench.test,$MXADDR || exit 1
# A sink without dumps: it acknowledges and forgets.
LD_LIBRARY_PATH=$POSTFIX_DIR/usr/lib/postfix \
    "$POSTFIX_DIR/usr/sbin/smtp-sink" -u nobody "$MXADDR:$SMTP_PORT" 100 \
    >"$T/sink.log" 2>&1 &
_track sink $!
wait_listen $MXADDR "$SMTP_PORT" || exit 1
write_conf

# mkmsg TO - a message of exactly 4096 octets (LF line ends)
mkmsg() {
	{
		printf 'From: bench@bench.test\nTo: %s\nSubject: bench\n\n' "$1"
		i=0
		while [ $i -lt 70 ]; do
			printf 'line %02d of the benchmark message, padded to about seventy octets.\n' $i
			i=$((i + 1))
		done
	} | head -c 4095
	printf '\n'
}
mkmsg rcpt@bench.test >"$T/msg"

echo "mxsend bench on $(nproc) cores, $(uname -r), $(date -u +%Y-%m-%d)"
echo "message: $(wc -c <"$T/msg") octets; queue: $T/q ($(df -T "$T" | awk 'NR==2 {print $2}'))"
base=$(./t/benchrun "baseline: /bin/true" "$N" - /bin/true); printf '%s\n' "$base" | sed '$d'
sub=$(./t/benchrun "submit -odq" "$N" "$T/msg" \
    "$SENDMAIL" -C "$T/conf" -odq -t) || exit 1
printf '%s\n' "$sub" | sed '$d'
rm -rf "$T/q"
# -bs: one message a session, and 100 in one session (per message)
mkbs() {	# COUNT - an SMTP session on stdin queueing COUNT copies
	local i=0
	printf 'EHLO bench.test\r\n'
	while [ $i -lt "$1" ]; do
		printf 'MAIL FROM:<bench@bench.test>\r\nRCPT TO:<rcpt@bench.test>\r\nDATA\r\n'
		sed 's/$/\r/' "$T/msg"
		printf '.\r\n'
		i=$((i + 1))
	done
	printf 'QUIT\r\n'
}
mkbs 1 >"$T/bs1"
mkbs 100 >"$T/bs100"
bs1=$(./t/benchrun "submit -bs -odq, 1 message" "$N" "$T/bs1" \
    "$SENDMAIL" -C "$T/conf" -odq -bs) || exit 1
printf '%s\n' "$bs1" | sed '$d'
bs100=$(./t/benchrun "submit -bs -odq, 100 a session" 10 "$T/bs100" \
    "$SENDMAIL" -C "$T/conf" -odq -bs) || exit 1
printf '%s\n' "$bs100" | sed '$d'
awk -v a="$(printf '%s\n' "$bs1" | tail -n 1)" \
    -v b="$(printf '%s\n' "$bs100" | tail -n 1)" \
    -v t="$(printf '%s\n' "$sub" | tail -n 1)" 'BEGIN {
	printf "-bs: %.3f ms a message in a 100-message session; one-message session / -t: %.2f\n",
	    b / 100 / 1000, a / t }'
left=$(ls "$T/q" 2>/dev/null | grep -c '\.msg$')
echo "messages queued by the -bs runs: $left (want $((N + 1000)))"
rm -rf "$T/q"
echo "page faults of one submission: $(/usr/bin/time -f %R "$SENDMAIL" -C "$T/conf" -odq -t <"$T/msg" 2>&1 >/dev/null) (/bin/true: $(/usr/bin/time -f %R /bin/true 2>&1 >/dev/null))"
rm -rf "$T/q"

odi=$(./t/benchrun "submit+deliver -odi" "$N" "$T/msg" \
    "$SENDMAIL" -C "$T/conf" -odi -t) || exit 1
printf '%s\n' "$odi" | sed '$d'
src=$(./t/benchrun "smtp-source -m 1 -l 4096" "$N" - /usr/bin/env \
    LD_LIBRARY_PATH="$POSTFIX_DIR/usr/lib/postfix" \
    "$POSTFIX_DIR/usr/sbin/smtp-source" -m 1 -l 4096 -f bench@bench.test \
    -t rcpt@bench.test "$MXADDR:$SMTP_PORT") || exit 1
printf '%s\n' "$src" | sed '$d'
a=$(printf '%s\n' "$odi" | tail -n 1)
b=$(printf '%s\n' "$src" | tail -n 1)
awk -v a="$a" -v b="$b" 'BEGIN { printf "ratio -odi / smtp-source: %.2f (goal: at most 2)\n", a / b }'
left=$(ls "$T/q" 2>/dev/null | grep -c '\.msg$')
echo "messages left in the queue after the -odi runs: $left (want 0)"

# --- issue 3: flush throughput and memory ------------------------------------
# 2,000 queued 4 KB messages to 20 domains, one smtp-sink each; time from
# starting -q until it returns (every message acknowledged: the queue must
# be empty).
NMSG=${BENCH_FLUSH:-2000}
args=
for d in $(seq 1 20); do
	args="$args --mx-host=d$d.flush.test,mx.d$d.flush.test,10 --host-record=mx.d$d.flush.test,127.0.1.$d"
done
stop_server dns
# shellcheck disable=SC2086
start_dns $args || exit 1
for d in $(seq 1 20); do
	LD_LIBRARY_PATH=$POSTFIX_DIR/usr/lib/postfix \
	    "$POSTFIX_DIR/usr/sbin/smtp-sink" -u nobody "127.0.1.$d:$SMTP_PORT" 100 \
	    >>"$T/sink.log" 2>&1 &
	_track "fsink$d" $!
done
for d in $(seq 1 20); do
	wait_listen "127.0.1.$d" "$SMTP_PORT" || exit 1
done
CONF=$T/conf write_conf "max_parallel 8"
rm -rf "$T/q"
echo "queueing $NMSG messages to 20 domains..."
for d in $(seq 1 20); do mkmsg "r@d$d.flush.test" >"$T/m$d"; done
seq 1 "$NMSG" | xargs -P 2 -I{} sh -c \
    'd=$(( {} % 20 + 1 )); exec "$0" -C "$1" -odq -t <"$2/m$d"' \
    "$SENDMAIL" "$T/conf" "$T" || exit 1
queued=$(ls "$T/q" | grep -c '\.msg$')
echo "queued: $queued"
fa=$(date +%s.%N)
${FLUSHWRAP:-} "$SENDMAIL" -C "$T/conf" -q -v 2>"$T/flush.err"
fb=$(date +%s.%N)
tail -n 1 "$T/flush.err"
left=$(ls "$T/q" | grep -c '\.msg$')
awk -v n="$queued" -v a="$fa" -v b="$fb" -v l="$left" 'BEGIN {
	printf "flush: %d messages in %.2f s = %.0f messages/s (goal: 5000); left in queue: %d\n", n - l, b - a, (n - l) / (b - a), l }'

# The reference for this machine: smtp-source pushing as many 4 KB
# messages over 8 kept connections into one of the same sinks.
t0=$(date +%s.%N)
LD_LIBRARY_PATH=$POSTFIX_DIR/usr/lib/postfix "$POSTFIX_DIR/usr/sbin/smtp-source" \
    -s 8 -m "$NMSG" -l 4096 -f bench@bench.test -t r@d1.flush.test \
    "127.0.1.1:$SMTP_PORT" || exit 1
t1=$(date +%s.%N)
awk -v n="$NMSG" -v a="$t0" -v b="$t1" -v q="$queued" -v l="$left" \
    -v fa="$fa" -v fb="$fb" 'BEGIN {
	printf "smtp-source -s 8 -m %d -l 4096: %.2f s = %.0f messages/s; mxsend flush / smtp-source: %.2f\n",
	    n, b - a, n / (b - a), ((q - l) / (fb - fa)) / (n / (b - a)) }'

# Peak RSS of a -q run sending one 50 MB message (over the default
# max_message_size of 10 MB: the limit is lifted for it).
CONF=$T/conf write_conf "max_parallel 8" "max_message_size 0"
{
	printf 'From: bench@bench.test\nTo: big@d1.flush.test\nSubject: big\n\n'
	head -c 37500000 /dev/zero | base64 -w 76
} >"$T/big"
sub=$(./t/maxrss "$SENDMAIL" -C "$T/conf" -odq -t <"$T/big" 2>&1 >/dev/null) || exit 1
run=$(./t/maxrss "$SENDMAIL" -C "$T/conf" -q 2>&1 >/dev/null) || exit 1
awk -v a="$sub" -v b="$run" 'BEGIN {
	printf "peak RSS submitting a 50 MB message: %.1f MB; sending it (-q): %.1f MB (goal: under 4 MB)\n", a / 1024, b / 1024 }'
left=$(ls "$T/q" | grep -c '\.msg$')
echo "big message left in queue: $left (want 0)"
for f in "$T/big"; do ls -l "$f" | awk '{ printf "(message size %d octets)\n", $5 }'; done
