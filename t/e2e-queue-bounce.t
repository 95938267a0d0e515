#!/bin/bash
# e2e-queue-bounce.t - reports to the sender: bounces and delay notices as
# RFC 3464 multipart/report, checked with Python's email package; partial
# success (250/450/550 at one domain); queue_lifetime; warn_after sends one
# notice; no report for the null sender, none for a report (a bounce that
# fails is dropped, one that is deferred is dropped after queue_lifetime);
# identical reports at most once an hour; reports of -odi/-odb submissions
# are delivered by the submitting process.
# Addresses 127.0.0.80-87.
. t/lib.sh
need_tools

B1=127.0.0.80	# p.test: 450 soft@, 550 bad@ on the first connection
B2=127.0.0.81	# home.test: the senders' server, accepts everything
B3=127.0.0.82	# slow.test: 450 4.2.0 to every RCPT, always
B4=127.0.0.83	# reject.test: 550 5.1.1 to every RCPT, always
start_dns --mx-host=p.test,mx.p.test,10 --host-record=mx.p.test,$B1 \
    --mx-host=home.test,mx.home.test,10 --host-record=mx.home.test,$B2 \
    --mx-host=slow.test,mx.slow.test,10 --host-record=mx.slow.test,$B3 \
    --mx-host=reject.test,mx.reject.test,10 \
    --host-record=mx.reject.test,$B4 || exit 1
SMTPD_NOWAIT=1
start_smtpd $B1 --rcpt 'soft@p.test=450 4.2.0 busy' \
    --rcpt 'bad@p.test=550 5.1.1 no such user' --faults-for 1 || exit 1
start_smtpd $B2 || exit 1
start_smtpd $B3 --rcpt '*=450 4.2.0 busy' || exit 1
start_smtpd $B4 --rcpt '*=550 5.1.1 no such user' || exit 1
wait_smtpd || exit 1
SMTPD_NOWAIT=0

wait_until() {		# EPOCH - sleep until the clock shows second EPOCH
	while [ "$(date +%s)" -lt "$1" ]; do
		sleep 0.05
	done
}
# q_field ID KEY - a per-message envelope field
q_field() { q_env "$1" | awk -v k="$2" '$1 == k { print $2 }'; }
# header_block FILE - the header block of a message file, LF line ends
header_block() { sed -n '/^\r\{0,1\}$/q; p' "$1" | tr -d '\r'; }
# all_mail - "MAIL FROM/RCPT TO" lines of every transaction any server
# accepted, one transaction a line (to show that nothing new went out)
all_mail() {
	local s f
	for s in $B1 $B2 $B3 $B4; do
		for f in $(rx_files $s); do
			echo "$s $(rx_env "$f" | tr '\n' ' ')"
		done
	done
}

# dsn FILE [HEADERS-OUT] - the report in a t/smtpd.py transaction file, as
# lines of facts parsed by Python's email package; the text/rfc822-headers
# part goes to HEADERS-OUT (LF line ends).  Dates become @EPOCH.
dsn() {
	"$PY" - "$@" <<'EOF'
import email, email.utils, sys
raw = open(sys.argv[1], "rb").read()
env, _, data = raw.partition(b"\n\n")
for l in env.decode().splitlines():
    print("env", l)
m = email.message_from_bytes(data)
def val(v):
    v = " ".join(str(v).split())
    try:
        if v[:3] in ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"):
            return "@%d" % email.utils.parsedate_to_datetime(v).timestamp()
    except (TypeError, ValueError):
        pass
    return v
print("defects", len(m.defects) + sum(len(p.defects) for p in m.walk()))
for h in ("From", "To", "Subject", "Auto-Submitted", "MIME-Version"):
    for v in m.get_all(h, []):
        print("%s: %s" % (h, val(v)))
print("type", m.get_content_type(), "report-type=%s" % m.get_param("report-type"),
      "boundary=%s" % ("yes" if m.get_boundary() else "no"))
parts = m.get_payload() if m.is_multipart() else []
print("parts", " ".join(p.get_content_type() for p in parts))
for p in parts:
    ct = p.get_content_type()
    if ct == "text/plain":
        lines = p.get_payload(decode=True).decode("ascii").splitlines()
        for i, l in enumerate(lines):
            if l.startswith("<") and l.endswith(">:"):
                reason = lines[i + 1].strip() if i + 1 < len(lines) else ""
                print("text %s %s" % (l, reason))
    elif ct == "message/delivery-status":
        blocks = p.get_payload()
        for i, b in enumerate(blocks):
            for k, v in b.items():
                print("%s %s: %s" % ("dsn-msg" if i == 0 else "dsn-rcpt%d" % i,
                                     k, val(v)))
    elif ct == "text/rfc822-headers" and len(sys.argv) > 2:
        with open(sys.argv[2], "w") as f:
            f.write(p.get_payload().replace("\r\n", "\n").rstrip("\n") + "\n")
EOF
}

HOST=test.example
# expect_reply STATUS MX REPLY - the recipient's lines about the reply of
# the server MX
expect_reply() {
	printf '%s\n' "dsn-rcpt1 Status: $1" "dsn-rcpt1 Remote-MTA: dns; $2" \
	    "dsn-rcpt1 Diagnostic-Code: smtp; $3"
}
# queue_one N FROM SUBJECT RCPT - a message "From: FROM", "Subject: SUBJECT"
# from FROM to RCPT, -odi, its stderr in $T/N.err, that stays queued
# alone: ID and ARR are its ID and arrival, $T/hdr.want its header block
queue_one() {
	printf 'From: %s\nSubject: %s\n\nbody\n' "$2" "$3" |
	    mx -odi -f "$2" "$4" 2>"$T/$1.err"
	ID=$(q_ids)
	ARR=$(q_field "$ID" arrival)
	header_block "$T/q/$ID.msg" >"$T/hdr.want"
}
# expect_head SUBJECT TO - the fixed lines every report starts with
expect_head() {
	cat <<EOF
env MAIL FROM:<>
env RCPT TO:<$2>
defects 0
From: Mail Delivery System <MAILER-DAEMON@$HOST>
To: $2
Subject: $1
Auto-Submitted: auto-replied
MIME-Version: 1.0
type multipart/report report-type=delivery-status boundary=yes
parts text/plain message/delivery-status text/rfc822-headers
EOF
}
# expect_report SUBJECT TO ID ARRIVAL RCPT ACTION [TEXT] - a report about
# message ID and its one recipient RCPT, up to RCPT's Action (with the
# line of the text part when TEXT is given)
expect_report() {
	expect_head "$1" "$2"
	[ -z "${7:-}" ] || echo "text <$5>: $7"
	cat <<EOF
dsn-msg Reporting-MTA: dns; $HOST
dsn-msg X-Mxsend-Queue-ID: $3
dsn-msg Arrival-Date: @$4
dsn-rcpt1 Final-Recipient: rfc822; $5
dsn-rcpt1 Action: $6
EOF
}

# --- partial success: 250, 450, 550 at one domain; -odi sends the bounce -------
write_conf "retry_intervals 1s" "warn_after 0"
printf 'From: S <sender@home.test>\nTo: ok@p.test\nSubject: three\n\nbody\n' |
    mx -odi -f sender@home.test ok@p.test soft@p.test bad@p.test 2>"$T/1.err"
is "$?" 0 "250/450/550: exit 0"
ID=$(q_ids)
is "$(q_rcpt ok@p.test),$(q_rcpt soft@p.test),$(q_rcpt bad@p.test)" \
    "done 1,pending 1,bounced 1" "250/450/550: done, pending, bounced"
ARR=$(q_field "$ID" arrival)
ERR=$(q_rcpt_error bad@p.test)
is "$ERR" "mx.p.test[$B1]:$SMTP_PORT said: 550 5.1.1 no such user (in reply to RCPT TO:<bad@p.test>)" \
    "550: the server's reply is the recipient's error"
is "$(rx_count $B2)" 1 "-odi delivered the bounce before exiting"
header_block "$T/q/$ID.msg" >"$T/hdr.want"
f=$(rx_files $B2 | tail -n 1)
dsn "$f" "$T/hdr.got" >"$T/dsn.got"
{
	expect_report "Undelivered Mail Returned to Sender" sender@home.test \
	    "$ID" "$ARR" bad@p.test failed "$ERR"
	expect_reply 5.1.1 mx.p.test "550 5.1.1 no such user"
} >"$T/dsn.want"
is_file "$T/dsn.got" "$T/dsn.want" "the bounce: RFC 3464 report about bad@ only"
is_file "$T/hdr.got" "$T/hdr.want" "the bounce: text/rfc822-headers is the original header block"
sleep 1.1
mx -q 2>"$T/2.err"
is "$(rx_rcpt_copies $B1 ok@p.test),$(rx_rcpt_copies $B1 soft@p.test),$(rx_rcpt_copies $B1 bad@p.test)" \
    "1,1,0" "-q: soft@ delivered; ok@ never sent again"
is "$(grep -c 'RCPT TO:<bad@p.test>' "$T/smtpd-$B1/trace")" 1 "-q: bad@ never tried again"
is "$(q_count),$(rx_count $B2)" "0,1" "-q: queue empty, no second bounce"

# --- a local reason: X-mxsend diagnostic; -odb delivers the bounce itself ---------
printf 'Subject: nx\n\nbody\n' | mx -odb -f sender@home.test who@nx.test 2>"$T/3.err"
is "$?" 0 "-odb to a domain that does not exist: exit 0"
wait_for '[ "$(rx_count $B2)" = 2 ] && [ "$(q_count)" = 0 ]' 10
is "$(rx_count $B2),$(q_count)" "2,0" "-odb: the background child delivered the bounce; queue empty"
dsn "$(rx_files $B2 | tail -n 1)" >"$T/dsn.got"
is "$(grep -E '^(text|dsn-rcpt)' "$T/dsn.got")" "text <who@nx.test>: nx.test: domain not found
dsn-rcpt1 Final-Recipient: rfc822; who@nx.test
dsn-rcpt1 Action: failed
dsn-rcpt1 Status: 5.1.2
dsn-rcpt1 Diagnostic-Code: X-mxsend; nx.test: domain not found" \
    "local reason: no Remote-MTA, Status 5.1.2, Diagnostic-Code X-mxsend"

# --- identical reports at most once an hour ---------------------------------------------
for i in 1 2; do
	printf 'Subject: rl%s\n\nbody\n' $i |
	    mx -odi -f rl@home.test x@reject.test 2>"$T/rl$i.err"
done
is "$(rx_rcpt_copies $B2 rl@home.test),$(q_count)" "1,0" \
    "same sender, recipient and status twice: one bounce; both messages gone"
ok '[ -s "$T/q/bounce-times" ]' "the rate limit is kept in queue_dir/bounce-times"
printf 'Subject: rl3\n\nbody\n' | mx -odi -f rl@home.test y@reject.test 2>"$T/rl3.err"
is "$(rx_rcpt_copies $B2 rl@home.test)" 2 "another failed recipient: a new bounce"
rm -rf "$T/q"

# --- 'failed' (refused, sender not told yet, as after a crash): -q reports it ------
write_conf "retry_intervals 1h" "warn_after 0"
printf 'Subject: crash\n\nbody\n' | mx -odi -f fail@home.test hold@slow.test 2>"$T/rf1.err"
ID=$(q_ids)
q_edit "$ID" 's/^rcpt pending \(.*\) hold@slow.test$/rcpt failed \1 hold@slow.test/'
is "$(q_rcpt hold@slow.test)" "failed 1" "a recipient left 'failed' (edited)"
n=$(rx_count $B3)
mx -q 2>"$T/rf2.err"
is "$(rx_count $B3),$(q_count)" "$n,0" \
    "-q: not tried again; reported; the message left the queue"
is "$(rx_rcpt_copies $B2 fail@home.test)" 1 "the sender got the bounce"
dsn "$(rx_files $B2 | tail -n 1)" >"$T/dsn.got"
is "$(grep -E '^dsn-rcpt1 (Final-Recipient|Action)' "$T/dsn.got")" \
    "dsn-rcpt1 Final-Recipient: rfc822; hold@slow.test
dsn-rcpt1 Action: failed" "... about hold@slow.test"
rm -rf "$T/q"

# --- warn_after: one delay notice ------------------------------------------------------
write_conf "retry_intervals 1s" "queue_lifetime 1h" "warn_after 2s"
n=$(rx_count $B2)
queue_one 4 d@home.test delay wait@slow.test
mx -qI"$ID" 2>"$T/5.err"
is "$(rx_count $B2),$(q_field "$ID" warned)" "$n,0" "younger than warn_after: no notice"
wait_until $((ARR + 2))
mx -q 2>"$T/6.err"
is "$(rx_count $B2),$(q_field "$ID" warned)" "$((n + 1)),1" \
    "first run after warn_after: one notice, 'warned 1' in the envelope"
is "$(q_rcpt_state wait@slow.test)" "pending" "the message stays queued"
ERR=$(q_rcpt_error wait@slow.test)
dsn "$(rx_files $B2 | tail -n 1)" "$T/hdr.got" >"$T/dsn.got"
{
	expect_report "Delayed Mail (still being retried)" d@home.test \
	    "$ID" "$ARR" wait@slow.test delayed "$ERR"
	expect_reply 4.2.0 mx.slow.test "450 4.2.0 busy"
	echo "dsn-rcpt1 Will-Retry-Until: @$((ARR + 3600))"
} >"$T/dsn.want"
is_file "$T/dsn.got" "$T/dsn.want" "the delay notice: RFC 3464, Action: delayed"
is_file "$T/hdr.got" "$T/hdr.want" "the delay notice: the original header block"
rm -f "$T/q/bounce-times"	# so that only 'warned' can hold a second one back
tries=$(q_rcpt wait@slow.test | cut -d' ' -f2)
sleep 1.1
mx -qI"$ID" 2>"$T/7.err"
is "$(rx_count $B2),$(q_rcpt wait@slow.test),$(q_field "$ID" warned)" \
    "$((n + 1)),pending $((tries + 1)),1" "tried again later: no second notice"
rm -rf "$T/q"

# --- queue_lifetime; null sender and reports get no report --------------------------
write_conf "retry_intervals 1s" "queue_lifetime 3s" "warn_after 0"
n=$(rx_count $B2)
queue_one 8 life@home.test life late@slow.test
LID=$ID LARR=$ARR
printf 'Subject: null\n\nbody\n' | mx -odi -f '<>' z@slow.test 2>"$T/9.err"
printf 'Subject: null\n\nbody\n' | mx -odi -f '<>' z@reject.test 2>"$T/10.err"
is "$(q_rcpt z@reject.test)" "" "null sender, 550: no bounce, nothing left queued"
printf 'Subject: bb\n\nbody\n' | mx -odi -f bob@reject.test x@reject.test 2>"$T/11.err"
is "$(grep -c 'RCPT TO:<bob@reject.test>' "$T/smtpd-$B4/trace")" 1 \
    "the bounce to bob@reject.test was tried once"
is "$(q_rcpt bob@reject.test)" "" "... refused: dropped, not bounced, not kept"
printf 'Subject: bb\n\nbody\n' | mx -odi -f carol@slow.test y@reject.test 2>"$T/12.err"
is "$(q_rcpt carol@slow.test)" "pending 1" "the bounce to carol@slow.test: deferred, kept"
BID=
for id in $(q_ids); do
	q_env "$id" | grep -q '^rcpt .* carol@slow.test$' && BID=$id
done
is "$(q_field "$BID" sender),$(q_field "$BID" bounce)" "<>,1" \
    "... it is a report: null sender, 'bounce 1'"
is "$(rx_count $B2),$(rx_count $B3),$(rx_count $B4)" "$n,0,0" \
    "nothing accepted anywhere yet"
is "$(q_count)" 3 "queued: life@'s message, the null sender's, carol@'s bounce"
BARR=$(q_field "$BID" arrival)
wait_until $(( (BARR > LARR ? BARR : LARR) + 3 ))
before=$(all_mail)
mx -q -v 2>"$T/13.err"
is "$?" 0 "-q after queue_lifetime: exit 0"
is "$(q_count)" 0 "-q after queue_lifetime: all three left the queue"
is "$(rx_count $B2)" $((n + 1)) "exactly one report: the bounce to life@ (same run)"
is "$(comm -3 <(printf '%s\n' "$before" | sort) <(all_mail | sort) | tr -d '\t')" \
    "$B2 MAIL FROM:<> RCPT TO:<life@home.test> " \
    "nothing else accepted anywhere: no mail for the null sender nor about carol@'s bounce"
dsn "$(rx_files $B2 | tail -n 1)" "$T/hdr.got" >"$T/dsn.got"
expect_report "Undelivered Mail Returned to Sender" life@home.test \
    "$LID" "$LARR" late@slow.test failed >"$T/dsn.want"
grep -v -e '^text' -e '^dsn-rcpt1 Status' -e '^dsn-rcpt1 Remote-MTA' \
    -e '^dsn-rcpt1 Diagnostic-Code' "$T/dsn.got" >"$T/dsn.got2"
is_file "$T/dsn.got2" "$T/dsn.want" "the lifetime bounce: RFC 3464 report"
is_file "$T/hdr.got" "$T/hdr.want" "the lifetime bounce: the original header block"
like "$(grep '^text' "$T/dsn.got")" '^text <late@slow.test>: delivery time expired' \
    "the lifetime bounce: the reason begins 'delivery time expired'"
like "$(grep '^dsn-rcpt1 Status' "$T/dsn.got")" '^dsn-rcpt1 Status: [45]\.[0-9]+\.[0-9]+$' \
    "the lifetime bounce: a Status code"
like "$(grep '^dsn-rcpt1 Diagnostic-Code' "$T/dsn.got")" \
    '^dsn-rcpt1 Diagnostic-Code: (smtp; 450 4\.2\.0 busy|X-mxsend; delivery time expired.*)$' \
    "the lifetime bounce: Diagnostic-Code is the last reply or the local reason"
r=$(grep '^dsn-rcpt1 Remote-MTA' "$T/dsn.got")
ok '[ -z "$r" ] || [ "$r" = "dsn-rcpt1 Remote-MTA: dns; mx.slow.test" ]' \
    "the lifetime bounce: Remote-MTA absent or the MX host name (got '$r')"
mx -q 2>"$T/14.err"
is "$(all_mail | wc -l)" "$(printf '%s\n' "$before" | wc -l | awk '{print $1 + 1}')" \
    "another -q: nothing more"

done_testing
