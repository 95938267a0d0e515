#!/bin/bash
# e2e-clients.t - real mail clients from Debian call mxsend, and each
# message reaches the test MX exactly as expected:
#   bsd-mailx        `mail -s` execs /usr/sbin/sendmail -i -t (compiled in);
#                    run in a private mount namespace where that path is
#                    ./sendmail, with MXSEND_CONFIG pointing at the config
#   git send-email   through sendemail.sendmailcmd and --sendmail-cmd
#   swaks            --pipe './sendmail -bs': SMTP on stdin/stdout,
#                    pipelined commands, bad commands
# (cron's way of calling is in e2e-local.t.)  The clients come from
# .ci/deps: git-email and swaks installed, bsd-mailx only unpacked (its
# package depends on an MTA).  Addresses 127.0.0.140-149.
. t/lib.sh
need_tools

CLIENTS=${MXSEND_CLIENTS_DIR:-/var/cache/mxsend-test/clients}
MAILX=$CLIENTS/usr/bin/bsd-mailx
[ "$(id -u)" = 0 ] ||
    skip_all "needs root: mailx runs in a private mount namespace"
[ -x "$MAILX" ] || skip_all "no $MAILX: run sh .ci/deps"
command -v swaks >/dev/null || skip_all "no swaks: run sh .ci/deps"
if [ ! -x "$(git --exec-path 2>/dev/null)/git-send-email" ] ||
    ! perl -MMail::Address -e 1 2>/dev/null; then
	skip_all "no git send-email (git-email, libmailtools-perl): run sh .ci/deps"
fi

mkdir -p "$T/realsbin" "$T/home"
sbin_before=$(sbin_state)
NS_WHY=$(ns_why)
[ -z "$NS_WHY" ] || skip_all "$NS_WHY"

# mailx ARGS... - bsd-mailx as a user runs it, in the namespace; the
# charset it declares comes from the locale, so the locale is fixed
mailx() {
	in_ns env HOME="$T/home" LC_ALL=C.UTF-8 MXSEND_CONFIG="${CONF:-$T/conf}" \
	    "$MAILX" "$@"
}


# The invoking user, as mxsend makes the From: of a message without one
# (lib.sh's from_line)
ME=$(id -un)

MX1=127.0.0.140		# ext.test: mailx
MX2=127.0.0.141		# git.test: git send-email
MX3=127.0.0.142		# bs.test: swaks
start_dns_mx ext.test=$MX1 git.test=$MX2 bs.test=$MX3 || exit 1
start_smtpds $MX1 $MX2 $MX3 || exit 1
write_conf

# ==== bsd-mailx ================================================================

# --- mail -s SUBJECT -c CC -b BCC TO < body: a body with a lone ".", a
# leading dot, "From " at a line start, 8-bit UTF-8 ------------------------------
printf 'Hello,\n.\n.leading dot\nFrom the start of a line\ncaf\303\251 \342\230\225\nlast line\n' \
    >"$T/m1.body"
mailx -s 'Weekly report:  all ok' -c cc@ext.test -b bcc@ext.test user@ext.test \
    <"$T/m1.body" >"$T/m1.out" 2>"$T/m1.err"
is "$?" 0 "mailx: mail -s -c -b exits 0"
ok 'wait_for "[ \$(rx_count $MX1) = 1 ]" 10' "mailx: the message reaches the MX (-odb)"
f=$(rx_last $MX1)
is "$(rx_env "$f")" "MAIL FROM:<$ME@test.example>
RCPT TO:<user@ext.test>
RCPT TO:<cc@ext.test>
RCPT TO:<bcc@ext.test>" "mailx: envelope: the invoking user, qualified; To, Cc and Bcc recipients"
is "$(hdr "$f" To)" "To: user@ext.test" "mailx: To: exact"
is "$(hdr "$f" Cc)" "Cc: cc@ext.test" "mailx: Cc: exact"
is "$(hdr "$f" Subject)" "Subject: Weekly report:  all ok" "mailx: Subject: exact (two spaces kept)"
is "$(hdr "$f" From)" "$(from_line "$ME@test.example")" \
    "mailx: From: made by mxsend for the invoking user, qualified with hostname"
is "$(hdr "$f" Bcc)" "" "mailx: the Bcc: mailx wrote does not leave the machine"
is "$(hdr "$f" Content-Type)
$(hdr "$f" Content-Transfer-Encoding)" 'Content-Type: text/plain; charset="UTF-8"
Content-Transfer-Encoding: 8bit' "mailx: its MIME fields arrive unchanged"
like "$(hdr "$f" Date)" '^Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{1,2} [A-Z][a-z]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} [-+][0-9]{4}$' \
    "mailx: one Date: added (mailx writes none)"
like "$(hdr "$f" Message-ID)" '^Message-ID: <[^@<> ]+@test\.example>$' \
    "mailx: one Message-ID: added, at hostname"
to_crlf <"$T/m1.body" >"$T/m1.want"
rx_body "$f" >"$T/m1.got"
is_file "$T/m1.got" "$T/m1.want" \
    "mailx: body byte for byte: the lone \".\" (mailx passes -i), the leading dot, From_, UTF-8"
ok "grep -Eq '> MAIL FROM:<$ME@test.example> (.* )?BODY=8BITMIME( |\$)' '$T/smtpd-$MX1/trace'" \
    "mailx: the 8-bit body goes out as BODY=8BITMIME"
ok 'wait_for "[ \$(q_count) = 0 ]"' "mailx: the queue is empty after delivery"

# --- -r: the sender mailx is given becomes envelope and From: ----------------------
printf 'hi\n' | mailx -s 'from Ann' -r 'Ann Example <ann@ext.test>' -- user@ext.test \
    >"$T/m2.out" 2>"$T/m2.err"
is "$?" 0 "mailx -r: exits 0"
ok 'wait_for "[ \$(rx_count $MX1) = 2 ]" 10' "mailx -r: the message reaches the MX"
f=$(rx_last $MX1)
is "$(rx_env "$f")" "MAIL FROM:<ann@ext.test>
RCPT TO:<user@ext.test>" "mailx -r: envelope sender from the -f mailx passes"
is "$(hdr "$f" From)" "From: Ann Example <ann@ext.test>" \
    "mailx -r: its From: kept, the only one"
ok 'wait_for "[ \$(q_count) = 0 ]"' "mailx -r: the queue is empty after delivery"

# --- an unqualified recipient: qualify_domain goes into envelope and headers ------
CONF=$T/conf2 write_conf "qualify_domain ext.test"
printf 'unq\n' | CONF=$T/conf2 mailx -s 'to buddy' buddy >"$T/m3.out" 2>"$T/m3.err"
is "$?" 0 "mailx to an unqualified name: exits 0"
ok 'wait_for "[ \$(rx_count $MX1) = 3 ]" 10' "mailx unqualified: the message reaches the MX"
f=$(rx_last $MX1)
is "$(rx_env "$f")" "MAIL FROM:<$ME@ext.test>
RCPT TO:<buddy@ext.test>" "mailx unqualified: envelope qualified with qualify_domain"
is "$(hdr "$f" To)
$(hdr "$f" From)" "To: buddy@ext.test
$(from_line "$ME@ext.test")" "mailx unqualified: To: and From: leave qualified"
ok 'wait_for "[ \$(q_count) = 0 ]"' "mailx unqualified: the queue is empty after delivery"

# --- bad recipients: mxsend refuses, mailx reports it, nothing queued -----------
printf 'x\n' | mailx -s bad 'a@@b' >"$T/m4.out" 2>"$T/m4.err"
is "$?" 1 "mailx to a@@b: mailx exits 1"
is "$(cat "$T/m4.err")" "sendmail: bad address in To: bad domain
Can't send mail: sendmail process failed with error code 65" \
    "mailx to a@@b: mxsend says why and exits 65, mailx reports it"
printf 'x\n' | mailx -s bad "$(printf 'x\001y@ext.test')" >"$T/m5.out" 2>"$T/m5.err"
is "$?" 1 "mailx to an address with a control character: mailx exits 1"
is "$(cat "$T/m5.err")" "sendmail: bad address in To: control character
Can't send mail: sendmail process failed with error code 65" \
    "mailx, control character: mxsend says why and exits 65"
is "$(q_files)" "" "mailx, bad recipients: nothing in the queue, not even in tmp/"
is "$(rx_count $MX1)" 3 "mailx, bad recipients: nothing more reached the MX"

# --- the namespace left nothing behind on the host --------------------------------
is "$(sbin_state)" "$sbin_before" \
    "mailx: host /usr/sbin untouched (no sendmail, no mounts leaked)"

# ==== git send-email ===========================================================

export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null HOME="$T/home"
export GIT_AUTHOR_NAME='A U Thor' GIT_AUTHOR_EMAIL=author@git.test
export GIT_COMMITTER_NAME='A U Thor' GIT_COMMITTER_EMAIL=author@git.test
export GIT_AUTHOR_DATE='2024-01-02 03:04:05 +0000'
export GIT_COMMITTER_DATE='2024-01-02 03:04:05 +0000'
R=$T/repo
mkdir -p "$R"
(
	cd "$R" && git init -q . &&
	printf 'first\n' >notes && git add notes && git commit -q -m init &&
	printf 'first\n.dot\n..two dots\nFrom x\ncaf\303\251\n' >notes &&
	printf '%s\n' 'Add notes with tricky lines' '' \
	    'Lines that SMTP and mbox treat specially:' '.' \
	    '.starts with a dot' 'From the start of a line' |
	    git commit -q -a --cleanup=verbatim -F - &&
	git format-patch -q -1 -o "$T/patches"
) >"$T/git.err" 2>&1
P=$(ls "$T"/patches/0001-*.patch 2>/dev/null)
ok '[ -f "$P" ]' "git: a commit and its patch (format-patch -1)"
sed '1,/^$/d' "$P" | to_crlf >"$T/g.want"	# the patch body

# --- sendemail.sendmailcmd, --to only ----------------------------------------------
(cd "$R" && timeout -k 5 60 git -c sendemail.sendmailcmd="$SENDMAIL -C $T/conf -odi" \
    send-email --to=dev@git.test --from='A U Thor <author@git.test>' \
    --confirm=never --suppress-cc=all --8bit-encoding=UTF-8 "$P") \
    </dev/null >"$T/g1.out" 2>"$T/g1.err"
is "$?" 0 "git send-email (sendemail.sendmailcmd): exits 0"
like "$(cat "$T/g1.out")" 'Result: OK' "git send-email: reports Result: OK"
is "$(rx_count $MX2)" 1 "git send-email: delivered before it returned (-odi in the command)"
f=$(rx_last $MX2)
is "$(rx_env "$f")" "MAIL FROM:<$ME@test.example>
RCPT TO:<dev@git.test>" "git send-email: envelope: the invoking user (git passes no -f), the --to"
is "$(hdr "$f" From)
$(hdr "$f" To)
$(hdr "$f" Subject)" "From: A U Thor <author@git.test>
To: dev@git.test
Subject: [PATCH] Add notes with tricky lines" "git send-email: From:, To:, Subject: exact"
is "$(hdr "$f" Message-ID | wc -l | tr -d ' ')$(hdr "$f" Date | wc -l | tr -d ' ')" 11 \
    "git send-email: git's Message-Id: and Date: kept, mxsend adds no second"
like "$(hdr "$f" Message-ID)" '^Message-Id: <[^<>@ ]+@git\.test>$' \
    "git send-email: the Message-Id: is git's"
rx_body "$f" >"$T/g1.got"
is_file "$T/g1.got" "$T/g.want" \
    "git send-email: the patch arrives intact (lone \".\", leading dots, From_, 8-bit)"
is "$(q_count)" 0 "git send-email: the queue is empty"

# --- --sendmail-cmd, --cc, --bcc, --envelope-sender=auto -----------------------
(cd "$R" && timeout -k 5 60 git send-email --sendmail-cmd="$SENDMAIL -C $T/conf -odi" \
    --to=dev@git.test --cc='Carl Cc <carl@git.test>' --bcc=boss@git.test \
    --from='A U Thor <author@git.test>' --envelope-sender=auto \
    --confirm=never --suppress-cc=all --8bit-encoding=UTF-8 "$P") \
    </dev/null >"$T/g2.out" 2>"$T/g2.err"
is "$?" 0 "git send-email --cc --bcc (--sendmail-cmd): exits 0"
is "$(rx_count $MX2)" 2 "git send-email --cc --bcc: one transaction for all three"
f=$(rx_last $MX2)
is "$(rx_env "$f")" "MAIL FROM:<author@git.test>
RCPT TO:<dev@git.test>
RCPT TO:<carl@git.test>
RCPT TO:<boss@git.test>" "git send-email --cc --bcc: envelope sender from --envelope-sender=auto, To, Cc and Bcc recipients"
is "$(hdr "$f" Cc)" "Cc: Carl Cc <carl@git.test>" "git send-email --cc: Cc: exact"
is "$(hdr "$f" Bcc)" "" "git send-email --bcc: no Bcc: arrives"
rx_body "$f" >"$T/g2.got"
is_file "$T/g2.got" "$T/g.want" "git send-email --cc --bcc: the patch arrives intact"
is "$(q_count)" 0 "git send-email --cc --bcc: the queue is empty"

# ==== swaks --pipe 'sendmail -bs' ==================================================

BS="$SENDMAIL -C $T/conf -bs -odi"
# swaks_bs NAME ARGS... - a session, transcript in $T/NAME.out, exit in $?
swaks_bs() {
	local n=$1
	shift
	timeout -k 5 60 swaks --pipe "$BS" --timeout 15 --helo client.test "$@" \
	    </dev/null >"$T/$n.out" 2>&1
}
# tr_lines NAME - the transcript's protocol lines ("<-", "<**", " ->")
tr_lines() { grep -aE '^(<-|<\*\*| ->) ' "$T/$1.out"; }

# session NAME - what follows the EHLO reply: commands and replies, without
# the message lines sent after a 354; the 354 text and the queue ID made
# constant (the spec leaves them open)
session() {
	tr_lines "$1" | awk '
	    /^(<-|<\*\*) +[0-9][0-9][0-9] / { n++; if (n == 2) { go = 1; next } }
	    !go { next }
	    indata && /^ -> / { next }
	    { indata = 0 }
	    /^<-  354 / { indata = 1 }
	    { print }' |
	    sed -E 's/^(<-  354) .*/\1 .../; s/ queued as [^ ]+$/ queued as ID/'
}
# bs_done - until no mxsend -bs of this test runs (swaks does not wait for
# its child), so that "nothing queued" means it
bs_done() { wait_for '! pgrep -f -- "-C $T/conf -bs" >/dev/null' 10; }

# --- a plain message, lockstep --------------------------------------------------
# (no newline at the end: swaks adds CRLF before its final dot)
printf '%s\n' 'From: Sam Swaks <sam@bs.test>' 'To: Xavier <x@bs.test>' \
    'Subject: swaks over -bs' '' 'first line' '.' '.leading dot' \
    '..two leading dots' 'From the start of a line' >"$T/s1.msg"
printf 'last line' >>"$T/s1.msg"
swaks_bs s1 --from sam@bs.test --to x@bs.test --data "@$T/s1.msg"
is "$?" 0 "swaks -bs: exits 0"
is "$(tr_lines s1 | head -n 2)" "<-  220 test.example ESMTP mxsend
 -> EHLO client.test" "swaks -bs: greeting 220 HOST ESMTP mxsend"
for cap in PIPELINING 'SIZE( [0-9]+)?' 8BITMIME ENHANCEDSTATUSCODES HELP; do
	ok "grep -Eq '^<-  250[- ]$cap\$' '$T/s1.out'" \
	    "swaks -bs: EHLO offers ${cap%%(*}"
done
is "$(session s1)" " -> MAIL FROM:<sam@bs.test>
<-  250 2.1.0 Ok
 -> RCPT TO:<x@bs.test>
<-  250 2.1.5 Ok
 -> DATA
<-  354 ...
<-  250 2.0.0 Ok: queued as ID
 -> QUIT
<-  221 2.0.0 Bye" "swaks -bs: MAIL, RCPT, DATA, end of data, QUIT: the replies of the spec"
ok 'wait_for "[ \$(rx_count $MX3) = 1 ]" 10' "swaks -bs: the message reaches the MX"
f=$(rx_last $MX3)
is "$(rx_env "$f")" "MAIL FROM:<sam@bs.test>
RCPT TO:<x@bs.test>" "swaks -bs: envelope from MAIL FROM and RCPT TO"
is "$(hdr "$f" From)
$(hdr "$f" To)
$(hdr "$f" Subject)" "From: Sam Swaks <sam@bs.test>
To: Xavier <x@bs.test>
Subject: swaks over -bs" "swaks -bs: From:, To:, Subject: exact"
is "$(hdr "$f" Date | wc -l | tr -d ' ')$(hdr "$f" Message-ID | wc -l | tr -d ' ')" 11 \
    "swaks -bs: one Date: and one Message-ID: added"
{ sed '1,/^$/d' "$T/s1.msg"; echo; } | to_crlf >"$T/s1.want"
rx_body "$f" >"$T/s1.got"
is_file "$T/s1.got" "$T/s1.want" \
    "swaks -bs: body byte for byte (dot-stuffed by swaks, unstuffed by mxsend)"
ok 'wait_for "[ \$(q_count) = 0 ]"' "swaks -bs: the queue is empty after delivery"

# --- --pipeline: MAIL, RCPT, RCPT, DATA in one write ------------------------------
swaks_bs s2 --pipeline --from sam@bs.test --to x@bs.test,y@bs.test \
    --h-Subject 'pipelined' --body 'sent in one go'
is "$?" 0 "swaks -bs --pipeline: exits 0"
is "$(session s2)" " -> MAIL FROM:<sam@bs.test>
 -> RCPT TO:<x@bs.test>
 -> RCPT TO:<y@bs.test>
 -> DATA
<-  250 2.1.0 Ok
<-  250 2.1.5 Ok
<-  250 2.1.5 Ok
<-  354 ...
<-  250 2.0.0 Ok: queued as ID
 -> QUIT
<-  221 2.0.0 Bye" "swaks -bs --pipeline: all commands sent before the first reply, every reply in order"
ok 'wait_for "[ \$(rx_count $MX3) = 2 ]" 10' "swaks -bs --pipeline: the message reaches the MX"
f=$(rx_last $MX3)
is "$(rx_env "$f")" "MAIL FROM:<sam@bs.test>
RCPT TO:<x@bs.test>
RCPT TO:<y@bs.test>" "swaks -bs --pipeline: envelope with both recipients"
is "$(hdr "$f" Subject)" "Subject: pipelined" "swaks -bs --pipeline: Subject: exact"
printf 'sent in one go\r\n\r\n\r\n' >"$T/s2.want"	# swaks' template adds two empty lines
rx_body "$f" >"$T/s2.got"
is_file "$T/s2.got" "$T/s2.want" "swaks -bs --pipeline: the body"
ok 'wait_for "[ \$(q_count) = 0 ]"' "swaks -bs --pipeline: the queue is empty after delivery"

# --- bad commands ------------------------------------------------------------------
# an unknown command (LMTP's LHLO): 500, and the session goes on to QUIT
swaks_bs s3 --protocol lmtp --from sam@bs.test --to x@bs.test
is "$?" 22 "swaks -bs, unknown command: swaks gives up (exit 22)"
is "$(tr_lines s3)" "<-  220 test.example ESMTP mxsend
 -> LHLO client.test
<** 500 5.5.2 Error: command not recognized
 -> QUIT
<-  221 2.0.0 Bye" "swaks -bs, unknown command: 500 5.5.2, then QUIT is answered"

# a bad sender, pipelined: MAIL refused, so RCPT comes before any MAIL
swaks_bs s4 --pipeline --from 'a@@b' --to x@bs.test
is "$?" 23 "swaks -bs, bad sender: swaks gives up (exit 23)"
like "$(session s4 | tr '\n' '~')" \
    '^ -> MAIL FROM:<a@@b>~ -> RCPT TO:<x@bs.test>~ -> DATA~<\*\* 5[0-9][0-9] [^~]*~<\*\* 503 5\.5\.1 Error: need MAIL command~<\*\* 5[0-9][0-9] [^~]*~ -> QUIT~<-  221 2\.0\.0 Bye~$' \
    "swaks -bs, bad sender pipelined: MAIL 5xx, RCPT 503 5.5.1 need MAIL, DATA 5xx, QUIT 221"

# a recipient with a control character
swaks_bs s5 --from sam@bs.test --to "$(printf 'x\001y@bs.test')"
is "$?" 24 "swaks -bs, control character in RCPT: swaks gives up (exit 24)"
like "$(session s5 | tr '\n' '~')" \
    '^ -> MAIL FROM:<sam@bs.test>~<-  250 2\.1\.0 Ok~ -> RCPT TO:<x.y@bs.test>~<\*\* 5[0-9][0-9] [^~]*~ -> QUIT~<-  221 2\.0\.0 Bye~$' \
    "swaks -bs, control character in RCPT: 5xx"

# a NUL byte in the message: refused after the final dot
printf 'Subject: nul\n\nbefore\000after\n' >"$T/s6.msg"
swaks_bs s6 --from sam@bs.test --to x@bs.test --data "@$T/s6.msg"
is "$?" 26 "swaks -bs, NUL in the data: swaks sees the message refused (exit 26)"
like "$(session s6 | tr '\n' '~')" \
    '^ -> MAIL FROM:<sam@bs.test>~<-  250 2\.1\.0 Ok~ -> RCPT TO:<x@bs.test>~<-  250 2\.1\.5 Ok~ -> DATA~<-  354 \.\.\.~<\*\* 5[0-9][0-9] [^~]*~ -> QUIT~<-  221 2\.0\.0 Bye~$' \
    "swaks -bs, NUL in the data: 5xx after the dot, QUIT 221"

# the client quits after RCPT: no message
swaks_bs s7 --quit-after rcpt --from sam@bs.test --to x@bs.test
is "$?" 0 "swaks -bs --quit-after rcpt: exits 0"
is "$(session s7)" " -> MAIL FROM:<sam@bs.test>
<-  250 2.1.0 Ok
 -> RCPT TO:<x@bs.test>
<-  250 2.1.5 Ok
 -> QUIT
<-  221 2.0.0 Bye" "swaks -bs --quit-after rcpt: QUIT mid-transaction answered 221"

ok bs_done "swaks -bs: every mxsend -bs has exited"
is "$(q_files)" "" "swaks -bs, bad sessions: nothing in the queue, not even in tmp/"
is "$(rx_count $MX3)" 2 "swaks -bs, bad sessions: nothing more reached the MX"

done_testing
