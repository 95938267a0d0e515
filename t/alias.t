#!/bin/sh
# alias.t - aliases.c through t/aliastest:
#   - golden files: t/data/alias/NAME.in is loaded by "t/aliastest parse"
#     and the names of its "# expand: NAME..." line by "t/aliastest
#     expand"; together they must print exactly t/data/alias/NAME.out.
#     The .in and the :include: files (*.inc) are copied to a temporary
#     directory first, "@DIR@" replaced by its path, and that path is
#     printed as "@DIR@" again (include paths must be absolute);
#   - a missing aliases file is an empty table, without error;
#   - the API assertions of "t/aliastest unit".
# Run from the repository root (prove does).

T=${ALIASTEST:-t/aliastest}
D=t/data/alias

if [ ! -x "$T" ]; then
	echo "1..0 # SKIP $T not built"
	exit 0
fi
case $T in /*) ;; *) T=$(pwd)/$T ;; esac

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP
mkdir "$tmp/w" || exit 1

n=0
fail=0
pass() { n=$((n + 1)); echo "ok $n - $1"; }
flunk() { n=$((n + 1)); echo "not ok $n - $1"; fail=1; }

"$T" unit >"$tmp/unit" 2>&1
unit_rc=$?
nunit=$(grep -c -e '^ok - ' -e '^not ok - ' "$tmp/unit")
ngold=$(ls "$D"/*.in | wc -l)
echo "1..$((ngold + nunit + 2))"

for f in "$D"/*.in "$D"/*.inc; do
	sed "s|@DIR@|$tmp/w|g" "$f" >"$tmp/w/${f##*/}" || exit 1
done

for in in "$D"/*.in; do
	name=${in##*/}
	name=${name%.in}
	names=$(sed -n 's/^# expand: //p' "$in" | tr -d '\r')
	(
		cd "$tmp/w" || exit 1
		"$T" parse "$name.in"
		# shellcheck disable=SC2086 # one word a name
		[ -z "$names" ] || "$T" expand "$name.in" $names
	) 2>&1 | sed "s|$tmp/w|@DIR@|g" >"$tmp/got"
	if [ -f "$D/$name.out" ] && cmp -s "$tmp/got" "$D/$name.out"; then
		pass "golden $name"
	else
		flunk "golden $name"
		diff -u "$D/$name.out" "$tmp/got" 2>&1 | head -40 | sed 's/^/# /'
	fi
done

got=$(cd "$tmp/w" && "$T" parse no-such-file && "$T" expand no-such-file Root)
want=$(printf 'errors: 0\nexpand Root: <root>')
if [ "$got" = "$want" ]; then
	pass "missing aliases file: empty table, no error"
else
	flunk "missing aliases file: empty table, no error"
	echo "#   got  [$got]"
	echo "#   want [$want]"
fi

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
exit $fail
