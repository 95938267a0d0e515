/*
 * sendmail.c - main(), the sendmail command line, and the one table from
 * outcomes to exit codes (sysexits.h).
 *
 * Modes: -bm (submit: read a message on stdin, queue it durably, deliver
 * it per -odb/-odi/-odq), -bp (list the queue; also as "mailq"), -q (one
 * queue run), -bi (as "newaliases").
 *
 * Intake: the header block is read line by line (LF or CRLF) into msg.c's
 * parser, fixed up, and written to the queue file with CRLF line ends;
 * the body is streamed after it, never held in memory.  Without -i a line
 * holding a single "." ends the message.  A NUL byte anywhere, a header
 * line over 998 octets or a bad address refuse the whole message with
 * exit 65, and nothing is queued.  Body lines over 998 octets are broken
 * by inserting CRLF SPACE, as Postfix's smtp_line_length_limit does.
 *
 * Security: umask 077, fds 0-2 kept open, never setuid; with -C a setgid
 * bit is dropped before the file is read.  Every address from the
 * command line or the headers is checked (no control characters) before
 * it can reach the queue or the wire.
 */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "mxsend.h"

/* The input is read in blocks this large. */
#define READ_BLOCK 65536
/* Break body lines longer than this (RFC 5322 2.1.1), one less when the
 * line starts with a dot that SMTP will double. */
#define BODY_LINE_MAX LINE_MAX_OCTETS

enum mode {
	M_SUBMIT, M_QUEUE_LIST, M_RUN_QUEUE, M_ALIASES, M_SMTP, M_QUEUE_JSON,
	M_CHECK_QUEUE, M_DOCTOR
};
enum dmode { D_BACKGROUND, D_INTERACTIVE, D_QUEUE };

struct opts {
	enum mode mode;
	enum dmode dmode;
	int tflag, iflag;
	const char *from;	/* -f/-r */
	const char *fullname;	/* -F */
	const char *config;	/* -C */
	int body8bit;		/* -B 8BITMIME: 1, 7BIT: 0, none: -1 */
	const char *dsn_notify, *dsn_ret, *dsn_envid;
	struct qfilter qf;
	long warn, crit;	/* --check-queue ages */
	char **rcpts;
	int nrcpts;
};

/* Why a run failed, for the exit table. */
enum failure {
	F_NONE, F_USAGE, F_DATA, F_CANTCREAT, F_IOERR, F_TEMP, F_CONFIG,
	F_UNAVAILABLE, F_SOFTWARE
};

/* The one table from failures to exit codes. */
static const struct {
	enum failure f;
	int code;
} exit_table[] = {
	{ F_NONE, EX_OK },
	{ F_USAGE, EX_USAGE },
	{ F_DATA, EX_DATAERR },
	{ F_CANTCREAT, EX_CANTCREAT },
	{ F_IOERR, EX_IOERR },
	{ F_TEMP, EX_TEMPFAIL },
	{ F_CONFIG, EX_CONFIG },
	{ F_UNAVAILABLE, EX_UNAVAILABLE },
	{ F_SOFTWARE, EX_SOFTWARE },
};

static int
exit_code(enum failure f)
{
	size_t i;

	for (i = 0; i < sizeof(exit_table) / sizeof(exit_table[0]); i++)
		if (exit_table[i].f == f)
			return exit_table[i].code;
	return EX_SOFTWARE;
}

/* queue_failure - a queue errno as a failure class */
static enum failure
queue_failure(int err)
{
	switch (err) {
	case ENOENT:
	case ENOTDIR:
	case ENAMETOOLONG:
	case ELOOP:
		return F_CANTCREAT;
	case EIO:
		return F_IOERR;
	default:
		/* Disk full, permissions, read-only: the caller keeps the
		 * message and tries again later. */
		return F_TEMP;
	}
}

static void __attribute__((noreturn))
usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "%s: ", progname);
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	exit(exit_code(F_USAGE));
}

/* optarg_of - the value of a flag: attached ("-fa@b") or the next arg */
static const char *
optarg_of(char **argv, int *i, const char *attached, const char *flag)
{
	if (*attached)
		return attached;
	if (argv[*i + 1] == NULL)
		usage("option %s requires a value", flag);
	return argv[++*i];
}

/* dsn_notify - -N: "never" or a list of success, failure, delay
 * (RFC 3461 4.1), in canonical form; a usage error otherwise */
static const char *
dsn_notify(const char *v)
{
	static const char *const word[] = { "SUCCESS", "FAILURE", "DELAY" };
	static char out[32];
	const char *p = v;
	unsigned set = 0;
	size_t n, k;
	int w;

	if (strcasecmp(v, "never") == 0)
		return "NEVER";
	while (*p) {
		n = strcspn(p, ",");
		for (w = 0; w < 3; w++)
			if (n == strlen(word[w]) && strncasecmp(p, word[w], n) == 0)
				break;
		if (w == 3)
			usage("-N takes never or success,failure,delay: %s", v);
		set |= 1u << w;
		p += n + (p[n] == ',');
	}
	if (set == 0)
		usage("-N takes never or success,failure,delay: %s", v);
	for (out[0] = '\0', k = 0, w = 0; w < 3; w++)
		if (set & (1u << w))
			k += (size_t)snprintf(out + k, sizeof(out) - k, "%s%s",
			    k ? "," : "", word[w]);
	return out;
}

/* long_option - the options beyond sendmail's (they cannot clash) */
static void
long_option(char **argv, int *i, struct opts *o)
{
	const char *a = argv[*i];

	if (strcmp(a, "--queue-json") == 0)
		o->mode = M_QUEUE_JSON;
	else if (strcmp(a, "--check-queue") == 0)
		o->mode = M_CHECK_QUEUE;
	else if (strcmp(a, "--doctor") == 0)
		o->mode = M_DOCTOR;
	else if (strcmp(a, "--warn") == 0 || strcmp(a, "--crit") == 0) {
		const char *v = optarg_of(argv, i, "", a);

		if (parse_duration(v, a[2] == 'w' ? &o->warn : &o->crit) < 0)
			usage("%s takes a duration such as 30m or 4h", a);
	} else
		usage("unknown option: %s", a);
}

static void
parse_args(int argc, char **argv, struct opts *o)
{
	int i;

	(void)argc;
	for (i = 1; argv[i] != NULL && argv[i][0] == '-'; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[1] == '\0')
			usage("unknown option: %s", a);
		if (a[1] == '-') {
			long_option(argv, &i, o);
			continue;
		}
		switch (a[1]) {
		case 't':
		case 'i':
		case 'v':
		case 'G':
		case 'U':
		case 'n':
		case 'm':
			if (a[2] != '\0')
				usage("unknown option: %s", a);
			if (a[1] == 't')
				o->tflag = 1;
			else if (a[1] == 'i')
				o->iflag = 1;
			else if (a[1] == 'v')
				verbose++;
			break;
		case 'f':
		case 'r':
			o->from = optarg_of(argv, &i, a + 2, a);
			break;
		case 'F':
			o->fullname = optarg_of(argv, &i, a + 2, a);
			break;
		case 'C':
			o->config = optarg_of(argv, &i, a + 2, a);
			break;
		case 'N':
			o->dsn_notify = dsn_notify(optarg_of(argv, &i, a + 2, a));
			break;
		case 'R':
			o->dsn_ret = optarg_of(argv, &i, a + 2, a);
			if (strcasecmp(o->dsn_ret, "full") == 0)
				o->dsn_ret = "FULL";
			else if (strcasecmp(o->dsn_ret, "hdrs") == 0)
				o->dsn_ret = "HDRS";
			else
				usage("-R takes full or hdrs, not %s", o->dsn_ret);
			break;
		case 'V':
			o->dsn_envid = optarg_of(argv, &i, a + 2, a);
			/* RFC 3461 4.4: printable US-ASCII, 100 characters. */
			if (strlen(o->dsn_envid) > 100 || o->dsn_envid[strspn(
			    o->dsn_envid, "!\"#$%&'()*+,-./0123456789:;<=>?@"
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrst"
			    "uvwxyz{|}~")] != '\0')
				usage("-V takes up to 100 printable characters: %s",
				    "bad envelope ID");
			break;
		case 'B': {
			const char *v = optarg_of(argv, &i, a + 2, a);

			if (strcasecmp(v, "8BITMIME") == 0)
				o->body8bit = 1;
			else if (strcasecmp(v, "7BIT") == 0)
				o->body8bit = 0;
			else
				usage("-B takes 7BIT or 8BITMIME, not %s", v);
			break;
		}
		case 'h':
		case 'L':
		case 'O':
		case 'X':
		case 'A':
			/* Accepted and ignored, as Postfix does. */
			(void)optarg_of(argv, &i, a + 2, a);
			break;
		case 'o':
			if (strcmp(a, "-oi") == 0)
				o->iflag = 1;
			else if (strcmp(a, "-odb") == 0)
				o->dmode = D_BACKGROUND;
			else if (strcmp(a, "-odi") == 0)
				o->dmode = D_INTERACTIVE;
			else if (strcmp(a, "-odq") == 0)
				o->dmode = D_QUEUE;
			else if (a[2] == 'e' && a[3] != '\0' && a[4] == '\0' &&
			    strchr("mpqew", a[3]))
				;	/* error reporting: mail back (default) */
			else if (a[2] == '\0')
				(void)optarg_of(argv, &i, "", a);
			/* Other -oX options are accepted and ignored. */
			break;
		case 'b':
			if (strcmp(a, "-bm") == 0)
				o->mode = M_SUBMIT;
			else if (strcmp(a, "-bp") == 0)
				o->mode = M_QUEUE_LIST;
			else if (strcmp(a, "-bi") == 0)
				o->mode = M_ALIASES;
			else if (strcmp(a, "-bs") == 0)
				o->mode = M_SMTP;
			else
				usage("unsupported mode: %s", a);
			break;
		case 'q':
			o->mode = M_RUN_QUEUE;
			if (a[2] == 'I' || a[2] == 'R' || a[2] == 'S') {
				o->qf.kind = a[2];
				o->qf.str = a + 3;
				if (*o->qf.str == '\0')
					usage("%s needs a string", a);
			} else if (a[2] != '\0') {
				long secs;

				/* -q30m: an interval for a daemon; we run
				 * once, as cron asks. */
				if (parse_duration(a + 2, &secs) < 0)
					usage("unknown option: %s", a);
			}
			break;
		default:
			usage("unknown option: %s", a);
		}
	}
	o->rcpts = argv + i;
	o->nrcpts = argc - i;
}

/* Buffered standard input. */
struct reader {
	int fd;
	char buf[READ_BLOCK];
	size_t off, len;
	int eof;
};

static int
rd_fill(struct reader *r)
{
	ssize_t n;

	if (r->eof)
		return 0;
	for (;;) {
		n = read(r->fd, r->buf, sizeof(r->buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			r->eof = 1;
		r->off = 0;
		r->len = (size_t)n;
		return n > 0;
	}
}

/*
 * rd_line - the next line without its LF or CRLF into line.  Returns 1,
 * 0 at end of input, -1 on a read error, -2 when the line is longer than
 * max: line then holds its first max + 1 octets, and the rest of it, with
 * its line end, is left unread.
 */
static int
rd_line(struct reader *r, struct buf *line, size_t max)
{
	int got = 0;

	buf_reset(line);
	for (;;) {
		char *nl;
		size_t n;

		if (r->off == r->len) {
			int f = rd_fill(r);

			if (f < 0)
				return -1;
			if (f == 0)
				return got;
		}
		got = 1;
		nl = memchr(r->buf + r->off, '\n', r->len - r->off);
		n = nl ? (size_t)(nl - (r->buf + r->off)) : r->len - r->off;
		if (line->len + n > max + 1) {
			n = max + 1 - line->len;
			buf_add(line, r->buf + r->off, n);
			r->off += n;
			return -2;
		}
		buf_add(line, r->buf + r->off, n);
		r->off += n;
		if (nl) {
			r->off++;
			if (line->len > 0 && line->p[line->len - 1] == '\r')
				line->p[--line->len] = '\0';
			if (line->len > max) {
				r->off--;	/* the line end stays unread */
				return -2;
			}
			return 1;
		}
	}
}

/* The body as it streams into the queue file. */
struct body {
	struct qfile *q;
	int iflag;
	int bol, dot, skip_lf, done, first_dot;
	size_t linelen;
	int eight;
	int nul;
};

static int
body_out(struct body *b, const char *p, size_t n, struct result *res)
{
	return queue_write(b->q, p, n, res) < 0 ? -1 : 0;
}

/* body_eol - end the current line */
static int
body_eol(struct body *b, struct result *res)
{
	if (b->dot) {
		b->dot = 0;
		if (!b->iflag) {
			/* A line with a single dot ends the message. */
			b->done = 1;
			return 0;
		}
		if (body_out(b, ".", 1, res) < 0)
			return -1;
	}
	b->bol = 1;
	b->linelen = 0;
	return body_out(b, "\r\n", 2, res);
}

/* body_feed - a block of body input: CRLF or LF (or a lone CR) line
 * ends become CRLF; dot lines and long lines are handled. */
static int
body_feed(struct body *b, const char *p, size_t n, struct result *res)
{
	size_t i, start = 0;

#define FLUSH_RUN() do { if (i > start && \
	body_out(b, p + start, i - start, res) < 0) return -1; } while (0)
	for (i = 0; i < n && !b->done; i++) {
		unsigned char c = (unsigned char)p[i];

		if (b->skip_lf) {
			b->skip_lf = 0;
			if (c == '\n') {
				start = i + 1;
				continue;
			}
		}
		if (c == '\r' || c == '\n') {
			FLUSH_RUN();
			if (body_eol(b, res) < 0)
				return -1;
			b->skip_lf = c == '\r';
			start = i + 1;
			continue;
		}
		if (c == 0) {
			b->nul = 1;
			return -1;
		}
		if (c & 0x80)
			b->eight = 1;
		if (b->bol) {
			b->bol = 0;
			b->first_dot = c == '.';
			if (c == '.' && !b->iflag) {
				b->dot = 1;
				start = i + 1;
				continue;
			}
		}
		if (b->dot) {
			b->dot = 0;
			b->linelen = 1;
			if (body_out(b, ".", 1, res) < 0)
				return -1;
		}
		if (++b->linelen > (size_t)(BODY_LINE_MAX - b->first_dot)) {
			/* Break the line as Postfix does: CRLF SPACE. */
			FLUSH_RUN();
			if (body_out(b, "\r\n ", 3, res) < 0)
				return -1;
			start = i;
			b->linelen = 2;
			b->first_dot = 0;
		}
	}
	FLUSH_RUN();
#undef FLUSH_RUN
	return 0;
}

static int
body_end(struct body *b, struct result *res)
{
	if (b->done)
		return 0;
	if (b->dot && !b->iflag)
		return 0;	/* "." at the very end, no newline */
	if (!b->bol || b->dot)
		return body_eol(b, res);
	return 0;
}

/* header_like - would this over-long line be taken into the header
 * (a field or a continuation), rather than start the body? */
static int
header_like(const struct header *h, const char *line, size_t len)
{
	struct header scratch;
	char err[100];
	int r;

	if (len > 0 && (line[0] == ' ' || line[0] == '\t'))
		return h->n > 0;
	/* msg.c decides what a field looks like; a scratch header keeps
	 * the real one untouched. */
	header_init(&scratch);
	r = header_add_line(&scratch, line, len > LINE_MAX_OCTETS ?
	    LINE_MAX_OCTETS : len, err, sizeof(err));
	header_free(&scratch);
	return r != 1;
}

/* add_rcpt - check, qualify and add one recipient, skipping duplicates */
static int
add_rcpt(struct envelope *e, const char *addr, const struct conf *c,
    const char *what, char *err, size_t errlen)
{
	char q[ADDR_MAX + HOST_MAX + 2], why[200];
	size_t i;

	if (addr_check(addr, 0, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s: %s", what, why);
		return -1;
	}
	if (addr_qualify(addr, c->qualify_domain, q, sizeof(q)) < 0 ||
	    strlen(q) >= ADDR_MAX) {
		snprintf(err, errlen, "%s: address too long", what);
		return -1;
	}
	for (i = 0; i < e->nr; i++)
		if (strcasecmp(e->r[i].addr, q) == 0)
			return 0;
	if (env_add_rcpt(e, q) < 0) {
		snprintf(err, errlen, "too many recipients (limit %d)", RCPT_MAX);
		return -1;
	}
	return 0;
}

/* add_list - every address of an address list (a command line argument
 * may hold several, comma-separated) */
static int
add_list(struct envelope *e, const char *text, const struct conf *c,
    const char *what, char *err, size_t errlen)
{
	struct strlist l;
	char why[200];
	size_t i;
	int rc = 0;

	strlist_init(&l);
	if (addrlist_parse(text, &l, why, sizeof(why)) < 0) {
		char p[200];

		printable(p, sizeof(p), text, strlen(text));
		snprintf(err, errlen, "%s: bad address \"%s\": %s", what, p, why);
		rc = -1;
	}
	for (i = 0; rc == 0 && i < l.n; i++)
		rc = add_rcpt(e, l.v[i], c, what, err, errlen);
	strlist_free(&l);
	return rc;
}

/* strip_angle - "<addr>" to "addr" in place */
static char *
strip_angle(char *s)
{
	size_t n = strlen(s);

	if (n >= 2 && s[0] == '<' && s[n - 1] == '>') {
		s[n - 1] = '\0';
		return s + 1;
	}
	return s;
}

static void add_unique(struct envelope *, const char *, const char *);

/*
 * expand_local - recipients at local_domains through the aliases file,
 * when the message is queued (as dma does): the envelope then holds the
 * final recipients, remote ones delivered like any other, local users
 * as user@domain for local delivery.  An alias that cannot be expanded
 * (a loop, a refused target) leaves its recipient failed with the
 * reason, so the sender gets a bounce.  Returns 0, or -1 (err set) when
 * the aliases file cannot be read: the caller keeps the message.
 */
static int
expand_local(struct envelope *e, const struct conf *c, char *err,
    size_t errlen)
{
	struct envelope out;
	struct aliases *ta = NULL;
	struct strlist errs, t;
	char local[ADDR_MAX], why[ERRTEXT_MAX], q[ADDR_MAX + HOST_MAX + 2];
	const char *dom;
	size_t i, j, k, n;
	int rc = -1;

	for (i = 0; i < e->nr && !conf_local(c, e->r[i].addr); i++)
		;
	if (i == e->nr)
		return 0;
	strlist_init(&errs);
	ta = aliases_load(c->aliases, &errs);
	if (ta == NULL) {
		snprintf(err, errlen, "cannot use the aliases file: %.300s",
		    errs.n ? errs.v[0] : c->aliases);
		strlist_free(&errs);
		return -1;
	}
	env_init(&out);
	for (i = 0; i < e->nr; i++) {
		const char *a = e->r[i].addr;

		if (!conf_local(c, a)) {
			add_unique(&out, a, NULL);
			continue;
		}
		dom = addr_domain(a);
		n = dom ? (size_t)(dom - 1 - a) : strlen(a);
		snprintf(local, sizeof(local), "%.*s", (int)n, a);
		strlist_init(&t);
		if (aliases_expand(ta, local, &t, why, sizeof(why)) < 0)
			add_unique(&out, a, why);
		for (j = 0; j < t.n; j++) {
			if (strchr(t.v[j], '@'))
				add_unique(&out, t.v[j], NULL);
			else if (snprintf(q, sizeof(q), "%s@%s", t.v[j], dom ? dom :
			    c->qualify_domain) < (int)ADDR_MAX)
				add_unique(&out, q, NULL);
		}
		strlist_free(&t);
	}
	/* The expanded list replaces the recipients. */
	for (k = 0; k < e->nr; k++) {
		free(e->r[k].addr);
		free(e->r[k].error);
	}
	free(e->r);
	e->r = out.r;
	e->nr = out.nr;
	e->capr = out.capr;
	out.r = NULL;
	out.nr = out.capr = 0;
	env_free(&out);
	rc = 0;
	aliases_free(ta);
	strlist_free(&errs);
	return rc;
}

/* add_unique - a recipient once; with why, already failed for that reason */
static void
add_unique(struct envelope *e, const char *addr, const char *why)
{
	size_t i;

	for (i = 0; i < e->nr; i++)
		if (strcasecmp(e->r[i].addr, addr) == 0)
			return;
	if (env_add_rcpt(e, addr) < 0)
		return;
	if (why) {
		e->r[e->nr - 1].state = RCPT_FAILED;
		e->r[e->nr - 1].error = xstrdup(why);
	}
}

/* background - -odb: detach a child that delivers; the parent returns */
static int
background(void)
{
	pid_t pid = fork();
	int fd;

	if (pid != 0)
		return pid < 0 ? -1 : 1;
	setsid();
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	verbose = 0;
	return 0;
}

static int
mode_submit(const struct conf *c, struct opts *o)
{
	struct envelope e;
	struct header h;
	struct reader *rd = NULL;
	struct buf line, hb;
	struct qfile q;
	struct body b;
	struct result res;
	struct fixup fx;
	struct passwd *pw;
	char err[512], sender[ADDR_MAX + HOST_MAX + 2], user[64], gecos[128];
	char *from = NULL;
	enum failure f = F_NONE;
	int r, i, have_q = 0, body_started = 0;
	size_t k;

	env_init(&e);
	header_init(&h);
	buf_init(&line, 0);
	buf_init(&hb, 0);
	memset(&b, 0, sizeof(b));
	err[0] = '\0';

	pw = getpwuid(getuid());
	snprintf(user, sizeof(user), "%s", pw && pw->pw_name &&
	    addr_check(pw->pw_name, 0, err, sizeof(err)) == 0 ? pw->pw_name :
	    "nobody");
	gecos[0] = '\0';
	if (pw && pw->pw_gecos)
		snprintf(gecos, sizeof(gecos), "%.*s",
		    (int)strcspn(pw->pw_gecos, ","), pw->pw_gecos);

	/* The envelope sender. */
	if (o->from) {
		char *f0;

		from = xstrdup(o->from);
		f0 = strip_angle(from);
		if (addr_check(f0, 1, err, sizeof(err)) < 0) {
			warnx_("invalid sender: %s", err);
			f = F_DATA;
			goto out;
		}
		if (addr_qualify(f0, c->qualify_domain, sender,
		    sizeof(sender)) < 0 || strlen(sender) >= ADDR_MAX) {
			warnx_("invalid sender: address too long");
			f = F_DATA;
			goto out;
		}
	} else if (addr_qualify(user, c->qualify_domain, sender,
	    sizeof(sender)) < 0) {
		warnx_("cannot make a sender address");
		f = F_DATA;
		goto out;
	}
	e.sender = xstrdup(sender);

	for (i = 0; i < o->nrcpts; i++)
		if (add_list(&e, o->rcpts[i], c, "invalid recipient", err,
		    sizeof(err)) < 0) {
			warnx_("%s", err);
			f = F_DATA;
			goto out;
		}

	if ((r = queue_open(c, &res)) < 0 || (r = queue_create(c, &q, &res)) < 0) {
		warnx_("cannot create queue file: %s", res.text);
		f = queue_failure(-r);
		goto out;
	}
	have_q = 1;
	memset(&b, 0, sizeof(b));
	b.q = &q;
	b.iflag = o->iflag;
	b.bol = 1;

	/* The header block. */
	rd = xmalloc(sizeof(*rd));
	memset(rd, 0, sizeof(*rd));
	rd->fd = 0;
	for (k = 0;; k++) {
		r = rd_line(rd, &line, LINE_MAX_OCTETS);
		if (r == -1) {
			warnx_("cannot read the message: %s", strerror(errno));
			f = F_IOERR;
			goto out;
		}
		if (r == -2) {
			if (header_like(&h, line.p, line.len)) {
				warnx_("header line too long (over %d octets)",
				    LINE_MAX_OCTETS);
				f = F_DATA;
				goto out;
			}
			/* A long first body line (input without a header):
			 * its rest is still unread. */
			body_started = 2;
			break;
		}
		if (r == 0)
			break;
		if (memchr(line.p, '\0', line.len)) {
			warnx_("message contains a NUL byte");
			f = F_DATA;
			goto out;
		}
		if (!o->iflag && line.len == 1 && line.p[0] == '.')
			break;
		/* A leading mbox "From " line is not part of the message. */
		if (k == 0 && line.len >= 5 && memcmp(line.p, "From ", 5) == 0)
			continue;
		r = header_add_line(&h, line.p, line.len, err, sizeof(err));
		if (r < 0) {
			warnx_("%s", err);
			f = F_DATA;
			goto out;
		}
		if (r == 1) {
			body_started = line.len > 0;
			break;
		}
	}

	if (o->tflag) {
		struct strlist l;

		strlist_init(&l);
		if (msg_rcpts(&h, &l, err, sizeof(err)) < 0) {
			strlist_free(&l);
			warnx_("%s", err);
			f = F_DATA;
			goto out;
		}
		for (r = 0, k = 0; r == 0 && k < l.n; k++)
			r = add_rcpt(&e, l.v[k], c, "invalid recipient in header",
			    err, sizeof(err));
		strlist_free(&l);
		if (r < 0) {
			warnx_("%s", err);
			f = F_DATA;
			goto out;
		}
	}
	if (e.nr == 0) {
		warnx_("no recipients");
		f = F_DATA;
		goto out;
	}
	if ((r = expand_local(&e, c, err, sizeof(err))) < 0) {
		warnx_("%s", err);
		f = F_TEMP;
		goto out;
	}

	memset(&fx, 0, sizeof(fx));
	fx.sender = e.sender;
	fx.fullname = o->fullname ? o->fullname : gecos[0] ? gecos : NULL;
	fx.user = user;
	fx.qualify_domain = c->qualify_domain;
	fx.hostname = c->hostname;
	fx.msgid = q.id;
	fx.now = time(NULL);
	if (msg_fixup(&h, &fx, err, sizeof(err)) < 0) {
		warnx_("%s", err);
		f = F_DATA;
		goto out;
	}
	if (header_write(&h, &hb) < 0 || buf_add(&hb, "\r\n", 2) < 0 ||
	    queue_write(&q, hb.p, hb.len, &res) < 0) {
		warnx_("cannot write queue file: %s", res.text);
		f = F_TEMP;
		goto out;
	}

	/* The body, streamed. */
	if (body_started && (body_feed(&b, line.p, line.len, &res) < 0 ||
	    (body_started == 1 && body_feed(&b, "\n", 1, &res) < 0)))
		goto bodyerr;
	if (rd->off < rd->len && !b.done &&
	    body_feed(&b, rd->buf + rd->off, rd->len - rd->off, &res) < 0)
		goto bodyerr;
	while (!b.done && (r = rd_fill(rd)) > 0)
		if (body_feed(&b, rd->buf, rd->len, &res) < 0)
			goto bodyerr;
	if (!b.done && r < 0) {
		warnx_("cannot read the message: %s", strerror(errno));
		f = F_IOERR;
		goto out;
	}
	if (body_end(&b, &res) < 0)
		goto bodyerr;
	if (c->max_message_size > 0 && q.size > c->max_message_size) {
		warnx_("message is larger than max_message_size (%lld octets)",
		    c->max_message_size);
		f = F_DATA;
		goto out;
	}

	e.arrival = time(NULL);
	e.body8 = b.eight ? 1 : 0;
	if (o->dsn_notify)
		e.dsn_notify = xstrdup(o->dsn_notify);
	if (o->dsn_ret)
		e.dsn_ret = xstrdup(o->dsn_ret);
	if (o->dsn_envid)
		e.dsn_envid = xstrdup(o->dsn_envid);
	if ((r = queue_commit(c, &q, &e, &res)) < 0) {
		warnx_("cannot queue the message: %s", res.text);
		f = queue_failure(-r);
		goto out;
	}
	have_q = 0;
	logmsg(LOG_INFO, "%s: from=<%s>, size=%lld, nrcpt=%zu, uid=%ld", e.id,
	    e.sender, (long long)e.size, e.nr, (long)getuid());
	vlog("queued as %s", e.id);
	/* The message is safe; from here on only delivery can fail. */
	close(q.fd);
	if (o->dmode != D_QUEUE) {
		struct dstats st = { 0, 0, 0, 0 };

		if (o->dmode == D_BACKGROUND && background() != 0)
			goto out;	/* the parent, or fork failed */
		deliver_message(c, e.id, &st);
		if (o->dmode == D_BACKGROUND)
			_exit(0);
		/* Recipients whose alias failed at submission count too. */
		for (k = 0; k < e.nr; k++)
			if (e.r[k].state == RCPT_FAILED)
				st.failed++;
		if (st.failed > 0 && st.done == 0 && st.deferred == 0)
			f = F_UNAVAILABLE;
	}
	goto out;
bodyerr:
	if (b.nul) {
		warnx_("message contains a NUL byte");
		f = F_DATA;
	} else {
		warnx_("cannot write queue file: %s", res.text);
		f = F_TEMP;
	}
out:
	if (have_q)
		queue_abort(&q);
	free(rd);
	free(from);
	buf_free(&line);
	buf_free(&hb);
	header_free(&h);
	env_free(&e);
	return exit_code(f);
}

static double
seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
mode_queue(const struct conf *c, const struct opts *o)
{
	struct dstats st = { 0, 0, 0, 0 };
	struct result res;
	double t0 = seconds();
	int r;

	if ((r = queue_open(c, &res)) < 0) {
		warnx_("%s", res.text);
		return exit_code(queue_failure(-r));
	}
	r = deliver_queue(c, &o->qf, &st, &res);
	if (r < 0) {
		warnx_("%s", res.text);
		return exit_code(F_TEMP);
	}
	if (r == 1) {
		vlog("%s: another queue run is active; nothing to do", progname);
		return 0;
	}
	vlog("%s: queue run: %d tried, %d delivered, %d deferred, %d failed, "
	    "%.2fs", progname, st.messages, st.done, st.deferred, st.failed,
	    seconds() - t0);
	return 0;
}

/* mode_aliases - -bi, newaliases: aliases are read when mail is
 * delivered, so nothing is rebuilt; the file is checked and every error
 * reported with its file and line */
static int
mode_aliases(const struct conf *c)
{
	struct strlist errs;
	struct aliases *ta;
	struct buf dump;
	size_t i, n = 0;
	int rc = 0;

	strlist_init(&errs);
	buf_init(&dump, 0);
	ta = aliases_load(c->aliases, &errs);
	for (i = 0; i < errs.n; i++)
		warnx_("%s", errs.v[i]);
	if (ta == NULL || errs.n > 0)
		rc = exit_code(F_DATA);
	else if (aliases_dump(ta, &dump) == 0) {
		for (i = 0; i < dump.len; i++)
			n += dump.p[i] == '\n';
		vlog("%s: %zu alias%s, no errors", c->aliases, n,
		    n == 1 ? "" : "es");
	}
	aliases_free(ta);
	buf_free(&dump);
	strlist_free(&errs);
	return rc;
}

/* hygiene - a sane process state before anything else */
static void
hygiene(void)
{
	int fd;

	umask(077);
	/* fds 0-2 must be open, or a file we open could become stdout. */
	do {
		fd = open("/dev/null", O_RDWR);
	} while (fd >= 0 && fd <= 2);
	if (fd > 2)
		close(fd);
	signal(SIGPIPE, SIG_IGN);
}

int
main(int argc, char **argv)
{
	struct opts o;
	struct conf c;
	struct result res;
	char err[512];
	const char *base, *cfg;
	int rc;

	hygiene();
	base = strrchr(argv[0], '/');
	base = base ? base + 1 : argv[0];
	memset(&o, 0, sizeof(o));
	o.body8bit = -1;
	o.warn = 3600;
	o.crit = 86400;
	if (strcmp(base, "mailq") == 0)
		o.mode = M_QUEUE_LIST;
	else if (strcmp(base, "newaliases") == 0)
		o.mode = M_ALIASES;
	parse_args(argc, argv, &o);

	cfg = o.config ? o.config : getenv("MXSEND_CONFIG");
	if (cfg && getegid() != getgid() && setgid(getgid()) < 0) {
		warnx_("cannot drop privileges: %s", strerror(errno));
		return exit_code(F_SOFTWARE);
	}
	if (conf_load(&c, cfg ? cfg : "/etc/mxsend.conf", cfg != NULL, err,
	    sizeof(err)) < 0) {
		warnx_("%s", err);
		return exit_code(F_CONFIG);
	}
	log_open();
	switch (o.mode) {
	case M_SUBMIT:
		rc = mode_submit(&c, &o);
		break;
	case M_QUEUE_LIST:
	case M_QUEUE_JSON:
		rc = (o.mode == M_QUEUE_LIST ? mailq_print : mailq_json)(&c,
		    stdout, &res) < 0 ? exit_code(F_TEMP) : 0;
		if (rc)
			warnx_("%s", res.text);
		break;
	case M_DOCTOR:
		if (o.nrcpts > 1)
			usage("--doctor takes one domain, not %s", o.rcpts[1]);
		rc = doctor(&c, o.nrcpts ? o.rcpts[0] : NULL, stdout);
		break;
	case M_CHECK_QUEUE:
		if (o.crit < o.warn) {
			warnx_("--crit must not be shorter than --warn");
			rc = exit_code(F_USAGE);
			break;
		}
		rc = mailq_check(&c, o.warn, o.crit, stdout);
		break;
	case M_RUN_QUEUE:
		rc = mode_queue(&c, &o);
		break;
	case M_ALIASES:
		rc = mode_aliases(&c);
		break;
	default:
		warnx_("-bs is not supported yet");
		rc = exit_code(F_USAGE);
	}
	conf_free(&c);
	return rc;
}
