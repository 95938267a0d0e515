#!/bin/sh
# Envelope format and spool protocol (t/queuetest.c).
exec ./t/queuetest
