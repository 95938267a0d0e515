#!/bin/bash
# e2e-php.t - PHP calls mxsend, and each message reaches the test MX
# exactly as expected:
#   mail()            PHP's own: popen("SENDMAIL_PATH [5th argument]") and
#                     the message on a pipe; sendmail_path given with -d, and
#                     PHP's default "/usr/sbin/sendmail -t -i" in a private
#                     mount namespace where that path is ./sendmail (as in
#                     e2e-clients.t), with MXSEND_CONFIG pointing at the config
#   Symfony Mailer    Debian's php-symfony-mailer (5.4): SendmailTransport
#                     with "-bs" (SMTP over a pipe to our -bs server, one
#                     process for several messages) and with "-t" (which
#                     Symfony turns into "-f SENDER -- RCPT..."), plus its
#                     defaults and DSNs in the namespace
# What PHP wrote is known exactly (for Symfony, SentMessage::toString() is
# the bytes it sent), so the received data is checked byte for byte.
# php-cli and php-symfony-mailer come from .ci/deps (neither pulls in an
# MTA).  Addresses 127.0.0.170-179.
. t/lib.sh
need_tools

command -v php >/dev/null || skip_all "no php (php-cli): run sh .ci/deps"
SYMFONY=/usr/share/php/Symfony/Component/Mailer/autoload.php
[ -f "$SYMFONY" ] ||
    skip_all "no Symfony Mailer ($SYMFONY, php-symfony-mailer): run sh .ci/deps"
php -r "require '$SYMFONY'; exit(class_exists('Symfony\\Component\\Mailer\\Transport\\SendmailTransport') && class_exists('Symfony\\Component\\Mime\\Email') ? 0 : 1);" \
    >/dev/null 2>&1 ||
    skip_all "Symfony Mailer does not load from $SYMFONY: run sh .ci/deps"

# php ARGS... - the CLI with the mail settings that matter pinned (no
# X-PHP-Originating-Script:, CRLF between the header lines PHP writes),
# whatever the host's php.ini says.  (mail.force_extra_parameters cannot be
# pinned: set, even to "", it replaces mail()'s fifth argument.)
PHP_OPTS="-d mail.add_x_header=0 -d mail.mixed_lf_and_crlf=0 -d mail.log=
-d display_errors=stderr -d error_reporting=-1"
php_run() {
	# shellcheck disable=SC2086
	timeout -k 5 60 php $PHP_OPTS "$@"
}

# ---- the private mount namespace (in_ns, t/lib.sh) -------------------------------
NS_WHY=$(ns_why)
# skip NAME - a test that cannot run here, said so in the TAP output
skip() { _tap_result 0 "$1 # SKIP $NS_WHY"; }

# ---- what arrived ----------------------------------------------------------------
# head_masked FILE - the header lines after mxsend's Received: (no_rcvd),
# Date: and Message-ID: values masked
head_masked() {
	rx_head "$1" | no_rcvd | sed -E 's/^(Date|Message-ID): .*/\1: .../I'
}
# rx_mid ADDR MSGID - the transaction at ADDR whose Message-ID: is <MSGID>
# (each message of a -bs session is delivered by its own detached child, so
# they arrive in any order)
rx_mid() {
	local f
	for f in $(rx_files "$1"); do
		[ "$(hdr "$f" Message-ID)" = "Message-ID: <$2>" ] && echo "$f"
	done
	return 0
}
# rx_data_file FILE OUT - the received message bytes after mxsend's
# Received: (no_rcvd) into OUT
rx_data_file() { rx_data "$1" | no_rcvd >"$2"; }

DATE_RE='^Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{1,2} [A-Z][a-z]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} [-+][0-9]{4}$'

# The invoking user, as mxsend makes the From: of a message without one
# (lib.sh's from_line)
ME=$(id -un)

MX1=127.0.0.170		# ext.test: mail()
MX2=127.0.0.171		# sym.test: Symfony Mailer
MX3=127.0.0.172		# ns.test: both, through /usr/sbin/sendmail
start_dns_mx ext.test=$MX1 sym.test=$MX2 ns.test=$MX3 || exit 1
start_smtpds $MX1 $MX2 $MX3 || exit 1
write_conf
CONF=$T/conf-small write_conf "max_message_size 4000"

# ==== PHP mail() ===================================================================

# mail.php TO SUBJECT BODYFILE [HEADERS [PARAMS]] - mail() and what it
# returned ("true"/"false"); HEADERS is a file holding a string, or a
# JSON object (file name ending in .json) for the array form of PHP 7.2+
cat >"$T/mail.php" <<'PHP'
<?php
[, $to, $subject, $bodyfile] = $argv;
$headers = '';
if (isset($argv[4]) && $argv[4] !== '') {
	$headers = file_get_contents($argv[4]);
	if (substr($argv[4], -5) === '.json')
		$headers = json_decode($headers, true);
}
$body = file_get_contents($bodyfile);
$r = isset($argv[5]) ? mail($to, $subject, $body, $headers, $argv[5])
    : mail($to, $subject, $body, $headers);
echo var_export($r, true), "\n";
PHP
MAILCMD="$SENDMAIL -C $T/conf -t -i"
# php_mail NAME ARGS... - mail.php with sendmail_path $MAILCMD; stdout in
# $T/NAME.out, stderr in $T/NAME.err
php_mail() {
	local n=$1
	shift
	php_run -d sendmail_path="$MAILCMD" "$T/mail.php" "$@" \
	    </dev/null >"$T/$n.out" 2>"$T/$n.err"
}

# --- To, Subject, From: and Cc: as extra headers; a body with a lone ".",
# a leading dot, "From " lines (the first body line too), UTF-8 ----------------
printf 'From the start: the first body line\nHello,\n.\n.leading dot\n..two dots\nFrom the start of a line\ncaf\303\251 \342\230\225\nlast line\n' \
    >"$T/p1.body"
printf 'From: Ann Example <ann@ext.test>\r\nCc: cc@ext.test' >"$T/p1.hdr"
php_mail p1 user@ext.test 'Weekly report:  all ok' "$T/p1.body" "$T/p1.hdr"
is "$?" 0 "mail(): php exits 0"
is "$(cat "$T/p1.out")" true "mail(): returns true"
is "$(cat "$T/p1.err")" "" "mail(): nothing on stderr"
ok 'wait_for "[ \$(rx_count $MX1) = 1 ]" 10' "mail(): the message reaches the MX (-odb)"
f=$(rx_last $MX1)
is "$(rx_env "$f")" "MAIL FROM:<$ME@test.example>
RCPT TO:<user@ext.test>
RCPT TO:<cc@ext.test>" "mail(): envelope: the invoking user (no -f), To and Cc recipients (-t)"
is "$(head_masked "$f")" "To: user@ext.test
Subject: Weekly report:  all ok
From: Ann Example <ann@ext.test>
Cc: cc@ext.test
Date: ...
Message-ID: ..." "mail(): header: PHP's To:, Subject:, the extra From: and Cc:, then Date: and Message-ID: added, nothing else"
like "$(hdr "$f" Date)" "$DATE_RE" "mail(): Date: well-formed"
like "$(hdr "$f" Message-ID)" '^Message-ID: <[^@<> ]+@test\.example>$' \
    "mail(): Message-ID: at hostname"
# PHP writes the message as given (LF) and then CRLF: one more, empty line
{ to_crlf <"$T/p1.body"; printf '\r\n'; } >"$T/p1.want"
rx_body "$f" >"$T/p1.got"
is_file "$T/p1.got" "$T/p1.want" \
    "mail(): body byte for byte (lone \".\" kept with -i, dots, From_ lines, UTF-8, PHP's trailing CRLF)"
ok "grep -Eq '> MAIL FROM:<$ME@test.example> (.* )?BODY=8BITMIME( |\$)' '$T/smtpd-$MX1/trace'" \
    "mail(): the 8-bit body goes out as BODY=8BITMIME"
ok 'wait_for "[ \$(q_count) = 0 ]"' "mail(): the queue is empty after delivery"

# --- the fifth argument: -f sets the envelope sender; no From: given ----------------
printf 'bounces go to -f\n' >"$T/p2.body"
php_mail p2 user@ext.test 'with -f' "$T/p2.body" '' '-f bounce@ext.test'
is "$(cat "$T/p2.out")" true "mail() -f: returns true"
ok 'wait_for "[ \$(rx_count $MX1) = 2 ]" 10' "mail() -f: the message reaches the MX"
f=$(rx_last $MX1)
is "$(rx_env "$f")" "MAIL FROM:<bounce@ext.test>
RCPT TO:<user@ext.test>" "mail() -f: envelope sender from the fifth argument"
is "$(head_masked "$f")" "To: user@ext.test
Subject: with -f
Date: ...
Message-ID: ...
$(from_line bounce@ext.test)" \
    "mail() -f: From: added for the -f sender (GECOS name), with Date: and Message-ID:"
printf 'bounces go to -f\r\n\r\n' >"$T/p2.want"
rx_body "$f" >"$T/p2.got"
is_file "$T/p2.got" "$T/p2.want" "mail() -f: body"
ok 'wait_for "[ \$(q_count) = 0 ]"' "mail() -f: the queue is empty after delivery"

# --- a recipient list in To; headers as an array ---------------------------------
printf 'to both\n' >"$T/p3.body"
printf '{"From": "PHP App <app@ext.test>", "Reply-To": "help@ext.test", "X-Mailer": "PHP"}' \
    >"$T/p3.json"
php_mail p3 'a@ext.test, b@ext.test' 'to a list' "$T/p3.body" "$T/p3.json"
is "$(cat "$T/p3.out")" true "mail() to a list: returns true"
ok 'wait_for "[ \$(rx_count $MX1) = 3 ]" 10' "mail() to a list: the message reaches the MX"
f=$(rx_last $MX1)
is "$(rx_env "$f")" "MAIL FROM:<$ME@test.example>
RCPT TO:<a@ext.test>
RCPT TO:<b@ext.test>" "mail() to a list: one transaction, both recipients"
is "$(head_masked "$f")" "To: a@ext.test, b@ext.test
Subject: to a list
From: PHP App <app@ext.test>
Reply-To: help@ext.test
X-Mailer: PHP
Date: ...
Message-ID: ..." "mail() to a list: To: as given, the array headers in order"
printf 'to both\r\n\r\n' >"$T/p3.want"
rx_body "$f" >"$T/p3.got"
is_file "$T/p3.got" "$T/p3.want" "mail() to a list: body"
ok 'wait_for "[ \$(q_count) = 0 ]"' "mail() to a list: the queue is empty after delivery"

# --- fifty recipients: mail() writes To: on one 1,300-octet line; mxsend folds it
to50=$(for i in $(seq 1 50); do printf 'r%02d@ext.test, ' $i; done | sed 's/, $//')
php_mail p6 "$to50" 'to fifty' "$T/p3.body"
is "$(cat "$T/p6.out"):$(cat "$T/p6.err")" "true:" "mail() to 50 recipients: returns true, no error"
ok 'wait_for "[ \$(rx_count $MX1) = 4 ]" 10' "mail() to 50 recipients: the message reaches the MX"
f=$(rx_last $MX1)
is "$(rx_env "$f" | grep -c '^RCPT TO:')" 50 "mail() to 50 recipients: one transaction, all 50"
is "$(rx_head "$f" | awk '/^To:/ { t = 1; s = $0; next } t && /^[ \t]/ { s = s $0; next } { t = 0 }
    END { print s }')" "To: $to50" "mail() to 50 recipients: To: folded, the same once unfolded"
ok 'wait_for "[ \$(q_count) = 0 ]"' "mail() to 50 recipients: the queue is empty after delivery"

# --- bad addresses: mxsend exits 65, mail() returns false, nothing queued ----------
printf 'x\n' >"$T/p4.body"
php_mail p4 'a@@b' bad "$T/p4.body"
is "$?" 0 "mail() to a@@b: php exits 0"
is "$(cat "$T/p4.out")" false "mail() to a@@b: returns false"
is "$(cat "$T/p4.err")" "sendmail: bad address in To: bad domain" \
    "mail() to a@@b: mxsend's reason on stderr (PHP adds nothing)"
php_mail p5 user@ext.test bad "$T/p4.body" '' '-f a@@b'
is "$(cat "$T/p5.out")" false "mail() -f a@@b: returns false"
like "$(cat "$T/p5.err")" '^sendmail: invalid sender: ' \
    "mail() -f a@@b: mxsend says the sender is invalid"
is "$(q_files)" "" "mail(), bad addresses: nothing in the queue, not even in tmp/"
is "$(rx_count $MX1)" 4 "mail(), bad addresses: nothing more reached the MX"

# ==== Symfony Mailer ==================================================================

# sym.php TRANSPORT OUTDIR MSG... - send the named messages (defined below)
# through one transport: TRANSPORT is "default" (new SendmailTransport()),
# "dsn:DSN" (Transport::fromDsn) or a command for new SendmailTransport().
# For each message, a line "NAME: sent" or "NAME: EXCEPTION-CLASS: TEXT"
# on stdout, and in OUTDIR: NAME.sent (SentMessage::toString(), the bytes
# Symfony wrote), NAME.debug (the transport's transcript), NAME.mid (the
# Message-ID); a later message of the same name overwrites them.  Instead
# of a message, "wait:DIR:N" waits (up to 10 s) until DIR holds N files and
# says "wait: arrived" or "wait: timed out".  The transport is destroyed
# (QUIT) before "end".
cat >"$T/sym.php" <<PHP
<?php
require '$SYMFONY';
PHP
cat >>"$T/sym.php" <<'PHP'
use Symfony\Component\Mailer\Transport;
use Symfony\Component\Mailer\Transport\SendmailTransport;
use Symfony\Component\Mime\Email;

[, $spec, $out] = $argv;
if ($spec === 'default')
	$t = new SendmailTransport();
elseif (substr($spec, 0, 4) === 'dsn:')
	$t = Transport::fromDsn(substr($spec, 4));
else
	$t = new SendmailTransport($spec);
echo 'transport: ', $t, "\n";

function msg(string $name): Email {
	switch ($name) {
	case 'full':
		return (new Email())
		    ->from('Ann Example <ann@sym.test>')
		    ->to('Xavier <x@sym.test>')
		    ->cc('cc@sym.test')
		    ->bcc('boss@sym.test')
		    ->subject('Quarterly report:  all ok')
		    ->text("Hello,\n.\n.leading dot\n..two dots\nFrom the start of a line\ncaf\u{e9} \u{2615}\n")
		    ->html("<p>Hello,</p>\n.\n<p>caf\u{e9} \u{2615}</p>\n")
		    ->attach(str_repeat(implode('', array_map('chr', range(0, 255))), 4),
		        'report.bin', 'application/octet-stream')
		    ->attach(".\n.dot\nFrom x\n", 'notes.txt', 'text/plain');
	case 'second':
		return (new Email())->from('ann@sym.test')->to('user@sym.test')
		    ->subject('Second message')->text("two\n");
	case 'big':
		return (new Email())->from('ann@sym.test')->to('user@sym.test')
		    ->subject('Too big')->text(str_repeat("0123456789\n", 500));
	case 'ns':
		return (new Email())->from('ann@ns.test')->to('user@ns.test')
		    ->bcc('boss@ns.test')->subject('via /usr/sbin/sendmail')->text("ns\n");
	}
	throw new Exception("no message $name");
}

foreach (array_slice($argv, 3) as $name) {
	if (preg_match('/^wait:(.*):([0-9]+)$/', $name, $w)) {
		for ($i = 0; $i < 200 && count(glob("$w[1]/*")) < $w[2]; $i++)
			usleep(50000);
		echo 'wait: ', count(glob("$w[1]/*")) >= $w[2] ? 'arrived' : 'timed out', "\n";
		continue;
	}
	try {
		$s = $t->send(msg($name));
		file_put_contents("$out/$name.sent", $s->toString());
		file_put_contents("$out/$name.debug", $s->getDebug());
		file_put_contents("$out/$name.mid", $s->getMessageId());
		echo "$name: sent\n";
	} catch (Throwable $e) {
		echo "$name: ", get_class($e), ': ', $e->getMessage(), "\n";
	}
}
unset($t);
echo "end\n";
PHP

# sym NAME TRANSPORT MSG... - sym.php, output in $T/NAME/ and $T/NAME.out
sym() {
	local n=$1 tr=$2
	shift 2
	mkdir -p "$T/$n"
	php_run "$T/sym.php" "$tr" "$T/$n" "$@" </dev/null >"$T/$n.out" 2>"$T/$n.err"
}
# sym_debug FILE - a transcript (the replies as read, with their CR), the
# CR removed, the 354 text and the queue ID made constant
sym_debug() {
	tr -d '\r' <"$1" |
	    sed -E 's/^(< 354) .*/\1 .../; s/ queued as [^ ]+$/ queued as ID/'
}

# mime_check FILE - the structure of a received "full" message, as Python's
# email package sees it: one line per part, text decoded, attachments
# compared with what was attached
cat >"$T/mime.py" <<'EOF'
import email, email.policy, sys
m = email.message_from_bytes(open(sys.argv[1], "rb").read().split(b"\n\n", 1)[1],
                             policy=email.policy.default)
want_bin = bytes(range(256)) * 4
for p in m.walk():
    line = p.get_content_type()
    if p.is_multipart():
        print(line)
        continue
    cd = p.get_content_disposition()
    if cd == "attachment":
        data = p.get_payload(decode=True)
        if p.get_filename() == "report.bin":
            what = "the 1024 bytes attached" if data == want_bin else repr(data[:40])
        else:
            what = repr(data)
        print(line, cd, p.get_filename(), p["Content-Transfer-Encoding"], what)
    else:
        print(line, p.get_content_charset(), p["Content-Transfer-Encoding"],
              repr(p.get_content()))
EOF
mime_check() { "$PY" "$T/mime.py" "$1"; }
MIME_WANT="multipart/mixed
multipart/alternative
text/plain utf-8 quoted-printable 'Hello,\r\n.\r\n.leading dot\r\n..two dots\r\nFrom the start of a line\r\ncafé ☕\r\n'
text/html utf-8 quoted-printable '<p>Hello,</p>\r\n.\r\n<p>café ☕</p>\r\n'
application/octet-stream attachment report.bin base64 the 1024 bytes attached
text/plain attachment notes.txt base64 b'.\n.dot\nFrom x\n'"

# SECOND - the -bs dialogue of sym.php's "second" message, from its MAIL on
SECOND="> MAIL FROM:<ann@sym.test>
< 250 2.1.0 Ok
> RCPT TO:<user@sym.test>
< 250 2.1.5 Ok
> DATA
< 354 ...
> .
< 250 2.0.0 Ok: queued as ID"

# --- -bs: one message with everything, a second through the same process --------
sym b1 "$SENDMAIL -C $T/conf -bs" full second
is "$?" 0 "Symfony -bs: php exits 0"
is "$(cat "$T/b1.out")" "transport: smtp://sendmail
full: sent
second: sent
end" "Symfony -bs: both messages sent, no exception"
is "$(cat "$T/b1.err")" "" "Symfony -bs: nothing on stderr"
is "$(sym_debug "$T/b1/full.debug")" "< 220 test.example ESMTP mxsend
> HELO [127.0.0.1]
< 250 test.example
> MAIL FROM:<ann@sym.test>
< 250 2.1.0 Ok
> RCPT TO:<x@sym.test>
< 250 2.1.5 Ok
> RCPT TO:<cc@sym.test>
< 250 2.1.5 Ok
> RCPT TO:<boss@sym.test>
< 250 2.1.5 Ok
> DATA
< 354 ...
> .
< 250 2.0.0 Ok: queued as ID" \
    "Symfony -bs: the dialogue (HELO, not EHLO; Bcc in RCPT), replies of the spec"
is "$(sym_debug "$T/b1/second.debug")" "$SECOND" \
    "Symfony -bs: the second message goes through the same session (no new greeting)"
ok 'wait_for "[ \$(rx_count $MX2) = 2 ]" 10' \
    "Symfony -bs: both messages reach the MX (-odb)"
f=$(rx_mid $MX2 "$(cat "$T/b1/full.mid")")
f2=$(rx_mid $MX2 "$(cat "$T/b1/second.mid")")
ok '[ -n "$f" ] && [ -n "$f2" ]' \
    "Symfony -bs: each arrives with the Message-ID: send() returned for it"
is "$(rx_env "$f")" "MAIL FROM:<ann@sym.test>
RCPT TO:<x@sym.test>
RCPT TO:<cc@sym.test>
RCPT TO:<boss@sym.test>" "Symfony -bs: envelope: From, To, Cc and Bcc"
is "$(hdr "$f" From)
$(hdr "$f" To)
$(hdr "$f" Cc)
$(hdr "$f" Subject)" "From: Ann Example <ann@sym.test>
To: Xavier <x@sym.test>
Cc: cc@sym.test
Subject: Quarterly report:  all ok" "Symfony -bs: From:, To:, Cc:, Subject: exact"
is "$(hdr "$f" Bcc)" "" "Symfony -bs: no Bcc: arrives"
is "$(hdr "$f" Date | wc -l | tr -d ' ')$(hdr "$f" Message-ID | wc -l | tr -d ' ')$(hdr "$f" From | wc -l | tr -d ' ')" 111 \
    "Symfony -bs: one Date:, one Message-ID:, one From: (mxsend adds none)"
# Symfony's message ends in CRLF and it then sends CRLF . CRLF: one more,
# empty line, as an SMTP server must keep it
{ cat "$T/b1/full.sent"; printf '\r\n'; } >"$T/b1.want"
rx_data_file "$f" "$T/b1.got"
is_file "$T/b1.got" "$T/b1.want" \
    "Symfony -bs: the message byte for byte as Symfony wrote it (dot-stuffed and unstuffed), plus Symfony's empty last line"
is "$(mime_check "$f")" "$MIME_WANT" \
    "Symfony -bs: multipart/mixed: text and html alternatives, the binary and the text attachment intact"
is "$(rx_env "$f2")" "MAIL FROM:<ann@sym.test>
RCPT TO:<user@sym.test>" "Symfony -bs, second message: envelope"
{ cat "$T/b1/second.sent"; printf '\r\n'; } >"$T/b1s.want"
rx_data_file "$f2" "$T/b1s.got"
is_file "$T/b1s.got" "$T/b1s.want" "Symfony -bs, second message: byte for byte"
ok 'wait_for "[ \$(q_count) = 0 ]"' "Symfony -bs: the queue is empty after delivery"

# --- -bs: a message over max_message_size gets 552, Symfony sends RSET and the
# session goes on --------------------------------------------------------------
sym b2 "$SENDMAIL -C $T/conf-small -bs" big second
is "$(cat "$T/b2.out")" 'transport: smtp://sendmail
big: Symfony\Component\Mailer\Exception\TransportException: Expected response code "250" but got code "552", with message "552 5.3.4 Message size exceeds fixed limit".
second: sent
end' "Symfony -bs, too big: TransportException with mxsend's 552; the next message is sent"
is "$(sym_debug "$T/b2/second.debug")" "> RSET
< 250 2.0.0 Ok
> NOOP
< 250 2.0.0 Ok
$SECOND" "Symfony -bs, too big: RSET and NOOP answered, then the next transaction"
ok 'wait_for "[ \$(rx_count $MX2) = 3 ]" 10' "Symfony -bs, too big: the next message reaches the MX"
f=$(rx_last $MX2)
is "$(hdr "$f" Subject)" "Subject: Second message" "Symfony -bs, too big: what arrives is the next message"
ok 'wait_for "[ \$(q_count) = 0 ]"' "Symfony -bs, too big: the queue is empty after delivery"
is "$(q_files)" "" "Symfony -bs, too big: nothing of it in the queue, not even in tmp/"

# --- -bs, a long-lived transport (a worker's): the first message is
# delivered while the session stays open, before the second is sent --------
sym b3 "$SENDMAIL -C $T/conf -bs" second "wait:$T/smtpd-$MX2/msgs:4" second
is "$(cat "$T/b3.out")" "transport: smtp://sendmail
second: sent
wait: arrived
second: sent
end" "Symfony -bs, long-lived session: the first message reaches the MX while the session is open"
is "$(sym_debug "$T/b3/second.debug" | head -n 1)" "> MAIL FROM:<ann@sym.test>" \
    "Symfony -bs, long-lived session: the second message in the same session"
ok 'wait_for "[ \$(rx_count $MX2) = 5 ]" 10' \
    "Symfony -bs, long-lived session: the second message reaches the MX"
ok '[ -n "$(rx_mid $MX2 "$(cat "$T/b3/second.mid")")" ]' \
    "Symfony -bs, long-lived session: the second arrives with the Message-ID: send() returned"
ok 'wait_for "[ \$(q_count) = 0 ]"' "Symfony -bs, long-lived session: the queue is empty after delivery"

# --- -t -i: Symfony drops -t and runs SENDMAIL -C CONF -i -f'SENDER' -- 'RCPT'... ------
sym t1 "$SENDMAIL -C $T/conf -t -i" full
is "$(cat "$T/t1.out")" "transport: smtp://sendmail
full: sent
end" "Symfony -t -i: sent, no exception"
is "$(cat "$T/t1.err")" "" "Symfony -t -i: nothing on stderr"
ok 'wait_for "[ \$(rx_count $MX2) = 6 ]" 10' "Symfony -t -i: the message reaches the MX"
f=$(rx_last $MX2)
is "$(rx_env "$f")" "MAIL FROM:<ann@sym.test>
RCPT TO:<x@sym.test>
RCPT TO:<cc@sym.test>
RCPT TO:<boss@sym.test>" "Symfony -t -i: envelope from -f and the arguments after --, Bcc included"
is "$(hdr "$f" From)
$(hdr "$f" To)
$(hdr "$f" Cc)
$(hdr "$f" Subject)
$(hdr "$f" Bcc)" "From: Ann Example <ann@sym.test>
To: Xavier <x@sym.test>
Cc: cc@sym.test
Subject: Quarterly report:  all ok
" "Symfony -t -i: From:, To:, Cc:, Subject: exact, no Bcc:"
# piped with LF line ends (Symfony turns CRLF into LF), sent with CRLF
rx_data_file "$f" "$T/t1.got"
is_file "$T/t1.got" "$T/t1/full.sent" \
    "Symfony -t -i: the message byte for byte as Symfony wrote it"
is "$(mime_check "$f")" "$MIME_WANT" "Symfony -t -i: the MIME structure and parts intact"
ok 'wait_for "[ \$(q_count) = 0 ]"' "Symfony -t -i: the queue is empty after delivery"

# --- -t without -i: Symfony then doubles every leading dot itself ("\n." to
# "\n..", symfony/symfony#50875); mxsend, as Postfix and Sendmail do without
# -i, ends only at a lone "." (there is none left) and keeps the rest as is
sym t2 "$SENDMAIL -C $T/conf -t" full
is "$(cat "$T/t2.out")" "transport: smtp://sendmail
full: sent
end" "Symfony -t: sent, no exception"
ok 'wait_for "[ \$(rx_count $MX2) = 7 ]" 10' "Symfony -t: the message reaches the MX"
f=$(rx_last $MX2)
is "$(rx_env "$f")" "MAIL FROM:<ann@sym.test>
RCPT TO:<x@sym.test>
RCPT TO:<cc@sym.test>
RCPT TO:<boss@sym.test>" "Symfony -t: envelope"
sed 's/^\./../' "$T/t2/full.sent" >"$T/t2.want"
rx_data_file "$f" "$T/t2.got"
is_file "$T/t2.got" "$T/t2.want" \
    "Symfony -t: the whole message arrives, with the leading dots Symfony doubled"
ok 'wait_for "[ \$(q_count) = 0 ]"' "Symfony -t: the queue is empty after delivery"

# --- -t -i, too big: mxsend exits 65 with its reason, Symfony throws it ----------------
sym t3 "$SENDMAIL -C $T/conf-small -t -i" big
is "$(cat "$T/t3.out")" "transport: smtp://sendmail
big: Symfony\\Component\\Mailer\\Exception\\TransportException: Process failed with exit code 65: sendmail: message is larger than max_message_size (4000 octets)

end" "Symfony -t -i, too big: TransportException with mxsend's exit status and message"
is "$(q_files)" "" "Symfony -t -i, too big: nothing in the queue, not even in tmp/"
is "$(rx_count $MX2)" 7 "Symfony -t -i, too big: nothing more reached the MX"

# ==== defaults: /usr/sbin/sendmail in a private mount namespace ===========================

# ns_php ARGS... - php_run in the namespace, mxsend configured by MXSEND_CONFIG
ns_php() {
	# shellcheck disable=SC2086
	in_ns env MXSEND_CONFIG="$T/conf" php $PHP_OPTS "$@"
}
# ns_case NAME RX-COUNT OUT-WANT ENV-WANT - the checks of one namespace case
ns_case() {
	local n=$1 c=$2 f
	is "$(cat "$T/$n.out")" "$3" "$n: output"
	is "$(cat "$T/$n.err")" "" "$n: nothing on stderr"
	ok "wait_for '[ \$(rx_count $MX3) = $c ]' 10" "$n: the message reaches the MX"
	f=$(rx_last $MX3)
	is "$(rx_env "$f")" "$4" "$n: envelope"
	is "$(hdr "$f" Bcc)" "" "$n: no Bcc: arrives"
	ok 'wait_for "[ \$(q_count) = 0 ]"' "$n: the queue is empty after delivery"
}
# sym_ns NAME N DSN - Symfony Mailer's transport DSN in the namespace (its
# files in $T/nN): the Nth message at ns.test, from ann@ns.test to user
# and boss, through /usr/sbin/sendmail
sym_ns() {
	ns_php "$T/sym.php" "$3" "$T/n$2" ns </dev/null >"$T/$1.out" \
	    2>"$T/$1.err"
	ns_case "$1" "$2" "transport: smtp://sendmail
ns: sent
end" "MAIL FROM:<ann@ns.test>
RCPT TO:<user@ns.test>
RCPT TO:<boss@ns.test>"
}
mkdir -p "$T/n2" "$T/n3" "$T/n4"
if [ -n "$NS_WHY" ]; then
	skip "mail() and Symfony through /usr/sbin/sendmail"
else
	sbin_before=$(sbin_state)

	# PHP's compiled-in sendmail_path, which Debian's php.ini leaves alone
	is "$(php -r 'echo ini_get("sendmail_path");')" "/usr/sbin/sendmail -t -i" \
	    "PHP's default sendmail_path is /usr/sbin/sendmail -t -i"
	printf 'ns mail\n' >"$T/n1.body"
	printf 'From: Ann <ann@ns.test>\r\nBcc: boss@ns.test' >"$T/n1.hdr"
	ns_php "$T/mail.php" user@ns.test 'default sendmail_path' "$T/n1.body" "$T/n1.hdr" \
	    </dev/null >"$T/mail-default.out" 2>"$T/mail-default.err"
	ns_case mail-default 1 true "MAIL FROM:<$ME@test.example>
RCPT TO:<user@ns.test>
RCPT TO:<boss@ns.test>"
	f=$(rx_last $MX3)
	printf 'ns mail\r\n\r\n' >"$T/n1.want"
	rx_body "$f" >"$T/n1.got"
	is_file "$T/n1.got" "$T/n1.want" "mail-default: body"

	# new SendmailTransport(): /usr/sbin/sendmail -bs
	sym_ns sym-default 2 default
	# sendmail://default: the same, through the DSN factory
	sym_ns sym-dsn 3 dsn:sendmail://default
	# native://default: SendmailTransport(ini sendmail_path), "-t -i" mode
	sym_ns sym-native 4 dsn:native://default
	is "$(sbin_state)" "$sbin_before" \
	    "namespace: host /usr/sbin untouched (no sendmail, no mounts leaked)"
fi

done_testing
