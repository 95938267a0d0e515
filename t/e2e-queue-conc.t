#!/bin/bash
# e2e-queue-conc.t - three "sendmail -q" loops run while submissions go on
# (-odb, delivering in the background, and -odq), over 200 messages, some
# to two domains, one server deferring at first: every recipient receives
# exactly one copy.
# Addresses 127.0.0.95-97.
. t/lib.sh
need_tools

C1=127.0.0.95	# c1.test: accepts everything
C2=127.0.0.96	# c2.test: accepts everything
C3=127.0.0.97	# c3.test: 450 to every RCPT on the first two connections
start_dns_mx c1.test=$C1 c2.test=$C2 c3.test=$C3 || exit 1
SMTPD_NOWAIT=1
start_smtpd $C1 || exit 1
start_smtpd $C2 || exit 1
start_smtpd $C3 --rcpt '*=450 4.2.0 busy' --faults-for 2 || exit 1
wait_smtpd || exit 1
SMTPD_NOWAIT=0
write_conf "retry_intervals 1s" "max_parallel 4"

# submit I MODE - message I to one or two of c1-c3.test (no timeout
# wrapper: -odq and -odb never wait for the network)
submit() {
	local i=$1 r
	r="u$i@c$((i % 3 + 1)).test"
	[ $((i % 4)) = 0 ] && r="$r v$i@c$(((i + 1) % 3 + 1)).test"
	# shellcheck disable=SC2086
	printf 'Subject: c%s\n\nbody\n' "$i" |
	    "$SENDMAIL" -C "$CONF" "$2" -f '<>' $r 2>>"$T/submit.err" ||
	    echo "submission $i: exit $?" >>"$T/submit.err"
	printf '%s\n' $r >>"$T/want.$3"
}

# 90 queued beforehand, three at a time
pids=
for s in 0 1 2; do
	(
		for ((i = s + 1; i <= 90; i += 3)); do
			submit "$i" -odq $s
		done
	) &
	pids="$pids $!"
done
for p in $pids; do
	wait "$p"
done
is "$(q_count)" 90 "90 messages queued"
# three -q loops, while 120 more are submitted: odd ones -odb, even -odq
loops=
for l in 1 2 3; do
	(
		while [ ! -e "$T/stop" ]; do
			mx -q 2>>"$T/q$l.err"
			sleep "0.0$((RANDOM % 10))"
		done
	) &
	loops="$loops $!"
done
for i in $(seq 91 210); do
	if [ $((i % 2)) = 1 ]; then
		submit "$i" -odb x
	else
		submit "$i" -odq x
	fi
done
touch "$T/stop"
for p in $loops; do
	wait "$p"
done
is "$(cat "$T/submit.err" 2>/dev/null)" "" "210 submissions accepted"
# what is left (deferred by c3.test, or just queued) goes with more -q
# (bounded by time, not by rounds: a loaded machine makes each run slow)
end=$(( $(date +%s) + 60 ))
while [ "$(date +%s)" -lt "$end" ]; do
	[ "$(q_count)" = 0 ] && break
	mx -q 2>>"$T/drain.err"
	sleep 0.25
done
[ "$(q_count)" = 0 ] || { diag "left in the queue:"; mx -bp 2>&1 | head -n 20 | sed 's/^/# /'; }
is "$(q_count)" 0 "the queue drains"
sleep 0.5	# a background delivery that is still finishing would show now
cat "$T"/want.* | LC_ALL=C sort >"$T/want"
rx_rcpts $C1 $C2 $C3 >"$T/got"
is "$(wc -l <"$T/want" | tr -d ' ')" 262 "262 recipients in 210 messages"
is "$(LC_ALL=C comm -23 "$T/want" "$T/got" | wc -l | tr -d ' ')" 0 "no recipient lost"
is "$(uniq -d "$T/got" | wc -l | tr -d ' ')" 0 "no recipient received two copies"
is_file "$T/got" "$T/want" "exactly one copy for every recipient, nothing else"
ok '[ "$(rx_conns $C3)" -gt 2 ]' "c3.test deferred its first two connections and was retried"

done_testing
