#!/bin/bash
# e2e-stall.t - no user, server or stopped process can stall the queue:
# every queue run ends within its budget (queue_run_time) and delivers the
# other users' mail meanwhile.  The attacks run as an ordinary user
# (nobody) against the setgid install (t/setgid-ns.sh):
#   - nobody stops (SIGSTOP) the child that root's run forks to deliver
#     into nobody's mailbox;
#   - nobody stops three of its own -odb children, each holding its
#     message's lock;
#   - a tarpit MX answers every command just inside command_timeout;
#   - a queue run is stopped while it works on the tarpit, holding the
#     queue lock: the next run still delivers everything else;
#   - nobody queues mail to more tarpit domains than there are worker
#     slots, with names that sort first: the others' mail still starts.
# No assertion is about time: a run that did not end would be killed by
# the 60 s timeout of asroot (exit 124) and fail the exit-code checks.
# Addresses 127.0.0.220-229.

. t/setgid-ns.sh
. t/lib.sh
setgid_ns_setup

R=127.0.0.220		# mx.remote.test: takes everything
P=127.0.0.221		# mx.tarpit.test: each reply after 3 s (command_timeout 5s)
S=127.0.0.222		# mx.slow.test: the greeting after 50 s, first 3 connections

start_dns --mx-host=remote.test,mx.remote.test,10 --host-record=mx.remote.test,$R \
    --mx-host=tarpit.test,mx.tarpit.test,10 --host-record=mx.tarpit.test,$P \
    --mx-host=slow.test,mx.slow.test,10 --host-record=mx.slow.test,$S \
    --host-record=mx.pit.test,$P --mx-host=0a.pit.test,mx.pit.test,10 \
    --mx-host=0b.pit.test,mx.pit.test,10 --mx-host=0c.pit.test,mx.pit.test,10 \
    --mx-host=0d.pit.test,mx.pit.test,10 --mx-host=0e.pit.test,mx.pit.test,10 \
    --mx-host=0f.pit.test,mx.pit.test,10 || exit 1
SMTPD_NOWAIT=1
start_smtpd $R || exit 1
start_smtpd $P --delay-each 3 || exit 1
start_smtpd $S --delay-each 50 --faults-for 3 || exit 1
wait_smtpd || exit 1
SMTPD_NOWAIT=0
CONF=/etc/mxsend.conf write_conf "queue_dir $Q" "local_delivery mbox /var/mail" \
    "queue_run_time 8s"

# nobody's processes of this test's sendmail (other tests run beside it)
nobody_pids() { pgrep -u nobody -f "^$SM " | tr '\n' ' ' | sed 's/ $//'; }
lock_free() { flock -n "$Q/lock" true && echo free || echo held; }
rcpt_of() {	# ADDR - "STATE TRIES" of ADDR in whichever message has it
	local id
	for id in $(qids); do
		qenv "$id" | awk -v a="$1" '$1 == "rcpt" && $5 == a { print $2, $3 }'
	done
}
error_of() {	# ADDR - the error kept for ADDR
	local id
	for id in $(qids); do
		qenv "$id" | "$TOP/t/resulttest" env - "$1"
	done
}
# root_q N NAME - root's queue run, -v, its output in $T/qN.out and
# $T/qN.err: the test NAME that it exits 0 (a run that does not end is
# killed at 60 s); n is how many messages remote.test's MX had before it
root_q() {
	n=$(rx_count $R)
	asroot "$SM" -q -v >"$T/q$1.out" 2>"$T/q$1.err"
	is "$?" 0 "$2"
}
# took_one RCPT NAME - a test: remote.test's MX took one message in that
# run, the last for RCPT
took_one() {
	is "$(rx_count $R) $(rx_last_env $R | tail -n 1)" \
	    "$((n + 1)) RCPT TO:<$1>" "$2"
}
at_exit 'pkill -KILL -u nobody -f "^$SM " 2>/dev/null'

# --- 1. nobody stops its local delivery child in root's run -------------------------
install -o daemon -g mail -m 660 /dev/null /var/mail/daemon
install -o nobody -g mail -m 660 /dev/null /var/mail/nobody
# a lock of nobody's own, so that its delivery child waits (and can be stopped)
install -o nobody -g nogroup -m 600 /dev/null /var/mail/nobody.lock
printf 'Subject: l1\n\nbody\n' | asnobody "$SM" -odq nobody 2>"$T/l1.err"
printf 'Subject: l2\n\nbody\n' | asnobody "$SM" -odq daemon 2>"$T/l2.err"
printf 'Subject: l3\n\nbody\n' | asdaemon "$SM" -odq far@remote.test 2>"$T/l3.err"
is "$(qcount)" 3 "three messages queued: to nobody, to daemon, to far@remote.test"
asroot "$SM" -q -v >"$T/q1.out" 2>"$T/q1.err" &
qpid=$!
wait_for '[ -n "$(nobody_pids)" ]' 20
pids=$(nobody_pids)
ok '[ -n "$pids" ]' "root's run forked a delivery child as nobody" || diag_file "$T/q1.err"
asnobody kill -STOP $pids
is "$?" 0 "nobody stops that child (it runs with nobody's uid)"
wait $qpid
is "$?" 0 "root's -q ends by itself, exit 0 (the child got the run's budget, then SIGKILL)"
is "$(grep -c '^Subject: l2' /var/mail/daemon)" 1 "daemon's mail was delivered meanwhile"
is "$(rx_last_env $R)" "MAIL FROM:<daemon@test.example>
RCPT TO:<far@remote.test>" "and the remote mail"
is "$(rcpt_of nobody@test.example)" "pending 1" "nobody's own message waits, tried once"
is "$(error_of nobody@test.example)" "local delivery to nobody did not finish in time; stopped" \
    "with the reason"
is "$(nobody_pids)" "" "no process of nobody's is left (the stopped child was killed)"
is "$(lock_free) $(stat -c %s /var/mail/nobody)" "free 0" \
    "the queue lock is free, and nobody's mbox untouched"
like "$(tail -n 1 "$T/q1.err")" \
    '^sendmail: queue run: 3 tried, 2 delivered, 1 deferred, 0 failed, 0 left for the next run, ' \
    "the run's summary" || diag_file "$T/q1.err"
rm /var/mail/nobody.lock
sleep 1.1		# retry_intervals 1s
asroot "$SM" -q 2>"$T/q2.err"
is "$?:$(grep -c '^Subject: l1' /var/mail/nobody):$(qcount)" "0:1:0" \
    "once the lock is gone, the next run delivers nobody's message; the queue is empty"

# --- 1b. a delivery child still waiting at the end of the budget is asked to ---------
# --- stop: it removes its dotlock and leaves the mailbox as it was -----------------
cp /var/mail/daemon "$T/daemon.before"
printf 'Subject: l4\n\nbody\n' | asnobody "$SM" -odq daemon 2>"$T/l4.err"
"$PY" -c 'import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX)
open(sys.argv[2], "w").close()
time.sleep(40)' /var/mail/daemon "$T/locked" &
holder=$!
wait_for '[ -e "$T/locked" ]' 10
asroot "$SM" -q 2>"$T/q1b.err"
is "$?" 0 "root's -q with daemon's mbox locked by another program: ends, exit 0"
kill $holder
is "$(error_of daemon@test.example)" "local delivery to daemon did not finish in time; stopped" \
    "daemon's message waits, with the reason"
ok '[ ! -e /var/mail/daemon.lock ]' "the child removed its dotlock before it ended"
ok 'cmp -s /var/mail/daemon "$T/daemon.before"' "daemon's mbox is as it was"
sleep 1.1
asroot "$SM" -q 2>"$T/q1c.err"
is "$?:$(grep -c '^Subject: l4' /var/mail/daemon):$(qcount)" "0:1:0" \
    "once the mbox is free, the next run delivers it"

# --- 2. nobody stops three -odb children, each holding its message's lock -----------
for i in 1 2 3; do
	printf 'Subject: h%s\n\nbody\n' "$i" | asnobody "$SM" -odb "h$i@slow.test" \
	    2>>"$T/h.err"
done
wait_for '[ "$(rx_conns $S)" = 3 ]' 20
is "$(rx_conns $S)" 3 "three -odb children wait for slow.test's greeting"
pids=$(nobody_pids)
is "$(echo "$pids" | wc -w)" 3 "three processes of nobody's"
asnobody kill -STOP $pids
printf 'Subject: h4\n\nbody\n' | asdaemon "$SM" -odq other@remote.test 2>"$T/h4.err"
root_q 3 "root's -q with three stopped lock holders: ends, exit 0"
took_one other@remote.test "daemon's message was delivered"
like "$(tail -n 1 "$T/q3.err")" \
    '^sendmail: queue run: 1 tried, 1 delivered, 0 deferred, 0 failed, 3 left for the next run, ' \
    "the three held messages are left for the next run" || diag_file "$T/q3.err"
is "$(rx_conns $S) $(qcount)" "3 3" "no new connection to slow.test; nobody's three messages stay queued"
asnobody kill -KILL $pids
wait_for '[ -z "$(nobody_pids)" ]' 10
asroot "$SM" -q 2>"$T/q4.err"
is "$?:$(rx_count $S):$(qcount)" "0:3:0" \
    "once nobody's children are gone, the next run delivers the three (slow.test answers now)"
for i in 1 2 3; do
	is "$(rx_rcpt_copies $S "h$i@slow.test")" 1 "h$i@slow.test: one copy"
done

# --- 3. a tarpit MX: the run ends within its budget, the rest is delivered ------------
printf 'Subject: t1\n\nbody\n' | asroot "$SM" -odq slowpoke@tarpit.test 2>"$T/t1.err"
printf 'Subject: t2\n\nbody\n' | asroot "$SM" -odq quick@remote.test 2>"$T/t2.err"
root_q 5 "-q with a tarpit MX: ends by itself, exit 0"
took_one quick@remote.test "the message to remote.test was delivered"
is "$(rcpt_of slowpoke@tarpit.test) $(rx_count $P)" "pending 1 0" \
    "the tarpit's message: tried once, deferred, not delivered"
like "$(error_of slowpoke@tarpit.test)" "^mx.tarpit.test\\[$P\\]:[0-9]+: " \
    "with the tarpit's name and address in its error"

# --- 4. a stopped queue run holds the queue lock and the tarpit: the next run ---------
# --- delivers everything else -----------------------------------------------------------
sleep 1.1		# the tarpit's message is due again
"$SM" -q >"$T/q6.out" 2>"$T/q6.err" &	# (its pid: the run itself, to stop)
qpid=$!
wait_for '[ "$(rx_conns $P)" = 2 ]' 20
kill -STOP $qpid
is "$(lock_free)" held "the stopped run holds the queue lock"
printf 'Subject: t3\n\nbody\n' | asdaemon "$SM" -odq again@remote.test 2>"$T/t3.err"
root_q 7 "-q beside the stopped run: exit 0"
took_one again@remote.test "it delivered the new message"
is "$(grep -c 'tarpit.test: another queue run is working on it' "$T/q7.err")" 1 \
    "and left tarpit.test to the stopped run"
is "$(rx_conns $P)" 2 "no second connection to the tarpit"
{ kill -KILL $qpid; wait $qpid; } 2>/dev/null
is "$(lock_free)" free "a killed run leaves no lock behind"
is "$(rcpt_of slowpoke@tarpit.test)" "pending 1" "the tarpit's message is still queued"
rm -f "$Q/$(qids | head -n 1).msg" "$Q"/*.env	# (done with the tarpit's message)

# --- 5. nobody's mail to six tarpit domains named to sort first, and older mail ----
# --- of nobody's at daemon's destination, two worker slots: workers start round ---
# --- robin over the users, each destination at its best place, so daemon's mail ---
# --- still goes ---------------------------------------------------------------------
CONF=/etc/mxsend.conf write_conf "queue_dir $Q" "local_delivery mbox /var/mail" \
    "queue_run_time 8s" "max_parallel 2"
for d in 0a 0b 0c 0d 0e 0f; do
	printf 'Subject: pit\n\nbody\n' | asnobody "$SM" -odq "x@$d.pit.test" 2>>"$T/pit.err"
done
printf 'Subject: cap\n\nbody\n' | asnobody "$SM" -odq cap@remote.test 2>>"$T/pit.err"
printf 'Subject: fair\n\nbody\n' | asdaemon "$SM" -odq fair@remote.test 2>"$T/fair.err"
is "$(qcount)" 8 "six messages of nobody's to tarpits, one to remote.test, then daemon's"
root_q 8 "-q with more tarpits than worker slots: ends, exit 0"
is "$(rx_rcpt_copies $R fair@remote.test)" 1 "daemon's message was delivered in that run"
like "$(tail -n 1 "$T/q8.err")" \
    '^sendmail: queue run: [0-9]+ tried, 2 delivered, [0-9]+ deferred, 0 failed, [0-9]+ left for the next run, ' \
    "remote.test's two went, the tarpits took the rest of the budget" || diag_file "$T/q8.err"

# --- 6. a bounce root's run makes about nobody's message is nobody's: it counts in ---
# --- nobody's quota and share of the workers, not root's ---------------------------
rm -f "$Q"/*.msg "$Q"/*.env
printf 'Subject: nosuch\n\nbody\n' | asnobody "$SM" -odq -f back@0a.pit.test nosuchuser \
    2>"$T/ns.err"
asroot "$SM" -q 2>"$T/q9.err"
is "$?" 0 "-q: nosuchuser fails, the bounce goes to a tarpit and waits"
id=$(qids)
is "$(qenv "$id" | awk '$1 == "sender" || $1 == "rcpt" { print $1, $NF }' | tr '\n' ' ')" \
    "sender <> rcpt back@0a.pit.test " "what is left is the bounce to nobody's envelope sender"
is "$(perms "$Q/$id.msg")" "nobody:mail 660" "and its file is nobody's"

setgid_ns_done
