#!/bin/bash
# e2e-auth-unverified.t - AUTH goes only to a verified peer: under tls
# required or opportunistic a smarthost with credentials gets no AUTH
# command at all (not even SCRAM-SHA-256) and the mail waits with one
# reason naming the fix; auth_unverified yes lets SCRAM (never PLAIN or
# LOGIN) through; tls verify with the right CA authenticates.  A refused
# AUTH leaves the server's reply, never the user name (masked where the
# server echoes it), in the queue and in mailq.  Addresses 127.0.0.210-212.
. t/lib.sh
need_tools

H1=127.0.0.210	# relay1.test: STARTTLS, self-signed, SCRAM-SHA-256 PLAIN LOGIN
H2=127.0.0.211	# relay2.test: STARTTLS, test CA, SCRAM-SHA-256 PLAIN LOGIN,
		# a refusal names the user
H3=127.0.0.212	# relay3.test: STARTTLS, self-signed, PLAIN LOGIN only

USER=relay-login-4711@example.test
PASS='correct horse battery'

pki_init || exit 1
pki_self relay1 relay1.test || exit 1
pki_cert relay2 relay2.test DNS:relay2.test || exit 1
pki_self relay3 relay3.test || exit 1
CA=$PKI/ca.pem

start_dns --host-record=relay1.test,$H1 --host-record=relay2.test,$H2 \
    --host-record=relay3.test,$H3 || exit 1
SMTPD_NOWAIT=1
A=(--auth "$USER:$PASS" --auth-required)
start_tlsd $H1 --cert "$PKI/relay1.pem" --key "$PKI/relay1.key" "${A[@]}" \
    --mechs SCRAM-SHA-256,PLAIN,LOGIN || exit 1
start_tlsd $H2 --cert "$PKI/relay2.pem" --key "$PKI/relay2.key" "${A[@]}" \
    --mechs SCRAM-SHA-256,PLAIN,LOGIN --echo-user || exit 1
start_tlsd $H3 --cert "$PKI/relay3.pem" --key "$PKI/relay3.key" "${A[@]}" \
    --mechs PLAIN,LOGIN || exit 1
wait_smtpd || exit 1
SMTPD_NOWAIT=0

# auth_file HOST PASSWORD - $T/auth, mode 600
auth_file() {
	printf '%s %s %s\n' "$1" "$USER" "$2" >"$T/auth"
	chmod 600 "$T/auth"
}
auths() { rx_trace "$1" | grep -c '> AUTH'; }
WHY='relay1.test\[127\.0\.0\.210\]:[0-9]+: not authenticating to a server whose certificate was not verified \(tls (required|opportunistic)\); use tls verify with the right tls_ca_file, or auth_unverified yes'

# --- tls required, self-signed: no AUTH, deferred ------------------------------
auth_file relay1.test "$PASS"
write_conf "smarthost relay1.test:$SMTP_PORT" "tls required" "auth_file $T/auth"
send req a@far.test
is "$rc" 0 "tls required, unverified peer: exit 0 (queued)"
is "$(q_count)" 1 "tls required: the message stays queued"
is "$(q_rcpt_state a@far.test)" pending "tls required: the recipient is pending"
like "$(q_rcpt_error a@far.test)" "^$WHY\$" \
    "tls required: the one reason names tls verify, tls_ca_file and auth_unverified"
is "$(rx_trace $H1 | grep -c '> STARTTLS')" 1 "tls required: STARTTLS was done"
is "$(auths $H1)" 0 "tls required: the server's transcript has no AUTH command"
is "$(rx_trace $H1 | grep -c '> MAIL')" 0 "tls required: no MAIL either"
is "$(rx_count $H1)" 0 "tls required: nothing delivered"
reset_q

# --- tls opportunistic: the same ---------------------------------------------------------
write_conf "smarthost relay1.test:$SMTP_PORT" "tls opportunistic" \
    "auth_file $T/auth"
send opp b@far.test
is "$(q_rcpt_state b@far.test)" pending "tls opportunistic, unverified peer: pending"
like "$(q_rcpt_error b@far.test)" "^$WHY\$" "tls opportunistic: the same reason"
like "$(q_rcpt_error b@far.test)" '\(tls opportunistic\)' "... naming the policy in force"
is "$(auths $H1)" 0 "tls opportunistic: still no AUTH command in the transcript"
is "$(rx_count $H1)" 0 "tls opportunistic: nothing delivered"
# a queue run says the same
sleep 1.1
mx -q 2>"$T/opp-q.err"
is "$(q_rcpt_state b@far.test)" pending "tls opportunistic, -q: still pending"
is "$(auths $H1)" 0 "tls opportunistic, -q: no AUTH command"
reset_q

# --doctor says the same, with the fix
mx --doctor >"$T/doctor.out" 2>&1
rc=$?
ok '[ "$rc" = 1 ]' "--doctor, unverified peer with credentials: exit 1 (got $rc)"
like "$(grep '^FAIL relay1' "$T/doctor.out")" 'not authenticating.*: credentials go only to a server whose certificate verifies: tls verify' \
    "--doctor: a FAIL line with the reason and the fix"
is "$(auths $H1)" 0 "--doctor: no AUTH command either"

# --- auth_unverified yes: SCRAM goes through ---------------------------------------
write_conf "smarthost relay1.test:$SMTP_PORT" "tls required" "auth_file $T/auth" \
    "auth_unverified yes"
send scram c@far.test
is "$rc" 0 "auth_unverified yes: exit 0"
is "$(q_count)" 0 "auth_unverified yes: delivered"
is "$(rx_meta "$(rx_last $H1)" auth)" "$USER SCRAM-SHA-256" \
    "auth_unverified yes: authenticated with SCRAM-SHA-256"
is "$(auths $H1)" 1 "auth_unverified yes: one AUTH command"
reset_q

# ... but never PLAIN or LOGIN to an unverified peer
auth_file relay3.test "$PASS"
write_conf "smarthost relay3.test:$SMTP_PORT" "tls required" "auth_file $T/auth" \
    "auth_unverified yes"
send plain d@far.test
is "$(q_rcpt_state d@far.test)" pending "auth_unverified yes, PLAIN/LOGIN only: pending"
like "$(q_rcpt_error d@far.test)" 'not sending a password with AUTH PLAIN or LOGIN over TLS that was not verified' \
    "auth_unverified yes, PLAIN/LOGIN only: says why"
is "$(auths $H3)" 0 "auth_unverified yes, PLAIN/LOGIN only: no AUTH command"
reset_q

# --- tls verify with the right CA: authenticates ----------------------------------
auth_file relay2.test "$PASS"
write_conf "smarthost relay2.test:$SMTP_PORT" "tls verify" "tls_ca_file $CA" \
    "auth_file $T/auth"
send verify e@far.test
is "$(q_count)" 0 "tls verify, right CA: delivered"
is "$(rx_meta "$(rx_last $H2)" auth)" "$USER SCRAM-SHA-256" \
    "tls verify, right CA: authenticated"
like "$(cat "$T/verify.err")" 'peer verified' "-v says the peer was verified"
reset_q

# --- a refused AUTH: the reply, not the user name, in the queue and mailq ---------
auth_file relay2.test "not-$PASS"
send badpw f@far.test
is "$(q_rcpt_state f@far.test)" pending "wrong password: pending"
E=$(q_rcpt_error f@far.test)
is "$(rx_trace $H2 | grep -c "< 535 5.7.8 Authentication failed for $USER")" 1 \
    "wrong password: the server's refusal named the user"
like "$E" '^relay2\.test\[127\.0\.0\.211\]:[0-9]+: authentication failed: 535 5\.7\.8 Authentication failed for \*+$' \
    "wrong password: 'authentication failed' with the server's reply, the name masked"
ok '! grep -raqF "${USER%@*}" "$T/q"' "wrong password: the user name is in no queue file"
mx -bp >"$T/mailq.out" 2>&1
ok 'grep -q "authentication failed: 535" "$T/mailq.out"' "mailq shows the server's reply code"
ok '! grep -qF "${USER%@*}" "$T/mailq.out"' "mailq does not show the user name"
mx --queue-json >"$T/json.out" 2>&1
ok 'grep -q "535" "$T/json.out" && ! grep -qF "${USER%@*}" "$T/json.out"' \
    "--queue-json: the reply code, not the user name"
# -v shows the server's replies as received ("<<< "): only to whoever
# could read auth_file (mode 600) and so knows the name anyway
ok 'grep -q "^<<< 535 " "$T/badpw.err" && ! grep -v "^<<< " "$T/badpw.err" | grep -qF "${USER%@*}"' \
    "-v: mxsend's own lines do not show the user name"
reset_q

# --- a bad value is a config error naming the line -----------------------------
write_conf "smarthost relay2.test:$SMTP_PORT" "auth_unverified maybe"
n=$(grep -n '^auth_unverified' "$T/conf" | cut -d: -f1)
mx -bp >"$T/bad.out" 2>"$T/bad.err"
rc=$?
is "$rc" 78 "auth_unverified maybe: exit 78 (EX_CONFIG)"
is "$(cat "$T/bad.err")" "sendmail: $T/conf:$n: auth_unverified: expected no or yes" \
    "auth_unverified maybe: one line naming the file and line"

done_testing
