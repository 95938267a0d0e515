#!/bin/bash
# e2e-tls-smarthost.t - everything through a smarthost: STARTTLS and
# implicit TLS (smarthost_tls, port 465), verify by default, AUTH PLAIN /
# LOGIN (SCRAM-SHA-256 when the client has it) from auth_file, wrong
# passwords and readable auth_files defer, passwords never shown, the
# classic port/TLS-mode mistakes.  Addresses 127.0.0.120-125.
. t/lib.sh
need_tools

H1=127.0.0.120	# relay1.test: STARTTLS, AUTH PLAIN LOGIN required
H2=127.0.0.121	# relay2.test: implicit TLS, AUTH PLAIN LOGIN required
H3=127.0.0.122	# relay3.test: STARTTLS, AUTH LOGIN only
H4=127.0.0.123	# relay4.test: plain text, no STARTTLS, AUTH offered in clear
H5=127.0.0.124	# relay5.test: STARTTLS, AUTH SCRAM-SHA-256 PLAIN LOGIN
H6=127.0.0.125	# relay6.test: implicit TLS on port 465 (when we may bind it)

USER=joe@example.test
PASS='correct horse battery'	# "rest of the line": spaces included

pki_init || exit 1
for i in 1 2 3 4 5 6; do
	pki_cert "relay$i" "relay$i.test" "DNS:relay$i.test" || exit 1
done
CA=$PKI/ca.pem

start_dns --host-record=relay1.test,$H1 --host-record=relay2.test,$H2 \
    --host-record=relay3.test,$H3 --host-record=relay4.test,$H4 \
    --host-record=relay5.test,$H5 --host-record=relay6.test,$H6 || exit 1
SMTPD_NOWAIT=1
A=(--auth "$USER:$PASS")
start_tlsd $H1 --cert "$PKI/relay1.pem" --key "$PKI/relay1.key" "${A[@]}" \
    --mechs PLAIN,LOGIN --auth-required || exit 1
start_tlsd $H2 --cert "$PKI/relay2.pem" --key "$PKI/relay2.key" --implicit \
    "${A[@]}" --mechs PLAIN,LOGIN --auth-required || exit 1
start_tlsd $H3 --cert "$PKI/relay3.pem" --key "$PKI/relay3.key" "${A[@]}" \
    --mechs LOGIN --auth-required || exit 1
start_tlsd $H4 "${A[@]}" --mechs PLAIN,LOGIN --auth-plaintext || exit 1
start_tlsd $H5 --cert "$PKI/relay5.pem" --key "$PKI/relay5.key" "${A[@]}" \
    --mechs SCRAM-SHA-256,PLAIN,LOGIN --auth-required || exit 1
wait_smtpd || exit 1
SMTPD_NOWAIT=0
# port 465 itself, where we may bind it (root) and nothing else listens
have465=0
if ! _port_busy 465; then
	TLSD_PORT=465 start_tlsd $H6 --cert "$PKI/relay6.pem" \
	    --key "$PKI/relay6.key" --implicit "${A[@]}" --auth-required \
	    2>/dev/null && have465=1
	_smtpd_waiting=
fi

# auth_file MODE [HOST PASSWORD]... - $T/auth with these lines, mode MODE
auth_file() {
	local mode=$1
	shift
	{
		echo "# smarthost credentials"
		while [ $# -ge 2 ]; do
			printf '%s %s %s\n' "$1" "$USER" "$2"
			shift 2
		done
	} >"$T/auth"
	chmod "$mode" "$T/auth"
}
# conf_relay SMARTHOST [key value]... - config for a smarthost, tls unset
# (so the smarthost default, verify, applies), the test CA, $T/auth
conf_relay() {
	local sh=$1
	shift
	write_conf "smarthost $sh" "tls_ca_file $CA" "auth_file $T/auth" "$@"
	grep -q '^tls ' <(printf '%s\n' "$@") || sed -i '/^tls /d' "$CONF"
}
# no_secret NAME - the password, and the base64 forms that carry it, are
# in neither $T/NAME.err nor any queue file
B64_PLAIN=$(printf '\0%s\0%s' "$USER" "$PASS" | base64 -w0)
B64_PASS=$(printf '%s' "$PASS" | base64 -w0)
no_secret() {
	_ns=$T/$1.err
	ok '[ -s "$_ns" ] && ! grep -aqF -e "$PASS" -e "$B64_PLAIN" -e "$B64_PASS" "$_ns"' \
	    "$1: the password is not in the -v output"
	ok '! grep -raqF -e "$PASS" -e "$B64_PLAIN" -e "$B64_PASS" "$T/q" 2>/dev/null' \
	    "$1: the password is not in the queue files"
}

# --- STARTTLS smarthost, AUTH PLAIN preferred over LOGIN ---------------------
auth_file 600 relay1.test "$PASS"
conf_relay "relay1.test:$SMTP_PORT"
send st a@far.test b@other.test
is "$rc" 0 "STARTTLS smarthost: exit 0"
is "$(q_count)" 0 "STARTTLS smarthost: delivered, queue empty"
is "$(rx_count $H1)" 1 "STARTTLS smarthost: one transaction for both domains"
F=$(rx_last $H1)
like "$(rx_tls "$F")" '^TLSv1\.[23] ' "STARTTLS smarthost: the server saw a TLS session"
is "$(rx_meta "$F" auth)" "$USER PLAIN" "AUTH PLAIN (preferred over LOGIN)"
is "$(rx_meta "$F" ehlo-after-tls)" yes "EHLO again after STARTTLS"
is "$(rx_meta "$F" sni)" relay1.test "SNI: the smarthost name"
like "$(cat "$T/st.err")" 'TLS: TLSv1\.[23] [^ ]+, peer verified' \
    "-v: 'TLS: ... peer verified' (verify is the smarthost default)"
like "$(grep -i 'AUTH' "$T/st.err")" 'AUTH PLAIN' "-v shows the AUTH command"
no_secret st
ok 'grep -q "query\[A\] relay1.test" "$T/dns.log" &&
    ! grep -Eq "query\[MX\] (far|other)\.test" "$T/dns.log"' \
    "no MX lookup with a smarthost"
reset_q

# --- implicit TLS forced on an arbitrary port ------------------------------------
conf_relay "relay2.test:$SMTP_PORT" "smarthost_tls implicit"
auth_file 600 relay2.test "$PASS"
send impl c@far.test
is "$rc" 0 "implicit TLS smarthost: exit 0"
is "$(q_count)" 0 "implicit TLS smarthost: delivered"
F=$(rx_last $H2)
like "$(rx_tls "$F")" '^TLSv1\.[23] ' "implicit TLS: the server saw a TLS session"
is "$(rx_meta "$F" auth)" "$USER PLAIN" "implicit TLS: AUTH PLAIN"
is "$(rx_meta "$F" sni)" relay2.test "implicit TLS: SNI is the smarthost name"
ok '! rx_trace $H2 | grep -q "> STARTTLS"' "implicit TLS: no STARTTLS command"
no_secret impl
reset_q

# --- port 465 means implicit TLS -----------------------------------------------------
if [ $have465 = 1 ]; then
	conf_relay "relay6.test:465"
	auth_file 600 relay6.test "$PASS"
	send p465 d@far.test
	is "$(q_count)" 0 "smarthost on port 465: implicit TLS by default, delivered"
	like "$(rx_tls "$(rx_last $H6)")" '^TLSv1\.[23] ' "port 465: over TLS"
	reset_q
else
	_tap_result 0 "port 465 # SKIP cannot bind $H6:465"
	_tap_result 0 "port 465 # SKIP cannot bind $H6:465"
fi

# --- AUTH LOGIN ---------------------------------------------------------------------------
conf_relay "relay3.test:$SMTP_PORT"
auth_file 600 relay3.test "$PASS"
send login e@far.test
is "$(q_count)" 0 "AUTH LOGIN only: delivered"
is "$(rx_meta "$(rx_last $H3)" auth)" "$USER LOGIN" "AUTH LOGIN used"
no_secret login
reset_q

# --- SCRAM-SHA-256 > PLAIN > LOGIN ----------------------------------------------------------
conf_relay "relay5.test:$SMTP_PORT"
auth_file 600 relay5.test "$PASS"
send scram f@far.test
is "$(q_count)" 0 "SCRAM-SHA-256 PLAIN LOGIN offered: delivered"
is "$(rx_meta "$(rx_last $H5)" auth)" "$USER SCRAM-SHA-256" \
    "SCRAM-SHA-256 PLAIN LOGIN offered: SCRAM-SHA-256 is chosen"
no_secret scram
reset_q
# A wrong password under SCRAM: the server refuses the proof; deferred.
auth_file 600 relay5.test "not-$PASS"
send scramwrong f2@far.test
is "$(q_count)" 1 "SCRAM, wrong password: the message stays queued"
like "$(q_rcpt_error f2@far.test)" "authentication failed: 535" \
    "SCRAM, wrong password: the error says authentication failed, with the reply"
reset_q

# --- credentials: the smarthost name as written, comments, other hosts --------------
auth_file 600 other.test wrongpassword relay1.test "$PASS"
conf_relay "relay1.test:$SMTP_PORT"
send pick g@far.test
is "$(q_count)" 0 "auth_file with several hosts: the line for the smarthost is used"
reset_q

# --- wrong password: deferred, never bounced ---------------------------------------
auth_file 600 relay1.test 'not the password'
conf_relay "relay1.test:$SMTP_PORT"
m0=$(mails $H1)
send badpw h@far.test
is "$rc" 0 "wrong password: exit 0 (queued)"
is "$(q_count)" 1 "wrong password: the message stays queued (no bounce either)"
is "$(q_rcpt_state h@far.test)" pending "wrong password: recipient pending"
like "$(q_rcpt_error h@far.test)" '[Aa]uthentication failed' \
    "wrong password: error says 'authentication failed'"
like "$(q_rcpt_error h@far.test)" '535' "wrong password: ... with the server's reply"
is "$(mails $H1)" "$m0" "wrong password: no MAIL FROM sent"
ok '! grep -aqF "not the password" "$T/badpw.err"' "wrong password: not in the -v output"
sleep 1.1
mx -q 2>"$T/badpw-q.err"
is "$(q_rcpt_state h@far.test)" pending "wrong password, second try: still pending"
is "$(q_count)" 1 "wrong password, second try: still one message, no bounce"
reset_q

# --- auth_file readable by others / group: refused -------------------------------
auth_file 644 relay1.test "$PASS"
conf_relay "relay1.test:$SMTP_PORT"
n0=$(rx_count $H1)
send perm i@far.test
is "$rc" 0 "auth_file mode 644: exit 0 (queued)"
is "$(q_rcpt_state i@far.test)" pending "auth_file mode 644: recipient pending"
like "$(q_rcpt_error i@far.test)" 'auth_file' "auth_file mode 644: the error names auth_file"
like "$(q_rcpt_error i@far.test)" 'readable by others' \
    "auth_file mode 644: ... and says 'readable by others'"
like "$(cat "$T/perm.err")" 'auth_file.*readable by others|readable by others.*auth_file' \
    "auth_file mode 644: -v shows the error"
is "$(rx_count $H1)" "$n0" "auth_file mode 644: nothing delivered"
no_secret perm
reset_q
auth_file 640 relay1.test "$PASS"
send perm-g j@far.test
is "$(q_rcpt_state j@far.test)" pending "auth_file mode 640 (group-readable): recipient pending"
like "$(q_rcpt_error j@far.test)" 'auth_file.*readable|readable.*auth_file' \
    "auth_file mode 640: refused as readable"
reset_q

# --- classic mistakes ---------------------------------------------------------------
# implicit TLS against a plain-text server (think: smarthost ...:587 with
# smarthost_tls implicit, or a 465 that is not TLS)
auth_file 600 relay4.test "$PASS"
conf_relay "relay4.test:$SMTP_PORT" "smarthost_tls implicit"
send mistake1 k@far.test
is "$rc" 0 "implicit TLS against a plain-text server: exit 0 (no crash)"
is "$(q_rcpt_state k@far.test)" pending "implicit TLS against plain text: pending"
E=$(q_rcpt_error k@far.test)
like "$E" 'implicit TLS' "implicit TLS against plain text: the error says 'implicit TLS'"
like "$E" 'plain[- ]text|587|smarthost_tls starttls' \
    "implicit TLS against plain text: ... the server speaks plain text / use 587 or smarthost_tls starttls"
is "$(mails $H4)" 0 "implicit TLS against plain text: nothing sent"
reset_q

# STARTTLS expected, not offered (the smarthost default is verify)
conf_relay "relay4.test:$SMTP_PORT"
send mistake2 l@far.test
is "$(q_rcpt_state l@far.test)" pending "smarthost without STARTTLS: pending"
like "$(q_rcpt_error l@far.test)" 'does not offer STARTTLS' \
    "smarthost without STARTTLS: error says 'does not offer STARTTLS'"
is "$(mails $H4)" 0 "smarthost without STARTTLS: nothing sent in plain text"
ok '! rx_trace $H4 | grep -q "> AUTH"' "smarthost without STARTTLS: no AUTH in plain text"
reset_q

# STARTTLS smarthost addressed as if it spoke implicit TLS... and the reverse:
# an implicit-TLS server addressed with STARTTLS (the client waits for a
# greeting that never comes in clear): deferred within the timeouts
conf_relay "relay2.test:$SMTP_PORT" "smarthost_tls starttls" "command_timeout 2s"
auth_file 600 relay2.test "$PASS"
t0=$(date +%s)
send mistake3 m@far.test
is "$rc" 0 "STARTTLS against an implicit-TLS server: exit 0 (no crash)"
is "$(q_rcpt_state m@far.test)" pending "STARTTLS against an implicit-TLS server: pending"
ok '[ $(( $(date +%s) - t0 )) -lt 15 ]' "... gives up within the timeouts"
reset_q

# tls none with AUTH offered in plain text: the credentials are not sent
auth_file 600 relay4.test "$PASS"
conf_relay "relay4.test:$SMTP_PORT" "tls none"
send clear n@far.test
ok '! rx_trace $H4 | grep -q "> AUTH"' "tls none: AUTH is never sent in plain text"
no_secret clear
reset_q

# --- the smarthost as an IP literal; verify against the test CA fails on the
# name, required does not check it ------------------------------------------------
# Credentials go only into verified TLS: with tls required the certificate
# is not checked, so the message waits.
auth_file 600 "[$H1]" "$PASS" "$H1" "$PASS"
conf_relay "[$H1]:$SMTP_PORT" "tls required"
nauth=$(rx_trace $H1 | grep -c '> AUTH')
send literal o@far.test
is "$(q_rcpt_state o@far.test)" pending "smarthost [IP]:port, tls required, AUTH PLAIN: pending"
like "$(q_rcpt_error o@far.test)" 'not authenticating to a server whose certificate was not verified' \
    "... because the TLS was not verified"
is "$(rx_trace $H1 | grep -c '> AUTH')" "$nauth" "... and no AUTH command was sent"
no_secret literal
reset_q
# Without credentials the same smarthost takes the mail.
rm -f "$T/auth"
write_conf "smarthost [$H1]:$SMTP_PORT" "tls required" "tls_ca_file $CA"
send literal2 o2@far.test
is "$(q_count)" 0 "smarthost [IP]:port, tls required, no AUTH: delivered"
is "$(rx_tls "$(rx_last $H1)" | cut -c1-3)" "TLS" "... over TLS"
reset_q

# --- verify: the test CA is not in the system store --------------------------------
auth_file 600 relay1.test "$PASS"
write_conf "smarthost relay1.test:$SMTP_PORT" "auth_file $T/auth"
sed -i '/^tls /d' "$CONF"
send sysstore p@far.test
is "$(q_rcpt_state p@far.test)" pending "smarthost, no tls_ca_file: untrusted, pending"
like "$(q_rcpt_error p@far.test)" 'unable to get local issuer certificate|self[- ]signed' \
    "smarthost, no tls_ca_file: the error names the reason"
no_secret sysstore
reset_q

done_testing
