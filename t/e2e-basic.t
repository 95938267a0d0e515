#!/bin/bash
# e2e-basic.t - one message to one MX, end to end: the exact bytes and
# envelope a real receiver gets; header fixups, Bcc, -f, -F, -t, -i, line ends.
# Addresses 127.0.0.10-19.
. t/lib.sh
need_tools

A=127.0.0.10		# a.test: t/smtpd.py, exact bytes
B=127.0.0.11		# b.test: Postfix smtp-sink
start_dns --mx-host=a.test,mx.a.test,10 --host-record=mx.a.test,$A \
    --mx-host=b.test,mx.b.test,10 --host-record=mx.b.test,$B || exit 1
start_smtpd $A || exit 1
start_sink $B || exit 1
write_conf
ME=$(id -un)@test.example

# last_rx - the newest transaction file at $A
last_rx() { rx_files $A | tail -n 1; }

# --- one recipient, headers added, Bcc removed ---------------------------------
printf 'To: Rcpt One <one@a.test>\nSubject: hello\nBcc: hidden@a.test\n\nBody line 1\n\nBody line 3\n' |
    mx -odi one@a.test 2>"$T/1.err"
is "$?" 0 "single recipient: exit 0"
is "$(rx_count $A)" 1 "single recipient: one transaction"
f=$(last_rx)
is "$(rx_env "$f")" "MAIL FROM:<$ME>
RCPT TO:<one@a.test>" "single recipient: envelope (sender qualified login name)"
rx_data "$f" >"$T/got"
# The Received: field first: this uid, the queue ID (the local part of the
# generated Message-ID) and the time (that of the generated Date:).
is "$(head -n 2 "$T/got")" "Received: by test.example (mxsend, from userid $(id -u))
	id $(sed -n 's/^Message-ID: <\([0-9A-F]*\)@test\.example>\r$/\1/p' "$T/got"); $(sed -n 's/^Date: \(.*\)\r$/\1/p' "$T/got")" \
    "single recipient: Received: by HOST (mxsend, from userid UID), id QUEUEID; DATE, first"
no_rcvd <"$T/got" | grep -viE '^(date|message-id|from):' >"$T/got.rest"
printf 'To: Rcpt One <one@a.test>\r\nSubject: hello\r\n\r\nBody line 1\r\n\r\nBody line 3\r\n' >"$T/exp"
is_file "$T/got.rest" "$T/exp" "single recipient: exact bytes besides added Received/Date/Message-ID/From, no Bcc"
is "$(grep -ciE '^date:' "$T/got")" 1 "Date: added once"
like "$(grep -iE '^date:' "$T/got")" \
    '^Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} [-+][0-9]{4}'$'\r''$' \
    "Date: is RFC 5322"
is "$(grep -ciE '^message-id:' "$T/got")" 1 "Message-ID: added once"
like "$(grep -iE '^message-id:' "$T/got")" '^Message-I[Dd]: <[^<>@ ]+@test\.example>'$'\r''$' \
    "Message-ID: <...@hostname>"
like "$(grep -iE '^from:' "$T/got")" "^From: (.*<$ME>|$ME)"$'\r''$' "From: added with the qualified login name"
ok '! grep -qi "^bcc:\|hidden" "$T/got"' "Bcc: header and its address never left"
is "$(q_count)" 0 "delivered message left the queue"
is "$(q_msg_files | grep -c .)" 0 "no files left in the queue dir"

# --- the same through Postfix's smtp-sink -----------------------------------------
printf 'Subject: to the sink\n\nsink body\n.leading dot\n' | mx -odi two@b.test 2>"$T/2.err"
is "$?" 0 "smtp-sink: exit 0"
wait_for '[ -n "$(sink_files $B)" ] && [ -z "$(tail -c 1 "$(sink_files $B | head -n 1)")" ]' 3
is "$(sink_files $B | wc -l)" 1 "smtp-sink: one transaction"
f=$(sink_files $B | head -n 1)
is "$(grep -E '^X-(Mail|Rcpt)-Args:' "$f" 2>/dev/null)" "X-Mail-Args: <$ME>
X-Rcpt-Args: <two@b.test>" "smtp-sink: envelope"
# smtp-sink dumps the message after dot-unstuffing, CRs removed
is "$(sink_message "$f" | no_rcvd | grep -viE '^(date|message-id|from):')" "Subject: to the sink

sink body
.leading dot" "smtp-sink: the message as sent"

# --- -f and -f '<>' ---------------------------------------------------------------
printf 'Subject: f\n\nx\n' | mx -odi -f sender@origin.test one@a.test 2>"$T/3.err"
is "$?" 0 "-f: exit 0"
is "$(rx_env "$(last_rx)" | head -n 1)" "MAIL FROM:<sender@origin.test>" "-f ADDR is MAIL FROM"
printf 'Subject: f\n\nx\n' | mx -odi -f '<>' one@a.test 2>"$T/4.err"
is "$?" 0 "-f '<>': exit 0"
is "$(rx_env "$(last_rx)" | head -n 1)" "MAIL FROM:<>" "-f '<>' is MAIL FROM:<>"
printf 'Subject: f\n\nx\n' | mx -odi -F 'Test User' one@a.test 2>"$T/5.err"
like "$(rx_data "$(last_rx)" | grep -iE '^from:')" "^From: \"?Test User\"? <$ME>"$'\r''$' \
    "-F NAME is the display name of a generated From:"

# --- -t: To, Cc, Bcc; Bcc gone from the data but in the envelope ----------------
n0=$(rx_count $A)
printf 'From: me@origin.test\nTo: one@a.test\nCc: Two <two@a.test>\nBcc: three@a.test\nSubject: t\n\nbody\n' |
    mx -odi -t 2>"$T/6.err"
is "$?" 0 "-t: exit 0"
is "$(rx_count $A)" $((n0 + 1)) "-t: one transaction for the three recipients"
f=$(last_rx)
is "$(rx_env "$f" | grep '^RCPT' | sort)" "RCPT TO:<one@a.test>
RCPT TO:<three@a.test>
RCPT TO:<two@a.test>" "-t: To, Cc and Bcc recipients all in the envelope"
rx_data "$f" | no_rcvd | grep -viE '^(date|message-id):' >"$T/got"
printf 'From: me@origin.test\r\nTo: one@a.test\r\nCc: Two <two@a.test>\r\nSubject: t\r\n\r\nbody\r\n' >"$T/exp"
is_file "$T/got" "$T/exp" "-t: Bcc: removed, everything else as given"

printf 'To: one@a.test\nSubject: t+args\n\nbody\n' | mx -odi -t extra@a.test 2>"$T/7.err"
is "$?" 0 "-t with argument: exit 0"
is "$(rx_env "$(last_rx)" | grep '^RCPT' | sort)" "RCPT TO:<extra@a.test>
RCPT TO:<one@a.test>" "-t: argument recipients are added to the header ones"

# --- dot handling -------------------------------------------------------------------
IN='Subject: dots\n\nline1\n.x\n..y\n.\nline2\n'
printf "$IN" | mx -odi one@a.test 2>"$T/8.err"
is "$?" 0 "without -i: exit 0"
rx_data "$(last_rx)" | sed '1,/^\r$/d' >"$T/got"
printf 'line1\r\n.x\r\n..y\r\n' >"$T/exp"
is_file "$T/got" "$T/exp" "without -i: a lone '.' ends the message, other dot lines kept"
printf "$IN" | mx -odi -i one@a.test 2>"$T/9.err"
is "$?" 0 "-i: exit 0"
rx_data "$(last_rx)" | sed '1,/^\r$/d' >"$T/got"
printf 'line1\r\n.x\r\n..y\r\n.\r\nline2\r\n' >"$T/exp"
is_file "$T/got" "$T/exp" "-i: a lone '.' is data (dot-stuffed on the wire, intact after unstuffing)"
printf "$IN" | mx -odi -oi one@a.test 2>"$T/10.err"
rx_data "$(last_rx)" | sed '1,/^\r$/d' >"$T/got"
is_file "$T/got" "$T/exp" "-oi: same as -i"

# --- LF and CRLF input give the same bytes -------------------------------------
MSG='From: me@origin.test\nTo: one@a.test\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nMessage-ID: <fixed@origin.test>\nSubject: line ends\n\nfirst\n\n  indented\nlast\n'
printf "$MSG" >"$T/lf.in"
printf "$MSG" | to_crlf >"$T/crlf.in"
mx -odi one@a.test <"$T/lf.in" 2>"$T/11.err"
is "$?" 0 "LF input: exit 0"
rx_data "$(last_rx)" | no_rcvd >"$T/got.lf"
mx -odi one@a.test <"$T/crlf.in" 2>"$T/12.err"
is "$?" 0 "CRLF input: exit 0"
rx_data "$(last_rx)" | no_rcvd >"$T/got.crlf"
is_file "$T/got.lf" "$T/crlf.in" "LF input arrives as exactly the message with CRLF line ends (after Received:)"
is_file "$T/got.crlf" "$T/crlf.in" "CRLF input arrives byte for byte (after Received:)"

# --- no trailing newline --------------------------------------------------------------
printf 'Subject: nonl\n\nno newline at end' | mx -odi one@a.test 2>"$T/13.err"
is "$?" 0 "no final newline: exit 0"
rx_data "$(last_rx)" | sed '1,/^\r$/d' >"$T/got"
printf 'no newline at end\r\n' >"$T/exp"
is_file "$T/got" "$T/exp" "no final newline: the last line gets its CRLF"

is "$(q_count)" 0 "queue empty at the end"
done_testing
