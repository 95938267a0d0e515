/*
 * deliver.c - delivery passes: pick due messages, group their recipients
 * by destination, route, speak SMTP, record every outcome.
 *
 * One SMTP transaction per message and destination domain, all of its
 * due recipients in it.  Addresses are tried in route order (MX
 * preference, shuffled within a preference); a failure before MAIL moves
 * on to the next address, a failure after it ends the attempt.  Per
 * recipient: 2xx done, 4xx deferred with the next retry time, 5xx failed.
 * The envelope is rewritten after each transaction, so a recipient once
 * accepted is never sent again, whatever happens next.
 *
 * Locking: a delivery holds the message's flock; another process that
 * finds it locked skips the message.  -q holds queue_dir/lock for the
 * whole pass, so overlapping cron runs do not pile up.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "mxsend.h"

/* next_retry - when a recipient deferred for the tries-th time is due */
static time_t
next_retry(const struct conf *c, int tries, time_t now)
{
	size_t i = tries > 0 ? (size_t)(tries - 1) : 0;

	if (i >= c->nretry)
		i = c->nretry - 1;
	return now + c->retry[i];
}

/* record - one recipient's outcome into the envelope */
static void
record(const struct conf *c, struct envelope *e, size_t i,
    const struct result *r, time_t now, struct dstats *st)
{
	struct rcpt *rc = &e->r[i];
	static const char *const what[] = { "sent", "deferred", "bounced" };

	rc->tries++;
	free(rc->error);
	rc->error = NULL;
	switch (r->o) {
	case OUT_OK:
		rc->state = RCPT_DONE;
		st->done++;
		break;
	case OUT_TEMP:
		rc->next = next_retry(c, rc->tries, now);
		rc->error = xstrdup(r->text);
		st->deferred++;
		break;
	case OUT_PERM:
		rc->state = RCPT_FAILED;
		rc->error = xstrdup(r->text);
		st->failed++;
		break;
	}
	logmsg(r->o == OUT_OK ? LOG_INFO : LOG_NOTICE, "%s: to=<%s>, status=%s "
	    "(%s)", e->id, rc->addr, what[r->o], r->text);
}

/* route_for - where mail for domain goes: the smarthost or its MX hosts */
static enum outcome
route_for(const struct conf *c, struct dns *dns, const char *domain,
    struct route *rt, struct result *res)
{
	if (c->smarthost[0])
		return dns_host(dns, c->smarthost, c->smarthost_port, rt, res);
	return dns_route(dns, domain, c->smtp_port, rt, res);
}

/* attempt - one transaction for recipients idx[0..n) of e */
static void
attempt(const struct conf *c, struct dns *dns, struct envelope *e,
    int msgfd, const size_t *idx, size_t n, struct result *rres,
    struct result *res)
{
	const char *domain = addr_domain(e->r[idx[0]].addr);
	const char **rcpts = xmalloc(n * sizeof(*rcpts));
	struct route rt = { NULL, 0, 0 };
	struct smtp s;
	struct txn t;
	size_t i, a;
	enum outcome o;

	for (i = 0; i < n; i++) {
		rcpts[i] = e->r[idx[i]].addr;
		rres[i] = *res;
	}
	o = route_for(c, dns, domain ? domain : c->qualify_domain, &rt, res);
	if (o != OUT_OK)
		goto all;
	result_set(res, OUT_TEMP, "no address to try for %s", domain);
	for (a = 0; a < rt.n; a++) {
		if (smtp_open(&s, &rt.a[a], c, res) != OUT_OK) {
			vlog("%s", res->text);
			continue;
		}
		memset(&t, 0, sizeof(t));
		t.sender = e->sender;
		t.rcpts = rcpts;
		t.n = n;
		t.rres = rres;
		t.msgfd = msgfd;
		t.size = e->size;
		t.body8 = e->body8;
		t.id = e->id;
		o = smtp_send(&s, &t, res);
		smtp_close(&s, o == OUT_OK);
		goto out;
	}
all:
	for (i = 0; i < n; i++)
		rres[i] = *res;
out:
	route_free(&rt);
	free(rcpts);
}

static int
domain_cmp(const char *a, const char *b)
{
	const char *da = addr_domain(a), *db = addr_domain(b);

	if (da == NULL || db == NULL)
		return (da == NULL) - (db == NULL);
	return strcasecmp(da, db);
}

int
deliver_message(const struct conf *c, struct dns *dns, const char *id,
    int force, struct dstats *st, struct result *res)
{
	struct envelope e;
	struct result *rres = NULL;
	size_t *idx = NULL, *group = NULL;
	size_t i, j, n = 0, ng;
	time_t now = time(NULL);
	int fd, rc = -1, pending;

	fd = queue_lock(c, id);
	if (fd < 0)
		return -1;
	if (queue_read_env(c, id, &e, res) < 0) {
		logmsg(LOG_ERR, "%s: %s", id, res->text);
		close(fd);
		return -1;
	}
	st->messages++;
	idx = xmalloc((e.nr ? e.nr : 1) * sizeof(*idx));
	group = xmalloc((e.nr ? e.nr : 1) * sizeof(*group));
	rres = xmalloc((e.nr ? e.nr : 1) * sizeof(*rres));
	for (i = 0; i < e.nr; i++)
		if (e.r[i].state == RCPT_PENDING && (force || e.r[i].next <= now))
			idx[n++] = i;
	/* Group by domain, keeping the order of first appearance. */
	for (i = 0; i < n; i++) {
		if (idx[i] == (size_t)-1)
			continue;
		ng = 0;
		for (j = i; j < n; j++)
			if (idx[j] != (size_t)-1 &&
			    domain_cmp(e.r[idx[i]].addr, e.r[idx[j]].addr) == 0)
				group[ng++] = idx[j];
		for (j = i; j < n; j++)
			if (idx[j] != (size_t)-1 &&
			    domain_cmp(e.r[group[0]].addr, e.r[idx[j]].addr) == 0)
				idx[j] = (size_t)-1;
		result_set(res, OUT_TEMP, "not attempted");
		attempt(c, dns, &e, fd, group, ng, rres, res);
		now = time(NULL);
		for (j = 0; j < ng; j++)
			record(c, &e, group[j], &rres[j], now, st);
		if (queue_write_env(c, &e, res) < 0) {
			logmsg(LOG_ERR, "%s: %s", id, res->text);
			goto out;
		}
	}
	for (pending = 0, i = 0; i < e.nr; i++)
		if (e.r[i].state != RCPT_DONE)
			pending = 1;
	if (!pending)
		queue_remove(c, id);
	rc = 0;
out:
	free(idx);
	free(group);
	free(rres);
	env_free(&e);
	close(fd);
	return rc;
}

/* selected - does -qI/-qR/-qS pick this message? */
static int
selected(const struct conf *c, const char *id, const struct qfilter *f)
{
	struct envelope e;
	struct result r;
	size_t i;
	int hit = 0;

	if (f->kind == 'I')
		return strstr(id, f->str) != NULL;
	if (queue_read_env(c, id, &e, &r) < 0)
		return 0;
	if (f->kind == 'S')
		hit = strcasestr(e.sender, f->str) != NULL;
	for (i = 0; f->kind == 'R' && i < e.nr; i++)
		if (e.r[i].state == RCPT_PENDING &&
		    strcasestr(e.r[i].addr, f->str) != NULL)
			hit = 1;
	env_free(&e);
	return hit;
}

int
deliver_queue(const struct conf *c, const struct qfilter *f,
    struct dstats *st, struct result *res)
{
	struct strlist ids;
	struct dns *dns = NULL;
	char lockpath[1100];
	size_t i;
	int lfd, rc = -1;

	strlist_init(&ids);
	snprintf(lockpath, sizeof(lockpath), "%s/lock", c->queue_dir);
	lfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lfd < 0) {
		result_set(res, OUT_TEMP, "cannot open %s: %s", lockpath,
		    strerror(errno));
		return -1;
	}
	if (flock(lfd, LOCK_EX | LOCK_NB) < 0) {
		close(lfd);
		return 1;
	}
	if (queue_list(c, &ids, res) < 0)
		goto out;
	dns = dns_new(c->dns_server, c->command_timeout, res);
	if (dns == NULL)
		goto out;
	for (i = 0; i < ids.n; i++) {
		if (f->kind && !selected(c, ids.v[i], f))
			continue;
		deliver_message(c, dns, ids.v[i], f->kind != 0, st, res);
	}
	rc = 0;
out:
	if (dns)
		dns_free(dns);
	strlist_free(&ids);
	close(lfd);
	return rc;
}
