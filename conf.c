/*
 * conf.c - the configuration file and its defaults.
 *
 * Format: one "key value" per line; '#' starts a comment line; blank lines
 * are ignored; the value runs to the end of the line (trailing white space
 * removed).  Every key has a default, so no file is needed.  Unknown keys,
 * bad values and repeated keys are errors that name the file and the line.
 * Each key is a row of keys[]: its field in struct conf, the setter for
 * its kind of value, and the reason a bad value is refused.
 * local_delivery is parsed here into a kind and a path (struct conf).
 *
 * Security: the file is read with the caller's privileges; nothing in it is
 * executed.  Values are checked for control characters before use.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mxsend.h"

/* A config file larger than this is not a config file. */
#define CONF_FILE_MAX (256 * 1024)
/* Postfix's message_size_limit: mail bigger than this is rarely mail. */
#define MAX_MESSAGE_SIZE_DEFAULT 10240000LL
/* Messages one user (not root) may have queued: far more than a cron job
 * or a web application queues while its mail flows, far less than the
 * tens of thousands that would slow every queue run. */
#define USER_QUEUE_MESSAGES_DEFAULT 1000
/* Share of the queue's file system one user (not root) may fill: four
 * users together, each at their limit, still leave room. */
#define USER_QUEUE_SIZE_PCT_DEFAULT 25
/* A file path key's longest value, as text: its array (1024) less room
 * for the ".tmp" of the file written before the rename, and the NUL. */
#define FILE_PATH_MAX "1019"
/* queue_min_free when max_message_size is 0 (none): twice the default. */
#define QUEUE_MIN_FREE_NOLIMIT (2 * MAX_MESSAGE_SIZE_DEFAULT)

/* fqdn - the machine's fully qualified name, or its short name */
static void
fqdn(char *out, size_t outlen)
{
	struct addrinfo hints, *ai = NULL;
	char host[HOST_MAX];

	if (gethostname(host, sizeof(host)) < 0 || host[0] == '\0')
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	if (strchr(host, '.') == NULL) {
		memset(&hints, 0, sizeof(hints));
		hints.ai_flags = AI_CANONNAME;
		if (getaddrinfo(host, NULL, &hints, &ai) == 0 && ai &&
		    ai->ai_canonname && strchr(ai->ai_canonname, '.') &&
		    strlen(ai->ai_canonname) < sizeof(host))
			snprintf(host, sizeof(host), "%s", ai->ai_canonname);
		if (ai)
			freeaddrinfo(ai);
	}
	snprintf(out, outlen, "%s", host);
}

void
conf_defaults(struct conf *c)
{
	memset(c, 0, sizeof(*c));
	strlist_init(&c->local_domains);
	snprintf(c->queue_dir, sizeof(c->queue_dir), "/var/spool/mxsend");
	snprintf(c->aliases, sizeof(c->aliases), "/etc/aliases");
	c->local_kind = LOCAL_MBOX;
	snprintf(c->local_path, sizeof(c->local_path), "/var/mail");
	c->smtp_port = 25;
	c->smarthost_tls = -1;
	c->tls = TLS_OPPORTUNISTIC;
	c->retry[0] = 15 * 60;
	c->retry[1] = 30 * 60;
	c->retry[2] = 3600;
	c->retry[3] = 2 * 3600;
	c->retry[4] = 4 * 3600;
	c->nretry = 5;
	c->queue_lifetime = 5 * 86400;
	c->warn_after = 4 * 3600;
	c->max_parallel = 8;
	c->queue_run_time = 4 * 60;
	c->connect_timeout = 30;
	c->command_timeout = 5 * 60;
	c->data_timeout = 10 * 60;
	c->max_message_size = MAX_MESSAGE_SIZE_DEFAULT;
	c->user_queue_messages = USER_QUEUE_MESSAGES_DEFAULT;
	c->user_queue_size_pct = USER_QUEUE_SIZE_PCT_DEFAULT;
	c->queue_min_free = -1;		/* conf_finish */
}

void
conf_free(struct conf *c)
{
	strlist_free(&c->local_domains);
}

/* host_ok - a host name or [literal]: letters, digits, '-', '.', ':' */
static int
host_ok(const char *h)
{
	const char *p;

	if (*h == '\0' || strlen(h) >= HOST_MAX)
		return 0;
	for (p = h; *p; p++)
		if (!(((*p | 32) >= 'a' && (*p | 32) <= 'z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._[]:", *p)))
			return 0;
	return 1;
}

/* next_word - the next word of a list separated by spaces or commas */
static char *
next_word(char **cur)
{
	char *p = *cur + strspn(*cur, " ,\t"), *e;

	if (*p == '\0')
		return NULL;
	e = p + strcspn(p, " ,\t");
	*cur = *e ? e + 1 : e;
	*e = '\0';
	return p;
}

/*
 * parse_size - octets: a number, or one with a suffix k, M or G (1024,
 * 1024^2, 1024^3; either case).  With pct, "N%" (0 to 100) is taken too
 * and goes to *pct (*octets then 0); otherwise *pct is 0.  0 or -1.
 */
static int
parse_size(const char *v, int allow_pct, long long *octets, int *pct)
{
	long long mult = 1, n = 0;
	size_t i, len = strlen(v);

	*pct = 0;
	if (len == 0 || len > 24)
		return -1;
	if (allow_pct && v[len - 1] == '%') {
		long p;
		char num[8];

		if (len - 1 >= sizeof(num))
			return -1;
		memcpy(num, v, len - 1);
		num[len - 1] = '\0';
		if (num[0] < '0' || num[0] > '9' || parse_long(num, 0, 100, &p) < 0)
			return -1;
		*octets = 0;
		*pct = (int)p;
		return 0;
	}
	switch (v[len - 1]) {
	case 'k': case 'K': mult = 1024; len--; break;
	case 'm': case 'M': mult = 1024 * 1024; len--; break;
	case 'g': case 'G': mult = 1024 * 1024 * 1024; len--; break;
	}
	if (len == 0)
		return -1;
	for (i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9' ||
		    n > (LLONG_MAX / mult - (v[i] - '0')) / 10)
			return -1;
		n = n * 10 + (v[i] - '0');
	}
	*octets = n * mult;
	return 0;
}

/*
 * The keys.  Each names its field in struct conf and the setter for its
 * kind of value; a setter returns NULL, or why the value is bad: the key's
 * own reason (why), or one of its kind.
 */
struct key;
typedef const char *setter(struct conf *, const struct key *, char *v);

struct key {
	const char *name;
	setter *set;
	size_t off, size;		/* the field */
	const char *why;
	long min, max;			/* set_long, set_duration (min) */
	const char *const *words;	/* set_word: value i is words[i] */
};

#define FIELD(f) .off = offsetof(struct conf, f), \
	.size = sizeof(((struct conf *)0)->f)

/* field - where k's value goes in c */
static void *
field(struct conf *c, const struct key *k)
{
	return (char *)c + k->off;
}

_Static_assert(sizeof(enum tls_policy) == sizeof(int), "tls is an int");

/* store_long - n, if at least k->min, into k's field: an int (or an
 * enum) or a long; NULL or k->why */
static const char *
store_long(struct conf *c, const struct key *k, long n)
{
	int i = (int)n;

	if (n < k->min)
		return k->why;
	if (k->size == sizeof(int))
		memcpy(field(c, k), &i, sizeof(i));
	else
		memcpy(field(c, k), &n, sizeof(n));
	return NULL;
}

/* set_str - any string that fits the array */
static const char *
set_str(struct conf *c, const struct key *k, char *v)
{
	if (strlen(v) >= k->size)
		return k->why;
	memcpy(field(c, k), v, strlen(v) + 1);
	return NULL;
}

/* set_path - an absolute path */
static const char *
set_path(struct conf *c, const struct key *k, char *v)
{
	return v[0] == '/' ? set_str(c, k, v) : k->why;
}

/* set_file_path - an absolute path to a file, with room for ".tmp" */
static const char *
set_file_path(struct conf *c, const struct key *k, char *v)
{
	if (v[0] != '/' || v[strlen(v) - 1] == '/')
		return k->why;
	if (strlen(v) + strlen(".tmp") >= k->size)
		return "too long (at most " FILE_PATH_MAX " octets)";
	return set_str(c, k, v);
}

/* set_host - a host name or [literal] */
static const char *
set_host(struct conf *c, const struct key *k, char *v)
{
	return host_ok(v) ? set_str(c, k, v) : k->why;
}

/* set_dns - "ip[:port][,ip[:port]...]": only the characters of those */
static const char *
set_dns(struct conf *c, const struct key *k, char *v)
{
	if (v[strspn(v, "0123456789abcdefABCDEF.:,[]")] != '\0')
		return k->why;
	return set_str(c, k, v);
}

/* set_domains - a list of host names (a strlist) */
static const char *
set_domains(struct conf *c, const struct key *k, char *v)
{
	struct strlist *l = field(c, k);
	char *p;

	strlist_free(l);
	while ((p = next_word(&v)) != NULL) {
		if (!host_ok(p))
			return k->why;
		if (strlist_add(l, p) < 0)
			return "out of memory";
	}
	return NULL;
}

/* set_long - a number from min to max */
static const char *
set_long(struct conf *c, const struct key *k, char *v)
{
	long n;

	return parse_long(v, k->min, k->max, &n) < 0 ? k->why :
	    store_long(c, k, n);
}

/* set_duration - a duration (parse_duration) of at least min seconds */
static const char *
set_duration(struct conf *c, const struct key *k, char *v)
{
	long n;

	return parse_duration(v, &n) < 0 ? k->why : store_long(c, k, n);
}

/* set_size - octets (parse_size), no percentage */
static const char *
set_size(struct conf *c, const struct key *k, char *v)
{
	int pct;

	return parse_size(v, 0, field(c, k), &pct) < 0 ? k->why : NULL;
}

/* set_word - one of k->words, stored as its index */
static const char *
set_word(struct conf *c, const struct key *k, char *v)
{
	long i;

	for (i = 0; k->words[i] != NULL; i++)
		if (strcmp(v, k->words[i]) == 0)
			return store_long(c, k, i);
	return k->why;
}

/* set_tls - the policy (a word), and that the file gave it: a smarthost
 * makes verify the default only where it did not (conf_finish) */
static const char *
set_tls(struct conf *c, const struct key *k, char *v)
{
	const char *why = set_word(c, k, v);

	if (why == NULL)
		c->tls_set = 1;
	return why;
}

/* set_retry - a list of up to RETRY_MAX durations above zero */
static const char *
set_retry(struct conf *c, const struct key *k, char *v)
{
	char *p;

	c->nretry = 0;
	while ((p = next_word(&v)) != NULL) {
		if (c->nretry == RETRY_MAX)
			return "too many intervals";
		if (parse_duration(p, &c->retry[c->nretry]) < 0 ||
		    c->retry[c->nretry] == 0)
			return k->why;
		c->nretry++;
	}
	return c->nretry == 0 ? "empty list" : NULL;
}

/* set_smarthost - host[:port], the port 25 when not given */
static const char *
set_smarthost(struct conf *c, const struct key *k, char *v)
{
	char *colon = strrchr(v, ':');
	long n;

	c->smarthost_port = 25;
	if (colon && strchr(v, ']') < colon) {
		*colon = '\0';
		if (parse_long(colon + 1, 1, 65535, &n) < 0)
			return "bad port";
		c->smarthost_port = (int)n;
	}
	return set_host(c, k, v);
}

/* set_user_queue_size - octets, or a percentage of the file system */
static const char *
set_user_queue_size(struct conf *c, const struct key *k, char *v)
{
	if (parse_size(v, 1, &c->user_queue_size, &c->user_queue_size_pct) < 0)
		return k->why;
	return NULL;
}

/* set_local - "mbox DIR", "maildir PATH" or "none": the kind and the
 * path; the whole value must fit the path's array */
static const char *
set_local(struct conf *c, const struct key *k, char *v)
{
	enum local_kind kind;
	size_t skip;

	if (strncmp(v, "mbox ", 5) == 0) {
		kind = LOCAL_MBOX;
		skip = 5;
	} else if (strncmp(v, "maildir ", 8) == 0) {
		kind = LOCAL_MAILDIR;
		skip = 8;
	} else if (strcmp(v, "none") == 0) {
		kind = LOCAL_NONE;
		skip = 4;
	} else
		return k->why;
	if (strlen(v) >= k->size)
		return "too long";
	c->local_kind = kind;
	memcpy(c->local_path, v + skip, strlen(v + skip) + 1);
	return NULL;
}

static const char *const tls_words[] = {	/* enum tls_policy */
	"none", "opportunistic", "required", "verify", NULL
};
static const char *const starttls_implicit[] = { "starttls", "implicit", NULL };
static const char *const no_yes[] = { "no", "yes", NULL };

#define DURATION_WHY "not a duration above zero"
#define SIZE_WHY "not a size (octets, or a number with k, M or G)"
#define SIZE_PCT_WHY "not a size (octets, a number with k, M or G, or " \
	"a percentage of the file system such as 25%)"

static const struct key keys[] = {
	{ "hostname", set_host, FIELD(hostname), "not a host name" },
	{ "qualify_domain", set_host, FIELD(qualify_domain), "not a domain" },
	{ "local_domains", set_domains, FIELD(local_domains),
	    "not a list of domains" },
	{ "queue_dir", set_path, FIELD(queue_dir), "not an absolute path" },
	{ "aliases", set_str, FIELD(aliases), "too long" },
	{ "local_delivery", set_local, FIELD(local_path),
	    "expected mbox DIR, maildir PATH or none" },
	{ "smarthost", set_smarthost, FIELD(smarthost), "not host[:port]" },
	{ "smarthost_tls", set_word, FIELD(smarthost_tls),
	    "expected implicit or starttls", .words = starttls_implicit },
	{ "smtp_port", set_long, FIELD(smtp_port), "not a port number",
	    .min = 1, .max = 65535 },
	{ "dns_server", set_dns, FIELD(dns_server),
	    "expected ip[:port][,ip[:port]...]" },
	{ "tls", set_tls, FIELD(tls),
	    "expected none, opportunistic, required or verify",
	    .words = tls_words },
	{ "tls_ca_file", set_str, FIELD(tls_ca_file), "too long" },
	{ "tls_cert", set_str, FIELD(tls_cert), "too long" },
	{ "tls_key", set_str, FIELD(tls_key), "too long" },
	{ "auth_file", set_str, FIELD(auth_file), "too long" },
	{ "auth_unverified", set_word, FIELD(auth_unverified),
	    "expected no or yes", .words = no_yes },
	{ "retry_intervals", set_retry, FIELD(retry),
	    "not a list of durations above zero" },
	{ "queue_lifetime", set_duration, FIELD(queue_lifetime),
	    "not a duration" },
	{ "warn_after", set_duration, FIELD(warn_after), "not a duration" },
	{ "max_parallel", set_long, FIELD(max_parallel),
	    "not a number from 1 to 1000", .min = 1, .max = 1000 },
	{ "queue_run_time", set_duration, FIELD(queue_run_time), DURATION_WHY,
	    .min = 1 },
	{ "connect_timeout", set_duration, FIELD(connect_timeout), DURATION_WHY,
	    .min = 1 },
	{ "command_timeout", set_duration, FIELD(command_timeout), DURATION_WHY,
	    .min = 1 },
	{ "data_timeout", set_duration, FIELD(data_timeout), DURATION_WHY,
	    .min = 1 },
	{ "max_message_size", set_size, FIELD(max_message_size), SIZE_WHY },
	{ "user_queue_messages", set_long, FIELD(user_queue_messages),
	    "not a number of messages (0 for no limit)",
	    .min = 0, .max = 100000000 },
	{ "user_queue_size", set_user_queue_size, FIELD(user_queue_size),
	    SIZE_PCT_WHY },
	{ "queue_min_free", set_size, FIELD(queue_min_free), SIZE_WHY },
	{ "metrics_file", set_file_path, FIELD(metrics_file),
	    "not an absolute path to a file" },
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* conf_parse - apply the lines of a config file on top of c */
int
conf_parse(struct conf *c, const char *text, size_t len, const char *fname,
    char *err, size_t errlen)
{
	char line[2048], key[64];
	const char *p = text, *end = text + len, *nl;
	unsigned seen[NKEYS] = { 0 };
	size_t lineno = 0, n, i;
	const char *why;
	char *k, *v;

	while (p < end) {
		lineno++;
		nl = memchr(p, '\n', (size_t)(end - p));
		n = (size_t)((nl ? nl : end) - p);
		if (n >= sizeof(line)) {
			snprintf(err, errlen, "%s:%zu: line too long", fname, lineno);
			return -1;
		}
		memcpy(line, p, n);
		line[n] = '\0';
		p = nl ? nl + 1 : end;
		while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t' ||
		    line[n - 1] == '\r'))
			line[--n] = '\0';
		for (k = line; *k == ' ' || *k == '\t'; k++)
			;
		if (*k == '\0' || *k == '#')
			continue;
		for (i = 0; i < n; i++)
			if ((unsigned char)line[i] < 0x20 && line[i] != '\t') {
				snprintf(err, errlen, "%s:%zu: control character",
				    fname, lineno);
				return -1;
			}
		v = k + strcspn(k, " \t");
		if (*v != '\0')
			*v++ = '\0';
		while (*v == ' ' || *v == '\t')
			v++;
		if (strlen(k) >= sizeof(key)) {
			snprintf(err, errlen, "%s:%zu: unknown key", fname, lineno);
			return -1;
		}
		memcpy(key, k, strlen(k) + 1);
		if (*v == '\0') {
			snprintf(err, errlen, "%s:%zu: %s: missing value", fname,
			    lineno, key);
			return -1;
		}
		for (i = 0; i < NKEYS; i++)
			if (strcmp(keys[i].name, key) == 0)
				break;
		if (i < NKEYS && seen[i]) {
			snprintf(err, errlen, "%s:%zu: %s: given twice (first on "
			    "line %u)", fname, lineno, key, seen[i]);
			return -1;
		}
		if (i < NKEYS)
			seen[i] = (unsigned)lineno;
		why = i < NKEYS ? keys[i].set(c, &keys[i], v) : "unknown key";
		if (why != NULL) {
			snprintf(err, errlen, "%s:%zu: %s: %s", fname, lineno, key,
			    why);
			return -1;
		}
	}
	return 0;
}

/* conf_finish - defaults that depend on other keys */
static void
conf_finish(struct conf *c)
{
	if (c->hostname[0] == '\0')
		fqdn(c->hostname, sizeof(c->hostname));
	if (c->qualify_domain[0] == '\0')
		snprintf(c->qualify_domain, sizeof(c->qualify_domain), "%s",
		    c->hostname);
	if (c->local_domains.n == 0) {
		strlist_add(&c->local_domains, c->hostname);
		strlist_add(&c->local_domains, "localhost");
	}
	if (c->smarthost[0] && !c->tls_set)
		c->tls = TLS_VERIFY;
	if (c->smarthost_tls < 0)
		c->smarthost_tls = c->smarthost_port == 465;
	/* Room for two messages of the largest size once users are shut
	 * out: root's own mail (cron, the reports of queue runs) and the
	 * envelope rewrites of delivery still fit. */
	if (c->queue_min_free < 0)
		c->queue_min_free = c->max_message_size == 0 ?
		    QUEUE_MIN_FREE_NOLIMIT : c->max_message_size > LLONG_MAX / 2 ?
		    LLONG_MAX : 2 * c->max_message_size;
}

int
conf_load(struct conf *c, const char *path, int must_exist, char *err,
    size_t errlen)
{
	struct buf b;
	ssize_t r;
	int fd, rc = -1;

	conf_defaults(c);
	buf_init(&b, CONF_FILE_MAX);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT && !must_exist) {
			rc = 0;
			goto out;
		}
		snprintf(err, errlen, "cannot open config file %s: %s", path,
		    strerror(errno));
		goto out;
	}
	if ((r = read_all(fd, &b)) == -EFBIG) {
		snprintf(err, errlen, "config file %s is too large", path);
		goto out;
	} else if (r < 0) {
		snprintf(err, errlen, "cannot read config file %s: %s", path,
		    strerror(-r));
		goto out;
	}
	if (conf_parse(c, b.p ? b.p : "", b.len, path, err, errlen) < 0)
		goto out;
	if (!c->tls_cert[0] != !c->tls_key[0]) {
		snprintf(err, errlen, "%s: tls_cert and tls_key go together", path);
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	buf_free(&b);
	if (rc == 0)
		conf_finish(c);
	return rc;
}

/* conf_local - is addr's domain one of local_domains (or has it none)? */
int
conf_local(const struct conf *c, const char *addr)
{
	const char *d = addr_domain(addr);
	size_t i;

	if (d == NULL)
		return 1;
	for (i = 0; i < c->local_domains.n; i++)
		if (strcasecmp(d, c->local_domains.v[i]) == 0)
			return 1;
	return 0;
}
