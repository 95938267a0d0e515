#!/bin/bash
# man.t - the manual pages: mandoc -Tlint finds nothing in sendmail.8 and
# mxsend.conf.5, and mxsend.conf.5 documents every key of conf.c's keys[]
# table, and no other (a key added without its documentation fails here).
. t/lib.sh
command -v mandoc >/dev/null || { echo "Bail out! no mandoc: run make deps"; exit 255; }

# lint PAGE - mandoc -Tlint's findings, less those that depend on the
# manuals installed on this machine: a cross-reference (Xr) to a page that
# is not installed here, and a stale mandoc.db
lint() {
	mandoc -Tlint "$1" 2>&1 |
	    grep -v -e 'STYLE: referenced manual not found' -e 'mandoc\.db'
}
for page in sendmail.8 mxsend.conf.5; do
	is "$(lint $page)" "" "mandoc -Tlint $page: clean"
done

# the keys of conf.c's table, and the keys mxsend.conf.5 describes
sed -n '/^static const struct key keys\[\] = {/,/^};/p' conf.c |
    sed -n 's/^[[:space:]]*{ "\([a-z_]*\)",.*/\1/p' | sort >"$T/conf-keys"
sed -n 's/^\.It Cm \([a-z_]*\)\( .*\)\{0,1\}$/\1/p' mxsend.conf.5 | sort >"$T/man-keys"
ok '[ "$(wc -l <"$T/conf-keys")" -ge 28 ]' \
    "conf.c's keys table read ($(wc -l <"$T/conf-keys") keys)"
is "$(comm -23 "$T/conf-keys" "$T/man-keys" | tr '\n' ' ')" "" \
    "every key of conf.c is described in mxsend.conf.5"
is "$(comm -13 "$T/conf-keys" "$T/man-keys" | tr '\n' ' ')" "" \
    "mxsend.conf.5 describes no key conf.c does not have"
is "$(uniq -d "$T/man-keys" | tr '\n' ' ')" "" "mxsend.conf.5 describes each key once"

done_testing
