/*
 * mailq.c - the queue as people and monitors see it: the sendmail/Postfix
 * listing (-bp, mailq), JSON lines (--queue-json) and a monitoring-plugin
 * check (--check-queue).
 *
 * Listing reads envelopes without taking message locks, so it never
 * holds up a delivery; an envelope replaced while we read is still whole
 * (envelopes are renamed into place).  Text from servers was made
 * printable when it was stored; JSON escapes what JSON requires.
 *
 * Held messages (queue.c, ID.hold: the last attempt could not be
 * recorded, so nothing is delivered until -q can write the envelope
 * again) are listed with the others, in arrival order, and say so.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mxsend.h"

#define MAILQ_HEAD "-Queue ID-------- --Size-- ----Arrival Time---- " \
	"-Sender/Recipient-------\n"

static const char *const state_word[] = {
	"pending", "done", "failed", "bounced"
};

#define HELD_WHY "held: the last attempt could not be recorded"

/* Every message of the queue, oldest first, and which are held. */
struct qlist {
	struct strlist ids;
	char *held;		/* held[i]: ids.v[i] is held back */
};

/* qlist_get - the committed and the held messages, merged by ID (IDs
 * sort by arrival); 0, or -1 with res set */
static int
qlist_get(const struct conf *c, struct qlist *l, struct result *res)
{
	struct strlist m, h;
	size_t i = 0, j = 0;
	int rc = -1, take;

	strlist_init(&m);
	strlist_init(&h);
	strlist_init(&l->ids);
	l->held = NULL;
	if (queue_list(c, &m, res) < 0 || queue_list_held(c, &h, res) < 0)
		goto out;
	l->held = xmalloc(m.n + h.n + 1);
	while (i < m.n || j < h.n) {
		take = i == m.n || (j < h.n && strcmp(h.v[j], m.v[i]) < 0);
		l->held[l->ids.n] = (char)take;
		if (strlist_add(&l->ids, take ? h.v[j++] : m.v[i++]) < 0) {
			result_oom(res);
			goto out;
		}
	}
	rc = 0;
out:
	strlist_free(&m);
	strlist_free(&h);
	return rc;
}

static void
qlist_free(struct qlist *l)
{
	strlist_free(&l->ids);
	free(l->held);
	l->held = NULL;
}

/* listed - recipients a listing shows: not yet done with */
static int
listed(const struct rcpt *r)
{
	return r->state == RCPT_PENDING || r->state == RCPT_FAILED;
}

int
mailq_print(const struct conf *c, FILE *out, struct result *res)
{
	struct qlist l;
	struct envelope e;
	struct result r;
	struct rtext t;
	enum qstatus q;
	long long total = 0;
	char when[32];
	struct tm tm;
	size_t i, j, n = 0;

	if (qlist_get(c, &l, res) < 0) {
		qlist_free(&l);
		return -1;
	}
	for (i = 0; i < l.ids.n; i++) {
		if ((q = queue_read_env(c, l.ids.v[i], -1, &e, &r)) != Q_OK) {
			if (q == Q_GONE)
				continue;	/* delivered meanwhile */
			if (n++ == 0)
				fprintf(out, "%s", MAILQ_HEAD);
			fprintf(out, "%-17s (envelope unreadable: %s)\n%s\n",
			    l.ids.v[i], result_str(&r, &t), l.held[i] ?
			    "(" HELD_WHY ")\n" : "");
			continue;
		}
		if (n++ == 0)
			fprintf(out, "%s", MAILQ_HEAD);
		if (localtime_r(&e.arrival, &tm) == NULL ||
		    strftime(when, sizeof(when), "%a %b %e %H:%M:%S", &tm) == 0)
			snprintf(when, sizeof(when), "%-20lld",
			    (long long)e.arrival);
		fprintf(out, "%-17s %8lld %s  %s\n", e.id, (long long)e.size,
		    when, e.sender[0] ? e.sender : "MAILER-DAEMON");
		if (l.held[i])
			fprintf(out, "(%s)\n", HELD_WHY);
		/* env_load bounds each size; the sum saturates. */
		total = e.size > LLONG_MAX - total ? LLONG_MAX : total + e.size;
		for (j = 0; j < e.nr; j++) {
			if (!listed(&e.r[j]))
				continue;
			if (e.r[j].res) {
				result_text(e.r[j].res, e.r[j].addr, t.s,
				    sizeof(t.s));
				fprintf(out, "(%s%s)\n", e.r[j].state == RCPT_FAILED ?
				    "failed: " : "", t.s);
			}
			fprintf(out, "%48s%s\n", "", e.r[j].addr);
		}
		fprintf(out, "\n");
		env_free(&e);
	}
	if (n == 0)
		fprintf(out, "Mail queue is empty\n");
	else
		fprintf(out, "-- %lld Kbytes in %zu Request%s.\n",
		    total / 1024 + (total % 1024 != 0), n, n == 1 ? "" : "s");
	qlist_free(&l);
	return 0;
}

/* json_str - s as a JSON string */
static void
json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(out, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(out, "\\u%04x", ch);
		else
			fputc(ch, out);
	}
	fputc('"', out);
}

/* json_result - the value of "delay_reason" (the sentence), then the
 * facts of the recipient's last attempt as "result" */
static void
json_result(FILE *out, const struct result *r, const char *addr)
{
	char t[ERRTEXT_MAX];

	if (r == NULL) {
		fprintf(out, "null,\"result\":null");
		return;
	}
	result_text(r, addr, t, sizeof(t));
	json_str(out, t);
	fprintf(out, ",\"result\":{\"outcome\":\"%s\",\"reason\":\"%s\"",
	    outcome_name(r->o), reason_name(r->why));
	if (r->why_last != R_NONE)
		fprintf(out, ",\"last_reason\":\"%s\"", reason_name(r->why_last));
	if (r->step != STEP_NONE)
		fprintf(out, ",\"step\":\"%s\"", step_name(r->step));
	if (r->code)
		fprintf(out, ",\"code\":%d", r->code);
	if (r->status[0]) {
		fprintf(out, ",\"status\":");
		json_str(out, r->status);
	}
	if (r->host[0]) {
		fprintf(out, ",\"remote_host\":");
		json_str(out, r->host);
	}
	if (r->peer[0]) {
		fprintf(out, ",\"remote_address\":");
		json_str(out, r->peer);
	}
	if (r->err)
		fprintf(out, ",\"errno\":%d", r->err);
	if (r->sending)
		fprintf(out, ",\"sending\":true");
	if (r->size || r->limit)
		fprintf(out, ",\"size\":%lld,\"limit\":%lld", r->size,
		    r->limit);
	if (r->lifetime)
		fprintf(out, ",\"lifetime\":%ld", r->lifetime);
	fprintf(out, ",\"detail\":");
	json_str(out, r->text);
	fprintf(out, "}");
}

int
mailq_json(const struct conf *c, FILE *out, struct result *res)
{
	struct qlist l;
	struct envelope e;
	struct result r;
	struct rtext t;
	enum qstatus q;
	size_t i, j;
	int first;

	if (qlist_get(c, &l, res) < 0) {
		qlist_free(&l);
		return -1;
	}
	for (i = 0; i < l.ids.n; i++) {
		if ((q = queue_read_env(c, l.ids.v[i], -1, &e, &r)) != Q_OK) {
			if (q == Q_ERROR) {
				fprintf(out, "{\"queue_id\":");
				json_str(out, l.ids.v[i]);
				if (l.held[i])
					fprintf(out, ",\"held\":\"%s\"", HELD_WHY);
				fprintf(out, ",\"error\":");
				json_str(out, result_str(&r, &t));
				fprintf(out, "}\n");
			}
			continue;
		}
		fprintf(out, "{\"queue_id\":");
		json_str(out, e.id);
		if (l.held[i])
			fprintf(out, ",\"held\":\"%s\"", HELD_WHY);
		fprintf(out, ",\"arrival_time\":%lld,\"message_size\":%lld,"
		    "\"sender\":", (long long)e.arrival, (long long)e.size);
		json_str(out, e.sender);
		fprintf(out, ",\"recipients\":[");
		for (first = 1, j = 0; j < e.nr; j++) {
			if (!listed(&e.r[j]))
				continue;
			fprintf(out, "%s{\"address\":", first ? "" : ",");
			json_str(out, e.r[j].addr);
			fprintf(out, ",\"state\":\"%s\",\"tries\":%d,"
			    "\"next_attempt\":%lld,\"delay_reason\":",
			    state_word[e.r[j].state], e.r[j].tries,
			    (long long)e.r[j].next);
			json_result(out, e.r[j].res, e.r[j].addr);
			fprintf(out, "}");
			first = 0;
		}
		fprintf(out, "]}\n");
		env_free(&e);
	}
	qlist_free(&l);
	return 0;
}

/* age - "2d3h", "5h12m", "42m10s", "9s" */
static void
age(long s, char *out, size_t outlen)
{
	if (s >= 86400)
		snprintf(out, outlen, "%ldd%ldh", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(out, outlen, "%ldh%ldm", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		snprintf(out, outlen, "%ldm%lds", s / 60, s % 60);
	else
		snprintf(out, outlen, "%lds", s);
}

enum check
mailq_check(const struct conf *c, long warn, long crit, FILE *out)
{
	static const char *const word[] = { "OK", "WARNING", "CRITICAL" };
	struct qlist l;
	struct envelope e;
	struct result r;
	struct rtext t;
	enum qstatus q;
	time_t now = time(NULL), oldest = 0;
	char lasterr[ERRTEXT_MAX] = "", a[32];
	size_t i, j, n = 0, bad = 0, held = 0;
	enum check st = CHECK_OK;

	if (qlist_get(c, &l, &r) < 0) {
		qlist_free(&l);
		fprintf(out, "MXSEND UNKNOWN - %s\n", result_str(&r, &t));
		return CHECK_UNKNOWN;
	}
	for (i = 0; i < l.ids.n; i++) {
		/* Held mail is mail not done with, whatever its envelope
		 * says (a removal that failed holds the message too). */
		int pending = l.held[i];

		if ((q = queue_read_env(c, l.ids.v[i], -1, &e, &r)) != Q_OK) {
			bad += q == Q_ERROR;
			continue;
		}
		held += l.held[i] != 0;
		for (j = 0; j < e.nr; j++)
			if (listed(&e.r[j])) {
				pending = 1;
				/* IDs sort by arrival: the first error seen is
				 * the oldest message's. */
				if (e.r[j].res && lasterr[0] == '\0')
					result_text(e.r[j].res, e.r[j].addr,
					    lasterr, sizeof(lasterr));
			}
		if (pending) {
			if (n++ == 0 || e.arrival < oldest)
				oldest = e.arrival;
		}
		env_free(&e);
	}
	qlist_free(&l);
	if (bad) {
		/* A message nobody can read is never delivered nor bounced. */
		fprintf(out, "MXSEND CRITICAL - %zu message%s with an unreadable "
		    "envelope (see mailq) | messages=%zu unreadable=%zu\n", bad,
		    bad == 1 ? "" : "s", n + bad, bad);
		return CHECK_CRITICAL;
	}
	if (n == 0) {
		fprintf(out, "MXSEND OK - queue empty | messages=0 oldest=0s\n");
		return CHECK_OK;
	}
	if (now - oldest >= crit)
		st = CHECK_CRITICAL;
	else if (now - oldest >= warn || held)
		st = CHECK_WARNING;
	age((long)(now - oldest), a, sizeof(a));
	fprintf(out, "MXSEND %s - %zu message%s queued, oldest %s", word[st], n,
	    n == 1 ? "" : "s", a);
	if (held)
		fprintf(out, "; %zu %s", held, HELD_WHY);
	if (lasterr[0])
		fprintf(out, "; last error: %s", lasterr);
	fprintf(out, " | messages=%zu oldest=%llds", n,
	    (long long)(now - oldest));
	if (held)
		fprintf(out, " held=%zu", held);
	fputc('\n', out);
	return st;
}

/* count_message - one readable envelope into s; held: its message is */
static void
count_message(const struct envelope *e, int held, time_t now,
    struct qstate *s)
{
	enum qstate_kind k, mk = QS_COUNT;
	size_t j;

	for (j = 0; j < e->nr; j++) {
		const struct rcpt *r = &e->r[j];

		if (!listed(r))
			continue;
		k = held ? QS_HELD : r->state == RCPT_PENDING ? QS_PENDING :
		    QS_FAILED;
		s->rcpts[k]++;
		if (mk == QS_COUNT || k < mk)
			mk = k;		/* pending before failed */
		if (r->state == RCPT_PENDING && r->res &&
		    r->res->why < R_COUNT)
			s->by_reason[r->res->why]++;
	}
	/* Held mail is mail not done with, whatever its envelope says. */
	if (held)
		mk = QS_HELD;
	if (mk == QS_COUNT)
		return;		/* done with; its removal is under way */
	s->msgs[mk]++;
	s->bytes = e->size > LLONG_MAX - s->bytes ? LLONG_MAX :
	    s->bytes + e->size;
	if (now - e->arrival > s->oldest)
		s->oldest = (long)(now - e->arrival);
}

int
mailq_state(const struct conf *c, struct qstate *s, struct result *res)
{
	struct qlist l;
	struct envelope e;
	struct result r;
	enum qstatus q;
	time_t now = time(NULL);
	size_t i;

	memset(s, 0, sizeof(*s));
	if (qlist_get(c, &l, res) < 0) {
		qlist_free(&l);
		return -1;
	}
	for (i = 0; i < l.ids.n; i++) {
		if ((q = queue_read_env(c, l.ids.v[i], -1, &e, &r)) != Q_OK) {
			s->unreadable += q == Q_ERROR;
			continue;
		}
		count_message(&e, l.held[i], now, s);
		env_free(&e);
	}
	qlist_free(&l);
	return 0;
}
