#!/bin/sh
# Replays the fuzz corpora of reply_parse, env_load, conf_parse and
# aliases_parse and the -bs session
# (t/fuzzers.c) through the normal build: a crash fails the test.
n=0
fail=0
for target in reply env conf alias bs; do
	for f in t/corpus/$target/*; do
		n=$((n + 1))
		if ./t/fuzzreplay $target "$f" >/dev/null 2>t/fuzz.err.$$; then
			echo "ok $n - $target $f"
		else
			echo "not ok $n - $target $f"
			sed 's/^/# /' t/fuzz.err.$$
			fail=1
		fi
	done
done
rm -f t/fuzz.err.$$
echo "1..$n"
exit $fail
