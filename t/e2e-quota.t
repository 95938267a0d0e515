#!/bin/bash
# e2e-quota.t - what one local user can do to the queue through the setgid
# install (submit.c, submit_admit): user_queue_messages, user_queue_size
# (octets, or a share of the file system), the queue_min_free reserve only
# root may use, and the default max_message_size; each refusal is one line
# with its own exit code (73, 75, 65), or a 452 in -bs, and leaves what is
# queued alone.  Needs root.
# Addresses 127.0.0.180-189.
# The namespace is t/setgid-ns.sh's.

. t/setgid-ns.sh
. t/lib.sh
setgid_ns_setup
R=127.0.0.180		# mx.remote.test: takes everything

setgid_ns_remote $R
: >"$T/aliases"
chmod 644 "$T/aliases"
CONF=/etc/mxsend.conf write_conf "queue_dir $Q" "aliases $T/aliases" \
    "user_queue_messages 5"
CONF=$T/conf		# lib.sh's q_* and mx are not used here

asbin() { timeout -k 5 60 setpriv --reuid=bin --regid=bin --clear-groups "$@"; }
# sums - a checksum of every committed message file, to show it untouched
sums() { (cd "$Q" && sha256sum -- *.msg 2>/dev/null); }
# kept N NAME SUMS NAME2 - N messages queued, tmp/ empty (test NAME); the
# committed files byte-identical to when SUMS was taken (test NAME2)
kept() {
	is "$(qcount) $(ls -A "$Q/tmp")" "$1 " "$2"
	sums >"$T/sums.now"
	is_file "$T/sums.now" "$3" "$4"
}
# submit WHO N SUBJECT - WHO submits a message -odq; its exit code
submit() {
	printf 'Subject: %s\n\nbody\n' "$3" | "$1" "$SM" -odq "u$2@remote.test" \
	    >>"$T/sub.out" 2>"$T/sub.err"
	echo $?
}

# --- user_queue_messages: nobody's sixth message is refused with 73 -------------------
codes=
for i in 1 2 3 4 5; do
	codes="$codes$(submit asnobody $i n$i) "
done
is "$codes" "0 0 0 0 0 " "nobody: five messages queued (user_queue_messages 5)"
sums >"$T/sums.1"
is "$(submit asnobody 6 n6):$(cat "$T/sub.err")" \
    "73:sendmail: queue quota of uid 65534 reached: 5 messages queued, the limit is 5 (user_queue_messages)" \
    "nobody's sixth: exit 73 (EX_CANTCREAT) and one line naming the limit and its key"
kept 5 "nothing more queued, tmp/ empty" \
    "$T/sums.1" "nobody's five queued messages: byte-identical"
is "$(submit asdaemon 7 d1):$(cat "$T/sub.err")" "0:" "daemon still submits (its own quota)"
is "$(submit asroot 8 r1):$(cat "$T/sub.err")" "0:" "root still submits (no quota)"
is "$(qcount)" 7 "seven messages queued"
is "$(for id in $(qids); do stat -c %U "$Q/$id.msg"; done | sort | uniq -c | awk '{print $2 "=" $1}' | tr '\n' ' ')" \
    "daemon=1 nobody=5 root=1 " "the queue files carry their submitters' uids"
is "$(for id in $(qids); do head -n 1 "$Q/$id.msg"; done | sort | uniq -c | awk '{print $1, $7, $8}' | tr -d '\r' | tr '\n' ' ')" \
    "1 userid 0) 1 userid 1) 5 userid 65534) " \
    "each message's Received: names its submitter's real uid (not the group's)"

# --- -bs: one session of ten messages, 452 at MAIL once the quota is reached -----------
cat >"$T/bs.py" <<'PY'
import subprocess, sys
p = subprocess.Popen(sys.argv[1:], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
def reply():
    out = []
    while True:
        l = p.stdout.readline().decode()
        out.append(l.rstrip("\r\n"))
        if len(l) < 4 or l[3] != "-":
            return out
def cmd(c):
    p.stdin.write(c.encode() + b"\r\n")
    p.stdin.flush()
    r = reply()
    print(r[-1])
    return r[-1]
reply()
cmd("EHLO client.test")
for i in range(1, 11):
    if not cmd("MAIL FROM:<bin@test.example>").startswith("250"):
        continue
    cmd("RCPT TO:<b%d@remote.test>" % i)
    cmd("DATA")
    cmd("Subject: bs%d\r\n\r\nbody %d\r\n." % (i, i))
cmd("QUIT")
p.stdin.close()
print("exit %d" % p.wait())
PY
sums >"$T/sums.3"
asbin "$PY" "$T/bs.py" "$SM" -bs -odq >"$T/bs.out" 2>"$T/bs.err"
sed 's/queued as [0-9A-F]*$/queued as ID/' "$T/bs.out" >"$T/bs.got"
{
	echo "250 HELP"
	for i in 1 2 3 4 5; do
		printf '%s\n' "250 2.1.0 Ok" "250 2.1.5 Ok" \
		    "354 End data with <CR><LF>.<CR><LF>" "250 2.0.0 Ok: queued as ID"
	done
	for i in 6 7 8 9 10; do
		echo "452 4.3.1 Error: queue quota of uid 2 reached: 5 messages queued, the limit is 5 (user_queue_messages)"
	done
	echo "221 2.0.0 Bye"
	echo "exit 0"
} >"$T/bs.want"
is_file "$T/bs.got" "$T/bs.want" \
    "bin's -bs session of ten messages: five queued, then 452 4.3.1 at MAIL, and the session goes on" ||
    diag_file "$T/bs.err"
is "$(qcount)" 12 "twelve messages queued"
sums | grep -vxFf "$T/sums.3" | wc -l >"$T/n.new"
is "$(sums | grep -cxFf "$T/sums.3") $(cat "$T/n.new")" "7 5" \
    "the seven queued before are byte-identical, five new ones"
is "$(for id in $(qids); do sed -n 's/^Subject: \(bs[0-9]*\)\r$/\1/p' "$Q/$id.msg"; done | sort -V | tr '\n' ' ')" \
    "bs1 bs2 bs3 bs4 bs5 " "the queued ones are the first five of the session"

# --- user_queue_size in octets: checked again with the message's own size -------------
rm -f "$Q"/*.msg "$Q"/*.env
CONF=/etc/mxsend.conf write_conf "queue_dir $Q" "aliases $T/aliases" \
    "user_queue_size 3000"
big() { head -c "$1" /dev/zero | tr '\0' 'x' | fold -w 70; }
{ printf 'Subject: big1\n\n'; big 2000; } | asnobody "$SM" -odq u@remote.test 2>"$T/b1.err"
is "$?" 0 "user_queue_size 3000: nobody's first 2 kB message is queued"
SZ=$(stat -c %s "$Q/$(qids).msg")
sums >"$T/sums.4"
{ printf 'Subject: big2\n\n'; big 2000; } | asnobody "$SM" -odq u@remote.test 2>"$T/b2.err"
is "$?" 73 "the second would pass it: exit 73"
like "$(cat "$T/b2.err")" \
    "^sendmail: queue quota of uid 65534 reached: $SZ octets queued, this message's 2[0-9]{3} would pass the limit of 3000 \\(user_queue_size\\)\$" \
    "one line: what is queued, the message's size, the limit and its key"
kept 1 "its file is gone from tmp/, nothing more queued" \
    "$T/sums.4" "the queued message is byte-identical"
printf 'Subject: small\n\nbody\n' | asnobody "$SM" -odq u@remote.test 2>"$T/b3.err"
is "$?:$(cat "$T/b3.err")" "0:" "a small one still fits"
printf '%s\n' "EHLO c.test" "MAIL FROM:<nobody@test.example> SIZE=5000" \
    "MAIL FROM:<nobody@test.example>" "RCPT TO:<u@remote.test>" "DATA" \
    "Subject: bsbig\r\n\r\n$(big 2000 | sed 's/$/\\r\\n/' | tr -d '\n')." "QUIT" |
    asnobody "$PY" -S "$TOP/t/bsclient.py" --step -- "$SM" -bs -odq >"$T/bsq.out" 2>&1
like "$(grep -c '' "$T/bsq.out") $(sed -n 's/^\(452 .*\)$/\1/p' "$T/bsq.out" | tr '\n' '|')" \
    "^[0-9]+ 452 4\\.3\\.1 Error: queue quota of uid 65534 reached: [0-9]+ octets queued, this message's 5000 would pass the limit of 3000 \\(user_queue_size\\)\\|452 4\\.3\\.1 Error: queue quota of uid 65534 reached: [0-9]+ octets queued, this message's 2[0-9]{3} would pass the limit of 3000 \\(user_queue_size\\)\\|\$" \
    "-bs: 452 4.3.1 at MAIL for SIZE=5000, and at the end of data for a message that would pass it" ||
    diag_file "$T/bsq.out"
ok 'grep -q "^221 " "$T/bsq.out"' "the session went on to QUIT"
is "$(qcount) $(ls -A "$Q/tmp")" "2 " "nothing of it queued"

# --- max_message_size: 10240000 by default, for root too ----------------------------------
{ printf 'Subject: huge\n\n'; big 10300000; } | asroot "$SM" -odq u@remote.test 2>"$T/h.err"
is "$?:$(cat "$T/h.err")" "65:sendmail: message is larger than max_message_size (10240000 octets)" \
    "a message over 10240000 octets: exit 65, by default"
is "$(qcount) $(ls -A "$Q/tmp")" "2 " "nothing of it queued"

# --- a small file system: the reserve, the percentage default, a message that does
# --- not fit (a tmpfs on the queue, private to this namespace) -----------------------------
rm -f "$Q"/*.msg "$Q"/*.env
mount -t tmpfs -o size=4m,mode=2770,gid="$(getent group mail | cut -d: -f3)" mxsend-q "$Q" ||
    { echo "Bail out! cannot mount a tmpfs on $Q"; exit 255; }
install -d -o root -g mail -m 2770 "$Q/tmp"
is "$(perms "$Q" "$Q/tmp")" "root:mail 2770 root:mail 2770" "the small queue: root:mail 2770, with tmp/"
CONF=/etc/mxsend.conf write_conf "queue_dir $Q" "aliases $T/aliases" \
    "max_message_size 1M"
TOTAL=$(stat -f -c '%b * %S' "$Q" | bc)
PCT=$(( TOTAL / 100 * 25 + TOTAL % 100 * 25 / 100 ))
codes=
for i in 1 2 3; do
	{ printf 'Subject: d%s\n\n' $i; big 300000; } | asdaemon "$SM" -odq u@remote.test 2>>"$T/d.err"
	codes="$codes$? "
done
is "$codes" "0 0 0 " "daemon: three messages of 300 kB on a 4 MB queue"
DB=$(stat -c %s "$Q"/*.msg | paste -sd+ | bc)
{ printf 'Subject: d4\n\n'; big 300000; } | asdaemon "$SM" -odq u@remote.test 2>"$T/d4.err"
is "$?:$(cat "$T/d4.err" | sed 's/this message.s [0-9]*/this message'"'"'s N/')" \
    "73:sendmail: queue quota of uid 1 reached: $DB octets queued, this message's N would pass the limit of $PCT (user_queue_size 25%)" \
    "the fourth: exit 73, a quarter of the file system by default (user_queue_size 25%)"
codes=
for i in 1 2; do
	{ printf 'Subject: r%s\n\n' $i; big 1000000; } | asroot "$SM" -odq u@remote.test 2>>"$T/r.err"
	codes="$codes$? "
done
is "$codes" "0 0 " "root: two messages of 1 MB"
sums >"$T/sums.6"
printf 'Subject: n\n\nbody\n' | asnobody "$SM" -odq u@remote.test 2>"$T/n.err"
is "$?" 75 "nobody, under 2 MB free (queue_min_free: twice max_message_size): exit 75"
like "$(cat "$T/n.err")" \
    "^sendmail: queue file system nearly full: [0-9]+ octets free, 2097152 are kept for root \\(queue_min_free\\)\$" \
    "one line: what is free, the reserve and its key"
printf 'Subject: r3\n\nbody\n' | asroot "$SM" -odq u@remote.test 2>"$T/r3.err"
is "$?:$(cat "$T/r3.err")" "0:" "root still submits"
{ printf 'Subject: r4\n\n'; big 1000000; } | asroot "$SM" -odq u@remote.test 2>"$T/r4.err"
is "$?" 0 "root: a third message of 1 MB"
N=$(qcount)
sums >"$T/sums.7"
{ printf 'Subject: r5\n\n'; big 1000000; } | asroot "$SM" -odq u@remote.test 2>"$T/r5.err"
is "$?:$(cat "$T/r5.err")" "75:sendmail: cannot write queue file: No space left on device" \
    "root, a message that does not fit at all: exit 75"
kept "$N" "nothing half-written: tmp/ empty, no new message" \
    "$T/sums.7" "the queued messages are byte-identical"
umount "$Q"

setgid_ns_done
