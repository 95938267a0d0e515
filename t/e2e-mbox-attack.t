#!/bin/bash
# e2e-mbox-attack.t - attacks on the mailbox locks of the setgid install
# (local.c): a dotlock planted in /var/mail, dated 2099 and owned by
# nobody, does not hold up root's queue run; a file size limit (ulimit -f)
# on root's run or on a user's run to their own mailbox leaves the mailbox
# byte-identical and the message queued.  Needs root.
# Addresses 127.0.0.213-219, unused (delivery here is local only).
# The namespace is t/setgid-ns.sh's.

. t/setgid-ns.sh
. t/lib.sh
setgid_ns_setup

: >"$T/aliases"
chmod 644 "$T/aliases"
CONF=/etc/mxsend.conf write_conf "queue_dir $Q" "aliases $T/aliases" \
    "local_delivery mbox /var/mail"
CONF=$T/conf		# lib.sh's q_* and mx are not used here

# subjects MBOX - the Subject of every message Python's mailbox finds
subjects() {
	"$PY" -c 'import mailbox, sys
print(" ".join(m["Subject"] for m in mailbox.mbox(sys.argv[1])))' "$1"
}
# big N SUBJECT - a message of N lines of 60 octets
big() {
	printf 'Subject: %s\n\n' "$2"
	yes 'a line of the body of a large message, long enough to count' |
	    head -n "$1"
}
locks() { find "$T/mail" -name '*.lock' | wc -l | tr -d ' '; }
rcpt_error() {	# ID - the error of the message's recipient, in words
	local a
	a=$(qenv "$1" | awk '$1 == "rcpt" { print $5; exit }')
	qenv "$1" | "$TOP/t/resulttest" env - "$a"
}

# --- a dotlock dated 2099, owned by nobody, in front of daemon's mailbox ----------
install -o daemon -g mail -m 660 /dev/null "$T/mail/daemon"
printf 'Subject: m0\n\nbody\n' | asroot "$SM" -odi daemon 2>"$T/m0.err"
is "$(subjects "$T/mail/daemon")" "m0" "daemon's mbox holds m0" || diag_file "$T/m0.err"
touch -d 2099-01-01 "$T/mail/daemon.lock"
chown nobody:nogroup "$T/mail/daemon.lock"
is "$(stat -c '%U %y' "$T/mail/daemon.lock" | cut -c1-11)" "nobody 2099" \
    "planted: daemon.lock, nobody's, dated 2099"
printf 'Subject: m1\n\nbody\n' | asnobody "$SM" -odq daemon 2>"$T/m1.err"
is "$?:$(qcount)" "0:1" "nobody queues m1 for daemon" || diag_file "$T/m1.err"
asroot "$SM" -q 2>"$T/q1.err"
is "$?" 0 "root's -q: exit 0" || diag_file "$T/q1.err"
is "$(qcount)" 0 "root's -q delivered m1 in spite of the planted lock"
is "$(subjects "$T/mail/daemon")" "m0 m1" "Python's mailbox: exactly m0 and m1"
is "$(locks)" 0 "no lock file is left in /var/mail"
is "$(perms "$T/mail/daemon")" "daemon:mail 660" "the mbox keeps owner and mode"

# --- ulimit -f on root's run: the mailbox byte-identical, the message queued -------
big 3000 m2 | asnobody "$SM" -odq daemon 2>"$T/m2.err"
ID2=$(qids)
is "$(qcount)" 1 "nobody queues m2 (180 kB) for daemon" || diag_file "$T/m2.err"
cp "$T/mail/daemon" "$T/daemon.before"
sleep 1.1	# retry_intervals 1s
asroot bash -c 'ulimit -f 64; exec "$0" -q' "$SM" 2>"$T/q2.err"
rc=$?
ok 'cmp -s "$T/mail/daemon" "$T/daemon.before"' \
    "root's -q under ulimit -f 64: daemon's mbox byte-identical (exit $rc)"
is "$(qids)" "$ID2" "m2 is still queued"
is "$(qenv "$ID2" | awk '$1 == "rcpt" { print $2 }')" pending "its recipient is pending"
like "$(rcpt_error "$ID2")" 'cannot write mailbox: File too large' \
    "with the reason: File too large (EFBIG, not a kill by SIGXFSZ)"
is "$(locks)" 0 "no lock file is left"
sleep 1.1
asroot "$SM" -q 2>"$T/q3.err"
is "$(qcount)" 0 "root's -q without the limit delivers m2"
is "$(subjects "$T/mail/daemon")" "m0 m1 m2" "Python's mailbox: exactly m0, m1, m2"

# --- ulimit -f on nobody's run to nobody's own mailbox ------------------------------
big 1000 n0 | asnobody "$SM" -odi nobody 2>"$T/n0.err"
is "$(subjects "$T/mail/nobody")" "n0" "nobody -odi: nobody's own mbox, created, holds n0 (60 kB)" ||
    diag_file "$T/n0.err"
cp "$T/mail/nobody" "$T/nobody.before"
big 200 n1 | asnobody bash -c 'ulimit -f 64; exec "$0" -odi nobody' "$SM" 2>"$T/n1.err"
rc=$?
ok 'cmp -s "$T/mail/nobody" "$T/nobody.before"' \
    "nobody -odi under ulimit -f 64: its mbox byte-identical (exit $rc)"
ID3=$(qids)
is "$(qcount)" 1 "n1 is still queued"
like "$(rcpt_error "$ID3")" 'cannot write mailbox: File too large' \
    "with the reason: File too large"
is "$(locks)" 0 "no lock file is left"
sleep 1.1
asroot "$SM" -q 2>"$T/q4.err"
is "$(qcount)" 0 "root's -q delivers n1"
is "$(subjects "$T/mail/nobody")" "n0 n1" "Python's mailbox: exactly n0 and n1"

setgid_ns_done
