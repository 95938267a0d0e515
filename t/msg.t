#!/bin/sh
# msg.t - msg.c through t/msgtest:
#   - golden files: t/data/msg/NAME.in through "t/msgtest MODE", MODE the
#     part of NAME before the first '-' (hdr, addr, check), must print
#     exactly t/data/msg/NAME.out;
#   - the From: msg_fixup makes from -F and the envelope sender, exactly;
#   - the API assertions of "t/msgtest unit";
#   - the fuzz corpus t/corpus/msg, and the golden inputs, through the
#     invariants of t/fuzz_msg.c.
# Run from the repository root (prove does).

T=${MSGTEST:-t/msgtest}
D=t/data/msg

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

# from NAME EXPECTED FULLNAME SENDER
from() {
	got=$("$T" from "$3" "$4" 2>&1)
	if [ "$got" = "$2" ]; then
		pass "From: $1"
	else
		flunk "From: $1"
		echo "#   got  [$got]"
		echo "#   want [$2]"
	fi
}

"$T" unit >"$tmp/unit" 2>&1
unit_rc=$?
nunit=$(grep -c -e '^ok - ' -e '^not ok - ' "$tmp/unit")
ngold=$(ls "$D"/*.in | wc -l)
nfrom=13
echo "1..$((ngold + nfrom + nunit + 3))"

for in in "$D"/*.in; do
	name=${in##*/}
	name=${name%.in}
	mode=${name%%-*}
	"$T" "$mode" <"$in" >"$tmp/got" 2>&1
	if [ -f "$D/$name.out" ] && cmp -s "$tmp/got" "$D/$name.out"; then
		pass "golden $name"
	else
		flunk "golden $name"
		diff -u "$D/$name.out" "$tmp/got" 2>&1 | head -40 | sed 's/^/# /'
	fi
done

from "user@qualify_domain" "From: user@host.example" "" ""
from "plain name" "From: John Smith <user@host.example>" "John Smith" ""
from "name with a dot is quoted" \
    'From: "John Q. Public" <user@host.example>' "John Q. Public" ""
from "quotes and backslashes escaped" \
    'From: "Doe, John \\"JD\\" \\\\x" <user@host.example>' \
    'Doe, John "JD" \x' ""
from "CR LF stripped, no header injection" \
    'From: "EvilBcc: victim@example.org" <user@host.example>' \
    "$(printf 'Evil\r\nBcc: victim@example.org')" ""
from "tab made a space, outer blanks trimmed" \
    "From: A B <user@host.example>" "$(printf '  A\tB \001 ')" ""
from "only control characters: no name" "From: user@host.example" \
    "$(printf '\001\002\033')" ""
from "8-bit name kept" 'From: J\xc3\xbcrgen <user@host.example>' \
    "$(printf 'J\303\274rgen')" ""
from "envelope sender" "From: Bob <sender@example.org>" \
    "Bob" "sender@example.org"
from "unqualified envelope sender" "From: bob@host.example" "" "bob"
from "quoted envelope sender" 'From: "a b"@example.org' "" '"a b"@example.org'
from "full name too long" \
    "ERROR: cannot make From: full name too long" \
    "$(printf '%0980d' 0)" ""
from "bad envelope sender" \
    "ERROR: cannot make From: invalid address \"a b@c\": invalid character ' '" \
    "" "a b@c"

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

if "$T" fuzz "$D"/*.in >"$tmp/fuzz" 2>&1; then
	pass "fuzz invariants on the golden inputs"
else
	flunk "fuzz invariants on the golden inputs"
	tail -20 "$tmp/fuzz" | sed 's/^/# /'
fi
if ls t/corpus/msg/* >/dev/null 2>&1 &&
    "$T" fuzz t/corpus/msg/* >"$tmp/fuzz" 2>&1; then
	pass "fuzz corpus replayed: $(cat "$tmp/fuzz")"
else
	flunk "fuzz corpus replayed"
	tail -20 "$tmp/fuzz" | sed 's/^/# /'
fi
exit $fail
