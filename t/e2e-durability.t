#!/bin/bash
# e2e-durability.t - submissions killed with SIGKILL at random moments never
# leave a partial message under a final name, and every submission that
# exited 0 is in the queue, complete.  No servers: -odq only.
. t/lib.sh
need_tools

N=${DURABILITY_N:-200}
write_conf "dns_server 127.0.0.1:9"

# A body of ~64 KB so that a kill often lands in the middle of writing it;
# each message ends with a marker naming it.
for i in $(seq 1 1200); do
	printf 'line %04d of a body long enough to take a while to write out\n' "$i"
done >"$T/body"
to_crlf <"$T/body" >"$T/body.crlf"

# Calibrate: kill delays spread over 0 .. 1.5 x the time of a whole
# submission on this machine (a sanitizer build or a loaded CI machine is
# many times slower than a quiet one).
{ printf 'Subject: durability 0\n\n'; cat "$T/body"; printf 'END-OF-MESSAGE-0\n'; } >"$T/in"
times=
for i in 1 2 3 4 5; do
	t0=$(date +%s%N)
	"$SENDMAIL" -C "$T/conf" -odq -f s@origin.test r@dest.test <"$T/in" 2>>"$T/sub.err"
	times="$times $(( ($(date +%s%N) - t0) / 1000 ))"
done
rm -rf "$T/q"
span=$(printf '%s\n' $times | sort -n | sed -n 3p)
span=$(( span * 3 / 2 ))
diag "a submission takes about $((span * 2 / 3)) us; kills land within 0..$span us"

acked=
killed=0 other=
for k in $(seq 1 "$N"); do
	{ printf 'Subject: durability %d\n\n' "$k"; cat "$T/body"; printf 'END-OF-MESSAGE-%d\n' "$k"; } >"$T/in"
	"$SENDMAIL" -C "$T/conf" -odq -f s@origin.test r@dest.test <"$T/in" 2>>"$T/sub.err" &
	pid=$!
	# One in four is killed at once (before it could finish, whatever
	# the machine's speed); the rest at a random point of a submission.
	if [ $((k % 4)) != 0 ]; then
		d=$(( ( (RANDOM << 15) | RANDOM ) % (span + 1) ))
		sleep "$(printf '%d.%06d' $((d / 1000000)) $((d % 1000000)))"
	fi
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	rc=$?
	case $rc in
	0) acked="$acked $k" ;;
	137) killed=$((killed + 1)) ;;
	*) other="$other $k:$rc" ;;
	esac
done
nacked=$(echo $acked | wc -w)
diag "$N submissions: $nacked exited 0, $killed killed, others:${other:- none}"
is "$other" "" "every submission either exited 0 or was killed"
ok '[ "$nacked" -gt 0 ] && [ "$killed" -gt 0 ]' "the kills landed both before and after completion"

# Look at every file of the queue at once (t/lib.sh would fork per file):
# prints "bad ID:why" or "have K ID".  A final-named ID.msg must hold the
# whole message, then its envelope (whose size is the message's), then the
# footer that says where the envelope starts (queue.c).
"$PY" - "$T/q" "$T/body.crlf" >"$T/check" <<'PY'
import os, re, sys
q, body = sys.argv[1], open(sys.argv[2], "rb").read()
def complete(data):
    m = re.match(rb"(?s).*?^Subject: durability (\d+)\r\n.*?\r\n\r\n(.*)\Z", data, re.M)
    if not m:
        return None
    k = m.group(1).decode()
    return k if m.group(2) == body + b"END-OF-MESSAGE-%s\r\n" % k.encode() else None
for f in sorted(os.listdir(q)):
    path = os.path.join(q, f)
    if f == "tmp" and os.path.isdir(path):
        continue
    id, dot, ext = f.rpartition(".")
    if ext != "msg" or not os.path.isfile(path):
        print("bad %s:unexpected-file" % f)
        continue
    data = open(path, "rb").read()
    m = re.fullmatch(rb"mxsend-env (\d{20})\n", data[-32:])
    if not m:
        print("bad %s:no-footer" % id)
        continue
    off = int(m.group(1))
    k = complete(data[:off])
    env = data[off:-32].decode("ascii", "replace")
    if k is None:
        print("bad %s:incomplete" % id)
    elif not re.search(r"^size %d$" % off, env, re.M) or \
            not re.search(r"^id %s$" % id, env, re.M) or \
            not env.endswith("rcpt pending 0 0 r@dest.test\n"):
        print("bad %s:envelope" % id)
    else:
        print("have %s %s" % (k, id))
PY
is "$(grep '^bad' "$T/check" | tr '\n' ' ')" "" \
    "every final-named file is complete; each envelope's size matches its message"

# Every acknowledged submission is there, exactly once.
declare -A have
while read -r what k id; do
	[ "$what" = have ] && have[$k]="${have[$k]:-}$id "
done <"$T/check"
missing=
for k in $acked; do
	set -- ${have[$k]:-}
	[ $# = 1 ] || missing="$missing $k"
done
is "$missing" "" "every submission that exited 0 is in the queue exactly once"

# mailq lists every committed message.
mx -bp >"$T/bp" 2>"$T/bp.err"
is "$?" 0 "-bp: exit 0 over the whole queue"
bp=$(cat "$T/bp")
unlisted=
for id in $(q_ids); do
	[[ $bp == *"$id"* ]] || unlisted="$unlisted $id"
done
is "$unlisted" "" "-bp lists every committed message ($(q_count))"

done_testing
