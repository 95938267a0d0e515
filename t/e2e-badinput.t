#!/bin/bash
# e2e-badinput.t - what is refused at the door (and what is not): usage and
# data errors, control characters in addresses, oversize headers, NUL bytes,
# a queue that cannot be written.  Refused input leaves nothing in the queue
# and never reaches the SMTP server.  Addresses 127.0.0.60-69.
. t/lib.sh
need_tools

S=127.0.0.60	# bad.test
start_dns --mx-host=bad.test,mx.bad.test,10 --host-record=mx.bad.test,$S || exit 1
start_smtpd $S || exit 1
write_conf

# refused CODE NAME ARGS... - stdin through mx ARGS must exit CODE, leave the
# queue empty and print one "sendmail: ..." line
refused() {
	local want=$1 name=$2 rc
	shift 2
	mx "$@" >"$T/out" 2>"$T/err"
	rc=$?
	is "$rc" "$want" "$name: exit $want"
	is "$(q_count)/$(q_msg_files | grep -c .)" "0/0" "$name: nothing queued"
	ok '[ "$(wc -l <"$T/err")" = 1 ] && grep -q "^sendmail: ." "$T/err"' \
	    "$name: one-line message on stderr" || diag_file "$T/err" 5
}

# --- usage ---------------------------------------------------------------------
refused 64 "unknown flag -Z" -Z a@bad.test </dev/null
refused 64 "unknown long option" --no-such-option a@bad.test </dev/null

# --- no recipients --------------------------------------------------------------------
refused 65 "-t with empty input" -odi -t </dev/null
printf 'Subject: x\n\nbody\n' | refused 65 "no recipients at all" -odi
printf 'Subject: x\nFrom: a@b.test\n\nTo: not@a.header\n' | refused 65 "-t, no To/Cc/Bcc" -odi -t

# --- NUL bytes -----------------------------------------------------------------------
printf 'Subject: x\n\nab\0cd\n' | refused 65 "NUL byte in the body" -odi u@bad.test
printf 'Subject: x\0y\n\nbody\n' | refused 65 "NUL byte in a header" -odi u@bad.test

# --- a 2 MB header line ----------------------------------------------------------------
{ printf 'Subject: big\nX-Long: '; head -c 2097152 /dev/zero | tr '\0' a; printf '\n\nbody\n'; } >"$T/big"
refused 65 "2 MB header line" -odi u@bad.test <"$T/big"
like "$(cat "$T/err")" '[Hh]eader' "2 MB header line: the message says it is the header"

# --- control characters in addresses ---------------------------------------------
printf 'Subject: x\n\nbody\n' >"$T/plain"
refused 65 "CRLF in -f" -odi -f $'evil@bad.test>\r\nRCPT TO:<inject@bad.test' u@bad.test <"$T/plain"
refused 65 "LF in -f" -odi -f $'evil@bad.test\nx' u@bad.test <"$T/plain"
refused 65 "control char in -f" -odi -f $'ev\001il@bad.test' u@bad.test <"$T/plain"
refused 65 "CRLF in a recipient argument" -odi $'u@bad.test>\r\nDATA' <"$T/plain"
refused 65 "LF in a recipient argument" -odi $'u@bad.test\nRSET' <"$T/plain"
refused 65 "ESC in a recipient argument" -odi $'u\033[2J@bad.test' <"$T/plain"
printf 'To: <evil\001x@bad.test>\nSubject: x\n\nbody\n' |
    refused 65 "control char in To: under -t" -odi -t
printf 'To: <evil\rRCPT TO:<inject@bad.test>\nSubject: x\n\nbody\n' |
    refused 65 "bare CR in To: under -t" -odi -t
printf 'Cc: "x" <a\033b@bad.test>\nSubject: x\n\nbody\n' |
    refused 65 "ESC in Cc: under -t" -odi -t
printf 'Subject: x\n\nbody\n' | refused 65 "empty recipient argument" -odi ''
is "$(rx_conns $S)" 0 "none of the refused input reached the SMTP server"

# --- a first line that is not a header: all of it is the body ---------------------
printf 'hello world\nsecond: line\n\nthird\n' | mx -odq u@bad.test 2>"$T/nc.err"
is "$?" 0 "first line without a colon: accepted"
is "$(q_count)" 1 "... and queued"
q_msg "$(q_ids)" >"$T/m"
no_rcvd <"$T/m" | sed '/^\r$/q' >"$T/head"
sed '1,/^\r$/d' "$T/m" >"$T/got"
printf 'hello world\r\nsecond: line\r\n\r\nthird\r\n' >"$T/exp"
is_file "$T/got" "$T/exp" "the whole input is the body, byte for byte (CRLF)"
is "$(sed 's/:.*//' "$T/head" | tr A-Z a-z | sort | tr '\n' ' ')" $'\r date from message-id ' \
    "header: exactly the added Received, Date, From, Message-ID, then the empty line"
rm -rf "$T/q"

# --- a first line over 998 octets, not a header: the body, broken up ---------------
# (cron output without a header; Postfix breaks long lines with CRLF SPACE)
x1000=$(head -c 1000 /dev/zero | tr '\0' x)
printf '%s%s%s\nnext\n' "$x1000" "$x1000" "$x1000" | mx -odq u@bad.test 2>"$T/long.err"
is "$?" 0 "3000-octet first line without a colon: accepted as body"
q_msg "$(q_ids)" | sed '1,/^\r$/d' >"$T/got"
x998=$(head -c 998 /dev/zero | tr '\0' x)
x997=$(head -c 997 /dev/zero | tr '\0' x)
printf '%s\r\n %s\r\n %s\r\n %s\r\nnext\r\n' "$x998" "$x997" "$x997" \
    "$(head -c 8 /dev/zero | tr '\0' x)" >"$T/exp"
is_file "$T/got" "$T/exp" "... broken into lines of at most 998 octets (CRLF SPACE)"
rm -rf "$T/q"
printf 'Subject: %s\n\nbody\n' "$x1000" | refused 65 "1009-octet Subject: line without a space" -odq u@bad.test
is "$(cat "$T/err")" "sendmail: header line too long (over 998 octets) and no space to fold it at" \
    "an over-long header field that cannot be folded: its message"

# --- long header lines with spaces are folded (PHP's mail() writes To: on one
# --- line): -t takes every recipient, no line over 78 octets, nothing lost
to=
for i in $(seq 1 60); do to="${to}recipient$i@long.test, "; done
subj=
for i in $(seq 1 150); do subj="${subj}word$i "; done
printf 'To: %slast@long.test\nSubject: %send\nX-Cont: first\n %send\n\nbody\n' "$to" "$subj" "$subj" |
    mx -odq -t 2>"$T/fold.err"
is "$?" 0 "a 1500-octet To:, a 1000-octet Subject: and continuation line: accepted (-t)"
FID=$(q_ids)
is "$(q_env "$FID" | grep -c '^rcpt ')" 61 "all 61 recipients of the long To: line"
is "$(q_msg "$FID" | sed '/^\r$/q' | awk 'length($0) > 79' | wc -l | tr -d ' ')" 0 \
    "no header line over 78 octets"
# Unfolded (RFC 5322 2.2.3: remove each CRLF before a space), the fields are
# exactly as written.
q_msg "$FID" | sed '/^\r$/q' | tr -d '\r' | awk '/^[^ \t]/ { if (f) print f; f = $0; next }
    /^[ \t]/ { f = f $0 } END { print f }' | grep -E '^(To|Subject|X-Cont):' >"$T/fold.got"
printf 'To: %slast@long.test\nSubject: %send\nX-Cont: first %send\n' "$to" "$subj" "$subj" >"$T/fold.want"
is_file "$T/fold.got" "$T/fold.want" "unfolded, To:, Subject: and X-Cont: are exactly as written"
rm -rf "$T/q"
x999=$(head -c 999 /dev/zero | tr '\0' x)
printf 'Subject: ok\nX-Cont: first\n %s\n\nbody\n' "$x999" |
    refused 65 "a continuation line of 1000 octets without a space to fold at" -odq u@bad.test

# --- a queue that cannot be written (as nobody: root ignores permissions) ----------
if [ "$(id -u)" = 0 ]; then
	asuser() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
else
	asuser() { "$@"; }
fi
mkdir -p "$T/bin" "$T/ro/q/tmp"
cp "$SENDMAIL" "$T/bin/sendmail"
chmod 755 "$T/bin" "$T/bin/sendmail" "$T/ro" "$T/ro/q" "$T/ro/q/tmp"
[ "$(id -u)" = 0 ] || chmod 555 "$T/ro" "$T/ro/q" "$T/ro/q/tmp"
for case in "missing queue dir that cannot be created:$T/ro/sub/q" \
    "unwritable queue dir:$T/ro/q"; do
	name=${case%%:*} qd=${case#*:}
	CONF=$T/conf.ro write_conf "queue_dir $qd"
	asuser timeout 30 "$T/bin/sendmail" -C "$T/conf.ro" -odq u@bad.test \
	    <"$T/plain" >"$T/out" 2>"$T/err"
	rc=$?
	ok '[ $rc = 73 ] || [ $rc = 75 ]' "$name: exit 73 or 75 (got $rc)"
	ok '[ "$(wc -l <"$T/err")" = 1 ] && grep -q "^sendmail: .*\(queue\|$qd\)" "$T/err"' \
	    "$name: one clear line naming the queue" || diag_file "$T/err" 5
	is "$(find "$T/ro" -type f | wc -l)" 0 "$name: nothing written"
done
CONF=$T/conf

# --- the server works: a good message gets through ---------------------------------
printf 'Subject: good\n\nbody\n' | mx -odi good@bad.test 2>"$T/good.err"
is "$?" 0 "a valid message afterwards: exit 0"
is "$(rx_count $S)" 1 "a valid message afterwards: delivered"
ok '! grep -qi "evil\|inject\|RSET\|DATA" "$T/smtpd-$S/msgs/0001" && ! grep -qi "evil\|inject" "$T/smtpd-$S/trace"' \
    "no byte of the refused input ever reached the server"

done_testing
