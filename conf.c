/*
 * conf.c - the configuration file and its defaults.
 *
 * Format: one "key value" per line; '#' starts a comment line; blank lines
 * are ignored; the value runs to the end of the line (trailing white space
 * removed).  Every key has a default, so no file is needed.  Unknown keys,
 * bad values and repeated keys are errors that name the file and the line.
 *
 * Security: the file is read with the caller's privileges; nothing in it is
 * executed.  Values are checked for control characters before use.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mxsend.h"

/* A config file larger than this is not a config file. */
#define CONF_FILE_MAX (256 * 1024)

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
	snprintf(c->local_delivery, sizeof(c->local_delivery), "mbox /var/mail");
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
}

void
conf_free(struct conf *c)
{
	strlist_free(&c->local_domains);
}

static int
set_str(char *dst, size_t dstlen, const char *v)
{
	if (strlen(v) >= dstlen)
		return -1;
	snprintf(dst, dstlen, "%s", v);
	return 0;
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

/* set_key - one key; returns NULL or the reason it is bad */
static const char *
set_key(struct conf *c, const char *k, char *v)
{
	long n;
	char *p, *cur = v;

	if (strcmp(k, "hostname") == 0) {
		if (!host_ok(v) || set_str(c->hostname, sizeof(c->hostname), v))
			return "not a host name";
	} else if (strcmp(k, "qualify_domain") == 0) {
		if (!host_ok(v) ||
		    set_str(c->qualify_domain, sizeof(c->qualify_domain), v))
			return "not a domain";
	} else if (strcmp(k, "local_domains") == 0) {
		strlist_free(&c->local_domains);
		while ((p = next_word(&cur)) != NULL) {
			if (!host_ok(p))
				return "not a list of domains";
			if (strlist_add(&c->local_domains, p) < 0)
				return "out of memory";
		}
	} else if (strcmp(k, "queue_dir") == 0) {
		if (v[0] != '/' || set_str(c->queue_dir, sizeof(c->queue_dir), v))
			return "not an absolute path";
	} else if (strcmp(k, "aliases") == 0) {
		if (set_str(c->aliases, sizeof(c->aliases), v))
			return "too long";
	} else if (strcmp(k, "local_delivery") == 0) {
		if (strncmp(v, "mbox ", 5) != 0 && strncmp(v, "maildir ", 8) != 0 &&
		    strcmp(v, "none") != 0)
			return "expected mbox DIR, maildir PATH or none";
		if (set_str(c->local_delivery, sizeof(c->local_delivery), v))
			return "too long";
	} else if (strcmp(k, "smarthost") == 0) {
		char *colon = strrchr(v, ':');

		c->smarthost_port = 25;
		if (colon && strchr(v, ']') < colon) {
			*colon = '\0';
			if (parse_long(colon + 1, 1, 65535, &n) < 0)
				return "bad port";
			c->smarthost_port = (int)n;
		}
		if (!host_ok(v) || set_str(c->smarthost, sizeof(c->smarthost), v))
			return "not host[:port]";
	} else if (strcmp(k, "smarthost_tls") == 0) {
		if (strcmp(v, "implicit") == 0)
			c->smarthost_tls = 1;
		else if (strcmp(v, "starttls") == 0)
			c->smarthost_tls = 0;
		else
			return "expected implicit or starttls";
	} else if (strcmp(k, "smtp_port") == 0) {
		if (parse_long(v, 1, 65535, &n) < 0)
			return "not a port number";
		c->smtp_port = (int)n;
	} else if (strcmp(k, "dns_server") == 0) {
		if (v[strspn(v, "0123456789abcdefABCDEF.:,[]")] != '\0' ||
		    set_str(c->dns_server, sizeof(c->dns_server), v))
			return "expected ip[:port][,ip[:port]...]";
	} else if (strcmp(k, "tls") == 0) {
		if (strcmp(v, "none") == 0)
			c->tls = TLS_NONE;
		else if (strcmp(v, "opportunistic") == 0)
			c->tls = TLS_OPPORTUNISTIC;
		else if (strcmp(v, "required") == 0)
			c->tls = TLS_REQUIRED;
		else if (strcmp(v, "verify") == 0)
			c->tls = TLS_VERIFY;
		else
			return "expected none, opportunistic, required or verify";
		c->tls_set = 1;
	} else if (strcmp(k, "tls_ca_file") == 0) {
		if (set_str(c->tls_ca_file, sizeof(c->tls_ca_file), v))
			return "too long";
	} else if (strcmp(k, "tls_cert") == 0) {
		if (set_str(c->tls_cert, sizeof(c->tls_cert), v))
			return "too long";
	} else if (strcmp(k, "tls_key") == 0) {
		if (set_str(c->tls_key, sizeof(c->tls_key), v))
			return "too long";
	} else if (strcmp(k, "auth_file") == 0) {
		if (set_str(c->auth_file, sizeof(c->auth_file), v))
			return "too long";
	} else if (strcmp(k, "retry_intervals") == 0) {
		c->nretry = 0;
		while ((p = next_word(&cur)) != NULL) {
			if (c->nretry == RETRY_MAX)
				return "too many intervals";
			if (parse_duration(p, &c->retry[c->nretry]) < 0 ||
			    c->retry[c->nretry] == 0)
				return "not a list of durations above zero";
			c->nretry++;
		}
		if (c->nretry == 0)
			return "empty list";
	} else if (strcmp(k, "queue_lifetime") == 0) {
		if (parse_duration(v, &c->queue_lifetime) < 0)
			return "not a duration";
	} else if (strcmp(k, "warn_after") == 0) {
		if (parse_duration(v, &c->warn_after) < 0)
			return "not a duration";
	} else if (strcmp(k, "max_parallel") == 0) {
		if (parse_long(v, 1, 1000, &c->max_parallel) < 0)
			return "not a number from 1 to 1000";
	} else if (strcmp(k, "queue_run_time") == 0) {
		if (parse_duration(v, &c->queue_run_time) < 0 ||
		    c->queue_run_time == 0)
			return "not a duration above zero";
	} else if (strcmp(k, "connect_timeout") == 0) {
		if (parse_duration(v, &c->connect_timeout) < 0 ||
		    c->connect_timeout == 0)
			return "not a duration above zero";
	} else if (strcmp(k, "command_timeout") == 0) {
		if (parse_duration(v, &c->command_timeout) < 0 ||
		    c->command_timeout == 0)
			return "not a duration above zero";
	} else if (strcmp(k, "data_timeout") == 0) {
		if (parse_duration(v, &c->data_timeout) < 0 ||
		    c->data_timeout == 0)
			return "not a duration above zero";
	} else if (strcmp(k, "max_message_size") == 0) {
		if (parse_long(v, 0, LONG_MAX, &n) < 0)
			return "not a size in octets";
		c->max_message_size = n;
	} else
		return "unknown key";
	return NULL;
}

/* The keys, to catch one given twice. */
static const char *const keys[] = {
	"hostname", "qualify_domain", "local_domains", "queue_dir", "aliases",
	"local_delivery", "smarthost", "smarthost_tls", "smtp_port",
	"dns_server", "tls",
	"tls_ca_file", "tls_cert", "tls_key", "auth_file", "retry_intervals",
	"queue_lifetime", "warn_after", "max_parallel", "connect_timeout",
	"command_timeout", "data_timeout", "max_message_size",
	"queue_run_time",
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
			if (strcmp(keys[i], key) == 0)
				break;
		if (i < NKEYS && seen[i]) {
			snprintf(err, errlen, "%s:%zu: %s: given twice (first on "
			    "line %u)", fname, lineno, key, seen[i]);
			return -1;
		}
		if (i < NKEYS)
			seen[i] = (unsigned)lineno;
		if ((why = set_key(c, key, v)) != NULL) {
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
