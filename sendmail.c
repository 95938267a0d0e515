/*
 * sendmail.c - main(), the sendmail command line, and the one table from
 * outcomes to exit codes (sysexits.h).
 *
 * Modes: -bm (submit: read a message on stdin, queue it durably through
 * submit.c, deliver it per -odb/-odi/-odq), -bs (an SMTP session on
 * stdin/stdout, server.c, then delivery of what it queued), -bp (list
 * the queue; also as "mailq"), -q (one queue run), -bi (as
 * "newaliases"), and the long options of mailq.c, metrics.c and doctor.c.
 *
 * Security: umask 077, fds 0-2 kept open, never setuid.  Installed
 * setgid (the multi-user model, queue.c), the group is dropped before a
 * config file of the user's choosing (-C, MXSEND_CONFIG) is read and for
 * newaliases, and otherwise the environment is cleared.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
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


enum mode {
	M_SUBMIT, M_QUEUE_LIST, M_RUN_QUEUE, M_ALIASES, M_SMTP, M_QUEUE_JSON,
	M_CHECK_QUEUE, M_DOCTOR, M_METRICS
};
enum dmode { D_BACKGROUND, D_INTERACTIVE, D_QUEUE };

struct opts {
	enum mode mode;
	enum dmode dmode;
	int tflag, iflag;
	const char *from;	/* -f/-r */
	const char *fullname;	/* -F */
	const char *config;	/* -C */
	const char *dsn_notify, *dsn_ret, *dsn_envid;
	struct qfilter qf;
	long warn, crit;	/* --check-queue ages */
	char **rcpts;
	int nrcpts;
};

/* Why a run failed, for the exit table. */
enum failure {
	F_NONE, F_USAGE, F_DATA, F_CANTCREAT, F_IOERR, F_TEMP, F_CONFIG,
	F_UNAVAILABLE, F_SOFTWARE, F_NOPERM,
	F_QUOTA,	/* user_queue_messages, user_queue_size */
	F_RESERVE,	/* queue_min_free */
	F_STUCK,	/* --doctor: mail cannot flow */
	F_CHECK_WARNING, F_CHECK_CRITICAL, F_CHECK_UNKNOWN	/* --check-queue */
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
	{ F_NOPERM, EX_NOPERM },
	/* The user's share of the queue is used up: this user cannot
	 * create a queue file until their queued mail leaves.  Not 75, so
	 * a script can tell its own backlog from a busy machine. */
	{ F_QUOTA, EX_CANTCREAT },
	/* The disk is nearly full: anyone may try again later. */
	{ F_RESERVE, EX_TEMPFAIL },
	{ F_STUCK, 1 },
	/* --check-queue speaks the monitoring plugins' codes. */
	{ F_CHECK_WARNING, 1 },
	{ F_CHECK_CRITICAL, 2 },
	{ F_CHECK_UNKNOWN, 3 },
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

/* The modes of -b and of the long options, the modes that the program's
 * name (mailq, newaliases) stands for, and the delivery modes of -od. */
static const struct named {
	const char *name;
	int val;
} modes[] = {
	{ "-bm", M_SUBMIT }, { "-bp", M_QUEUE_LIST }, { "-bi", M_ALIASES },
	{ "-bs", M_SMTP }, { "--queue-json", M_QUEUE_JSON },
	{ "--check-queue", M_CHECK_QUEUE }, { "--doctor", M_DOCTOR },
	{ "--metrics", M_METRICS },
}, prognames[] = {
	{ "mailq", M_QUEUE_LIST }, { "newaliases", M_ALIASES },
}, dmodes[] = {
	{ "-odb", D_BACKGROUND }, { "-odi", D_INTERACTIVE }, { "-odq", D_QUEUE },
};
#define NAMED(t, name) named(t, sizeof(t) / sizeof(t[0]), name)

/* named - the value of name in t, or -1 */
static int
named(const struct named *t, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(t[i].name, name) == 0)
			return t[i].val;
	return -1;
}

/* The values of -R and -B, in their canonical case. */
static const char *const dsn_rets[] = { "FULL", "HDRS", NULL };
static const char *const body_types[] = { "7BIT", "8BITMIME", NULL };

/* word_of - the word of words that v is in any case, or NULL */
static const char *
word_of(const char *v, const char *const *words)
{
	for (; *words != NULL; words++)
		if (strcasecmp(v, *words) == 0)
			return *words;
	return NULL;
}

/* The summary --help prints: every mode and option of sendmail.8, one
 * line each. */
static const char help_text[] =
"usage: sendmail [options] [--] [recipient ...]   submit a message on stdin\n"
"       sendmail -q[I|R|S string] | -bs | -bp | -bi | --doctor [domain] ...\n"
"Modes:\n"
"  -bm                   read a message on stdin and queue it (the default)\n"
"  -bs                   speak SMTP on stdin and stdout\n"
"  -bp, mailq            list the queue\n"
"  -bi, newaliases       check the aliases file\n"
"  -q                    run the queue once (-q30m: the interval is ignored)\n"
"  -qI, -qR, -qS string  run now messages whose ID, recipient, sender has it\n"
"  --queue-json          list the queue as JSON, one message per line\n"
"  --metrics             the queue's state for Prometheus (text format)\n"
"  --check-queue [--warn age] [--crit age]  a monitoring plugin's status\n"
"  --doctor [domain]     check that mail can flow from here\n"
"  --help                print this summary\n"
"  --version             print the version\n"
"Options:\n"
"  -t                    recipients also from To:, Cc:, Bcc: (or Resent-*)\n"
"  -i, -oi               a line with a single dot does not end the message\n"
"  -f, -r sender         the envelope sender (<> for the null sender)\n"
"  -F fullname           the full name of a generated From:\n"
"  -C file               the configuration file (default /etc/mxsend.conf)\n"
"  -odb                  deliver in a detached child (the default)\n"
"  -odi                  deliver before exiting\n"
"  -odq                  only queue\n"
"  -v                    print the SMTP dialogue on stderr\n"
"  -B type               7BIT or 8BITMIME: accepted and ignored\n"
"  -N dsn                DSN notify: never, or success,failure,delay\n"
"  -R ret                DSN return: full or hdrs\n"
"  -V envid              DSN envelope ID\n"
"  -h n, -L tag, -O opt=val, -oX, -oeX, -G, -U, -n, -m   accepted, ignored\n"
"See sendmail(8) and mxsend.conf(5).\n";

/* info_option - --help, --version: print on stdout and exit 0 */
static void
info_option(const char *a)
{
	if (strcmp(a, "--help") == 0)
		fputs(help_text, stdout);
	else
		printf("mxsend %s\n", MXSEND_VERSION);
	exit(fflush(stdout) == 0 && !ferror(stdout) ? exit_code(F_NONE) :
	    exit_code(F_IOERR));
}

/* long_option - the options beyond sendmail's (they cannot clash) */
static void
long_option(char **argv, int *i, struct opts *o)
{
	const char *a = argv[*i];
	int m = NAMED(modes, a);

	if (m >= 0)
		o->mode = m;
	else if (strcmp(a, "--help") == 0 || strcmp(a, "--version") == 0)
		info_option(a);
	else if (strcmp(a, "--warn") == 0 || strcmp(a, "--crit") == 0) {
		const char *v = optarg_of(argv, i, "", a);

		if (parse_duration(v, a[2] == 'w' ? &o->warn : &o->crit) < 0)
			usage("%s takes a duration such as 30m or 4h", a);
	} else
		usage("unknown option: %s", a);
}

/* Letters alone (-t), and letters with a value (-f addr or -faddr). */
#define FLAG_LETTERS "tivGUnm"
#define VALUE_LETTERS "frFCNRVBhLOXA"

/* flag_option - -t, -i, -v; -G, -U, -n and -m are accepted and ignored */
static void
flag_option(const char *a, struct opts *o)
{
	if (a[2] != '\0')
		usage("unknown option: %s", a);
	if (a[1] == 't')
		o->tflag = 1;
	else if (a[1] == 'i')
		o->iflag = 1;
	else if (a[1] == 'v')
		verbose++;
}

/* dsn_envid - -V: RFC 3461 4.4, printable US-ASCII, 100 characters */
static const char *
dsn_envid(const char *v)
{
	if (strlen(v) > 100 || v[strspn(v, "!\"#$%&'()*+,-./0123456789:;<=>?@"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrst"
	    "uvwxyz{|}~")] != '\0')
		usage("-V takes up to 100 printable characters: %s",
		    "bad envelope ID");
	return v;
}

/* value_option - a letter of VALUE_LETTERS and its value */
static void
value_option(char **argv, int *i, struct opts *o)
{
	const char *a = argv[*i], *v = optarg_of(argv, i, a + 2, a);

	switch (a[1]) {
	case 'f':
	case 'r':
		o->from = v;
		break;
	case 'F':
		o->fullname = v;
		break;
	case 'C':
		o->config = v;
		break;
	case 'N':
		o->dsn_notify = dsn_notify(v);
		break;
	case 'R':
		if ((o->dsn_ret = word_of(v, dsn_rets)) == NULL)
			usage("-R takes full or hdrs, not %s", v);
		break;
	case 'V':
		o->dsn_envid = dsn_envid(v);
		break;
	case 'B':
		/* The body type, accepted and ignored: submission looks at
		 * the body itself (submit.c), and delivery declares 8-bit
		 * data or converts it, per server (smtp.c, mime.c). */
		if (word_of(v, body_types) == NULL)
			usage("-B takes 7BIT or 8BITMIME, not %s", v);
		break;
	default:
		/* -h, -L, -O, -X, -A: accepted and ignored, as Postfix does. */
		break;
	}
}

/* o_option - -oi, -odb, -odi, -odq; "-o X" and any other -oX (-oem,
 * mail back errors, the only way there is) are accepted and ignored */
static void
o_option(char **argv, int *i, struct opts *o)
{
	const char *a = argv[*i];
	int dm = NAMED(dmodes, a);

	if (strcmp(a, "-oi") == 0)
		o->iflag = 1;
	else if (dm >= 0)
		o->dmode = dm;
	else if (a[2] == '\0')
		(void)optarg_of(argv, i, "", a);
}

/* b_mode - -bm, -bp, -bi, -bs */
static void
b_mode(const char *a, struct opts *o)
{
	int m = NAMED(modes, a);

	if (m < 0)
		usage("unsupported mode: %s", a);
	o->mode = m;
}

/* q_option - -q, -q with an interval, -qI, -qR, -qS with a string */
static void
q_option(const char *a, struct opts *o)
{
	long secs;

	o->mode = M_RUN_QUEUE;
	if (a[2] == 'I' || a[2] == 'R' || a[2] == 'S') {
		o->qf.kind = a[2];
		o->qf.str = a + 3;
		if (*o->qf.str == '\0')
			usage("%s needs a string", a);
	} else if (a[2] != '\0' && parse_duration(a + 2, &secs) < 0)
		/* -q30m: an interval for a daemon; we run once, as cron
		 * asks. */
		usage("unknown option: %s", a);
}

/* parse_args - the options, up to "--" or the first operand; the
 * operands are the recipients */
static void
parse_args(int argc, char **argv, struct opts *o)
{
	int i;

	for (i = 1; argv[i] != NULL && argv[i][0] == '-'; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[1] == '-')
			long_option(argv, &i, o);
		else if (a[1] != '\0' && strchr(FLAG_LETTERS, a[1]))
			flag_option(a, o);
		else if (a[1] != '\0' && strchr(VALUE_LETTERS, a[1]))
			value_option(argv, &i, o);
		else if (a[1] == 'o')
			o_option(argv, &i, o);
		else if (a[1] == 'b')
			b_mode(a, o);
		else if (a[1] == 'q')
			q_option(a, o);
		else
			usage("unknown option: %s", a);
	}
	o->rcpts = argv + i;
	o->nrcpts = argc - i;
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

/* whoami - the invoking user's login name (for a generated From: and
 * the default sender) and the GECOS full name */
static void
whoami(char *user, size_t userlen, char *gecos, size_t gecoslen)
{
	struct passwd *pw = getpwuid(getuid());
	char err[200];

	snprintf(user, userlen, "%s", pw && pw->pw_name &&
	    addr_check(pw->pw_name, 0, err, sizeof(err)) == 0 ? pw->pw_name :
	    "nobody");
	gecos[0] = '\0';
	if (pw && pw->pw_gecos)
		snprintf(gecos, gecoslen, "%.*s",
		    (int)strcspn(pw->pw_gecos, ","), pw->pw_gecos);
}

/* deliver_queued - after queueing: deliver per -odb (in a detached
 * child; the parent returns at once), -odi (here) or -odq (not at all) */
static void
deliver_queued(const struct conf *c, enum dmode dm, const struct strlist *ids,
    struct dstats *st)
{
	size_t i;

	if (dm == D_QUEUE || ids->n == 0)
		return;
	if (dm == D_BACKGROUND && background() != 0)
		return;		/* the parent, or fork failed */
	for (i = 0; i < ids->n; i++)
		deliver_message(c, ids->v[i], st);
	if (dm == D_BACKGROUND)
		_exit(0);
}

/* check_failure - --check-queue's finding, for the exit table */
static enum failure
check_failure(enum check st)
{
	switch (st) {
	case CHECK_OK:
		return F_NONE;
	case CHECK_WARNING:
		return F_CHECK_WARNING;
	case CHECK_CRITICAL:
		return F_CHECK_CRITICAL;
	case CHECK_UNKNOWN:
		break;
	}
	return F_CHECK_UNKNOWN;
}

/* result_failure - a failed result (queue_open's, a run's) by outcome
 * class and reason, for the exit table; err is the errno it came with */
static enum failure
result_failure(const struct result *r, int err)
{
	switch (r->why) {
	case R_CONFIG:
		return F_CONFIG;
	case R_QUEUE:
		return queue_failure(err);
	case R_NOMEM:
	case R_SYSTEM:
		return F_TEMP;
	default:
		return r->o == OUT_PERM ? F_UNAVAILABLE : F_TEMP;
	}
}

/* submit_failure - why a submission failed, for the exit table */
static enum failure
submit_failure(const struct subres *sr)
{
	switch (sr->st) {
	case SUB_OK:
		return F_NONE;
	case SUB_DATA:
	case SUB_TOOBIG:
		return F_DATA;
	case SUB_QUEUE:
		return queue_failure(sr->err);
	case SUB_IOERR:
	case SUB_TIMEOUT:
	case SUB_EOF:
		return F_IOERR;
	case SUB_QUOTA:
		return F_QUOTA;
	case SUB_RESERVE:
		return F_RESERVE;
	case SUB_TEMP:
		break;
	}
	return F_TEMP;
}

static int
mode_submit(const struct conf *c, struct opts *o)
{
	struct envelope e;
	struct reader *rd = NULL;
	struct subopts so;
	struct subres sr;
	struct strlist ids;
	struct dstats st = { 0 };
	char err[512], user[64], gecos[128];
	enum failure f = F_NONE;
	size_t k;
	int i;

	env_init(&e);
	strlist_init(&ids);
	whoami(user, sizeof(user), gecos, sizeof(gecos));
	if (submit_sender(c, o->from ? o->from : user, &e, err,
	    sizeof(err)) < 0) {
		warnx_("invalid sender: %s", err);
		f = F_DATA;
		goto out;
	}
	for (i = 0; i < o->nrcpts; i++)
		if (submit_rcpt_list(c, &e, o->rcpts[i], "invalid recipient",
		    err, sizeof(err)) < 0) {
			warnx_("%s", err);
			f = F_DATA;
			goto out;
		}
	if (o->dsn_notify)
		e.dsn_notify = xstrdup(o->dsn_notify);
	if (o->dsn_ret)
		e.dsn_ret = xstrdup(o->dsn_ret);
	if (o->dsn_envid)
		e.dsn_envid = xstrdup(o->dsn_envid);

	memset(&so, 0, sizeof(so));
	so.user = user;
	so.fullname = o->fullname ? o->fullname : gecos[0] ? gecos : NULL;
	so.tflag = o->tflag;
	so.iflag = o->iflag;
	rd = xmalloc(sizeof(*rd));
	rd_init(rd, 0, 0);
	if (submit_message(c, rd, &e, &so, &sr) != SUB_OK) {
		warnx_("%s", sr.text);
		f = submit_failure(&sr);
		goto out;
	}
	/* The message is safe; from here on only delivery can fail. */
	strlist_add(&ids, e.id);
	deliver_queued(c, o->dmode, &ids, &st);
	if (o->dmode == D_INTERACTIVE) {
		/* Recipients whose alias failed at submission count too. */
		for (k = 0; k < e.nr; k++)
			if (e.r[k].state == RCPT_FAILED)
				st.failed++;
		if (st.failed > 0 && st.done == 0 && st.deferred == 0)
			f = F_UNAVAILABLE;
	}
out:
	free(rd);
	strlist_free(&ids);
	env_free(&e);
	return exit_code(f);
}

/* What -bs does with each message it queued. */
struct bs_queued {
	const struct conf *c;
	enum dmode dm;
	struct strlist ids;	/* -odi: delivered after the session */
};

/* bs_queued - -odb: deliver now, in a detached child, so mail from a
 * client that keeps its session open (a long-running PHP worker) does
 * not wait for the session's end; -odi: keep the ID for later */
static void
bs_queued(const char *id, void *arg)
{
	struct bs_queued *b = arg;
	struct strlist one;
	struct dstats st = { 0 };

	/* Reap the children of earlier messages that have finished. */
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	if (b->dm != D_BACKGROUND) {
		strlist_add(&b->ids, id);
		return;
	}
	strlist_init(&one);
	strlist_add(&one, id);
	deliver_queued(b->c, D_BACKGROUND, &one, &st);
	strlist_free(&one);
}

/* mode_smtp - -bs: one SMTP session on stdin/stdout; delivery as
 * bs_queued says */
static int
mode_smtp(const struct conf *c, const struct opts *o)
{
	struct subopts so;
	struct bs_queued bq;
	struct dstats st = { 0 };
	char user[64], gecos[128];
	int fd;

	bq.c = c;
	bq.dm = o->dmode;
	strlist_init(&bq.ids);
	whoami(user, sizeof(user), gecos, sizeof(gecos));
	memset(&so, 0, sizeof(so));
	so.user = user;
	/* The sender is the client's to say; the invoking user's GECOS
	 * name would be a guess. */
	so.fullname = o->fullname;
	so.smtp = 1;
	(void)smtp_server(c, &so, 0, 1, bs_queued, &bq);
	/* The replies are out; nothing more goes to the client, and a
	 * client waiting for the end of output is not kept waiting. */
	fd = open("/dev/null", O_WRONLY);
	if (fd >= 0) {
		dup2(fd, 1);
		if (fd != 1)
			close(fd);
	}
	deliver_queued(c, o->dmode, &bq.ids, &st);
	strlist_free(&bq.ids);
	return exit_code(F_NONE);
}

/*
 * may_run_queue - in the setgid install only root and members of the
 * group run the queue: a run holds the queue lock, and a user can stop
 * a process of their own, which would stall every later run (cron's
 * too).  Delivery of one's own message (-odb, -odi) takes no queue lock.
 */
static int
may_run_queue(void)
{
	gid_t g[NGROUPS_MAX];
	int i, n;

	if (getuid() == 0 || getegid() == getgid())
		return 1;
	n = getgroups(NGROUPS_MAX, g);
	for (i = 0; i < n; i++)
		if (g[i] == getegid())
			return 1;
	return 0;
}

static int
mode_queue(const struct conf *c, const struct opts *o)
{
	struct dstats st = { 0 };
	struct result res;
	struct rtext t;
	long long t0 = now_ms();
	int r;

	if (!may_run_queue()) {
		struct group *gr = getgrgid(getegid());

		warnx_("only root and group %s may run the queue",
		    gr ? gr->gr_name : "of the queue");
		return exit_code(F_NOPERM);
	}

	if ((r = queue_open(c, &res)) < 0) {
		warnx_("%s", result_str(&res, &t));
		return exit_code(result_failure(&res, -r));
	}
	r = deliver_queue(c, &o->qf, &st, &res);
	if (r < 0) {
		warnx_("%s", result_str(&res, &t));
		return exit_code(result_failure(&res, 0));
	}
	vlog("%s: queue run: %d tried, %d delivered, %d deferred, %d failed, "
	    "%d left for the next run, %.2fs", progname, st.messages, st.done,
	    st.deferred, st.failed, st.left, (double)(now_ms() - t0) / 1000);
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
	/* An ignored SIGCHLD (swaks sets it before exec) would make the
	 * kernel reap our workers, and their exit status would be lost. */
	signal(SIGCHLD, SIG_DFL);
}

/* clean_environment - only TZ survives, and only as a zone name under
 * the system's zoneinfo ("Europe/Berlin"): a path would have the
 * privileged process read a file of the user's choosing */
static void
clean_environment(void)
{
	const char *tz = getenv("TZ");
	char keep[64];

	keep[0] = '\0';
	if (tz && tz[*tz == ':'] != '/' && strstr(tz, "..") == NULL &&
	    strlen(tz) < sizeof(keep))
		snprintf(keep, sizeof(keep), "%s", tz);
	clearenv();
	if (keep[0])
		setenv("TZ", keep, 1);
}

/* opts_init - the defaults, and the mode the program's name says */
static void
opts_init(struct opts *o, const char *argv0)
{
	const char *base = strrchr(argv0, '/');
	int m = NAMED(prognames, base ? base + 1 : argv0);

	memset(o, 0, sizeof(*o));
	o->mode = m >= 0 ? m : M_SUBMIT;
	o->warn = 3600;
	o->crit = 86400;
}

/*
 * drop_group - setgid (the multi-user install, see sendmail.8): a config
 * of the user's choosing (cfg) gets no privilege, nor does newaliases,
 * which only reads the aliases file.  0, or -1 said on stderr.
 */
static int
drop_group(const char *cfg, enum mode mode)
{
	gid_t g = getgid(), rg, eg, sg;

	if ((cfg == NULL && mode != M_ALIASES) || getegid() == g)
		return 0;
	/* All three ids, or a saved one would bring it back. */
	if (setresgid(g, g, g) < 0 || getresgid(&rg, &eg, &sg) < 0 ||
	    rg != g || eg != g || sg != g) {
		warnx_("cannot drop privileges: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* mode_list - -bp (mailq), --queue-json or --metrics */
static int
mode_list(const struct conf *c, const struct opts *o)
{
	struct result res;
	struct rtext t;

	if ((o->mode == M_QUEUE_LIST ? mailq_print : o->mode == M_QUEUE_JSON ?
	    mailq_json : metrics_print)(c, stdout, &res) >= 0)
		return 0;
	warnx_("%s", result_str(&res, &t));
	return exit_code(F_TEMP);
}

/* mode_check - --check-queue [--warn AGE] [--crit AGE] */
static int
mode_check(const struct conf *c, const struct opts *o)
{
	if (o->crit < o->warn) {
		warnx_("--crit must not be shorter than --warn");
		return exit_code(F_USAGE);
	}
	return exit_code(check_failure(mailq_check(c, o->warn, o->crit,
	    stdout)));
}

/* run_mode - the mode's work; its exit code */
static int
run_mode(const struct conf *c, struct opts *o)
{
	switch (o->mode) {
	case M_SUBMIT:
		return mode_submit(c, o);
	case M_QUEUE_LIST:
	case M_QUEUE_JSON:
	case M_METRICS:
		return mode_list(c, o);
	case M_DOCTOR:
		if (o->nrcpts > 1)
			usage("--doctor takes one domain, not %s", o->rcpts[1]);
		return exit_code(doctor(c, o->nrcpts ? o->rcpts[0] : NULL,
		    stdout) == DOCTOR_FLOWS ? F_NONE : F_STUCK);
	case M_CHECK_QUEUE:
		return mode_check(c, o);
	case M_RUN_QUEUE:
		return mode_queue(c, o);
	case M_ALIASES:
		return mode_aliases(c);
	case M_SMTP:
		return mode_smtp(c, o);
	}
	return exit_code(F_SOFTWARE);
}

int
main(int argc, char **argv)
{
	struct opts o;
	struct conf c;
	char err[512];
	const char *cfg;
	int rc;

	hygiene();
	opts_init(&o, argv[0]);
	parse_args(argc, argv, &o);
	cfg = o.config ? o.config : getenv("MXSEND_CONFIG");
	if (drop_group(cfg, o.mode) < 0)
		return exit_code(F_SOFTWARE);
	/* Whoever keeps the group runs with an environment the user
	 * cannot have shaped. */
	if (getegid() != getgid())
		clean_environment();
	if (conf_load(&c, cfg ? cfg : "/etc/mxsend.conf", cfg != NULL, err,
	    sizeof(err)) < 0) {
		warnx_("%s", err);
		return exit_code(F_CONFIG);
	}
	log_open();
	rc = run_mode(&c, &o);
	conf_free(&c);
	return rc;
}
