#!/bin/bash
# e2e-queue-v1.t - a queue written by the previous release (envelope
# version 1, t/data/queue-v1, made by mxsend at f83c15f): -bp and
# --queue-json list it with its errors as that release worded them, and
# -q delivers every pending recipient byte for byte, once, and empties
# the queue; the recipient that release already bounced stays bounced.
# A version 1 error reaching queue_lifetime bounces with its words kept
# whole: the previous release's sentence is not taken apart again, so
# the report gives the local status 4.4.1 and no Remote-MTA (that release
# itself would have given the server's 4.2.0).
# The files:
#   6B11C70D898F864A0  queued by root with -odq -t, never tried:
#                      a@v1.test, b@v1.test
#   6B11C70D916C464A5  tried once, connection refused: c@v1.test, d@v1.test
#   6B11C715C00076884  tried once: e@v1.test refused (550, bounced),
#                      f@v1.test deferred (450)
# Addresses 127.0.0.230-231.
MXB=127.0.0.231
. t/lib.sh
need_tools

MXA=127.0.0.230
start_dns --mx-host=v1.test,mx.v1.test,10 --host-record=mx.v1.test,$MXA \
    --mx-host=old.example,mx.old.example,10 \
    --host-record=mx.old.example,$MXB || exit 1
start_smtpd $MXA || exit 1
start_smtpd $MXB || exit 1
# The files keep their arrival times: a lifetime longer than their age.
write_conf "queue_lifetime 36500d"
mkdir -p "$T/q/tmp"
chmod 700 "$T/q" "$T/q/tmp"
cp t/data/queue-v1/* "$T/q/"
chmod 600 "$T"/q/*.msg "$T"/q/*.env
A=6B11C70D898F864A0 B=6B11C70D916C464A5 C=6B11C715C00076884
for id in $A $B $C; do
	q_msg $id >"$T/$id.want"
done

mx -bp >"$T/bp" 2>"$T/bp.err"
is "$?" 0 "-bp of a version 1 queue: exit 0"
is "$(grep -c '^6B11C7' "$T/bp")" 3 "-bp: the three messages"
is "$(grep -cxF '(127.0.0.1[127.0.0.1]:9: connect: Connection refused)' "$T/bp")" 2 \
    "-bp: the refused connection, as that release worded it, for c@ and d@"
is "$(grep -cxF '(127.0.0.253[127.0.0.253]:2599 said: 450 4.2.0 mailbox busy (in reply to RCPT TO:<f@v1.test>))' "$T/bp")" 1 \
    "-bp: f@'s deferral, as that release worded it"
ok '! grep -q "e@v1.test" "$T/bp"' "-bp: e@, bounced already, is not listed"

mx --queue-json >"$T/json" 2>"$T/json.err"
is "$?" 0 "--queue-json of a version 1 queue: exit 0"
res=$("$PY" - "$T/json" <<'PYEOF'
import json, sys
out = []
for line in open(sys.argv[1]):
    m = json.loads(line)
    for r in m["recipients"]:
        res = r["result"]
        out.append("%s %s %s" % (r["address"], r["state"],
                   res and res["reason"]))
print(";".join(sorted(out)))
PYEOF
)
is "$res" "a@v1.test pending None;b@v1.test pending None;c@v1.test pending legacy;d@v1.test pending legacy;f@v1.test pending legacy" \
    "--queue-json: each pending recipient, an old error as reason legacy"

mx -q -v 2>"$T/q.err"
is "$?" 0 "-q delivers the version 1 queue: exit 0"
is "$(q_count)" 0 "the queue is empty afterwards"
is "$(rx_count $MXA)" 3 "three transactions, one a message"
for f in $(rx_files $MXA); do
	env=$(rx_env "$f" | tr '\n' ' ')
	case $env in
	*"<root@old.example>"*) id=$A want="MAIL FROM:<root@old.example> RCPT TO:<a@v1.test> RCPT TO:<b@v1.test> " ;;
	*"<bob@old.example>"*) id=$B want="MAIL FROM:<bob@old.example> RCPT TO:<c@v1.test> RCPT TO:<d@v1.test> " ;;
	*"<carol@old.example>"*) id=$C want="MAIL FROM:<carol@old.example> RCPT TO:<f@v1.test> " ;;
	*) id=none want=unexpected ;;
	esac
	is "$env" "$want" "$id: the envelope as that release queued it"
	rx_data "$f" >"$T/$id.got"
	is_file "$T/$id.got" "$T/$id.want" "$id: the message bytes as queued"
done
is "$(rx_rcpt_copies $MXA e@v1.test)" 0 "e@, bounced by that release, is not sent"

# --- a version 1 deferral that expires ------------------------------------------
cp "t/data/queue-v1/$C.msg" "t/data/queue-v1/$C.env" "$T/q/"
chmod 600 "$T/q/$C.msg" "$T/q/$C.env"
# not due again before 2096: the run expires it without trying it, so its
# last error stays the one that release recorded
q_edit $C 's/^rcpt pending 1 [0-9]* f@v1.test$/rcpt pending 1 3999999999 f@v1.test/'
is "$(head -n 1 "$T/q/$C.env")" "version 1" "the edited envelope is still version 1"
write_conf "queue_lifetime 1s"
mx -q -v 2>"$T/exp.err"
is "$?" 0 "-q with f@'s version 1 deferral past queue_lifetime: exit 0"
is "$(q_count)" 0 "the message leaves the queue"
is "$(rx_count $MXB)" 1 "one report, to the sender's MX"
f=$(rx_last $MXB)
is "$(rx_env "$f" | tr '\n' ' ')" "MAIL FROM:<> RCPT TO:<carol@old.example> " \
    "the report goes to carol@ from the null sender"
rx_data "$f" | tr -d '\r' >"$T/report"
OLD="127.0.0.253[127.0.0.253]:2599 said: 450 4.2.0 mailbox busy (in reply to RCPT TO:<f@v1.test>)"
is "$(grep -A1 -x '<f@v1.test>:' "$T/report" | tail -n 1)" \
    "    delivery time expired after 1s; last error: $OLD" \
    "the report's words: the expiry, and that release's words for the last error"
is "$(sed -n '/^Final-Recipient: rfc822; f@v1.test$/,/^$/p' "$T/report")" \
"Final-Recipient: rfc822; f@v1.test
Action: failed
Status: 4.4.1
Diagnostic-Code: X-mxsend; $OLD" "the report's fields: local status 4.4.1, the old words as the diagnostic"
ok '! grep -q "e@v1.test" "$T/report"' "e@, bounced by that release, is not reported again"
done_testing
