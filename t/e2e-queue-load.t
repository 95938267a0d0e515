#!/bin/bash
# e2e-queue-load.t - the queue runner under load: messages to one
# destination share a connection (a new MAIL after each transaction, a
# fresh connection every 100); destinations run in parallel up to
# max_parallel; kill -9 of -q runs loses nothing and duplicates only what
# was in the post-DATA window.  (Concurrent runs: e2e-queue-conc.t.)
# Addresses 127.0.0.90-94.
. t/lib.sh
need_tools

R=127.0.0.90	# reuse.test: accepts everything
P1=127.0.0.91	# par1-4.test: accepts, 0.8 s after each final dot
P2=127.0.0.92	# par5-8.test: the same
K1=127.0.0.93	# k1.test: accepts, 0.02 s after each final dot
K2=127.0.0.94	# k2.test: the same
args=(--host-record=mx.p1.test,$P1 --host-record=mx.p2.test,$P2)
for i in 1 2 3 4; do
	args+=(--mx-host=par$i.test,mx.p1.test,10)
	args+=(--mx-host=par$((i + 4)).test,mx.p2.test,10)
done
start_dns_mx reuse.test=$R k1.test=$K1 k2.test=$K2 -- "${args[@]}" || exit 1
SMTPD_NOWAIT=1
start_smtpd $R || exit 1
start_smtpd $P1 --delay-dot 0.8 || exit 1
start_smtpd $P2 --delay-dot 0.8 || exit 1
start_smtpd $K1 --delay-dot 0.02 || exit 1
start_smtpd $K2 --delay-dot 0.02 || exit 1
wait_smtpd || exit 1
SMTPD_NOWAIT=0

# trace_count ADDR CONN CMD - how many CMD commands connection CONN sent
trace_count() {
	grep -c "^$2 > $3" "$T/smtpd-$1/trace"
}
# drain SECONDS - run -q until the queue is empty
drain() {
	local i
	for i in $(seq 1 $(($1 * 4))); do
		[ "$(q_count)" = 0 ] && return 0
		mx -q 2>>"$T/drain.err"
		sleep 0.25
	done
	[ "$(q_count)" = 0 ]
}
# queue_bulk N PREFIX DOMAIN... - N messages with -odq, three submitting
# at a time; message i goes to PREFIXi@ the (i % number of domains)-th
queue_bulk() {
	local n=$1 p=$2 s i pids=
	shift 2
	local doms=("$@")
	for s in 0 1 2; do
		(
			for ((i = s + 1; i <= n; i += 3)); do
				printf 'Subject: %s%s\n\nbody\n' "$p" "$i" |
				    "$SENDMAIL" -C "$CONF" -odq -f '<>' \
				    "$p$i@${doms[i % ${#doms[@]}]}" 2>>"$T/queue.err" ||
				    echo "submission $p$i: exit $?" >>"$T/queue.err"
			done
		) &
		pids="$pids $!"
	done
	for s in $pids; do
		wait "$s"
	done
}

# --- connection reuse -------------------------------------------------------------
write_conf "retry_intervals 1s"
queue_bulk 50 r reuse.test
is "$(q_count)" 50 "50 messages to one domain queued"
mx -q -v 2>"$T/r1.err"
is "$?" 0 "-q: exit 0"
like "$(tail -n 1 "$T/r1.err")" \
    '^sendmail: queue run: 50 tried, 50 delivered, 0 deferred, 0 failed, 0 left for the next run, [0-9]+\.[0-9]{2}s$' \
    "-q -v: summary"
ok '[ "$(rx_conns $R)" -lt 5 ]' "50 messages arrived over fewer than 5 connections ($(rx_conns $R))"
is "$(rx_conns $R)" 1 "... over exactly one"
is "$(trace_count $R 1 MAIL),$(trace_count $R 1 RSET),$(trace_count $R 1 QUIT)" "50,0,1" \
    "... a new MAIL after each transaction, no RSET, one QUIT"
is "$(rx_rcpts $R | uniq | wc -l),$(rx_count $R),$(q_count)" "50,50,0" \
    "each recipient once; queue empty"
queue_bulk 101 s reuse.test
mx -q 2>"$T/r2.err"
is "$(rx_conns $R)" 3 "101 more: two more connections"
is "$(trace_count $R 2 MAIL),$(trace_count $R 3 MAIL)" "100,1" \
    "... a fresh connection after 100 transactions"
is "$(rx_rcpts $R | uniq | wc -l),$(rx_count $R),$(q_count)" "151,151,0" \
    "each recipient once; queue empty"

# --- parallel destinations, up to max_parallel --------------------------------------
write_conf "retry_intervals 1s" "max_parallel 2"
for i in 1 2 3 4; do
	printf 'Subject: p\n\nbody\n' | mx -odq -f '<>' "x@par$i.test"
done
mx -q 2>"$T/p1.err"
is "$(rx_count $P1),$(rx_conns $P1),$(q_count)" "4,4,0" \
    "four destinations, max_parallel 2: four connections, all delivered"
is "$(cat "$T/smtpd-$P1/maxconc")" 2 "... at most two at a time, and two did run at once"
write_conf "retry_intervals 1s" "max_parallel 8"
for i in 5 6 7 8; do
	printf 'Subject: p\n\nbody\n' | mx -odq -f '<>' "x@par$i.test"
done
mx -q 2>"$T/p2.err"
is "$(rx_count $P2),$(cat "$T/smtpd-$P2/maxconc")" "4,4" \
    "four destinations, max_parallel 8: all four at once"

# --- kill -9 of -q runs -----------------------------------------------------------------
rm -rf "$T/q"
write_conf "retry_intervals 1s" "max_parallel 2"
queue_bulk 100 k k1.test k2.test
is "$(q_count)" 100 "100 messages to two domains queued"
kills=0
for _ in 1 2 3 4 5 6; do
	# its own process group: the run and its worker children
	setsid "$SENDMAIL" -C "$CONF" -q -v 2>>"$T/k.err" &
	pid=$!
	sleep "0.$((RANDOM % 4 + 1))"
	if kill -0 "$pid" 2>/dev/null; then
		kill -9 -- "-$pid"
		kills=$((kills + 1))
	fi
	wait "$pid" 2>/dev/null
	[ "$(q_count)" = 0 ] && break
done
diag "$kills kills"
ok '[ $kills -ge 1 ]' "at least one -q run was killed mid-way ($kills)"
drain 15
is "$(q_count)" 0 "after the kills, -q drains the queue"
res=$("$PY" - "$T/smtpd-$K1" "$T/smtpd-$K2" <<'EOF'
import os, re, sys
copies = {}		# rcpt -> [(dir, msg)]
window = set()		# (dir, msg) saved and followed by no command
for d in sys.argv[1:]:
    last_saved, cmds_after = {}, {}
    for line in open(os.path.join(d, "trace"), errors="replace"):
        n, kind, rest = (line.rstrip("\n").split(" ", 2) + ["", ""])[:3]
        m = re.match(r"saved msgs/(\d+)$", rest)
        if kind == "*" and m:
            last_saved[n] = m.group(1)
            cmds_after[n] = 0
        elif kind == ">" and n in last_saved:
            cmds_after[n] += 1
    for n, msg in last_saved.items():
        if cmds_after[n] == 0:
            window.add((d, msg))
    for msg in sorted(os.listdir(os.path.join(d, "msgs"))):
        if msg.startswith("."):
            continue
        for l in open(os.path.join(d, "msgs", msg)):
            if l.startswith("RCPT TO:<"):
                copies.setdefault(l.strip()[9:-1], []).append((d, msg))
            elif l == "\n":
                break
want = {"k%d@k%d.test" % (i, i % 2 + 1) for i in range(1, 101)}
lost = sorted(want - set(copies))
extra = sorted(set(copies) - want)
total = sum(len(v) for v in copies.values())
bad = [r for r, v in copies.items() if any(c not in window for c in v[:-1])]
print("lost=%d extra=%d total=%d outside-window=%d %s" % (
    len(lost), len(extra), total, len(bad), " ".join(lost + extra + bad)[:300]))
EOF
)
diag "$res"
like "$res" '^lost=0 extra=0 ' "kill -9: no recipient lost, nothing unexpected"
total=${res#*total=}
total=${total%% *}
ok '[ "$total" -le $((100 + 2 * kills)) ]' \
    "kill -9: copies ($total) <= messages + workers x kills ($((100 + 2 * kills)))"
like "$res" ' outside-window=0 ' \
    "kill -9: every duplicate's earlier copy was the last transaction of a connection cut right after the final dot"

done_testing
