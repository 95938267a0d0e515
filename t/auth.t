#!/bin/sh
# auth_file parsing and checks (t/authtest.c).
exec ./t/authtest
