#!/bin/bash
# e2e-queue.t - the queue runner: -q honours retry_intervals (counted from
# each attempt, the last one repeating), delivers once the server accepts
# and then the message leaves the queue; -qI/-qR/-qS select and force; an
# overlapping -q is a no-op under the queue lock; the -v summary counts;
# stale files are swept; usage errors.
# Addresses 127.0.0.70-79.
. t/lib.sh
need_tools

A1=127.0.0.70	# 450 to every RCPT on the first connection, then accepts
A2=127.0.0.71	# 450 4.2.0 to every RCPT, always
A3=127.0.0.72	# accepts everything
A4=127.0.0.73	# 550 5.1.1 for bad@a4.test
A5=127.0.0.74	# 450 to every RCPT on the first three connections
A6=127.0.0.75	# nothing listens
start_dns_mx a1.test=$A1 a2.test=$A2 a3.test=$A3 a4.test=$A4 a5.test=$A5 \
    a6.test=$A6 || exit 1
SMTPD_NOWAIT=1
start_smtpd $A1 --rcpt '*=450 4.2.0 busy' --faults-for 1 || exit 1
start_smtpd $A2 --rcpt '*=450 4.2.0 busy' || exit 1
start_smtpd $A3 || exit 1
start_smtpd $A4 --rcpt 'bad@a4.test=550 5.1.1 no such user' || exit 1
start_smtpd $A5 --rcpt '*=450 4.2.0 busy' --faults-for 3 || exit 1
wait_smtpd || exit 1
SMTPD_NOWAIT=0

# wait_until EPOCH - sleep until the clock shows second EPOCH
wait_until() {
	while [ "$(date +%s)" -lt "$1" ]; do
		sleep 0.05
	done
}
# q_next ADDR - the NEXT field of ADDR's rcpt line
q_next() {
	q_envs |
	    awk -v a="$1" '$1 == "rcpt" && $5 == a { print $4 }'
}
# attempt N ADDR CMD... - CMD, its stderr in $T/N.err, its exit status in
# st; b and a are the seconds before and after it, next is then ADDR's
# next attempt
attempt() {
	local n=$1 addr=$2
	shift 2
	b=$(date +%s)
	"$@" 2>"$T/$n.err"
	st=$?
	a=$(date +%s)
	next=$(q_next "$addr")
}
# waited SECS NAME - a test: next is SECS after the attempt (between b and a)
waited() {
	ok "[ \$((next - $1)) -ge $b ] && [ \$((next - $1)) -le $a ]" \
	    "$2 (next=$next, attempt in [$b,$a])"
}
SUMMARY_RE='[0-9]+\.[0-9]{2}s$'

# --- 4xx: retried only after the interval, delivered once, then gone -----------
write_conf "retry_intervals 3s"
printf 'Subject: retry\n\nbody\n' |
    attempt 1 one@a1.test mx -odi -f '<>' one@a1.test
is "$st" 0 "4xx at submission: exit 0"
is "$(q_rcpt one@a1.test)" "pending 1" "4xx: pending after one try"
waited 3 "4xx: next attempt is the attempt time + 3s"
mx -q 2>"$T/2.err"
is "$?" 0 "-q before the retry time: exit 0"
is "$(rx_conns $A1)" 1 "-q right after the failure: no connection"
wait_until $((next - 1))
mx -q 2>"$T/3.err"
is "$(rx_conns $A1),$(q_rcpt one@a1.test)" "1,pending 1" \
    "-q one second before the retry time: still skipped"
wait_until "$next"
mx -q -v 2>"$T/4.err"
is "$?" 0 "-q at the retry time: exit 0"
is "$(rx_conns $A1)" 2 "-q at the retry time: one new connection"
is "$(rx_rcpt_copies $A1 one@a1.test)" 1 "the retry delivered it once"
is "$(q_msg_files | grep -cv -e '^lock$' -e '^bounce-times$')" 0 \
    "delivered: ID.env and ID.msg are gone from the queue"
like "$(tail -n 1 "$T/4.err")" \
    "^sendmail: queue run: 1 tried, 1 delivered, 0 deferred, 0 failed, 0 left for the next run, $SUMMARY_RE" \
    "-q -v: the summary line"
mx -q 2>"$T/5.err"
is "$(rx_conns $A1),$(rx_count $A1)" "2,1" "another -q sends nothing"
rm -rf "$T/q"

# --- the schedule: each interval from its attempt, the last one repeats ---------
write_conf "retry_intervals 1s 2s"
printf 'Subject: sched\n\nbody\n' |
    attempt 6 two@a2.test mx -odi -f '<>' two@a2.test
is "$(q_rcpt two@a2.test)" "pending 1" "schedule: first deferral"
waited 1 "schedule: after try 1 the wait is 1s"
wait_until "$next"
attempt 7 two@a2.test mx -q
is "$(q_rcpt two@a2.test)" "pending 2" "schedule: second deferral"
waited 2 "schedule: after try 2 the wait is 2s"
wait_until $((next - 1))
mx -q 2>"$T/8.err"
is "$(q_rcpt two@a2.test)" "pending 2" "schedule: -q a second early does not try"
wait_until "$next"
attempt 9 two@a2.test mx -q
is "$(q_rcpt two@a2.test)" "pending 3" "schedule: third deferral"
waited 2 "schedule: the last interval (2s) repeats"
is "$(q_rcpt_error two@a2.test)" \
    "mx.a2.test[$A2]:$SMTP_PORT said: 450 4.2.0 busy (in reply to RCPT TO:<two@a2.test>)" \
    "schedule: the last error is kept"
is "$(rx_conns $A2)" 3 "schedule: exactly three connections"
rm -rf "$T/q"

# --- -qI, -qR, -qS: select by ID, pending recipient, sender; and force ----------
write_conf "retry_intervals 1h"
printf 'Subject: m1\n\nbody\n' | mx -odi -f alice@x.test one@a5.test 2>"$T/10.err"
ID1=$(q_ids)
printf 'Subject: m2\n\nbody\n' | mx -odi -f bob@x.test two@a5.test 2>"$T/11.err"
printf 'Subject: m3\n\nbody\n' |
    mx -odi -f carol@x.test three@a5.test done@a3.test 2>"$T/12.err"
is "$(q_count),$(rx_conns $A5)" "3,3" "three messages deferred for an hour"
is "$(q_rcpt done@a3.test)" "done 1" "m3: the other recipient was delivered"
mx -q 2>"$T/13.err"
is "$(rx_conns $A5)" 3 "-q: none is due"
mx -qRdone@a3 2>"$T/14.err"
is "$?" 0 "-qR<str> matching only a delivered recipient: exit 0"
is "$(rx_conns $A5),$(rx_count $A3)" "3,1" \
    "-qR<str> matching only a delivered recipient: nothing runs"
mx -qSbob@ 2>"$T/15.err"
is "$?" 0 "-qS<str>: exit 0"
is "$(rx_rcpt_copies $A5 one@a5.test)$(rx_rcpt_copies $A5 two@a5.test)$(rx_rcpt_copies $A5 three@a5.test)" \
    "010" "-qS<str>: only the message from that sender, forced"
mx -qI"${ID1:3:10}" 2>"$T/16.err"
is "$?" 0 "-qI<part of an ID>: exit 0"
is "$(rx_rcpt_copies $A5 one@a5.test)$(rx_rcpt_copies $A5 three@a5.test)" "10" \
    "-qI<part of an ID>: only that message, forced"
mx -qRthree@a5 2>"$T/17.err"
is "$(rx_rcpt_copies $A5 three@a5.test),$(rx_count $A3),$(q_count)" "1,1,0" \
    "-qR<str>: that message; its delivered recipient is not sent again; queue empty"
rm -rf "$T/q"

# --- the queue lock; the summary counts ----------------------------------------------
write_conf "retry_intervals 1h"
printf 'Subject: s1\n\nbody\n' |
    mx -odq -f '<>' x@a3.test y@a3.test bad@a4.test 2>"$T/18.err"
printf 'Subject: s2\n\nbody\n' | mx -odq -f '<>' z@a2.test 2>"$T/19.err"
is "$(q_count)" 2 "two messages queued with -odq"
n3=$(rx_count $A3) c2=$(rx_conns $A2) c4=$(rx_conns $A4)
# Another run holds the queue lock and works on a3.test: it holds a3.test's
# destination lock, tmp/dest-FNV1A64(name).lock.
dest_lock() {
	"$PY" -c 'import sys
h = 0xcbf29ce484222325
for b in sys.argv[1].encode():
    h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
print("dest-%016x.lock" % h)' "$1"
}
"$PY" -c 'import fcntl, sys, time
fs = [open(p, "a") for p in sys.argv[1:]]
for f in fs:
    fcntl.flock(f, fcntl.LOCK_EX)
time.sleep(30)' "$T/q/lock" "$T/q/tmp/$(dest_lock a3.test)" &
holder=$!
wait_for '! flock -n "$T/q/lock" true' 5
mx -q -v >"$T/20.out" 2>"$T/20.err"
rc=$?
held=$(flock -n "$T/q/lock" true 2>/dev/null && echo released || echo held)
is "$rc" 0 "-q while another run holds the lock: exit 0"
is "$(head -n 1 "$T/20.err")" \
    "another queue run is active: this one leaves it the destinations it is working on" \
    "-q -v alongside another run: says so first"
is "$(grep -c 'a3.test: another queue run is working on it' "$T/20.err")" 1 \
    "-q -v alongside another run: leaves a3.test to it, and says so"
like "$(tail -n 1 "$T/20.err")" \
    "^sendmail: queue run: 2 tried, 0 delivered, 1 deferred, 1 failed, 1 left for the next run, $SUMMARY_RE" \
    "-q -v alongside another run: does the rest, and counts a3.test as left for the next run"
is "$held" held "-q while locked returns while the lock is still held (it did not wait)"
is "$(rx_count $A3),$(rx_conns $A2),$(rx_conns $A4),$(q_count)" "$n3,$((c2 + 1)),$((c4 + 1)),2" \
    "-q alongside another run: a2.test and a4.test tried, a3.test left alone"
mx -q >"$T/21.out" 2>"$T/21.err"
is "$?:$(cat "$T/21.out" "$T/21.err")" "0:" "-q without -v alongside another run: exit 0, silent"
is "$(rx_count $A3)" "$n3" "... and a3.test still left to the other run"
kill "$holder"
wait "$holder" 2>/dev/null
mx -q >"$T/22.out" 2>"$T/22.err"
is "$?:$(cat "$T/22.out" "$T/22.err")" "0:" "-q without -v: exit 0, nothing printed"
is "$(rx_count $A3),$(rx_rcpt_copies $A3 x@a3.test),$(rx_rcpt_copies $A3 y@a3.test)" \
    "$((n3 + 1)),1,1" "... delivered the first message in one transaction"
is "$(q_count),$(q_rcpt z@a2.test)" "1,pending 1" \
    "... the first left the queue (2 done, 1 failed and bounced), the second is deferred"
rm -rf "$T/q"
printf 'Subject: s1\n\nbody\n' |
    mx -odq -f '<>' x@a3.test y@a3.test bad@a4.test 2>"$T/23.err"
printf 'Subject: s2\n\nbody\n' | mx -odq -f '<>' z@a2.test 2>"$T/24.err"
mx -q -v >"$T/25.out" 2>"$T/25.err"
is "$?" 0 "-q -v: exit 0"
is "$(grep -c 'queue run:' "$T/25.err")" 1 "-q -v: one summary line"
like "$(tail -n 1 "$T/25.err")" \
    "^sendmail: queue run: 3 tried, 2 delivered, 1 deferred, 1 failed, 0 left for the next run, $SUMMARY_RE" \
    "-q -v: 3 message x destination attempts; 2 delivered, 1 deferred, 1 failed"
is "$(cat "$T/25.out")" "" "-q -v: nothing on stdout"
rm -rf "$T/q"

# --- stale files -----------------------------------------------------------------------
# A message is its ID.msg (its submission envelope at the end), plus ID.env
# once an attempt changed something; -q removes files in tmp/ and ID.env
# without an ID.msg once they are an hour old.
write_conf "retry_intervals 1h"
printf 'Subject: stale1\n\nbody\n' | mx -odi -f '<>' one@a6.test 2>"$T/26.err"
IDA=$(q_ids)
printf 'Subject: stale2\n\nbody\n' | mx -odq -f '<>' two@a6.test 2>"$T/27.err"
IDB=$(q_ids | grep -vx "$IDA")
is "$(ls "$T/q" | grep -c -e "^$IDA\\.env$" -e "^$IDB\\.env$")" 1 \
    "the tried message has an ID.env, the queued one not yet"
touch -d '2 hours ago' "$T/q/$IDA.msg" "$T/q/$IDA.env" "$T/q/$IDB.msg"
q_env "$IDA" >"$T/q/0000000100000DEAD.env"
touch -d '2 hours ago' "$T/q/0000000100000DEAD.env"
q_env "$IDA" >"$T/q/0000000200000BEEF.env"
echo junk >"$T/q/tmp/old-writer"
touch -d '2 hours ago' "$T/q/tmp/old-writer"
echo junk >"$T/q/tmp/recent-writer"
touch -d '50 minutes ago' "$T/q/tmp/recent-writer"
echo junk >"$T/q/tmp/live-writer"
mx -q 2>"$T/28.err"
is "$?" 0 "-q with stale files: exit 0"
is "$(q_files | grep -v -e '^lock$' -e '^bounce-times$' | LC_ALL=C sort | tr '\n' ' ')" \
    "$(printf '%s\n' 0000000200000BEEF.env "$IDA.env" "$IDA.msg" "$IDB.env" "$IDB.msg" \
    tmp/live-writer tmp/recent-writer "tmp/$(dest_lock a6.test)" | LC_ALL=C sort |
    tr '\n' ' ')" \
    "-q removed tmp/ files and a message-less ID.env older than 1 h, kept the rest and a6.test's destination lock"
is "$(q_rcpt one@a6.test),$(q_rcpt two@a6.test)" "pending 1,pending 1" \
    "old messages are intact: the one tried at submission is not due, the other was tried"
rm -rf "$T/q"

# --- usage errors ---------------------------------------------------------------------
# usage NAME ARGS... - exit 64, one line on stderr, nothing queued
usage() {
	local name=$1 rc
	shift
	mx "$@" </dev/null >"$T/u.out" 2>"$T/u.err"
	rc=$?
	is "$rc,$(wc -l <"$T/u.err"),$(wc -c <"$T/u.out")" "64,1,0" \
	    "$name: exit 64, one line on stderr"
	like "$(cat "$T/u.err")" '^sendmail: ' "$name: the message names the program"
}
usage "unknown long option" --no-such-option
usage "--warn with a bad duration" --check-queue --warn 5x
usage "--warn without a value" --check-queue --warn
usage "--crit with a bad duration" --check-queue --crit -1h
usage "-qI without a string" -qI
usage "-qR without a string" -qR
usage "-qS without a string" -qS
is "$(q_count)" 0 "usage errors queue nothing"

done_testing
