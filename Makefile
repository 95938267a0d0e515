# mxsend - build, test, demo, install.
#   make            build ./sendmail
#   make check      all tests (prove t/*.t); SAN=1 for ASan + UBSan
#   make programs   ./sendmail and the test drivers make check runs
#   make demo       deliver one message end to end to a local test MX
#   make bench      benchmarks (not tests)
#   make deps       install build and test dependencies (Debian, as root)
#   make deb        the Debian package, dist/mxsend_VERSION-REV_ARCH.deb

CC      ?= cc
PREFIX  ?= /usr/local
DESTDIR ?=
PKGS     = libcares openssl libidn2
CFLAGS  ?= -O2 -g
WARN     = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wformat=2 -Wno-format-nonliteral
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) \
           $(shell pkg-config --cflags $(PKGS))
# OpenSSL's headers at build time; the library is opened on first use
# (tls.c), so the binary links c-ares, libidn2 (IDNA2008, utf8.c) and libc only.
LIBS     = $(shell pkg-config --libs libcares libidn2)
ifeq ($(SAN),1)
ALL_CFLAGS += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer \
              -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=address,undefined
endif

OBJS  = util.o utf8.o result.o conf.o msg.o queue.o dns.o tls.o smtp.o mime.o report.o deliver.o mailq.o metrics.o doctor.o \
        aliases.o local.o submit.o server.o
TPROGS = t/msgtest t/smtptest t/queuetest t/conftest t/dnstest t/fuzzreplay \
         t/mime8test t/aliastest t/localtest t/resulttest t/authtest

all: sendmail

# Objects are rebuilt when the flags change (SAN=1 and back).
.flags: FORCE
	@echo '$(CC) $(ALL_CFLAGS) $(LDFLAGS)' | cmp -s - $@ || \
	  echo '$(CC) $(ALL_CFLAGS) $(LDFLAGS)' > $@
FORCE:

%.o: %.c mxsend.h .flags
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

sendmail: sendmail.o $(OBJS)
	$(CC) $(LDFLAGS) -o $@ sendmail.o $(OBJS) $(LIBS)

t/%: t/%.o $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $< $(OBJS) $(LIBS)
t/%.o: t/%.c mxsend.h t/tap.h t/testlib.h .flags
	$(CC) $(ALL_CFLAGS) -I. -c -o $@ $<

# deps first, then the build: on a fresh machine the compiler and the
# libraries come from deps.
t/maxrss: t/maxrss.c
	$(CC) -O2 -o $@ t/maxrss.c
t/benchrun: t/benchrun.c
	$(CC) -O2 -o $@ t/benchrun.c

t/fuzzreplay: t/fuzzers.c t/fuzz_net.c t/fuzz_spool.c $(OBJS)
	$(CC) $(ALL_CFLAGS) -I. $(LDFLAGS) -pthread -o $@ t/fuzzers.c $(OBJS) $(LIBS)

# make fuzz-reply, fuzz-env, fuzz-conf, fuzz-alias, fuzz-bs, fuzz-smtp,
# fuzz-auth, fuzz-auth_file, fuzz-dns, fuzz-mailq, fuzz-mbox, fuzz-submit,
# fuzz-bounce: libFuzzer (clang) on the corpus; FUZZTIME=seconds (default
# 60).  New findings land in t/corpus/TARGET/.  Undefined behaviour stops
# the run as a crash does (-fno-sanitize-recover=all).
FUZZTIME ?= 60
FUZZ_SAN = -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_SRCS = util.c utf8.c result.c conf.c msg.c queue.c dns.c tls.c smtp.c mime.c report.c deliver.c mailq.c metrics.c doctor.c \
  aliases.c local.c submit.c server.c
fuzz-%: t/fuzzers.c t/fuzz_net.c t/fuzz_spool.c $(FUZZ_SRCS) mxsend.h
	clang -g -O1 -std=c11 -D_GNU_SOURCE -DFUZZ=$* -I. \
	  $(FUZZ_SAN) -pthread -o t/fuzz-$* t/fuzzers.c \
	  $(FUZZ_SRCS) $(shell pkg-config --cflags --libs $(PKGS))
	mkdir -p t/corpus/$*
	t/fuzz-$* -max_total_time=$(FUZZTIME) -max_len=4096 t/corpus/$*

# msg.c has its own entry point, t/fuzz_msg.c, which t/msgtest includes to
# replay t/corpus/msg in make check.
t/msgtest.o: t/fuzz_msg.c
t/mime8test.o: t/fuzz_mime8.c
fuzz-mime8: t/fuzz_mime8.c t/testlib.h mime.c util.c mxsend.h
	clang -g -O1 -std=c11 -D_GNU_SOURCE -I. -DMIME8_HOLD_MAX=512 \
	  -DMIME8_HEADER_MAX=2048 $(FUZZ_SAN) \
	  -o t/fuzz_mime8 t/fuzz_mime8.c mime.c util.c
	mkdir -p t/corpus/mime8
	t/fuzz_mime8 -max_total_time=$(FUZZTIME) -max_len=4096 t/corpus/mime8
fuzz-msg: t/fuzz_msg.c t/testlib.h msg.c util.c mxsend.h
	clang -g -O1 -std=c11 -D_GNU_SOURCE -I. \
	  $(FUZZ_SAN) -o t/fuzz_msg t/fuzz_msg.c \
	  msg.c util.c $(shell pkg-config --cflags --libs $(PKGS))
	mkdir -p t/corpus/msg
	t/fuzz_msg -max_total_time=$(FUZZTIME) -max_len=4096 t/corpus/msg

check: deps
	$(MAKE) programs
	prove -j2 t/*.t

# what make check runs: the binary and the test drivers
TPROGS += t/tlstest
programs: sendmail $(TPROGS)

demo: deps
	$(MAKE) sendmail
	sh t/demo.sh

bench: deps
	$(MAKE) sendmail t/maxrss t/benchrun
	bash t/bench.sh

deps:
	sh .ci/deps

# The multi-user model (queue.c, Permissions): sendmail root:MAILGROUP
# 2755, the queue and its tmp/ root:MAILGROUP 2770, so users submit
# through the setgid binary and cannot touch the queue themselves.
# Needs root (or fakeroot) for the owners.  An existing queue directory
# gets these modes too; messages already in it keep theirs (--doctor
# lists those the group cannot use).
MAILGROUP ?= mail
QUEUEDIR  ?= /var/spool/mxsend

install: sendmail
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin \
	  $(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)$(PREFIX)/share/man/man5 \
	  $(DESTDIR)$(PREFIX)/share/doc/mxsend
	install -o root -g $(MAILGROUP) -m 2755 sendmail \
	  $(DESTDIR)$(PREFIX)/sbin/sendmail
	install -d -o root -g $(MAILGROUP) -m 2770 $(DESTDIR)$(QUEUEDIR) \
	  $(DESTDIR)$(QUEUEDIR)/tmp
	ln -sf ../sbin/sendmail $(DESTDIR)$(PREFIX)/bin/mailq
	ln -sf sendmail $(DESTDIR)$(PREFIX)/sbin/newaliases
	install -m 644 sendmail.8 $(DESTDIR)$(PREFIX)/share/man/man8/sendmail.8
	install -m 644 mxsend.conf.5 \
	  $(DESTDIR)$(PREFIX)/share/man/man5/mxsend.conf.5
	install -m 644 mxsend.conf.example $(DESTDIR)$(PREFIX)/share/doc/mxsend/

# dpkg-buildpackage writes into the parent of the tree it builds and
# leaves debian/ full of build files: it runs on a copy (the files git
# knows, or everything but dist/ outside a git checkout) in a temporary
# directory, and only the .deb comes back.  debian/changelog's version
# must be mxsend.h's MXSEND_VERSION with a Debian revision.  The package
# is built with dpkg-buildflags' flags only: this make's variables (SAN=1,
# CC, CFLAGS from make check or the command line) do not reach it.
VERSION = $(shell sed -n 's/^\#define MXSEND_VERSION "\(.*\)"$$/\1/p' mxsend.h)
deb:
	@v=$$(dpkg-parsechangelog -S Version) && case $$v in \
	  $(VERSION)-*) ;; \
	  *) echo "deb: debian/changelog has $$v, mxsend.h $(VERSION)" >&2; exit 1 ;; \
	esac
	@set -e; tmp=$$(mktemp -d "$${TMPDIR:-/tmp}/mxsend-deb.XXXXXX"); \
	trap 'rm -rf "$$tmp"' EXIT; src=$$tmp/mxsend-$(VERSION); mkdir "$$src"; \
	if [ "$$(git rev-parse --show-toplevel 2>/dev/null)" = "$$(pwd -P)" ]; then \
	  git ls-files -z -co --exclude-standard | \
	    xargs -0 sh -c 'for f; do [ -e "$$f" ] && printf "%s\0" "$$f"; done' sh | \
	    tar -c --null -T - -f - | tar -x -C "$$src"; \
	else \
	  tar -c --exclude=./dist -f - . | tar -x -C "$$src"; \
	fi; \
	(cd "$$src" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u SAN -u CC \
	  -u CFLAGS -u CPPFLAGS -u LDFLAGS dpkg-buildpackage -us -uc -b) \
	  >"$$tmp/build.log" 2>&1 || \
	  { tail -n 40 "$$tmp/build.log" >&2; exit 1; }; \
	mkdir -p dist; rm -f dist/mxsend_*.deb; \
	mv "$$tmp"/mxsend_*.deb dist/; ls dist/mxsend_*.deb

clean:
	rm -f sendmail *.o t/*.o $(TPROGS) t/fuzz-reply t/fuzz-env t/fuzz-conf t/fuzz-alias t/fuzz-bs \
	  t/fuzz-smtp t/fuzz-auth t/fuzz-auth_file t/fuzz-dns t/fuzz-mailq t/fuzz-mbox t/fuzz-submit t/fuzz-bounce t/fuzz_mime8 t/fuzz_msg t/maxrss t/benchrun .flags

.PHONY: all check programs demo bench deps deb install clean FORCE
.SECONDARY:
