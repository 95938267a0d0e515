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

/* fail - set the status and the one-line reason */
static enum submit_status
fail(struct subres *sr, enum submit_status st, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* rd_init - a reader of fd; timeout seconds per read (0: none) */
void
rd_init(struct reader *r, int fd, long timeout)
{
	memset(r, 0, sizeof(*r));
	r->fd = fd;
	r->timeout = timeout;
}

/* rd_fill - replace the buffer with the next read: RD_OK, RD_EOF, or
 * RD_ERR (errno; ETIMEDOUT when no input came within the timeout) */
enum rd_status
rd_fill(struct reader *r)
{
	ssize_t n;

	if (r->eof)
		return RD_EOF;
	if (r->before_wait)
		r->before_wait(r->arg);
	for (;;) {
		if (r->timeout > 0) {
			int k = wait_fd(r->fd, POLLIN, deadline_in(r->timeout));

			if (k < 0)
				return RD_ERR;
			if (k == 0) {
				errno = ETIMEDOUT;
				return RD_ERR;
			}
		}
		n = read(r->fd, r->buf, sizeof(r->buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return RD_ERR;
		if (n == 0)
			r->eof = 1;
		r->off = 0;
		r->len = (size_t)n;
		return n > 0 ? RD_OK : RD_EOF;
	}
}

/*
 * rd_line - the next line without its LF or CRLF into line.  RD_OK,
 * RD_EOF, RD_ERR, or RD_TOOLONG when the line is longer than max: line
 * then holds its first max + 1 octets, and the rest of it, with its line
 * end, is left unread.  A last line without a line end is returned as a
 * line.  r->crlf says whether the line ended in CRLF.
 */
enum rd_status
rd_line(struct reader *r, struct buf *line, size_t max)
{
	enum rd_status f;
	int got = 0;

	buf_reset(line);
	r->crlf = 0;
	for (;;) {
		char *nl;
		size_t n;

		if (r->off == r->len && (f = rd_fill(r)) != RD_OK)
			return f == RD_EOF && got ? RD_OK : f;
		got = 1;
		nl = memchr(r->buf + r->off, '\n', r->len - r->off);
		n = nl ? (size_t)(nl - (r->buf + r->off)) : r->len - r->off;
		if (line->len + n > max + 1) {
			n = max + 1 - line->len;
			buf_add(line, r->buf + r->off, n);
			r->off += n;
			return RD_TOOLONG;
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
				return RD_TOOLONG;
			}
			return RD_OK;
		}
	}
}

/* rd_skip_line - read past the end of the current line: RD_OK, RD_EOF
 * or RD_ERR */
enum rd_status
rd_skip_line(struct reader *r)
{
	enum rd_status f;

	for (;;) {
		char *nl;

		if (r->off == r->len && (f = rd_fill(r)) != RD_OK)
			return f;
		nl = memchr(r->buf + r->off, '\n', r->len - r->off);
		if (nl) {
			r->off = (size_t)(nl - r->buf) + 1;
			return RD_OK;
		}
		r->off = r->len;
	}
}

/*
 * Where the body is in its line, as it streams into the queue file.  A
 * line starts at B_BOL; a leading "." without -i is held (B_DOT) until
 * the next octet says whether the line is the end of the message, a
 * stuffed dot (SMTP) or text.  A CR ends a line, and an LF right after
 * it belongs to that line end (B_CR).  In SMTP a "." line ended by CR
 * waits for its LF (B_DOT_CR): only CRLF "." CRLF ends the data.
 */
enum bstate {
	B_BOL,		/* at the start of a line */
	B_MID,		/* inside a line */
	B_DOT,		/* the line so far is a "." held back */
	B_DOT_CR,	/* SMTP: the line "." and a CR */
	B_CR,		/* a CR ended the line: an LF next is part of it */
	B_DONE		/* the final "." line was read */
};

/* Why the body was refused. */
enum berr {
	BE_NONE,
	BE_NUL,		/* a NUL octet */
	BE_TOOBIG,	/* over max_message_size */
	BE_QUEUE	/* the queue file could not be written (the result
			 * says why) */
};

/* The body as it streams into the queue file. */
struct body {
	struct qfile *q;
	long long max;		/* max_message_size, 0: none */
	int iflag;		/* a "." line is data */
	int smtp;		/* SMTP: "." ends, other leading dots go */
	enum bstate st;
	int after_crlf;		/* SMTP: this line began after a CRLF (or
				 * at the start), so "." CRLF may end it */
	size_t linelen;		/* octets of the line as written */
	size_t linemax;		/* what the line may hold before it is
				 * broken: one less when it starts with a
				 * dot that SMTP will double */
	/* Input octets copied as they are and not written yet: a run
	 * within the block body_feed was given. */
	const char *run;
	size_t runlen;
	int eight;		/* an octet with the high bit set */
	enum berr err;
};

/* body_write - n octets into the queue file, within max_message_size */
static int
body_write(struct body *b, const char *p, size_t n, struct result *res)
{
	if (b->max > 0 && (long long)b->q->size + (long long)n > b->max) {
		b->err = BE_TOOBIG;
		return -1;
	}
	if (queue_write(b->q, p, n, res) < 0) {
		b->err = BE_QUEUE;
		return -1;
	}
	return 0;
}

/* body_flush - write the run of input octets taken as they are.  The
 * run is flushed before every line end and line break; the other output
 * (a dot held back) only ever follows a line end, when it is empty. */
static int
body_flush(struct body *b, struct result *res)
{
	size_t n = b->runlen;

	b->runlen = 0;
	return n > 0 ? body_write(b, b->run, n, res) : 0;
}

/* body_eol - end the current line */
static int
body_eol(struct body *b, struct result *res)
{
	if (b->st == B_DOT) {
		/* A line with a single dot ends the message (no -i). */
		b->st = B_DONE;
		return 0;
	}
	b->st = B_BOL;
	b->linelen = 0;
	return body_write(b, "\r\n", 2, res);
}

/* body_line_end - a CR or LF ends the line; it is written CRLF */
static int
body_line_end(struct body *b, unsigned char c, struct result *res)
{
	if (body_flush(b, res) < 0)
		return -1;
	if (b->smtp && b->st == B_DOT) {
		if (c == '\r') {
			b->st = B_DOT_CR;
			return 0;
		}
		/* "." and a bare LF: a line holding a dot. */
		if (body_write(b, ".", 1, res) < 0)
			return -1;
		b->st = B_MID;
	}
	if (body_eol(b, res) < 0)
		return -1;
	if (b->st != B_DONE && c == '\r')
		b->st = B_CR;
	b->after_crlf = 0;
	return 0;
}

/*
 * body_after_cr - the octet after the CR of a line end (B_CR) or after
 * "." CR (B_DOT_CR): an LF is taken as part of it, any other octet is
 * left to start the next line.  "." CRLF ends SMTP data only on a line
 * begun after a CRLF; otherwise it is a line holding a dot.
 */
static int
body_after_cr(struct body *b, unsigned char c, struct result *res)
{
	if (b->st == B_DOT_CR) {
		if (c == '\n' && b->after_crlf) {
			b->st = B_DONE;
			return 0;
		}
		if (body_write(b, ".\r\n", 3, res) < 0)
			return -1;
		b->linelen = 0;
	}
	b->st = B_BOL;
	b->after_crlf = c == '\n';
	return 0;
}

/* body_octet - an octet of a line's text at p, other than CR and LF: a
 * leading dot held back, a line over BODY_LINE_MAX broken, the rest
 * taken into the run */
static int
body_octet(struct body *b, const char *p, struct result *res)
{
	unsigned char c = (unsigned char)*p;

	if (c == 0) {
		b->err = BE_NUL;
		return -1;
	}
	if (c & 0x80)
		b->eight = 1;
	if (b->st == B_BOL) {
		b->st = B_MID;
		b->linemax = BODY_LINE_MAX - (c == '.');
		if (c == '.' && !b->iflag) {
			b->st = B_DOT;
			return 0;
		}
	} else if (b->st == B_DOT) {
		/* SMTP drops the leading dot (unstuffing); the command line
		 * keeps it. */
		b->st = B_MID;
		b->linelen = b->smtp ? 0 : 1;
		b->linemax = BODY_LINE_MAX - (b->smtp ? c == '.' : 1);
		if (!b->smtp && body_write(b, ".", 1, res) < 0)
			return -1;
	}
	if (++b->linelen > b->linemax) {
		/* Break the line as Postfix does: CRLF SPACE. */
		if (body_flush(b, res) < 0 ||
		    body_write(b, "\r\n ", 3, res) < 0)
			return -1;
		b->linelen = 2;
		b->linemax = BODY_LINE_MAX;
	}
	if (b->runlen == 0)
		b->run = p;
	b->runlen++;
	return 0;
}

/*
 * body_feed - a block of body input: CRLF or LF (or a lone CR) line ends
 * become CRLF; dot lines and long lines are handled.  Returns 0, or -1
 * on error; *used is the octets taken (all of them, or up to the end of
 * the final "." line), or where the error was found.
 *
 * SMTP data ends only at CRLF "." CRLF (RFC 5321 4.1.1.4): a "." line
 * after a bare LF or CR, or ended by one, is a line holding a dot.  So
 * what ends the data here is what ends it for a strict server, and no
 * second message can be smuggled inside the first (SMTP smuggling).
 */
static int
body_feed(struct body *b, const char *p, size_t n, size_t *used,
    struct result *res)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < n && b->st != B_DONE; i++) {
		unsigned char c = (unsigned char)p[i];

		if (b->st == B_CR || b->st == B_DOT_CR) {
			if ((rc = body_after_cr(b, c, res)) < 0)
				break;
			if (c == '\n')
				continue;
		}
		if (c == '\r' || c == '\n')
			rc = body_line_end(b, c, res);
		else
			rc = body_octet(b, p + i, res);
		if (rc < 0)
			break;
	}
	if (rc == 0 && b->st != B_DONE)
		rc = body_flush(b, res);
	b->runlen = 0;
	*used = i;
	return rc;
}

/* body_end - end of input: finish the last line.  A "." at the very end,
 * without a line end, ends the message; SMTP data gets here only past
 * its final "." line. */
static int
body_end(struct body *b, struct result *res)
{
	return b->st == B_MID ? body_eol(b, res) : 0;
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
	switch (b->st) {
	case B_DOT_CR:
		return b->after_crlf ? DR_DOTCR : DR_CR;
	case B_CR:
		return DR_CR;
	case B_DOT:
		return b->after_crlf ? DR_DOT : DR_MID;
	case B_BOL:
		return b->after_crlf ? DR_BOL : DR_MID;
	default:
		return DR_MID;
	}
}

/*
 * skip_data - SMTP: read and drop the rest of the data up to and
 * including the CRLF "." CRLF that ends it: RD_OK, RD_EOF or RD_ERR.
 */
static enum rd_status
skip_data(struct reader *r, enum dstate st)
{
	enum rd_status f;

	for (;;) {
		if (r->off == r->len && (f = rd_fill(r)) != RD_OK)
			return f;
		while (r->off < r->len) {
			char c = r->buf[r->off++];

			if (c == '\n' && st == DR_DOTCR)
				return RD_OK;
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
 * check_qualify - "<addr>" or "addr" checked and qualified into q; a
 * reason starts with what and ": " when what is not NULL.  0, or -1 with
 * err set.
 */
static int
check_qualify(const struct conf *c, const char *text, int null_ok,
    const char *what, char *q, size_t qlen, char *err, size_t errlen)
{
	char why[200];
	char *copy = xstrdup(text), *a = strip_angle(copy);
	const char *sep = what ? ": " : "";
	int rc = -1;

	if (what == NULL)
		what = "";
	if (addr_check(a, null_ok, why, sizeof(why)) < 0)
		snprintf(err, errlen, "%s%s%s", what, sep, why);
	else if (addr_qualify(a, c->qualify_domain, q, qlen) < 0 ||
	    strlen(q) >= ADDR_MAX)
		snprintf(err, errlen, "%s%saddress too long", what, sep);
	else
		rc = 0;
	free(copy);
	return rc;
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
	char q[ADDR_MAX + HOST_MAX + 2];

	if (check_qualify(c, text, 1, NULL, q, sizeof(q), err, errlen) < 0)
		return -1;
	free(e->sender);
	e->sender = xstrdup(q);
	return 0;
}

static int add_unique(struct envelope *, const char *, const char *);

/*
 * submit_rcpt - check, qualify and add one recipient ("<addr>" or
 * "addr"), skipping duplicates.  ADD_OK, ADD_BAD (err: "what: reason"),
 * or ADD_FULL (err set).
 */
enum add_status
submit_rcpt(const struct conf *c, struct envelope *e, const char *addr,
    const char *what, char *err, size_t errlen)
{
	char q[ADDR_MAX + HOST_MAX + 2];

	if (check_qualify(c, addr, 0, what, q, sizeof(q), err, errlen) < 0)
		return ADD_BAD;
	if (add_unique(e, q, NULL) < 0) {
		snprintf(err, errlen, "too many recipients (limit %d)", RCPT_MAX);
		return ADD_FULL;
	}
	return ADD_OK;
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
		if (submit_rcpt(c, e, l.v[i], what, err, errlen) != ADD_OK)
			rc = -1;
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
 * SUB_OK; SUB_TEMP when the aliases file cannot be read (the message is
 * not queued: the submitter keeps it), SUB_DATA when the expansion has
 * more than RCPT_MAX recipients; sr says why.
 */
static enum submit_status
expand_local(struct envelope *e, const struct conf *c, struct subres *sr)
{
	struct envelope out;
	struct aliases *ta;
	struct strlist errs;
	enum submit_status st = SUB_OK;
	size_t i;
	int full = 0, denied;

	for (i = 0; i < e->nr && !conf_local(c, e->r[i].addr); i++)
		;
	if (i == e->nr)
		return SUB_OK;
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
		st = fail(sr, SUB_TEMP, 0, "cannot use the aliases file: "
		    "%.300s", errs.n ? errs.v[errs.n - 1] : c->aliases);
		goto out;
	}
	for (i = 0; i < e->nr && full == 0; i++)
		full = conf_local(c, e->r[i].addr) ? expand_one(&out, ta, c,
		    e->r[i].addr, NULL) : add_unique(&out, e->r[i].addr, NULL);
	if (full) {
		st = fail(sr, SUB_DATA, 0, "too many recipients after alias "
		    "expansion (limit %d)", RCPT_MAX);
		goto out;
	}
	/* The expanded list replaces the recipients. */
	take_rcpts(e, &out);
out:
	env_free(&out);
	aliases_free(ta);
	strlist_free(&errs);
	return st;
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
		r->unexpanded = 0;
		alias_failed(r, "");
		snprintf(r->res->text, sizeof(r->res->text), PRIVATE_ERR,
		    local);
		r->res->why_last = R_ALIAS;
		r->res->why = R_EXPIRED;
		r->res->lifetime = c->queue_lifetime;
	}
}

/* log_expired - the recipients expire_marked failed, once their envelope
 * is written (a failed write leaves them marked for the next run, which
 * must not log them twice) */
static void
log_expired(const struct envelope *cur, const struct conf *c)
{
	size_t i;

	for (i = 0; i < cur->nr; i++)
		if (cur->r[i].state == RCPT_FAILED && cur->r[i].res &&
		    cur->r[i].res->why == R_EXPIRED &&
		    cur->r[i].res->why_last == R_ALIAS)
			deliver_log_rcpt(c, cur, cur->r[i].addr, cur->r[i].res,
			    time(NULL));
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
	struct aliases *ta = NULL;
	int fd = -1, denied;
	struct envelope cur;
	struct strlist errs;
	struct result res;
	struct rtext t;
	enum qstatus q;

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
		else
			log_expired(&cur, c);
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

/*
 * submit_admit - the limits of what a user other than root may queue
 * (see the head of this file): size is the octets of the message about
 * to be committed, 0 before it is read (then what is queued must be
 * below the limits), never negative; self is the ID of its file in tmp/
 * (NULL before it is created), left out of the count.  SUB_OK, or
 * SUB_QUOTA, SUB_RESERVE, SUB_TEMP (the queue could not be looked at)
 * with sr saying why, naming the key.
 */
enum submit_status
submit_admit(const struct conf *c, long long size, const char *self,
    struct subres *sr)
{
	struct result res;
	struct rtext t;
	long long bytes, total, avail, limit;
	long count;
	uid_t uid = getuid();

	memset(sr, 0, sizeof(*sr));
	if (uid == 0)
		return SUB_OK;
	if (queue_space(c, &total, &avail, &res) < 0 ||
	    queue_usage(c, uid, self, &count, &bytes, &res) < 0)
		return fail(sr, SUB_TEMP, 0, "%s", result_str(&res, &t));
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

/* How far the header block reached into the body. */
enum first_line {
	FL_HEADER,	/* not yet: the line was taken into the header */
	FL_NONE,	/* no body line was read: the header ended at an
			 * empty line, the end of input or the final "." */
	FL_WHOLE,	/* a body line was read whole into line, its line
			 * end as rd->crlf says */
	FL_PART		/* a body line too long for the header: its first
			 * octets are in line, the rest unread */
};

/* One submission, from phase to phase of submit_message. */
struct intake {
	const struct conf *c;
	struct reader *rd;
	struct envelope *e;
	const struct subopts *so;
	struct subres *sr;
	struct header h;
	struct buf line;	/* the last line the header phase read */
	enum first_line first;
	struct buf hb;		/* the header block as queued */
	struct qfile q;
	int have_q;		/* q is open, to be aborted unless committed */
	struct body b;
	enum dstate dst;	/* SMTP: where the reader is, should the rest
				 * need to be skipped */
	struct result res;
	struct rtext rt;	/* res in words */
	char err[512];
};

/* read_fail - the input could not be read (errno) */
static enum submit_status
read_fail(struct intake *in)
{
	int e = errno;

	return fail(in->sr, e == ETIMEDOUT ? SUB_TIMEOUT : SUB_IOERR, e,
	    "cannot read the message: %s", strerror(e));
}

/* open_message - the temporary queue file; without -bs, once the user's
 * limits allow another message */
static enum submit_status
open_message(struct intake *in)
{
	int r;

	if ((r = queue_open(in->c, &in->res)) < 0)
		return fail(in->sr, SUB_QUEUE, -r, "cannot create queue file: "
		    "%s", result_str(&in->res, &in->rt));
	/* (-bs checked this at MAIL already, with the announced SIZE) */
	if (!in->so->smtp && submit_admit(in->c, 0, NULL, in->sr) != SUB_OK)
		return in->sr->st;
	if ((r = queue_create(in->c, &in->q, &in->res)) < 0)
		return fail(in->sr, SUB_QUEUE, -r, "cannot create queue file: "
		    "%s", result_str(&in->res, &in->rt));
	in->have_q = 1;
	return SUB_OK;
}

/* header_line - one line of the header block (not the mbox "From "
 * line), into the header unless it starts the body (in->first) */
static enum submit_status
header_line(struct intake *in)
{
	const char *hl = in->line.p;
	size_t hlen = in->line.len;
	int r;

	/* SMTP: the line without its stuffed dot; body_feed, which may
	 * get the line, unstuffs on its own. */
	if (in->so->smtp && hlen > 1 && hl[0] == '.') {
		hl++;
		hlen--;
	}
	if (hlen <= LINE_MAX_OCTETS)
		r = header_add_line(&in->h, hl, hlen, in->err, sizeof(in->err));
	else if (header_like(&in->h, hl, hlen))
		r = add_folded(&in->h, hl, hlen, in->err, sizeof(in->err));
	else
		r = 1;		/* a long first body line */
	if (r < 0)
		return fail(in->sr, SUB_DATA, 0, "%s", in->err);
	if (r == 1)
		in->first = in->line.len > 0 ? FL_WHOLE : FL_NONE;
	return SUB_OK;
}

/*
 * read_header - the header block into in->h, up to the line that starts
 * the body (in->first says what of it is in in->line) or the end of the
 * message.
 */
static enum submit_status
read_header(struct intake *in)
{
	struct reader *rd = in->rd;
	struct buf *line = &in->line;
	enum rd_status r;
	size_t k;
	int prev_crlf = 1;

	for (k = 0; in->first == FL_HEADER; k++) {
		r = rd_line(rd, line, HEADER_MAX);
		in->dst = r == RD_OK && rd->crlf ? DR_BOL : DR_MID;
		if (r == RD_ERR)
			return read_fail(in);
		if (r == RD_TOOLONG) {
			if (header_like(&in->h, line->p, line->len))
				return fail(in->sr, SUB_DATA, 0, "header line "
				    "too long (over %d octets)", HEADER_MAX);
			/* A long first body line (input without a header):
			 * its rest is still unread. */
			in->first = FL_PART;
			break;
		}
		if (r == RD_EOF) {
			if (in->so->smtp)
				return fail(in->sr, SUB_EOF, 0,
				    "end of input in the data");
			in->first = FL_NONE;
			break;
		}
		/* The end: without -i a "." line; in SMTP only CRLF "."
		 * CRLF (see body_feed). */
		if (!in->b.iflag && line->len == 1 && line->p[0] == '.' &&
		    (!in->so->smtp || (prev_crlf && rd->crlf))) {
			in->b.st = B_DONE;
			in->first = FL_NONE;
			break;
		}
		in->b.after_crlf = prev_crlf;
		prev_crlf = rd->crlf;
		if (memchr(line->p, '\0', line->len))
			return fail(in->sr, SUB_DATA, 0,
			    "message contains a NUL byte");
		/* A leading mbox "From " line is not part of the message. */
		if (!in->so->smtp && k == 0 && line->len >= 5 &&
		    memcmp(line->p, "From ", 5) == 0)
			continue;
		if (header_line(in) != SUB_OK)
			return in->sr->st;
	}
	/* Where the first body line begins, unless it is the one read. */
	if (in->first != FL_WHOLE)
		in->b.after_crlf = prev_crlf;
	return SUB_OK;
}

/* take_header_rcpts - with -t, the recipients of the header join the
 * envelope's; a message left without any is refused */
static enum submit_status
take_header_rcpts(struct intake *in)
{
	struct strlist l;
	enum add_status r = ADD_OK;
	size_t k;

	if (in->so->tflag && !in->so->smtp) {
		strlist_init(&l);
		if (msg_rcpts(&in->h, &l, in->err, sizeof(in->err)) < 0)
			r = ADD_BAD;
		for (k = 0; r == ADD_OK && k < l.n; k++)
			r = submit_rcpt(in->c, in->e, l.v[k],
			    "invalid recipient in header", in->err,
			    sizeof(in->err));
		strlist_free(&l);
		if (r != ADD_OK)
			return fail(in->sr, SUB_DATA, 0, "%s", in->err);
	}
	if (in->e->nr == 0)
		return fail(in->sr, SUB_DATA, 0, "no recipients");
	return SUB_OK;
}

/* fix_header - msg.c's fix-ups of the header, then the header block as
 * it is queued, after the trace field, into the queue file */
static enum submit_status
fix_header(struct intake *in)
{
	const struct conf *c = in->c;
	struct fixup fx;

	memset(&fx, 0, sizeof(fx));
	fx.sender = in->e->sender;
	fx.fullname = in->so->fullname;
	fx.user = in->so->user;
	fx.qualify_domain = c->qualify_domain;
	fx.hostname = c->hostname;
	fx.msgid = in->q.id;
	fx.now = time(NULL);
	if (msg_fixup(&in->h, &fx, in->err, sizeof(in->err)) < 0)
		return fail(in->sr, SUB_DATA, 0, "%s", in->err);
	if (trace_field(&in->hb, c, in->q.id, fx.now) < 0 ||
	    header_write(&in->h, &in->hb) < 0 ||
	    buf_add(&in->hb, "\r\n", 2) < 0)
		return fail(in->sr, SUB_TEMP, 0, "out of memory");
	if (queue_write(&in->q, in->hb.p, in->hb.len, &in->res) < 0)
		return fail(in->sr, SUB_TEMP, 0, "%s", result_str(&in->res, &in->rt));
	if (in->b.max > 0 && (long long)in->q.size > in->b.max)
		return fail(in->sr, SUB_TOOBIG, 0, "message is larger than "
		    "max_message_size (%lld octets)", c->max_message_size);
	return SUB_OK;
}

/* body_fail - the body was refused (in->b.err says why); the rest of
 * the data is in the reader from where it was refused */
static enum submit_status
body_fail(struct intake *in)
{
	in->dst = body_state(&in->b);
	switch (in->b.err) {
	case BE_NUL:
		return fail(in->sr, SUB_DATA, 0, "message contains a NUL byte");
	case BE_TOOBIG:
		return fail(in->sr, SUB_TOOBIG, 0, "message is larger than "
		    "max_message_size (%lld octets)", in->c->max_message_size);
	default:	/* queue_write's text says what it could not do */
		return fail(in->sr, SUB_TEMP, 0, "%s", result_str(&in->res, &in->rt));
	}
}

/* feed_first_line - the body line the header phase read, with its line
 * end as it was (none when the rest of it is unread) */
static int
feed_first_line(struct intake *in)
{
	struct body *b = &in->b;
	const char *eol = in->rd->crlf ? "\r\n" : "\n";
	size_t used;

	if (in->first != FL_WHOLE && in->first != FL_PART)
		return 0;
	if (body_feed(b, in->line.p, in->line.len, &used, &in->res) == 0 &&
	    (in->first == FL_PART || b->st == B_DONE ||
	    body_feed(b, eol, strlen(eol), &used, &in->res) == 0))
		return 0;
	/* The reader is past that line, or inside it (long line). */
	b->after_crlf = in->first == FL_WHOLE && in->rd->crlf;
	b->st = b->after_crlf ? B_BOL : B_MID;
	return -1;
}

/* stream_body - the body into the queue file as it is read, up to the
 * end of input or the final "." */
static enum submit_status
stream_body(struct intake *in)
{
	struct reader *rd = in->rd;
	struct body *b = &in->b;
	size_t used;
	int r;

	if (feed_first_line(in) < 0)
		return body_fail(in);
	while (b->st != B_DONE) {
		if (rd->off == rd->len) {
			enum rd_status f = rd_fill(rd);

			if (f == RD_ERR)
				return read_fail(in);
			if (f == RD_EOF)
				break;
		}
		r = body_feed(b, rd->buf + rd->off, rd->len - rd->off, &used,
		    &in->res);
		rd->off += used;
		if (r < 0)
			return body_fail(in);
	}
	if (b->st != B_DONE && in->so->smtp)
		return fail(in->sr, SUB_EOF, 0, "end of input in the data");
	if (body_end(b, &in->res) < 0)
		return body_fail(in);
	return SUB_OK;
}

/* commit - the message on disk for good, once its own size is within
 * the user's limits */
static enum submit_status
commit(struct intake *in)
{
	struct envelope *e = in->e;
	size_t k;
	int r;

	e->arrival = time(NULL);
	/* 8-bit octets in the header (a raw UTF-8 Subject) need 8BITMIME
	 * as much as those of the body. */
	for (k = 0; k < in->hb.len && !(in->hb.p[k] & 0x80); k++)
		;
	e->body8 = in->b.eight || k < in->hb.len ? 1 : 0;
	/* With its own size: a message must not take its user past a
	 * limit, nor the disk below the reserve. */
	if (submit_admit(in->c, (long long)in->q.size, in->q.id, in->sr) !=
	    SUB_OK)
		return in->sr->st;
	if ((r = queue_commit(in->c, &in->q, e, &in->res)) < 0)
		return fail(in->sr, SUB_QUEUE, -r, "cannot queue the message: "
		    "%s", result_str(&in->res, &in->rt));
	in->have_q = 0;
	close(in->q.fd);
	/* Postfix's two lines of a message's arrival, as its pickup and
	 * qmgr word them: log analysers count a message received from the
	 * first and take its size from the second (reports, made by
	 * delivery runs, log only the second, as Postfix's bounces do). */
	logev("pickup", LOG_INFO, "%s: uid=%ld from=<%s>%s", e->id,
	    (long)getuid(), e->sender, in->so->smtp ? " (via -bs)" : "");
	deliver_log_queued(e);
	vlog("queued as %s", e->id);
	return SUB_OK;
}

/*
 * drain - SMTP: the session goes on after the final "." of a refused
 * message, so the rest of its data is read and dropped (the reply to
 * DATA comes once it is read); not when the input itself failed.
 */
static void
drain(struct intake *in)
{
	enum submit_status st = in->sr->st;
	enum rd_status r;

	if (!in->so->smtp || in->b.st == B_DONE || st == SUB_IOERR ||
	    st == SUB_TIMEOUT || st == SUB_EOF)
		return;
	r = skip_data(in->rd, in->dst);
	if (r == RD_ERR)
		fail(in->sr, errno == ETIMEDOUT ? SUB_TIMEOUT : SUB_IOERR, 0,
		    "%s", strerror(errno));
	else if (r == RD_EOF)
		fail(in->sr, SUB_EOF, 0, "end of input in the data");
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
	struct intake in;

	memset(&in, 0, sizeof(in));
	memset(sr, 0, sizeof(*sr));
	in.c = c;
	in.rd = rd;
	in.e = e;
	in.so = so;
	in.sr = sr;
	header_init(&in.h);
	buf_init(&in.line, 0);
	buf_init(&in.hb, 0);
	in.first = FL_HEADER;
	in.dst = DR_BOL;
	in.b.q = &in.q;
	in.b.max = c->max_message_size;
	in.b.iflag = so->iflag && !so->smtp;
	in.b.smtp = so->smtp;
	in.b.st = B_BOL;
	in.b.after_crlf = 1;

	if (open_message(&in) != SUB_OK || read_header(&in) != SUB_OK ||
	    take_header_rcpts(&in) != SUB_OK || fix_header(&in) != SUB_OK ||
	    stream_body(&in) != SUB_OK || expand_local(e, c, sr) != SUB_OK ||
	    commit(&in) != SUB_OK)
		drain(&in);
	if (in.have_q)
		queue_abort(&in.q);
	buf_free(&in.line);
	buf_free(&in.hb);
	header_free(&in.h);
	return sr->st;
}
