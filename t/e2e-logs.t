#!/bin/bash
# e2e-logs.t - the syslog lines of a delivery run are the ones log tools
# read for Postfix: each sendmail runs in a private mount namespace whose
# /dev/log is a datagram socket this test listens on; the lines it gets
# (facility mail, program names mxsend/NAME) are put in the classic syslog
# file form and Debian's pflogsumm --syslog-name=mxsend must count what
# the test sent: messages received, recipients delivered (a local mailbox
# and the bounce among them), deferred and bounced.  Some lines are
# compared whole.  Needs root and pflogsumm.  Addresses 127.0.0.238-239.
. t/lib.sh
need_tools

[ "$(id -u)" = 0 ] || skip_all "needs root for a private mount namespace"
command -v pflogsumm >/dev/null || { echo "Bail out! no pflogsumm: run make deps"; exit 255; }

A=127.0.0.238		# ok.test: 450 soft@, 550 bad@, the rest accepted
D=127.0.0.239		# down.test: nothing listens
start_dns --mx-host=ok.test,mx.ok.test,10 --host-record=mx.ok.test,$A \
    --mx-host=down.test,mx.down.test,10 --host-record=mx.down.test,$D || exit 1
start_smtpd $A --rcpt 'soft@ok.test=450 4.2.0 busy' \
    --rcpt 'bad@ok.test=550 5.1.1 no such user' || exit 1
mkdir -p "$T/mail"
chmod 1777 "$T/mail"
write_conf "local_delivery mbox $T/mail"

# The listener: one datagram a line, as syslog() sent it ("<PRI>DATE TAG:
# TEXT", RFC 3164 without the host).
"$PY" - "$T/log.sock" "$T/syslog.raw" <<'EOF' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)
with open(sys.argv[2], "ab", buffering=0) as out:
    open(sys.argv[1] + ".ready", "w").close()
    while True:
        out.write(s.recv(65536).rstrip(b"\0\n") + b"\n")
EOF
_track syslog $!
wait_for '[ -e "$T/log.sock.ready" ]' || { echo "Bail out! no syslog listener"; exit 255; }

# logged ARGS... - mx ARGS in a mount namespace whose /dev is a tmpfs with
# a link to each real entry and /dev/log the listener's socket (hosts and
# containers without a syslog daemon have no /dev/log to mount over)
mkdir -p "$T/realdev"
logged() {
	timeout -k 5 60 unshare --mount --propagation private sh -c '
		set -e
		mount --bind /dev "$0/realdev"
		mount -t tmpfs -o mode=0755,size=1m mxsend-dev /dev
		for f in "$0"/realdev/*; do
			[ "${f##*/}" = log ] || ln -s "$f" /dev/
		done
		ln -s "$0/log.sock" /dev/log
		exec "$@"' "$T" "$SENDMAIL" -C "$CONF" "$@"
}

# syslog_file - the lines received so far as a syslog daemon writes them
# ("Dec  3 20:00:00 HOST TAG[PID]: TEXT"); a line whose facility is not
# mail (2) is kept with "not-mail" for a host, so no tool counts it
syslog_file() {
	sed -E 's/^<([0-9]+)>(.{15}) (.*)$/\1 \2 \3/' "$T/syslog.raw" |
	while read -r pri rest; do
		d=${rest:0:15}
		host=logtest
		[ $((pri >> 3)) = 2 ] || host=not-mail
		printf '%s %s %s\n' "$d" "$host" "${rest:16}"
	done
}

# --- a run: sent, deferred, bounced, a local mailbox, the bounce ----------
printf 'Subject: two\n\nx\n' | logged -odi -v -f s@ok.test a@ok.test b@ok.test >/dev/null 2>"$T/1.err"
is "$?" 0 "two recipients at ok.test: exit 0"
ID1=$(sed -n 's/^queued as //p' "$T/1.err")
printf 'Subject: mixed\n\nx\n' |
    logged -odi -v -f s@ok.test soft@ok.test bad@ok.test c@ok.test >/dev/null 2>"$T/2.err"
ID2=$(sed -n 's/^queued as //p' "$T/2.err")
printf 'Subject: local\n\nx\n' | logged -odi -v -f s@ok.test nobody@localhost >/dev/null 2>"$T/3.err"
is "$?" 0 "a local user: exit 0"
ID3=$(sed -n 's/^queued as //p' "$T/3.err")
printf 'Subject: down\n\nx\n' | logged -odi -v -f s@ok.test x@down.test >/dev/null 2>"$T/4.err"
ID4=$(sed -n 's/^queued as //p' "$T/4.err")
ok '[ -n "$ID1" ] && [ -n "$ID2" ] && [ -n "$ID3" ] && [ -n "$ID4" ]' "four queue IDs"
is "$(grep -c '^From ' "$T/mail/nobody" 2>/dev/null)" 1 "the local one is in nobody's mbox"
is "$(rx_rcpt_copies $A s@ok.test)" 1 "the sender got one bounce"
is "$(q_count)" 2 "the deferred ones wait in the queue"
wait_for '[ "$(wc -l <"$T/syslog.raw")" -ge 23 ]' 2

syslog_file >"$T/maillog"
is "$(grep -c ' not-mail ' "$T/maillog")" 0 "every line has facility mail" ||
    diag_file "$T/maillog"
like "$(awk '{ sub(/\[.*/, "", $5); print $5 }' "$T/maillog" | sort -u | tr '\n' ' ')" \
    '^(mxsend/(bounce|local|pickup|qmgr|smtp) )+$' \
    "program names are mxsend/NAME" || diag_file "$T/maillog"

# --- pflogsumm's count -----------------------------------------------------
pflogsumm --syslog-name=mxsend "$T/maillog" >"$T/summary" 2>"$T/summary.err"
is "$?" 0 "pflogsumm reads the log" || diag_file "$T/summary.err"
# total WORD - the number before WORD in the Grand Totals
total() { awk -v w="$1" '$2 == w { print $1; exit }' "$T/summary"; }
is "$(total received):$(total delivered):$(total deferred):$(total bounced)" \
    "4:5:2:1" "pflogsumm: 4 received; 5 delivered (a, b, c, the local one, the bounce); 2 deferred; 1 bounced" ||
    diag_file "$T/summary" 40
# section TITLE - a section of the summary, $SMTP_PORT as PORT
section() {
	sed -n "/^$1/,/^\$/p" "$T/summary" | sed "s/:$SMTP_PORT\\([ :]\\)/:PORT\\1/g"
}
is "$(section 'message deferral detail')" "message deferral detail
-----------------------
  smtp (total: 2)
         1   4.2.0 busy (in reply to RCPT TO:<soft@ok.test>
         1   mx.down.test[$D]:PORT: connect: Connection refused" "pflogsumm's deferral detail: the server's words" || diag_file "$T/summary" 200
is "$(section 'message bounce detail')" "message bounce detail (by relay)
--------------------------------
  mx.ok.test[$A]:PORT (total: 1)
         1   5.1.1 no such user (in reply to RCPT TO:<bad@ok.test>)" "pflogsumm's bounce detail: the relay and the server's words"
is "$(section 'Messages with no size data')" "" \
    "pflogsumm knows the size of every message, the bounce's too"

# --- some lines whole (PIDs, delays and the bounce's ID made constant) ----
# lines ID - ID's lines, PIDs as [P], delays as delay=S, $SMTP_PORT as PORT
lines() {
	grep -F " $1: " "$T/maillog" | sed -E 's/^.{15} [^ ]+ //' |
	    sed -E 's/\[[0-9]+\]: /[P]: /; s/delay=[0-9]+/delay=S/' |
	    sed "s/:$SMTP_PORT/:PORT/g"
}
R="mx.ok.test[$A]:PORT"
is "$(lines "$ID2" | sed -E 's/notification: [0-9A-F]+$/notification: BID/')" \
"mxsend/pickup[P]: $ID2: uid=0 from=<s@ok.test>
mxsend/qmgr[P]: $ID2: from=<s@ok.test>, size=$(q_env "$ID2" | awk '$1 == "size" { print $2 }'), nrcpt=3 (queue active)
mxsend/smtp[P]: $ID2: to=<soft@ok.test>, relay=$R, delay=S, dsn=4.2.0, status=deferred ($R said: 450 4.2.0 busy (in reply to RCPT TO:<soft@ok.test>))
mxsend/smtp[P]: $ID2: to=<bad@ok.test>, relay=$R, delay=S, dsn=5.1.1, status=bounced ($R said: 550 5.1.1 no such user (in reply to RCPT TO:<bad@ok.test>))
mxsend/smtp[P]: $ID2: to=<c@ok.test>, relay=$R, delay=S, dsn=2.0.0, status=sent ($R said: 250 2.0.0 OK saved 0002 (in reply to end of data))
mxsend/bounce[P]: $ID2: sender non-delivery notification: BID" \
    "the mixed message: intake, one line a recipient, the bounce" ||
    diag_file "$T/maillog"
is "$(lines "$ID3" | grep -v -e pickup -e 'queue active')" \
"mxsend/local[P]: $ID3: to=<nobody@localhost>, relay=local, delay=S, dsn=2.0.0, status=sent (delivered to mailbox $T/mail/nobody)
mxsend/qmgr[P]: $ID3: removed" "the local one: relay=local, then removed"
BID=$(lines "$ID2" | sed -n 's/.*non-delivery notification: //p')
is "$(lines "$BID" | sed "s/ 000[0-9] / NNNN /")" \
"mxsend/qmgr[P]: $BID: from=<>, size=$(rx_data "$(rx_last $A)" | wc -c), nrcpt=1 (queue active)
mxsend/smtp[P]: $BID: to=<s@ok.test>, relay=$R, delay=S, dsn=2.0.0, status=sent ($R said: 250 2.0.0 OK saved NNNN (in reply to end of data))
mxsend/qmgr[P]: $BID: removed" \
    "the bounce: queued (no pickup line: not received), sent to the sender, removed"
is "$(lines "$ID4" | grep -v -e pickup -e 'queue active')" \
    "mxsend/smtp[P]: $ID4: to=<x@down.test>, relay=none, delay=S, dsn=4.4.1, status=deferred (mx.down.test[$D]:PORT: connect: Connection refused)" \
    "no connection: relay=none, the address in the words"
is "$(grep -c -e "$ID2: removed" -e "$ID4: removed" "$T/maillog")" 0 "deferred messages are not removed"
like "$(cat "$T/2.err")" "sendmail: $ID2: to=<bad@ok\\.test>, relay=mx\\.ok\\.test\\[127\\.0\\.0\\.238\\]:$SMTP_PORT, delay=[0-9]+, dsn=5\\.1\\.1, status=bounced" \
    "-v shows the same lines on stderr"

done_testing
