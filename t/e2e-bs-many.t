#!/bin/bash
# e2e-bs-many.t - sendmail -bs with 10001 recipients in one transaction:
# the 10001st gets 452 4.5.3 and the message is queued with the first
# 10000 (RCPT_MAX).  The session is CPU-bound and slow under a sanitizer
# on a busy machine, so it has a file of its own and command and data
# timeouts that load cannot reach: it asserts the outcome, never a
# duration.  -odq, no servers.
. t/lib.sh
need_tools

write_conf "command_timeout 600s" "data_timeout 600s"
{
	echo 'MAIL FROM:<s@origin.test>'
	printf 'RCPT TO:<r%d@bs.test>\n' $(seq 1 10001)
	echo DATA
	echo 'Subject: many\r\n\r\nb\r\n.'
	echo QUIT
} >"$T/many.in"
bs --timeout 700 -- -odq <"$T/many.in" | uniq -c | sed 's/^ *//' >"$T/many.out"

is "$(cat "$T/many.out")" "1 220 test.example ESMTP mxsend
1 250 2.1.0 Ok
10000 250 2.1.5 Ok
1 452 4.5.3 Error: too many recipients
1 354 End data with <CR><LF>.<CR><LF>
1 250 2.0.0 Ok: queued as ID
1 221 2.0.0 Bye
1 exit 0" "10001 recipients: the 10001st gets 452 4.5.3, the message goes with 10000"
is "$(q_env "$(cat "$T/bs.ids")" |
    awk '$1 == "rcpt" { n++; last = $5 } END { print n, last }')" \
    "10000 r10000@bs.test" "10001 recipients: 10000 in the envelope"
done_testing
