#!/bin/sh
# alias.t - aliases.c through t/aliastest:
#   - golden files: t/data/alias/NAME.in is loaded by "t/aliastest parse"
#     and the names of its "# expand: NAME..." line by "t/aliastest
#     expand"; together they must print exactly t/data/alias/NAME.out.
#     The .in and the :include: files (*.inc) are copied to a temporary
#     directory first, "@DIR@" replaced by its path, and that path is
#     printed as "@DIR@" again (include paths must be absolute);
#   - a missing aliases file is an empty table, without error;
#   - what read_file refuses: a symbolic link (aliases file or
#     :include:), a FIFO, a directory, a device, a file with two links;
#     "/dev/null" as the aliases file is an empty table;
#   - the API assertions of "t/aliastest unit".
# Run from the repository root (prove does).

T=${ALIASTEST:-t/aliastest}
D=t/data/alias
. t/unit.sh
case $T in /*) ;; *) T=$(pwd)/$T ;; esac
mkdir "$tmp/w" || exit 1

unit_run
ngold=$(ls "$D"/*.in | wc -l)
echo "1..$((ngold + nunit + 3))"

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
	golden "$name" "$tmp/got" "$D/$name.out"
done

got=$(cd "$tmp/w" && "$T" parse no-such-file && "$T" expand no-such-file Root)
same "missing aliases file: empty table, no error" \
    "$(printf 'errors: 0\nexpand Root: <root>')" "$got"

# what read_file opens: each :include: below is refused, and the aliases
# file through a symbolic link or as a device is not read at all
k=$tmp/kinds
mkdir "$k" && echo 'x@y' >"$k/real" && ln -s "$k/real" "$k/link" &&
    mkfifo "$k/fifo" && mkdir "$k/dir" && echo 'x@y' >"$k/two" &&
    ln "$k/two" "$k/two2" || exit 1
printf 'l: :include:%s/link\nf: :include:%s/fifo\nd: :include:%s/dir\nh: :include:%s/two\nok: :include:%s/real\n' \
    "$k" "$k" "$k" "$k" "$k" >"$k/aliases"
ln -s "$k/aliases" "$k/aliases-link"
got=$(cd "$k" && timeout 10 "$T" expand aliases l f d h ok 2>&1
    timeout 10 "$T" parse aliases-link 2>&1; timeout 10 "$T" parse /dev/zero 2>&1
    timeout 10 "$T" expand /dev/null root 2>&1)
got=$(printf '%s\n' "$got" | sed "s|$k|@K@|g")
want=$(cat <<'EOW'
expand l: ERROR alias l: cannot read :include: file @K@/link: a symbolic link (aliases:1)
expand f: ERROR alias f: cannot read :include: file @K@/fifo: not a regular file (aliases:2)
expand d: ERROR alias d: cannot read :include: file @K@/dir: not a regular file (aliases:3)
expand h: ERROR alias h: cannot read :include: file @K@/two: has 2 links (one is required) (aliases:4)
expand ok: <x@y>
load: NULL
errors: 1
aliases-link: cannot read aliases file: a symbolic link
load: NULL
errors: 1
/dev/zero: cannot read aliases file: not a regular file
expand root: <root>
EOW
)
same "read_file: symbolic links, FIFOs, directories, devices, hard links refused; /dev/null is empty" \
    "$want" "$got"

unit_report
exit $fail
