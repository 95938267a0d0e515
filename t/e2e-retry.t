#!/bin/bash
# e2e-retry.t - per-recipient outcomes and the retry queue: 4xx stays
# pending and is retried alone, 5xx fails, a connection lost mid-transaction
# keeps everything pending; -q honours retry times, -qR/-qI force.
# Addresses 127.0.0.40-59.
. t/lib.sh
need_tools

R1=127.0.0.40	# 450 for soft@ on the first connection, PIPELINING
R2=127.0.0.41	# 550 for bad@, PIPELINING
R3=127.0.0.42	# nothing listens: keeps messages queued
R4=127.0.0.43	# 451 for later@ on the first connection
R5=127.0.0.44	# drops in the middle of DATA, first connection
R6=127.0.0.45	# drops after the final dot before replying, first connection
R7=127.0.0.46	# drops after the first RCPT, first connection, PIPELINING
R8=127.0.0.47	# 451 after the final dot, first connection
R9=127.0.0.48	# 554 after the final dot
R10=127.0.0.49	# no EHLO: HELO only
R11=127.0.0.50	# drops right after the greeting, first connection
args=
for i in 1 2 3 4 5 6 7 8 9 10 11; do
	eval a=\$R$i
	args="$args --mx-host=r$i.test,mx.r$i.test,10 --host-record=mx.r$i.test,$a"
done
# shellcheck disable=SC2086
start_dns $args || exit 1
SMTPD_NOWAIT=1
start_smtpd $R1 --pipelining --rcpt 'soft@r1.test=450 4.2.0 busy' --faults-for 1 || exit 1
start_smtpd $R2 --pipelining --rcpt 'bad@r2.test=550 5.1.1 no such user' || exit 1
start_smtpd $R4 --rcpt 'later@r4.test=451 4.3.0 later' --faults-for 1 || exit 1
start_smtpd $R5 --drop in-data --faults-for 1 || exit 1
start_smtpd $R6 --drop dot --faults-for 1 || exit 1
start_smtpd $R7 --pipelining --drop rcpt --faults-for 1 || exit 1
start_smtpd $R8 --data '451 4.3.0 try later' --faults-for 1 || exit 1
start_smtpd $R9 --data '554 5.6.0 content rejected' || exit 1
start_smtpd $R10 --no-ehlo || exit 1
start_smtpd $R11 --drop greeting --faults-for 1 || exit 1
wait_smtpd || exit 1
SMTPD_NOWAIT=0
write_conf "retry_intervals 1s"

# --- 4xx on one RCPT: the others are delivered, that one stays pending ---------
printf 'Subject: soft\n\nbody\n' |
    mx -odi -f sender@origin.test ok@r1.test soft@r1.test 2>"$T/1.err"
is "$?" 0 "4xx on one recipient: exit 0 (safely queued)"
is "$(rx_count $R1)" 1 "one transaction"
is "$(rx_env "$(rx_files $R1)" | grep '^RCPT')" "RCPT TO:<ok@r1.test>" \
    "it carried only the accepted recipient"
is "$(q_count)" 1 "the message stays queued"
is "$(q_rcpt ok@r1.test)" "done 1" "accepted recipient: done"
is "$(q_rcpt soft@r1.test)" "pending 1" "4xx recipient: pending, 1 try"
like "$(q_rcpt_error soft@r1.test)" '450' "4xx recipient: the server's reply is its error"
ID=$(q_ids)
mx -bp >"$T/bp.out" 2>"$T/bp.err"
is "$?" 0 "-bp: exit 0"
ok 'grep -q "$ID" "$T/bp.out" && grep -q "soft@r1.test" "$T/bp.out"' \
    "-bp lists the message and its pending recipient"
sleep 1.2
mx -q 2>"$T/2.err"
is "$?" 0 "-q after the retry interval: exit 0"
is "$(rx_count $R1)" 2 "-q: one more transaction"
is "$(rx_env "$(rx_files $R1 | tail -n 1)" | grep '^RCPT')" "RCPT TO:<soft@r1.test>" \
    "-q: the retry carries only the pending recipient"
is "$(rx_rcpt_copies $R1 ok@r1.test) $(rx_rcpt_copies $R1 soft@r1.test)" "1 1" \
    "each recipient received exactly one copy"
is "$(q_count)" 0 "all done: the message left the queue"
mx -q 2>"$T/3.err"
is "$(rx_conns $R1)" 2 "another -q sends nothing again"

# --- 5xx on RCPT: failed; the rest goes on ---------------------------------------
printf 'Subject: hard\n\nbody\n' |
    mx -odi -f '<>' ok@r2.test bad@r2.test keep@r3.test 2>"$T/4.err"
is "$?" 0 "5xx on one recipient, others delivered or deferred: exit 0"
is "$(rx_env "$(rx_files $R2)" | grep '^RCPT')" "RCPT TO:<ok@r2.test>" \
    "the transaction carried only the accepted recipient"
is "$(q_rcpt bad@r2.test)" "bounced 1" "5xx recipient: failed (bounced: the null sender gets no report)"
like "$(q_rcpt_error bad@r2.test)" '550' "5xx recipient: the server's reply is its error"
is "$(q_rcpt ok@r2.test)" "done 1" "accepted recipient: done"
is "$(q_rcpt keep@r3.test)" "pending 1" "unreachable recipient: pending"
rm -rf "$T/q"
printf 'Subject: hard\n\nbody\n' | mx -odi -f '<>' bad@r2.test 2>"$T/5.err"
rc=$?
ok '[ $rc = 69 ] || [ $rc = 67 ]' "-odi, the only recipient refused with 5xx: exit 69/67 (got $rc)"
is "$(q_count)" 0 "... nothing queued (null sender, no bounce)"
rm -rf "$T/q"

# --- retry times: -q waits, -qR and -qI force ----------------------------------------
write_conf "retry_intervals 1h"
printf 'Subject: later\n\nbody\n' | mx -odi -f '<>' later@r4.test 2>"$T/6.err"
is "$?" 0 "451: exit 0"
is "$(q_rcpt later@r4.test)" "pending 1" "451: pending"
mx -q 2>"$T/7.err"
is "$(rx_conns $R4)" 1 "-q before the retry time: no new connection"
mx -qRnobody@nowhere.test 2>"$T/8.err"
is "$(rx_conns $R4)" 1 "-qR with a string no recipient contains: nothing"
mx -qRlater@r4 2>"$T/9.err"
is "$?" 0 "-qR: exit 0"
is "$(rx_rcpt_copies $R4 later@r4.test)" 1 "-qR<rcpt> delivers it now"
is "$(q_count)" 0 "-qR: queue empty"

printf 'Subject: later2\n\nbody\n' | mx -odq -f '<>' x@r4.test 2>"$T/10.err"
ID=$(q_ids)
printf 'Subject: other\n\nbody\n' | mx -odq -f '<>' y@r4.test 2>"$T/11.err"
mx -qI"$ID" 2>"$T/12.err"
is "$(rx_rcpt_copies $R4 x@r4.test) $(rx_rcpt_copies $R4 y@r4.test)" "1 0" \
    "-qI<id> runs only that message"
mx -qSnobody 2>"$T/13.err"
is "$(rx_rcpt_copies $R4 y@r4.test)" 0 "-qS with a string no sender contains: nothing"
rm -rf "$T/q"

# --- the connection is lost mid-transaction: everything stays pending -----------
# deferred_all N SERVER NAME - send a@, b@ of rN.test; both must stay pending,
# nothing recorded; then -qR delivers each exactly once.
deferred_all() {
	local n=$1 srv=$2 what=$3
	printf 'Subject: %s\n\nbody\n' "$what" |
	    mx -odi -f '<>' a@r$n.test b@r$n.test 2>"$T/d$n.err"
	is "$?" 0 "$what: exit 0 (safely queued)"
	is "$(q_count)" 1 "$what: the message stays queued"
	is "$(q_rcpt a@r$n.test),$(q_rcpt b@r$n.test)" "pending 1,pending 1" \
	    "$what: both recipients pending after one try"
	is "$(rx_count $srv)" 0 "$what: nothing accepted by the server"
	mx -qRr$n.test 2>"$T/d$n.q.err"
	is "$(rx_rcpt_copies $srv a@r$n.test) $(rx_rcpt_copies $srv b@r$n.test) $(q_count)" \
	    "1 1 0" "$what: the retry delivers each once and empties the queue"
	rm -rf "$T/q"
}
deferred_all 5 $R5 "dropped during DATA"
deferred_all 6 $R6 "dropped after the final dot"
deferred_all 7 $R7 "dropped after RCPT"
deferred_all 8 $R8 "451 after the final dot"
deferred_all 11 $R11 "dropped after the greeting"

# --- 554 after the dot: every recipient fails -----------------------------------
printf 'Subject: rejected\n\nbody\n' |
    mx -odi -f '<>' a@r9.test b@r9.test keep@r3.test 2>"$T/14.err"
is "$?" 0 "554 after the dot, one recipient elsewhere deferred: exit 0"
is "$(q_rcpt a@r9.test),$(q_rcpt b@r9.test)" "bounced 1,bounced 1" \
    "554 after the dot: both recipients failed"
rm -rf "$T/q"

# --- a server without EHLO ------------------------------------------------------------
printf 'Subject: helo\n\nbody\n' | mx -odi a@r10.test 2>"$T/15.err"
is "$?" 0 "HELO-only server: exit 0"
is "$(rx_count $R10)" 1 "HELO-only server: delivered after falling back to HELO"

done_testing
