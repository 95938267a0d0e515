#!/bin/bash
# e2e-local.t - mail to the machine itself: recipients at local_domains go
# through the aliases file (expanded when the message is queued), remote
# targets to their MX, local users into their mbox.  Addresses
# 127.0.0.135-139.
. t/lib.sh
need_tools

X=127.0.0.135		# ext.test: where root's mail goes
start_dns --mx-host=ext.test,mx.ext.test,10 --host-record=mx.ext.test,$X || exit 1
start_smtpd $X || exit 1
mkdir -p "$T/mail"
chmod 1777 "$T/mail"
: >"$T/empty.inc"
printf '# test aliases\nroot: admin@ext.test, nobody\npostmaster: root\nloopa: loopb\nloopb: loopa\nops: |/bin/true\nempty: :include:%s\n' "$T/empty.inc" >"$T/aliases"
write_conf "aliases $T/aliases" "local_delivery mbox $T/mail"

# --- cron's way: -FCronDaemon -i -B8BITMIME -oem root, headers unqualified ----
printf 'From: root (Cron Daemon)\nTo: root\nSubject: Cron <root@host> run-parts\n\nout\n' |
    mx -odi -FCronDaemon -i -B8BITMIME -oem root 2>"$T/1.err"
is "$?" 0 "cron-style mail to root: exit 0"
f=$(rx_files $X | tail -n 1)
is "$(rx_env "$f")" "MAIL FROM:<$(id -un)@test.example>
RCPT TO:<admin@ext.test>" "root: admin@ext.test gets it (envelope)"
rx_data "$f" | grep -E '^(From|To):' >"$T/hdr"
printf 'From: root@test.example (Cron Daemon)\r\nTo: root@test.example\r\n' >"$T/hdr.want"
is_file "$T/hdr" "$T/hdr.want" "headers leave the machine qualified, comment kept"
/usr/bin/python3 - "$T/mail/nobody" >"$T/mbox.out" <<'PY'
import mailbox, sys
msgs = list(mailbox.mbox(sys.argv[1]))
print(len(msgs), msgs[0]["Subject"], msgs[0].get_payload().strip())
PY
is "$(cat "$T/mbox.out")" "1 Cron <root@host> run-parts out" \
    "root's local target nobody: one message in its mbox, parseable"
is "$(q_count)" 0 "nothing left in the queue"

# --- postmaster -> root -> both; a local user directly ---------------------------
printf 'Subject: pm\n\nx\n' | mx -odi postmaster 2>"$T/2.err"
is "$(rx_rcpt_copies $X admin@ext.test)" 2 "postmaster: through root to admin@ext.test"
printf 'Subject: direct\n\nx\n' | mx -odi nobody@localhost 2>"$T/3.err"
is "$(grep -c '^From ' "$T/mail/nobody")" 3 "nobody@localhost: straight into the mbox (3 messages now)"

# --- what cannot be delivered locally fails, with the reason -------------------------
printf 'Subject: loop\n\nx\n' | mx -odi -f '<>' loopa 2>"$T/4.err"
is "$?" 69 "alias loop: exit 69 (nothing deliverable)"
printf 'Subject: pipe\n\nx\n' | mx -odq -f '<>' ops 2>"$T/5.err"
like "$(q_rcpt_error ops@test.example)" 'pipe targets are not supported' \
    "a pipe alias: the recipient fails, saying why"
printf 'Subject: empty\n\nx\n' | mx -odq -f '<>' empty 2>"$T/5b.err"
is "$?:$(q_rcpt_error empty@test.example)" "0:alias expands to no address" \
    "an alias that expands to nothing: the recipient fails, saying why (not queued with none)"
rm -rf "$T/q"
printf 'Subject: nouser\n\nx\n' | mx -odi -f '<>' no-such-user-xyz 2>"$T/6.err"
is "$?" 69 "unknown local user: exit 69"
write_conf "aliases $T/aliases" "local_delivery none"
printf 'Subject: none\n\nx\n' | mx -odq -f '<>' nobody 2>"$T/7.err"
mx -qRnobody 2>/dev/null
printf 'Subject: none\n\nx\n' | mx -odi -v -f '<>' nobody 2>"$T/8.err"
like "$(cat "$T/8.err")" 'local delivery is off' "local_delivery none: unaliased local mail fails, saying why"
done_testing
