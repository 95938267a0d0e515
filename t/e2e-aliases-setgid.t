#!/bin/bash
# e2e-aliases-setgid.t - aliases through the setgid install (submit.c,
# expand_local, submit_expand_queued): they are read with the submitter's
# own group, so an aliases file (or an :include: file) only group mail may
# read shows nothing of its targets at submission, in mailq or in the queue
# file; such recipients are queued unexpanded, marked in the envelope, and a
# queue run as root expands and delivers them (t/e2e-review.t: what root's
# expansion may show the submitter).  A readable aliases file
# still expands at submission.  Needs root.
# Addresses 127.0.0.181.
# The namespace is t/setgid-ns.sh's.

. t/setgid-ns.sh
. t/lib.sh
setgid_ns_setup
R=127.0.0.181		# mx.remote.test: takes everything

setgid_ns_remote $R
A=$T/aliases
printf 'secret: target@remote.test\nteam: :include:%s\n' "$T/team.list" >"$A"
printf 'member@remote.test\n' >"$T/team.list"
chown root:mail "$A" "$T/team.list"
chmod 640 "$A" "$T/team.list"
CONF=/etc/mxsend.conf write_conf "queue_dir $Q" "aliases $A"
CONF=$T/conf		# lib.sh's q_* and mx are not used here
mailq_as() { "$1" "$T/inst/usr/bin/mailq" 2>&1; }

# --- nobody may not read the aliases: queued as written, marked --------------------
printf 'Subject: sec\n\nbody\n' | asnobody "$SM" -odq secret 2>"$T/s1.err"
is "$?:$(cat "$T/s1.err")" "0:" "aliases file root:mail 0640: nobody's -odq secret exits 0"
ID=$(qids)
is "$(qenv "$ID" | sed -n '/^rcpt /,$p')" "rcpt pending 0 0 secret@test.example
unexpanded 1" "the envelope: secret as written, marked unexpanded"
is "$(grep -c target "$Q/$ID.msg")" 0 "the queue file holds nothing of the target"
mailq_as asnobody >"$T/mq.out"
ok 'grep -q "secret@test.example" "$T/mq.out" && ! grep -q target "$T/mq.out"' \
    "mailq as nobody: secret@test.example, nothing of the target" || diag_file "$T/mq.out"
asnobody "$SM" --queue-json >"$T/json.out" 2>&1
ok 'grep -q "\"secret@test.example\"" "$T/json.out" && ! grep -q target "$T/json.out"' \
    "--queue-json as nobody: the same" || diag_file "$T/json.out"

# --- runs that are not root leave it alone ------------------------------------------------
cp "$Q/$ID.msg" "$T/before.msg"
printf 'Subject: mix\n\nbody\n' | asnobody "$SM" -odi secret other@remote.test 2>"$T/s2.err"
is "$?:$(cat "$T/s2.err")" "0:" "nobody -odi secret other@remote.test: exit 0"
ID2=$(qids | grep -vx "$ID")
is "$(rx_count $R) $(rx_last_env $R)" "1 MAIL FROM:<nobody@test.example>
RCPT TO:<other@remote.test>" "nobody's own run delivered other@remote.test only"
is "$(qenv "$ID2" | awk '$1 == "rcpt" || $1 == "unexpanded" { print $1, $2, $5 }')" \
    "rcpt pending secret@test.example
unexpanded 1 
rcpt done other@remote.test" "secret stays pending and marked"
sleep 1.1		# retry_intervals 1s
timeout -k 5 60 setpriv --reuid=nobody --regid=nogroup --groups=mail "$SM" -q 2>"$T/q0.err"
is "$?:$(cat "$T/q0.err")" "0:" "-q by nobody as a member of group mail: exit 0"
is "$(rx_count $R)" 1 "that run delivered nothing"
is_file "$Q/$ID.msg" "$T/before.msg" "the marked message is untouched"
ok '[ ! -e "$Q/$ID.env" ]' "and has no new envelope"

# --- root's run expands under the lock and delivers ------------------------------------------
asroot "$SM" -q 2>"$T/q1.err"
is "$?:$(cat "$T/q1.err")" "0:" "root's -q: exit 0"
is "$(rx_count $R)" 3 "two more transactions"
is "$(for f in $(rx_files $R | tail -n 2); do rx_env "$f" | tail -n 1; done | sort | tr '\n' ' ')" \
    "RCPT TO:<target@remote.test> RCPT TO:<target@remote.test> " \
    "both messages went to the alias's target, target@remote.test"
ok 'grep -q "^Subject: sec" "$(rx_files $R | sed -n 2p)" || grep -q "^Subject: sec" "$(rx_files $R | sed -n 3p)"' \
    "one of them is the first message"
is "$(qcount)" 0 "the queue is empty"

# --- an :include: file nobody may not read: the same ----------------------------------------
chmod 644 "$A"
printf 'Subject: team\n\nbody\n' | asnobody "$SM" -odq team 2>"$T/s3.err"
is "$?:$(cat "$T/s3.err")" "0:" "aliases 0644, its :include: file 0640: nobody's -odq team exits 0"
ID3=$(qids)
is "$(qenv "$ID3" | sed -n '/^rcpt /,$p')" "rcpt pending 0 0 team@test.example
unexpanded 1" "team as written, marked unexpanded"
is "$(grep -c member "$Q/$ID3.msg")" 0 "the queue file holds nothing of the included list"
asroot "$SM" -q 2>"$T/q2.err"
is "$?:$(rx_last_env $R)" "0:MAIL FROM:<nobody@test.example>
RCPT TO:<member@remote.test>" "root's -q: delivered to the included member@remote.test"
is "$(qcount)" 0 "the queue is empty"

# --- what nobody may read still expands at submission ---------------------------------------
chmod 644 "$T/team.list"
printf 'Subject: open\n\nbody\n' | asnobody "$SM" -odq secret team 2>"$T/s4.err"
is "$?:$(cat "$T/s4.err")" "0:" "readable aliases: nobody's -odq secret team exits 0"
is "$(qenv "$(qids)" | sed -n '/^rcpt /,$p')" "rcpt pending 0 0 target@remote.test
rcpt pending 0 0 member@remote.test" "expanded at submission, nothing marked"
# root submits through an aliases file only root may read: expanded at once
chmod 600 "$A"
chown root:root "$A"
rm -f "$Q"/*.msg
printf 'Subject: root\n\nbody\n' | asroot "$SM" -odq secret 2>"$T/s5.err"
is "$?:$(qenv "$(qids)" | sed -n '/^rcpt /,$p')" "0:rcpt pending 0 0 target@remote.test" \
    "root (aliases root:root 0600): expanded at submission"

setgid_ns_done
