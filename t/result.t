#!/bin/sh
# result.t - result.c's words and RFC 3464 fields, and report.c's reports,
# against golden files made from the same cases:
#   t/data/result/cases.in   results in their envelope form (queue.c)
#   t/data/result/cases.out  each one's sentence, Status, Remote-MTA and
#                            Diagnostic-Code
#   t/data/result/bounce.eml the cases as one bounce and one delay notice
# The golden files were checked against the previous implementation,
# which made the fields from the sentence: every case but the one of
# reason "legacy" (an envelope of version 1, whose words are not taken
# apart) came out byte for byte the same.
# Run from the repository root (prove does).

T=t/resulttest
D=t/data/result
if [ ! -x "$T" ]; then
	echo "1..0 # SKIP $T not built"
	exit 0
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

echo "1..5"
n=0
check() {	# check NAME FILE-GOT FILE-WANT
	n=$((n + 1))
	if cmp -s "$2" "$3"; then
		echo "ok $n - $1"
	else
		echo "not ok $n - $1"
		diff "$3" "$2" | sed 's/^/# /' | head -n 20
	fi
}
"$T" text "$D/cases.in" >"$tmp/cases.out"
check "words and DSN fields of every reason" "$tmp/cases.out" "$D/cases.out"
"$T" bounce "$D/cases.in" >"$tmp/bounce.eml"
check "the bounce and the delay notice" "$tmp/bounce.eml" "$D/bounce.eml"

# Bad input: words the envelope may not hold are refused, not guessed.
printf 'rcpt a@b\nresult o=perm why=no-such-reason\n' >"$tmp/bad.in"
"$T" text "$tmp/bad.in" >"$tmp/bad.out" 2>"$tmp/bad.err"
rc=$?
n=$((n + 1))
if [ "$rc" = 2 ] && [ ! -s "$tmp/bad.out" ]; then
	echo "ok $n - an unknown reason is refused"
else
	echo "not ok $n - an unknown reason is refused (rc $rc)"
fi
# Every reason has a name of its own: the envelope can store it.
n=$((n + 1))
"$T" names >"$tmp/names"
all=$(wc -l <"$tmp/names")
uniq=$(sort -u "$tmp/names" | wc -l)
none=$(grep -cx none "$tmp/names")
if [ "$all" -gt 30 ] && [ "$all" = "$uniq" ] && [ "$none" = 1 ]; then
	echo "ok $n - every reason has a name of its own ($all)"
else
	echo "not ok $n - every reason has a name of its own: $all, $uniq unique, $none none"
fi
# A sentence is one line of at most ERRTEXT_MAX - 1 octets.
n=$((n + 1))
long=$(awk '/^  text: / && length($0) - 8 > 399' "$tmp/cases.out" | wc -l)
if [ "$long" = 0 ] && ! grep -q "$(printf '\r')" "$tmp/cases.out"; then
	echo "ok $n - every sentence is one short line"
else
	echo "not ok $n - every sentence is one short line"
fi
