#!/bin/bash
# e2e-8bit.t - 8-bit bodies: BODY=8BITMIME where the server offers it,
# converted to 7-bit MIME (quoted-printable) where it does not; 7-bit mail
# is never touched; -B TYPE changes none of it.  Addresses 127.0.0.100-109.
. t/lib.sh
need_tools

E8=127.0.0.100		# e8.test: offers 8BITMIME
E7=127.0.0.101		# e7.test: does not
start_dns --mx-host=e8.test,mx.e8.test,10 --host-record=mx.e8.test,$E8 \
    --mx-host=e7.test,mx.e7.test,10 --host-record=mx.e7.test,$E7 || exit 1
start_smtpd $E8 || exit 1
start_smtpd $E7 --no-8bitmime || exit 1
write_conf

MSG='From: me@origin.test\nTo: u@e8.test\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nMessage-ID: <8@origin.test>\nSubject: caf\303\251\n\nGr\303\274\303\237e aus K\303\266ln = 100%%\n.leading dot\ntrailing space \n'
printf "$MSG" >"$T/in"
printf "$MSG" | to_crlf >"$T/in.crlf"

# The MAIL FROM lines of an 8-bit body declared, and of no body type.
FROM8="> MAIL FROM:<$(id -un)@test\\.example> SIZE=[0-9]+ BODY=8BITMIME\$"
FROM7="> MAIL FROM:<$(id -un)@test\\.example> SIZE=[0-9]+\$"

# last_from ADDR - the last MAIL FROM line in the trace of ADDR
last_from() { grep ' > MAIL FROM' "$T/smtpd-$1/trace" | tail -n 1; }

# send8 N RCPT ADDR NAME - $T/in to RCPT, -odi, stderr in $T/N.err (test
# "NAME: exit 0"); f is then the newest transaction at ADDR, mail_from the
# last MAIL FROM line in its trace
send8() {
	mx -odi "$2" <"$T/in" 2>"$T/$1.err"
	is "$?" 0 "$4: exit 0"
	f=$(rx_last "$3")
	mail_from=$(last_from "$3")
}

# quiet STATUS N NAME - test "NAME: exit 0, nothing said": STATUS is 0
# and $T/N.err empty
quiet() { is "$1:$(cat "$T/$2.err")" "0:" "$3: exit 0, nothing said"; }

# arrives ADDR IN FILE NAME - test NAME: the newest transaction at ADDR,
# kept in $T/FILE, is the file IN after its Received: field
arrives() {
	rx_data "$(rx_last "$1")" | no_rcvd >"$T/$3"
	is_file "$T/$3" "$2" "$4"
}

# --- the server offers 8BITMIME: sent as is, declared ----------------------
send8 1 u@e8.test $E8 "8BITMIME offered"
like "$mail_from" "$FROM8" "8BITMIME offered: MAIL FROM declares BODY=8BITMIME"
arrives $E8 "$T/in.crlf" got8 "8BITMIME offered: the bytes arrive unchanged (after Received:)"

# --- no 8BITMIME: converted, and the content survives ------------------------
send8 2 u@e7.test $E7 "no 8BITMIME"
like "$mail_from" "$FROM7" "no 8BITMIME: no BODY parameter"
rx_data "$f" >"$T/got7"
ok '! LC_ALL=C grep -q "[^[:print:][:space:]]" <(sed "1,/^\r$/d" "$T/got7")' \
    "no 8BITMIME: the body arrives 7-bit"
ok '[ "$(LC_ALL=C awk "length(\$0) > 999" "$T/got7" | wc -l)" = 0 ]' \
    "no 8BITMIME: no line over 998 octets"
is "$(grep -ci '^Content-Transfer-Encoding: quoted-printable' "$T/got7")" 1 \
    "no 8BITMIME: Content-Transfer-Encoding: quoted-printable"
is "$(grep -ci '^MIME-Version: 1.0' "$T/got7")" 1 "no 8BITMIME: MIME-Version added"
"$PY" - "$T/got7" "$T/in.crlf" >"$T/cmp" <<'PY'
import email, sys
got = email.message_from_bytes(open(sys.argv[1], "rb").read())
orig = open(sys.argv[2], "rb").read().split(b"\r\n\r\n", 1)[1]
body = got.get_payload(decode=True)
print("same" if body == orig else "differs: %r vs %r" % (body, orig))
print(got["Subject"] == "caf\udcc3\udca9" or got["Subject"])
PY
is "$(sed -n 1p "$T/cmp")" same "no 8BITMIME: the decoded body is exactly the original"

# --- 7-bit mail to a server without 8BITMIME: untouched ----------------------
printf 'From: me@origin.test\nTo: u@e7.test\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nMessage-ID: <7@origin.test>\nSubject: plain\n\nplain = text\n' >"$T/in7"
to_crlf <"$T/in7" >"$T/in7.crlf"
mx -odi u@e7.test <"$T/in7" 2>"$T/3.err"
is "$?" 0 "7-bit, no 8BITMIME: exit 0"
arrives $E7 "$T/in7.crlf" got77 "7-bit, no 8BITMIME: the bytes arrive unchanged (after Received:)"

# --- -B TYPE: accepted, attached or not, and ignored: the body decides ------
# b_sent WHAT IP RCPT IN BODY ARGS - IN to RCPT (at IP) with -odi and ARGS:
# exit 0, nothing said, MAIL FROM ending in BODY (" BODY=8BITMIME" or ""),
# the bytes of IN arrive unchanged
b_sent() {
	local what=$1 ip=$2 rcpt=$3 in=$4 body=$5
	shift 5
	mx -odi "$@" "$rcpt" <"$in" 2>"$T/b.err"
	is "$?:$(cat "$T/b.err")" "0:" "$what: exit 0, nothing said"
	like "$(grep ' > MAIL FROM' "$T/smtpd-$ip/trace" | tail -n 1)" \
	    "> MAIL FROM:<$(id -un)@test\\.example> SIZE=[0-9]+$body\$" \
	    "$what: MAIL FROM as the body decides:${body:- no BODY}"
	rx_data "$(rx_files "$ip" | tail -n 1)" | no_rcvd >"$T/b.got"
	is_file "$T/b.got" "$in.crlf" "$what: the bytes arrive unchanged"
}
n8=$(grep -c ' > MAIL FROM' "$T/smtpd-$E8/trace")
b_sent "-B 7BIT, 8-bit body" $E8 u@e8.test "$T/in" " BODY=8BITMIME" -B 7BIT
b_sent "-B 8BITMIME (separate)" $E8 u@e8.test "$T/in" " BODY=8BITMIME" \
    -B 8BITMIME
is "$(grep -c ' > MAIL FROM' "$T/smtpd-$E8/trace")" $((n8 + 2)) \
    "-B 7BIT, -B 8BITMIME: one transaction each"
b_sent "-B8BITMIME (attached), 7-bit body, no 8BITMIME" $E7 u@e7.test \
    "$T/in7" "" -B8BITMIME
mx -odq -B8bitmime u@e8.test <"$T/in" 2>"$T/7.err"
is "$?:$(cat "$T/7.err"):$(q_count)" "0::1" "-B8bitmime -odq: exit 0, nothing said, queued"
mx -q 2>"$T/8.err"
arrives $E8 "$T/in.crlf" got8d "-B8bitmime -odq: delivered by the queue run, unchanged"
printf 'Subject: x\n\nx\n' | mx -odq -B 8BIT u@e8.test 2>"$T/9.err"
is "$?:$(cat "$T/9.err")" "64:sendmail: -B takes 7BIT or 8BITMIME, not 8BIT" \
    "-B 8BIT: a usage error"
is "$(q_count)" 0 "queue empty"
done_testing
