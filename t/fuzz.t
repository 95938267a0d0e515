#!/bin/sh
# Replays the fuzz corpora of reply_parse, env_load, conf_parse,
# aliases_parse, the -bs session (t/fuzzers.c), the SMTP client, SCRAM
# and base64, auth_file parsing, DNS answers (t/fuzz_net.c), the queue
# listings, mbox delivery, the -t intake and the bounce-times scan
# (t/fuzz_spool.c) through the normal build, one process a target: a
# crash fails the test.
# Address 127.0.0.200 (the dns target's server; block 127.0.0.200-209).
n=0
fail=0
out=t/fuzz.out.$$
for target in reply env conf alias bs smtp auth auth_file dns mailq mbox \
    submit bounce; do
	./t/fuzzreplay $target t/corpus/$target/* >$out 2>$out.err
	st=$?
	for f in $(sed -n 's/^ok [0-9]* - [a-z0-9_]* //p' $out); do
		n=$((n + 1))
		echo "ok $n - $target $f"
	done
	if [ $st -ne 0 ] || ! grep -q '^1\.\.' $out; then
		n=$((n + 1))
		echo "not ok $n - $target: the replay died (status $st) after the files above"
		sed 's/^/# /' $out.err
		fail=1
	fi
done
rm -f $out $out.err
echo "1..$n"
exit $fail
