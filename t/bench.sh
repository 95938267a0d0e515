#!/bin/bash
# bench.sh - make bench: figures for this machine, not pass/fail.
#  1. submission latency with -odq (median of 100), full fsync discipline
#  2. -odi latency for one 4 KB message to a loopback MX (dnsmasq + smtp-sink),
#     next to Postfix's smtp-source -m 1 -l 4096 on the same sink
. t/lib.sh

N=${BENCH_N:-100}
MXADDR=127.0.0.250
start_dns --mx-host=bench.test,mx.bench.test,10 \
    --host-record=mx.bench.test,$MXADDR || exit 1
# A sink without dumps: it acknowledges and forgets.
LD_LIBRARY_PATH=$POSTFIX_DIR/usr/lib/postfix \
    "$POSTFIX_DIR/usr/sbin/smtp-sink" -u nobody "$MXADDR:$SMTP_PORT" 100 \
    >"$T/sink.log" 2>&1 &
_track sink $!
wait_listen $MXADDR "$SMTP_PORT" || exit 1
write_conf

{
	printf 'From: bench@bench.test\nTo: rcpt@bench.test\nSubject: bench\n\n'
	i=0
	while [ $i -lt 55 ]; do
		printf 'line %02d of the benchmark message, padded to about seventy octets.\n' $i
		i=$((i + 1))
	done
} | head -c 4096 >"$T/msg"
printf '\n' >>"$T/msg"

echo "mxsend bench on $(nproc) cores, $(uname -r), $(date -u +%Y-%m-%d)"
echo "message: $(wc -c <"$T/msg") octets; queue: $T/q ($(df -T "$T" | awk 'NR==2 {print $2}'))"
sub=$($PY t/bench.py "submit -odq" "$N" "$T/msg" -- \
    "$SENDMAIL" -C "$T/conf" -odq -t) || exit 1
printf '%s\n' "$sub" | sed '$d'
rm -rf "$T/q"

odi=$($PY t/bench.py "submit+deliver -odi" "$N" "$T/msg" -- \
    "$SENDMAIL" -C "$T/conf" -odi -t) || exit 1
printf '%s\n' "$odi" | sed '$d'
src=$($PY t/bench.py "smtp-source -m 1 -l 4096" "$N" - -- \
    env LD_LIBRARY_PATH="$POSTFIX_DIR/usr/lib/postfix" \
    "$POSTFIX_DIR/usr/sbin/smtp-source" -m 1 -l 4096 -f bench@bench.test \
    -t rcpt@bench.test "$MXADDR:$SMTP_PORT") || exit 1
printf '%s\n' "$src" | sed '$d'
a=$(printf '%s\n' "$odi" | tail -n 1)
b=$(printf '%s\n' "$src" | tail -n 1)
awk -v a="$a" -v b="$b" 'BEGIN { printf "ratio -odi / smtp-source: %.2f (goal: at most 2)\n", a / b }'
left=$(ls "$T/q" 2>/dev/null | grep -c '\.env$')
echo "messages left in the queue after the -odi runs: $left (want 0)"
