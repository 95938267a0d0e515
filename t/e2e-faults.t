#!/bin/bash
# e2e-faults.t - no fault loses or multiplies mail.  strace (-e inject=)
# makes one system call fail, or kills the process at it, at each point a
# clean run touches the queue, for a submission and for a -q run, and the
# promises are checked afterwards with runs without faults:
#
#   submission (sendmail -odq, 2 recipients): exit 0 => the message is
#     queued complete and a -q delivers it exactly once; a non-zero exit
#     => nothing is ever delivered and no message file is left; killed =>
#     nothing when the kill came before the commit's rename, else the
#     whole message exactly once (it was queued; nothing can undo that).
#   -q (one message: ok@ accepted, bad@ refused 550 so a bounce must be
#     made, later@ deferred 451 so the envelope must be rewritten): after
#     the faulty run and one clean -q, ok@ got the message once, or twice
#     when the fault hid a success (at most one extra copy per fault), the
#     bounce to the sender was delivered once (or twice), never lost, and
#     the queue holds the message with ok@ done, bad@ bounced, later@
#     pending, and nothing held.
#   Then: a full disk over four runs costs one duplicate, not four (the
#   message is held, and listed as held); and a submission whose directory
#   fsync and take-back unlink both fail leaves no message.
#
# Which faults (to keep the run time down): the points are the calls of a
# clean run, traced with strace -f -y, whose arguments name the queue
# directory or a file in it (N = the call's occurrence among all calls of
# that name, as when=N counts them).  At those points:
#   EIO     every call that reads, writes, locks or changes the queue:
#           openat, read, pread64, write, pwrite64, fsync, ftruncate,
#           flock, fchmod, fchown, rename, renameat, unlink, unlinkat,
#           mkdir (stat calls and directory reads are left out: a failure
#           there only hides a message from one run, as a failed openat
#           does; so is close: strace skips the call it fails, so the
#           descriptor would stay open with its lock, which Linux's close
#           never does);
#   ENOSPC  the calls a full disk fails: openat creating a file, write,
#           pwrite64, fsync, rename, renameat, mkdir; EDQUOT the writes;
#   SIGKILL every call that changes the queue (openat creating a file,
#           write, pwrite64, fsync, ftruncate, rename, renameat, unlink,
#           unlinkat, mkdir): a kill at a read leaves the same disk as a
#           kill at the next change, so these reach every state a crash
#           can leave.
#
# Addresses: 127.0.0.190 (the MX of dest.test and origin.test).
. t/lib.sh
need_tools
command -v strace >/dev/null || skip_all "no strace (make deps)"
strace -qq -o /dev/null true 2>/dev/null || skip_all "strace cannot trace here"
# LeakSanitizer stops the world with ptrace, which a traced process cannot.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"

MX=127.0.0.190
start_dns --mx-host=dest.test,mx.dest.test,10 \
    --mx-host=origin.test,mx.dest.test,10 --host-record=mx.dest.test,$MX
start_smtpd $MX --rcpt 'bad@dest.test=550 5.1.1 no such user' \
    --rcpt 'later@dest.test=451 4.2.0 try later'
write_conf

# ---- helpers ---------------------------------------------------------------

# points TRACE - "NAME N POS WHAT" for each call of TRACE (strace -f -y
# output of one process) that names the queue: N its occurrence among
# calls of NAME, POS its place in the whole trace, WHAT "creat" (openat
# with O_CREAT), "commit" (the rename of a tmp/ message to its final
# name) or "-"
points() {
	awk -v q="$T/q" '
	    /^[0-9]+ +(\+\+\+|---)/ { next }
	    {
		line = $0
		sub(/^[0-9]+ +/, "", line)
		name = line
		sub(/\(.*/, "", name)
		pos++
		n = ++occ[name]
		if (!index(line, q "/") && !index(line, q ">") &&
		    !index(line, q "\""))
			next
		what = "-"
		if (name == "openat" && index(line, "O_CREAT"))
			what = "creat"
		else if (name ~ /^rename/ && index(line, q "/tmp>") &&
		    line ~ /AT_FDCWD<[^>]*>, "[^"]*\/[0-9A-F]+\.msg"\)/)
			what = "commit"
		print name, n, pos, what
	    }' "$1"
}

# faults NAME WHAT - the faults injected at a point (see the head)
faults() {
	case $1 in
	openat)
		if [ "$2" = creat ]; then echo EIO ENOSPC EDQUOT KILL; else echo EIO; fi ;;
	write | pwrite64) echo EIO ENOSPC EDQUOT KILL ;;
	fsync | rename | renameat | mkdir) echo EIO ENOSPC KILL ;;
	ftruncate | unlink | unlinkat) echo EIO KILL ;;
	read | pread64 | flock | fchmod | fchown) echo EIO ;;
	esac
}

# inject NAME N FAULT CMD... - run CMD under strace, FAULT at call N of NAME
inject() {
	local name=$1 n=$2 f=$3 spec
	shift 3
	if [ "$f" = KILL ]; then
		spec="inject=$name:signal=KILL:when=$n"
	else
		spec="inject=$name:error=$f:when=$n"
	fi
	timeout -k 5 60 strace -f -qq -o /dev/null -e "$spec" "$@"
}

# reset_queue DIR - the queue as DIR holds it
reset_queue() {
	rm -rf "$T/q"
	cp -a "$1" "$T/q"
}

# rx_since N - the MX's transaction files after its first N
rx_since() { rx_files $MX | tail -n +$(($1 + 1)); }

# copies RCPT FILES... - in how many of FILES RCPT was accepted
copies() {
	local a=$1
	shift
	[ $# -gt 0 ] || { echo 0; return; }
	grep -lixF "RCPT TO:<$a>" "$@" | wc -l | tr -d ' '
}

# q_names - the names in the queue directory that are messages (final or
# held), with their sizes: "NAME SIZE"
q_names() {
	(cd "$T/q" && for f in *.msg *.hold; do
		[ -f "$f" ] && echo "$f $(stat -c %s "$f")"
	done) | sort
}

# ---- submission ------------------------------------------------------------

printf 'Subject: faults\nDate: Thu, 03 Dec 2026 10:00:00 +0000\nMessage-ID: <f1@origin.test>\n\nhello\nEND\n' >"$T/sub.in"
SUB=(-odq -f s@origin.test sub1@dest.test sub2@dest.test)

mx -q >/dev/null 2>&1		# makes the queue: q0 is it, empty
cp -a "$T/q" "$T/q0"
strace -f -y -qq -o "$T/sub.trace" "$SENDMAIL" -C "$T/conf" "${SUB[@]}" <"$T/sub.in"
is "$?" 0 "submission: a traced clean run exits 0"
points "$T/sub.trace" >"$T/sub.points"
commit=$(awk '$4 == "commit" { print $3 }' "$T/sub.points")
ok '[ -n "$commit" ]' "submission: the trace shows the commit's rename"
n0=$(rx_count $MX)
mx -q 2>"$T/q.err"
f=$(rx_since "$n0")
ok '[ -n "$f" ] && [ $(echo "$f" | wc -l) = 1 ]' "submission: the clean message is delivered once"
rx_data "$f" | no_rcvd >"$T/sub.want"
diag "submission: $(wc -l <"$T/sub.points") calls touch the queue; the commit is call $commit"

bad= nsc=0 nexit0=0 nfail=0 nkill=0
while read -r name n pos what; do
	for f in $(faults "$name" "$what"); do
		nsc=$((nsc + 1))
		reset_queue "$T/q0"
		n0=$(rx_count $MX)
		inject "$name" "$n" "$f" "$SENDMAIL" -C "$T/conf" "${SUB[@]}" \
		    <"$T/sub.in" >/dev/null 2>"$T/inj.err"
		rc=$?
		qn=$(q_names)
		mx -q >/dev/null 2>&1
		got=$(rx_since "$n0")
		ngot=$(echo $got | wc -w)
		left=$(q_names)
		why=
		if [ $rc = 0 ]; then
			nexit0=$((nexit0 + 1))
			want=1
			[ $(echo "$qn" | grep -c '\.msg ') = 1 ] ||
			    why="exit 0 but the queue holds: $qn"
		elif [ $rc = 137 ] && [ "$f" = KILL ]; then
			nkill=$((nkill + 1))
			want=$([ "$pos" -gt "$commit" ] && echo 1 || echo 0)
		else
			nfail=$((nfail + 1))
			want=0
		fi
		if [ -z "$why" ] && [ "$ngot" != "$want" ]; then
			why="exit $rc, $ngot deliveries (want $want)"
		elif [ -z "$why" ] && [ "$want" = 1 ]; then
			[ "$(rx_data $got | no_rcvd | cmp - "$T/sub.want" && echo same)" = same ] &&
			    [ "$(copies sub1@dest.test $got)$(copies sub2@dest.test $got)" = 11 ] ||
			    why="exit $rc, the delivered message differs"
		fi
		[ -z "$why" ] && [ -n "$left" ] && why="exit $rc, left after -q: $left"
		[ -n "$why" ] && bad="$bad
  $name when=$n $f: $why ($(head -n 1 "$T/inj.err"))"
	done
done <"$T/sub.points"
diag "submission: $nsc faults: $nexit0 exited 0, $nfail failed, $nkill killed"
is "$bad" "" "submission: exit 0 => delivered once; failed => never; killed => never before the commit, once after"

# ---- -q ----------------------------------------------------------------------

reset_queue "$T/q0"
printf 'Subject: q faults\n\nhello\n' |
    mx -odq -f s@origin.test ok@dest.test bad@dest.test later@dest.test
ID=$(q_ids)
cp -a "$T/q" "$T/q1"
strace -f -y -qq -o "$T/q.trace" "$SENDMAIL" -C "$T/conf" -q
is "$?" 0 "-q: a traced clean run exits 0"
points "$T/q.trace" >"$T/q.points"
diag "-q: $(wc -l <"$T/q.points") calls touch the queue"

# after_q TAG - the promises after a faulty -q and one clean run; $n0 is
# the MX's count before the faulty one; appends to $bad.  The clean run
# is -qR@: every message with a pending recipient, due or not (a fault
# in a transaction defers its recipients by retry_intervals).
after_q() {
	local got ok b wrong st files
	mx -qR@ >/dev/null 2>&1
	got=$(rx_since "$n0")
	# One awk for the counts (this runs a hundred times).
	# shellcheck disable=SC2086
	read -r ok b wrong < <(awk '
	    tolower($0) == "rcpt to:<ok@dest.test>" { ok++ }
	    tolower($0) == "rcpt to:<s@origin.test>" { b++ }
	    tolower($0) ~ /^rcpt to:<(bad|later)@dest.test>$/ { w++ }
	    END { print ok + 0, b + 0, w + 0 }' /dev/null $got)
	st=$(awk '$1 == "rcpt" { printf "%s=%s ", $5, $2 }' "$T/q/$ID.env" 2>&1)
	files=$(cd "$T/q" && echo *.msg *.hold)
	if [ "$ok" -lt 1 ] || [ "$ok" -gt 2 ] || [ "$b" -lt 1 ] ||
	    [ "$b" -gt 2 ] || [ "$wrong" != 0 ] || [ "$files" != "$ID.msg *.hold" ] ||
	    [ "$st" != "ok@dest.test=done bad@dest.test=bounced later@dest.test=pending " ]
	then
		bad="$bad
  $1: ok@ $ok copies, bounce $b, refused/deferred $wrong, queue [$files], envelope [$st]"
	fi
}

bad= nsc=0
while read -r name n pos what; do
	for f in $(faults "$name" "$what"); do
		nsc=$((nsc + 1))
		reset_queue "$T/q1"
		n0=$(rx_count $MX)
		inject "$name" "$n" "$f" "$SENDMAIL" -C "$T/conf" -q \
		    >/dev/null 2>&1
		after_q "$name when=$n $f"
	done
done <"$T/q.points"
diag "-q: $nsc faults"
is "$bad" "" "-q: after any one fault and a clean run: ok@ once or twice, the bounce once or twice, never lost"

# ---- a full disk over several runs ------------------------------------------

# Every renameat fails with ENOSPC: no envelope can be written and no
# report queued.  The first run delivers to ok@ and cannot record it.
reset_queue "$T/q1"
n0=$(rx_count $MX)
for i in 1 2 3 4; do
	timeout -k 5 60 strace -f -qq -o /dev/null -e inject=renameat:error=ENOSPC \
	    "$SENDMAIL" -C "$T/conf" -q >/dev/null 2>>"$T/full.err"
done
# shellcheck disable=SC2046
is "$(copies ok@dest.test $(rx_since "$n0"))" 1 \
    "full disk, 4 runs: ok@ got the message once (it is held, not resent)"
is "$(q_names)" "$ID.hold $(stat -c %s "$T/q1/$ID.msg")" \
    "  the message is held ($ID.hold)"
mx -bp >"$T/bp" 2>&1
like "$(sed -n 2,3p "$T/bp" | tr '\n' '|')" "^$ID +[0-9]+ .* s@origin.test\|\(held: the last attempt could not be recorded\)\|\$" \
    "  mailq lists it as held"
like "$(mx --queue-json)" "^\\{\"queue_id\":\"$ID\",\"held\":\"held: the last attempt could not be recorded\"," \
    "  --queue-json says it is held"
out=$(mx --check-queue)
rc=$?
is "$rc" 1 "  --check-queue: WARNING"
like "$out" "^MXSEND WARNING - 1 message queued, oldest [0-9a-z]+; 1 held: the last attempt could not be recorded \| messages=1 oldest=[0-9]+s held=1\$" \
    "  --check-queue says why"
bad=
after_q "full disk, then a clean run"
is "$bad" "" "full disk, then a clean run: released, ok@ got one more copy, the bounce went out"
# shellcheck disable=SC2046
is "$(copies ok@dest.test $(rx_since "$n0"))" 2 "  ok@: 2 copies in all, not 5"

# ---- a double fault at submission -------------------------------------------

# The directory fsync after the commit fails, and so does the unlink that
# takes the message back: it is emptied first, so it is never delivered.
dirsync=$(awk '$1 == "fsync" { n = $2 } END { print n }' "$T/sub.points")
reset_queue "$T/q0"
n0=$(rx_count $MX)
timeout -k 5 60 strace -f -qq -o /dev/null -e "inject=fsync:error=EIO:when=$dirsync" \
    -e inject=unlink:error=EIO:when=1 \
    "$SENDMAIL" -C "$T/conf" "${SUB[@]}" <"$T/sub.in" 2>"$T/dbl.err"
is "$?" 74 "double fault: exit 74"
is "$(cat "$T/dbl.err")" "sendmail: cannot queue the message: cannot sync queue directory: Input/output error" \
    "  the error says why"
like "$(q_names)" '^[0-9A-F]+\.msg 0$' "  the message file is left, empty"
is "$(mx -bp)" "Mail queue is empty" "  mailq does not list it"
mx -q >/dev/null 2>&1
is "$(rx_count $MX)" "$n0" "  -q delivers nothing"
find "$T/q" -maxdepth 1 -name '*.msg' -exec touch -d '2 hours ago' {} +
mx -q >/dev/null 2>&1
is "$(q_names)" "" "  the sweep removes it once stale"

done_testing
