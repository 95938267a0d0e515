/*
 * fuzzers.c - fuzz entry points for the parsers of untrusted input that
 * live outside msg.c and mime.c: SMTP replies (reply_parse), envelopes
 * (env_load and its dump round trip), config files (conf_parse), aliases
 * files (aliases_parse and expansion), and an SMTP session of -bs
 * (smtp_server and submit_message, queueing into a scratch directory);
 * and, in the files included below, the SMTP client, SCRAM and base64,
 * auth_file parsing, DNS answers (t/fuzz_net.c), the queue listings,
 * mbox delivery, the -t intake and the bounce-times scan
 * (t/fuzz_spool.c).
 *
 * Two builds:
 *   make fuzz-TARGET   libFuzzer, e.g. make fuzz-reply (needs clang);
 *                      runs until stopped, corpus in t/corpus/TARGET/
 *   t/fuzzreplay       replays the corpus in make check, without clang:
 *                      t/fuzzreplay TARGET FILE... prints TAP
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mxsend.h"

#include "fuzz_net.c"
#include "fuzz_spool.c"

static void
fuzz_reply(const uint8_t *p, size_t n)
{
	struct reply r;
	char err[100];
	size_t off = 0;
	ssize_t k;

	/* Consume replies one after another, as a pipelined client does. */
	while (off < n && (k = reply_parse((const char *)p + off, n - off, &r,
	    err, sizeof(err))) > 0) {
		if (r.code < 200 || r.code > 559 || strlen(r.text) >= REPLY_TEXT_MAX)
			abort();
		off += (size_t)k;
	}
}

/* env_words - r in words and as DSN fields: one bounded line each */
static void
env_words(const struct result *r, const char *addr)
{
	struct result_dsn d;
	char t[ERRTEXT_MAX];

	result_text(r, addr, t, sizeof(t));
	result_dsn(r, addr, &d);
	if (strlen(t) >= ERRTEXT_MAX || strchr(t, '\n') ||
	    strlen(d.status) < 5 || strchr(d.diag, '\n'))
		abort();
}

static void
fuzz_env(const uint8_t *p, size_t n)
{
	struct envelope e, e2;
	struct buf b;
	char err[200];
	size_t i;

	env_init(&e);
	buf_init(&b, 0);
	if (env_load(&e, (const char *)p, n, err, sizeof(err)) == 0 &&
	    env_dump(&e, &b) == 0) {
		/* What loads and dumps must load again to the same thing. */
		env_init(&e2);
		if (env_load(&e2, b.p, b.len, err, sizeof(err)) < 0 ||
		    e2.nr != e.nr || strcmp(e2.sender, e.sender) != 0)
			abort();
		env_free(&e2);
		/* Every result loaded can be worded and reported. */
		for (i = 0; i < e.nr; i++)
			if (e.r[i].res)
				env_words(e.r[i].res, e.r[i].addr);
	}
	env_free(&e);
	buf_free(&b);
}

static void
fuzz_conf(const uint8_t *p, size_t n)
{
	struct conf c;
	char err[300];

	conf_defaults(&c);
	(void)conf_parse(&c, (const char *)p, n, "fuzz", err, sizeof(err));
	conf_free(&c);
}

static void
fuzz_alias(const uint8_t *p, size_t n)
{
	static const char *const names[] = { "root", "a", "postmaster", "x" };
	struct aliases *ta = aliases_new();
	struct strlist errs, out;
	char err[300];
	size_t i;

	strlist_init(&errs);
	if (ta && aliases_parse(ta, (const char *)p, n, "fuzz", &errs) == 0)
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			strlist_init(&out);
			if (aliases_expand(ta, names[i], &out, err, sizeof(err)) == 0 &&
			    out.n > RCPT_MAX)
				abort();
			strlist_free(&out);
		}
	aliases_free(ta);
	strlist_free(&errs);
}

static char bs_dir[1024];

/* bs_cleanup - at exit: the scratch queue (files in it and in tmp/) */
static void
bs_cleanup(void)
{
	static const char *const sub[] = { "tmp", "" };
	char path[2100];
	struct dirent *d;
	DIR *dp;
	size_t i;

	for (i = 0; i < 2 && bs_dir[0]; i++) {
		snprintf(path, sizeof(path), "%s/%s", bs_dir, sub[i]);
		if ((dp = opendir(path)) == NULL)
			continue;
		while ((d = readdir(dp)) != NULL) {
			char f[2400];

			if (d->d_name[0] == '.' || strcmp(d->d_name, "tmp") == 0)
				continue;
			snprintf(f, sizeof(f), "%s/%s", path, d->d_name);
			unlink(f);
		}
		closedir(dp);
		rmdir(path);
	}
	snprintf(path, sizeof(path), "%s.aliases", bs_dir);
	unlink(path);
}

/* bs_conf - the -bs target's config: a scratch queue, local mail through
 * a small aliases file, short timeouts (the input is a file, so they are
 * never reached) */
static struct conf *
bs_conf(void)
{
	static struct conf c;
	static int done;
	static const char aliases[] = "root: admin@remote.example, user\n"
	    "loop: loop2\nloop2: loop\nops: |/bin/true\n";
	int fd;

	if (done)
		return &c;
	conf_defaults(&c);
	if (snprintf(c.queue_dir, sizeof(c.queue_dir), "/tmp/mxsend-fuzz-bs.%ld",
	    (long)getpid()) >= (int)sizeof(c.queue_dir) ||
	    snprintf(c.aliases, sizeof(c.aliases), "%s.aliases", c.queue_dir) >=
	    (int)sizeof(c.aliases))
		abort();
	atexit(bs_cleanup);
	snprintf(c.hostname, sizeof(c.hostname), "fuzz.example");
	snprintf(c.qualify_domain, sizeof(c.qualify_domain), "fuzz.example");
	strlist_add(&c.local_domains, "fuzz.example");
	snprintf(bs_dir, sizeof(bs_dir), "%s", c.queue_dir);
	c.command_timeout = c.data_timeout = 1;
	c.max_message_size = 4096;
	fd = open(c.aliases, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, aliases, sizeof(aliases) - 1) < 0)
		abort();
	close(fd);
	done = 1;
	return &c;
}

static void
bs_add_id(const char *id, void *ids)
{
	strlist_add(ids, id);
}

static void
fuzz_bs(const uint8_t *p, size_t n)
{
	struct conf *c = bs_conf();
	struct subopts so = { "fuzz", NULL, 0, 0, 1 };
	struct strlist ids;
	char path[1200];
	size_t i;
	int in, out;

	in = memfd_create("bs", 0);
	out = open("/dev/null", O_WRONLY);
	if (in < 0 || out < 0 || write(in, p, n) != (ssize_t)n ||
	    lseek(in, 0, SEEK_SET) != 0)
		abort();
	strlist_init(&ids);
	(void)smtp_server(c, &so, in, out, bs_add_id, &ids);
	/* Every message acknowledged is in the queue; clear it. */
	for (i = 0; i < ids.n; i++) {
		if (snprintf(path, sizeof(path), "%s/%s.msg", c->queue_dir,
		    ids.v[i]) >= (int)sizeof(path) || unlink(path) < 0)
			abort();
	}
	strlist_free(&ids);
	close(in);
	close(out);
}

static const struct {
	const char *name;
	void (*fn)(const uint8_t *, size_t);
} targets[] = {
	{ "bs", fuzz_bs },
	{ "alias", fuzz_alias },
	{ "reply", fuzz_reply },
	{ "env", fuzz_env },
	{ "conf", fuzz_conf },
	{ "smtp", fuzz_smtp },
	{ "auth", fuzz_auth },
	{ "auth_file", fuzz_auth_file },
	{ "dns", fuzz_dns },
	{ "mailq", fuzz_mailq },
	{ "mbox", fuzz_mbox },
	{ "submit", fuzz_submit },
	{ "bounce", fuzz_bounce },
};

#ifdef FUZZ
#define STR_(x) #x
#define STR(x) STR_(x)
int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof(targets) / sizeof(targets[0]); i++)
		if (strcmp(targets[i].name, STR(FUZZ)) == 0)
			targets[i].fn(p, n);
	return 0;
}
#else
int
main(int argc, char **argv)
{
	static uint8_t data[1 << 20];
	size_t i;
	int a, fd, n = 0;
	ssize_t len;

	if (argc < 2)
		return 2;
	for (i = 0; i < sizeof(targets) / sizeof(targets[0]); i++)
		if (strcmp(targets[i].name, argv[1]) == 0)
			break;
	if (i == sizeof(targets) / sizeof(targets[0]))
		return 2;
	/* FUZZ_VERBOSE=1: what -v shows (the SMTP dialogue, DNS routes) */
	verbose = getenv("FUZZ_VERBOSE") != NULL;
	for (a = 2; a < argc; a++) {
		fd = open(argv[a], O_RDONLY);
		len = fd < 0 ? -1 : read(fd, data, sizeof(data));
		if (fd >= 0)
			close(fd);
		if (len < 0) {
			printf("not ok %d - %s: unreadable\n", ++n, argv[a]);
			continue;
		}
		/* A crash ends the run, and prove reports the missing plan. */
		targets[i].fn(data, (size_t)len);
		printf("ok %d - %s %s\n", ++n, argv[1], argv[a]);
	}
	printf("1..%d\n", n);
	return 0;
}
#endif
