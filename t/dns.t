#!/bin/sh
# dns.t - dns.c against a real DNS server: dnsmasq on 127.0.0.1, a random
# high port, serving the zone below; a perl UDP socket that never answers
# stands for a dead upstream.  Runs t/dnstest; exact output lines.

DNSMASQ=${DNSMASQ:-/usr/sbin/dnsmasq}
T=${DNSTEST:-t/dnstest}
. t/unit.sh
if [ ! -x "$DNSMASQ" ]; then
	echo "1..0 # SKIP no dnsmasq"
	exit 0
fi

dpid=
bpid=
cleanup() {
	[ -n "$dpid" ] && kill "$dpid" 2>/dev/null
	[ -n "$bpid" ] && kill "$bpid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# rport - a random port in 20000-59999
rport() {
	echo $(( $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000 + 20000 ))
}

# The black hole: takes queries, never answers (no ICMP either).
for try in 1 2 3 4 5; do
	B=$(rport)
	perl -MIO::Socket::INET -e '
		my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1",
		    LocalPort => $ARGV[0], Proto => "udp") or exit 1;
		open(my $f, ">", $ARGV[1]) or exit 1; close $f;
		my $b; while (1) { $s->recv($b, 4096) }' "$B" "$tmp/bh.ok" &
	bpid=$!
	i=0
	while [ ! -e "$tmp/bh.ok" ] && kill -0 "$bpid" 2>/dev/null &&
	    [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	[ -e "$tmp/bh.ok" ] && break
	kill "$bpid" 2>/dev/null
	bpid=
done
if [ -z "$bpid" ]; then
	echo "1..0 # SKIP cannot start the black hole"
	exit 0
fi

# A port where nothing listens, different from the black hole.
N=$(rport)
[ "$N" = "$B" ] && N=$((B + 1))

# 25 exchangers for the limit test (DNS_MX_MAX is 20).
many=
i=1
while [ $i -le 25 ]; do
	many="$many --mx-host=many.test,m$i.many.test,$i"
	many="$many --host-record=m$i.many.test,192.0.2.$((100 + i))"
	i=$((i + 1))
done

start_dnsmasq() {
	"$DNSMASQ" --keep-in-foreground --conf-file=/dev/null --no-resolv \
	    --no-hosts --port="$P" --listen-address=127.0.0.1 \
	    --bind-interfaces --user=root --group=root --pid-file= \
	    --log-facility="$tmp/dnsmasq.log" \
	    --local=/test/ --local=/mxshort/ \
	    --mx-host=order.test,mx-c.order.test,30 \
	    --mx-host=order.test,mx-a.order.test,10 \
	    --mx-host=order.test,mx-b.order.test,20 \
	    --host-record=mx-a.order.test,192.0.2.1 \
	    --host-record=mx-b.order.test,2001:db8::2 \
	    --host-record=mx-c.order.test,192.0.2.3 \
	    --mx-host=dual.test,mx-d.dual.test,10 \
	    --host-record=mx-d.dual.test,192.0.2.4,2001:db8::4 \
	    --mx-host=shuffle.test,s1.shuffle.test,10 \
	    --mx-host=shuffle.test,s2.shuffle.test,10 \
	    --mx-host=shuffle.test,s3.shuffle.test,10 \
	    --mx-host=shuffle.test,s4.shuffle.test,20 \
	    --host-record=s1.shuffle.test,192.0.2.21 \
	    --host-record=s2.shuffle.test,192.0.2.22 \
	    --host-record=s3.shuffle.test,192.0.2.23 \
	    --host-record=s4.shuffle.test,192.0.2.24 \
	    --host-record=v4.test,192.0.2.10 \
	    --host-record=v6.test,2001:db8::10 \
	    --host-record=both.test,192.0.2.11,2001:db8::11 \
	    --txt-record=txtonly.test,hello \
	    --dns-rr=nullmx.test,15,000000 \
	    --dns-rr=mixed.test,15,000000 \
	    --mx-host=mixed.test,mx-a.order.test,10 \
	    --mx-host=noaddr.test,nowhere.noaddr.test,10 \
	    --mx-host=partial.test,nowhere.partial.test,10 \
	    --mx-host=partial.test,mx-c.order.test,20 \
	    --mx-host=iplit.test,192.0.2.55,10 \
	    --mx-host=dup.test,mx-a.order.test,10 \
	    --mx-host=dup.test,dupa.dup.test,20 \
	    --host-record=dupa.dup.test,192.0.2.1 \
	    --mx-host=short.test,mxshort,10 \
	    --host-record=mxshort.test,192.0.2.77 \
	    --server=/refused.test/# \
	    --server=/slow.test/127.0.0.1#"$B" \
	    --mx-host=tempmx.test,h.slow.test,10 \
	    $many \
	    >"$tmp/dnsmasq.out" 2>&1 &
	dpid=$!
}

# Start dnsmasq on a random port; another port if that one is taken.
up=
for try in 1 2 3 4 5; do
	P=$(rport)
	[ "$P" = "$B" ] || [ "$P" = "$N" ] && continue
	start_dnsmasq
	i=0
	while kill -0 "$dpid" 2>/dev/null && [ $i -lt 30 ]; do
		if [ "$($T -t 1 127.0.0.1:$P v4.test)" = "0 v4.test 192.0.2.10 25" ]
		then
			up=1
			break
		fi
		sleep 0.1
		i=$((i + 1))
	done
	[ -n "$up" ] && break
	kill "$dpid" 2>/dev/null
	wait "$dpid" 2>/dev/null
	dpid=
done
if [ -z "$up" ]; then
	echo "1..0 # SKIP cannot start dnsmasq: $(head -c 300 "$tmp/dnsmasq.out")"
	exit 0
fi

S=127.0.0.1:$P
# ok NAME COMMAND... - passes when the command succeeds
ok() {
	name=$1
	shift
	if "$@"; then pass "$name"; else flunk "$name"; fi
}
nl='
'

echo "1..38"

# MX preference order, ports
same "MX in preference order" \
"10 mx-a.order.test 192.0.2.1 25
20 mx-b.order.test 2001:db8::2 25
30 mx-c.order.test 192.0.2.3 25" "$($T $S order.test)"
same "port goes into every address" \
"10 mx-a.order.test 192.0.2.1 2525
20 mx-b.order.test 2001:db8::2 2525
30 mx-c.order.test 192.0.2.3 2525" "$($T $S order.test 2525)"
same "trailing dot on the domain" \
"10 mx-a.order.test 192.0.2.1 25
20 mx-b.order.test 2001:db8::2 25
30 mx-c.order.test 192.0.2.3 25" "$($T $S order.test.)"
same "exchanger with A and AAAA (any order)" \
"10 mx-d.dual.test 192.0.2.4 25
10 mx-d.dual.test 2001:db8::4 25" "$($T $S dual.test | sort)"

# equal preferences shuffled, different ones kept in order
out=$($T -n 50 $S shuffle.test)
bad=$(printf '%s\n' "$out" | grep -v '^orderings ' | grep -Ev \
    '^order (s[123]\.shuffle\.test,){3}s4\.shuffle\.test$')
bad=$bad$(printf '%s\n' "$out" | grep -E '(s[1-4])\..*\1\.')
same "50 runs: s1, s2, s3 once each, in some order, then s4" "" "$bad"
k=$(printf '%s\n' "$out" | sed -n 's/^orderings //p')
ok "50 runs: equal preferences shuffled (orderings: $k)" \
    test "${k:-0}" -gt 1

# implicit MX (RFC 5321 5.1)
same "implicit MX, A only" "0 v4.test 192.0.2.10 25" "$($T $S v4.test)"
same "implicit MX, AAAA only" "0 v6.test 2001:db8::10 25" "$($T $S v6.test)"
same "implicit MX, A and AAAA" \
"0 both.test 192.0.2.11 25
0 both.test 2001:db8::11 25" "$($T $S both.test | sort)"
same "no MX and no address" "PERM: txtonly.test: no MX and no address" \
    "$($T $S txtonly.test)"

# permanent failures
same "null MX (RFC 7505)" \
    "PERM: nullmx.test: domain does not accept mail (null MX)" \
    "$($T $S nullmx.test)"
same "null MX next to a real MX: the real one is used" \
    "10 mx-a.order.test 192.0.2.1 25" "$($T $S mixed.test)"
same "NXDOMAIN" "PERM: nx.test: domain not found" "$($T $S nx.test)"
same "MX host without address" "PERM: no address for any MX of noaddr.test" \
    "$($T $S noaddr.test)"
same "MX host without address is skipped" "20 mx-c.order.test 192.0.2.3 25" \
    "$($T $S partial.test)"
same "bad domain name" "PERM: a..test: bad domain name" "$($T $S a..test)"
same "domain name with a space" "PERM: a b.test: bad domain name" \
    "$($T $S 'a b.test')"

# temporary failures
same "REFUSED from the server" \
    "TEMP: cannot look up MX of refused.test: DNS server failed, refused or unreachable" \
    "$($T $S refused.test)"
t0=$(date +%s)
same "upstream never answers: timeout" \
    "TEMP: cannot look up MX of slow.test: DNS timeout" \
    "$($T -t 1 $S slow.test)"
t1=$(date +%s)
ok "the timeout is kept ($((t1 - t0)) s)" test $((t1 - t0)) -le 3
same "address lookup of the MX host times out" \
    "TEMP: cannot look up address of h.slow.test (MX of tempmx.test): DNS timeout" \
    "$($T -t 1 $S tempmx.test)"
same "server that does not answer at all" \
    "TEMP: cannot look up MX of order.test: DNS timeout" \
    "$($T -t 1 127.0.0.1:$B order.test)"
out=$($T -t 1 127.0.0.1:$N order.test)
ok "no server on the port: TEMP" \
    test "${out#TEMP: cannot look up MX of order.test: }" != "$out"

# literals, limits, duplicates, no search list
same "domain literal, no DNS" "0 127.0.0.2 127.0.0.2 2525" \
    "$($T 127.0.0.1:$N '[127.0.0.2]' 2525)"
same "IPv6 domain literal" "0 2001:db8::9 2001:db8::9 25" \
    "$($T 127.0.0.1:$N '[IPv6:2001:DB8::9]')"
same "bad domain literal" "PERM: [example.test]: bad address literal" \
    "$($T 127.0.0.1:$N '[example.test]')"
same "MX host written as an IP address" "10 192.0.2.55 192.0.2.55 25" \
    "$($T $S iplit.test)"
same "the same address twice is used once" "10 mx-a.order.test 192.0.2.1 25" \
    "$($T $S dup.test)"
out=$($T $S many.test)
same "at most 20 exchangers" \
    "20 / 1 m1.many.test 192.0.2.101 25 / 20 m20.many.test 192.0.2.120 25" \
    "$(printf '%s\n' "$out" | wc -l | tr -d ' ') / $(printf '%s\n' "$out" |
    head -n 1) / $(printf '%s\n' "$out" | tail -n 1)"
same "MX host names get no search domain" \
    "PERM: no address for any MX of short.test" \
    "$(LOCALDOMAIN=test $T $S short.test)"

# dns_host: the smarthost
same "smarthost by name" "0 v4.test 192.0.2.10 587" "$($T -H $S v4.test 587)"
same "smarthost: search list applies" "0 mxshort 192.0.2.77 25" \
    "$(LOCALDOMAIN=test $T -H $S mxshort)"
out=$($T -H 127.0.0.1:$N localhost 2525)
ok "smarthost localhost from the hosts file" \
    sh -c 'printf "%s\n" "$1" | grep -Eqx "0 localhost (127\.0\.0\.1|::1) 2525"' \
    x "$out"
same "smarthost IP" "0 192.0.2.9 192.0.2.9 25" "$($T -H $S 192.0.2.9)"
same "smarthost [IP]" "0 ::1 ::1 25" "$($T -H $S '[::1]')"
same "smarthost not found is TEMP" \
    "TEMP: cannot look up address of nx.test: Domain name not found" \
    "$($T -H $S nx.test)"

# dns_server values
same "two servers, the first dead" \
"10 mx-a.order.test 192.0.2.1 25
20 mx-b.order.test 2001:db8::2 25
30 mx-c.order.test 192.0.2.3 25" "$($T -t 2 "127.0.0.1:$N, $S" order.test)"
bad=
for v in 127.0.0.1:0 127.0.0.1:x 1.2.3 '127.0.0.1,' 'a.b.c.d' '[::1' \
    '[::1]x' '127.0.0.1:53:53' '1,2,3,4,5,6,7,8,9'; do
	out=$($T "$v" order.test)
	case $out in
	"TEMP: bad dns_server value \"$v\": expected"*) ;;
	*) bad="$bad$nl$v -> $out" ;;
	esac
done
same "bad dns_server values are refused" "" "$bad"
exit $fail
