# t/unit.sh - what the scripts of the unit tests share (POSIX sh).  Set T
# to the driver (t/msgtest, ...), then source it from a t/*.t run from the
# repository root:
#   T=${MSGTEST:-t/msgtest}
#   . t/unit.sh
# The file is skipped when $T is not built.  It gives:
#   $tmp                  a fresh directory, removed at exit
#   pass NAME, flunk NAME TAP lines, numbered in $n; flunk sets $fail
#   same NAME WANT GOT    a test: the two strings are equal
#   golden NAME GOT WANT  a test: the files GOT and WANT are, byte for byte
#   unit_run              runs "$T unit" (exact assertions, "ok - NAME"
#                         lines without a plan); $nunit is how many
#   unit_report           its tests: the exit status, then each line
#   replay NAME CMD...    a test: CMD succeeds ("NAME: what it printed")
# and the script ends with "exit $fail".

if [ ! -x "$T" ]; then
	echo "1..0 # SKIP $T not built"
	exit 0
fi

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP

n=0
fail=0
pass() { n=$((n + 1)); echo "ok $n - $1"; }
flunk() { n=$((n + 1)); echo "not ok $n - $1"; fail=1; }

same() {
	if [ "$3" = "$2" ]; then
		pass "$1"
	else
		flunk "$1"
		printf '%s\n' "$2" | sed 's/^/#   want /'
		printf '%s\n' "$3" | sed 's/^/#   got  /'
	fi
}

golden() {
	if [ -f "$3" ] && cmp -s "$2" "$3"; then
		pass "golden $1"
	else
		flunk "golden $1"
		diff -u "$3" "$2" 2>&1 | head -40 | sed 's/^/# /'
	fi
}

unit_run() {
	"$T" unit >"$tmp/unit" 2>&1
	unit_rc=$?
	nunit=$(grep -c -e '^ok - ' -e '^not ok - ' "$tmp/unit")
}

unit_report() {
	if [ "$unit_rc" = 0 ]; then
		pass "unit: exit status 0"
	else
		flunk "unit: exit status $unit_rc"
		tail -5 "$tmp/unit" | sed 's/^/# /'
	fi
	while IFS= read -r line; do
		case $line in
		"ok - "*) pass "unit: ${line#ok - }" ;;
		"not ok - "*) flunk "unit: ${line#not ok - }" ;;
		*) echo "$line" ;;
		esac
	done <"$tmp/unit"
}

replay() {
	_name=$1
	shift
	if "$@" >"$tmp/replay" 2>&1; then
		pass "$_name: $(cat "$tmp/replay")"
	else
		flunk "$_name"
		tail -20 "$tmp/replay" | sed 's/^/# /'
	fi
}
