#!/bin/bash
# e2e-setgid.t - the multi-user model (queue.c, Permissions): make install
# puts sendmail in as root:mail 2755 and the queue as root:mail 2770; the
# user nobody submits through it and cannot touch the queue itself; root's
# queue runs and nobody's deliver each other's messages.  Needs root.
# Addresses 127.0.0.160-169.
# The namespace is t/setgid-ns.sh's.

. t/setgid-ns.sh
. t/lib.sh
setgid_ns_setup
R=127.0.0.160		# mx.remote.test: takes everything
L=127.0.0.161		# mx.later.test: 451 for the first connection
is "$(stat -c '%U:%G %a' "$SM")" "root:mail 2755" "sendmail: root:mail 2755"
is "$(stat -c '%U:%G %a' "$T/inst$Q" "$T/inst$Q/tmp" | tr '\n' ' ')" \
    "root:mail 2770 root:mail 2770 " "the queue and its tmp/: root:mail 2770"
is "$(readlink "$T/inst/usr/bin/mailq") $(readlink "$T/inst/usr/sbin/newaliases")" \
    "../sbin/sendmail sendmail" "mailq and newaliases link to sendmail"

# --- servers and the default config --------------------------------------------------
start_dns --mx-host=remote.test,mx.remote.test,10 --host-record=mx.remote.test,$R \
    --mx-host=later.test,mx.later.test,10 --host-record=mx.later.test,$L || exit 1
SMTPD_NOWAIT=1
start_smtpd $R || exit 1
start_smtpd $L --rcpt '*=451 4.3.0 try later' --faults-for 1 || exit 1
wait_smtpd || exit 1
SMTPD_NOWAIT=0
: >"$T/aliases"
chmod 644 "$T/aliases"
CONF=/etc/mxsend.conf write_conf "queue_dir $Q" "aliases $T/aliases" \
    "local_delivery mbox /var/mail"
cp /etc/mxsend.conf "$T/user.conf"
chmod 644 "$T/user.conf"
CONF=$T/conf		# lib.sh's q_* and mx are not used here

# --- nobody submits; the files are the group's, the queue is closed to nobody ------
printf 'Subject: s1\n\nbody\n' | asnobody "$SM" -odq u1@remote.test 2>"$T/s1.err"
is "$?" 0 "nobody, -odq: exit 0" || diag_file "$T/s1.err"
ID1=$(qids)
is "$(qcount)" 1 "nobody, -odq: one message queued"
is "$(perms "$Q/$ID1.msg")" "nobody:mail 660" "its file: owner nobody, group mail, mode 0660"
is "$(ls -A "$Q/tmp")" "" "tmp/ left empty"
is "$(stat -c '%G %a' "$Q/lock" "$Q/bounce-times" | tr '\n' ' ')" "mail 660 mail 660 " \
    "the -q lock and bounce-times: group mail, mode 0660"
asnobody ls "$Q" >/dev/null 2>&1
rc=$?
ok '[ $rc != 0 ]' "nobody cannot list the queue directory"
asnobody cat "$Q/$ID1.msg" >/dev/null 2>&1
rc=$?
ok '[ $rc != 0 ]' "nobody cannot read a queue file"
asnobody "$T/inst/usr/bin/mailq" >"$T/mailq.out" 2>"$T/mailq.err"
is "$?" 0 "mailq as nobody: exit 0" || diag_file "$T/mailq.err"
ok 'grep -q "^$ID1 " "$T/mailq.out" && grep -q "u1@remote.test" "$T/mailq.out"' \
    "mailq as nobody lists the message and its recipient" || diag_file "$T/mailq.out"

# --- -C and MXSEND_CONFIG drop the setgid right: the queue is out of reach ---------
printf 'Subject: c\n\nbody\n' | asnobody "$SM" -C "$T/user.conf" -odq u2@remote.test \
    >"$T/c.out" 2>"$T/c.err"
is "$?" 75 "nobody with -C: exit 75"
like "$(cat "$T/c.err")" "^sendmail: .*queue directory $Q .* not writable for uid 65534, gid 65534: Permission denied\$" \
    "nobody with -C: one line saying the queue is not writable for it"
printf 'Subject: c\n\nbody\n' | asnobody env MXSEND_CONFIG="$T/user.conf" "$SM" \
    -odq u2@remote.test >"$T/e.out" 2>"$T/e.err"
is "$?" 75 "nobody with MXSEND_CONFIG: exit 75"
like "$(cat "$T/e.err")" "^sendmail: .*queue directory $Q .* not writable for uid 65534, gid 65534: Permission denied\$" \
    "nobody with MXSEND_CONFIG: one line saying the queue is not writable for it"
is "$(qcount) $(ls -A "$Q/tmp")" "1 " "neither queued anything"
# The group is gone for good, the saved set-group-ID too: a -bs session
# waiting for its first command shows its ids in /proc.
mkfifo "$T/bs.in"
setpriv --reuid=nobody --regid=nogroup --clear-groups "$SM" -C "$T/user.conf" -bs \
    <"$T/bs.in" >"$T/bs.out" 2>&1 &
bspid=$!
exec 7>"$T/bs.in"
wait_for 'grep -q "^220 " "$T/bs.out"'
is "$(awk '$1 == "Gid:" { print $2, $3, $4, $5 }' /proc/$bspid/status)" \
    "65534 65534 65534 65534" "nobody with -C: real, effective, saved and fs gid all nogroup"
exec 7>&-
wait $bspid

# --- local delivery as nobody: only into nobody's own mailbox; other users' wait ---
# --- for root's run, untried (a user's process never writes another's mailbox) -----
install -o daemon -g mail -m 660 /dev/null "$T/mail/daemon"
printf 'Subject: s5\n\nbody\n' | asnobody "$SM" -odi daemon 2>"$T/s5.err"
is "$?" 0 "nobody -odi to daemon (mbox daemon:mail 0660): exit 0" || diag_file "$T/s5.err"
ID5=$(qids | grep -vx "$ID1")
is "$(stat -c %s "$T/mail/daemon")" 0 "nobody's process did not write daemon's mbox"
is "$(qenv "$ID5" | awk '$1 == "rcpt" { print $2, $3, $5 }')" "pending 0 daemon@test.example" \
    "daemon stays pending, untried, for root's run"
is "$(qenv "$ID5" | grep -c '^result ')" 0 "with no result: nothing was tried"
printf 'Subject: s6\n\nbody\n' | asnobody "$SM" -odi bin 2>"$T/s6.err"
is "$?" 0 "nobody -odi to bin (no mbox): exit 0" || diag_file "$T/s6.err"
ID6=$(qids | grep -vx -e "$ID1" -e "$ID5")
ok '[ ! -e "$T/mail/bin" ]' "no mbox was created for bin"
is "$(qenv "$ID6" | awk '$1 == "rcpt" { print $2, $3, $5 }')" "pending 0 bin@test.example" \
    "bin stays pending, untried, in the queue"
printf 'Subject: s7\n\nbody\n' | asnobody "$SM" -odi nobody 2>"$T/s7.err"
is "$?" 0 "nobody -odi to nobody: exit 0" || diag_file "$T/s7.err"
is "$(perms "$T/mail/nobody") $(grep -c '^Subject: s7' "$T/mail/nobody")" "nobody:mail 600 1" \
    "nobody's own process delivered to nobody's own (new) mbox"
is "$(qcount)" 3 "and that message left the queue; the others wait"

# --- root's queue run: daemon's and bin's mboxes, nobody's remote message -----------
asroot "$SM" -q 2>"$T/q1.err"
is "$?" 0 "root's -q: exit 0" || diag_file "$T/q1.err"
is "$(grep -c '^Subject: s5' "$T/mail/daemon")" 1 "daemon's mbox got its message from root's run"
is "$(perms "$T/mail/daemon")" "daemon:mail 660" "the mbox keeps owner and mode"
is "$(stat -c '%U %a' "$T/mail/bin" 2>&1)" "bin 600" "the new mbox is bin's, mode 0600"
is "$(grep -c '^Subject: s6' "$T/mail/bin")" 1 "with the message in it"
is "$(rx_last_env $R)" "MAIL FROM:<nobody@test.example>
RCPT TO:<u1@remote.test>" "nobody's message to remote.test: delivered by root's run"
is "$(qcount)" 0 "root's run removed nobody's messages and envelopes"

# --- -odb: nobody's background child delivers and removes ----------------------------
printf 'Subject: b\n\nbody\n' | asnobody "$SM" -odb b1@remote.test 2>"$T/b.err"
is "$?" 0 "nobody -odb: exit 0"
wait_for '[ "$(rx_count $R)" = 2 ] && [ "$(qcount)" = 0 ]' 10
is "$(rx_last_env $R | tail -n 1) $(qcount)" "RCPT TO:<b1@remote.test> 0" \
    "the -odb child delivered it and removed it"

# --- root's message, deferred by root's run; nobody may not run the queue, a member
# --- of group mail may, and delivers it ------------------------------------------------
printf 'Subject: r\n\nbody\n' | asroot "$SM" -odq r1@later.test 2>"$T/r.err"
IDR=$(qids)
is "$(perms "$Q/$IDR.msg")" "root:mail 660" "root's message: root:mail 0660"
asroot "$SM" -q 2>"$T/q2.err"
is "$(qenv "$IDR" | awk '$1 == "rcpt" { print $2 }')" "pending" "root's run: deferred (451)"
is "$(perms "$Q/$IDR.env")" "root:mail 660" "root's envelope: root:mail 0660"
sleep 1.1
asnobody "$SM" -q 2>"$T/q3.err"
is "$?:$(cat "$T/q3.err")" "77:sendmail: only root and group mail may run the queue" \
    "nobody's -q: refused with 77 (a stopped run would hold the queue lock)"
is "$(qenv "$IDR" | awk '$1 == "rcpt" { print $2 }')" "pending" "root's message still pending"
timeout -k 5 60 setpriv --reuid=nobody --regid=nogroup --groups=mail "$SM" -q 2>"$T/q4.err"
is "$?" 0 "-q by nobody as a member of group mail: exit 0" || diag_file "$T/q4.err"
is "$(rx_last_env $L)" "MAIL FROM:<root@test.example>
RCPT TO:<r1@later.test>" "that run delivered root's message"
is "$(ls -A "$Q" | grep -v -e '^tmp$' -e '^lock$' -e '^bounce-times$')" "" \
    "and removed root's message and envelope"

# --- the doctor as nobody ------------------------------------------------------------
asnobody "$SM" --doctor remote.test >"$T/doc.out" 2>&1
like "$(grep ' queue ' "$T/doc.out")" \
    "^ok  queue $Q: owner root, group mail, mode 2770: shared by root and group mail.*; .*/sendmail \\(running now\\) is setgid mail, so every user can submit mail" \
    "--doctor: the group model, and this sendmail is setgid mail" || diag_file "$T/doc.out"
like "$(cat "$T/doc.out")" "ok  queue $Q is writable: a new message file gets mode 0660, group mail" \
    "--doctor: a test file gets 0660, group mail"
ok '! grep -q "^FAIL queue" "$T/doc.out"' "--doctor: no FAIL line about the queue"

# --- what the queue does to keep the model --------------------------------------------
chown root "$Q/lock"
chmod 600 "$Q/lock"
rm -r "$Q/tmp"
printf 'Subject: t\n\nbody\n' | asnobody "$SM" -odq u3@remote.test 2>"$T/t.err"
is "$(perms "$Q/tmp")" "nobody:mail 2770" "a tmp/ nobody's run recreates: nobody:mail 2770"
asroot "$SM" -q 2>"$T/q4.err"
is "$(perms "$Q/lock") $(qcount)" "root:mail 660 0" \
    "root's run gives its own 0600 lock back the group mode, and delivers"
chmod 2775 "$Q"
printf 'Subject: w\n\nbody\n' | asroot "$SM" -odq u4@remote.test >/dev/null 2>"$T/w.err"
is "$?" 75 "a world-readable queue directory: refused, exit 75"
like "$(cat "$T/w.err")" "queue directory $Q is world-readable \\(mode 2775\\)" \
    "saying so" || diag_file "$T/w.err"
chmod 2770 "$Q"
ln -s "$Q" "$T/qlink"
CONF=$T/conf.link write_conf "queue_dir $T/qlink"
printf 'Subject: l\n\nbody\n' | asroot "$SM" -C "$T/conf.link" -odq u5@remote.test \
    >/dev/null 2>"$T/l.err"
is "$?" 75 "a queue directory that is a symbolic link: refused, exit 75"
like "$(cat "$T/l.err")" "queue directory $T/qlink is a symbolic link" "saying so"
mkdir -m 700 "$T/dq"
chown daemon "$T/dq"
CONF=$T/conf.dq write_conf "queue_dir $T/dq"
printf 'Subject: d\n\nbody\n' | asroot "$SM" -C "$T/conf.dq" -odq u6@remote.test \
    >/dev/null 2>"$T/d.err"
is "$?" 75 "a queue directory owned by another user: refused, exit 75"
like "$(cat "$T/d.err")" "queue directory $T/dq is owned by uid 1, not root" "saying so"
is "$(qcount) $(ls -A "$T/dq")" "0 " "none of them queued anything"

# --- links planted by someone with the group: root's run follows none of them ----------
printf 'keep\n' >"$T/victim"
touch -d '3 days ago' "$T/victim"
mkdir -p "$T/elsewhere"
cp -p "$T/victim" "$T/elsewhere/old"
for f in lock bounce-times; do
	mv "$Q/$f" "$Q/$f.real"
	ln -s "$T/victim" "$Q/$f"
	asroot "$SM" -q 2>"$T/ln.err"
	is "$?:$(cat "$T/ln.err")" "75:sendmail: $Q/$f is a symbolic link; remove it" \
	    "$f planted as a symbolic link: root's -q refuses, exit 75"
	rm "$Q/$f"
	mv "$Q/$f.real" "$Q/$f"
done
# (a hard link must stay on the queue's mount: the victim lives next to it)
install -m 600 "$T/victim" "$Q/../victim.hl"
ln "$Q/../victim.hl" "$Q/bounce-times.hard"
mv "$Q/bounce-times" "$Q/bounce-times.real"
mv "$Q/bounce-times.hard" "$Q/bounce-times"
asroot "$SM" -q 2>"$T/ln.err"
is "$?:$(cat "$T/ln.err")" "75:sendmail: $Q/bounce-times is not a regular file with one link; remove it" \
    "bounce-times planted as a hard link: root's -q refuses, exit 75"
is "$(stat -c '%U:%G %a' "$Q/../victim.hl") $(cat "$Q/../victim.hl")" "root:root 600 keep" \
    "the linked file keeps its owner, mode and content"
rm "$Q/bounce-times" "$Q/../victim.hl"
mv "$Q/bounce-times.real" "$Q/bounce-times"
mv "$Q/tmp" "$Q/tmp.real"
ln -s "$T/elsewhere" "$Q/tmp"
asroot "$SM" -q 2>"$T/ln.err"
is "$?" 75 "tmp/ planted as a symbolic link: root's -q refuses, exit 75"
rm "$Q/tmp"
mv "$Q/tmp.real" "$Q/tmp"
is "$(cat "$T/victim") $(cat "$T/elsewhere/old")" "keep keep" \
    "the files the links pointed at are untouched"

# --- the environment of a setgid run: only TZ naming a zone survives -----------------
# (the Date: mxsend adds is local time, so the zone shows in its offset; a TZ
# that is a path would have the setgid process read a file of the user's
# choosing, so it is dropped and the system's zone is used)
tz_date() {	# TZ-VALUE - the Date: of a message nobody queues with that TZ
	local id
	printf 'Subject: tz\n\nbody\n' | asnobody env TZ="$1" LOCALDOMAIN=evil.test \
	    "$SM" -odq tz@remote.test 2>>"$T/tz.err"
	id=$(qids | tail -n 1)
	sed -n 's/^Date: .* \([-+][0-9]*\)\r$/\1/p' "$Q/$id.msg"
	rm -f "$Q/$id.msg"
}
SYS=$(env -u TZ date +%z)	# the system's zone (+0000 on these machines)
[ "$SYS" != "+0900" ] || SYS="(the system's zone is Tokyo's; these checks cannot tell)"
is "$(tz_date Asia/Tokyo)" "+0900" "setgid run, TZ=Asia/Tokyo: kept, the Date: is +0900"
is "$(tz_date /usr/share/zoneinfo/Asia/Tokyo)" "$SYS" "TZ that is a path: dropped"
is "$(tz_date :/usr/share/zoneinfo/Asia/Tokyo)" "$SYS" "TZ that is a :path: dropped"
is "$(tz_date ../../../usr/share/zoneinfo/Asia/Tokyo)" "$SYS" "TZ with ..: dropped"
is "$(cat "$T/tz.err")" "" "the four submissions: no error"

setgid_ns_done
