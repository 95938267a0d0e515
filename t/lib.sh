# t/lib.sh - shared helpers for mxsend's shell tests (bash).
#
# Source it from a t/*.t script run from the repository root (prove does):
#   . t/lib.sh
# It gives:
#   TAP      plan N, ok 'SHELL-CONDITION' NAME, is GOT EXPECTED NAME,
#            like GOT ERE NAME, is_file GOTFILE EXPFILE NAME, skip_all WHY,
#            diag TEXT..., diag_file FILE, done_testing
#   scratch  $T, a fresh directory, removed at exit unless KEEP=1; every
#            server started here is killed at exit; at_exit CODE runs
#            CODE first
#   servers  start_dns ARGS..., start_dns_mx DOMAIN=ADDR... [-- ARGS...],
#            start_sink ADDR [smtp-sink options],
#            start_smtpd ADDR [t/smtpd.py options], start_smtpds ADDR...,
#            stop_server NAME
#   mxsend   write_conf [extra "key value" lines], mx ARGS... (./sendmail
#            -C $T/conf), q_* helpers to look into the queue, rx_* helpers
#            to look at what a t/smtpd.py server received, from_line ADDR
#            (the From: mxsend makes), bs (a -bs session through
#            t/bsclient.py), in_ns CMD... (a private /usr/sbin/sendmail)
#   TLS      pki_*, start_tlsd, send, mails, reset_q (see that section)
#
# Addresses: a test's SMTP servers listen on 127.0.0.x:$SMTP_PORT (all MX of
# one test share the port: mxsend has one smtp_port).  Each test file uses its
# own block of x so that files run in parallel (prove -j2) never collide even
# on an address where "nothing listens" is the point:
#   e2e-basic 10-19, e2e-route 20-39, e2e-retry 40-59, e2e-badinput 60-69,
#   demo 2 (t/demo.sh does not use this file); each later file names its
#   block in its head comment (e.g. e2e-setgid 160-169, e2e-php 170-179,
#   e2e-quota 180-189, e2e-faults 190-199, the dns fuzz target 200-209,
#   e2e-auth-unverified 210-212, e2e-stall 220-229, e2e-queue-v1 230-231,
#   e2e-metrics 234-236, e2e-logs 238-239, e2e-review 240-249);
#   grep t/ for 127.0.0. before taking a new one.
# Ports are chosen at random and checked free.

TOP=$(pwd)
[ -f "$TOP/t/lib.sh" ] || {
	echo "Bail out! run tests from the repository root"; exit 255; }
# The last command of a pipeline runs in this shell, so that
# "printf ... | some_tap_helper" keeps the TAP counters.
shopt -s lastpipe
PY=/usr/bin/python3		# Debian's python, where aiosmtpd is installed
POSTFIX_DIR=${MXSEND_POSTFIX_DIR:-/var/cache/mxsend-test/postfix}
SENDMAIL=${SENDMAIL:-$TOP/sendmail}

# ---- TAP -----------------------------------------------------------------

_tap_n=0
_tap_fail=0
_tap_plan=

plan() { _tap_plan=$1; echo "1..$1"; }

skip_all() { echo "1..0 # SKIP $*"; _tap_plan=0; exit 0; }

# diag goes to stderr, as Test::More's does, so prove shows it
diag() {
	printf '%s\n' "$*" | sed 's/^/# /' >&2
}

# diag_file FILE [MAXLINES] - show a file (its tail), control chars visible
diag_file() {
	[ -e "$1" ] || { diag "($1: no such file)"; return 0; }
	{
		echo "# --- $1"
		tail -n "${2:-40}" "$1" | cat -v | sed 's/^/#   /'
	} >&2
}

_tap_result() {		# STATUS NAME
	_tap_n=$((_tap_n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $_tap_n - $2"
	else
		echo "not ok $_tap_n - $2"
		_tap_fail=$((_tap_fail + 1))
	fi
	return "$1"
}

# ok CONDITION NAME - CONDITION is shell code, evaluated with eval
ok() {
	local st=0
	eval "$1" || st=1
	_tap_result $st "$2" || diag "  condition failed: $1"
	return $st
}

# _tap_check STATUS NAME GOT WANT - a test that passes when STATUS is 0;
# when it fails, GOT and the line WANT (what was expected) as diagnostics
_tap_check() {
	_tap_result "$1" "$2" && return 0
	printf '%s\n' "got:      '$3'" "$4" | cat -v | sed 's/^/#   /' >&2
	return 1
}

# is GOT EXPECTED NAME
is() {
	[ "$1" = "$2" ]
	_tap_check $? "$3" "$1" "expected: '$2'"
}

# like GOT ERE NAME
like() {
	printf '%s' "$1" | grep -Eq -- "$2"
	_tap_check $? "$3" "$1" "expected match: /$2/"
}

# is_file GOTFILE EXPFILE NAME - byte for byte
is_file() {
	if [ -f "$1" ] && cmp -s "$1" "$2"; then
		_tap_result 0 "$3"
	else
		_tap_result 1 "$3"
		if [ ! -f "$1" ]; then
			diag "  $1: no such file"
		else
			diag "  bytes differ (cat -A; - expected, + got):"
			diff -u --label expected --label got \
			    <(cat -A "$2") <(cat -A "$1") | head -n 60 |
			    sed 's/^/#   /' >&2
		fi
		return 1
	fi
}

done_testing() {
	if [ -z "$_tap_plan" ]; then
		echo "1..$_tap_n"
	elif [ "$_tap_plan" != "$_tap_n" ]; then
		diag "planned $_tap_plan tests but ran $_tap_n"
		_tap_fail=$((_tap_fail + 1))
	fi
	if [ $_tap_fail -gt 0 ]; then
		diag "$_tap_fail failed; rerun with KEEP=1 to keep the scratch dir"
		_dump_logs
		exit 1
	fi
	exit 0
}

# ---- scratch dir and cleanup -----------------------------------------------

T=$(mktemp -d "${TMPDIR:-/tmp}/mxsend-t.XXXXXX")
chmod 755 "$T"		# smtp-sink runs as nobody; the setpriv tests too
_pids=
_names=
_at_exit=

# at_exit SHELL-CODE - run it at exit, before the servers are stopped (a
# test must not set its own EXIT trap: this one stops them)
at_exit() { _at_exit="$_at_exit$1
"; }

_cleanup() {
	local st=$? p
	trap - EXIT
	eval "$_at_exit"
	for p in $_pids; do
		kill "$p" 2>/dev/null
	done
	for p in $_pids; do
		wait "$p" 2>/dev/null
	done
	if [ "${KEEP:-0}" = 1 ]; then
		echo "# kept $T" >&2
	else
		rm -rf "$T"
	fi
	exit $st
}
trap _cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# _track NAME PID - remember a server for stop_server and cleanup
_track() {
	_pids="$_pids $2"
	_names="$_names $1=$2"
	eval "_pid_$(echo "$1" | tr -c 'A-Za-z0-9\n' _)=$2"
}

# stop_server NAME - NAME is dns, sink-ADDR or smtpd-ADDR
stop_server() {
	local v pid
	v=_pid_$(echo "$1" | tr -c 'A-Za-z0-9\n' _)
	pid=${!v:-}
	[ -n "$pid" ] || { diag "stop_server: no server $1"; return 1; }
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	eval "$v="
	_pids=$(echo "$_pids" | tr ' ' '\n' | grep -vx "$pid" | tr '\n' ' ')
	return 0
}

_dump_logs() {
	local f
	for f in "$T"/*.err "$T"/smtpd-*/trace "$T"/sink-*.log; do
		[ -s "$f" ] && diag_file "$f" 30
	done
	return 0
}

# ---- ports -----------------------------------------------------------------

_port_busy() {		# PORT - something listens on it (tcp or udp)
	[ -n "$(ss -Hltun "( sport = :$1 )" 2>/dev/null)" ]
}

# free_port - a random high port nothing listens on
free_port() {
	local p i
	for i in $(seq 1 100); do
		p=$(( ( (RANDOM << 15) | RANDOM ) % 30000 + 20000 ))
		_port_busy "$p" || { echo "$p"; return 0; }
	done
	echo "Bail out! no free port" >&2
	return 1
}

# wait_listen ADDR PORT - until a TCP listener is there (5 s)
wait_listen() {
	local i
	for i in $(seq 1 100); do
		ss -Hltn "( sport = :$2 )" 2>/dev/null | grep -qF " $1:$2 " &&
		    return 0
		sleep 0.05
	done
	diag "nothing listens on $1:$2"
	return 1
}

SMTP_PORT=$(free_port)
DNSPORT=

# ---- DNS ---------------------------------------------------------------------

# dns_query NAME TYPE - "rcode=N answers=M" from 127.0.0.1:$DNSPORT, or fails
dns_query() {
	"$PY" - "$DNSPORT" "$1" "${2:-A}" <<'EOF'
import random, socket, struct, sys
port, name, qtype = int(sys.argv[1]), sys.argv[2], sys.argv[3]
types = {"A": 1, "MX": 15, "AAAA": 28, "TXT": 16}
qid = random.randrange(65536)
q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
for label in name.rstrip(".").split("."):
    q += bytes([len(label)]) + label.encode()
q += b"\0" + struct.pack(">HH", types[qtype], 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.3)
s.sendto(q, ("127.0.0.1", port))
r = s.recv(4096)
rid, flags, qd, an = struct.unpack(">HHHH", r[:8])
if rid != qid:
    sys.exit(1)
print("rcode=%d answers=%d" % (flags & 15, an))
EOF
}

# start_dns ARGS... - dnsmasq on 127.0.0.1:$DNSPORT, authoritative-ish for
# *.test (--local=/test/: unknown names there are NXDOMAIN), with ARGS such
# as --mx-host=a.test,mx.a.test,10 --host-record=mx.a.test,127.0.0.10
# Null MX (RFC 7505): --dns-rr=null.test,15,000000
start_dns() {
	local try i pid
	for try in 1 2 3 4 5; do
		DNSPORT=$(free_port)
		/usr/sbin/dnsmasq --keep-in-foreground --no-resolv --no-hosts \
		    --conf-file=/dev/null --pid-file= \
		    --port="$DNSPORT" --listen-address=127.0.0.1 \
		    --bind-interfaces --user=root --local=/test/ \
		    --log-queries --log-facility="$T/dns.log" \
		    "$@" >>"$T/dns.err" 2>&1 &
		pid=$!
		for i in $(seq 1 50); do
			if dns_query probe.test A >/dev/null 2>&1; then
				_track dns "$pid"
				return 0
			fi
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	diag "dnsmasq did not start"
	diag_file "$T/dns.err"
	return 1
}

# start_dns_mx DOMAIN=ADDR... [-- ARGS...] - start_dns, each DOMAIN's MX
# mx.DOMAIN (preference 10) at ADDR, and ARGS for dnsmasq as they are
start_dns_mx() {
	local args=() d
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		d=${1%%=*}
		args+=("--mx-host=$d,mx.$d,10" "--host-record=mx.$d,${1#*=}")
		shift
	done
	[ $# -gt 0 ] && shift
	start_dns "${args[@]}" "$@"
}

# ---- SMTP servers ------------------------------------------------------------

# start_sink ADDR [smtp-sink options] - Postfix's smtp-sink on ADDR:$SMTP_PORT;
# each transaction is dumped to its own file in $T/sink-ADDR/ (see sink_files)
start_sink() {
	local addr=$1 d pid user=
	shift
	d=$T/sink-$addr
	mkdir -p "$d"
	chmod 777 "$d"
	[ "$(id -u)" = 0 ] && user="-u nobody"
	# shellcheck disable=SC2086
	LD_LIBRARY_PATH=$POSTFIX_DIR/usr/lib/postfix \
	    "$POSTFIX_DIR/usr/sbin/smtp-sink" $user -h "sink-$addr" \
	    -d "$d/%Y%m%d%H%M%S." "$@" "$addr:$SMTP_PORT" 20 \
	    >>"$T/sink-$addr.log" 2>&1 &
	pid=$!
	_track "sink-$addr" "$pid"
	wait_listen "$addr" "$SMTP_PORT" || { diag_file "$T/sink-$addr.log"; return 1; }
}

# sink_files ADDR - the dump files of a sink, oldest first
sink_files() {
	ls -1tr "$T/sink-$1" 2>/dev/null | sed "s|^|$T/sink-$1/|"
}

# sink_message FILE - a dump without smtp-sink's own header lines (up to and
# including its three-line Received:) and without the trailing empty line
sink_message() {
	awk 'done { print; next }
	     /^Received: from / { r = 1; next }
	     r == 1 { r = 2; next }
	     r == 2 { done = 1; next }' "$1" | sed '$ { /^$/d }'
}

# start_smtpd ADDR [t/smtpd.py options] - the scripted receiver; it records
# into $T/smtpd-ADDR/ (msgs/NNNN, conns, trace).  With SMTPD_NOWAIT=1 it
# returns at once: call wait_smtpd after starting several (they start in
# parallel then).
_smtpd_waiting=
start_smtpd() { _start_receiver smtpd.py "$1" "$SMTP_PORT" "${@:2}"; }

# _start_receiver SCRIPT ADDR PORT [options] - t/SCRIPT (t/sinklib.py's
# recorder) on ADDR:PORT, recording into $T/smtpd-ADDR/
_start_receiver() {
	local addr=$2 d=$T/smtpd-$2
	rm -f "$d/ready"
	mkdir -p "$d"
	"$PY" "$TOP/t/$1" --listen "$addr:$3" --dir "$d" "${@:4}" \
	    >>"$d/out" 2>&1 &
	_track "smtpd-$addr" $!
	_smtpd_waiting="$_smtpd_waiting $addr"
	[ "${SMTPD_NOWAIT:-0}" = 1 ] || wait_smtpd
}

# start_smtpds ADDR... - a plain t/smtpd.py on each ADDR, started in
# parallel; returns when all are ready
start_smtpds() {
	local a
	for a in "$@"; do
		SMTPD_NOWAIT=1 start_smtpd "$a"
	done
	wait_smtpd
}

# wait_smtpd - until every started t/smtpd.py is ready (5 s)
wait_smtpd() {
	local addr v i
	for addr in $_smtpd_waiting; do
		v=_pid_$(echo "smtpd-$addr" | tr -c 'A-Za-z0-9\n' _)
		for i in $(seq 1 100); do
			[ -e "$T/smtpd-$addr/ready" ] && continue 2
			kill -0 "${!v}" 2>/dev/null || break
			sleep 0.05
		done
		diag "smtpd.py on $addr:$SMTP_PORT did not start"
		diag_file "$T/smtpd-$addr/out"
		return 1
	done
	_smtpd_waiting=
	return 0
}

# rx_files ADDR - accepted transactions at a t/smtpd.py server, in order
rx_files() {
	ls -1 "$T/smtpd-$1/msgs" 2>/dev/null | sed "s|^|$T/smtpd-$1/msgs/|"
}
# rx_count ADDR - how many transactions it accepted
rx_count() { rx_files "$1" | wc -l | tr -d ' '; }
# rx_conns ADDR - how many connections it saw
rx_conns() {
	if [ -f "$T/smtpd-$1/conns" ]; then
		wc -l <"$T/smtpd-$1/conns" | tr -d ' '
	else
		echo 0
	fi
}
# rx_env FILE - the envelope lines of a transaction file
rx_env() { sed '/^$/q' "$1" | sed '$d'; }
# rx_data FILE - the message bytes of a transaction file
rx_data() { sed '1,/^$/d' "$1"; }
# rx_head FILE / rx_body FILE - the received data split: header lines (CR
# removed) and body bytes; hdr FILE NAME - the lines of field NAME (any
# case); rx_last ADDR - the newest file at a receiver
rx_head() { rx_data "$1" | sed '/^\r$/q' | sed '$d' | tr -d '\r'; }
rx_body() { rx_data "$1" | sed '1,/^\r$/d'; }
hdr() { rx_head "$1" | grep -i "^$2:"; }
rx_last() { rx_files "$1" | tail -n 1; }
# rx_rcpts ADDR... - every recipient these servers accepted, sorted
rx_rcpts() {
	local a
	for a in "$@"; do
		cat "$T/smtpd-$a"/msgs/* 2>/dev/null
	done | sed -n 's/^RCPT TO:<\(.*\)>$/\1/p' | LC_ALL=C sort
}
# rx_rcpt_copies ADDR RCPT - in how many transactions RCPT was accepted
rx_rcpt_copies() {
	local f n=0
	for f in $(rx_files "$1"); do
		rx_env "$f" | grep -qixF "RCPT TO:<$2>" && n=$((n + 1))
	done
	echo $n
}

# ---- mxsend --------------------------------------------------------------------

# write_conf ["key value"...] - $CONF (default $T/conf) for these servers;
# an argument whose key is one of the defaults replaces it, others are added
write_conf() {
	local l k a out= seen=" "
	CONF=${CONF:-$T/conf}
	for l in "hostname test.example" "queue_dir $T/q" \
	    "dns_server 127.0.0.1:${DNSPORT:-53}" "smtp_port $SMTP_PORT" \
	    "retry_intervals 1s" "connect_timeout 2s" "command_timeout 5s" \
	    "data_timeout 5s" "tls none" "local_delivery none"; do
		k=${l%% *}
		for a in "$@"; do
			[ "${a%% *}" = "$k" ] && l=$a
		done
		out="$out$l
"
		seen="$seen$k "
	done
	for a in "$@"; do
		case "$seen" in *" ${a%% *} "*) continue ;; esac
		out="$out$a
"
	done
	printf '%s' "$out" >"$CONF"
	chmod 644 "$CONF"
}

# mx ARGS... - run mxsend with the test config
# (under a 60 s timeout, so a hang fails the test instead of the suite)
mx() { timeout -k 5 60 "$SENDMAIL" -C "${CONF:-$T/conf}" "$@"; }

# wait_for CONDITION [SECONDS] - poll shell code until true (default 5 s)
wait_for() {
	local i n=$(( ${2:-5} * 20 ))
	for i in $(seq 1 $n); do
		eval "$1" && return 0
		sleep 0.05
	done
	return 1
}

# q_ids - IDs of committed messages (those with a final-named ID.msg)
q_ids() {
	local f
	for f in "$T"/q/*.msg; do
		[ -e "$f" ] || continue
		f=${f##*/}
		echo "${f%.msg}"
	done
}
# q_env ID - the current envelope of a message: ID.env when delivery has
# written one, else the submission envelope at the end of ID.msg (queue.c)
q_env() {
	local m=$T/q/$1.msg off
	if [ -f "$T/q/$1.env" ]; then
		cat "$T/q/$1.env"
	elif [ -f "$m" ]; then
		off=$(tail -c 32 "$m" | sed -n 's/^mxsend-env 0*\([0-9]\)/\1/p')
		tail -c +"$(( ${off:-0} + 1 ))" "$m" | head -c -32
	fi
}
# q_msg ID - the message bytes of ID.msg, without the envelope after them
q_msg() {
	local m=$T/q/$1.msg off
	off=$(tail -c 32 "$m" | sed -n 's/^mxsend-env 0*\([0-9]\)/\1/p')
	head -c "${off:-0}" "$m"
}
# q_edit ID SED-SCRIPT - change a message's envelope as a test needs (an
# old arrival time, say): the current envelope, edited, becomes ID.env
q_edit() {
	q_env "$1" | sed "$2" >"$T/q/$1.env.new" && mv "$T/q/$1.env.new" "$T/q/$1.env"
}
# q_envs - every current envelope, one after another
q_envs() {
	local id
	for id in $(q_ids); do
		q_env "$id"
	done
}
# q_count - how many committed messages
q_count() { q_ids | wc -l | tr -d ' '; }
# q_files - every file in the queue dir and below, relative, sorted
q_files() {
	[ -d "$T/q" ] || return 0
	(cd "$T/q" && find . -type f | sed 's|^\./||' | sort)
}
# q_msg_files - final-named message files (not in tmp/), any kind
q_msg_files() {
	[ -d "$T/q" ] || return 0
	(cd "$T/q" && find . -path ./tmp -prune -o -type f -print |
	    sed 's|^\./||' | sort)
}
# q_rcpt ADDR - "STATE TRIES" of recipient ADDR over all envelopes
q_rcpt() {
	q_envs |
	    awk -v a="$1" '$1 == "rcpt" && $5 == a { print $2, $3 }'
}
# q_rcpt_state ADDR - pending|done|failed (one line per message holding it)
q_rcpt_state() { q_rcpt "$1" | cut -d' ' -f1; }
# q_rcpt_error ADDR - ADDR's last error in words (the envelope keeps its
# facts; t/resulttest words them as -bp and the log do)
q_rcpt_error() {
	local id
	for id in $(q_ids); do
		q_env "$id" | "$TOP/t/resulttest" env - "$1"
	done
}
# q_errors - every recipient's last error in words, a line each
q_errors() {
	local id a
	for id in $(q_ids); do
		for a in $(q_env "$id" | awk '$1 == "rcpt" { print $5 }'); do
			q_env "$id" | "$TOP/t/resulttest" env - "$a"
		done
	done
}

# no_rcvd [UID] - stdin without the Received: field mxsend puts first in
# every message it takes in (submit.c, trace_field), only when its two
# lines are exactly that field: "Received: by test.example (mxsend, from
# userid UID)" (default: this user's uid), then TAB "id ID; DATE" (CRLF
# or LF ends); anything else is left as it is, so an exact comparison
# of the rest fails.  Bytes are otherwise kept (no newline is added).
no_rcvd() {
	sed -E "1{N;/^Received: by test\.example \(mxsend, from userid ${1:-$(id -u)}\)\r?\n\tid [0-9A-F]+; [A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} [-+][0-9]{4}\r?\$/d}"
}

# from_line ADDR - the From: field mxsend writes for the invoking user at
# ADDR (the display name is the GECOS field up to its first comma)
from_line() {
	local gecos
	gecos=$(getent passwd "$(id -un)" | cut -d: -f5 | cut -d, -f1)
	if [ -n "$gecos" ]; then echo "From: $gecos <$1>"; else echo "From: $1"; fi
}

# to_crlf - LF line ends to CRLF (input must be LF only)
to_crlf() { sed 's/$/\r/'; }

# have_tools - the servers exist (else skip the file, saying how to fix it)
need_tools() {
	local what=
	[ -x /usr/sbin/dnsmasq ] || what="$what dnsmasq"
	[ -x "$POSTFIX_DIR/usr/sbin/smtp-sink" ] || what="$what smtp-sink"
	"$PY" -c 'import aiosmtpd' 2>/dev/null || what="$what python3-aiosmtpd"
	[ -z "$what" ] || { echo "Bail out! missing$what: run make deps"; exit 255; }
	[ -x "$SENDMAIL" ] || { echo "Bail out! no $SENDMAIL: run make"; exit 255; }
}

# ---- sendmail -bs sessions (t/bsclient.py) ---------------------------------

# bs [DRIVER-OPTS] [-- SENDMAIL-OPTS] <SCRIPT - one session of
# "sendmail -C $CONF -bs SENDMAIL-OPTS" through t/bsclient.py (see there for
# the script and the transcript).  Prints the transcript with queue IDs as
# "ID" and the free text after the fixed start of some replies as "...";
# keeps the raw transcript in $T/TAG.tr, the IDs of "queued as" replies, in
# order, in $T/TAG.ids, and sendmail's stderr in $T/TAG.err (TAG is $BSTAG,
# default bs: sessions run at the same time need their own).
bs() {
	local d=() tag=${BSTAG:-bs}
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		d+=("$1")
		shift
	done
	[ $# -gt 0 ] && shift
	"$PY" -S "$TOP/t/bsclient.py" "${d[@]}" -- \
	    "$SENDMAIL" -C "${CONF:-$T/conf}" -bs "$@" >"$T/$tag.tr" 2>>"$T/$tag.err"
	sed -n 's/^250 2\.0\.0 Ok: queued as \([^ ]*\)$/\1/p' "$T/$tag.tr" >"$T/$tag.ids"
	sed -E -e 's/^(250 2\.0\.0 Ok: queued as )[^ ]+$/\1ID/' \
	    -e 's/^(501 5\.1\.7 Bad sender address|501 5\.1\.3 Bad recipient address|555 5\.5\.4 Unsupported parameter).*/\1.../' \
	    "$T/$tag.tr"
}

# ---- TLS: a test PKI and a TLS/AUTH receiver (t/tlsd.py) ---------------------
#
# Addresses: e2e-tls.t 110-119, e2e-tls-smarthost.t 120-125,
# e2e-tls-doctor.t 126-129.
#
#   pki_init             a test CA in $PKI ($T/pki): ca.pem, ca.key
#   pki_cert NAME CN [SAN [expired]]
#                        $PKI/NAME.pem + NAME.key signed by the CA (SAN like
#                        "DNS:mx.a.test"; "expired": valid 2020-2021 only)
#   pki_self NAME CN     a self-signed $PKI/NAME.pem + NAME.key (SAN DNS:CN)
#   start_tlsd ADDR [t/tlsd.py options]
#                        like start_smtpd (same $T/smtpd-ADDR dir, so rx_*,
#                        wait_smtpd and stop_server smtpd-ADDR work), on
#                        ADDR:${TLSD_PORT:-$SMTP_PORT}
#   rx_tls FILE          the "tls ..." line of a tlsd transaction file
#   rx_meta FILE KEY     the value of a tlsd header line (tls, auth, sni,
#                        client-cert, ehlo-after-tls)
#   rx_trace ADDR        the tlsd dialogue trace of ADDR
#   send NAME RCPT...    one message through mx -odi -v (exit status in $rc)
#   mails ADDR, reset_q  MAIL commands a receiver saw; an empty queue

PKI=$T/pki

_pki_q() {	# run quietly, keep the noise in $PKI/err.log
	"$@" >>"$PKI/err.log" 2>&1 || {
		diag "pki: failed: $*"
		diag_file "$PKI/err.log" 20
		return 1
	}
}

pki_init() {
	mkdir -p "$PKI/db"
	: >"$PKI/db/index.txt"
	echo 1000 >"$PKI/db/serial"
	cat >"$PKI/ca.cnf" <<CNF
[ ca ]
default_ca = tca
[ tca ]
dir = $PKI
database = $PKI/db/index.txt
serial = $PKI/db/serial
new_certs_dir = $PKI/db
certificate = $PKI/ca.pem
private_key = $PKI/ca.key
default_md = sha256
policy = any
unique_subject = no
copy_extensions = copy
email_in_dn = no
[ any ]
commonName = supplied
[ leaf ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
CNF
	_pki_q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
	    -nodes -keyout "$PKI/ca.key" -out "$PKI/ca.pem" -days 3650 \
	    -subj "/CN=mxsend test CA" \
	    -addext basicConstraints=critical,CA:TRUE \
	    -addext keyUsage=critical,keyCertSign,cRLSign
}

pki_cert() {	# NAME CN [SAN [expired]]
	local n=$1 cn=$2 san=${3:-} exp=${4:-} ext=()
	set -- -days 365
	[ "$exp" = expired ] &&
	    set -- -startdate 20200101000000Z -enddate 20210101000000Z
	[ -n "$san" ] && ext=(-addext "subjectAltName=$san")
	_pki_q openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
	    -nodes -keyout "$PKI/$n.key" -out "$PKI/$n.csr" \
	    -subj "/CN=$cn" "${ext[@]}" || return 1
	_pki_q openssl ca -batch -config "$PKI/ca.cnf" -extensions leaf \
	    -in "$PKI/$n.csr" -out "$PKI/$n.pem" -notext "$@"
}

pki_self() {	# NAME CN
	_pki_q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
	    -nodes -keyout "$PKI/$1.key" -out "$PKI/$1.pem" -days 365 \
	    -subj "/CN=$2" -addext "subjectAltName=DNS:$2"
}

start_tlsd() {
	_start_receiver tlsd.py "$1" "${TLSD_PORT:-$SMTP_PORT}" "${@:2}"
}

# send NAME RCPT... - one message, "Subject: NAME", from sender@origin.test,
# -odi -v: its stderr in $T/NAME.err, its exit status in $rc
send() {
	local name=$1
	shift
	printf 'Subject: %s\n\nbody\n' "$name" |
	    mx -odi -v -f sender@origin.test "$@" 2>"$T/$name.err"
	rc=$?
}
# mails ADDR - how many MAIL commands a receiver has seen so far
mails() { rx_trace "$1" | grep -c '> MAIL'; }
# reset_q - an empty queue
reset_q() { rm -rf "$T/q"; }

rx_meta() {	# FILE KEY
	rx_env "$1" | sed -n "s/^$2 //p" | head -n 1
}
rx_tls() { rx_meta "$1" tls; }
rx_trace() { cat "$T/smtpd-$1/trace" 2>/dev/null; }

# ---- a private mount namespace for real clients --------------------------------

# in_ns CMD... - run CMD in a private mount namespace in which
# /usr/sbin/sendmail is $SENDMAIL (clients that exec that path: mailx, PHP):
# the real /usr/sbin is bind-mounted read-only on $T/realsbin (visible in
# the namespace only), a tmpfs goes over /usr/sbin and gets a symlink to
# each real entry plus sendmail.  The namespace and its mounts go away
# with its last process (an -odb delivery child may keep it a little
# longer); nothing of it is visible outside.
in_ns() {
	mkdir -p "$T/realsbin"
	timeout -k 5 60 unshare --mount --propagation private sh -c '
		set -e
		mount --bind /usr/sbin "$0/realsbin"
		mount -o remount,bind,ro "$0/realsbin"
		mount -t tmpfs -o mode=0755,size=1m mxsend-sbin /usr/sbin
		ln -s "$0"/realsbin/* /usr/sbin/
		ln -sfn "$1" /usr/sbin/sendmail
		shift
		exec "$@"' "$T" "$SENDMAIL" "$@"
}

# sbin_state - what the host shows of /usr/sbin/sendmail and of the
# mounts in_ns makes (compared before and after: nothing may leak)
sbin_state() {
	ls -ld /usr/sbin/sendmail 2>&1
	findmnt -n --mountpoint /usr/sbin
	findmnt -n --mountpoint "$T/realsbin"
	ls -A "$T/realsbin"
}

# ns_why - why in_ns cannot work here; empty when it can
ns_why() {
	if [ "$(id -u)" != 0 ]; then
		echo "needs root for a private mount namespace"
	elif [ "$(in_ns readlink /usr/sbin/sendmail 2>"$T/ns.err")" != "$SENDMAIL" ]; then
		echo "cannot make a private mount namespace: $(head -n 1 "$T/ns.err")"
	fi
}
