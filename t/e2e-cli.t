#!/bin/bash
# e2e-cli.t - the command line outside delivery: --help (every option and
# mode sendmail.8 lists, on stdout, exit 0), --version (MXSEND_VERSION),
# and unknown long options (a usage error, exit 64, on stderr).  No
# servers, no addresses.
. t/lib.sh
[ -x "$SENDMAIL" ] || { echo "Bail out! no $SENDMAIL: run make"; exit 255; }
write_conf

# run NAME ARGS... - mx ARGS, stdout in $T/NAME.out, stderr in $T/NAME.err
run() {
	local name=$1
	shift
	mx "$@" </dev/null >"$T/$name.out" 2>"$T/$name.err"
	rc=$?
}

# --- --help ---------------------------------------------------------------------
run help --help
is "$rc" 0 "--help: exit 0"
ok '[ ! -s "$T/help.err" ]' "--help: nothing on stderr" || diag_file "$T/help.err"
like "$(head -n 1 "$T/help.out")" '^usage: sendmail ' "--help: starts with a usage line"
ok '! grep -q ".\{80\}" "$T/help.out"' "--help: every line fits 79 columns" ||
    diag_file "$T/help.out"

# Every option of sendmail.8's Options list: "-x" as a word of --help, or
# "-x" followed by more letters where the page writes "Fl x Ns Ar ...".
awk '/^\.Ss Options/,/^\.Ss The message/' sendmail.8 | grep '^\.It Fl' |
    awk '{ for (i = 2; i < NF; i++) if ($i == "Fl")
	print "-" $(i + 1) ($(i + 2) == "Ns" ? "*" : "") }' >"$T/opts"
ok '[ "$(wc -l <"$T/opts")" -ge 30 ]' "sendmail.8 lists the options (found $(wc -l <"$T/opts"))"
missing=
while read -r o; do
	case $o in
	*'*') re="(^|[ ,|[])${o%?}[A-Za-z]*" ;;
	*) re="(^|[ ,|[])$o([] ,|]|\$)" ;;
	esac
	grep -Eq -- "$re" "$T/help.out" || missing="$missing ${o%\*}"
done <"$T/opts"
is "$missing" "" "--help: every option of sendmail.8's Options list"
for w in mailq newaliases --warn --crit; do
	ok 'grep -q -- "[[ ]$w[] ,]" "$T/help.out"' "--help: names $w"
done

run help-cfg -C "$T/no-such.conf" --help
is "$rc/$(wc -l <"$T/help-cfg.out")" "0/$(wc -l <"$T/help.out")" \
    "--help with a config file that does not exist: exit 0, the summary"
SENDMAIL_DIR=$T/bin
mkdir -p "$SENDMAIL_DIR"
ln -s "$SENDMAIL" "$SENDMAIL_DIR/mailq"
"$SENDMAIL_DIR/mailq" --help >"$T/mailq.out" 2>&1
is "$?/$(cmp -s "$T/mailq.out" "$T/help.out" && echo same)" "0/same" \
    "mailq --help: the same summary"

# --- --version -------------------------------------------------------------------
version=$(sed -n 's/^#define MXSEND_VERSION "\(.*\)"$/\1/p' mxsend.h)
run version --version
is "$rc" 0 "--version: exit 0"
is "$(cat "$T/version.out")" "mxsend $version" "--version: 'mxsend $version'"
ok '[ ! -s "$T/version.err" ]' "--version: nothing on stderr"
mx --version >/dev/full 2>"$T/full.err"
is "$?" 74 "--version to a full device: exit 74 (I/O error)"

# --- unknown long options ------------------------------------------------------------
for a in --helpx --help=1 --Version --versio; do
	run bad "$a"
	is "$rc" 64 "$a: exit 64"
	is "$(cat "$T/bad.err")" "sendmail: unknown option: $a" "$a: the usage error on stderr"
	ok '[ ! -s "$T/bad.out" ]' "$a: nothing on stdout"
done

done_testing
