#!/bin/bash
# newaliases.t - -bi and newaliases check the aliases file and report each
# error with its file and line (aliases are read at delivery time, so
# nothing is rebuilt).  No servers.
. t/lib.sh

write_conf "aliases $T/aliases"
printf 'root: admin@example.org\npostmaster: root\n# a comment\nbad line\nops: |/bin/true\nlog: /var/log/x\n' >"$T/aliases"
mx -bi >"$T/out" 2>"$T/err"
is "$?" 65 "errors: exit 65"
is "$(cat "$T/err")" "sendmail: $T/aliases:4: missing ':' after the alias name: bad line
sendmail: $T/aliases:5: pipe targets are not supported
sendmail: $T/aliases:6: file targets are not supported" "errors: one line each, with file and line"
is "$(cat "$T/out")" "" "errors: nothing on standard output"

printf 'root: admin@example.org\npostmaster: root,\n\ta-continued@example.org\n' >"$T/aliases"
mx -bi >"$T/out" 2>"$T/err"
is "$?,$(cat "$T/out" "$T/err")" "0," "a good file: exit 0, silent"
mx -bi -v 2>"$T/err"
is "$(cat "$T/err")" "$T/aliases: 2 aliases, no errors" "-v: says how many aliases"
ln -s "$SENDMAIL" "$T/newaliases"
MXSEND_CONFIG=$T/conf "$T/newaliases" 2>"$T/err"
is "$?,$(cat "$T/err")" "0," "invoked as newaliases: the same check"
rm -f "$T/aliases"
mx -bi 2>"$T/err"
is "$?,$(cat "$T/err")" "0," "no aliases file: nothing to check, exit 0"
done_testing
