#!/bin/bash
# e2e-tls.t - STARTTLS to MX hosts: the tls policies none / opportunistic /
# required / verify against real TLS servers (t/tlsd.py) with certificates
# made here (good, wrong name, expired, self-signed, a client certificate),
# and servers that break the handshake.  Addresses 127.0.0.110-119.
. t/lib.sh
need_tools

S1=127.0.0.110	# mx.s1.test: STARTTLS, good cert, asks for a client cert
S2=127.0.0.111	# mx.s2.test: plain text only, no STARTTLS
S3=127.0.0.112	# mx.s3.test: STARTTLS, CA-signed cert for another name
S4=127.0.0.113	# mx.s4.test: STARTTLS, expired CA-signed cert
S5=127.0.0.114	# mx.s5.test: STARTTLS, self-signed cert
S6=127.0.0.115	# mx.s6.test: 220 to STARTTLS, then garbage bytes (two ways)
S7=127.0.0.116	# mx.s7.test: 220 to STARTTLS, then closes
S8=127.0.0.117	# mx.s8.test: binary garbage instead of a reply to STARTTLS
S9=127.0.0.118	# mx.s9.test: speaks at most TLS 1.1
S10=127.0.0.119	# mx.s10.test: 220 to STARTTLS, then silence

pki_init || exit 1
pki_cert s1 mx.s1.test DNS:mx.s1.test || exit 1
pki_cert s3 mx.other.test DNS:mx.other.test || exit 1
pki_cert s4 mx.s4.test DNS:mx.s4.test expired || exit 1
pki_self s5 mx.s5.test || exit 1
pki_cert brk mx.brk.test DNS:mx.s6.test,DNS:mx.s7.test,DNS:mx.s8.test,DNS:mx.s9.test,DNS:mx.s10.test || exit 1
pki_cert client client.test || exit 1
CA=$PKI/ca.pem

args=
for i in 1 2 3 4 5 6 7 8 9 10; do
	eval a=\$S$i
	args="$args --mx-host=s$i.test,mx.s$i.test,10 --host-record=mx.s$i.test,$a"
done
# two MX: the preferred one fails verification, the other one is good
args="$args --mx-host=two.test,mx.s3.test,10 --mx-host=two.test,mx.s1.test,20"
# shellcheck disable=SC2086
start_dns $args || exit 1
SMTPD_NOWAIT=1
start_tlsd $S1 --cert "$PKI/s1.pem" --key "$PKI/s1.key" --ca "$CA" || exit 1
start_tlsd $S2 || exit 1
start_tlsd $S3 --cert "$PKI/s3.pem" --key "$PKI/s3.key" || exit 1
start_tlsd $S4 --cert "$PKI/s4.pem" --key "$PKI/s4.key" || exit 1
start_tlsd $S5 --cert "$PKI/s5.pem" --key "$PKI/s5.key" || exit 1
start_tlsd $S6 --cert "$PKI/brk.pem" --key "$PKI/brk.key" --break garbage || exit 1
start_tlsd $S7 --cert "$PKI/brk.pem" --key "$PKI/brk.key" --break close || exit 1
start_tlsd $S8 --cert "$PKI/brk.pem" --key "$PKI/brk.key" --break noise || exit 1
start_tlsd $S9 --cert "$PKI/brk.pem" --key "$PKI/brk.key" --tls-max 1.1 || exit 1
start_tlsd $S10 --cert "$PKI/brk.pem" --key "$PKI/brk.key" --break silent || exit 1
wait_smtpd || exit 1
SMTPD_NOWAIT=0

# --- tls none: no STARTTLS even when offered --------------------------------
write_conf "tls none"
send none a@s1.test
is "$rc" 0 "tls none: exit 0"
is "$(rx_count $S1)" 1 "tls none: delivered"
is "$(rx_tls "$(rx_last $S1)")" none "tls none: in plain text although STARTTLS is offered"
ok '! rx_trace $S1 | grep -q "> STARTTLS"' "tls none: no STARTTLS command"
reset_q

# --- opportunistic is the default for MX delivery ---------------------------
write_conf
sed -i '/^tls /d' "$CONF"
send dflt b@s1.test
is "$rc" 0 "no tls key: exit 0"
like "$(rx_tls "$(rx_last $S1)")" '^TLSv1\.[23] ' \
    "no tls key (opportunistic): the server saw a TLS session"
is "$(rx_meta "$(rx_last $S1)" ehlo-after-tls)" yes "EHLO again after STARTTLS"
is "$(rx_meta "$(rx_last $S1)" sni)" mx.s1.test "SNI: the MX host name"
like "$(cat "$T/dflt.err")" 'TLS: TLSv1\.[23] [^ ]+, peer (not )?verified' \
    "-v: 'TLS: <version> <cipher>, peer ...' line"
is "$(q_count)" 0 "opportunistic over TLS: the queue is empty"
reset_q

# --- opportunistic: untrusted / wrong-name certificates still carry mail ----
write_conf "tls opportunistic"
send opp-self c@s5.test
is "$rc" 0 "opportunistic, self-signed: exit 0"
like "$(rx_tls "$(rx_last $S5)")" '^TLSv1\.[23] ' "opportunistic, self-signed: delivered over TLS"
like "$(cat "$T/opp-self.err")" 'TLS: TLSv1\.[23] [^ ]+, peer not verified' \
    "-v: self-signed peer is 'not verified'"
send opp-name c@s3.test
like "$(rx_tls "$(rx_last $S3)")" '^TLSv1\.[23] ' "opportunistic, wrong name: delivered over TLS"

# --- opportunistic: no STARTTLS offered -> plain text ------------------------
send opp-plain d@s2.test
is "$rc" 0 "opportunistic, no STARTTLS: exit 0"
is "$(rx_count $S2)" 1 "opportunistic, no STARTTLS: delivered"
is "$(rx_tls "$(rx_last $S2)")" none "... in plain text"
reset_q

# --- opportunistic: broken handshakes -> one plain-text retry -----------------
# opp_broken N SERVER WHAT - send to x@sN.test, opportunistic
opp_broken() {
	local n=$1 srv=$2 what=$3 c0 n0 e
	c0=$(rx_conns "$srv")
	n0=$(rx_count "$srv")
	e=opp-s$n-$c0
	send "$e" "x@s$n.test"
	ok '[ "$rc" = 0 ]' "opportunistic, $what: exit 0 (no crash; got $rc)"
	is "$(( $(rx_count "$srv") - n0 ))" 1 "opportunistic, $what: delivered"
	is "$(rx_tls "$(rx_last "$srv")")" none "opportunistic, $what: ... by the plain-text retry"
	is "$(( $(rx_conns "$srv") - c0 ))" 2 "opportunistic, $what: two connections (TLS, then plain)"
	like "$(cat "$T/$e.err")" 'TLS handshake failed' \
	    "opportunistic, $what: -v says 'TLS handshake failed'"
	like "$(cat "$T/$e.err")" 'retrying without TLS' \
	    "opportunistic, $what: -v says 'retrying without TLS'"
	is "$(q_count)" 0 "opportunistic, $what: the queue is empty"
	reset_q
}
opp_broken 7 $S7 "connection closed after 220 to STARTTLS"
opp_broken 8 $S8 "garbage instead of the STARTTLS reply"
opp_broken 9 $S9 "server limited to TLS 1.1"
# restart_s6 MODE - S6 again, with another --break mode (late-garbage: a
# pause between the 220 and the garbage, so that the garbage reaches the TLS
# handshake rather than the reply reader)
restart_s6() {
	stop_server "smtpd-$S6"
	start_tlsd $S6 --cert "$PKI/brk.pem" --key "$PKI/brk.key" --break "$1" ||
	    exit 1
}

# --- required: never in plain text --------------------------------------------
write_conf "tls required"
m0=$(mails $S2)
send req-plain e@s2.test
is "$rc" 0 "required, no STARTTLS: exit 0 (queued)"
is "$(q_rcpt_state e@s2.test)" pending "required, no STARTTLS: recipient pending"
like "$(q_rcpt_error e@s2.test)" 'does not offer STARTTLS' \
    "required, no STARTTLS: error says 'does not offer STARTTLS'"
is "$(rx_count $S2)" 1 "required, no STARTTLS: nothing delivered"
is "$(mails $S2)" "$m0" "required, no STARTTLS: not even MAIL FROM in plain text"
reset_q

send req-self f@s5.test
is "$(q_count)" 0 "required, self-signed: delivered (required does not verify)"
like "$(rx_tls "$(rx_last $S5)")" '^TLSv1\.[23] ' "required, self-signed: over TLS"
reset_q

# req_broken N SERVER WHAT [ERE] - send to y@sN.test: deferred, the error
# matches ERE (default: names TLS), nothing sent
req_broken() {
	local n=$1 srv=$2 what=$3 re=${4:-[Tt][Ll][Ss]} m r
	m=$(mails "$srv")
	r=y$(rx_conns "$srv")@s$n.test
	send "req-s$n-$m" "$r"
	ok '[ "$rc" = 0 ]' "required, $what: exit 0 (no crash; got $rc)"
	is "$(q_rcpt_state "$r")" pending "required, $what: recipient pending"
	like "$(q_rcpt_error "$r")" "$re" "required, $what: error ($re)"
	is "$(mails "$srv")" "$m" "required, $what: nothing sent in plain text"
	reset_q
}
req_broken 7 $S7 "connection closed after 220 to STARTTLS"
req_broken 8 $S8 "garbage instead of the STARTTLS reply" .
req_broken 9 $S9 "server limited to TLS 1.1"
write_conf "tls required" "command_timeout 2s"
t0=$(date +%s)
req_broken 10 $S10 "silence after 220 to STARTTLS"
ok '[ $(( $(date +%s) - t0 )) -lt 15 ]' "required, silence after 220: gives up within the command timeout"

# --- verify: chain and MX name ---------------------------------------------------
write_conf "tls verify" "tls_ca_file $CA"
send ver-good g@s1.test
is "$rc" 0 "verify, good certificate: exit 0"
is "$(q_count)" 0 "verify, good certificate: delivered"
like "$(rx_tls "$(rx_last $S1)")" '^TLSv1\.[23] ' "verify, good certificate: over TLS"
is "$(rx_meta "$(rx_last $S1)" sni)" mx.s1.test "verify: SNI is the MX host name"
like "$(cat "$T/ver-good.err")" 'TLS: TLSv1\.[23] [^ ]+, peer verified' \
    "-v: 'peer verified'"
reset_q

# ver_bad N RCPT ERE WHAT
ver_bad() {
	local n=$1 r=$2 re=$3 what=$4 m srv
	eval srv=\$S$n
	m=$(mails "$srv")
	send "ver-s$n" "$r"
	ok '[ "$rc" = 0 ]' "verify, $what: exit 0 (queued; got $rc)"
	is "$(q_rcpt_state "$r")" pending "verify, $what: recipient pending"
	like "$(q_rcpt_error "$r")" "$re" "verify, $what: the error names the reason"
	is "$(mails "$srv")" "$m" "verify, $what: nothing sent"
	reset_q
}
ver_bad 3 h@s3.test 'hostname mismatch' "wrong name"
ver_bad 4 h@s4.test 'certificate has expired' "expired"
ver_bad 5 h@s5.test 'self[- ]signed certificate|unable to get local issuer certificate' \
    "self-signed"
ver_bad 2 h@s2.test 'does not offer STARTTLS' "no STARTTLS"

# verify uses the system store when tls_ca_file is not set: the test CA is
# not in it
write_conf "tls verify"
ver_bad 1 i@s1.test 'unable to get local issuer certificate|self[- ]signed' \
    "test CA not in the system store"

# --- garbage after the 220 to STARTTLS, two ways, all policies -------------------
write_conf "tls opportunistic"
opp_broken 6 $S6 "garbage right behind the 220 to STARTTLS"
write_conf "tls required"
req_broken 6 $S6 "garbage right behind the 220 to STARTTLS"
restart_s6 late-garbage
write_conf "tls opportunistic"
opp_broken 6 $S6 "garbage 0.2 s after the 220 to STARTTLS"
write_conf "tls required"
req_broken 6 $S6 "garbage 0.2 s after the 220 to STARTTLS"
write_conf "tls verify" "tls_ca_file $CA"
ver_bad 6 h@s6.test '[Tt][Ll][Ss]' "garbage 0.2 s after the 220 to STARTTLS"

# --- verify with two MX: the preferred one fails, the next one carries it -----
write_conf "tls verify" "tls_ca_file $CA"
n1=$(rx_count $S1)
send ver-two j@two.test
is "$(q_count)" 0 "verify, first MX has the wrong name: delivered through the second MX"
is "$(( $(rx_count $S1) - n1 ))" 1 "... the good MX got it"
reset_q

# --- client certificate ------------------------------------------------------------
write_conf "tls verify" "tls_ca_file $CA" "tls_cert $PKI/client.pem" \
    "tls_key $PKI/client.key"
send ccert k@s1.test
is "$(q_count)" 0 "client certificate: delivered"
is "$(rx_meta "$(rx_last $S1)" client-cert)" client.test \
    "client certificate: the server saw it"
reset_q
write_conf "tls verify" "tls_ca_file $CA"
send noccert l@s1.test
is "$(rx_meta "$(rx_last $S1)" client-cert)" none \
    "no tls_cert: no client certificate"
reset_q

done_testing
