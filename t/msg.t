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
. t/unit.sh

# from NAME EXPECTED FULLNAME SENDER
from() {
	same "From: $1" "$2" "$("$T" from "$3" "$4" 2>&1)"
}

unit_run
ngold=$(ls "$D"/*.in | wc -l)
nfrom=13
echo "1..$((ngold + nfrom + nunit + 3))"

for in in "$D"/*.in; do
	name=${in##*/}
	name=${name%.in}
	mode=${name%%-*}
	"$T" "$mode" <"$in" >"$tmp/got" 2>&1
	golden "$name" "$tmp/got" "$D/$name.out"
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

unit_report
replay "fuzz invariants on the golden inputs" "$T" fuzz "$D"/*.in
replay "fuzz corpus replayed" "$T" fuzz t/corpus/msg/*
exit $fail
