#!/bin/bash
# e2e-dsn.t - DSN parameters (RFC 3461): -N, -R and -V reach a server that
# offers DSN, and -N decides which reports the sender gets from mxsend.
# Addresses 127.0.0.130-134.
. t/lib.sh
need_tools

S=127.0.0.130		# dsn.test: Postfix's smtp-sink, offers DSN
R=127.0.0.131		# rej.test: t/smtpd.py, 550 for every recipient
start_dns --mx-host=dsn.test,mx.dsn.test,10 --host-record=mx.dsn.test,$S \
    --mx-host=rej.test,mx.rej.test,10 --host-record=mx.rej.test,$R || exit 1
start_sink $S || exit 1
start_smtpd $R --rcpt '*=550 5.1.1 no such user' || exit 1
write_conf

# --- the parameters on the wire ------------------------------------------------
printf 'Subject: dsn\n\nbody\n' |
    mx -odi -N success,failure -R hdrs -V 'id+1=x' -f s@dsn.test a@dsn.test 2>"$T/1.err"
is "$?" 0 "-N -R -V: exit 0"
wait_for '[ -n "$(sink_files $S)" ] && [ -z "$(tail -c 1 "$(sink_files $S | head -n 1)")" ]' 3
f=$(sink_files $S | head -n 1)
is "$(grep '^X-Mail-Args:' "$f")" "X-Mail-Args: <s@dsn.test> RET=HDRS ENVID=id+2B1+3Dx" \
    "MAIL FROM carries RET and the ENVID as xtext"
is "$(grep '^X-Rcpt-Args:' "$f")" "X-Rcpt-Args: <a@dsn.test> NOTIFY=SUCCESS,FAILURE" \
    "RCPT TO carries NOTIFY"

# --- -N decides the local reports ------------------------------------------------
printf 'Subject: never\n\nbody\n' | mx -odi -N never -f s@dsn.test x@rej.test 2>"$T/2.err"
is "$?" 69 "-N never, refused recipient: exit 69"
is "$(q_count)" 0 "-N never: no bounce queued, nothing left"
is "$(sink_files $S | wc -l | tr -d ' ')" 1 "-N never: no bounce delivered to the sender"
printf 'Subject: fail\n\nbody\n' | mx -odi -N failure -f s@dsn.test y@rej.test 2>"$T/3.err"
wait_for '[ "$(sink_files $S | wc -l)" -ge 2 ]' 3
is "$(sink_files $S | wc -l | tr -d ' ')" 2 "-N failure: the bounce reaches the sender"
like "$(grep '^Subject:' "$(sink_files $S | tail -n 1)")" "Undelivered Mail Returned to Sender" \
    "-N failure: it is the bounce"

# --- bad values: usage errors, nothing queued -----------------------------------
for bad in "-N sometimes" "-N never,success" "-R most" "-V $(printf 'a\001b')"; do
	# shellcheck disable=SC2086
	printf 'Subject: x\n\nbody\n' | mx -odq $bad a@dsn.test >/dev/null 2>"$T/bad.err"
	is "$?,$(q_count),$(wc -l <"$T/bad.err")" "64,0,1" "bad value ($bad): exit 64, one line"
done
done_testing
