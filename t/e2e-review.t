#!/bin/bash
# e2e-review.t - what a local user must not get out of the setgid install:
#   - root's queue run expands the aliases a submitter could not read
#     (submit.c, submit_expand_queued); an :include: file whose path the
#     submitter controls, swapped after queueing for a symbolic link, a
#     FIFO, or a path through a symbolic link to a file only root may
#     read, yields the submitter a bounce that names the alias only,
#     never a line of that file (aliases.c opens O_NOFOLLOW|O_NONBLOCK,
#     regular files with one link; the details are in root's log);
#   - such a recipient, when root's run cannot load the aliases at all,
#     still expires at queue_lifetime with a bounce;
#   - concurrent submissions of one user count each other's messages
#     being written (queue.c, queue_usage), so user_queue_messages holds;
#   - SIZE= at MAIL in -bs is bounded (552 5.3.4 past 2^50 octets) and
#     the quota arithmetic cannot overflow.
# Needs root.  Addresses 127.0.0.240-249 (240 used).
# The namespace is t/setgid-ns.sh's.

. t/setgid-ns.sh
. t/lib.sh
setgid_ns_setup
R=127.0.0.240		# mx.remote.test: takes everything

setgid_ns_remote $R
MB=/var/mail/nobody
GENERIC="the postmaster has the details in the log"
H=$T/home/nobody
mkdir -m 755 "$T/home" "$H"
chown nobody "$H"
A=$T/aliases
printf 'friends: :include:%s/friends\nfifo: :include:%s/fifo\ndeep: :include:%s/d/friends\n' \
    "$H" "$H" "$H" >"$A"
chmod 644 "$A"
printf 'root:$y$j9T$TOPSECRETHASHxyz:19000:0:99999:7:::\n' >"$T/secret"
chmod 600 "$T/secret"
mkdir -m 700 "$T/sdir"
cp "$T/secret" "$T/sdir/friends"
install -o nobody -g mail -m 660 /dev/null "$MB"
CONF=/etc/mxsend.conf write_conf "queue_dir $Q" "aliases $A" "local_delivery mbox /var/mail"
CONF=$T/conf		# lib.sh's q_* and mx are not used here

# submit_marked FILE ALIAS - nobody's own list FILE (under $H) of ALIAS,
# unreadable to itself: ALIAS is queued unexpanded; sets ID
submit_marked() {
	: >"$MB"
	asnobody sh -c "mkdir -p $H/d; rm -f $H/$1; echo friend@remote.test > $H/$1; chmod 000 $H/$1"
	printf 'Subject: %s\n\nbody\n' "$2" | asnobody "$SM" -odq "$2" 2>"$T/s.err"
	is "$?:$(cat "$T/s.err")" "0:" "nobody -odq $2: exit 0"
	ID=$(qids)
	is "$(qenv "$ID" | sed -n '/^rcpt /,$p')" "rcpt pending 0 0 $2@test.example
unexpanded 1" "$2: queued as written, marked unexpanded"
}

# root_run ALIAS WHY - root's -q after the swap: the detail in the log, the
# generic bounce in nobody's mailbox, nothing of the secret, queue empty
root_run() {
	asroot "$SM" -q -v >"$T/q.out" 2>"$T/q.err"
	is "$?" 0 "$1: root's -q: exit 0"
	is "$(grep -F "$ID: <$1@test.example>: aliases expanded as root:" "$T/q.err" |
	    sed "s|$T|@T@|g")" "sendmail: $ID: <$1@test.example>: aliases expanded as root: $2" \
	    "$1: root's log has the reason" || diag_file "$T/q.err"
	is "$(grep -a '^Diagnostic-Code:' "$MB")" \
	    "Diagnostic-Code: X-mxsend; alias $1 cannot be expanded; $GENERIC" \
	    "$1: the bounce names the alias only" || diag_file "$MB"
	ok '! grep -aq -e TOPSECRET -e "$T" "$MB"' "$1: the bounce quotes no line and no path"
	is "$(qcount)" 0 "$1: the queue is empty"
}

# --- :include: swapped for a symbolic link to a file only root may read --------
submit_marked friends friends
asnobody sh -c "rm -f $H/friends; ln -s $T/secret $H/friends"
root_run friends 'alias friends: cannot read :include: file @T@/home/nobody/friends: a symbolic link (@T@/aliases:1)'

# --- swapped for a FIFO: root's run does not hang on it ---------------------------
submit_marked fifo fifo
asnobody sh -c "rm -f $H/fifo; mkfifo -m 666 $H/fifo"
root_run fifo 'alias fifo: cannot read :include: file @T@/home/nobody/fifo: not a regular file (@T@/aliases:2)'

# --- a directory on the path swapped for a link: read, but nothing shown ------------
submit_marked d/friends deep
asnobody sh -c "rm -rf $H/d; ln -s $T/sdir $H/d"
root_run deep 'alias deep: invalid address "root:$y$j9T$TOPSECRETHASHxyz:19000:0:99999:7:::": invalid character '"':'"' (@T@/home/nobody/d/friends:1)'

# --- aliases root cannot load: the marked recipient expires at queue_lifetime --------
A2=$T/aliases2
printf 'staff: friend@remote.test\n' >"$A2"
chown root:mail "$A2"
chmod 640 "$A2"
CONF=/etc/mxsend.conf write_conf "queue_dir $Q" "aliases $A2" "local_delivery mbox /var/mail"
: >"$MB"
printf 'Subject: s\n\nbody\n' | asnobody "$SM" -odq staff 2>"$T/s.err"
is "$?:$(cat "$T/s.err")" "0:" "aliases2 root:mail 0640: nobody -odq staff: exit 0"
ID=$(qids)
mv "$A2" "$A2.real"
ln -s "$A2.real" "$A2"		# now refused by root's run too
asroot "$SM" -q 2>"$T/q.err"
is "$?:$(qcount)" "0:1" "root's -q within queue_lifetime: exit 0, the message waits"
is "$(qenv "$ID" | sed -n '/^rcpt /,$p')" "rcpt pending 0 0 staff@test.example
unexpanded 1" "still marked, pending"
is "$(cat "$MB")" "" "no bounce yet"
CONF=/etc/mxsend.conf write_conf "queue_dir $Q" "aliases $A2" "local_delivery mbox /var/mail" \
    "queue_lifetime 1s"
sleep 1.1
asroot "$SM" -q -v >"$T/q.out" 2>"$T/q.err"
is "$?:$(qcount)" "0:0" "root's -q past queue_lifetime: exit 0, the message is gone"
is "$(grep -F "$ID: to=<staff@test.example>, relay=none" "$T/q.err" | sed 's/delay=[0-9]*/delay=S/')" \
    "sendmail: $ID: to=<staff@test.example>, relay=none, delay=S, dsn=4.4.1, status=bounced (delivery time expired after 1s; last error: alias staff cannot be expanded; $GENERIC)" \
    "the log says it expired" || diag_file "$T/q.err"
is "$(grep -a -A1 -e '^<staff@' -e '^Diagnostic-Code:' "$MB")" "<staff@test.example>:
    delivery time expired after 1s; last error: alias staff cannot be expanded; $GENERIC
--
Diagnostic-Code: X-mxsend; alias staff cannot be expanded; $GENERIC" "nobody gets a bounce that names the alias only" || diag_file "$MB"
rm -f "$A2"
mv "$A2.real" "$A2"

# --- concurrent submissions see each other: user_queue_messages 2 --------------------
CONF=/etc/mxsend.conf write_conf "queue_dir $Q" "user_queue_messages 2"
QUOTA="sendmail: queue quota of uid 65534 reached: 2 messages queued, the limit is 2 (user_queue_messages)"
# tmpcount - nobody's messages being written in tmp/
tmpcount() { find "$Q/tmp" -maxdepth 1 -name '*.msg' -user nobody | wc -l; }
# held N - two submissions started and left waiting for their input
for i in 1 2; do
	mkfifo -m 666 "$T/f$i"
	asnobody sh -c "exec '$SM' -odq x@remote.test <'$T/f$i'" 2>"$T/e$i" &
	eval "pid$i=\$!"
	exec {fd}>"$T/f$i"
	eval "fd$i=\$fd"
	printf 'Subject: held %s\n' "$i" >&$fd
	for n in $(seq 200); do [ "$(tmpcount)" = "$i" ] && break; sleep 0.05; done
done
is "$(tmpcount):$(qcount)" "2:0" "two submissions of nobody being written, nothing committed"
printf 'Subject: third\n\nbody\n' | asnobody "$SM" -odq x@remote.test 2>"$T/s.err"
is "$?:$(cat "$T/s.err")" "73:$QUOTA" "a third while two are written: exit 73, the two count"
printf '\nbody\n' >&$fd1
printf '\nbody\n' >&$fd2
exec {fd1}>&- {fd2}>&-
wait "$pid1"
r1=$?
wait "$pid2"
is "$r1:$?:$(cat "$T/e1" "$T/e2")" "0:0:" "the two held ones commit (each counts the other, not itself)"
is "$(qcount):$(tmpcount)" "2:0" "two messages queued, none left in tmp/"
H1=$(qids | head -n 1)
mv "$Q/$H1.msg" "$Q/$H1.hold"
printf 'Subject: fourth\n\nbody\n' | asnobody "$SM" -odq x@remote.test 2>"$T/s.err"
is "$?:$(cat "$T/s.err")" "73:$QUOTA" "a held message (ID.hold) counts too"
rm -f "$Q"/*.msg "$Q"/*.hold "$Q"/*.env

# --- SIZE= at MAIL as a user: bounded, the quota's sum cannot overflow --------------
CONF=/etc/mxsend.conf write_conf "queue_dir $Q" "max_message_size 0" "user_queue_size 100k"
printf 'EHLO c\r\nMAIL FROM:<nobody@test.example> SIZE=18446744073709551615\r\nMAIL FROM:<nobody@test.example> SIZE=9223372036854775807\r\nMAIL FROM:<nobody@test.example> SIZE=1125899906842624\r\nMAIL FROM:<nobody@test.example> SIZE=1125899906842623\r\nMAIL FROM:<nobody@test.example> SIZE=102400\r\nQUIT\r\n' |
    asnobody "$SM" -bs 2>&1 | tr -d '\r' | grep -v '^250-' >"$T/bs.out"
is "$(cat "$T/bs.out")" "220 test.example ESMTP mxsend
250 HELP
552 5.3.4 Message size exceeds fixed limit
552 5.3.4 Message size exceeds fixed limit
552 5.3.4 Message size exceeds fixed limit
452 4.3.1 Error: queue quota of uid 65534 reached: 0 octets queued, this message's 1125899906842623 would pass the limit of 102400 (user_queue_size)
250 2.1.0 Ok
221 2.0.0 Bye" "nobody -bs, max_message_size 0: SIZE= of 2^50 or more is 552, below it the quota (452), up to the quota taken"

setgid_ns_done
