#!/bin/bash
# e2e-route.t - routing through real DNS (dnsmasq): one transaction per
# domain, MX preference and fallback, implicit MX, null MX and NXDOMAIN.
# Addresses 127.0.0.20-39.
. t/lib.sh
need_tools

D1=127.0.0.20 D2=127.0.0.21		# d1.test, d2.test
P10=127.0.0.22 P20=127.0.0.23		# pref.test MX 10 and 20
DEAD=127.0.0.24 FB=127.0.0.25		# fb.test MX 10 (nothing listens), 20
IMP=127.0.0.26				# imp.test: an A record, no MX
DEFER=127.0.0.27			# defer.test: nothing listens
# sf.test is forwarded to a stub that answers SERVFAIL to everything,
# tmo.test to a port where nothing answers (a DNS timeout)
SFPORT=$(free_port)
"$PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
open(sys.argv[2], "w").close()
while True:
    q, peer = s.recvfrom(4096)
    s.sendto(q[:2] + bytes([0x80 | (q[2] & 0x79), 0x82]) + q[4:], peer)
' "$SFPORT" "$T/sf.ready" 2>"$T/sf.err" &
_track servfail $!
wait_for '[ -e "$T/sf.ready" ]' || { diag "SERVFAIL stub did not start"; exit 1; }
TMOPORT=$(free_port)
start_dns \
    --server=/sf.test/127.0.0.1#$SFPORT --server=/tmo.test/127.0.0.1#$TMOPORT \
    --mx-host=d1.test,mx.d1.test,10 --host-record=mx.d1.test,$D1 \
    --mx-host=d2.test,mx.d2.test,10 --host-record=mx.d2.test,$D2 \
    --mx-host=pref.test,mx20.pref.test,20 --mx-host=pref.test,mx10.pref.test,10 \
    --host-record=mx10.pref.test,$P10 --host-record=mx20.pref.test,$P20 \
    --mx-host=fb.test,mx10.fb.test,10 --mx-host=fb.test,mx20.fb.test,20 \
    --host-record=mx10.fb.test,$DEAD --host-record=mx20.fb.test,$FB \
    --host-record=imp.test,$IMP \
    --dns-rr=null.test,15,000000 \
    --mx-host=defer.test,mx.defer.test,10 --host-record=mx.defer.test,$DEFER \
    || exit 1
for a in $D1 $D2 $P10 $P20 $FB $IMP; do
	SMTPD_NOWAIT=1 start_smtpd $a
done
wait_smtpd || exit 1
write_conf
ALL="$D1 $D2 $P10 $P20 $FB $IMP"
conns() { local a n=0; for a in $ALL; do n=$((n + $(rx_conns $a))); done; echo $n; }

# --- two domains: one transaction each, with exactly its recipients --------
printf 'Subject: two domains\n\nbody\n' |
    mx -odi x@d1.test y@d2.test z@d1.test 2>"$T/1.err"
is "$?" 0 "two domains: exit 0"
is "$(rx_count $D1) $(rx_count $D2)" "1 1" "two domains: one transaction at each MX"
is "$(rx_env "$(rx_files $D1)" | grep '^RCPT' | sort)" "RCPT TO:<x@d1.test>
RCPT TO:<z@d1.test>" "d1.test transaction has both d1 recipients, nothing else"
is "$(rx_env "$(rx_files $D2)" | grep '^RCPT')" "RCPT TO:<y@d2.test>" \
    "d2.test transaction has its one recipient"
ok 'cmp -s <(rx_data "$(rx_files $D1)") <(rx_data "$(rx_files $D2)")' \
    "both transactions carry the same message bytes"
is "$(rx_conns $D1) $(rx_conns $D2)" "1 1" "one connection per domain"

# --- MX preference ----------------------------------------------------------------
for i in 1 2 3; do
	printf 'Subject: pref %s\n\nbody\n' $i | mx -odi p$i@pref.test 2>>"$T/2.err"
done
is "$(rx_count $P10) $(rx_conns $P20)" "3 0" \
    "preference 10 gets all three, preference 20 is never contacted"

# --- fallback when the best MX refuses connections -------------------------------
printf 'Subject: fallback\n\nbody\n' | mx -odi f@fb.test 2>"$T/3.err"
is "$?" 0 "fallback: exit 0"
is "$(rx_count $FB)" 1 "fallback: delivered to the second MX"
is "$(q_count)" 0 "fallback: nothing left in the queue"

# --- implicit MX --------------------------------------------------------------------
printf 'Subject: implicit\n\nbody\n' | mx -odi i@imp.test 2>"$T/4.err"
is "$?" 0 "implicit MX: exit 0"
is "$(rx_count $IMP)" 1 "implicit MX: delivered to the A record"
is "$(rx_env "$(rx_files $IMP)" | grep '^RCPT')" "RCPT TO:<i@imp.test>" "implicit MX: envelope"

# --- null MX and NXDOMAIN fail permanently; a deferred one keeps the message ---
before=$(conns)
printf 'Subject: perm\n\nbody\n' |
    mx -odi -f '<>' n@null.test x@nx.test d@defer.test 2>"$T/5.err"
is "$?" 0 "null MX + NXDOMAIN + deferred: exit 0 (message safely queued)"
is "$(q_count)" 1 "the message stays queued for the deferred recipient"
is "$(q_rcpt_state n@null.test)" bounced "null MX recipient: failed (bounced: null sender, no report)"
is "$(q_rcpt_state x@nx.test)" bounced "NXDOMAIN recipient: failed (bounced: null sender, no report)"
is "$(q_rcpt_state d@defer.test)" pending "unreachable MX recipient: pending"
ok '[ -n "$(q_rcpt_error n@null.test)" ] && [ -n "$(q_rcpt_error x@nx.test)" ]' \
    "failed recipients have an error recorded"
is "$(conns)" "$before" "nothing was sent anywhere"
rm -rf "$T/q"

# --- SERVFAIL and DNS timeouts defer ---------------------------------------------
printf 'Subject: dns trouble\n\nbody\n' | mx -odi -f '<>' s@sf.test t@tmo.test 2>"$T/8.err"
is "$?" 0 "SERVFAIL, DNS timeout: exit 0 (safely queued)"
is "$(q_rcpt s@sf.test),$(q_rcpt t@tmo.test)" "pending 1,pending 1" \
    "SERVFAIL and DNS timeout: both recipients pending"
rm -rf "$T/q"

printf 'Subject: perm\n\nbody\n' | mx -odi -f '<>' n@null.test 2>"$T/6.err"
rc=$?
ok '[ $rc = 69 ] || [ $rc = 67 ]' "-odi, every recipient refused permanently: exit 69/67 (got $rc)"
is "$(q_count)" 0 "... and nothing stays queued (null sender: no bounce)"
printf 'Subject: perm\n\nbody\n' | mx -odi -f '<>' x@nx.test 2>"$T/7.err"
rc=$?
ok '[ $rc = 69 ] || [ $rc = 67 ]' "-odi, NXDOMAIN only: exit 69/67 (got $rc)"
is "$(conns)" "$before" "still nothing sent"

done_testing
