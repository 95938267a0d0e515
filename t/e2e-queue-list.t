#!/bin/bash
# e2e-queue-list.t - the queue as people and monitors see it: -bp and
# mailq (exact layout), --queue-json (parsed as JSON), --check-queue
# (status line and exit code for empty, young and old queues).
# Addresses 127.0.0.88-89.
. t/lib.sh
need_tools
export LC_ALL=C

L1=127.0.0.88	# l1.test: 450 4.7.1 to every RCPT, always
L2=127.0.0.89	# l2.test: accepts everything
start_dns --mx-host=l1.test,mx.l1.test,10 --host-record=mx.l1.test,$L1 \
    --mx-host=l2.test,mx.l2.test,10 --host-record=mx.l2.test,$L2 || exit 1
SMTPD_NOWAIT=1
start_smtpd $L1 --rcpt '*=450 4.7.1 try later' || exit 1
start_smtpd $L2 || exit 1
wait_smtpd || exit 1
SMTPD_NOWAIT=0
write_conf "retry_intervals 1h" "warn_after 0"

# set_arrival ID EPOCH - make a message older (a test may edit its envelope)
set_arrival() {
	q_edit "$1" "s/^arrival .*/arrival $2/"
}

# expected_bp - the -bp listing built from the envelopes, as documented
expected_bp() {
	local id f n=0 total=0 arr size sender
	for id in $(q_ids | sort); do
		f=$T/env
		q_env "$id" >"$f"
		arr=$(awk '$1 == "arrival" { print $2 }' "$f")
		size=$(awk '$1 == "size" { print $2 }' "$f")
		sender=$(awk '$1 == "sender" { print $2 }' "$f")
		[ "$sender" = "<>" ] && sender=MAILER-DAEMON
		[ $n = 0 ] && echo "-Queue ID-------- --Size-- ----Arrival Time---- -Sender/Recipient-------"
		printf '%-17s %8d %s  %s\n' "$id" "$size" \
		    "$(date -d "@$arr" '+%a %b %e %H:%M:%S')" "$sender"
		# each pending or failed recipient, after its last error in
		# words (the envelope keeps its facts; t/resulttest words them)
		awk '$1 == "rcpt" && ($2 == "pending" || $2 == "failed") {
			print $2, $5 }' "$f" |
		while read -r st a; do
			err=$("$TOP/t/resulttest" env "$f" "$a")
			[ -n "$err" ] && echo "($([ "$st" = failed ] && echo "failed: ")$err)"
			printf '%48s%s\n' "" "$a"
		done
		echo
		n=$((n + 1))
		total=$((total + size))
	done
	if [ $n = 0 ]; then
		echo "Mail queue is empty"
	else
		echo "-- $(( (total + 1023) / 1024 )) Kbytes in $n Request$([ $n = 1 ] || echo s)."
	fi
}

# --- empty --------------------------------------------------------------------------
mx -q 2>/dev/null	# creates the queue directory
is "$(mx -bp 2>&1)" "Mail queue is empty" "-bp, empty queue"
is "$(mx --queue-json 2>&1)" "" "--queue-json, empty queue: no lines"
out=$(mx --check-queue 2>&1)
is "$?:$out" "0:MXSEND OK - queue empty | messages=0 oldest=0s" "--check-queue, empty: exit 0"

# --- a known queue ----------------------------------------------------------------------
b=$(date +%s)
printf 'Subject: one\n\nbody\n' | mx -odq -f alice@home.test a@l1.test b@l1.test 2>"$T/1.err"
ID1=$(q_ids)
out=$(mx --check-queue 2>&1)
rc=$?
a=$(date +%s)
like "$rc:$out" "^0:MXSEND OK - 1 message queued, oldest [0-9]+s \| messages=1 oldest=[0-9]+s$" \
    "--check-queue, one young message, no error yet: exit 0"
o=${out##*oldest=}
o=${o%s}
ok '[ "$o" -le $((a - b)) ]' "--check-queue: its age (${o}s) is at most the time since submission"
sleep 1.1	# distinct arrival times
printf 'Subject: two\n\n%s\n' "$(head -c 3000 /dev/zero | tr '\0' x)" |
    mx -odi -f '<>' c@l1.test 2>"$T/2.err"
printf 'Subject: three\n\nbody\n' |
    mx -odi -f bob@home.test d@l1.test e@l1.test f@l2.test 2>"$T/3.err"
is "$(q_count)" 3 "three messages queued"
ID3=$(q_ids | sort | tail -n 1)
is "$(q_rcpt f@l2.test),$(q_rcpt d@l1.test),$(q_rcpt c@l1.test),$(q_rcpt a@l1.test)" \
    "done 1,pending 1,pending 1,pending 0" "recipients: done, deferred, deferred, untried"
# A failed recipient whose bounce is not queued yet (as after a crash) is
# listed as failed; make one by editing the envelope.
q_edit "$ID3" 's/^rcpt pending \([0-9]* [0-9]*\) e@l1.test$/rcpt failed \1 e@l1.test/'
is "$(q_rcpt e@l1.test)" "failed 1" "e@ is now failed (edited)"
E=$(q_rcpt_error c@l1.test)
is "$E" "mx.l1.test[$L1]:$SMTP_PORT said: 450 4.7.1 try later (in reply to RCPT TO:<c@l1.test>)" \
    "the deferral reason as stored"

mx -bp >"$T/bp.out" 2>"$T/bp.err"
is "$?" 0 "-bp: exit 0"
expected_bp >"$T/bp.want"
is_file "$T/bp.out" "$T/bp.want" "-bp: the documented layout"
# the same by hand, to check expected_bp itself on the parts that matter
like "$(sed -n 2p "$T/bp.out")" "^$ID1 +[0-9]+ [A-Z][a-z]{2} [A-Z][a-z]{2} [ 1-3][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2}  alice@home.test$" \
    "-bp: first message line"
is "$(grep -c "^ \{48\}[a-e]@l1.test$" "$T/bp.out")" 5 "-bp: a, b, c, d, e listed; f (done) is not"
is "$(grep -c '^(failed: ' "$T/bp.out"),$(grep -cxF "($E)" "$T/bp.out")" "1,1" \
    "-bp: one '(failed: ...)' line, the deferral reason of c@ in parentheses"
is "$(tail -n 1 "$T/bp.out")" "-- $(( ($(q_envs | awk '$1 == "size" { s += $2 } END { print s }') + 1023) / 1024 )) Kbytes in 3 Requests." \
    "-bp: the total line"
ln -s "$SENDMAIL" "$T/mailq"
"$T/mailq" -C "$CONF" >"$T/mailq.out" 2>"$T/mailq.err"
is "$?" 0 "invoked as mailq: exit 0"
is_file "$T/mailq.out" "$T/bp.want" "invoked as mailq: the same listing"
MXSEND_CONFIG=$CONF "$T/mailq" >"$T/mailq2.out" 2>"$T/mailq2.err"
is_file "$T/mailq2.out" "$T/bp.want" "invoked as mailq with MXSEND_CONFIG: the same listing"

# --- --queue-json -----------------------------------------------------------------------
mx --queue-json >"$T/json.out" 2>"$T/json.err"
is "$?" 0 "--queue-json: exit 0"
mkdir -p "$T/envs"
for id in $(q_ids); do
	q_env "$id" >"$T/envs/$id.env"
done
res=$("$PY" - "$T/json.out" "$T/envs" <<'EOF'
import glob, json, os, subprocess, sys
want = []
for f in sorted(glob.glob(os.path.join(sys.argv[2], "*.env"))):
    kv, rcpts, last = {}, [], None
    for line in open(f):
        k, _, v = line.rstrip("\n").partition(" ")
        if k == "rcpt":
            st, tries, nxt, addr = v.split(" ", 3)
            last = {"address": addr, "state": st, "tries": int(tries),
                    "next_attempt": int(nxt), "result": None}
            if st in ("pending", "failed"):
                rcpts.append(last)
        elif k == "result":
            w = dict(x.split("=", 1) for x in v.split())
            res = {"outcome": w["o"], "reason": w["why"]}
            for ek, jk, conv in (("last", "last_reason", str),
                                 ("step", "step", str), ("code", "code", int),
                                 ("status", "status", str),
                                 ("host", "remote_host", str),
                                 ("peer", "remote_address", str),
                                 ("err", "errno", int),
                                 ("lifetime", "lifetime", int)):
                if ek in w:
                    res[jk] = conv(w[ek])
            res["detail"] = ""
            last["result"] = res
        elif k == "detail":
            last["result"]["detail"] = v
        else:
            kv[k] = v
    for r in rcpts:
        # the words of the facts, as -bp and the log say them
        r["delay_reason"] = subprocess.run(
            ["t/resulttest", "env", f, r["address"]], capture_output=True,
            text=True).stdout.rstrip("\n") if r["result"] else None
    want.append({"queue_id": kv["id"], "arrival_time": int(kv["arrival"]),
                 "message_size": int(kv["size"]),
                 "sender": "" if kv["sender"] == "<>" else kv["sender"],
                 "recipients": rcpts})
got = []
for n, line in enumerate(open(sys.argv[1]), 1):
    try:
        got.append(json.loads(line))
    except ValueError as e:
        print("line %d is not JSON: %s: %r" % (n, e, line))
        sys.exit(0)
if got != want:
    print("got  %s\nwant %s" % (json.dumps(got), json.dumps(want)))
else:
    print("same %d" % len(got))
EOF
)
is "$res" "same 3" "--queue-json: one JSON object a line, fields as the envelopes say"

# --- --check-queue by age -----------------------------------------------------------
# check EXPECTED-RC ERE NAME [ARGS...] - --check-queue's exit code and
# line; ERE is the part before " oldest=NNs", which must be the age of the
# message that arrived at $OLDEST (when set)
check() {
	local want=$1 re=$2 name=$3 out rc t0 t1 o
	shift 3
	t0=$(date +%s)
	out=$(mx --check-queue "$@" 2>&1)
	rc=$?
	t1=$(date +%s)
	like "$rc:$out" "^$want:$re oldest=[0-9]+s$" "$name"
	[ -n "${OLDEST:-}" ] || return 0
	o=${out##*oldest=}
	o=${o%s}
	ok '[ "$o" -ge $((t0 - OLDEST)) ] && [ "$o" -le $((t1 - OLDEST)) ]' \
	    "... oldest=${o}s is the age of the oldest message"
}
OLDEST=$(q_envs | awk '$1 == "arrival" && (m == "" || $2 < m) { m = $2 } END { print m }')
check 0 "MXSEND OK - 3 messages queued, oldest ([0-9]+m)?[0-9]+s; last error: .+ \| messages=3" \
    "young queue: OK, exit 0"
out=$(mx --check-queue 2>&1)
err=${out#*; last error: }
err=${err% | messages=*}
ok 'q_errors | grep -qxF "$err"' "the last error is one of the stored errors ($err)"
now=$(date +%s)
set_arrival "$ID1" $((now - 7200))
OLDEST=$((now - 7200))
check 1 "MXSEND WARNING - 3 messages queued, oldest 2h0m; last error: .+ \| messages=3" \
    "oldest 2 h: WARNING, exit 1 (default --warn 1h)"
check 0 "MXSEND OK - 3 messages queued, oldest 2h0m; last error: .+ \| messages=3" \
    "oldest 2 h, --warn 3h: OK, exit 0" --warn 3h
check 2 "MXSEND CRITICAL - 3 messages queued, oldest 2h0m; last error: .+ \| messages=3" \
    "oldest 2 h, --crit 90m: CRITICAL, exit 2" --crit 90m
check 1 "MXSEND WARNING - 3 messages queued, oldest 2h0m; last error: .+ \| messages=3" \
    "oldest 2 h, --warn 7200 --crit 7300: WARNING, exit 1" --warn 7200 --crit 7300
set_arrival "$ID1" $((now - 2 * 86400 - 3 * 3600))
OLDEST=$((now - 2 * 86400 - 3 * 3600))
check 2 "MXSEND CRITICAL - 3 messages queued, oldest 2d3h; last error: .+ \| messages=3" \
    "oldest 2 d 3 h: CRITICAL, exit 2 (default --crit 1d)"
check 0 "MXSEND OK - 3 messages queued, oldest 2d3h; last error: .+ \| messages=3" \
    "oldest 2 d 3 h, --warn 3d --crit 4d: OK" --warn 3d --crit 4d
mx --check-queue --warn 2h --crit 1h >"$T/c.out" 2>"$T/c.err"
is "$?,$(cat "$T/c.out"),$(wc -l <"$T/c.err")" "64,,1" "--crit shorter than --warn: exit 64, one line on stderr"
mx --check-queue --crit 1x >"$T/c.out" 2>"$T/c.err"
is "$?,$(cat "$T/c.out")" "64," "--crit 1x: exit 64"
expected_bp >"$T/bp.want"
mx -bp >"$T/bp.out" 2>&1
is_file "$T/bp.out" "$T/bp.want" "-bp shows the arrival time from the envelope"
# Without the old message the queue is young again.
rm -f "$T/q/$ID1.env" "$T/q/$ID1.msg"
OLDEST=
check 0 "MXSEND OK - 2 messages queued, oldest ([0-9]+m)?[0-9]+s; last error: .+ \| messages=2" \
    "the old message removed: OK again"

# A message whose envelope cannot be read is never delivered nor bounced:
# it must show, and monitoring must shout.
ID2=$(q_ids | head -n 1)
printf 'version 1\nid %s\ngarbage\n' "$ID2" >"$T/q/$ID2.env"
mx -bp >"$T/bp.out" 2>&1
like "$(grep "^$ID2" "$T/bp.out")" "^$ID2 +\\(envelope unreadable: bad envelope .*line 3: missing value\\)\$" \
    "-bp lists an unreadable envelope with the reason"
mx --queue-json >"$T/j.out" 2>&1
like "$(grep "\"$ID2\"" "$T/j.out")" "^\\{\"queue_id\":\"$ID2\",\"error\":\"bad envelope" \
    "--queue-json reports it with an error field"
out=$(mx --check-queue 2>&1)
is "$?:$out" "2:MXSEND CRITICAL - 1 message with an unreadable envelope (see mailq) | messages=2 unreadable=1" \
    "--check-queue: an unreadable envelope is CRITICAL"

# Numbers no real queue has (a crash, a full disk, a member of the group)
# make the envelope unreadable too: no overflow in a sum, no bogus total.
printf 'version 1\nid %s\nsender <>\narrival 9223372036854775807\n' "$ID2" >"$T/q/$ID2.env"
mx -bp >"$T/bp.out" 2>&1
is "$?" 0 "-bp with an arrival at LLONG_MAX: exit 0"
like "$(grep "^$ID2" "$T/bp.out")" "^$ID2 +\\(envelope unreadable: bad envelope .*line 4: bad arrival\\)\$" \
    "-bp lists an arrival past the bounds as unreadable"
printf 'version 1\nid %s\nsender <>\nsize 9007199254740991000\n' "$ID2" >"$T/q/$ID2.env"
mx -bp >"$T/bp.out" 2>&1
like "$(tail -n 1 "$T/bp.out")" "^-- [0-9]+ Kbytes in 2 Requests\\.\$" \
    "-bp: a huge size is refused, the total stays the other message's"
like "$(grep "^$ID2" "$T/bp.out")" "line 4: bad size\\)\$" "and the reason is given"
mx -q >/dev/null 2>&1
ok "[ -e \"$T/q/$ID2.msg\" ] && [ -e \"$T/q/$ID2.env\" ]" \
    "-q leaves the message with a corrupt envelope in the queue"

done_testing
