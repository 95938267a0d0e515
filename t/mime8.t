#!/bin/sh
# mime8.t - mime.c's 8-bit to 7-bit downgrade through t/mime8test:
#   - golden files: t/data/mime8/NAME.in through t/mime8test must print
#     exactly NAME.out (exit 1 for the err-* cases, which hit a limit);
#   - for every case that converts, Python's email package reads input
#     and output: the same leaves, of the same types, decoding to the
#     same octets (line ends compared as LF), no 8-bit octet left in a
#     leaf's body, no 8bit/binary label, no line over 998 octets;
#   - generated inputs too big for files: a 7-bit part larger than the
#     hold, a 7-bit message larger than the hold, a 100 kB 8-bit line;
#   - the fuzz corpus t/corpus/mime8 replayed through "t/mime8test
#     check" (t/fuzz_mime8.c's invariants).
# Run from the repository root (prove does).

T=${MIME8TEST:-t/mime8test}
D=t/data/mime8
PY=/usr/bin/python3
. t/unit.sh

cat >"$tmp/same.py" <<'EOF'
import email, sys
from email import policy

def leaves(path):
    m = email.message_from_bytes(open(path, 'rb').read(),
                                 policy=policy.default)
    r = []
    for p in m.walk():
        if p.is_multipart():
            continue
        d = p.get_payload(decode=True) or b''
        r.append((p.get_content_type(), d.replace(b'\r\n', b'\n'), p))
    return r

src, out = sys.argv[1], sys.argv[2]
a, b = leaves(src), leaves(out)
if len(a) != len(b):
    sys.exit('%d leaves in, %d out' % (len(a), len(b)))
for i, ((ta, da, pa), (tb, db, pb)) in enumerate(zip(a, b)):
    if ta != tb:
        sys.exit('leaf %d: type %s, was %s' % (i, tb, ta))
    if da != db:
        sys.exit('leaf %d (%s): decodes to %r, was %r'
                 % (i, ta, db[:300], da[:300]))
    if any(ord(c) > 127 for c in pb.get_payload(decode=False)):
        sys.exit('leaf %d (%s): 8-bit left in the body' % (i, ta))
    cte = (pb['content-transfer-encoding'] or '').strip().lower()
    if cte in ('8bit', 'binary'):
        sys.exit('leaf %d: still labelled %s' % (i, cte))
for n, line in enumerate(open(out, 'rb').read().split(b'\r\n')):
    if len(line) > 998:
        sys.exit('line %d: %d octets' % (n + 1, len(line)))
print('%d leaves' % len(a))
EOF

skip() { n=$((n + 1)); echo "ok $n # SKIP $1"; }

# same NAME IN OUT - the Python comparison
same() {
	if [ ! -x "$PY" ]; then
		skip "$1: no $PY"
	elif "$PY" "$tmp/same.py" "$2" "$3" >"$tmp/py" 2>&1; then
		pass "$1: decodes the same ($(cat "$tmp/py"))"
	else
		flunk "$1: decodes the same"
		tail -5 "$tmp/py" | sed 's/^/# /'
	fi
}

ngold=$(ls "$D"/*.in | wc -l)
nerr=$(ls "$D"/err-*.in | wc -l)
echo "1..$((2 * ngold - nerr + 6 + 1))"

for in in "$D"/*.in; do
	name=${in##*/}
	name=${name%.in}
	"$T" <"$in" >"$tmp/got" 2>&1
	rc=$?
	case $name in
	err-*) want=1 ;;
	*) want=0 ;;
	esac
	if [ "$rc" = "$want" ] && [ -f "$D/$name.out" ] &&
	    cmp -s "$tmp/got" "$D/$name.out"; then
		pass "golden $name"
	else
		flunk "golden $name (exit $rc, want $want)"
		diff -u "$D/$name.out" "$tmp/got" 2>&1 | head -40 | sed 's/^/# /'
	fi
	[ "$want" = 0 ] && same "$name" "$in" "$tmp/got"
done

# big NAME - convert $tmp/NAME.in, then the Python comparison and the
# invariants of check mode
big() {
	if "$T" <"$tmp/$1.in" >"$tmp/$1.out" 2>&1 &&
	    "$T" check "$tmp/$1.in" >"$tmp/chk" 2>&1; then
		pass "$1: converted, invariants hold"
	else
		flunk "$1: converted, invariants hold"
		tail -5 "$tmp/chk" | sed 's/^/# /'
	fi
	same "$1" "$tmp/$1.in" "$tmp/$1.out"
}

# a 7-bit part bigger than the hold (256 kB), 8-bit data only after it
{
	printf 'Subject: big\nMIME-Version: 1.0\n'
	printf 'Content-Type: multipart/mixed; boundary=B\n\n--B\n'
	printf 'Content-Type: text/plain\n\n'
	awk 'BEGIN { for (i = 0; i < 4000; i++)
	    printf "line %d of a long clean 7-bit part ....................\n", i }'
	printf '8-bit at the end: \303\244\n--B--\n'
} >"$tmp/hold-8bit.in"
big hold-8bit

# a clean 7-bit message bigger than the hold: encoded anyway
head -c 300000 "$tmp/hold-8bit.in" | tail -n +7 >"$tmp/body"
{ printf 'Subject: big and clean\n\n'; cat "$tmp/body"; } >"$tmp/hold-clean.in"
big hold-clean

# one line of 100 kB with 8-bit data
{
	printf 'Subject: one long line\n\n'
	awk 'BEGIN { for (i = 0; i < 2000; i++)
	    printf "abcdefghijklmnopqrstuvwxyz \303\251\303\251 =.-From 0123456789"
	    print "" }'
} >"$tmp/longline.in"
big longline

replay "fuzz corpus replayed" "$T" check t/corpus/mime8/*
exit $fail
