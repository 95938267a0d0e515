#!/bin/sh
# Local delivery to mbox and Maildir (t/localtest.c); as root it delivers
# to "nobody" through the privilege drop.
T=./t/localtest
if [ ! -x "$T" ]; then
	echo "1..0 # SKIP $T not built"
	exit 0
fi
exec "$T"
