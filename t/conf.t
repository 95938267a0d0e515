#!/bin/sh
# The config file parser (t/conftest.c).
exec ./t/conftest
