#!/bin/sh
# tls.c's base64 and SCRAM-SHA-256, exact assertions (t/tlstest.c).
exec ./t/tlstest
