/*
 * fuzz_spool.c - fuzz entry points for what the queue and local
 * delivery read, included by t/fuzzers.c:
 *
 *   mailq   mailq_print, mailq_json, mailq_check and --metrics over a scratch queue
 *           holding one message A: the input is A.env, NUL, the
 *           envelope at the end of A.msg (no NUL: no A.env);
 *   mbox    local_mbox of the input as a queued message into a scratch
 *           directory, as the current user, and the mailbox read back:
 *           the From line, Return-Path, and the message after mboxrd
 *           unquoting, LF lines, one empty line after;
 *   submit  submit_message of the input as standard input, with -t when
 *           its first octet is odd, into a scratch queue: what is queued
 *           reads back;
 *   bounce  report_times_scan over the input as the bounce-times file:
 *           what it keeps scans again to itself, with the same answer.
 *
 * Scratch directories live in /dev/shm when it is there (every queued
 * message is fsynced) and are removed at exit.
 */
#include <pwd.h>
#include <strings.h>
#include <sys/stat.h>

/* scratch - a new directory NAME.PID under /dev/shm or /tmp, made once
 * per name and removed at exit (with what is in it, one level down) */
static char scratch_dirs[4][1024];
static size_t nscratch;

/* rm_tree - dir, its files and its subdirectories' files */
static void
rm_tree(const char *dir, int depth)
{
	struct dirent *d;
	char f[2100];
	struct stat st;
	DIR *dp;

	if ((dp = opendir(dir)) != NULL) {
		while ((d = readdir(dp)) != NULL) {
			if (strcmp(d->d_name, ".") == 0 ||
			    strcmp(d->d_name, "..") == 0)
				continue;
			snprintf(f, sizeof(f), "%s/%s", dir, d->d_name);
			if (lstat(f, &st) == 0 && S_ISDIR(st.st_mode) && depth < 2)
				rm_tree(f, depth + 1);
			else
				unlink(f);
		}
		closedir(dp);
	}
	rmdir(dir);
}

static void
scratch_cleanup(void)
{
	size_t i;

	for (i = 0; i < nscratch; i++)
		rm_tree(scratch_dirs[i], 0);
}

static const char *
scratch(const char *name)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	char *d;

	if (nscratch == sizeof(scratch_dirs) / sizeof(scratch_dirs[0]))
		abort();
	d = scratch_dirs[nscratch];
	if (snprintf(d, sizeof(scratch_dirs[0]), "%s/mxsend-fuzz-%s.%ld", base,
	    name, (long)getpid()) >= (int)sizeof(scratch_dirs[0]))
		abort();
	rm_tree(d, 0);
	if (mkdir(d, 0700) < 0)
		abort();
	if (nscratch++ == 0)
		atexit(scratch_cleanup);
	return d;
}

/* put - write a whole file */
static void
put(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || (n && write(fd, p, n) != (ssize_t)n))
		abort();
	close(fd);
}

/* json_line_ok - one line of --queue-json: an object, no raw controls */
static int
json_line_ok(const char *p, size_t n)
{
	size_t i;

	if (n < 2 || p[0] != '{' || p[n - 1] != '}')
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20)
			return 0;
	return 1;
}

/* metrics_check - --metrics over the scratch queue: every line a
 * comment or "mxsend_NAME[{...}] NUMBER" */
static void
metrics_check(const struct conf *c)
{
	struct result res;
	char *out = NULL, *p, *nl;
	size_t outlen = 0;
	FILE *f;

	if ((f = open_memstream(&out, &outlen)) == NULL)
		abort();
	if (metrics_print(c, f, &res) < 0)
		abort();
	fclose(f);
	for (p = out; p < out + outlen; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(out + outlen - p))) == NULL)
			abort();
		if (*p != '#' && (strncmp(p, "mxsend_", 7) != 0 ||
		    memchr(p, ' ', (size_t)(nl - p)) == NULL ||
		    nl[-1] < '0' || nl[-1] > '9'))
			abort();
	}
	free(out);
}

static void
fuzz_mailq(const uint8_t *p, size_t n)
{
	static const char body[] = "Subject: x\r\n\r\nbody\r\n";
	static struct conf c;
	static int done;
	const uint8_t *z = memchr(p, '\0', n);
	struct result res;
	struct buf m;
	char path[1200], *out = NULL;
	size_t outlen = 0, i, start;
	FILE *f;
	int st;

	if (!done) {
		conf_defaults(&c);
		snprintf(c.queue_dir, sizeof(c.queue_dir), "%s", scratch("mailq"));
		done = 1;
	}
	/* A.msg: a message, the envelope, the footer queue.c writes. */
	buf_init(&m, 0);
	buf_add(&m, body, sizeof(body) - 1);
	if (z)
		buf_add(&m, z + 1, n - (size_t)(z + 1 - p));
	else
		buf_add(&m, p, n);
	buf_printf(&m, "mxsend-env %020zu\n", sizeof(body) - 1);
	snprintf(path, sizeof(path), "%s/A.msg", c.queue_dir);
	put(path, m.p, m.len);
	buf_free(&m);
	snprintf(path, sizeof(path), "%s/A.env", c.queue_dir);
	if (z)
		put(path, p, (size_t)(z - p));
	else
		unlink(path);

	if ((f = open_memstream(&out, &outlen)) == NULL)
		abort();
	if (mailq_print(&c, f, &res) < 0)
		abort();
	fclose(f);
	/* The last line is the total, never negative. */
	for (i = outlen - 1; i > 0 && out[i - 1] != '\n'; i--)
		;
	if (outlen == 0 || out[outlen - 1] != '\n' || strncmp(out + i, "-- ",
	    3) != 0 || out[i + 3] < '0' || out[i + 3] > '9')
		abort();
	free(out);
	out = NULL;
	if ((f = open_memstream(&out, &outlen)) == NULL)
		abort();
	if (mailq_json(&c, f, &res) < 0)
		abort();
	fclose(f);
	for (start = i = 0; i < outlen; i++)
		if (out[i] == '\n') {
			if (!json_line_ok(out + start, i - start))
				abort();
			start = i + 1;
		}
	if (start != outlen)
		abort();
	free(out);
	out = NULL;
	if ((f = open_memstream(&out, &outlen)) == NULL)
		abort();
	st = mailq_check(&c, 3600, 86400, f);
	fclose(f);
	/* One status line; an unreadable envelope is CRITICAL. */
	if (st < 0 || st > 2 || outlen == 0 || memchr(out, '\n', outlen) !=
	    out + outlen - 1 || strncmp(out, "MXSEND ", 7) != 0)
		abort();
	free(out);
	out = NULL;
	metrics_check(&c);
}

/* me - the current user's name */
static const char *
me(void)
{
	static char name[64];
	struct passwd *pw;

	if (name[0] == '\0') {
		if ((pw = getpwuid(geteuid())) == NULL ||
		    snprintf(name, sizeof(name), "%s", pw->pw_name) >=
		    (int)sizeof(name))
			abort();
	}
	return name;
}

/* mbox_expect - what the mailbox must hold of message p: CRLF as LF,
 * a final LF added */
static void
mbox_expect(const uint8_t *p, size_t n, struct buf *b)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')
			continue;
		buf_addc(b, p[i]);
	}
	if (b->len > 0 && b->p[b->len - 1] != '\n')
		buf_addc(b, '\n');
}

/* quoted_from - 1 + the '>'s when the line at p (n octets) starts with ">*From " */
static size_t
quoted_from(const char *p, size_t n)
{
	size_t k = 0;

	while (k < n && p[k] == '>')
		k++;
	return n - k >= 5 && memcmp(p + k, "From ", 5) == 0 ? k + 1 : 0;
}

static void
fuzz_mbox(const uint8_t *p, size_t n)
{
	static const char *dir;
	char path[1200];
	struct buf got, want, un;
	struct result res;
	const char *q, *end, *nl;
	int fd;

	if (dir == NULL)
		dir = scratch("mbox");
	snprintf(path, sizeof(path), "%s/%s", dir, me());
	unlink(path);
	if ((fd = memfd_create("msg", 0)) < 0 ||
	    (n && write(fd, p, n) != (ssize_t)n))
		abort();
	if (local_mbox(dir, me(), "s@fuzz.example", 86400 * 365, fd, (off_t)n,
	    &res) != OUT_OK)
		abort();
	close(fd);
	buf_init(&got, 0);
	buf_init(&want, 0);
	buf_init(&un, 0);
	if ((fd = open(path, O_RDONLY)) < 0 || read_all(fd, &got) < 0)
		abort();
	close(fd);
	/* The From line, Return-Path, the message, one empty line. */
	if (got.len < 2 || strncmp(got.p, "From s@fuzz.example ", 20) != 0 ||
	    (q = memchr(got.p, '\n', got.len)) == NULL ||
	    strncmp(q + 1, "Return-Path: <s@fuzz.example>\n", 30) != 0 ||
	    got.p[got.len - 1] != '\n' || got.p[got.len - 2] != '\n')
		abort();
	q += 31;
	end = got.p + got.len - 1;
	for (; q < end; q = nl + 1) {
		size_t len, k;

		nl = memchr(q, '\n', (size_t)(end - q));
		if (nl == NULL)
			abort();	/* the message ends in LF */
		len = (size_t)(nl - q);
		/* An unquoted From line would split the mailbox. */
		if (len >= 5 && memcmp(q, "From ", 5) == 0)
			abort();
		k = quoted_from(q, len);
		buf_add(&un, q + (k ? 1 : 0), len - (k ? 1 : 0) + 1);
	}
	mbox_expect(p, n, &want);
	if (un.len != want.len || (un.len && memcmp(un.p, want.p, un.len) != 0))
		abort();
	buf_free(&got);
	buf_free(&want);
	buf_free(&un);
}

/* submit_conf - the submit target's config: a scratch queue, local mail
 * (aliases none) for fuzz.example */
static struct conf *
submit_conf(void)
{
	static struct conf c;
	static int done;

	if (done)
		return &c;
	conf_defaults(&c);
	if (snprintf(c.queue_dir, sizeof(c.queue_dir), "%s",
	    scratch("submit")) >= (int)sizeof(c.queue_dir) ||
	    snprintf(c.aliases, sizeof(c.aliases), "%s/none", c.queue_dir) >=
	    (int)sizeof(c.aliases))
		abort();
	snprintf(c.hostname, sizeof(c.hostname), "fuzz.example");
	snprintf(c.qualify_domain, sizeof(c.qualify_domain), "fuzz.example");
	strlist_add(&c.local_domains, "fuzz.example");
	c.max_message_size = 8192;
	done = 1;
	return &c;
}

/* queued_ok - ID as queued: the envelope reads back with nr recipients,
 * the message has CRLF lines, no NUL, no Bcc field */
static void
queued_ok(const struct conf *c, const char *id, size_t nr)
{
	struct envelope e;
	struct result res;
	struct buf m;
	char path[1200];
	size_t i;
	int fd;

	if (queue_read_env(c, id, -1, &e, &res) < 0 || e.nr != nr || nr == 0)
		abort();
	if (snprintf(path, sizeof(path), "%s/%s.msg", c->queue_dir, id) >=
	    (int)sizeof(path))
		abort();
	buf_init(&m, 0);
	if ((fd = open(path, O_RDONLY)) < 0 || read_all(fd, &m) < 0 ||
	    (size_t)e.size > m.len)
		abort();
	close(fd);
	for (i = 0; i < (size_t)e.size; i++) {
		if (m.p[i] == '\0' || (m.p[i] == '\n' && (i == 0 ||
		    m.p[i - 1] != '\r')))
			abort();
		if (i + 1 < (size_t)e.size && m.p[i] == '\n' && m.p[i + 1] ==
		    '\r')
			break;	/* the end of the header */
		if ((i == 0 || m.p[i - 1] == '\n') &&
		    strncasecmp(m.p + i, "bcc:", 4) == 0)
			abort();
	}
	for (; i < (size_t)e.size; i++)
		if (m.p[i] == '\0' || (m.p[i] == '\n' && m.p[i - 1] != '\r'))
			abort();
	if (unlink(path) < 0)
		abort();
	buf_free(&m);
	env_free(&e);
}

static void
fuzz_submit(const uint8_t *p, size_t n)
{
	struct conf *c = submit_conf();
	struct subopts so = { "fuzz", NULL, 0, 0, 0 };
	struct envelope e;
	struct subres sr;
	struct reader *rd = xmalloc(sizeof(*rd));
	char err[512];
	int fd;

	if (n == 0)
		goto out;
	so.tflag = p[0] & 1;
	so.iflag = (p[0] & 2) != 0;
	so.fullname = (p[0] & 4) ? "Fuzz \"Q\" User" : NULL;
	env_init(&e);
	if (submit_sender(c, "fuzz", &e, err, sizeof(err)) < 0 ||
	    (!so.tflag && submit_rcpt_list(c, &e, "x@remote.example, root",
	    "invalid recipient", err, sizeof(err)) < 0))
		abort();
	if ((fd = memfd_create("in", 0)) < 0 ||
	    (n > 1 && write(fd, p + 1, n - 1) != (ssize_t)(n - 1)) ||
	    lseek(fd, 0, SEEK_SET) != 0)
		abort();
	rd_init(rd, fd, 0);
	if (submit_message(c, rd, &e, &so, &sr) == SUB_OK)
		queued_ok(c, e.id, e.nr);
	else if (sr.text[0] == '\0' || strchr(sr.text, '\n'))
		abort();
	close(fd);
	env_free(&e);
out:
	free(rd);
}

static void
fuzz_bounce(const uint8_t *p, size_t n)
{
	/* A clock within the bounds of queue.c, and one at its top. */
	static const time_t nows[] = { 1700000000, (1LL << 40) - 1 };
	static const unsigned long long keys[] = { 0, 0x0123456789abcdefULL };
	struct buf keep, again;
	size_t i, j;
	int seen;

	for (i = 0; i < 2; i++)
		for (j = 0; j < 2; j++) {
			buf_init(&keep, 0);
			buf_init(&again, 0);
			seen = report_times_scan((const char *)p, n, keys[j],
			    nows[i], &keep);
			/* The kept lines are normalised: a fixed point. */
			if (report_times_scan(keep.p ? keep.p : "", keep.len,
			    keys[j], nows[i], &again) != seen ||
			    again.len != keep.len || (keep.len &&
			    memcmp(again.p, keep.p, keep.len) != 0))
				abort();
			buf_free(&keep);
			buf_free(&again);
		}
}
