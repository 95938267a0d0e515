#!/bin/sh
# The SMTP reply parser and client engine (t/smtptest.c).
exec ./t/smtptest
