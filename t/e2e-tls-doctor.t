#!/bin/bash
# e2e-tls-doctor.t - sendmail --doctor [DOMAIN]: one "ok  WHAT" or
# "FAIL WHAT: advice" line per check; exit 0 only if mail can flow.
# A good MX, a TLS-broken one, an untrusted one, an unreachable one, a
# smarthost with AUTH; a hostname that is no fully qualified domain name,
# and one without address.  Addresses 127.0.0.126-129.
. t/lib.sh
need_tools

D1=127.0.0.126	# mx.good.test: STARTTLS, good cert, AUTH PLAIN LOGIN
D2=127.0.0.127	# mx.broken.test: STARTTLS offered, handshake broken
D3=127.0.0.128	# mx.untrusted.test: STARTTLS, self-signed cert
D4=127.0.0.129	# mx.dead.test: nothing listens

USER=joe
PASS='doctor secret'

pki_init || exit 1
pki_cert good mx.good.test DNS:mx.good.test || exit 1
pki_cert broken mx.broken.test DNS:mx.broken.test || exit 1
pki_self untrusted mx.untrusted.test || exit 1
CA=$PKI/ca.pem

# host.good.test, the configured hostname, is 127.0.0.1: an address of
# this machine wherever the test runs
start_dns --host-record=host.good.test,127.0.0.1 \
    --mx-host=good.test,mx.good.test,10 --host-record=mx.good.test,$D1 \
    --mx-host=broken.test,mx.broken.test,10 --host-record=mx.broken.test,$D2 \
    --mx-host=untrusted.test,mx.untrusted.test,10 \
    --host-record=mx.untrusted.test,$D3 \
    --mx-host=dead.test,mx.dead.test,10 --host-record=mx.dead.test,$D4 \
    --mx-host=mixed.test,mx.dead.test,10 --mx-host=mixed.test,mx.good.test,20 ||
    exit 1
SMTPD_NOWAIT=1
start_tlsd $D1 --cert "$PKI/good.pem" --key "$PKI/good.key" \
    --auth "$USER:$PASS" --auth-required || exit 1
start_tlsd $D2 --cert "$PKI/broken.pem" --key "$PKI/broken.key" \
    --break late-garbage || exit 1
start_tlsd $D3 --cert "$PKI/untrusted.pem" --key "$PKI/untrusted.key" || exit 1
wait_smtpd || exit 1
SMTPD_NOWAIT=0

# doctor NAME [DOMAIN] - run it, output in $T/NAME.out (+ .err), exit in $rc
doctor() {
	local name=$1
	shift
	mx --doctor "$@" >"$T/$name.out" 2>"$T/$name.err"
	rc=$?
	out=$(cat "$T/$name.out" "$T/$name.err")
	fails=$(grep -E '^FAIL' "$T/$name.out" "$T/$name.err" -h)
}
# well_formed NAME - every non-empty stdout line is "ok  ...", "FAIL ...: ..."
# or "warn ...: ..."
well_formed() {
	_wf=$T/$1.out
	ok '[ -s "$_wf" ] && ! grep -vE "^(ok  [^ ].*|(FAIL|warn) [^ ].*: .+|)\$" "$_wf" | grep -q .' \
	    "$1: every line is 'ok  WHAT', 'FAIL WHAT: advice' or 'warn WHAT: advice'" ||
	    diag_file "$_wf"
}

write_conf "hostname host.good.test" "tls verify" "tls_ca_file $CA"
# a queue to check, as mxsend makes it
printf 'Subject: q\n\nbody\n' | mx -odq someone@good.test 2>"$T/q.err"

# --- a good MX --------------------------------------------------------------
doctor good good.test
is "$rc" 0 "good MX: exit 0"
well_formed good
ok '[ "$(grep -c "^ok  " "$T/good.out")" -ge 3 ]' "good MX: several 'ok' lines"
is "$fails" "" "good MX: no FAIL line"
like "$out" 'ok  .*mx\.good\.test' "good MX: an ok line names mx.good.test"
like "$(grep '^ok  ' "$T/good.out")" '(TLS|STARTTLS|[Cc]ertificate)' \
    "good MX: an ok line for STARTTLS / the certificate"
is "$(rx_count $D1)" 0 "doctor sends no mail"
ok 'rx_trace $D1 | grep -q "> STARTTLS"' "doctor did STARTTLS with the MX"

like "$out" 'ok  hostname host\.good\.test resolves to 127\.0\.0\.1, an address of this machine' \
    "good MX: the hostname resolves to an address of this machine"

# --- the hostname: not a fully qualified domain name, or without address ------
# hostcheck NAME HOSTNAME LINE - --doctor good.test with that hostname: mail
# still flows (exit 0), and the hostname line is LINE
hostcheck() {
	write_conf "hostname $2" "tls verify" "tls_ca_file $CA"
	doctor "$1" good.test
	is "$rc" 0 "hostname $2: mail can flow, exit 0"
	is "$(grep -E '^(ok  |FAIL |warn )hostname ' "$T/$1.out")" "$3" "hostname $2: $3"
}
NOFQDN="receivers reject such EHLO names; set hostname to this machine's fully qualified name in DNS"
hostcheck short mailhost "FAIL hostname mailhost has no domain: $NOFQDN"
hostcheck dot mailhost. "FAIL hostname mailhost. has no domain: $NOFQDN"
hostcheck localhost localhost "FAIL hostname localhost is a local name: $NOFQDN"
hostcheck localdomain box.localdomain \
    "FAIL hostname box.localdomain is a local name: $NOFQDN"
hostcheck mdns box.local "FAIL hostname box.local is a local name: $NOFQDN"
NOADDR="receivers reject EHLO names that do not resolve; give it an A or AAAA record for this machine, or set hostname to a name that has one"
hostcheck noaddr nohost.good.test "FAIL hostname nohost.good.test has no address \
(cannot look up address of nohost.good.test: Domain name not found): $NOADDR"
write_conf "hostname host.good.test" "tls verify" "tls_ca_file $CA"

# --- no DOMAIN: the domain of the configured hostname (host.good.test ->
# good.test), which is also the sender's domain here --------------------------
write_conf "hostname host.good.test" "qualify_domain good.test" "tls verify" \
    "tls_ca_file $CA"
doctor dflt
is "$rc" 0 "no DOMAIN (hostname host.good.test, qualify_domain good.test): exit 0"
like "$out" 'ok  .*mx\.good\.test' "no DOMAIN: checks the MX of good.test"
write_conf "hostname host.good.test" "tls verify" "tls_ca_file $CA"

# --- an MX whose TLS handshake breaks ---------------------------------------------
doctor broken broken.test
ok '[ "$rc" != 0 ] && [ "$rc" -lt 128 ]' "broken TLS, tls verify: exit non-zero, no crash (got $rc)"
well_formed broken
like "$fails" 'TLS' "broken TLS: a FAIL line naming TLS"
write_conf "hostname host.good.test" "tls opportunistic"
doctor broken-opp broken.test
ok '[ "$rc" -lt 128 ]' "broken TLS, opportunistic: no crash (got $rc)"
like "$fails" 'TLS' "broken TLS, opportunistic: still a FAIL line naming TLS"
diag "broken TLS, opportunistic: exit $rc"
write_conf "hostname host.good.test" "tls verify" "tls_ca_file $CA"

# --- an untrusted certificate under verify -----------------------------------------
doctor untrusted untrusted.test
ok '[ "$rc" != 0 ] && [ "$rc" -lt 128 ]' "self-signed, tls verify: exit non-zero (got $rc)"
well_formed untrusted
like "$fails" 'TLS|[Cc]ertificate' "self-signed: a FAIL line naming TLS / the certificate"
like "$fails" 'self[- ]signed|unable to get local issuer|not trusted|untrusted|verif' \
    "self-signed: ... saying why"

# --- an MX nothing listens on ---------------------------------------------------------
doctor dead dead.test
ok '[ "$rc" != 0 ] && [ "$rc" -lt 128 ]' "unreachable MX: exit non-zero (got $rc)"
well_formed dead
like "$fails" 'mx\.dead\.test|127\.0\.0\.129' "unreachable MX: a FAIL line names it"
like "$fails" "port (25|$SMTP_PORT)|blocked|smarthost" \
    "unreachable MX: advice mentions the port / blocking / a smarthost"

# --- one MX dead, the other good: mail can flow --------------------------------------
doctor mixed mixed.test
is "$rc" 0 "one dead MX, one good: exit 0 (mail can flow)"
like "$fails" 'mx\.dead\.test|127\.0\.0\.129' "one dead MX, one good: FAIL line for the dead one"
like "$out" 'ok  .*mx\.good\.test' "one dead MX, one good: ok line for the good one"

# --- a domain that does not exist ---------------------------------------------------------
doctor nx nosuchdomain.test
ok '[ "$rc" != 0 ] && [ "$rc" -lt 128 ]' "NXDOMAIN: exit non-zero (got $rc)"
like "$fails" 'MX|DNS|nosuchdomain' "NXDOMAIN: a FAIL line about its MX"

# --- no DNS server answers -------------------------------------------------------------------
write_conf "hostname host.good.test" "tls verify" "tls_ca_file $CA" \
    "dns_server 127.0.0.1:$(free_port)"
t0=$(date +%s)
doctor nodns good.test
ok '[ "$rc" != 0 ] && [ "$rc" -lt 128 ]' "no DNS server: exit non-zero (got $rc)"
like "$fails" 'DNS' "no DNS server: a FAIL line naming DNS"
diag "no DNS server: $(( $(date +%s) - t0 )) s"

# --- a smarthost with AUTH ----------------------------------------------------------------------
umask 077
printf '%s %s %s\n' mx.good.test "$USER" "$PASS" >"$T/auth"
write_conf "hostname host.good.test" "tls_ca_file $CA" "auth_file $T/auth" \
    "smarthost mx.good.test:$SMTP_PORT"
sed -i '/^tls /d' "$CONF"
doctor relay
is "$rc" 0 "smarthost with AUTH: exit 0"
well_formed relay
is "$fails" "" "smarthost with AUTH: no FAIL line"
like "$(grep '^ok  ' "$T/relay.out")" 'AUTH|[Aa]uthentication' \
    "smarthost with AUTH: an ok line for AUTH"
ok 'rx_trace $D1 | grep -q "auth-ok $USER"' "smarthost with AUTH: the server saw the login"
ok '! grep -aqF "$PASS" "$T/relay.out" "$T/relay.err"' "smarthost with AUTH: no password in the output"
is "$(rx_count $D1)" 0 "smarthost: doctor sends no mail"

printf '%s %s %s\n' mx.good.test "$USER" "wrong" >"$T/auth"
doctor relay-badpw
ok '[ "$rc" != 0 ] && [ "$rc" -lt 128 ]' "smarthost, wrong password: exit non-zero (got $rc)"
like "$fails" 'AUTH|[Aa]uthentication' "smarthost, wrong password: a FAIL line about AUTH"

printf '%s %s %s\n' mx.good.test "$USER" "$PASS" >"$T/auth"
chmod 644 "$T/auth"
doctor relay-perm
ok '[ "$rc" != 0 ] && [ "$rc" -lt 128 ]' "auth_file mode 644: exit non-zero (got $rc)"
like "$fails" 'auth_file' "auth_file mode 644: a FAIL line naming auth_file"

done_testing
