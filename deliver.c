/*
 * deliver.c - delivery runs: pick due messages, group their recipients
 * by destination, route, speak SMTP, record every outcome, report
 * failures and delays to the sender.
 *
 * A run takes a list of messages (the whole queue for -q, the new
 * message after a submission) and makes jobs: one per message and
 * destination domain (everything is one destination with a smarthost).
 * Jobs are grouped by destination, and each destination is handled by
 * one worker: it resolves the route once, keeps one connection open for
 * all its messages (a new MAIL after each transaction, RSET after a
 * failed one, a fresh connection every CONN_TXN_MAX transactions), and
 * stops connecting for the rest of the run once every address has failed.
 * With several destinations, up to max_parallel workers run as child
 * processes at once.
 *
 * Per recipient: 2xx done, 4xx deferred until the next of
 * retry_intervals (counted from this attempt, the last one repeating),
 * 5xx failed.  The envelope is rewritten after each transaction, so a
 * recipient once accepted is never sent again.  A recipient still
 * pending after queue_lifetime fails; failed recipients are reported to
 * the sender in one bounce per message and attempt, and the first
 * attempt after warn_after sends one delay notice.  The null sender and
 * mxsend's own reports get no report: a bounce never bounces.  Reports
 * with the same sender, recipients and status codes are sent at most once
 * an hour (queue.c, bounce-times).  Reports go through the queue like any
 * message and are delivered by a second pass of the same run.
 *
 * Locking: a job holds the message's flock while it delivers and
 * updates the envelope; a message locked by another process is tried
 * again at the end of the worker's list, then left for the next run.
 * -q holds queue_dir/lock for the whole run, so overlapping cron runs
 * never pile up.  -q also sweeps what crashed processes left (queue.c,
 * queue_sweep).  An
 * attempt that cannot record its outcome holds the message back, and
 * -q releases it once its envelope can be written (queue.c, ID.hold).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "mxsend.h"

/* Transactions on one connection before a fresh one (Postfix reuses
 * without a count limit; a bound keeps one slow server from holding a
 * worker's whole list on a connection it may be throttling). */
#define CONN_TXN_MAX 100
/* The original header block quoted in a report. */
#define REPORT_HEADERS_MAX (256 * 1024)
/* The destination of recipients at local_domains is this and the user
 * name: not a domain name.  Each local user is a destination of its
 * own, so a user who stops their delivery child holds up only their own
 * mail. */
#define LOCAL_DEST "(local)"
/* How long, from the start of a run, workers try messages locked by
 * another process again: another worker of the run holds one for a
 * transaction, but a user's stopped -odb child may hold its message
 * forever, and however many there are, at however many destinations,
 * they must cost a run no more than this.  After it a busy message is
 * left for the next run at once. */
#define BUSY_WAIT 10
/* A worker started later still tries its busy messages this long: most
 * are held by a sibling worker's transaction (a message with recipients
 * at two destinations) and free within it. */
#define BUSY_LATE 2
/* After the budget (queue_run_time) the workers' own waits have ended;
 * a worker still alive this much later is killed, with its children. */
#define RUN_GRACE 30

/* One message's due recipients at one destination. */
struct job {
	const char *id;
	const char *dest;	/* interned, lower-case domain; "" smarthost */
};

/* One destination as a worker sees it through a run. */
struct dest {
	const char *name;
	struct route rt;
	int routed;		/* rt or route_res is valid */
	struct result route_res;
	struct smtp s;
	int open;
	int dead;		/* every address failed: no more connects */
	struct result dead_res;
};

/* next_retry - when a recipient deferred for the tries-th time is due */
static time_t
next_retry(const struct conf *c, int tries, time_t now)
{
	size_t i = tries > 0 ? (size_t)(tries - 1) : 0;

	if (i >= c->nretry)
		i = c->nretry - 1;
	return now + c->retry[i];
}

/*
 * relay_of - the relay= of a recipient's log line, as Postfix words it:
 * "local" for a local mailbox, host[ip]:port of the server that spoke,
 * "none" when no server did (no route, no connection, an expiry)
 */
static void
relay_of(const struct conf *c, const char *rcpt, const struct result *r,
    char *out, size_t outlen)
{
	int attempt = r->why != R_EXPIRED;	/* not an expiry */

	if (attempt && conf_local(c, rcpt))
		snprintf(out, outlen, "local");
	else if (attempt && r->host[0] && r->peer[0] && r->why != R_CONNECT &&
	    r->step != STEP_CONNECT)
		snprintf(out, outlen, "%s%s", r->host, r->peer);
	else
		snprintf(out, outlen, "none");
}

void
deliver_log_queued(const struct envelope *e)
{
	logev("qmgr", LOG_INFO, "%s: from=<%s>, size=%lld, nrcpt=%zu (queue "
	    "active)", e->id, e->sender, (long long)e->size, e->nr);
}

void
deliver_log_rcpt(const struct conf *c, const struct envelope *e,
    const char *rcpt, const struct result *r, time_t now)
{
	static const char *const what[] = { "sent", "deferred", "bounced" };
	char text[ERRTEXT_MAX], relay[HOST_MAX + PEER_MAX];
	struct result_dsn d;

	result_text(r, rcpt, text, sizeof(text));
	result_dsn(r, rcpt, &d);
	relay_of(c, rcpt, r, relay, sizeof(relay));
	logev(r->why == R_EXPIRED ? "qmgr" : strcmp(relay, "local") == 0 ?
	    "local" : "smtp", r->o == OUT_OK ? LOG_INFO : LOG_NOTICE,
	    "%s: to=<%s>, relay=%s, delay=%lld, dsn=%s, status=%s (%s)", e->id,
	    rcpt, relay, (long long)(now - e->arrival), d.status, what[r->o],
	    text);
}

/* record - one recipient's outcome into the envelope, and its log line */
static void
record(const struct conf *c, struct envelope *e, size_t i,
    const struct result *r, time_t now, struct dstats *st)
{
	struct rcpt *rc = &e->r[i];

	rc->tries++;
	free(rc->res);
	rc->res = NULL;
	switch (r->o) {
	case OUT_OK:
		rc->state = RCPT_DONE;
		st->done++;
		break;
	case OUT_TEMP:
		rc->next = next_retry(c, rc->tries, now);
		rc->res = result_dup(r);
		st->deferred++;
		break;
	case OUT_PERM:
		rc->state = RCPT_FAILED;
		rc->res = result_dup(r);
		st->failed++;
		break;
	}
	deliver_log_rcpt(c, e, rc->addr, r, now);
}

/* lower - s in lower case (ASCII), n octets at most, into out */
static void
lower(const char *s, size_t n, char *out, size_t outlen)
{
	size_t i;

	for (i = 0; i < n && s[i] && i + 1 < outlen; i++)
		out[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i]);
	out[i] = '\0';
}

/* dest_of - the destination of an address: its domain in lower case,
 * or LOCAL_DEST and the user name */
static void
dest_of(const struct conf *c, const char *addr, char *out, size_t outlen)
{
	const char *d = addr_domain(addr);
	size_t n = strlen(LOCAL_DEST);

	if (conf_local(c, addr) && n < outlen) {
		memcpy(out, LOCAL_DEST, n);
		lower(addr, d ? (size_t)(d - 1 - addr) : strlen(addr), out + n,
		    outlen - n);
		return;
	}
	if (c->smarthost[0] || d == NULL) {
		snprintf(out, outlen, "%s", c->smarthost[0] ? "" :
		    c->qualify_domain);
		return;
	}
	lower(d, strlen(d), out, outlen);
}

/* is_local - is dest a local user's mailbox? */
static int
is_local(const char *dest)
{
	return dest != NULL && strncmp(dest, LOCAL_DEST, strlen(LOCAL_DEST)) == 0;
}

/*
 * local_here - may this process deliver to the local mailbox dest?
 * Root's runs deliver to every one.  A process that is not root (a
 * user's own -odb or -odi through the setgid binary, or a run of a
 * member of the queue's group) delivers only to its invoking user's own
 * mailbox: a user's process could stop or limit itself half-way through
 * another user's mailbox, leaving a cut message and a lock.  The others
 * stay pending, untried, for root's run.
 */
static int
local_here(const struct conf *c, const char *dest)
{
	struct passwd *pw;

	if (geteuid() == 0 || c->local_kind == LOCAL_NONE)
		return 1;
	pw = getpwnam(dest + strlen(LOCAL_DEST));
	return pw != NULL && pw->pw_uid == getuid();
}

/* The end of this process's run (now_ms), from queue_run_time, and of
 * its tries of busy messages (BUSY_WAIT). */
static long long run_end, busy_end;

/* run_begin - the run's budget starts now; every wait of this process
 * and its workers ends by then */
static void
run_begin(const struct conf *c)
{
	run_end = deadline_in(c->queue_run_time);
	busy_end = deadline_in(BUSY_WAIT);
	deadline_cap(run_end);
}

/* run_over - is the budget used up?  No new work is started then. */
static int
run_over(void)
{
	return run_end > 0 && now_ms() >= run_end;
}

/* due - is recipient i of e to be tried now at dest? */
static int
due(const struct conf *c, const struct envelope *e, size_t i,
    const char *dest, int force, time_t now)
{
	char d[HOST_MAX];

	if (e->r[i].state != RCPT_PENDING || (!force && e->r[i].next > now))
		return 0;
	if (dest == NULL)
		return 1;
	dest_of(c, e->r[i].addr, d, sizeof(d));
	return strcmp(d, dest) == 0;
}

/* read_headers - the header block of the queued message, up to the
 * blank line (at most REPORT_HEADERS_MAX octets, cut at a line end) */
static void
read_headers(int fd, struct buf *b)
{
	char chunk[8192];
	off_t off = 0;
	ssize_t n;
	char *end;

	while (b->len < REPORT_HEADERS_MAX) {
		n = pread(fd, chunk, sizeof(chunk), off);
		if (n <= 0)
			break;
		off += n;
		if (buf_add(b, chunk, (size_t)n) < 0)
			break;
		if ((end = strstr(b->p, "\r\n\r\n")) != NULL) {
			b->len = (size_t)(end - b->p) + 2;
			b->p[b->len] = '\0';
			return;
		}
	}
	/* No end found within the limit: keep whole lines only. */
	while (b->len > 0 && b->p[b->len - 1] != '\n')
		b->len--;
	if (b->p)
		b->p[b->len] = '\0';
}

/* fnv - FNV-1a, to key the report rate limit */
static unsigned long long
fnv(unsigned long long h, const char *s)
{
	return fnv1a(h, s) ^ 0xff;	/* a field separator */
}

/* The IDs of the reports this process queued during a run, for
 * deliver_ids' pass over them (workers send theirs up the pipe). */
static struct strlist reports;

/* report_status - the RFC 3463 status a report gives recipient addr */
static const char *
report_status(const struct result *r, const char *addr, enum dsn_action a,
    struct result_dsn *dg)
{
	struct result x;

	if (r)
		x = *r;
	else
		result_set(&x, OUT_PERM, R_NONE, "%s", "");
	x.o = a == DSN_FAILED ? OUT_PERM : OUT_TEMP;
	result_dsn(&x, addr, dg);
	return dg->status;
}

/* report_key - what makes two reports the same: the kind, the sender,
 * each recipient and its status */
static unsigned long long
report_key(const struct envelope *e, enum dsn_action action,
    const struct dsn_rcpt *dr, size_t n)
{
	struct result_dsn dg;
	unsigned long long key;
	size_t i;

	key = fnv(FNV1A_INIT, action == DSN_FAILED ? "F" : "D");
	key = fnv(key, e->sender);
	for (i = 0; i < n; i++)
		key = fnv(fnv(key, dr[i].addr), report_status(dr[i].res,
		    dr[i].addr, action, &dg));
	return key;
}

/* report_queue - the composed report msg into the queue as a message
 * from the null sender to e's sender, given to the original's owner;
 * its ID into id */
static int
report_queue(const struct conf *c, const struct envelope *e, int msgfd,
    struct qfile *q, const struct buf *msg, time_t now)
{
	struct envelope be;
	struct result res;
	struct rtext t;
	struct stat ost;
	size_t i;
	int rc = -1;

	env_init(&be);
	be.sender = xstrdup("");
	be.is_bounce = 1;
	be.arrival = now;
	for (i = 0, be.body8 = 0; i < msg->len; i++)
		if (msg->p[i] & 0x80)
			be.body8 = 1;
	/* A report about a user's message is that user's: their quota and
	 * their share of a run's workers pay for it, not root's. */
	if (fstat(msgfd, &ost) == 0)
		(void)queue_give(q, ost.st_uid);
	if (env_add_rcpt(&be, e->sender) < 0)
		result_oom(&res);
	if (be.nr != 1 || queue_write(q, msg->p, msg->len, &res) < 0 ||
	    queue_commit(c, q, &be, &res) < 0) {
		queue_abort(q);
		logmsg(LOG_ERR, "%s: cannot queue a report: %s", e->id,
		    result_str(&res, &t));
		goto out;
	}
	deliver_log_queued(&be);
	close(q->fd);
	rc = 0;
out:
	env_free(&be);
	return rc;
}

/*
 * report - queue a bounce or delay notice to e's sender about the
 * recipients idx[0..n).  Returns 0, or -1 (logged; the caller keeps the
 * recipients' state so a later run tries again).
 */
static int
report(const struct conf *c, const struct envelope *e, int msgfd,
    enum dsn_action action, const size_t *idx, size_t n, time_t now)
{
	struct dsn_rcpt *dr = xmalloc(n * sizeof(*dr));
	const char *what = action == DSN_FAILED ? "bounce" : "delay notice";
	struct result res;
	struct buf hdr, msg;
	struct rtext t;
	struct qfile q;
	struct dsn d;
	unsigned long long key;
	size_t i;
	int rc = -1;

	buf_init(&hdr, 0);
	buf_init(&msg, 0);
	for (i = 0; i < n; i++) {
		dr[i].addr = e->r[idx[i]].addr;
		dr[i].res = e->r[idx[i]].res;
	}
	key = report_key(e, action, dr, n);
	if (queue_report_seen(c, key, now)) {
		logev("bounce", LOG_NOTICE, "%s: %s to <%s> not sent: an "
		    "identical one went out within the hour", e->id, what,
		    e->sender);
		rc = 0;
		goto out;
	}
	read_headers(msgfd, &hdr);
	if (queue_create(c, &q, &res) < 0) {
		logmsg(LOG_ERR, "%s: cannot queue a report: %s", e->id,
		    result_str(&res, &t));
		goto out;
	}
	memset(&d, 0, sizeof(d));
	d.action = action;
	d.hostname = c->hostname;
	d.id = e->id;
	d.msgid = q.id;
	d.to = e->sender;
	d.arrival = e->arrival;
	d.now = now;
	d.retry_until = e->arrival + c->queue_lifetime;
	d.r = dr;
	d.n = n;
	d.headers = hdr.p ? hdr.p : "";
	d.headers_len = hdr.len;
	if (dsn_compose(&d, &msg) < 0) {
		queue_abort(&q);
		logmsg(LOG_ERR, "%s: cannot compose a report", e->id);
		goto out;
	}
	if (report_queue(c, e, msgfd, &q, &msg, now) < 0)
		goto out;
	queue_report_note(c, key, now);
	strlist_add(&reports, q.id);
	/* Postfix's bounce daemon's words. */
	logev("bounce", LOG_INFO, "%s: sender %s notification: %s", e->id,
	    action == DSN_FAILED ? "non-delivery" : "delay", q.id);
	rc = 0;
out:
	buf_free(&hdr);
	buf_free(&msg);
	free(dr);
	return rc;
}

/* notify_has - is word among the comma-separated NOTIFY= values? */
static int
notify_has(const char *list, const char *word)
{
	size_t n = strlen(word), k;

	for (; *list; list += k + (list[k] == ',')) {
		k = strcspn(list, ",");
		if (k == n && strncasecmp(list, word, n) == 0)
			return 1;
	}
	return 0;
}

/*
 * finish - after an attempt (or to catch up after a crash): expire,
 * report, and then remove the message or save its envelope.  The caller
 * holds the lock.  Returns 0, or -1 when the envelope could not be saved.
 */
static int
finish(const struct conf *c, struct envelope *e, int msgfd, time_t now,
    struct dstats *st, struct result *res)
{
	size_t *idx = xmalloc((e->nr ? e->nr : 1) * sizeof(*idx));
	/* RFC 3461 4.1: -N chooses which reports the sender wants. */
	int reportable = e->sender[0] != '\0' && !e->is_bounce;
	int want_fail = reportable && (!e->dsn_notify ||
	    notify_has(e->dsn_notify, "FAILURE"));
	int want_delay = reportable && (!e->dsn_notify ||
	    notify_has(e->dsn_notify, "DELAY"));
	struct rtext t;
	size_t i, n;
	int pending = 0, rc = 0;

	/* queue_lifetime: pending recipients fail. */
	if (now - e->arrival >= c->queue_lifetime)
		for (i = 0; i < e->nr; i++) {
			struct rcpt *r = &e->r[i];
			struct result x;

			if (r->state != RCPT_PENDING)
				continue;
			if (r->res)
				x = *r->res;
			else
				result_set(&x, OUT_PERM, R_NONE, "%s", "");
			if (x.why != R_EXPIRED)
				x.why_last = x.why;
			x.why = R_EXPIRED;
			x.o = OUT_PERM;
			x.lifetime = c->queue_lifetime;
			r->tries--;	/* record() counts an attempt */
			record(c, e, i, &x, now, st);
		}
	for (n = 0, i = 0; i < e->nr; i++)
		if (e->r[i].state == RCPT_FAILED)
			idx[n++] = i;
	if (n > 0 && (!want_fail || report(c, e, msgfd, DSN_FAILED, idx, n,
	    now) == 0))
		for (i = 0; i < n; i++)
			e->r[idx[i]].state = RCPT_BOUNCED;
	/* warn_after: one delay notice about the recipients still pending. */
	for (n = 0, i = 0; i < e->nr; i++)
		if (e->r[i].state == RCPT_PENDING)
			idx[n++] = i;
	if (n > 0 && want_delay && !e->warned && c->warn_after > 0 &&
	    now - e->arrival >= c->warn_after &&
	    report(c, e, msgfd, DSN_DELAYED, idx, n, now) == 0)
		e->warned = 1;
	for (i = 0; i < e->nr; i++)
		if (e->r[i].state == RCPT_PENDING || e->r[i].state == RCPT_FAILED)
			pending = 1;
	if (!pending) {
		int r = queue_remove(c, e);

		if (r < 0) {
			result_set(res, OUT_TEMP, R_QUEUE, "cannot remove the "
			    "delivered message: %s", strerror(-r));
			logmsg(LOG_ERR, "%s: %s", e->id, result_str(res, &t));
			rc = -1;
		} else
			logev("qmgr", LOG_INFO, "%s: removed", e->id);
	} else if (queue_write_env(c, e, res) == 0)
		e->has_env = 1;
	else {
		logmsg(LOG_ERR, "%s: %s", e->id, result_str(res, &t));
		rc = -1;
	}
	free(idx);
	return rc;
}

/* dest_open - a connection for d, trying its addresses in order */
static int
dest_open(const struct conf *c, struct dns *dns, struct dest *d,
    struct result *res)
{
	struct rtext rt;
	size_t a;

	if (!d->routed) {
		enum outcome o;

		if (c->smarthost[0])
			o = dns_host(dns, c->smarthost, c->smarthost_port, &d->rt,
			    &d->route_res);
		else
			o = dns_route(dns, d->name, c->smtp_port, &d->rt,
			    &d->route_res);
		if (o == OUT_OK)
			d->route_res.o = OUT_OK;
		d->routed = 1;
	}
	if (d->route_res.o != OUT_OK) {
		*res = d->route_res;
		return -1;
	}
	if (d->dead) {
		*res = d->dead_res;
		return -1;
	}
	result_set(res, OUT_TEMP, R_NO_ROUTE, "%s", d->name);
	for (a = 0; a < d->rt.n; a++) {
		struct tlsopts t;
		char user[256], pass[512];
		int found = 0;

		memset(&t, 0, sizeof(t));
		t.policy = c->tls;
		t.implicit = c->smarthost[0] && c->smarthost_tls == 1;
		t.name = c->smarthost[0] ? c->smarthost : d->rt.a[a].host;
		if (c->auth_file[0]) {
			found = auth_lookup(c->auth_file, t.name, user, sizeof(user),
			    pass, sizeof(pass), res);
			if (found < 0)
				break;	/* the same for every address */
			if (found) {
				t.user = user;
				t.pass = pass;
			}
		}
		found = smtp_open(&d->s, &d->rt.a[a], c, &t, res) == OUT_OK;
		explicit_bzero(pass, sizeof(pass));
		if (found) {
			d->open = 1;
			return 0;
		}
		vlog("%s", result_str(res, &rt));
	}
	/* Every address failed: the rest of this run's jobs for d are
	 * deferred with the same reason, without connecting again. */
	res->o = OUT_TEMP;
	d->dead = 1;
	d->dead_res = *res;
	return -1;
}

/* One message being delivered: locked, its envelope loaded, its due
 * recipients picked.  With pipelining a worker has two at once: the one
 * whose end of data is on its way, and the next. */
struct inflight {
	int active;
	int fd;			/* the locked message file */
	struct envelope e;
	size_t *idx, n;		/* due recipients: indices into e.r */
	const char **rcpts;
	struct result *rres;
	struct txn t;
};

/* Set when an outcome could not be saved (disk full, say): the worker
 * stops, since every further delivery would be forgotten too. */
static int cannot_record;

/* local_one - recipient i of m (user@local-domain, aliases already
 * expanded at submission) into the mailbox of user (its destination's,
 * in lower case), as local_delivery says */
static void
local_one(const struct conf *c, struct inflight *m, size_t i,
    const char *user, struct result *r)
{
	switch (c->local_kind) {
	case LOCAL_NONE:
		result_set(r, OUT_PERM, R_LOCAL_OFF, "%s", m->rcpts[i]);
		break;
	case LOCAL_MBOX:
		local_mbox(c->local_path, user, m->e.sender, m->e.arrival, m->fd,
		    m->e.size, r);
		break;
	case LOCAL_MAILDIR:
		local_maildir(c->local_path, user, m->e.sender, m->fd, m->e.size,
		    r);
		break;
	}
}

/* job_done - record the outcomes, report, save or remove; unlock */
static void
job_done(const struct conf *c, struct inflight *m, struct dstats *st)
{
	struct result res;
	time_t now = time(NULL);
	size_t i;

	for (i = 0; i < m->n; i++)
		record(c, &m->e, m->idx[i], &m->rres[i], now, st);
	if (finish(c, &m->e, m->fd, now, st, &res) < 0) {
		/* Held until its envelope can be written (queue.c), so that
		 * no later run repeats what this one could not record. */
		int h = queue_hold(c, m->e.id);

		logmsg(LOG_ERR, "%s: cannot save what this attempt did; %s; "
		    "recipients it reached may receive the message once more "
		    "(possible duplicate); stopping this run", m->e.id,
		    h == 0 ? "held until its envelope can be written" :
		    h == -ENOENT ? "it is gone" : "cannot hold it either");
		cannot_record = 1;
	}
	free(m->idx);
	free(m->rcpts);
	free(m->rres);
	env_free(&m->e);
	close(m->fd);
	memset(m, 0, sizeof(*m));
}

/* complete - read the final reply of the message in flight, if any */
static void
complete(const struct conf *c, struct dest *d, struct inflight *prev,
    struct dstats *st)
{
	struct result res;

	if (!prev->active)
		return;
	if (smtp_finish(&d->s, &prev->t, &res) != OUT_OK) {
		smtp_close(&d->s, 0);
		d->open = 0;
	}
	job_done(c, prev, st);
}

/* job_load - message id locked, its envelope loaded and its recipients
 * due at d picked into m (none when d is NULL) */
static enum qstatus
job_load(const struct conf *c, const struct dest *d, const char *id,
    int force, struct inflight *m)
{
	struct result res;
	struct rtext t;
	time_t now = time(NULL);
	enum qstatus q;
	size_t i;
	int fd;

	memset(m, 0, sizeof(*m));
	if ((q = queue_lock(c, id, &fd)) != Q_OK)
		return q;
	m->fd = fd;
	if ((q = queue_read_env(c, id, fd, &m->e, &res)) != Q_OK) {
		if (q == Q_ERROR)
			logmsg(LOG_ERR, "%s: %s", id, result_str(&res, &t));
		close(fd);
		return q;
	}
	m->active = 1;
	m->idx = xmalloc((m->e.nr ? m->e.nr : 1) * sizeof(*m->idx));
	for (i = 0; d && i < m->e.nr; i++)
		if (due(c, &m->e, i, d->name, force, now))
			m->idx[m->n++] = i;
	m->rcpts = xmalloc((m->n ? m->n : 1) * sizeof(*m->rcpts));
	m->rres = xmalloc((m->n ? m->n : 1) * sizeof(*m->rres));
	for (i = 0; i < m->n; i++)
		m->rcpts[i] = m->e.r[m->idx[i]].addr;
	return Q_OK;
}

/* job_send - m over d's connection (opened, or renewed after
 * CONN_TXN_MAX transactions), pipelined behind prev, which is completed;
 * m then takes prev's place while its final reply is pending */
static void
job_send(const struct conf *c, struct dns *dns, struct dest *d,
    struct inflight *m, struct inflight *prev, struct dstats *st)
{
	struct result res;
	size_t i;

	result_set(&res, OUT_OK, R_NONE, "%s", "");

	if (d->open && d->s.ntxn >= CONN_TXN_MAX) {
		complete(c, d, prev, st);
		if (d->open)
			smtp_close(&d->s, 1);
		d->open = 0;
	}
	if (!d->open) {
		if (dest_open(c, dns, d, &res) < 0) {
			for (i = 0; i < m->n; i++)
				m->rres[i] = res;
			job_done(c, m, st);
			return;
		}
		st->connections++;
	}
	m->t.sender = m->e.sender;
	m->t.rcpts = m->rcpts;
	m->t.n = m->n;
	m->t.rres = m->rres;
	m->t.msgfd = m->fd;
	m->t.size = m->e.size;
	m->t.body8 = m->e.body8;
	m->t.shape = m->e.shape;
	m->t.id = m->e.id;
	m->t.notify = m->e.dsn_notify;
	m->t.ret = m->e.dsn_ret;
	m->t.envid = m->e.dsn_envid;
	m->t.may_pend = 1;
	if (smtp_send(&d->s, &m->t, prev->active ? &prev->t : NULL, &res) !=
	    OUT_OK) {
		smtp_close(&d->s, 0);
		d->open = 0;
	}
	/* smtp_send completed prev, whatever happened. */
	if (prev->active)
		job_done(c, prev, st);
	if (m->t.pending) {
		*prev = *m;
		/* t pointed into m's envelope, which now lives in prev. */
		prev->t.id = prev->e.id;
		prev->t.sender = prev->e.sender;
	} else
		job_done(c, m, st);
}

/*
 * run_job - one message at one destination (d NULL: no delivery, only
 * finish).  prev is the message in flight on d's connection, if any; it
 * is completed here, and this one may take its place.  Never waits for
 * the message's lock.  Returns Q_OK, Q_BUSY when another process holds
 * the message, Q_GONE or Q_ERROR when it cannot be delivered now.
 */
static enum qstatus
run_job(const struct conf *c, struct dns *dns, struct dest *d,
    const char *id, int force, struct inflight *prev, struct dstats *st)
{
	struct inflight cur;
	enum qstatus q;
	size_t i;

	if (cannot_record)
		return Q_ERROR;
	if ((q = job_load(c, d, id, force, &cur)) != Q_OK)
		return q;
	if (cur.n == 0) {
		job_done(c, &cur, st);
		return Q_OK;
	}
	st->messages++;
	if (is_local(d->name)) {
		for (i = 0; i < cur.n; i++)
			local_one(c, &cur, i, d->name + strlen(LOCAL_DEST),
			    &cur.rres[i]);
		job_done(c, &cur, st);
	} else
		job_send(c, dns, d, &cur, prev, st);
	return Q_OK;
}

/* retry_busy - the jobs busy[0..*n) that another process held, tried
 * again without waiting on any of them, until they are done or BUSY_WAIT
 * has passed since the run began (BUSY_LATE at least); *n is what is
 * still held */
static void
retry_busy(const struct conf *c, struct dns *dns, struct dest *d,
    const struct job *jobs, size_t *busy, size_t *n, int force,
    struct inflight *prev, struct dstats *st)
{
	long long until = deadline_in(BUSY_LATE);
	size_t i, k;

	if (until < busy_end)
		until = busy_end;
	while (*n > 0 && now_ms() < until && !run_over()) {
		/* The message in flight is not kept waiting meanwhile. */
		complete(c, d, prev, st);
		poll(NULL, 0, 100);
		for (i = k = 0; i < *n; i++)
			if (run_job(c, dns, jobs[busy[i]].dest ? d : NULL,
			    jobs[busy[i]].id, force, prev, st) == Q_BUSY)
				busy[k++] = busy[i];
		*n = k;
	}
}

/*
 * worker - every job of one destination, over one connection.  With
 * dlock (a queue run) it first takes the destination's lock, and leaves
 * the destination to the run that holds it.  It starts no job once the
 * run's budget is used up; what it did not start is counted as left.
 */
static void
worker(const struct conf *c, struct dns *dns, const struct job *jobs,
    size_t n, int force, int dlock, struct dstats *st)
{
	struct inflight prev;
	struct dest d;
	size_t i, nbusy = 0;
	size_t *busy = xmalloc((n ? n : 1) * sizeof(*busy));
	int lfd = -1;

	memset(&d, 0, sizeof(d));
	memset(&prev, 0, sizeof(prev));
	d.name = jobs[0].dest;
	if (dlock && d.name && queue_dest_lock(c, d.name, &lfd) == Q_BUSY) {
		vlog("%s: another queue run is working on it", *d.name ? d.name :
		    c->smarthost);
		st->left += (int)n;
		goto out;
	}
	for (i = 0; i < n && !run_over(); i++)
		if (run_job(c, dns, jobs[i].dest ? &d : NULL, jobs[i].id, force,
		    &prev, st) == Q_BUSY)
			busy[nbusy++] = i;
	st->left += (int)(n - i);
	/* Locked by another process: another destination's worker, a
	 * submission delivering, or a stopped one. */
	retry_busy(c, dns, &d, jobs, busy, &nbusy, force, &prev, st);
	st->left += (int)nbusy;
	complete(c, &d, &prev, st);
	if (d.open)
		smtp_close(&d.s, 1);
	route_free(&d.rt);
out:
	if (lfd >= 0)
		close(lfd);
	free(busy);
}

static int
jobcmp(const void *a, const void *b)
{
	const struct job *x = a, *y = b;
	const char *dx = x->dest ? x->dest : "", *dy = y->dest ? y->dest : "";
	int r = strcmp(dx, dy);

	if (r == 0)
		r = (x->dest == NULL) - (y->dest == NULL);
	return r ? r : strcmp(x->id, y->id);
}

/* intern - one copy of each destination name for the run */
static const char *
intern(struct strlist *names, const char *s)
{
	size_t i;

	for (i = names->n; i > 0; i--)
		if (strcmp(names->v[i - 1], s) == 0)
			return names->v[i - 1];
	if (strlist_add(names, s) < 0)
		return NULL;
	return names->v[names->n - 1];
}

static void
add_job(struct job **jobs, size_t *n, size_t *cap, const char *id,
    const char *dest)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		*jobs = realloc(*jobs, *cap * sizeof(**jobs));
		if (*jobs == NULL)
			abort();
	}
	(*jobs)[*n].id = id;
	(*jobs)[*n].dest = dest;
	(*n)++;
}

/* selected - does -qI/-qR/-qS pick this message? */
static int
selected(const struct envelope *e, const struct qfilter *f)
{
	size_t i;

	if (f == NULL || f->kind == 0)
		return 1;
	if (f->kind == 'I')
		return strstr(e->id, f->str) != NULL;
	if (f->kind == 'S')
		return strcasestr(e->sender, f->str) != NULL;
	for (i = 0; i < e->nr; i++)
		if (e->r[i].state == RCPT_PENDING &&
		    strcasestr(e->r[i].addr, f->str) != NULL)
			return 1;
	return 0;
}

/* What a worker process sends its parent over the run's pipe: one
 * record per report it queued (id set), then its figures (id empty).
 * Small enough that each write is atomic on a pipe. */
struct wrec {
	struct dstats st;
	char id[32];
};

/* add_stats - a worker's figures into the run's */
static void
add_stats(struct dstats *to, const struct dstats *from)
{
	to->messages += from->messages;
	to->done += from->done;
	to->deferred += from->deferred;
	to->failed += from->failed;
	to->left += from->left;
	to->connections += from->connections;
}

/* drain - every worker record waiting in the pipe (non-blocking) */
static void
drain(int fd, struct dstats *st)
{
	struct wrec w;

	while (read(fd, &w, sizeof(w)) == (ssize_t)sizeof(w)) {
		if (w.id[0] == '\0')
			add_stats(st, &w.st);
		else if (memchr(w.id, '\0', sizeof(w.id)))
			strlist_add(&reports, w.id);
	}
}

/*
 * make_jobs - the jobs of a run over ids: one per message and
 * destination with a recipient due there (or expired), one without a
 * destination for a message with a failure not yet reported.  Local
 * mailboxes this process may not write (local_here) make no job.
 */
static void
make_jobs(const struct conf *c, const struct strlist *ids,
    const struct qfilter *f, int forced, struct strlist *names,
    struct job **jobs, size_t *nj)
{
	size_t capj = 0, i, j, k;
	time_t now = time(NULL);
	struct envelope e;
	struct result res;
	struct rtext t;
	enum qstatus q;
	char dest[HOST_MAX];

	for (i = 0; i < ids->n; i++) {
		size_t first = *nj;
		int failed = 0;

		if ((q = queue_read_env(c, ids->v[i], -1, &e, &res)) != Q_OK) {
			if (q == Q_ERROR)
				logmsg(LOG_ERR, "%s: %s", ids->v[i],
				    result_str(&res, &t));
			continue;
		}
		/* Aliases the submitter could not read: root expands them. */
		submit_expand_queued(c, &e);
		if (!selected(&e, f)) {
			env_free(&e);
			continue;
		}
		for (k = 0; k < e.nr; k++) {
			if (e.r[k].state == RCPT_FAILED)
				failed = 1;
			if (!due(c, &e, k, NULL, forced, now) &&
			    !(e.r[k].state == RCPT_PENDING &&
			    now - e.arrival >= c->queue_lifetime))
				continue;
			dest_of(c, e.r[k].addr, dest, sizeof(dest));
			if (is_local(dest) && !local_here(c, dest))
				continue;
			for (j = first; j < *nj; j++)
				if (strcmp((*jobs)[j].dest, dest) == 0)
					break;
			if (j < *nj)
				continue;
			add_job(jobs, nj, &capj, ids->v[i], intern(names, dest));
		}
		/* A failure not yet reported (a crash came between): finish. */
		if (*nj == first && failed)
			add_job(jobs, nj, &capj, ids->v[i], NULL);
		env_free(&e);
	}
}

/* worker_child - a worker in a child process: its figures and the IDs
 * of the reports it queued go up the pipe, in small writes (each atomic
 * on a pipe) */
static void
worker_child(const struct conf *c, struct dns *dns, const struct job *jobs,
    size_t n, int forced, int dlock, int pfd)
{
	struct wrec w;
	size_t k;

	strlist_free(&reports);
	strlist_init(&reports);
	memset(&w, 0, sizeof(w));
	worker(c, dns, jobs, n, forced, dlock, &w.st);
	for (k = 0; k < reports.n; k++) {
		struct wrec r;

		memset(&r, 0, sizeof(r));
		snprintf(r.id, sizeof(r.id), "%s", reports.v[k]);
		if (write(pfd, &r, sizeof(r)) < 0)
			_exit(1);
	}
	if (write(pfd, &w, sizeof(w)) < 0)
		_exit(1);
	_exit(0);
}

/* dest_end - the end of the jobs of the destination that starts at start */
static size_t
dest_end(const struct job *jobs, size_t nj, size_t start)
{
	size_t i;

	for (i = start + 1; i < nj && jobs[i].dest == jobs[start].dest; i++)
		;
	return i;
}

/* One destination's jobs in a run, and its place in the start order. */
struct dgroup {
	const struct job *jobs;	/* its jobs, oldest message first */
	size_t n;
	size_t rank;		/* its best place among its users' */
};

/* One user's mail at one destination: the user's oldest message there. */
struct stake {
	uid_t owner;
	size_t dest;		/* index into the groups */
	const char *oldest;	/* queue ID */
};

static int
by_stake(const void *a, const void *b)
{
	const struct stake *x = a, *y = b;

	if (x->owner != y->owner)
		return x->owner < y->owner ? -1 : 1;
	if (x->dest != y->dest)
		return x->dest < y->dest ? -1 : 1;
	return strcmp(x->oldest, y->oldest);
}

static int
by_age(const void *a, const void *b)
{
	const struct stake *x = a, *y = b;
	int r;

	if (x->owner != y->owner)
		return x->owner < y->owner ? -1 : 1;
	r = strcmp(x->oldest, y->oldest);
	return r ? r : (x->dest > y->dest) - (x->dest < y->dest);
}

static int
by_rank(const void *a, const void *b)
{
	const struct dgroup *x = a, *y = b;

	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return strcmp(x->jobs[0].id, y->jobs[0].id);
}

/*
 * dest_order - the destinations of jobs (sorted by jobcmp) in the order
 * workers start: round robin over the users with mail due (the owners of
 * the messages), each user's destinations oldest first.  Every user
 * ranks the destinations where they have mail by their own oldest
 * message there, and a destination takes the best rank any of its users
 * gives it: a user who queues mail to many slow destinations (tarpits,
 * or messages their stopped process holds), even with older mail at
 * another user's destination, takes no more worker slots per round than
 * any other user, and never keeps the others' mail from starting.
 */
static struct dgroup *
dest_order(const struct conf *c, const struct job *jobs, size_t nj,
    size_t *ng)
{
	struct dgroup *g = xmalloc((nj ? nj : 1) * sizeof(*g));
	struct stake *s = xmalloc((nj ? nj : 1) * sizeof(*s));
	size_t i, k, n = 0, ns = 0, next, rank = 0;

	for (i = 0; i < nj; i = next) {
		next = dest_end(jobs, nj, i);
		g[n].jobs = jobs + i;
		g[n].n = next - i;
		g[n].rank = (size_t)-1;
		for (k = i; k < next; k++) {
			s[ns].owner = queue_owner(c, jobs[k].id);
			s[ns].dest = n;
			s[ns++].oldest = jobs[k].id;
		}
		n++;
	}
	/* One stake per user and destination: the oldest message. */
	qsort(s, ns, sizeof(*s), by_stake);
	for (i = k = 0; i < ns; i++)
		if (k == 0 || s[i].owner != s[k - 1].owner ||
		    s[i].dest != s[k - 1].dest)
			s[k++] = s[i];
	ns = k;
	qsort(s, ns, sizeof(*s), by_age);
	for (i = 0; i < ns; i++) {
		rank = i > 0 && s[i].owner == s[i - 1].owner ? rank + 1 : 0;
		if (rank < g[s[i].dest].rank)
			g[s[i].dest].rank = rank;
	}
	qsort(g, n, sizeof(*g), by_rank);
	free(s);
	*ng = n;
	return g;
}

/*
 * run_parallel - the destinations in child processes, max_parallel at
 * once, each in a process group of its own.  No worker starts once the
 * budget is used up; one still alive RUN_GRACE after it (its own waits
 * have all ended by then) is killed with its group: its delivery child,
 * which runs as a user and may be stopped, too.
 */
static void
run_parallel(const struct conf *c, struct dns *dns, const struct dgroup *g,
    size_t ng, int forced, int dlock, int pfd[2], struct dstats *st)
{
	pid_t *pids = xmalloc(ng * sizeof(*pids));
	size_t start, k, running = 0;
	int killed = 0;
	pid_t pid;

	fflush(stderr);
	for (start = 0; start < ng || running > 0;) {
		if (start < ng && run_over()) {
			for (; start < ng; start++)
				st->left += (int)g[start].n;
			continue;
		}
		if (start < ng && running < (size_t)c->max_parallel) {
			pid = fork();
			if (pid == 0) {
				close(pfd[0]);
				/* Its own group, to be killed whole; still
				 * writing -v output to the terminal (tostop). */
				setpgid(0, 0);
				signal(SIGTTOU, SIG_IGN);
				worker_child(c, dns, g[start].jobs, g[start].n,
				    forced, dlock, pfd[1]);
			}
			if (pid < 0)
				worker(c, dns, g[start].jobs, g[start].n, forced,
				    dlock, st);
			else {
				setpgid(pid, pid);
				pids[running++] = pid;
			}
			start++;
			continue;
		}
		/* Read the figures as they come: a full pipe would block
		 * the children that are exiting. */
		drain(pfd[0], st);
		pid = waitpid(-1, NULL, WNOHANG);
		if (pid > 0) {
			for (k = 0; k < running && pids[k] != pid; k++)
				;
			if (k < running)
				pids[k] = pids[--running];
		} else if (pid < 0)
			running = 0;
		else if (!killed && run_end > 0 &&
		    now_ms() > run_end + RUN_GRACE * 1000) {
			for (k = 0; k < running; k++) {
				logmsg(LOG_WARNING, "worker %ld still busy after the "
				    "queue run's time (queue_run_time); killed",
				    (long)pids[k]);
				kill(-pids[k], SIGKILL);
			}
			killed = 1;	/* once: then they are reaped */
		} else {
			struct pollfd p = { pfd[0], POLLIN, 0 };

			poll(&p, 1, 50);
		}
	}
	free(pids);
}

/*
 * run - one pass over ids: make the jobs, then run the destinations,
 * in child processes when there are several.  dlock: take destination
 * locks (a queue run).
 */
static void
run(const struct conf *c, const struct strlist *ids, const struct qfilter *f,
    int force, int dlock, struct dstats *st)
{
	struct strlist names;
	struct job *jobs = NULL;
	struct dgroup *g = NULL;
	size_t nj = 0, ng, i;
	struct result res;
	struct rtext t;
	struct dns *dns = NULL;
	int pfd[2] = { -1, -1 };
	int forced = force || (f && f->kind);

	strlist_init(&names);
	make_jobs(c, ids, f, forced, &names, &jobs, &nj);
	if (nj == 0)
		goto out;
	qsort(jobs, nj, sizeof(*jobs), jobcmp);
	dns = dns_new(c->dns_server, c->connect_timeout, &res);
	if (dns == NULL) {
		logmsg(LOG_ERR, "%s", result_str(&res, &t));
		goto out;
	}
	/* One destination runs here, several in children. */
	g = dest_order(c, jobs, nj, &ng);
	if (ng == 1 || c->max_parallel == 1 || pipe2(pfd, O_CLOEXEC) < 0 ||
	    fcntl(pfd[0], F_SETFL, O_NONBLOCK) < 0) {
		for (i = 0; i < ng; i++)
			worker(c, dns, g[i].jobs, g[i].n, forced, dlock, st);
		goto out;
	}
	run_parallel(c, dns, g, ng, forced, dlock, pfd, st);
	close(pfd[1]);
	pfd[1] = -1;
	drain(pfd[0], st);
out:
	if (pfd[0] >= 0)
		close(pfd[0]);
	if (pfd[1] >= 0)
		close(pfd[1]);
	if (dns)
		dns_free(dns);
	strlist_free(&names);
	free(g);
	free(jobs);
}

/* deliver_ids - a run over ids, then a pass over the reports it queued
 * (counted in rst), within the budget run_begin started */
static void
deliver_ids(const struct conf *c, const struct strlist *ids,
    const struct qfilter *f, int force, int dlock, struct dstats *st,
    struct dstats *rst)
{
	struct strlist made;

	strlist_free(&reports);
	strlist_init(&reports);
	run(c, ids, f, force, dlock, st);
	made = reports;
	strlist_init(&reports);
	if (made.n > 0)
		run(c, &made, NULL, 1, dlock, rst);
	strlist_free(&made);
	/* Reports about reports are never made; nothing is left over. */
	strlist_free(&reports);
	strlist_init(&reports);
}

int
deliver_message(const struct conf *c, const char *id, struct dstats *st)
{
	struct strlist ids;
	struct dstats rst;

	memset(&rst, 0, sizeof(rst));
	strlist_init(&ids);
	strlist_add(&ids, id);
	run_begin(c);
	deliver_ids(c, &ids, NULL, 1, 0, st, &rst);
	strlist_free(&ids);
	return 0;
}

/*
 * deliver_queue - -q.  The run that gets queue_dir/lock sweeps, and at
 * its end writes metrics_file (one writer at a time); a run
 * that overlaps it (the first is slow, or stopped) still runs, and
 * leaves the destinations the other is working on to it (destination
 * locks): every run ends within its budget, and none waits for another.
 */
int
deliver_queue(const struct conf *c, const struct qfilter *f,
    struct dstats *st, struct result *res)
{
	struct strlist ids;
	long long t0 = now_ms();
	int lfd, locked;

	strlist_init(&ids);
	if ((lfd = queue_shared(c, "lock", res)) < 0)
		return -1;
	run_begin(c);
	if ((locked = flock(lfd, LOCK_EX | LOCK_NB) == 0)) {
		queue_sweep(c, time(NULL));
		queue_release(c);
	} else
		vlog("another queue run is active: this one leaves it the "
		    "destinations it is working on");
	if (queue_list(c, &ids, res) < 0) {
		close(lfd);
		return -1;
	}
	deliver_ids(c, &ids, f, 0, 1, st, st);
	strlist_free(&ids);
	/* The figures are those of the whole queue's runs: a -qI, -qR or -qS
	 * flush of a few messages does not replace them. */
	if (locked && (f == NULL || f->kind == 0))
		metrics_run(c, st, now_ms() - t0);
	close(lfd);
	return 0;
}
