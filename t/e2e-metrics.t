#!/bin/bash
# e2e-metrics.t - sendmail --metrics and metrics_file (metrics.c): the
# Prometheus text format, read by python3-prometheus-client's parser
# (text_string_to_metric_families), with the values of a known queue
# (pending, deferred with two reasons, failed, held, unreadable); a -q run
# writes the same plus its figures to metrics_file, atomically, mode
# 0644, never through a symbolic link; bad values of metrics_file are
# config errors, and an unwritable one is logged and changes nothing else.
# Addresses 127.0.0.234-236.
. t/lib.sh
need_tools
export LC_ALL=C
"$PY" -c 'import prometheus_client' 2>/dev/null ||
	{ echo "Bail out! missing python3-prometheus-client: run make deps"; exit 255; }

L1=127.0.0.234	# l1.test: 450 4.7.1 to every RCPT
L2=127.0.0.235	# l2.test: accepts everything
L3=127.0.0.236	# l3.test: nothing listens
start_dns_mx l1.test=$L1 l2.test=$L2 l3.test=$L3 || exit 1
SMTPD_NOWAIT=1
start_smtpd $L1 --rcpt '*=450 4.7.1 try later' || exit 1
start_smtpd $L2 || exit 1
wait_smtpd || exit 1
SMTPD_NOWAIT=0
write_conf "retry_intervals 1h"

# prom FILE - the families the parser finds: "name type" and a line per
# sample, "name{k=v,...} value" (labels sorted, integers without ".0");
# the parser raises on anything that is not the text format
prom() {
	"$PY" - "$1" <<'EOF'
import sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1]).read()
for fam in text_string_to_metric_families(text):
    assert fam.documentation, fam.name + ": no HELP"
    print(fam.name, fam.type)
    for s in fam.samples:
        v = s.value
        v = str(int(v)) if v == int(v) else repr(v)
        lab = ",".join("%s=%s" % kv for kv in sorted(s.labels.items()))
        print("%s{%s} %s" % (s.name, lab, v))
EOF
}

# queue_want P F H RP RF RH BYTES UNREADABLE [REASON=N...] - the queue's
# families as prom prints them, the oldest age left out (it moves); the
# reasons in the order of enum reason
queue_want() {
	local k
	echo "mxsend_queue_messages gauge"
	echo "mxsend_queue_messages{state=pending} $1"
	echo "mxsend_queue_messages{state=failed} $2"
	echo "mxsend_queue_messages{state=held} $3"
	echo "mxsend_queue_recipients gauge"
	echo "mxsend_queue_recipients{state=pending} $4"
	echo "mxsend_queue_recipients{state=failed} $5"
	echo "mxsend_queue_recipients{state=held} $6"
	echo "mxsend_queue_recipients_by_reason gauge"
	for k in "${@:9}"; do
		echo "mxsend_queue_recipients_by_reason{reason=${k%%=*}} ${k#*=}"
	done
	echo "mxsend_queue_oldest_message_age_seconds gauge"
	echo "mxsend_queue_bytes gauge"
	echo "mxsend_queue_bytes{} $7"
	echo "mxsend_queue_unreadable_envelopes gauge"
	echo "mxsend_queue_unreadable_envelopes{} $8"
}

# oldest FILE - the oldest age prom found
oldest() { sed -n 's/^mxsend_queue_oldest_message_age_seconds{} //p' "$1"; }

# submit OPTS... - one message; its ID becomes $ID
submit() {
	local before
	before=$(q_ids)
	printf 'Subject: m\n\nbody\n' | mx "$@" 2>>"$T/submit.err"
	ID=$(q_ids | grep -vxF "${before:-none}")
}

# size_of ID - the message size its envelope records
size_of() { q_env "$1" | awk '$1 == "size" { print $2 }'; }

# --- empty queue --------------------------------------------------------------------
mx -q 2>/dev/null	# creates the queue directory
mx --metrics >"$T/m0" 2>"$T/m0.err"
is "$?" 0 "--metrics, empty queue: exit 0"
prom "$T/m0" >"$T/p0" 2>"$T/p0.err"
is "$?" 0 "--metrics, empty queue: the parser takes it"
queue_want 0 0 0 0 0 0 0 0 >"$T/w0"
grep -v '^mxsend_queue_oldest_message_age_seconds{}' "$T/p0" >"$T/p0g"
is_file "$T/p0g" "$T/w0" "--metrics, empty queue: every figure 0"
is "$(oldest "$T/p0")" 0 "--metrics, empty queue: oldest age 0"
is "$(grep -c '^# HELP mxsend_' "$T/m0"),$(grep -c '^# TYPE mxsend_[a-z_]* gauge$' "$T/m0")" \
    "6,6" "--metrics: a HELP and a TYPE line for each of the 6 families"
is "$(grep -v '^#' "$T/m0" | grep -cv '^mxsend_')" 0 "--metrics: every name starts with mxsend_"

# --- a known queue ------------------------------------------------------------------
submit -odq -f '<>' a@l1.test b@l1.test
ID1=$ID			# untried: 2 pending, no reason yet
submit -odi -f '<>' c@l1.test d@l2.test
ID2=$ID			# c deferred (reply), d delivered
submit -odi -f '<>' h@l3.test
IDH=$ID			# h deferred (connect)
submit -odq -f '<>' e@l1.test
ID3=$ID			# e failed, its report not queued (as after a crash)
q_edit "$ID3" 's/^rcpt pending \([0-9]* [0-9]*\) e@l1.test$/rcpt failed \1 e@l1.test/'
submit -odq -f '<>' f@l1.test g@l1.test
ID4=$ID			# held: f and g
S4=$(size_of "$ID4")
mv "$T/q/$ID4.msg" "$T/q/$ID4.hold"
submit -odq -f '<>' j@l2.test
ID5=$ID			# its envelope cannot be read
printf 'version 1\nid %s\ngarbage\n' "$ID5" >"$T/q/$ID5.env"
is "$(q_rcpt c@l1.test),$(q_rcpt d@l2.test),$(q_rcpt h@l3.test),$(q_rcpt e@l1.test)" \
    "pending 1,done 1,pending 1,failed 0" "the queue is built: c and h deferred, d done, e failed"
like "$(q_rcpt_error h@l3.test)" "onnect" "h@l3.test: a connection error"
A1=$(( $(date +%s) - 1000 ))
q_edit "$ID1" "s/^arrival .*/arrival $A1/"
BYTES=$(( $(size_of "$ID1") + $(size_of "$ID2") + $(size_of "$IDH") + $(size_of "$ID3") + S4 ))

b=$(date +%s)
mx --metrics >"$T/m1" 2>"$T/m1.err"
rc=$?
a=$(date +%s)
is "$rc" 0 "--metrics: exit 0"
prom "$T/m1" >"$T/p1" 2>"$T/p1.err"
is "$?" 0 "--metrics: the parser takes it"
queue_want 3 1 1 4 1 2 "$BYTES" 1 reply=1 connect=1 >"$T/w1"
grep -v '^mxsend_queue_oldest_message_age_seconds{}' "$T/p1" >"$T/p1g"
is_file "$T/p1g" "$T/w1" \
    "--metrics: 3 pending, 1 failed, 1 held messages; 4, 1, 2 recipients; by reason; bytes; 1 unreadable"
o=$(oldest "$T/p1")
ok "[ \"$o\" -ge $((b - A1)) ] && [ \"$o\" -le $((a - A1)) ]" \
    "--metrics: the oldest age ($o) is the edited arrival's"
ok "grep -qx 'mxsend_queue_recipients_by_reason{reason=\"connect\"} 1' '$T/m1'" \
    "--metrics: the sample as written, reason label quoted"

# --- -q writes metrics_file ---------------------------------------------------------
submit -odq -f '<>' i@l2.test
ID6=$ID
mkdir "$T/prom"
ln -s "$T/victim" "$T/prom/mxsend.prom.tmp"	# a stale tmp: a symlink
write_conf "retry_intervals 1h" "metrics_file $T/prom/mxsend.prom"
b=$(date +%s)
mx -q >"$T/q1.out" 2>"$T/q1.err"
rc=$?
a=$(date +%s)
is "$rc:$(cat "$T/q1.err")" "0:" "-q with metrics_file: exit 0, nothing on stderr"
is "$(q_rcpt i@l2.test),$(q_rcpt a@l1.test),$(q_rcpt f@l1.test)" ",pending 1,pending 1" \
    "-q: i delivered (gone from the queue), a and f (released) deferred"
ok "[ -f '$T/prom/mxsend.prom' ] && [ ! -e '$T/prom/mxsend.prom.tmp' ] && [ ! -e '$T/victim' ]" \
    "metrics_file written; its tmp replaced, not followed"
is "$(stat -c %a "$T/prom/mxsend.prom")" 644 "metrics_file: mode 0644 (the collector's user reads it)"
prom "$T/prom/mxsend.prom" >"$T/p2" 2>"$T/p2.err"
is "$?" 0 "metrics_file: the parser takes it"
BYTES=$(( $(size_of "$ID1") + $(size_of "$ID2") + $(size_of "$IDH") + S4 ))
{
	queue_want 4 0 0 6 0 0 "$BYTES" 1 reply=5 connect=1
	echo "mxsend_last_run_timestamp_seconds gauge"
	echo "mxsend_last_run_duration_seconds gauge"
	echo "mxsend_last_run_messages_tried gauge"
	echo "mxsend_last_run_messages_tried{} 3"
	echo "mxsend_last_run_recipients gauge"
	echo "mxsend_last_run_recipients{outcome=delivered} 1"
	echo "mxsend_last_run_recipients{outcome=deferred} 4"
	echo "mxsend_last_run_recipients{outcome=failed} 0"
	echo "mxsend_last_run_connections gauge"
	echo "mxsend_last_run_connections{} 2"
	echo "mxsend_last_run_jobs_left gauge"
	echo "mxsend_last_run_jobs_left{} 0"
} >"$T/w2"
grep -v '^mxsend_queue_oldest_message_age_seconds{}\|^mxsend_last_run_timestamp_seconds{}\|^mxsend_last_run_duration_seconds{}' \
    "$T/p2" >"$T/p2g"
is_file "$T/p2g" "$T/w2" \
    "metrics_file: the queue after the run; 3 tried (1, 4, 6; 3 only finished), 1 delivered, 4 deferred, 0 failed, 2 connections"
ts=$(sed -n 's/^mxsend_last_run_timestamp_seconds{} //p' "$T/p2")
ok "[ \"$ts\" -ge $b ] && [ \"$ts\" -le $a ]" "metrics_file: the run's end ($ts) is now"
d=$(sed -n 's/^mxsend_last_run_duration_seconds{} //p' "$T/p2")
ok "awk -v d='$d' -v m=$((a - b + 1)) 'BEGIN { exit !(d >= 0 && d <= m) }'" \
    "metrics_file: the run's duration ($d s) is at most the run's"
mx --metrics >"$T/m2" 2>/dev/null
is "$(grep -v 'oldest_message_age' "$T/m2")" \
    "$(sed -n '/^# HELP mxsend_last_run/q;p' "$T/prom/mxsend.prom" | grep -v 'oldest_message_age')" \
    "--metrics prints the queue part of metrics_file"

# --- bad values ---------------------------------------------------------------------
# badconf VALUE WHY NAME - metrics_file VALUE is refused: exit 78, WHY
badconf() {
	local out
	write_conf "metrics_file $1"
	out=$(mx --metrics 2>&1)
	is "$?:$out" "78:sendmail: $CONF:$(grep -n '^metrics_file' "$CONF" | cut -d: -f1): metrics_file: $2" "$3"
}
badconf prom/mxsend.prom "not an absolute path to a file" "metrics_file: a relative path is refused"
badconf "$T/prom/" "not an absolute path to a file" "metrics_file: a directory is refused"
long=/$(head -c 1019 /dev/zero | tr '\0' x)
badconf "$long" "too long (at most 1019 octets)" "metrics_file: 1020 octets are refused"
write_conf "metrics_file ${long:0:1019}"
out=$(mx --metrics 2>&1 >/dev/null)
is "$?:$out" "0:" "metrics_file: 1019 octets are taken"
write_conf "metrics_file $T/prom/a.prom" "metrics_file $T/prom/b.prom"
out=$(mx --metrics 2>&1)
like "$?:$out" "^78:.*metrics_file: given twice" "metrics_file given twice is refused"

# An unwritable metrics_file: delivery and the exit code are unchanged.
: >"$T/file"
write_conf "retry_intervals 1h" "metrics_file $T/file/mxsend.prom"
submit -odq -f '<>' k@l2.test
mx -q >"$T/q2.out" 2>"$T/q2.err"
rc=$?
is "$rc:$(q_rcpt k@l2.test)" "0:" "-q with an unwritable metrics_file: exit 0, k delivered (gone from the queue)"
is "$(rx_rcpts $L2 | grep -c '^k@l2.test$')" 1 "k@l2.test received"
is "$(cat "$T/q2.err")" "sendmail: cannot write metrics_file $T/file/mxsend.prom.tmp: Not a directory" \
    "the error on stderr names the file and the reason"
write_conf "retry_intervals 1h" "metrics_file $T/nodir/mxsend.prom"
out=$(mx -q 2>&1)
is "$?:$out" "0:sendmail: cannot write metrics_file $T/nodir/mxsend.prom.tmp: No such file or directory" \
    "a missing directory: exit 0, the error"

done_testing
