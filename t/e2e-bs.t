#!/bin/bash
# e2e-bs.t - sendmail -bs: an SMTP server on stdin/stdout, as Symfony Mailer
# or Alpine use it.  Exact transcripts (lockstep and pipelined), every error
# reply, the limits (line length, bad characters, too many errors, timeouts,
# sizes), dot-unstuffing, what lands in the queue, and delivery after the
# session (-odq, -odi, -odb).  The sessions are driven by t/bsclient.py.
# Addresses 127.0.0.150-159.
. t/lib.sh
need_tools

M=127.0.0.150		# bs.test: t/smtpd.py, exact bytes
S=127.0.0.151		# slow.test: t/smtpd.py that answers the dot after 2 s
start_dns --mx-host=bs.test,mx.bs.test,10 --host-record=mx.bs.test,$M \
    --mx-host=slow.test,mx.slow.test,10 --host-record=mx.slow.test,$S || exit 1
SMTPD_NOWAIT=1 start_smtpd $M
SMTPD_NOWAIT=1 start_smtpd $S --delay-dot 2
wait_smtpd || exit 1
write_conf
CONF0=$T/conf

# ids - the queue IDs the last session reported, one line
ids() { tr '\n' ' ' <"$T/bs.ids" | sed 's/ $//'; }
# qids - the queue's IDs, one line
qids() { q_ids | tr '\n' ' ' | sed 's/ $//'; }
# envof ID - "sender ADDR" and "rcpt ADDR" lines of a queued envelope
envof() { q_env "$1" | awk '$1 == "sender" { print "sender", $2 }
                            $1 == "rcpt" { print "rcpt", $5 }'; }
# tx FROM SUBJECT BODY RCPT... - the script of one transaction: MAIL,
# the RCPTs, DATA, a message "Subject: SUBJECT" (more fields may follow
# after \r\n) and BODY, the dot
tx() {
	local from=$1 subject=$2 body=$3
	shift 3
	echo "MAIL FROM:<$from>"
	printf 'RCPT TO:<%s>\n' "$@"
	echo DATA
	echo "Subject: $subject\r\n\r\n$body\r\n."
}
# nth N - the Nth ID the last session reported
nth() { sed -n "${1}p" "$T/bs.ids"; }
# fresh - an empty queue, the default config
fresh() { rm -rf "$T/q"; CONF=$CONF0; }
# xs N - N x's
xs() {
	local v
	if [ "$1" -gt 2000 ]; then
		printf '%*s' "$1" '' | tr ' ' x
	else
		printf -v v '%*s' "$1" ''
		printf '%s' "${v// /x}"
	fi
}

G="220 test.example ESMTP mxsend"
# slowq - messages in the queue of $T/conf.slow
slowq() { ls "$T/qslow" 2>/dev/null | grep -c '\.msg$'; }
EH="250-test.example
250-PIPELINING
250-SIZE 10240000
250-8BITMIME
250-ENHANCEDSTATUSCODES
250 HELP"
EH2000=${EH/SIZE 10240000/SIZE 2000}	# under max_message_size 2000
# replies the transcripts share: one transaction with one recipient, the
# end of a session after QUIT, a command refused for a bad character
TX1="250 2.1.0 Ok
250 2.1.5 Ok
354 End data with <CR><LF>.<CR><LF>
250 2.0.0 Ok: queued as ID"
BYE="221 2.0.0 Bye
exit 0"
BAD="500 5.5.2 Error: bad character in command"
ME="From: Sender <sender@origin.test>\r\nTo: one@bs.test\r\nSubject: lockstep\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <fixed1@origin.test>\r\n\r\nbody line\r\n\r\nlast line"
printf "$ME\r\n" >"$T/me.want"

# --- -odb to a slow MX (checked at the end, so that the wait costs nothing) ---
# The session must end at once; the delivering child must not hold the
# client's stdout open (bsclient.py says "[stdout open after exit]").
CONF=$T/conf.slow write_conf "queue_dir $T/qslow"
slow=$(printf 'MAIL FROM:<s@origin.test>\nRCPT TO:<x@slow.test>\nDATA\nSubject: slow\\r\\n\\r\\nb\\r\\n.\nQUIT\n' |
    CONF=$T/conf.slow BSTAG=slow bs -- -odb)
# The slow MX holds its reply to the dot for 2 s: a session that waited for
# the delivery would end with the message gone from the queue.
slow_left=$(slowq)

# --- greeting, EHLO, QUIT -----------------------------------------------------
fresh
out=$(bs --step -- -odq <<'EOF'
EHLO client.example
QUIT
EOF
)
is "$out" "$G
$EH
$BYE" "greeting, EHLO, QUIT: exact transcript (CRLF), exit 0"
is "$(q_count)" 0 "greeting, EHLO, QUIT: nothing queued"

out=$(bs --step -- -odq <<'EOF'
HELO client.example
ehlo client.example
QUIT
EOF
)
is "$out" "$G
250 test.example
$EH
$BYE" "HELO: 250 hostname; verbs are case-insensitive"

CONF=$T/conf.size write_conf "max_message_size 2000"
CONF=$T/conf.size
out=$(bs --step -- -odq <<'EOF'
EHLO client.example
QUIT
EOF
)
is "$out" "$G
$EH2000
$BYE" "max_message_size 2000: EHLO says SIZE 2000"

# --- a full session, lockstep, -odq -------------------------------------------
fresh
LOCK="EHLO client.example
MAIL FROM:<sender@origin.test>
RCPT TO:<one@bs.test>
RCPT TO:<two@bs.test>
RCPT TO:<one@bs.test>
DATA
$ME\r\n.
QUIT"
WANT="$G
$EH
250 2.1.0 Ok
250 2.1.5 Ok
250 2.1.5 Ok
250 2.1.5 Ok
354 End data with <CR><LF>.<CR><LF>
250 2.0.0 Ok: queued as ID
$BYE"
step=$(printf '%s\n' "$LOCK" | bs --step -- -odq)
is "$step" "$WANT" "lockstep session: exact transcript, exit 0"
is "$(qids)" "$(ids)" "lockstep session: the ID in the reply is the one queued"
id=$(q_ids)
is "$(envof "$id")" "sender sender@origin.test
rcpt one@bs.test
rcpt two@bs.test" "lockstep session: envelope (a repeated recipient stored once)"
q_msg "$id" | no_rcvd >"$T/got"
is_file "$T/got" "$T/me.want" "lockstep session: the message bytes, exactly (nothing added but Received:)"
is "$(q_msg "$id" | head -n 2 | tr -d "\r" | sed 's/; .*//')" "Received: by test.example (mxsend, from userid $(id -u))
	id $id" "lockstep session: Received: first, with the submitter's uid and the queue ID"

# --- the same, pipelined in one write -----------------------------------------
fresh
pipe=$(printf '%s\n' "$LOCK" | bs -- -odq)
is "$pipe" "$WANT" "pipelined session: the same replies, in order"
is "$(qids)" "$(ids)" "pipelined session: the ID in the reply is the one queued"
is "$(envof "$(q_ids)")" "sender sender@origin.test
rcpt one@bs.test
rcpt two@bs.test" "pipelined session: envelope"
q_msg "$(q_ids)" | no_rcvd >"$T/got"
is_file "$T/got" "$T/me.want" "pipelined session: the message bytes"

# --- several messages in one session ------------------------------------------
fresh
out=$({
	echo EHLO client.example
	tx a@origin.test first one a1@bs.test a2@bs.test
	echo RSET
	tx b@origin.test second two b1@bs.test
	tx c@origin.test third three c1@bs.test
	echo QUIT
} | bs -- -odq)
is "$out" "$G
$EH
250 2.1.0 Ok
250 2.1.5 Ok
250 2.1.5 Ok
354 End data with <CR><LF>.<CR><LF>
250 2.0.0 Ok: queued as ID
250 2.0.0 Ok
$TX1
$TX1
$BYE" "three transactions pipelined in one write (RSET between two): transcript"
is "$(printf 'NOOP\nQUIT\nNOOP\nMAIL FROM:<a@origin.test>\n' | BSTAG=quit bs -- -odq)" "$G
250 2.0.0 Ok
$BYE" "pipelined commands after QUIT: not read"
is "$(sort -u "$T/bs.ids" | wc -l)/$(q_count)" "3/3" "three transactions: three distinct IDs, three messages"
is "$(qids)" "$(sort "$T/bs.ids" | tr '\n' ' ' | sed 's/ $//')" "three transactions: the reported IDs are the queued ones"
is "$(envof "$(nth 1)")
$(envof "$(nth 2)")
$(envof "$(nth 3)")" "sender a@origin.test
rcpt a1@bs.test
rcpt a2@bs.test
sender b@origin.test
rcpt b1@bs.test
sender c@origin.test
rcpt c1@bs.test" "three transactions: each with its own sender and recipients"
qbody() { q_msg "$1" | sed '1,/^\r$/d' | tr -d '\r'; }
is "$(qbody "$(nth 1)") $(qbody "$(nth 2)") $(qbody "$(nth 3)")" "one two three" \
    "three transactions: each with its own data"

# --- reads that split lines; a 1 MB message in one write ----------------------
fresh
out=$(bs -- -odq <<'EOF'
NO\c
@sleep 0.1
OP\r\c
@sleep 0.1
\nMAIL FROM:<split@origin.test>\r\nRCPT TO:<x@bs.test>\r\nDATA\r\nFrom: split@origin.test\r\nSubject: split\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <split@origin.test>\r\n\r\nbody\r\n.\r\c
@sleep 0.1
\nQUIT
EOF
)
is "$out" "$G
250 2.0.0 Ok
$TX1
$BYE" "commands and the final dot split across writes, CR and LF apart: read as lines"
q_msg "$(nth 1)" | no_rcvd >"$T/got"
printf 'From: split@origin.test\r\nSubject: split\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <split@origin.test>\r\n\r\nbody\r\n' >"$T/want"
is_file "$T/got" "$T/want" "split writes: the message bytes"

fresh
"$PY" -S - "$T/big" "$T/big.want" <<'EOF'
import sys
head = (b"From: big@origin.test\r\nTo: x@bs.test\r\nSubject: big\r\n"
        b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
        b"Message-ID: <big@origin.test>\r\n\r\n")
with open(sys.argv[1], "wb") as wire, open(sys.argv[2], "wb") as want:
    wire.write(head)
    want.write(head)
    for i in range(20000):
        line = b"%05d %s\r\n" % (i, b"y" * 40)
        if i % 7 == 0:
            line = b"." + line              # stuffed: ".NNNNN" arrives
        wire.write((b"." if line[:1] == b"." else b"") + line)
        want.write(line)
EOF
out=$(printf 'MAIL FROM:<big@origin.test>\nRCPT TO:<x@bs.test>\nDATA\n@file %s\n.\nQUIT\n' "$T/big" | bs -- -odq)
is "$out" "$G
$TX1
$BYE" "a 1 MB message (dot-stuffed lines) pipelined in one write: transcript"
q_msg "$(nth 1)" | no_rcvd >"$T/got"
is_file "$T/got" "$T/big.want" "a 1 MB message: the bytes, unstuffed"

# --- MAIL FROM forms and parameters that are accepted -------------------------
fresh
out=$(bs --step -- -odq <<'EOF'
MAIL FROM: <space@origin.test>
RCPT TO:<x@bs.test>
DATA
Subject: n\r\n\r\nb\r\n.
MAIL FROM:bare@origin.test
RCPT TO:<x@bs.test>
DATA
Subject: n\r\n\r\nb\r\n.
MAIL FROM:<>
RCPT TO:<x@bs.test>
DATA
Subject: n\r\n\r\nb\r\n.
MAIL FROM:<root>
RCPT TO:<x@bs.test>
DATA
Subject: n\r\n\r\nb\r\n.
mail from:<lc@origin.test> size=100 body=7bit
rcpt to:<x@bs.test>
data
Subject: n\r\n\r\nb\r\n.
MAIL FROM:<p@origin.test> BODY=8BITMIME SIZE=100
RCPT TO:<x@bs.test>
DATA
Subject: n\r\n\r\nb\r\n.
MAIL FROM:<q@origin.test> Body=8bitMIME
RSET
QUIT
EOF
)
want="$G"
for i in 1 2 3 4 5 6; do
	want="$want
250 2.1.0 Ok
250 2.1.5 Ok
354 End data with <CR><LF>.<CR><LF>
250 2.0.0 Ok: queued as ID"
done
is "$out" "$want
250 2.1.0 Ok
250 2.0.0 Ok
$BYE" "MAIL FROM: space, bare address, <>, <root>, SIZE/BODY in any case, no EHLO: all accepted"
senders=
for id in $(cat "$T/bs.ids"); do
	senders="$senders $(q_env "$id" | sed -n 's/^sender //p')"
done
is "$senders" " space@origin.test bare@origin.test <> root@test.example lc@origin.test p@origin.test" \
    "... queued with senders as given, <> null, root qualified"

# --- command errors -----------------------------------------------------------
fresh
out=$(bs --step -- -odq <<'EOF'
HELO
EHLO
HELO client.example
RCPT TO:<a@bs.test>
DATA
MAIL <a@origin.test>
MAIL FROM:<a@origin.test>
MAIL FROM:<b@origin.test>
DATA
RCPT <a@bs.test>
QUIT
EOF
)
is "$out" "$G
501 5.5.4 Syntax: HELO hostname
501 5.5.4 Syntax: EHLO hostname
250 test.example
503 5.5.1 Error: need MAIL command
503 5.5.1 Error: need MAIL command
501 5.5.4 Syntax: MAIL FROM:<address>
250 2.1.0 Ok
503 5.5.1 Error: nested MAIL command
503 5.5.1 Error: need RCPT command
501 5.5.4 Syntax: RCPT TO:<address>
$BYE" "HELO/EHLO without argument, RCPT/DATA before MAIL, MAIL/RCPT syntax, nested MAIL, DATA before RCPT"

out=$(bs --step -- -odq <<'EOF'
MAIL FROM:<a@origin.test>
RCPT TO:<a@bs.test>
DATA x
RSET x
RSET
DATA
MAIL FROM:<a@origin.test>
RCPT TO:<a@bs.test>
EHLO client.example
DATA
MAIL FROM:<a@origin.test>
RCPT TO:<a@bs.test>
HELO client.example
MAIL FROM:<a@origin.test>
RCPT TO:<nosuchparam@bs.test> FOO=1
DATA
NOOP
HELP
VRFY postmaster
FOO
QUIT
EOF
)
is "$out" "$G
250 2.1.0 Ok
250 2.1.5 Ok
501 5.5.4 Syntax: DATA
501 5.5.4 Syntax: RSET
250 2.0.0 Ok
503 5.5.1 Error: need MAIL command
250 2.1.0 Ok
250 2.1.5 Ok
$EH
503 5.5.1 Error: need MAIL command
250 2.1.0 Ok
250 2.1.5 Ok
250 test.example
250 2.1.0 Ok
555 5.5.4 Unsupported parameter...
503 5.5.1 Error: need RCPT command
250 2.0.0 Ok
214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT HELP VRFY
252 2.5.2 Cannot VRFY user
500 5.5.2 Error: command not recognized
$BYE" "DATA/RSET with argument, RSET/EHLO/HELO reset the transaction, DATA after a refused RCPT, NOOP, HELP, VRFY, unknown verb"
is "$(q_count)" 0 "no message from those sessions"

out=$(bs --step -- -odq <<'EOF'
EXPN staff
STARTTLS
AUTH PLAIN AGFAYg==
BDAT 10 LAST
ETRN bs.test
TURN
expn staff
noop
NoOp
rset
vrfy x
help
QUIT
EOF
)
is "$out" "$G
502 5.5.1 Error: command not implemented
502 5.5.1 Error: command not implemented
502 5.5.1 Error: command not implemented
502 5.5.1 Error: command not implemented
502 5.5.1 Error: command not implemented
502 5.5.1 Error: command not implemented
502 5.5.1 Error: command not implemented
250 2.0.0 Ok
250 2.0.0 Ok
250 2.0.0 Ok
252 2.5.2 Cannot VRFY user
214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT HELP VRFY
$BYE" "EXPN STARTTLS AUTH BDAT ETRN TURN: 502; lower-case verbs"

out=$(bs --step -- -odq <<'EOF'
MAIL FROM:<a@origin.test
MAIL FROM:<a@@origin.test>
MAIL FROM:a@origin.test>
MAIL FROM:<a@origin.test> FOO=1
MAIL FROM:<a@origin.test> SMTPUTF8
MAIL FROM:<a@origin.test> RET=FULL
MAIL FROM:<a@origin.test> SIZE=100 BODY=8BITMIME
QUIT
EOF
)
is "$out" "$G
501 5.1.7 Bad sender address...
501 5.1.7 Bad sender address...
501 5.1.7 Bad sender address...
555 5.5.4 Unsupported parameter...
555 5.5.4 Unsupported parameter...
555 5.5.4 Unsupported parameter...
250 2.1.0 Ok
$BYE" "MAIL: bad sender addresses (unbalanced <, a@@b, unbalanced >): 501 5.1.7; unknown parameters: 555"
out=$(bs --step -- -odq <<'EOF'
MAIL FROM:<a@origin.test>
RCPT TO:<b@@bs.test>
RCPT TO:<b@bs.test
RCPT TO:b@bs.test>
RCPT TO:<b@bs.test> FOO=1
RCPT TO:<b@bs.test> NOTIFY=NEVER
DATA
QUIT
EOF
)
is "$out" "$G
250 2.1.0 Ok
501 5.1.3 Bad recipient address...
501 5.1.3 Bad recipient address...
501 5.1.3 Bad recipient address...
555 5.5.4 Unsupported parameter...
555 5.5.4 Unsupported parameter...
503 5.5.1 Error: need RCPT command
$BYE" "RCPT: bad recipient addresses (a@@b, unbalanced < and >): 501 5.1.3; unknown parameters: 555"

# Control characters and 8-bit bytes in an address never reach the address
# checks: the whole command line is refused first.
out=$(bs --step -- -odq <<'EOF'
MAIL FROM:<a\x01b@origin.test>
MAIL FROM:<caf\xC3\xA9@origin.test>
MAIL FROM:<ok@origin.test>
RCPT TO:<a\x1Bb@bs.test>
RCPT TO:<caf\xC3\xA9@bs.test>
DATA
QUIT
EOF
)
is "$out" "$G
$BAD
$BAD
250 2.1.0 Ok
$BAD
$BAD
503 5.5.1 Error: need RCPT command
$BYE" "control character, 8-bit byte in MAIL/RCPT addresses: 500 bad character in command"
is "$(q_count)" 0 "no message from the error sessions"

# --- limits: line length, bad characters --------------------------------------
fresh
out=$(bs --step -- -odq <<EOF
VRFY $(xs 995)
VRFY $(xs 996)
VRFY $(xs 995)NOOP
$(xs 100000)
NOOP
QUIT
EOF
)
is "$out" "$G
252 2.5.2 Cannot VRFY user
500 5.5.2 Error: line too long
500 5.5.2 Error: line too long
500 5.5.2 Error: line too long
250 2.0.0 Ok
$BYE" "1000 octets is a command; 1001, 1004 and 100000 octets: one 'line too long' each, the rest discarded, the session goes on"

out=$(bs --step -- -odq <<'EOF'
VRFY a\x01b
VRFY a\xE9b
VRFY a\0b
VRFY a\rb
VRFY a\tb
VRFY a\x7Fb
NOOP
QUIT
EOF
)
is "$out" "$G
$BAD
$BAD
$BAD
$BAD
$BAD
$BAD
250 2.0.0 Ok
$BYE" "control characters (^A NUL CR TAB DEL) and 8-bit bytes in a command: 500 bad character"

# --- too many errors ----------------------------------------------------------
fresh
# (RSET in the middle: the count is per session, not per transaction)
ERR9=$(for i in 1 2 3 4 5 6 7 8 9; do echo "FOO $i"; [ $i = 5 ] && echo RSET; done)
R9=$(for i in 1 2 3 4 5 6 7 8 9; do echo "500 5.5.2 Error: command not recognized"; [ $i = 5 ] && echo "250 2.0.0 Ok"; done)
# (the exit status after a 421 is not specified: "exit N")
anyexit() { sed -E 's/^exit [0-9]+$/exit N/; /^\[no reply\]$/d'; }
out=$(printf 'MAIL FROM:<kept@origin.test>\nRCPT TO:<x@bs.test>\nDATA\nSubject: kept\\r\\n\\nb\\r\\n.\n%s\nNOOP\nMAIL FROM:<open@origin.test>\nRCPT TO:<x@bs.test>\nFOO 10\nNOOP\nDATA\nSubject: never\\r\\n\\r\\nb\\r\\n.\nQUIT\n' "$ERR9" |
    bs -- -odq | anyexit)
is "$out" "$G
$TX1
$R9
250 2.0.0 Ok
250 2.1.0 Ok
250 2.1.5 Ok
500 5.5.2 Error: command not recognized
421 4.7.0 test.example Error: too many errors
exit N" "pipelined: 9 errors are borne (RSET and a good message between do not reset the count), the 10th is answered, then 421 and the end"
is "$(qids)" "$(ids)" "too many errors: the acknowledged message stays queued, the open transaction does not"
out=$(printf 'DATA\nRSET x\nHELO\nMAIL\nRCPT TO:<x@bs.test>\nEXPN x\nVRFY a\\x01\nFOO\n%s\nTURN\nNOOP\nNOOP\n' "VRFY $(xs 1001)" | bs --step -- -odq | anyexit)
is "$out" "$G
503 5.5.1 Error: need MAIL command
501 5.5.4 Syntax: RSET
501 5.5.4 Syntax: HELO hostname
501 5.5.4 Syntax: MAIL FROM:<address>
503 5.5.1 Error: need MAIL command
502 5.5.1 Error: command not implemented
$BAD
500 5.5.2 Error: command not recognized
500 5.5.2 Error: line too long
502 5.5.1 Error: command not implemented
421 4.7.0 test.example Error: too many errors
exit N" "lockstep: 503, 501, 502 and 500 replies all count: 421 after the 10th"
is "$(q_count)" 1 "nothing else queued by the cut-off sessions"

# --- data: dot-unstuffing, line ends ------------------------------------------
fresh
out=$(bs -- -odq <<'EOF'
MAIL FROM:<dots@origin.test>
RCPT TO:<x@bs.test>
DATA
From: dots@origin.test\r\nTo: x@bs.test\r\nSubject: dots\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <dots@origin.test>\r\n\r\n..\r\n...x\r\n.x\r\n. y\r\nx..\r\n .\r\n..\r\nend\r\n.
QUIT
EOF
)
is "$out" "$G
$TX1
$BYE" "dot-stuffed data: transcript"
q_msg "$(nth 1)" | sed '1,/^\r$/d' >"$T/got"
printf '.\r\n..x\r\nx\r\n y\r\nx..\r\n .\r\n.\r\nend\r\n' >"$T/want"
is_file "$T/got" "$T/want" "dot-unstuffing: '..' -> '.', '...x' -> '..x', '.x' -> 'x', '. y' -> ' y', other lines as sent"

# Bare LF (and bare CR) end lines inside the data, but the data ends only at
# CRLF "." CRLF: a "." line after or before a bare LF or CR is content, so no
# second transaction can be smuggled inside the first (SMTP smuggling).
fresh
out=$(bs -- -odq <<'EOF'
MAIL FROM:<lf@origin.test>
RCPT TO:<x@bs.test>
DATA
From: lf@origin.test\nTo: x@bs.test\nSubject: bare LF\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nMessage-ID: <lf@origin.test>\n\nline1\r\nline2\n..line3\n.\nMAIL FROM:<evil@origin.test>\r\nRCPT TO:<victim@bs.test>\r\nDATA\r\nsmuggled\r.\r\nNOOP\r\n..\r\c
X\r\n.\r\n\c
MAIL FROM:<lf2@origin.test>
RCPT TO:<y@bs.test>
DATA
Subject: lf2\n\nonly\r\n.
QUIT
EOF
)
is "$out" "$G
$TX1
$TX1
$BYE" "bare LF/CR: only CRLF . CRLF ends the data; the session goes on"
is "$(q_count)" 2 "bare LF/CR: two messages, nothing smuggled"
q_msg "$(nth 1)" | no_rcvd >"$T/got"
printf 'From: lf@origin.test\r\nTo: x@bs.test\r\nSubject: bare LF\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <lf@origin.test>\r\n\r\nline1\r\nline2\r\n.line3\r\n.\r\nMAIL FROM:<evil@origin.test>\r\nRCPT TO:<victim@bs.test>\r\nDATA\r\nsmuggled\r\n.\r\nNOOP\r\n.\r\nX\r\n' >"$T/got.want"
is_file "$T/got" "$T/got.want" "bare LF/CR: lines stored with CRLF; the '.' lines next to a bare LF or CR are content"
is "$(q_env "$(nth 1)" | grep '^rcpt' | awk '{print $NF}')" "x@bs.test" "bare LF/CR: the first message's only recipient"
q_msg "$(nth 2)" | sed '1,/^\r$/d' >"$T/got"
printf 'only\r\n' >"$T/want"
is_file "$T/got" "$T/want" "bare-LF data, second message: its body"

# --- header fix-ups -----------------------------------------------------------
fresh
out=$(bs -- -odq <<'EOF'
EHLO client.example
MAIL FROM:<s@origin.test>
RCPT TO:<x@bs.test>
RCPT TO:<hidden@bs.test>
DATA
To: root, Two <two>\r\nCc: ops\r\nBcc: hidden@bs.test\r\nSubject: fix-ups\r\n\r\nbody\r\n.
MAIL FROM:<s@origin.test>
RCPT TO:<x@bs.test>
DATA
From: root\r\nSubject: own From\r\n\r\nbody\r\n.
MAIL FROM:<s@origin.test>
RCPT TO:<x@bs.test>
DATA
just a body\r\nsecond: line\r\n.
QUIT
EOF
)
is "$(printf '%s\n' "$out" | grep -c '^250 2\.0\.0 Ok: queued as ID$')/$(q_count)" 3/3 "header fix-ups: three messages queued"
q_msg "$(nth 1)" | no_rcvd >"$T/got"
grep -viE '^(date|message-id|from):' "$T/got" >"$T/got.rest"
printf 'To: root@test.example, Two <two@test.example>\r\nCc: ops@test.example\r\nSubject: fix-ups\r\n\r\nbody\r\n' >"$T/want"
is_file "$T/got.rest" "$T/want" "unqualified To/Cc qualified with test.example, Bcc removed, the rest as sent"
is "$(grep -ciE '^date: ' "$T/got")/$(grep -ciE '^message-id: ' "$T/got")/$(grep -ciE '^from: ' "$T/got")" "1/1/1" \
    "Date, Message-ID and From added once each"
like "$(grep -iE '^date:' "$T/got")" \
    '^Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} [-+][0-9]{4}'$'\r''$' \
    "added Date: is RFC 5322"
like "$(grep -iE '^message-id:' "$T/got")" '^Message-I[Dd]: <[^<>@ ]+@test\.example>'$'\r''$' \
    "added Message-ID: <...@test.example>"
like "$(grep -iE '^from:' "$T/got")" '^From: (.*<s@origin\.test>|s@origin\.test)'$'\r''$' \
    "added From: is the envelope sender"
is "$(envof "$(nth 1)")" "sender s@origin.test
rcpt x@bs.test
rcpt hidden@bs.test" "the Bcc recipient is still in the envelope"
q_msg "$(nth 2)" | grep -iE '^from:' >"$T/got"
printf 'From: root@test.example\r\n' >"$T/want"
is_file "$T/got" "$T/want" "an unqualified From: is qualified, none added"
q_msg "$(nth 3)" | no_rcvd >"$T/got"
is "$(sed '/^\r$/q' "$T/got" | sed 's/:.*//' | tr A-Z a-z | sort | tr '\r\n' '|/')" "|/date/from/message-id/" \
    "no header at all: Date, Message-ID, From added"
sed '1,/^\r$/d' "$T/got" >"$T/got.body"
printf 'just a body\r\nsecond: line\r\n' >"$T/want"
is_file "$T/got.body" "$T/want" "no header at all: the whole input is the body"

# --- 8-bit body ---------------------------------------------------------------
fresh
out=$(bs -- -odq <<'EOF'
EHLO client.example
MAIL FROM:<s@origin.test> BODY=8BITMIME
RCPT TO:<x@bs.test>
DATA
From: s@origin.test\r\nTo: x@bs.test\r\nSubject: 8bit\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <8bit@origin.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncaf\xC3\xA9 \xE2\x82\xAC\r\n\xFF\xFE\x80\r\n.
QUIT
EOF
)
is "$out" "$G
$EH
$TX1
$BYE" "8BITMIME body: transcript"
q_msg "$(nth 1)" | no_rcvd >"$T/got"
printf 'From: s@origin.test\r\nTo: x@bs.test\r\nSubject: 8bit\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <8bit@origin.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncaf\303\251 \342\202\254\r\n\377\376\200\r\n' >"$T/want"
is_file "$T/got" "$T/want" "8BITMIME body: stored unchanged"
is "$(q_env "$(nth 1)" | sed -n 's/^body //p')" 8bitmime "8BITMIME body: the envelope says body 8bitmime (beyond the spec)"

# --- data errors: NUL, long header line, size; the session goes on ------------
fresh
out=$({
	echo EHLO client.example
	tx s@origin.test nul 'ab\0cd\r\nNOOP\r\nQUIT' x@bs.test
	tx s@origin.test 'n\0l' 'body\r\nNOOP' x@bs.test
	tx s@origin.test "long\r\nX-Long: $(xs 1000)" 'body\r\nNOOP\r\nQUIT' x@bs.test
	tx ok998@origin.test "998\r\nX-Long: $(xs 990)" body z@bs.test
	tx ok@origin.test good 'good body' y@bs.test
	echo QUIT
} | bs --step -- -odq)
out=$(printf '%s\n' "$out" | sed -E '/^554 5\.6\.0 Message contains a NUL byte$/! s/^(554 5\.6\.0)( .*)?$/\1 .../')
is "$out" "$G
$EH
250 2.1.0 Ok
250 2.1.5 Ok
354 End data with <CR><LF>.<CR><LF>
554 5.6.0 Message contains a NUL byte
250 2.1.0 Ok
250 2.1.5 Ok
354 End data with <CR><LF>.<CR><LF>
554 5.6.0 Message contains a NUL byte
250 2.1.0 Ok
250 2.1.5 Ok
354 End data with <CR><LF>.<CR><LF>
554 5.6.0 ...
$TX1
$TX1
$BYE" "NUL byte in the body, in a header: 554 after the dot (command-like data lines stay data); header line over 998 octets: 554 5.6.0; a 998-octet one is fine; the session goes on"
is "$(qids)" "$(sort "$T/bs.ids" | tr '\n' ' ' | sed 's/ $//')" "data errors: only the good messages are queued"
is "$(envof "$(nth 1)")
$(envof "$(nth 2)")" "sender ok998@origin.test
rcpt z@bs.test
sender ok@origin.test
rcpt y@bs.test" "data errors: the good messages' envelopes"
q_msg "$(nth 1)" | grep '^X-Long: ' | tr -d '\r' >"$T/got"
printf 'X-Long: %s\n' "$(xs 990)" >"$T/want"
is_file "$T/got" "$T/want" "the 998-octet header line is stored whole"

fresh
CONF=$T/conf.size
x98=$(xs 98)
body=
for i in $(seq 1 50); do body="$body$x98\\r\\n"; done
out=$(bs --step -- -odq <<EOF
EHLO client.example
MAIL FROM:<s@origin.test> SIZE=2001
MAIL FROM:<s@origin.test> SIZE=2000
RCPT TO:<x@bs.test>
DATA
Subject: big\r\n\r\n${body}QUIT\r\n.
MAIL FROM:<s@origin.test>
RCPT TO:<x@bs.test>
DATA
Subject: small\r\n\r\nsmall body\r\n.
QUIT
EOF
)
is "$out" "$G
$EH2000
552 5.3.4 Message size exceeds fixed limit
250 2.1.0 Ok
250 2.1.5 Ok
354 End data with <CR><LF>.<CR><LF>
552 5.3.4 Message size exceeds fixed limit
$TX1
$BYE" "max_message_size 2000: SIZE=2001 refused, SIZE=2000 taken; 5 kB of data: 552, then a small message"
is "$(q_count)" 1 "max_message_size: only the small message is queued"
is "$(q_msg "$(q_ids)" | grep -c '^Subject: small')" 1 "max_message_size: ... it is the small one"

# max_message_size 0: SIZE= is still bounded by the queue's 2^50 octets
fresh
CONF=$T/conf.nosize write_conf "max_message_size 0"
CONF=$T/conf.nosize
out=$(bs --step -- -odq <<EOF
EHLO client.example
MAIL FROM:<s@origin.test> SIZE=99999999999999999999
MAIL FROM:<s@origin.test> SIZE=18446744073709551615
MAIL FROM:<s@origin.test> SIZE=9223372036854775807
MAIL FROM:<s@origin.test> SIZE=1125899906842624
MAIL FROM:<s@origin.test> SIZE=1125899906842623
QUIT
EOF
)
is "$out" "$G
250-test.example
250-PIPELINING
250-SIZE
250-8BITMIME
250-ENHANCEDSTATUSCODES
250 HELP
552 5.3.4 Message size exceeds fixed limit
552 5.3.4 Message size exceeds fixed limit
552 5.3.4 Message size exceeds fixed limit
552 5.3.4 Message size exceeds fixed limit
250 2.1.0 Ok
$BYE" "max_message_size 0: SIZE= of 2^50 octets or more (up to 20 digits) is 552, 2^50-1 is taken"

# A header over the limit, ended by a first body line longer than 998 octets
# with a "." at octet 999: the refusal reads on to the real end of the data,
# and nothing in it is taken for a command.
fresh
CONF=$T/conf.size
out=$(bs -- -odq <<EOF
MAIL FROM:<s@origin.test>
RCPT TO:<x@bs.test>
DATA
Subject: big\r\nX-A: $(xs 900)\r\nX-B: $(xs 900)\r\nX-C: $(xs 900)\r\n$(xs 999).\r\nMAIL FROM:<evil@origin.test>\r\nRCPT TO:<victim@bs.test>\r\nDATA\r\nsmuggled\r\n.
QUIT
EOF
)
is "$out" "$G
250 2.1.0 Ok
250 2.1.5 Ok
354 End data with <CR><LF>.<CR><LF>
552 5.3.4 Message size exceeds fixed limit
$BYE" "header over max_message_size, long first body line with '.' at 999: one 552, nothing read as commands"
is "$(q_count)" 0 "... and nothing queued"

# Source routes (RFC 5321 4.1.1.3) are accepted and ignored.
fresh
out=$(bs -- -odq <<'EOF'
MAIL FROM:<@relay.example,@b.example:route@origin.test>
RCPT TO:<@relay.example:x@bs.test>
DATA
Subject: route\r\n\r\nbody\r\n.
QUIT
EOF
)
is "$out" "$G
$TX1
$BYE" "source routes: accepted"
is "$(q_env "$(nth 1)" | grep -E '^(sender|rcpt)' | awk '{print $NF}')" "route@origin.test
x@bs.test" "source routes: ignored, the mailboxes kept"

# --- EOF ----------------------------------------------------------------------
fresh
out=$(bs -- -odq <<'EOF'
EHLO client.example
MAIL FROM:<s@origin.test>
RCPT TO:<x@bs.test>
DATA
Subject: unfinished\r\n\r\nno dot comes
EOF
)
is "$out" "$G
$EH
250 2.1.0 Ok
250 2.1.5 Ok
354 End data with <CR><LF>.<CR><LF>
exit 0" "EOF in the middle of the data: exit 0"
is "$(q_count)/$(q_msg_files | grep -c .)" "0/0" "EOF in the middle of the data: nothing queued, no file left"

out=$(bs -- -odq <<'EOF'
MAIL FROM:<s@origin.test>
RCPT TO:<x@bs.test>
DATA
Subject: done\r\n\r\nfinished\r\n.
MAIL FROM:<s@origin.test>
RCPT TO:<y@bs.test>
DATA
Subject: unfinished\r\n\r\nno dot comes\r\n..\c
EOF
)
is "$out" "$G
$TX1
250 2.1.0 Ok
250 2.1.5 Ok
354 End data with <CR><LF>.<CR><LF>
exit 0" "EOF in the second message's data: exit 0"
is "$(qids)" "$(ids)" "EOF: the acknowledged message stays queued, the unfinished one is not"

fresh
out=$(printf 'MAIL FROM:<s@origin.test>\nRCPT TO:<x@bs.test>\n' | bs -- -odq)
is "$out" "$G
250 2.1.0 Ok
250 2.1.5 Ok
exit 0" "EOF after RCPT, without QUIT: exit 0"
is "$(q_count)" 0 "EOF after RCPT: nothing queued"
out=$(printf '' | bs -- -odq)
is "$out" "$G
exit 0" "EOF right away: greeting, exit 0"

# --- timeouts, -odi to a slow MX: all at once, to save time ---
fresh
CONF=$T/conf.to write_conf "command_timeout 1s" "data_timeout 1s"
CONF=$T/conf.to
(printf 'EHLO client.example\nMAIL FROM:<kept@origin.test>\nRCPT TO:<x@bs.test>\nDATA\nSubject: kept\\r\\n\\r\\nb\\r\\n.\nMAIL FROM:<s@origin.test>\nRCPT TO:<x@bs.test>\n' |
    BSTAG=to1 bs --hold --timeout 10 --elapsed "$T/to1.ms" -- -odq | anyexit >"$T/to1.out") &
p1=$!
(printf '' | BSTAG=to2 bs --hold --timeout 10 -- -odq | anyexit >"$T/to2.out") &
p2=$!
# beyond the spec (which says nothing about a stall in the data): it must
# not wait forever, and it queues nothing
(printf 'MAIL FROM:<s@origin.test>\nRCPT TO:<x@bs.test>\nDATA\nSubject: stall\\r\\n\\r\\nhalf\\c\n' |
    BSTAG=to3 bs --hold --timeout 10 -- -odq >"$T/to3.out") &
p3=$!
# -odi to the slow MX: the exit waits for the delivery (2 s at the MX)
(CONF=$T/conf.slowi write_conf "queue_dir $T/qslowi"
printf 'MAIL FROM:<i@origin.test>\nRCPT TO:<y@slow.test>\nDATA\nSubject: slow -odi\\r\\n\\r\\nb\\r\\n.\nQUIT\n' |
    CONF=$T/conf.slowi BSTAG=slowi bs --elapsed "$T/slowi.ms" -- -odi >"$T/slowi.out"
rx_rcpt_copies $S y@slow.test >"$T/slowi.rx"
ls "$T/qslowi" 2>/dev/null | grep -c '\.msg$' >"$T/slowi.q") &
p5=$!
# the timeout is per command: pauses of half of it, 2 s in all, are fine
(printf 'NOOP\n@sleep 0.5\nNOOP\n@sleep 0.5\nNOOP\n@sleep 0.5\nNOOP\n@sleep 0.5\nQUIT\n' |
    BSTAG=to4 bs --step --hold --timeout 10 -- -odq >"$T/to4.out") &
p4=$!
wait $p1 $p2 $p3 $p4 $p5
is "$(cat "$T/to1.out")" "$G
$EH
$TX1
250 2.1.0 Ok
250 2.1.5 Ok
421 4.4.2 test.example Error: timeout exceeded
exit N" "command_timeout 1s: 421 4.4.2 and the end"
ms=$(cat "$T/to1.ms")
ok '[ $ms -ge 950 ]' "command_timeout 1s: not before a second after the last command (${ms} ms)"
is "$(cat "$T/to4.out")" "$G
250 2.0.0 Ok
250 2.0.0 Ok
250 2.0.0 Ok
250 2.0.0 Ok
$BYE" "command_timeout 1s: a command every 0.5 s for 2 s: no timeout"
is "$(cat "$T/to2.out")" "$G
421 4.4.2 test.example Error: timeout exceeded
exit N" "command_timeout 1s, not a single command: 421 4.4.2"
ok '! grep -q "^\[killed" "$T/to3.out"' "a stall in the data (data_timeout 1s): the session ends by itself" ||
    diag_file "$T/to3.out"
is "$(qids)" "$(cat "$T/to1.ids")" "timeouts: the acknowledged message stays queued; the open transaction, the unfinished data: not"
is "$(cat "$T/slowi.out")" "$G
$TX1
$BYE" "-odi, slow MX: transcript"
ms=$(cat "$T/slowi.ms")
ok '[ $ms -ge 1900 ]' "-odi, slow MX: the process exits only after the delivery (${ms} ms after QUIT)"
is "$(cat "$T/slowi.rx")/$(cat "$T/slowi.q")" "1/0" "-odi, slow MX: delivered and the queue empty when it exits"


# --- delivery: -odi -----------------------------------------------------------
fresh
n0=$(rx_count $M)
out=$(printf '%s\n' "$LOCK" | bs -- -odi)
is "$out" "$WANT" "-odi: the same transcript"
is "$(rx_count $M)" $((n0 + 1)) "-odi: delivered before the exit"
f=$(rx_files $M | tail -n 1)
is "$(rx_env "$f")" "MAIL FROM:<sender@origin.test>
RCPT TO:<one@bs.test>
RCPT TO:<two@bs.test>" "-odi: envelope at the MX"
rx_data "$f" | no_rcvd >"$T/got"
is_file "$T/got" "$T/me.want" "-odi: exact bytes at the MX"
is "$(q_count)" 0 "-odi: the queue is empty"

n0=$(rx_count $M)
out=$({
	echo EHLO client.example
	tx a@origin.test first one a1@bs.test
	echo RSET
	tx b@origin.test second two b1@bs.test b2@bs.test
	tx c@origin.test third three c1@bs.test
} | bs -- -odi)
is "$out" "$G
$EH
$TX1
250 2.0.0 Ok
250 2.1.0 Ok
250 2.1.5 Ok
250 2.1.5 Ok
354 End data with <CR><LF>.<CR><LF>
250 2.0.0 Ok: queued as ID
$TX1
exit 0" "-odi, three messages, EOF instead of QUIT: transcript, exit 0"
is "$(rx_count $M)" $((n0 + 3)) "-odi, three messages: three transactions at the MX"
got=
for f in $(rx_files $M | tail -n 3); do
	got="$got$(rx_env "$f" | tr '\n' ' ')$(rx_data "$f" | grep '^Subject:' | tr -d '\r')
"
done
is "$(printf '%s' "$got" | sort)" "MAIL FROM:<a@origin.test> RCPT TO:<a1@bs.test> Subject: first
MAIL FROM:<b@origin.test> RCPT TO:<b1@bs.test> RCPT TO:<b2@bs.test> Subject: second
MAIL FROM:<c@origin.test> RCPT TO:<c1@bs.test> Subject: third" \
    "-odi, three messages: each with its own envelope"
is "$(q_count)" 0 "-odi, three messages: the queue is empty"

n0=$(rx_count $M)
out=$(bs -- -odi <<'EOF'
MAIL FROM:<s@origin.test>
RCPT TO:<x@bs.test>
DATA
Subject: unfinished\r\n\r\nno dot
EOF
)
is "$(rx_count $M)/$(q_count)" "$n0/0" "-odi, EOF in the data: nothing delivered, nothing queued"

# --- delivery: -odq, then the default (-odb) ----------------------------------
fresh
n0=$(rx_count $M)
out=$(printf '%s\n' "$LOCK" | bs -- -odq)
sleep 0.3
is "$(rx_count $M)/$(q_count)" "$n0/1" "-odq: stays in the queue"

fresh
n0=$(rx_count $M)
out=$(printf '%s\n' "$LOCK" | bs)
is "$out" "$WANT" "default (-odb): the same transcript, and no child holds stdout open"
wait_for '[ "$(rx_count $M)" -gt "$n0" ]' 10
is "$(rx_count $M)" $((n0 + 1)) "default (-odb): delivered in the background"
f=$(rx_files $M | tail -n 1)
rx_data "$f" | no_rcvd >"$T/got"
is_file "$T/got" "$T/me.want" "default (-odb): exact bytes at the MX"
wait_for '[ "$(q_count)" = 0 ]' 5
is "$(q_count)" 0 "default (-odb): the queue empties"

n0=$(rx_count $M)
out=$(printf 'MAIL FROM:<s@origin.test>\nRCPT TO:<x@bs.test>\nDATA\nSubject: eof\\r\\n\\r\\nb\\r\\n.\n' | bs -- -odb)
is "$out" "$G
$TX1
exit 0" "-odb, EOF instead of QUIT: transcript"
wait_for '[ "$(rx_count $M)" -gt "$n0" ]' 10
is "$(rx_env "$(rx_files $M | tail -n 1)")" "MAIL FROM:<s@origin.test>
RCPT TO:<x@bs.test>" "-odb, EOF instead of QUIT: delivered"
wait_for '[ "$(q_count)" = 0 ]' 5
is "$(q_count)" 0 "-odb, EOF instead of QUIT: the queue empties"

# -odb delivers each message as soon as it is queued, while the session stays
# open (a long-running client keeps its transport): the message reaches the MX
# before the client has said QUIT.
n0=$(rx_count $M)
CONF=$T/conf.long write_conf "command_timeout 120s"
printf 'MAIL FROM:<open@origin.test>\nRCPT TO:<x@bs.test>\nDATA\nSubject: open\\r\\n\\r\\nb\\r\\n.\n@sleep 60\nQUIT\n' |
    CONF=$T/conf.long BSTAG=open bs -- -odb >"$T/open.out" &
openpid=$!
wait_for '[ "$(rx_count $M)" -gt "$n0" ]' 30
is "$(rx_count $M):$(kill -0 $openpid 2>/dev/null && echo open)" "$((n0 + 1)):open" \
    "-odb: the message is delivered while the session is still open"
is "$(rx_env "$(rx_files $M | tail -n 1)")" "MAIL FROM:<open@origin.test>
RCPT TO:<x@bs.test>" "-odb, session open: that message"
pkill -f "bsclient.py.*$T/conf.long" 2>/dev/null
wait $openpid 2>/dev/null
wait_for '[ "$(q_count)" = 0 ]' 5
is "$(q_count)" 0 "-odb, session open: the queue empties"

# --- the slow -odb delivery from the start ------------------------------------
is "$slow" "$G
$TX1
$BYE" "-odb, slow MX: transcript, exit 0, stdout closed at the exit"
is "$slow_left" 1 "-odb, slow MX: the session ended with the message still queued (not waiting for the delivery)"
wait_for '[ "$(rx_count $S)" = 2 ] && [ "$(slowq)" = 0 ]' 10
is "$(rx_count $S)/$(slowq)" "2/0" "-odb, slow MX: delivered in the background, the queue empties"
is "$(for f in $(rx_files $S); do rx_env "$f"; done | sort)" "MAIL FROM:<i@origin.test>
MAIL FROM:<s@origin.test>
RCPT TO:<x@slow.test>
RCPT TO:<y@slow.test>" "slow MX: the -odb and the -odi message arrived"

done_testing
