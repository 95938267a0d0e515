#!/bin/bash
# e2e-bsdiff.t - sendmail -bs against a reference model of the SMTP data
# phase (t/bsdiff.py): random pipelined sessions with CRLF, bare LF and CR,
# dot lines, NULs, 8-bit data, the 64 KiB read boundary and writes split at
# random; replies and queued bytes must match exactly.  A fixed seed, so a
# failure reproduces with the command in the diagnostics.
. t/lib.sh

SEED=20261128
N=400
DIFFT_SENDMAIL=$SENDMAIL DIFFT_DIR=$T /usr/bin/python3 t/bsdiff.py -n $N -s $SEED -j 2 \
    >"$T/diff.out" 2>&1
is "$?" 0 "bsdiff: $N sessions, seed $SEED, exit 0" ||
    diag "rerun: DIFFT_SENDMAIL=./sendmail /usr/bin/python3 t/bsdiff.py -n $N -s $SEED -v"
is "$(tail -n 1 "$T/diff.out")" "sessions: $N {'ok': $N}" "bsdiff: every session matches the model" ||
    diag_file "$T/diff.out"
done_testing
