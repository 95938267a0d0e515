/*
 * submit.c - one message from an input stream into the queue: the intake
 * shared by the command line (-bm, -t) and the SMTP server (-bs).
 *
 * The header block is read line by line (LF or CRLF) into msg.c's parser,
 * fixed up, and written to the queue file with CRLF line ends after a
 * Received: field naming the submitter's uid (trace_field); the body is
 * streamed after it, never held in memory.  Body lines over 998 octets are
 * broken by inserting CRLF SPACE, as Postfix's smtp_line_length_limit
 * does; header lines over 998 octets are folded at a space (add_folded).
 * A NUL byte anywhere, a header line too long that has no space, or a
 * bad address refuse the whole message, and nothing is queued.
 *
 * How the input ends:
 *   command line   at end of input; without -i also at a line holding a
 *                  single "." (the rest of the input is then not read).
 *   SMTP DATA      only at a line holding a single "." (RFC 5321 4.1.1.4);
 *                  the leading dot of every other line is removed (4.5.2).
 *                  End of input before it means the client went away and
 *                  nothing is queued.  When the message is refused, the
 *                  rest of the data is read up to the final "." so the
 *                  session can go on; the reader is left at the first
 *                  octet after it, for the next command.
 *
 * Security: every address from the command line, an SMTP command or the
 * headers is checked (no control characters, valid syntax) before it can
 * reach the queue or the wire.
 *
 * What one user may put into the queue (submit_admit).  Through the
 * setgid install every local user can write the spool, so one of them
 * could fill it and every other submission would fail.  A submitter
 * whose real uid is not 0 is held to:
 *   user_queue_messages  messages owned by its uid (queue files carry the
 *                        submitter's uid): committed (ID.msg), held
 *                        (ID.hold) and being written (tmp/ID.msg);
 *   user_queue_size      their octets, this message's included;
 *   queue_min_free       free octets of the queue's file system (f_bavail)
 *                        below which only root submits.
 * Each is checked before the message is read (what is queued already)
 * and again, with the message's own size, once it is written and before
 * it is committed; a refusal removes the temporary file and leaves what
 * is queued alone.  Since the messages being written count, concurrent
 * submissions of one user see each other: each counts the others' files
 * in tmp/ (the second check leaves out its own), so they never commit
 * more than the limits together, and a submission left waiting for its
 * input holds a place in the user's quota, not an uncounted file.  Under
 * contention this errs towards refusing: two submissions that each see
 * the other may both be refused where one alone would have passed, and
 * the first check counts what others have written so far, not what they
 * will commit.  Root is never held: cron's mail and the reports of
 * queue runs must get through.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "mxsend.h"

/* Break body lines longer than this (RFC 5322 2.1.1), one less when the
 * line starts with a dot that SMTP will double. */
#define BODY_LINE_MAX LINE_MAX_OCTETS

/* rd_init - a reader of fd; timeout seconds per read (0: none) */
void
rd_init(struct reader *r, int fd, long timeout)
{
	memset(r, 0, sizeof(*r));
	r->fd = fd;
	r->timeout = timeout;
}

/* rd_fill - replace the buffer with the next read: 1, 0 at end of input,
 * -1 on error (errno; ETIMEDOUT when no input came within the timeout) */
int
rd_fill(struct reader *r)
{
	ssize_t n;

	if (r->eof)
		return 0;
	if (r->before_wait)
		r->before_wait(r->arg);
	for (;;) {
		if (r->timeout > 0) {
			int k = wait_fd(r->fd, POLLIN, deadline_in(r->timeout));

			if (k < 0)
				return -1;
			if (k == 0) {
				errno = ETIMEDOUT;
				return -1;
			}
		}
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
 * its line end, is left unread.  A last line without a line end is
 * returned as a line.  r->crlf says whether the line ended in CRLF.
 */
int
rd_line(struct reader *r, struct buf *line, size_t max)
{
	int got = 0;

	buf_reset(line);
	r->crlf = 0;
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
			r->crlf = line->len > 0 && line->p[line->len - 1] == '\r';
			if (r->crlf)
				line->p[--line->len] = '\0';
			if (line->len > max) {
				r->off--;	/* the line end stays unread */
				return -2;
			}
			return 1;
		}
	}
}

/*
 * rd_skip_line - read past the end of the current line.  Returns 1, 0 at
 * end of input, -1 on a read error.
 */
int
rd_skip_line(struct reader *r)
{
	for (;;) {
		char *nl;

		if (r->off == r->len) {
			int f = rd_fill(r);

			if (f <= 0)
				return f;
		}
		nl = memchr(r->buf + r->off, '\n', r->len - r->off);
		if (nl) {
			r->off = (size_t)(nl - r->buf) + 1;
			return 1;
		}
		r->off = r->len;
	}
}

/* The body as it streams into the queue file. */
struct body {
	struct qfile *q;
	long long max;		/* max_message_size, 0: none */
	int iflag;		/* a "." line is data */
	int smtp;		/* SMTP: "." ends, other leading dots go */
	int bol, dot, dot_cr, skip_lf, done, first_dot;
	int crlf_bol;		/* SMTP: this line began after a CRLF */
	size_t linelen;
	int eight;
	int nul, toobig;
};

static int
body_out(struct body *b, const char *p, size_t n, struct result *res)
{
	if (b->max > 0 && (long long)b->q->size + (long long)n > b->max) {
		b->toobig = 1;
		return -1;
	}
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

/*
 * body_feed - a block of body input: CRLF or LF (or a lone CR) line ends
 * become CRLF; dot lines and long lines are handled.  Returns the octets
 * taken (all of them, or up to the end of the final "." line), or -1 on
 * error: then *used is where the error was found.
 *
 * SMTP data ends only at CRLF "." CRLF (RFC 5321 4.1.1.4): a "." line
 * after a bare LF or CR, or ended by one, is a line holding a dot.  So
 * what ends the data here is what ends it for a strict server, and no
 * second message can be smuggled inside the first (SMTP smuggling).
 */
static long
body_feed(struct body *b, const char *p, size_t n, size_t *used,
    struct result *res)
{
	size_t i, start = 0;

#define FLUSH_RUN() do { if (i > start && body_out(b, p + start, \
	i - start, res) < 0) goto fail; } while (0)
	for (i = 0; i < n && !b->done; i++) {
		unsigned char c = (unsigned char)p[i];

		if (b->dot_cr) {
			/* SMTP: a line "." and a CR. */
			if (c == '\n' && b->crlf_bol) {
				b->dot_cr = 0;
				b->done = 1;
				i++;
				break;
			}
			if (body_out(b, ".\r\n", 3, res) < 0)
				goto fail;
			b->dot_cr = 0;
			b->bol = 1;
			b->linelen = 0;
			b->crlf_bol = c == '\n';
			start = i + (c == '\n');
			if (c == '\n')
				continue;
		}
		if (b->skip_lf) {
			b->skip_lf = 0;
			if (c == '\n') {
				b->crlf_bol = 1;
				start = i + 1;
				continue;
			}
		}
		if (c == '\r' || c == '\n') {
			FLUSH_RUN();
			if (b->smtp && b->dot) {
				if (c == '\r') {
					b->dot = 0;
					b->dot_cr = 1;
					start = i + 1;
					continue;
				}
				/* "." and a bare LF: a line holding a dot. */
				if (body_out(b, ".", 1, res) < 0)
					goto fail;
				b->dot = 0;
			}
			if (body_eol(b, res) < 0)
				goto fail;
			b->skip_lf = c == '\r';
			b->crlf_bol = 0;
			start = i + 1;
			continue;
		}
		if (c == 0) {
			b->nul = 1;
			goto fail;
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
			/* SMTP drops the leading dot (unstuffing); the
			 * command line keeps it. */
			b->dot = 0;
			b->linelen = b->smtp ? 0 : 1;
			b->first_dot = b->smtp ? c == '.' : 1;
			if (!b->smtp && body_out(b, ".", 1, res) < 0)
				goto fail;
		}
		if (++b->linelen > (size_t)(BODY_LINE_MAX - b->first_dot)) {
			/* Break the line as Postfix does: CRLF SPACE. */
			FLUSH_RUN();
			if (body_out(b, "\r\n ", 3, res) < 0)
				goto fail;
			start = i;
			b->linelen = 2;
			b->first_dot = 0;
		}
	}
	if (!b->done)
		FLUSH_RUN();
#undef FLUSH_RUN
	*used = i;
	return (long)i;
fail:
	*used = i;
	return -1;
}

/* body_end - end of input: finish the last line */
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

/* Where the reader is in the data, for drain. */
enum dstate {
	DR_MID,		/* inside a line, or at one not begun after CRLF */
	DR_BOL,		/* at a line begun after CRLF */
	DR_DOT,		/* such a line holds "." so far */
	DR_DOTCR,	/* ... and a CR */
	DR_CR		/* a CR ended some other line */
};

/* body_state - where body_feed stopped, for drain */
static enum dstate
body_state(const struct body *b)
{
	if (b->dot_cr)
		return b->crlf_bol ? DR_DOTCR : DR_CR;
	if (b->skip_lf)
		return DR_CR;
	if (b->dot)
		return b->crlf_bol ? DR_DOT : DR_MID;
	return b->bol && b->crlf_bol ? DR_BOL : DR_MID;
}

/*
 * drain - SMTP: read and drop the rest of the data up to and including
 * the CRLF "." CRLF that ends it.  Returns 1, 0 at end of input, -1 on a
 * read error.
 */
static int
drain(struct reader *r, enum dstate st)
{
	for (;;) {
		if (r->off == r->len) {
			int f = rd_fill(r);

			if (f <= 0)
				return f;
		}
		while (r->off < r->len) {
			char c = r->buf[r->off++];

			if (c == '\n' && st == DR_DOTCR)
				return 1;
			if (c == '\r')
				st = st == DR_DOT ? DR_DOTCR : DR_CR;
			else if (c == '\n')
				st = st == DR_CR ? DR_BOL : DR_MID;
			else
				st = st == DR_BOL && c == '.' ? DR_DOT : DR_MID;
		}
	}
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

/*
 * add_folded - a header line over LINE_MAX_OCTETS (PHP's mail() writes
 * a To: with fifty recipients on one line), folded as RFC 5322 2.2.3
 * allows: CRLF inserted before a space or tab, which changes nothing
 * once unfolded.  Each piece is cut at the last space within 78 octets
 * (RFC 5322 2.1.1), or the first one after; the field name stays whole.  Returns
 * header_add_line's result, or -1 (err set) when more than
 * LINE_MAX_OCTETS octets have no space or tab to fold at.
 */
static int
add_folded(struct header *h, const char *p, size_t len, char *err,
    size_t errlen)
{
	size_t start = 0, lo, k, cut, end = len;
	int r;

	/* A field's first piece keeps "Name:"; a continuation starts
	 * with its own space; no piece is only spaces. */
	lo = p[0] == ' ' || p[0] == '\t' ? 0 : strcspn(p, ":");
	while (end > 0 && (p[end - 1] == ' ' || p[end - 1] == '\t'))
		end--;
	while (len - start > 78) {
		for (cut = 0, k = lo + 1; k < end && k - start <= LINE_MAX_OCTETS;
		    k++) {
			if (p[k] != ' ' && p[k] != '\t')
				continue;
			if (cut == 0 || k - start <= 78)
				cut = k;
			if (k - start > 78)
				break;
		}
		if (cut == 0 && len - start > LINE_MAX_OCTETS) {
			snprintf(err, errlen, "header line too long (over %d "
			    "octets) and no space to fold it at",
			    LINE_MAX_OCTETS);
			return -1;
		}
		if (cut == 0)
			break;
		if ((r = header_add_line(h, p + start, cut - start, err,
		    errlen)) != 0)
			return r;
		start = lo = cut;
	}
	return header_add_line(h, p + start, len - start, err, errlen);
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

/*
 * submit_sender - the envelope sender from -f or MAIL FROM: "<>" or ""
 * is the null sender, "<addr>" or "addr" is checked and qualified.
 * Sets e->sender; returns 0 or -1 with err set.
 */
int
submit_sender(const struct conf *c, const char *text, struct envelope *e,
    char *err, size_t errlen)
{
	char q[ADDR_MAX + HOST_MAX + 2], why[200];
	char *copy = xstrdup(text), *a;
	int rc = -1;

	a = strip_angle(copy);
	if (addr_check(a, 1, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s", why);
		goto out;
	}
	if (addr_qualify(a, c->qualify_domain, q, sizeof(q)) < 0 ||
	    strlen(q) >= ADDR_MAX) {
		snprintf(err, errlen, "address too long");
		goto out;
	}
	free(e->sender);
	e->sender = xstrdup(q);
	rc = 0;
out:
	free(copy);
	return rc;
}

/*
 * submit_rcpt - check, qualify and add one recipient ("<addr>" or
 * "addr"), skipping duplicates.  Returns 0, -1 (err: "what: reason") for a bad address,
 * -2 when the envelope is full.
 */
int
submit_rcpt(const struct conf *c, struct envelope *e, const char *addr,
    const char *what, char *err, size_t errlen)
{
	char q[ADDR_MAX + HOST_MAX + 2], why[200];
	char *copy = xstrdup(addr), *a = strip_angle(copy);
	size_t i;
	int rc = -1;

	if (addr_check(a, 0, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s: %s", what, why);
		goto out;
	}
	if (addr_qualify(a, c->qualify_domain, q, sizeof(q)) < 0 ||
	    strlen(q) >= ADDR_MAX) {
		snprintf(err, errlen, "%s: address too long", what);
		goto out;
	}
	rc = 0;
	for (i = 0; i < e->nr; i++)
		if (strcasecmp(e->r[i].addr, q) == 0)
			goto out;
	if (env_add_rcpt(e, q) < 0) {
		snprintf(err, errlen, "too many recipients (limit %d)", RCPT_MAX);
		rc = -2;
	}
out:
	free(copy);
	return rc;
}

/*
 * submit_rcpt_list - every address of an address list (a command line
 * argument may hold several, comma-separated).  Returns 0 or -1 with err
 * set.
 */
int
submit_rcpt_list(const struct conf *c, struct envelope *e, const char *text,
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
		rc = submit_rcpt(c, e, l.v[i], what, err, errlen) < 0 ? -1 : 0;
	strlist_free(&l);
	return rc;
}

/* alias_failed - r failed for good: the aliases say why */
static void
alias_failed(struct rcpt *r, const char *why)
{
	struct result res;

	result_set(&res, OUT_PERM, R_ALIAS, "%s", why);
	r->state = RCPT_FAILED;
	free(r->res);
	r->res = result_dup(&res);
}

/* add_unique - a recipient once; with why, already failed for that
 * reason.  0, or -1 when the envelope is full. */
static int
add_unique(struct envelope *e, const char *addr, const char *why)
{
	size_t i;

	for (i = 0; i < e->nr; i++)
		if (strcasecmp(e->r[i].addr, addr) == 0)
			return 0;
	if (env_add_rcpt(e, addr) < 0)
		return -1;
	if (why)
		alias_failed(&e->r[e->nr - 1], why);
	return 0;
}

/*
 * load_aliases - the aliases table, read with the submitter's own group:
 * installed setgid, the effective gid is the queue's group, which may
 * read an aliases file (or an :include: file) the submitter may not; so
 * it is set to the real gid around the load and taken back after (the
 * saved set-group-ID allows both).  *denied as aliases_load_denied
 * says.  NULL with errs saying why, also when the group cannot be
 * dropped or taken back.
 */
static struct aliases *
load_aliases(const struct conf *c, struct strlist *errs, int *denied)
{
	gid_t keep = getegid(), real = getgid();
	struct aliases *ta;
	char why[200];

	*denied = 0;
	if (keep != real && setegid(real) < 0) {
		snprintf(why, sizeof(why), "cannot drop the group to read "
		    "%.100s: %s", c->aliases, strerror(errno));
		strlist_add(errs, why);
		return NULL;
	}
	ta = aliases_load_denied(c->aliases, errs, denied);
	if (keep != real && setegid(keep) < 0) {
		snprintf(why, sizeof(why), "cannot take back group %ld: %s",
		    (long)keep, strerror(errno));
		strlist_add(errs, why);
		aliases_free(ta);
		return NULL;
	}
	return ta;
}

/* local_part - the local part of addr into out */
static void
local_part(const char *a, char *out, size_t outlen)
{
	const char *dom = addr_domain(a);
	size_t n = dom ? (size_t)(dom - 1 - a) : strlen(a);

	snprintf(out, outlen, "%.*s", (int)n, a);
}

/* The error a recipient expanded by root's run for a user (privately)
 * gets when it fails: the alias name only, never what a file held or
 * why it could not be read, since the submitter sees it in mailq and
 * the bounce; the log has the details. */
#define PRIVATE_ERR "alias %.64s cannot be expanded; the postmaster has the " \
	"details in the log"

/* private_fail - the generic error of PRIVATE_ERR for a into why, the
 * detail (detail, of the message id) into the log */
static void
private_fail(char *why, size_t whylen, const char *id, const char *a,
    const char *detail)
{
	char local[ADDR_MAX];

	local_part(a, local, sizeof(local));
	logmsg(LOG_WARNING, "%s: <%s>: aliases expanded as root: %s", id, a,
	    detail);
	snprintf(why, whylen, PRIVATE_ERR, local);
}

/*
 * expand_one - local recipient a through ta, the results added to out
 * (each once): remote targets as written, local names qualified with
 * a's domain; a failed or empty expansion adds a itself, failed with
 * the reason.  privid: the expansion is root's for the submitter of
 * message privid (expand_marked), so a failure's reason is logged and
 * a gets only PRIVATE_ERR.  0, or -1 when out is full.
 */
static int
expand_one(struct envelope *out, const struct aliases *ta,
    const struct conf *c, const char *a, const char *privid)
{
	char local[ADDR_MAX], why[ERRTEXT_MAX], q[ADDR_MAX + HOST_MAX + 2];
	const char *dom = addr_domain(a);
	struct strlist t;
	size_t j;
	int failed = 0, full = 0;

	local_part(a, local, sizeof(local));
	strlist_init(&t);
	if (aliases_expand(ta, local, &t, why, sizeof(why)) < 0)
		failed = 1;
	else if (t.n == 0) {
		snprintf(why, sizeof(why), "alias expands to no address");
		failed = 1;
	}
	for (j = 0; j < t.n && !failed; j++) {
		if (strchr(t.v[j], '@'))
			full = add_unique(out, t.v[j], NULL);
		else if (snprintf(q, sizeof(q), "%s@%s", t.v[j], dom ? dom :
		    c->qualify_domain) < (int)ADDR_MAX)
			full = add_unique(out, q, NULL);
		else {
			snprintf(why, sizeof(why), "alias target too long: "
			    "%.40s...", t.v[j]);
			failed = 1;
		}
		if (full)
			break;
	}
	if (failed) {
		if (privid) {
			char detail[ERRTEXT_MAX];

			snprintf(detail, sizeof(detail), "%s", why);
			private_fail(why, sizeof(why), privid, a, detail);
		}
		full = add_unique(out, a, why);
	}
	strlist_free(&t);
	return full;
}

/* take_rcpts - e's recipients become those of from (emptied) */
static void
take_rcpts(struct envelope *e, struct envelope *from)
{
	size_t k;

	for (k = 0; k < e->nr; k++) {
		free(e->r[k].addr);
		free(e->r[k].res);
	}
	free(e->r);
	e->r = from->r;
	e->nr = from->nr;
	e->capr = from->capr;
	from->r = NULL;
	from->nr = from->capr = 0;
}

/*
 * expand_local - recipients at local_domains through the aliases file,
 * when the message is queued (as dma does): the envelope then holds the
 * final recipients, remote ones delivered like any other, local users
 * as user@domain for local delivery.  An alias that cannot be expanded
 * (a loop, a refused target) leaves its recipient failed with the
 * reason, so the sender gets a bounce; so does one that expands to no
 * address at all.
 *
 * The aliases are read with the submitter's group (load_aliases), so
 * that what only the queue's group may read never reaches a user's
 * queue entry (mailq shows every recipient).  A submitter other than
 * root who may not read them (or one of their :include: files) has the
 * local recipients queued as they are, marked unexpanded: a queue run
 * as root expands them (submit_expand_queued).
 *
 * Returns 0, -1 (err set) when the aliases file cannot be read (the
 * caller keeps the message), -2 (err set) when the expansion has more
 * than RCPT_MAX recipients.
 */
static int
expand_local(struct envelope *e, const struct conf *c, char *err,
    size_t errlen)
{
	struct envelope out;
	struct aliases *ta;
	struct strlist errs;
	size_t i;
	int full = 0, denied, rc = 0;

	for (i = 0; i < e->nr && !conf_local(c, e->r[i].addr); i++)
		;
	if (i == e->nr)
		return 0;
	strlist_init(&errs);
	env_init(&out);
	ta = load_aliases(c, &errs, &denied);
	if (denied && getuid() != 0) {
		for (i = 0; i < e->nr; i++)
			e->r[i].unexpanded = conf_local(c, e->r[i].addr);
		logmsg(LOG_INFO, "uid %ld may not read %s: local recipients "
		    "wait for a queue run as root to expand them",
		    (long)getuid(), c->aliases);
		goto out;
	}
	if (ta == NULL) {
		snprintf(err, errlen, "cannot use the aliases file: %.300s",
		    errs.n ? errs.v[errs.n - 1] : c->aliases);
		rc = -1;
		goto out;
	}
	for (i = 0; i < e->nr && full == 0; i++)
		full = conf_local(c, e->r[i].addr) ? expand_one(&out, ta, c,
		    e->r[i].addr, NULL) : add_unique(&out, e->r[i].addr, NULL);
	if (full) {
		snprintf(err, errlen, "too many recipients after alias "
		    "expansion (limit %d)", RCPT_MAX);
		rc = -2;
		goto out;
	}
	/* The expanded list replaces the recipients. */
	take_rcpts(e, &out);
out:
	env_free(&out);
	aliases_free(ta);
	strlist_free(&errs);
	return rc;
}

/* drop_unexpanded - the recipients marked unexpanded leave e (in
 * memory only: a run that may not expand them makes no jobs of them) */
static void
drop_unexpanded(struct envelope *e)
{
	size_t i, k;

	for (i = k = 0; i < e->nr; i++) {
		if (e->r[i].unexpanded) {
			free(e->r[i].addr);
			free(e->r[i].res);
			continue;
		}
		e->r[k++] = e->r[i];
	}
	e->nr = k;
}

/* has_unexpanded - does e hold a recipient marked unexpanded? */
static int
has_unexpanded(const struct envelope *e)
{
	size_t i;

	for (i = 0; i < e->nr; i++)
		if (e->r[i].unexpanded)
			return 1;
	return 0;
}

/*
 * expand_marked - cur's recipients marked unexpanded through ta: the
 * others are kept as they are (first, so that a target already there
 * keeps its state and is not sent twice), the marked ones replaced by
 * their expansion.  More than RCPT_MAX: the marked ones fail (the
 * sender gets a bounce, as at submission).  Every failure here reads
 * PRIVATE_ERR, its reason logged: the files were read with root's
 * rights.
 */
static void
expand_marked(struct envelope *cur, const struct aliases *ta,
    const struct conf *c)
{
	struct envelope out;
	size_t i;
	int full = 0;

	env_init(&out);
	for (i = 0; i < cur->nr && full == 0; i++) {
		const struct rcpt *r = &cur->r[i];

		if (r->unexpanded || env_add_rcpt(&out, r->addr) < 0) {
			full = !r->unexpanded;
			continue;
		}
		out.r[out.nr - 1].state = r->state;
		out.r[out.nr - 1].tries = r->tries;
		out.r[out.nr - 1].next = r->next;
		out.r[out.nr - 1].res = r->res ? result_dup(r->res) : NULL;
	}
	for (i = 0; i < cur->nr && full == 0; i++)
		if (cur->r[i].unexpanded)
			full = expand_one(&out, ta, c, cur->r[i].addr, cur->id);
	if (full) {
		char why[ERRTEXT_MAX], detail[80];

		snprintf(detail, sizeof(detail), "too many recipients after "
		    "alias expansion (limit %d)", RCPT_MAX);
		for (i = 0; i < cur->nr; i++) {
			if (!cur->r[i].unexpanded)
				continue;
			private_fail(why, sizeof(why), cur->id, cur->r[i].addr,
			    detail);
			cur->r[i].unexpanded = 0;
			alias_failed(&cur->r[i], why);
		}
	} else
		take_rcpts(cur, &out);
	env_free(&out);
}

/*
 * expire_marked - cur's recipients marked unexpanded, past
 * queue_lifetime with the aliases not loadable: they fail as any pending
 * recipient then does (the sender gets a bounce), with PRIVATE_ERR as
 * the last error.
 */
static void
expire_marked(struct envelope *cur, const struct conf *c)
{
	char local[ADDR_MAX];
	size_t i;

	for (i = 0; i < cur->nr; i++) {
		struct rcpt *r = &cur->r[i];

		if (!r->unexpanded)
			continue;
		local_part(r->addr, local, sizeof(local));
		logmsg(LOG_WARNING, "%s: to=<%s>, status=expired (aliases "
		    "never loaded)", cur->id, r->addr);
		r->unexpanded = 0;
		alias_failed(r, "");
		snprintf(r->res->text, sizeof(r->res->text), PRIVATE_ERR,
		    local);
		r->res->why_last = R_ALIAS;
		r->res->why = R_EXPIRED;
		r->res->lifetime = c->queue_lifetime;
	}
}

/*
 * submit_expand_queued - before a delivery run makes jobs of e (read
 * without the lock): recipients marked unexpanded (expand_local) are
 * expanded by a run as root, under the message's lock, from the
 * envelope as it is then, and the envelope is rewritten without the
 * marks; e becomes that envelope.  A run that is not root, or that
 * cannot do it now (the message locked elsewhere, the aliases or the
 * queue failing: logged), leaves them in the queue as they are and
 * drops them from e, so no job is made of them; but once the message
 * is past queue_lifetime, root's run that cannot load the aliases fails
 * them (expire_marked), so that the message ends like any other: the
 * failure makes the run's job that reports it.
 */
void
submit_expand_queued(const struct conf *c, struct envelope *e)
{
	struct envelope cur;
	struct aliases *ta = NULL;
	struct strlist errs;
	struct result res;
	struct rtext t;
	enum qstatus q;
	int fd = -1, denied;

	if (!has_unexpanded(e))
		return;
	strlist_init(&errs);
	env_init(&cur);
	if (getuid() != 0 || geteuid() != 0 ||
	    queue_lock(c, e->id, &fd) != Q_OK)
		goto leave;
	if ((q = queue_read_env(c, e->id, fd, &cur, &res)) != Q_OK) {
		if (q == Q_ERROR)
			logmsg(LOG_ERR, "%s: %s", e->id, result_str(&res, &t));
		goto leave;
	}
	if (has_unexpanded(&cur)) {
		if ((ta = load_aliases(c, &errs, &denied)) == NULL) {
			logmsg(LOG_ERR, "%s: cannot expand aliases: %s", e->id,
			    errs.n ? errs.v[errs.n - 1] : c->aliases);
			if (time(NULL) - cur.arrival < c->queue_lifetime)
				goto leave;
			expire_marked(&cur, c);
		} else
			expand_marked(&cur, ta, c);
		if (queue_write_env(c, &cur, &res) < 0) {
			logmsg(LOG_ERR, "%s: %s", e->id, result_str(&res, &t));
			goto leave;
		}
		cur.has_env = 1;
		if (ta)
			logmsg(LOG_INFO, "%s: aliases expanded by a queue run "
			    "as root, %zu recipients", e->id, cur.nr);
	}
	env_free(e);
	*e = cur;
	env_init(&cur);
	goto out;
leave:
	drop_unexpanded(e);
out:
	if (fd >= 0)
		close(fd);
	env_free(&cur);
	aliases_free(ta);
	strlist_free(&errs);
}

/* fail - set the status and the one-line reason */
static enum submit_status
fail(struct subres *sr, enum submit_status st, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * submit_admit - the limits of what a user other than root may queue
 * (see the head of this file): size is the octets of the message about
 * to be committed, 0 before it is read (then what is queued must be
 * below the limits), never negative; self is the ID of its file in tmp/
 * (NULL before it is created), left out of the count.  SUB_OK, or SUB_QUOTA, SUB_RESERVE, SUB_TEMP (the
 * queue could not be looked at) with sr saying why, naming the key.
 */
enum submit_status
submit_admit(const struct conf *c, long long size, const char *self,
    struct subres *sr)
{
	struct result res;
	long long bytes, total, avail, limit;
	long count;
	uid_t uid = getuid();

	memset(sr, 0, sizeof(*sr));
	if (uid == 0)
		return SUB_OK;
	if (queue_space(c, &total, &avail, &res) < 0 ||
	    queue_usage(c, uid, self, &count, &bytes, &res) < 0)
		return fail(sr, SUB_TEMP, 0, "%s", res.text);
	/* This message, read or not, would be one more. */
	if (c->user_queue_messages > 0 && count >= c->user_queue_messages)
		return fail(sr, SUB_QUOTA, 0, "queue quota of uid %ld reached: "
		    "%ld messages queued, the limit is %ld (user_queue_messages)",
		    (long)uid, count, c->user_queue_messages);
	/* (no overflow for any file system size) */
	limit = c->user_queue_size_pct > 0 ? total / 100 * c->user_queue_size_pct +
	    total % 100 * c->user_queue_size_pct / 100 : c->user_queue_size;
	/* bytes, size and limit are >= 0: limit - bytes cannot overflow,
	 * where bytes + size could (a SIZE= announced at MAIL, say) */
	if ((c->user_queue_size > 0 || c->user_queue_size_pct > 0) &&
	    (size > 0 ? size > limit - bytes : bytes >= limit)) {
		char key[40];

		snprintf(key, sizeof(key), c->user_queue_size_pct > 0 ?
		    "user_queue_size %d%%" : "user_queue_size",
		    c->user_queue_size_pct);
		if (size > 0)
			return fail(sr, SUB_QUOTA, 0, "queue quota of uid %ld "
			    "reached: %lld octets queued, this message's %lld "
			    "would pass the limit of %lld (%s)", (long)uid,
			    bytes, size, limit, key);
		return fail(sr, SUB_QUOTA, 0, "queue quota of uid %ld reached: "
		    "%lld octets queued, the limit is %lld (%s)", (long)uid,
		    bytes, limit, key);
	}
	if (c->queue_min_free > 0 && avail < c->queue_min_free)
		return fail(sr, SUB_RESERVE, 0, "queue file system nearly full: "
		    "%lld octets free, %lld are kept for root (queue_min_free)",
		    avail, c->queue_min_free);
	return SUB_OK;
}

static enum submit_status
fail(struct subres *sr, enum submit_status st, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sr->text, sizeof(sr->text), fmt, ap);
	va_end(ap);
	sr->st = st;
	sr->err = err;
	return st;
}

/*
 * trace_field - the Received: field that starts every submitted message,
 * as Postfix's pickup writes it: the submitter's real uid, so that mail
 * from local users can be traced to one of them (RFC 5321 4.4 asks a
 * trace field of whoever puts a message into the mail system).
 *   Received: by HOST (mxsend, from userid N)
 *   	id QUEUEID; DATE
 */
static int
trace_field(struct buf *b, const struct conf *c, const char *id, time_t now)
{
	char date[64];

	if (rfc5322_date(now, date, sizeof(date)) < 0)
		return -1;
	return buf_printf(b, "Received: by %s (mxsend, from userid %ld)\r\n"
	    "\tid %s; %s\r\n", c->hostname, (long)getuid(), id, date);
}

/*
 * submit_message - read one message from rd and queue it for e's sender
 * and recipients (with -t, plus those of the header).  On success e->id
 * is the queue ID and the message is on disk for good.  On failure sr
 * says why and nothing is queued.
 */
enum submit_status
submit_message(const struct conf *c, struct reader *rd, struct envelope *e,
    const struct subopts *so, struct subres *sr)
{
	struct header h;
	struct buf line, hb;
	struct qfile q;
	struct body b;
	struct result res;
	struct fixup fx;
	char err[512];
	const char *hl;
	size_t k, hlen, used;
	int r, have_q = 0, body_started = 0, prev_crlf = 1;
	/* SMTP: where the reader is, should the rest need draining */
	enum dstate dst = DR_BOL;

	header_init(&h);
	buf_init(&line, 0);
	buf_init(&hb, 0);
	memset(&b, 0, sizeof(b));
	memset(sr, 0, sizeof(*sr));

	if ((r = queue_open(c, &res)) < 0) {
		fail(sr, SUB_QUEUE, -r, "cannot create queue file: %s", res.text);
		goto refuse;
	}
	/* (-bs checked this at MAIL already, with the announced SIZE) */
	if (!so->smtp && submit_admit(c, 0, NULL, sr) != SUB_OK)
		goto refuse;
	if ((r = queue_create(c, &q, &res)) < 0) {
		fail(sr, SUB_QUEUE, -r, "cannot create queue file: %s", res.text);
		goto refuse;
	}
	have_q = 1;
	b.q = &q;
	b.max = c->max_message_size;
	b.iflag = so->iflag && !so->smtp;
	b.smtp = so->smtp;
	b.bol = 1;
	b.crlf_bol = 1;

	/* The header block. */
	for (k = 0;; k++) {
		r = rd_line(rd, &line, HEADER_MAX);
		dst = r == 1 && rd->crlf ? DR_BOL : DR_MID;
		if (r == -1) {
			fail(sr, errno == ETIMEDOUT ? SUB_TIMEOUT : SUB_IOERR,
			    errno, "cannot read the message: %s",
			    strerror(errno));
			goto out;
		}
		if (r == -2) {
			if (header_like(&h, line.p, line.len)) {
				fail(sr, SUB_DATA, 0, "header line too long "
				    "(over %d octets)", HEADER_MAX);
				goto refuse;
			}
			/* A long first body line (input without a header):
			 * its rest is still unread. */
			body_started = 2;
			break;
		}
		if (r == 0) {
			if (so->smtp) {
				fail(sr, SUB_EOF, 0, "end of input in the data");
				goto out;
			}
			break;
		}
		/* The end: without -i a "." line; in SMTP only CRLF "."
		 * CRLF (see body_feed). */
		if (!b.iflag && line.len == 1 && line.p[0] == '.' &&
		    (!so->smtp || (prev_crlf && rd->crlf))) {
			b.done = 1;
			break;
		}
		b.crlf_bol = prev_crlf;
		prev_crlf = rd->crlf;
		if (memchr(line.p, '\0', line.len)) {
			fail(sr, SUB_DATA, 0, "message contains a NUL byte");
			goto refuse;
		}
		/* A leading mbox "From " line is not part of the message. */
		if (!so->smtp && k == 0 && line.len >= 5 &&
		    memcmp(line.p, "From ", 5) == 0)
			continue;
		/* SMTP: the line without its stuffed dot; body_feed, which
		 * may get the line, unstuffs on its own. */
		hl = line.p;
		hlen = line.len;
		if (so->smtp && hlen > 1 && hl[0] == '.') {
			hl++;
			hlen--;
		}
		if (hlen <= LINE_MAX_OCTETS)
			r = header_add_line(&h, hl, hlen, err, sizeof(err));
		else if (header_like(&h, hl, hlen))
			r = add_folded(&h, hl, hlen, err, sizeof(err));
		else
			r = 1;		/* a long first body line */
		if (r < 0) {
			fail(sr, SUB_DATA, 0, "%s", err);
			goto refuse;
		}
		if (r == 1) {
			body_started = line.len > 0;
			break;
		}
	}

	/* Where the first body line begins, unless it is the one read. */
	if (body_started != 1)
		b.crlf_bol = prev_crlf;

	if (so->tflag && !so->smtp) {
		struct strlist l;

		strlist_init(&l);
		if (msg_rcpts(&h, &l, err, sizeof(err)) < 0) {
			strlist_free(&l);
			fail(sr, SUB_DATA, 0, "%s", err);
			goto refuse;
		}
		for (r = 0, k = 0; r == 0 && k < l.n; k++)
			r = submit_rcpt(c, e, l.v[k], "invalid recipient in header",
			    err, sizeof(err));
		strlist_free(&l);
		if (r < 0) {
			fail(sr, SUB_DATA, 0, "%s", err);
			goto refuse;
		}
	}

	if (e->nr == 0) {
		fail(sr, SUB_DATA, 0, "no recipients");
		goto refuse;
	}

	memset(&fx, 0, sizeof(fx));
	fx.sender = e->sender;
	fx.fullname = so->fullname;
	fx.user = so->user;
	fx.qualify_domain = c->qualify_domain;
	fx.hostname = c->hostname;
	fx.msgid = q.id;
	fx.now = time(NULL);
	if (msg_fixup(&h, &fx, err, sizeof(err)) < 0) {
		fail(sr, SUB_DATA, 0, "%s", err);
		goto refuse;
	}
	if (trace_field(&hb, c, q.id, fx.now) < 0 ||
	    header_write(&h, &hb) < 0 || buf_add(&hb, "\r\n", 2) < 0) {
		fail(sr, SUB_TEMP, 0, "out of memory");
		goto refuse;
	}
	if (queue_write(&q, hb.p, hb.len, &res) < 0) {
		fail(sr, SUB_TEMP, 0, "%s", res.text);
		goto refuse;
	}
	if (b.max > 0 && (long long)q.size > b.max) {
		fail(sr, SUB_TOOBIG, 0, "message is larger than "
		    "max_message_size (%lld octets)", c->max_message_size);
		goto refuse;
	}

	/* The body, streamed: first the line the header loop read, with
	 * its line end as it was. */
	if (body_started && (body_feed(&b, line.p, line.len, &used, &res) < 0 ||
	    (body_started == 1 && !b.done && body_feed(&b, rd->crlf ? "\r\n" :
	    "\n", rd->crlf ? 2 : 1, &used, &res) < 0))) {
		/* The reader is past that line, or inside it (long line). */
		used = 0;
		b.dot = b.dot_cr = b.skip_lf = 0;
		b.bol = b.crlf_bol = body_started == 1 && rd->crlf;
		goto bodyerr;
	}
	while (!b.done) {
		if (rd->off == rd->len) {
			r = rd_fill(rd);
			if (r < 0) {
				fail(sr, errno == ETIMEDOUT ? SUB_TIMEOUT :
				    SUB_IOERR, errno, "cannot read the message: %s",
				    strerror(errno));
				goto out;
			}
			if (r == 0)
				break;
		}
		r = (int)(body_feed(&b, rd->buf + rd->off, rd->len - rd->off,
		    &used, &res) < 0);
		rd->off += used;
		if (r)
			goto bodyerr;
	}
	if (!b.done && so->smtp) {
		fail(sr, SUB_EOF, 0, "end of input in the data");
		goto out;
	}
	if (body_end(&b, &res) < 0)
		goto bodyerr;

	if ((r = expand_local(e, c, err, sizeof(err))) < 0) {
		fail(sr, r == -2 ? SUB_DATA : SUB_TEMP, 0, "%s", err);
		goto out;
	}
	e->arrival = time(NULL);
	/* 8-bit octets in the header (a raw UTF-8 Subject) need 8BITMIME
	 * as much as those of the body. */
	for (k = 0; k < hb.len && !(hb.p[k] & 0x80); k++)
		;
	e->body8 = b.eight || k < hb.len ? 1 : 0;
	/* With its own size: a message must not take its user past a
	 * limit, nor the disk below the reserve. */
	if (submit_admit(c, (long long)q.size, q.id, sr) != SUB_OK)
		goto out;
	if ((r = queue_commit(c, &q, e, &res)) < 0) {
		fail(sr, SUB_QUEUE, -r, "cannot queue the message: %s", res.text);
		goto out;
	}
	have_q = 0;
	close(q.fd);
	logmsg(LOG_INFO, "%s: from=<%s>, size=%lld, nrcpt=%zu, uid=%ld%s",
	    e->id, e->sender, (long long)e->size, e->nr, (long)getuid(),
	    so->smtp ? ", via -bs" : "");
	vlog("queued as %s", e->id);
	sr->st = SUB_OK;
	goto out;
bodyerr:
	if (b.nul)
		fail(sr, SUB_DATA, 0, "message contains a NUL byte");
	else if (b.toobig)
		fail(sr, SUB_TOOBIG, 0, "message is larger than "
		    "max_message_size (%lld octets)", c->max_message_size);
	else	/* queue_write's text says what it could not do */
		fail(sr, SUB_TEMP, 0, "%s", res.text);
	/* The rest of the data is in the reader from the error on. */
	dst = body_state(&b);
	if (b.done)
		goto out;
refuse:
	/* SMTP: the session goes on after the final "."; the reply to
	 * DATA comes once it is read. */
	if (so->smtp && !b.done) {
		r = drain(rd, dst);
		if (r <= 0)
			fail(sr, r < 0 && errno == ETIMEDOUT ? SUB_TIMEOUT :
			    r < 0 ? SUB_IOERR : SUB_EOF, 0, "%s", r < 0 ?
			    strerror(errno) : "end of input in the data");
	}
out:
	if (have_q)
		queue_abort(&q);
	buf_free(&line);
	buf_free(&hb);
	header_free(&h);
	return sr->st;
}
