/*
 * metrics.c - the queue's state and the last queue run's figures in the
 * Prometheus text exposition format (version 0.0.4): --metrics prints
 * the queue's part, and with metrics_file every -q writes both parts
 * for node_exporter's textfile collector.
 *
 * Format: for each family a HELP and a TYPE line, then its samples,
 * "name{label="value"} number"; every name starts with mxsend_.  All are
 * gauges: the file is a snapshot, replaced by each run, so the run's
 * figures are those of the last run, not totals.  Label values are
 * state and reason words of our own (reason_name), which need no
 * escaping.
 *
 * The file: written as PATH.tmp in PATH's directory (a stale one is
 * removed first; never opened through a symbolic link), then renamed
 * over PATH, so the collector never reads half a file.  Mode 0644
 * whatever the umask: the collector runs as another user, and the
 * figures say nothing about whose mail is queued.  No fsync: a file
 * lost in a crash is rewritten by the next run.  Any failure is logged
 * and leaves delivery and the exit code alone.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "mxsend.h"

static const char *const qs_word[QS_COUNT] = { "pending", "failed", "held" };

/* family - the HELP and TYPE lines of a gauge */
static void
family(FILE *out, const char *name, const char *help)
{
	fprintf(out, "# HELP mxsend_%s %s\n# TYPE mxsend_%s gauge\n", name,
	    help, name);
}

/* by_state - a family with one sample per state */
static void
by_state(FILE *out, const char *name, const char *help, const size_t *n)
{
	int k;

	family(out, name, help);
	for (k = 0; k < QS_COUNT; k++)
		fprintf(out, "mxsend_%s{state=\"%s\"} %zu\n", name, qs_word[k],
		    n[k]);
}

/* print_queue - the queue's families */
static void
print_queue(FILE *out, const struct qstate *s)
{
	int w;

	by_state(out, "queue_messages", "Messages not yet done with, by "
	    "state: held, else pending (a recipient still to be tried), "
	    "else failed (failures whose report is not queued yet).",
	    s->msgs);
	by_state(out, "queue_recipients", "Recipients not yet done with, by "
	    "state (held: in a held message).", s->rcpts);
	family(out, "queue_recipients_by_reason", "Recipients still to be "
	    "tried, by the reason of their last error.");
	for (w = 0; w < R_COUNT; w++)
		if (s->by_reason[w])
			fprintf(out, "mxsend_queue_recipients_by_reason"
			    "{reason=\"%s\"} %zu\n", reason_name(w),
			    s->by_reason[w]);
	family(out, "queue_oldest_message_age_seconds", "Age of the oldest "
	    "message not yet done with, 0 when there is none.");
	fprintf(out, "mxsend_queue_oldest_message_age_seconds %ld\n",
	    s->oldest);
	family(out, "queue_bytes", "Size of the messages not yet done with.");
	fprintf(out, "mxsend_queue_bytes %lld\n", s->bytes);
	family(out, "queue_unreadable_envelopes", "Messages whose envelope "
	    "cannot be read: neither delivered nor bounced until repaired.");
	fprintf(out, "mxsend_queue_unreadable_envelopes %zu\n", s->unreadable);
}

/* print_run - the last run's families */
static void
print_run(FILE *out, const struct dstats *st, long long ms)
{
	family(out, "last_run_timestamp_seconds", "When the last queue run "
	    "ended.");
	fprintf(out, "mxsend_last_run_timestamp_seconds %lld\n",
	    (long long)time(NULL));
	family(out, "last_run_duration_seconds", "How long the last queue "
	    "run took.");
	fprintf(out, "mxsend_last_run_duration_seconds %lld.%03lld\n",
	    ms / 1000, ms % 1000);
	family(out, "last_run_messages_tried", "Messages the last queue run "
	    "tried.");
	fprintf(out, "mxsend_last_run_messages_tried %d\n", st->messages);
	family(out, "last_run_recipients", "Recipients of the last queue "
	    "run, by outcome.");
	fprintf(out, "mxsend_last_run_recipients{outcome=\"delivered\"} %d\n"
	    "mxsend_last_run_recipients{outcome=\"deferred\"} %d\n"
	    "mxsend_last_run_recipients{outcome=\"failed\"} %d\n", st->done,
	    st->deferred, st->failed);
	family(out, "last_run_connections", "SMTP connections the last queue "
	    "run opened.");
	fprintf(out, "mxsend_last_run_connections %d\n", st->connections);
	family(out, "last_run_jobs_left", "Deliveries the last queue run left "
	    "for the next (out of time, or locked by another process).");
	fprintf(out, "mxsend_last_run_jobs_left %d\n", st->left);
}

int
metrics_print(const struct conf *c, FILE *out, struct result *res)
{
	struct qstate s;

	if (mailq_state(c, &s, res) < 0)
		return -1;
	print_queue(out, &s);
	return 0;
}

/* metrics_fail - a metrics_file error: syslog, and stderr */
static void __attribute__((format(printf, 1, 2)))
metrics_fail(const char *fmt, ...)
{
	char text[1200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	logmsg(LOG_ERR, "%s", text);
	if (!verbose)
		warnx_("%s", text);
}

void
metrics_run(const struct conf *c, const struct dstats *st, long long ms)
{
	char tmp[sizeof(c->metrics_file) + 8];
	struct qstate s;
	struct result res;
	struct rtext t;
	FILE *out = NULL;
	int fd = -1, bad;

	if (c->metrics_file[0] == '\0')
		return;
	if (mailq_state(c, &s, &res) < 0) {
		metrics_fail("metrics_file %s not written: %s", c->metrics_file,
		    result_str(&res, &t));
		return;
	}
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", c->metrics_file) >=
	    sizeof(tmp)) {
		metrics_fail("metrics_file %s: too long", c->metrics_file);
		return;
	}
	(void)unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0644)) < 0 || fchmod(fd, 0644) < 0 ||
	    (out = fdopen(fd, "w")) == NULL) {
		metrics_fail("cannot write metrics_file %s: %s", tmp,
		    strerror(errno));
		goto out;
	}
	fd = -1;
	errno = 0;	/* a failed write may leave none (ferror) */
	print_queue(out, &s);
	print_run(out, st, ms);
	bad = ferror(out);
	if (fclose(out) != 0 || bad) {
		out = NULL;
		metrics_fail("cannot write metrics_file %s: %s", tmp,
		    strerror(errno ? errno : EIO));
		goto out;
	}
	out = NULL;
	if (rename(tmp, c->metrics_file) < 0) {
		metrics_fail("cannot rename %s to %s: %s", tmp, c->metrics_file,
		    strerror(errno));
		goto out;
	}
	tmp[0] = '\0';
out:
	if (out)
		fclose(out);
	if (fd >= 0)
		close(fd);
	if (tmp[0])
		(void)unlink(tmp);
}
