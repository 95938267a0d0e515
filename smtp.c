/*
 * smtp.c - the SMTP client (RFC 5321) over one connection.
 *
 * States: connect -> greeting -> EHLO (HELO when EHLO is refused) ->
 * { MAIL -> RCPT... -> DATA -> body -> final reply } ... -> QUIT.
 * With PIPELINING (RFC 2920) MAIL, every RCPT and DATA go out in one
 * write; the body and the final "." go out in large writes too.  The
 * socket has TCP_NODELAY and we never write a small trailing piece on its
 * own, so no Nagle/delayed-ACK stall is paid per message.
 *
 * Every I/O step has a poll(2) deadline (RFC 5321 4.5.3.2): the connect
 * timeout, the command timeout for replies, the data timeout for the
 * final reply after the body.
 *
 * CHUNKING (RFC 3030): BDAT instead of DATA whenever the server offers
 * it, the message in chunks, not dot-stuffed; with PIPELINING each
 * chunk's reply is read while the next is on its way.
 *
 * The queued message is the original; what each server gets follows
 * from its EHLO (plan_of, sendmail.8 CONVERSIONS): as it is with
 * BODY=BINARYMIME, BODY=8BITMIME or SMTPUTF8 where offered, otherwise
 * converted on the fly (mime.c: long lines and 8-bit leaves re-encoded,
 * header fields downgraded) and the envelope's domains sent as A-labels;
 * a recipient whose local part is not ASCII fails with 5.6.7 (RFC 6531
 * 3.7.4).  A message that cannot be converted fails with 5.6.3 before
 * MAIL is sent.
 *
 * Security: replies are parsed strictly (three digits, first 2-5, then
 * space or dash, the same code on every line, bounded line length, line
 * count and total size); server text is made printable before it goes
 * anywhere.  Commands are built only from addresses checked at intake.
 * Past the final "." a lost connection may mean the message was
 * delivered: that is logged as a possible duplicate and treated as TEMP.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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

/* RFC 5321 4.5.3.1.5: a reply line is at most 512 octets; be lenient. */
#define REPLY_LINE_MAX 2048
/* Recipients sent in one pipelined group at the most: their replies
 * (about 30 octets each) fit any socket buffer. */
#define PIPE_RCPT_MAX 100
/* Flush the output buffer at this size while sending a body. */
#define WRITE_BLOCK 65536

/* How one protocol step ended; res says why wherever it is not P_OK. */
enum pstep {
	P_OK,
	P_REFUSED,	/* the server said no; the connection is still fine */
	P_LOST,		/* the connection failed */
	P_TLS_FAILED,	/* STARTTLS did not work: plain text may be retried */
	P_PLAIN,	/* STARTTLS not offered or refused: plain text is fine */
	P_LOCAL,	/* our side failed: the queue file, memory */
	P_UNCONVERTIBLE	/* the message cannot be made 7-bit */
};

ssize_t
reply_parse(const char *buf, size_t len, struct reply *r, char *err,
    size_t errlen)
{
	size_t pos = 0, tlen = 0;
	const char *nl, *line;
	size_t n;
	int code;

	r->code = 0;
	r->nlines = 0;
	r->text[0] = '\0';
	for (;;) {
		nl = memchr(buf + pos, '\n', len - pos);
		if (nl == NULL) {
			if (len - pos > REPLY_LINE_MAX) {
				snprintf(err, errlen, "reply line too long");
				return -1;
			}
			return 0;
		}
		line = buf + pos;
		n = (size_t)(nl - line);
		if (n > 0 && line[n - 1] == '\r')
			n--;
		if (n > REPLY_LINE_MAX) {
			snprintf(err, errlen, "reply line too long");
			return -1;
		}
		if (n < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' ||
		    line[1] > '5' || line[2] < '0' || line[2] > '9' ||
		    (n > 3 && line[3] != ' ' && line[3] != '-')) {
			snprintf(err, errlen, "malformed reply line");
			return -1;
		}
		code = (line[0] - '0') * 100 + (line[1] - '0') * 10 +
		    (line[2] - '0');
		if (r->nlines > 0 && code != r->code) {
			snprintf(err, errlen, "reply code changes within a reply");
			return -1;
		}
		r->code = code;
		if (++r->nlines > REPLY_LINES_MAX) {
			snprintf(err, errlen, "reply has too many lines");
			return -1;
		}
		if (n > 4) {
			if (tlen + (n - 4) + 2 > sizeof(r->text)) {
				snprintf(err, errlen, "reply too long");
				return -1;
			}
			if (tlen > 0)
				r->text[tlen++] = '\n';
			printable(r->text + tlen, sizeof(r->text) - tlen, line + 4,
			    n - 4);
			tlen += n - 4;
		} else if (tlen > 0 && tlen + 2 <= sizeof(r->text)) {
			r->text[tlen++] = '\n';
			r->text[tlen] = '\0';
		}
		pos = (size_t)(nl - buf) + 1;
		if (n == 3 || line[3] == ' ')
			return (ssize_t)pos;
	}
}

/* enhanced - length of an RFC 3463 code "c.sss.ddd" at p, or 0 */
static size_t
enhanced(const char *p)
{
	size_t i = 0, n;
	int part;

	if (p[0] < '2' || p[0] > '5' || p[1] != '.')
		return 0;
	i = 2;
	for (part = 0; part < 2; part++) {
		for (n = 0; p[i] >= '0' && p[i] <= '9' && n < 3; n++)
			i++;
		if (n == 0)
			return 0;
		if (part == 0) {
			if (p[i] != '.')
				return 0;
			i++;
		}
	}
	return (p[i] == ' ' || p[i] == '\n' || p[i] == '\0') ? i : 0;
}

/* say - the facts of a reply to step: code, RFC 3463 status, text */
static void
say(struct result *res, enum outcome o, const struct smtp *s,
    const struct reply *r, enum smtp_step step)
{
	size_t n;

	result_at(res, o, R_REPLY, s->host, s->peer, "%s", r->text);
	res->step = step;
	res->code = r->code;
	/* RFC 3463 2: the status leads the text of the first line */
	if ((n = enhanced(r->text)) > 0 && n < sizeof(res->status))
		snprintf(res->status, sizeof(res->status), "%.*s", (int)n,
		    r->text);
}

static enum outcome
class_of(int code)
{
	return code < 400 ? OUT_OK : code < 500 ? OUT_TEMP : OUT_PERM;
}

/* lost - res: the connection failed (why, errno e) while sending or not */
static void
lost(struct result *res, const struct smtp *s, enum reason why, int e,
    int sending)
{
	result_at(res, OUT_TEMP, why, s->host, s->peer, "%s", "");
	res->err = why == R_NETIO || why == R_CONNECT ? e : 0;
	res->sending = sending;
}

/* s_flush - write the output buffer before the deadline */
static int
s_flush(struct smtp *s, long timeout, struct result *res)
{
	long long deadline = deadline_in(timeout);
	size_t off = 0;
	ssize_t w;
	int r;

	while (off < s->out.len) {
		w = s->tls.ssl ? tls_write(&s->tls, s->out.p + off, s->out.len - off) :
		    write(s->fd, s->out.p + off, s->out.len - off);
		if (w > 0) {
			off += (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w == 0 || errno != EAGAIN) {
			lost(res, s, w == 0 ? R_CLOSED : R_NETIO, errno, 1);
			return -1;
		}
		r = wait_fd(s->fd, s->tls.ssl ? s->tls.want : POLLOUT, deadline);
		if (r <= 0) {
			lost(res, s, r == 0 ? R_TIMEOUT : R_NETIO, errno, 1);
			return -1;
		}
	}
	buf_reset(&s->out);
	return 0;
}

/* s_vcmd - queue one command line; -v shows it, or shown instead when
 * the line carries credentials */
static int
s_vcmd(struct smtp *s, const char *shown, const char *fmt, va_list ap)
{
	char line[ADDR_MAX + 1024];
	int n;

	n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return -1;
	if (verbose)
		fprintf(stderr, ">>> %s\n", shown ? shown : line);
	n = buf_add(&s->out, line, (size_t)n) == 0 &&
	    buf_add(&s->out, "\r\n", 2) == 0 ? 0 : -1;
	explicit_bzero(line, sizeof(line));
	return n;
}

/* s_secret - s_vcmd's variadic form; s_cmd - one without credentials */
static int __attribute__((format(printf, 3, 4)))
s_secret(struct smtp *s, const char *shown, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = s_vcmd(s, shown, fmt, ap);
	va_end(ap);
	return rc;
}
#define s_cmd(s, ...) s_secret((s), NULL, __VA_ARGS__)

/* s_reply - read one reply before the deadline */
static int
s_reply(struct smtp *s, struct reply *r, long timeout, struct result *res)
{
	long long deadline = deadline_in(timeout);
	char err[100];
	ssize_t n;
	int w;

	for (;;) {
		n = reply_parse(s->in, s->inlen, r, err, sizeof(err));
		if (n < 0) {
			result_at(res, OUT_TEMP, R_PROTOCOL, s->host, s->peer,
			    "%s", err);
			return -1;
		}
		if (n > 0) {
			memmove(s->in, s->in + n, s->inlen - (size_t)n);
			s->inlen -= (size_t)n;
			if (verbose) {
				const char *p = r->text, *e;

				do {
					e = strchr(p, '\n');
					fprintf(stderr, "<<< %d%c%.*s\n", r->code,
					    e ? '-' : ' ', e ? (int)(e - p) :
					    (int)strlen(p), p);
					p = e ? e + 1 : NULL;
				} while (p);
			}
			return 0;
		}
		if (s->inlen == sizeof(s->in)) {
			result_at(res, OUT_TEMP, R_PROTOCOL, s->host, s->peer,
			    "reply too long");
			return -1;
		}
		/* Read first, wait only when nothing is there: TLS may hold
		 * decrypted bytes that poll(2) cannot see. */
		n = s->tls.ssl ? tls_read(&s->tls, s->in + s->inlen, sizeof(s->in) -
		    s->inlen) : read(s->fd, s->in + s->inlen, sizeof(s->in) -
		    s->inlen);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			w = wait_fd(s->fd, s->tls.ssl ? s->tls.want : POLLIN,
			    deadline);
			if (w <= 0) {
				lost(res, s, w == 0 ? R_TIMEOUT : R_NETIO, errno,
				    0);
				return -1;
			}
			continue;
		}
		if (n <= 0) {
			lost(res, s, n == 0 ? R_CLOSED : R_NETIO, errno, 0);
			return -1;
		}
		s->inlen += (size_t)n;
	}
}

/* s_none - nothing may follow a reply we asked for last: stray bytes
 * would shift every later reply onto the wrong command */
static int
s_none(struct smtp *s, struct result *res)
{
	if (s->inlen == 0)
		return 0;
	result_at(res, OUT_TEMP, R_PROTOCOL, s->host, s->peer,
	    "unexpected data after a reply");
	return -1;
}

/* ehlo_ext - the extensions of an EHLO reply (RFC 5321 4.1.1.1) */
static void
ehlo_ext(struct smtp *s, const struct reply *r)
{
	const char *p = strchr(r->text, '\n');
	char kw[32];
	size_t n;

	s->ext = 0;
	s->maxsize = 0;
	s->auth_mechs[0] = '\0';
	while (p) {
		p++;
		n = strcspn(p, " \n");
		if (n < sizeof(kw)) {
			size_t i;

			for (i = 0; i < n; i++)
				kw[i] = (char)((p[i] >= 'a' && p[i] <= 'z') ?
				    p[i] - 32 : p[i]);
			kw[n] = '\0';
			if (strcmp(kw, "PIPELINING") == 0)
				s->ext |= EXT_PIPELINING;
			else if (strcmp(kw, "8BITMIME") == 0)
				s->ext |= EXT_8BITMIME;
			else if (strcmp(kw, "STARTTLS") == 0)
				s->ext |= EXT_STARTTLS;
			else if (strcmp(kw, "DSN") == 0)
				s->ext |= EXT_DSN;
			else if (strcmp(kw, "SMTPUTF8") == 0)
				s->ext |= EXT_SMTPUTF8;
			else if (strcmp(kw, "CHUNKING") == 0)
				s->ext |= EXT_CHUNKING;
			else if (strcmp(kw, "BINARYMIME") == 0)
				s->ext |= EXT_BINARYMIME;
			else if (strncmp(kw, "AUTH", 4) == 0 &&
			    (p[4] == ' ' || p[4] == '=')) {
				size_t m = strcspn(p + 5, "\n");

				s->ext |= EXT_AUTH;
				if (m < sizeof(s->auth_mechs))
					snprintf(s->auth_mechs,
					    sizeof(s->auth_mechs), "%.*s",
					    (int)m, p + 5);
			}
			else if (strcmp(kw, "SIZE") == 0) {
				s->ext |= EXT_SIZE;
				if (p[n] == ' ')
					s->maxsize = strtoull(p + n + 1, NULL, 10);
			}
		}
		p = strchr(p, '\n');
	}
}

/* s_connect - non-blocking connect with a deadline */
static int
s_connect(struct smtp *s, const struct mxaddr *a, long timeout,
    struct result *res)
{
	int one = 1, soerr = 0, r;
	socklen_t sl = sizeof(soerr);

	s->fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		result_set(res, OUT_TEMP, R_SYSTEM, "socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(s->fd, (const struct sockaddr *)&a->sa, a->salen) == 0)
		return 0;
	if (errno != EINPROGRESS) {
		soerr = errno;
		goto fail;
	}
	r = wait_fd(s->fd, POLLOUT, deadline_in(timeout));
	if (r == 0) {
		lost(res, s, R_TIMEOUT, 0, 0);
		res->step = STEP_CONNECT;
		return -1;
	}
	if (r < 0 || getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
		soerr = errno;
	if (soerr == 0)
		return 0;
fail:
	lost(res, s, R_CONNECT, soerr, 0);
	res->step = STEP_CONNECT;
	return -1;
}

/* hello - EHLO, or HELO when EHLO is refused */
static enum pstep
hello(struct smtp *s, const struct conf *c, struct result *res)
{
	struct reply r;

	if (s_cmd(s, "EHLO %s", c->hostname) < 0 ||
	    s_flush(s, s->cmd_timeout, res) < 0 ||
	    s_reply(s, &r, s->cmd_timeout, res) < 0 || s_none(s, res) < 0)
		return P_LOST;
	if (r.code / 100 == 2) {
		ehlo_ext(s, &r);
		return P_OK;
	}
	if (r.code < 500) {
		say(res, OUT_TEMP, s, &r, STEP_EHLO);
		return P_REFUSED;
	}
	/* RFC 5321 3.2: an old server; fall back to HELO. */
	if (s_cmd(s, "HELO %s", c->hostname) < 0 ||
	    s_flush(s, s->cmd_timeout, res) < 0 ||
	    s_reply(s, &r, s->cmd_timeout, res) < 0 || s_none(s, res) < 0)
		return P_LOST;
	if (r.code / 100 != 2) {
		say(res, class_of(r.code), s, &r, STEP_HELO);
		return P_REFUSED;
	}
	s->ext = 0;
	return P_OK;
}

/* ask - send what is queued, read the reply into r */
static enum pstep
ask(struct smtp *s, struct reply *r, struct result *res)
{
	return s_flush(s, s->cmd_timeout, res) < 0 ||
	    s_reply(s, r, s->cmd_timeout, res) < 0 ? P_LOST : P_OK;
}

/* oom - res: out of memory (a command did not fit) */
static enum pstep
oom(struct result *res)
{
	result_oom(res);
	return P_LOCAL;
}

/* has_mech - does the server offer SASL mechanism m? */
static int
has_mech(const struct smtp *s, const char *m)
{
	const char *p = s->auth_mechs;
	size_t n = strlen(m);

	while (*p) {
		size_t k = strcspn(p, " ");

		if (k == n && strncasecmp(p, m, n) == 0)
			return 1;
		p += k;
		p += strspn(p, " ");
	}
	return 0;
}

/* scram_proof - the server-first challenge in r answered with our
 * proof; P_REFUSED with res set when the challenge is bad */
static enum pstep
scram_proof(struct smtp *s, struct scram *sc, const struct tlsopts *t,
    const struct reply *r, struct result *res)
{
	struct buf msg, b64;
	enum pstep p = P_REFUSED;

	buf_init(&msg, 0);
	buf_init(&b64, 0);
	result_set(res, OUT_OK, R_NONE, "%s", "");
	if (b64_decode(r->text, &msg) < 0 || scram_final(sc, t->pass,
	    msg.p ? msg.p : "", &b64, res) < 0) {
		if (res->o == OUT_OK)
			result_at(res, OUT_TEMP, R_AUTH_SCRAM, s->host,
			    s->peer, "bad challenge");
		goto out;
	}
	buf_reset(&msg);
	if (b64_encode(b64.p, b64.len, &msg) < 0 ||
	    s_secret(s, "********", "%s", msg.p) < 0) {
		result_oom(res);
		p = P_LOCAL;
		goto out;
	}
	p = P_OK;
out:
	buf_wipe(&msg);
	buf_wipe(&b64);
	return p;
}

/* scram_check - RFC 4954 4: the server's proof comes as a challenge in
 * r; P_OK when it is right (answered with an empty line) */
static enum pstep
scram_check(struct smtp *s, struct scram *sc, const struct reply *r,
    struct result *res)
{
	struct buf msg;
	int right;

	buf_init(&msg, 0);
	right = b64_decode(r->text, &msg) == 0 &&
	    scram_verify(sc, msg.p ? msg.p : "") == 0;
	buf_wipe(&msg);
	if (!right) {
		result_at(res, OUT_TEMP, R_AUTH_SCRAM, s->host, s->peer,
		    "the server did not prove that it knows the password");
		return P_REFUSED;
	}
	return s_cmd(s, "%s", "") < 0 ? oom(res) : P_OK;
}

/* s_scram - AUTH SCRAM-SHA-256 (RFC 7677, RFC 4954 4); P_OK with the
 * last reply in r (the caller judges it) */
static enum pstep
s_scram(struct smtp *s, const struct tlsopts *t, struct reply *r,
    struct result *res)
{
	struct scram sc;
	struct buf msg, b64;
	enum pstep p = P_LOCAL;

	buf_init(&msg, 0);
	buf_init(&b64, 0);
	if (scram_first(&sc, t->user, &msg, res) < 0)
		goto out;
	if (b64_encode(msg.p, msg.len, &b64) < 0 ||
	    s_secret(s, "AUTH SCRAM-SHA-256 ********", "AUTH SCRAM-SHA-256 %s",
	    b64.p) < 0) {
		result_oom(res);
		goto out;
	}
	if ((p = ask(s, r, res)) != P_OK || r->code != 334)
		goto out;	/* a refusal: the caller says why */
	if ((p = scram_proof(s, &sc, t, r, res)) == P_REFUSED)
		goto cancel;
	if (p != P_OK || (p = ask(s, r, res)) != P_OK)
		goto out;
	if (r->code == 235) {
		/* RFC 5802 3: success without the server's proof proves
		 * nothing about the server. */
		result_at(res, OUT_TEMP, R_AUTH_SCRAM, s->host, s->peer,
		    "the server accepted without proving that it knows the "
		    "password");
		p = P_REFUSED;
		goto out;
	}
	if (r->code != 334)
		goto out;
	if ((p = scram_check(s, &sc, r, res)) == P_REFUSED)
		goto cancel;
	if (p == P_OK)
		p = ask(s, r, res);
	goto out;
cancel:
	/* RFC 4954 4: "*" cancels the exchange. */
	if (s_cmd(s, "*") < 0 || ask(s, r, res) != P_OK)
		p = P_LOST;
out:
	scram_free(&sc);
	buf_wipe(&msg);
	buf_wipe(&b64);
	return p;
}

/* mask_word - every occurrence of w in text (NUL-terminated) as '*'s */
static void
mask_word(char *text, const char *w)
{
	size_t n = strlen(w);
	char *p = text;

	if (n == 0)
		return;
	while ((p = strstr(p, w)) != NULL) {
		memset(p, '*', n);
		p += n;
	}
}

/* auth_plain - AUTH PLAIN (RFC 4616); P_OK with the reply in r */
static enum pstep
auth_plain(struct smtp *s, const struct tlsopts *t, struct reply *r,
    struct result *res)
{
	struct buf b64, raw;
	enum pstep p = P_LOCAL;

	buf_init(&b64, 0);
	buf_init(&raw, 0);
	if (buf_addc(&raw, 0) < 0 || buf_adds(&raw, t->user) < 0 ||
	    buf_addc(&raw, 0) < 0 || buf_adds(&raw, t->pass) < 0 ||
	    b64_encode(raw.p, raw.len, &b64) < 0 ||
	    s_secret(s, "AUTH PLAIN ********", "AUTH PLAIN %s", b64.p) < 0)
		result_oom(res);
	else
		p = ask(s, r, res);
	buf_wipe(&raw);
	buf_wipe(&b64);
	return p;
}

/* auth_login - AUTH LOGIN: the user and the password as answers to the
 * server's two challenges; P_OK with the last reply in r */
static enum pstep
auth_login(struct smtp *s, const struct tlsopts *t, struct reply *r,
    struct result *res)
{
	struct buf b64;
	enum pstep p = P_LOCAL;
	int step;

	buf_init(&b64, 0);
	if (s_cmd(s, "AUTH LOGIN") < 0)
		goto nomem;
	for (step = 0; step < 3; step++) {
		if ((p = ask(s, r, res)) != P_OK)
			goto out;
		if (r->code != 334 || step == 2)
			break;
		buf_reset(&b64);
		if (b64_encode(step ? t->pass : t->user, strlen(step ?
		    t->pass : t->user), &b64) < 0 ||
		    s_secret(s, "********", "%s", b64.p) < 0)
			goto nomem;
	}
	goto out;
nomem:
	result_oom(res);
	p = P_LOCAL;
out:
	buf_wipe(&b64);
	return p;
}

/* auth_refused - the final AUTH reply r was not 235 */
static void
auth_refused(struct smtp *s, const struct tlsopts *t, const struct reply *r,
    struct result *res)
{
	char t2[ERRTEXT_MAX];

	/* No user name: the text goes into the queue, which mailq shows to
	 * every local user; nor where the server echoes it. */
	printable(t2, sizeof(t2), r->text, strlen(r->text));
	mask_word(t2, t->user);
	result_at(res, OUT_TEMP, R_AUTH_REFUSED, s->host, s->peer, "%s", t2);
	res->code = r->code;
	res->step = STEP_AUTH;
}

/* s_auth - RFC 4954 with SCRAM-SHA-256, PLAIN (RFC 4616) or LOGIN.  A
 * refusal is TEMP: bad credentials must not bounce mail.  Only a
 * verified peer gets any AUTH command: a machine in the middle would get
 * the user name and, from SCRAM, a proof to crack the password with
 * offline.  unverified_ok (auth_unverified yes) lets SCRAM go to an
 * unverified peer; PLAIN and LOGIN, which hand over the password itself,
 * never do. */
static enum pstep
s_auth(struct smtp *s, const struct tlsopts *t, int unverified_ok,
    struct result *res)
{
	struct reply r;
	enum pstep p;

	if (!s->tls.verified && !unverified_ok) {
		result_at(res, OUT_TEMP, R_AUTH_UNVERIFIED, s->host, s->peer,
		    "%s", t->policy == TLS_REQUIRED ? "required" :
		    t->policy == TLS_OPPORTUNISTIC ? "opportunistic" : "verify");
		return P_REFUSED;
	}
	if (!(s->ext & EXT_AUTH)) {
		result_at(res, OUT_TEMP, R_AUTH_NOT_OFFERED, s->host, s->peer,
		    "%s", "");
		return P_REFUSED;
	}
	if (has_mech(s, "SCRAM-SHA-256"))
		p = s_scram(s, t, &r, res);
	else if (!s->tls.verified) {
		/* A password sent in the clear inside TLS nobody verified goes
		 * to whoever sits in the middle. */
		result_at(res, OUT_TEMP, R_AUTH_PLAIN_UNVERIFIED, s->host,
		    s->peer, "%s", "");
		return P_REFUSED;
	} else if (has_mech(s, "PLAIN"))
		p = auth_plain(s, t, &r, res);
	else if (has_mech(s, "LOGIN"))
		p = auth_login(s, t, &r, res);
	else {
		result_at(res, OUT_TEMP, R_AUTH_NO_MECH, s->host, s->peer, "%s",
		    s->auth_mechs);
		return P_REFUSED;
	}
	if (p != P_OK)
		return p == P_LOST ? P_LOST : P_REFUSED;
	if (r.code != 235) {
		auth_refused(s, t, &r, res);
		return P_REFUSED;
	}
	vlog("authenticated");
	return P_OK;
}

/* starttls - RFC 3207: P_OK when TLS is on; P_PLAIN to carry on in
 * plain text (opportunistic, not offered or refused); P_TLS_FAILED when
 * it failed half-way (no reply, garbage, handshake) */
static enum pstep
starttls(struct smtp *s, const struct conf *c, const struct tlsopts *t,
    struct result *res)
{
	static const char *const pname[] = {
		"none", "opportunistic", "required", "verify"
	};
	struct reply r;

	if (!(s->ext & EXT_STARTTLS)) {
		if (t->policy == TLS_OPPORTUNISTIC)
			return P_PLAIN;
		result_at(res, OUT_TEMP, R_TLS_NOT_OFFERED, s->host, s->peer,
		    "%s", pname[t->policy]);
		return P_REFUSED;
	}
	/* From here on any failure counts as a failed TLS start: under
	 * opportunistic the host is tried again in plain text. */
	if (s_cmd(s, "STARTTLS") < 0 || ask(s, &r, res) != P_OK) {
		struct rtext why;

		result_str(res, &why);
		result_at(res, OUT_TEMP, R_TLS_HANDSHAKE, s->host, s->peer,
		    "no valid reply to STARTTLS (%s)", why.s);
		return P_TLS_FAILED;
	}
	if (r.code != 220) {
		say(res, OUT_TEMP, s, &r, STEP_STARTTLS);
		return t->policy == TLS_OPPORTUNISTIC ? P_PLAIN : P_REFUSED;
	}
	/* RFC 3207 4.2: nothing the server sent before counts. */
	if (s->inlen > 0) {
		result_at(res, OUT_TEMP, R_TLS_HANDSHAKE, s->host, s->peer,
		    "data after the STARTTLS reply");
		return P_TLS_FAILED;
	}
	if (tls_init(c, res) < 0 || tls_handshake(&s->tls, s->fd, t->name,
	    t->policy == TLS_VERIFY, s->cmd_timeout, s->host, s->peer, res) !=
	    HS_OK)
		return P_TLS_FAILED;
	return P_OK;
}

/* tls_on - say how the session is protected */
static void
tls_on(const struct smtp *s)
{
	logmsg(LOG_INFO, "%s%s: TLS: %s", s->host, s->peer, s->tls.desc);
}

/* session_init - s for a new connection to a; failed says why this is
 * a plain-text retry ("" on the first try) */
static void
session_init(struct smtp *s, const struct mxaddr *a, const struct conf *c,
    const char *failed)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	memset(s, 0, sizeof(*s));
	snprintf(s->tls_failed, sizeof(s->tls_failed), "%s", failed);
	s->fd = -1;
	buf_init(&s->out, 0);
	s->cmd_timeout = c->command_timeout;
	s->data_timeout = c->data_timeout;
	snprintf(s->host, sizeof(s->host), "%s", a->host);
	if (a->sa.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)&a->sa;

		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		port = ntohs(in->sin_port);
	} else if (a->sa.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)&a->sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		port = ntohs(in6->sin6_port);
	}
	snprintf(s->peer, sizeof(s->peer), "[%s]:%d", ip, port);
}

/* greet - connect, implicit TLS when asked for, the greeting */
static enum pstep
greet(struct smtp *s, const struct mxaddr *a, const struct conf *c,
    const struct tlsopts *t, struct result *res)
{
	enum handshake hs;
	struct reply r;

	vlog("connecting to %s%s%s", s->host, s->peer, t->implicit ?
	    " (implicit TLS)" : "");
	if (s_connect(s, a, c->connect_timeout, res) < 0)
		return P_LOST;
	if (t->implicit) {
		if (tls_init(c, res) < 0)
			return P_LOST;
		if ((hs = tls_handshake(&s->tls, s->fd, t->name, t->policy ==
		    TLS_VERIFY, s->cmd_timeout, s->host, s->peer,
		    res)) != HS_OK) {
			if (hs == HS_NOT_TLS)
				result_at(res, OUT_TEMP, R_TLS_NOT_TLS, s->host,
				    s->peer, "%s", "");
			return P_LOST;
		}
		tls_on(s);
	}
	/* RFC 5321 4.5.3.2.1: wait for the greeting as for a command. */
	if (s_reply(s, &r, s->cmd_timeout, res) < 0) {
		if (!t->implicit && res->why == R_TIMEOUT)
			result_at(res, OUT_TEMP, R_TLS_SILENT, s->host, s->peer,
			    "%s", "");
		return P_LOST;
	}
	if (r.code != 220) {
		say(res, class_of(r.code) == OUT_OK ? OUT_TEMP : class_of(r.code),
		    s, &r, STEP_GREETING);
		return P_REFUSED;
	}
	return s_none(s, res) < 0 ? P_LOST : P_OK;
}

/* secure - STARTTLS as the policy wants it, and EHLO again after it */
static enum pstep
secure(struct smtp *s, const struct conf *c, const struct tlsopts *t,
    struct result *res)
{
	enum pstep p = starttls(s, c, t, res);

	if (p == P_PLAIN)
		return P_OK;
	if (p != P_OK)
		return p;
	tls_on(s);
	return hello(s, c, res);
}

enum outcome
smtp_open(struct smtp *s, const struct mxaddr *a, const struct conf *c,
    const struct tlsopts *t, struct result *res)
{
	struct rtext why = { "" };
	int plain = 0;
	enum pstep p;

	for (;;) {
		session_init(s, a, c, why.s);
		p = greet(s, a, c, t, res);
		if (p == P_OK)
			p = hello(s, c, res);
		if (p == P_OK && !s->tls.ssl && t->policy != TLS_NONE && !plain)
			p = secure(s, c, t, res);
		if (p != P_TLS_FAILED || t->policy != TLS_OPPORTUNISTIC)
			break;
		result_str(res, &why);
		logmsg(LOG_WARNING, "%s; retrying without TLS", why.s);
		vlog("%s; retrying without TLS", why.s);
		smtp_close(s, 0);
		plain = 1;
	}
	if (p == P_OK && t->user && !s->tls.ssl) {
		result_at(res, OUT_TEMP, R_AUTH_NO_TLS, s->host, s->peer, "%s",
		    t->policy == TLS_NONE ? "none" : "not on");
		p = P_REFUSED;
	} else if (p == P_OK && t->user)
		p = s_auth(s, t, c->auth_unverified, res);
	if (p == P_OK)
		return OUT_OK;
	/* The server refused: say goodbye; the connection failed: close. */
	smtp_close(s, p == P_REFUSED);
	return p == P_REFUSED && res->o != OUT_OK ? res->o : OUT_TEMP;
}

void
smtp_close(struct smtp *s, int quit)
{
	struct result res;
	struct reply r;

	if (s->fd >= 0 && quit) {
		buf_reset(&s->out);
		/* Best effort: the outcome is already decided. */
		if (s_cmd(s, "QUIT") == 0 &&
		    s_flush(s, 10, &res) == 0)
			(void)s_reply(s, &r, 10, &res);
	}
	tls_close(&s->tls);
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	buf_free(&s->out);
}

/* read_chunk - the next piece of the message from the queue file at
 * *off (advanced); the length, or -1 with res set */
static ssize_t
read_chunk(const struct txn *t, char *chunk, size_t len, off_t *off,
    struct result *res)
{
	ssize_t n;

	if ((off_t)len > t->size - *off)
		len = (size_t)(t->size - *off);
	do
		n = pread(t->msgfd, chunk, len, *off);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		result_set(res, OUT_TEMP, R_QUEUE, "cannot read queue file %s: %s", t->id,
		    n == 0 ? "truncated" : strerror(errno));
		return -1;
	}
	*off += n;
	return n;
}

/* stuff - append p to out, dot-stuffed (RFC 5321 4.5.2); *bol says
 * whether the previous octet ended a line */
static int
stuff(struct buf *out, const char *p, size_t n, int *bol)
{
	size_t i, start = 0;

	for (i = 0; i < n; i++) {
		if (*bol && p[i] == '.') {
			if (buf_add(out, p + start, i - start) < 0 ||
			    buf_addc(out, '.') < 0)
				return -1;
			start = i;
		}
		*bol = p[i] == '\n';
	}
	return buf_add(out, p + start, n - start);
}

/* What one server is sent, from its EHLO and the message's shape. */
struct plan {
	int bdat;		/* CHUNKING: BDAT (RFC 3030), no dot-stuffing */
	int utf8;		/* SMTPUTF8 on MAIL (RFC 6531) */
	int convert;		/* through mimeconv, with flags conv */
	unsigned conv;		/* MC_*: what the server takes as it is */
	const char *body;	/* MAIL's BODY= value, or NULL */
};

/*
 * plan_of - sendmail.8 CONVERSIONS: a message with lines over 998
 * octets goes as it is with BODY=BINARYMIME where the server offers
 * CHUNKING and BINARYMIME, and is converted otherwise; 8-bit content
 * goes as it is with BODY=8BITMIME (or BINARYMIME) and is converted to
 * 7-bit MIME otherwise; UTF-8 addresses and header fields go as they are
 * with SMTPUTF8, and header fields are downgraded otherwise (so are
 * header octets that are not UTF-8, always).  BDAT whenever offered.
 */
static void
plan_of(const struct smtp *s, const struct txn *t, struct plan *p)
{
	unsigned sh = t->shape;
	int binary = (sh & SHAPE_LONG) && (s->ext & EXT_CHUNKING) &&
	    (s->ext & EXT_BINARYMIME);
	int eight = binary || (s->ext & EXT_8BITMIME);
	int intl = (sh & SHAPE_EAI) || ((sh & SHAPE_H8) && !(sh & SHAPE_HBAD));

	memset(p, 0, sizeof(*p));
	p->bdat = (s->ext & EXT_CHUNKING) != 0;
	p->utf8 = intl && (s->ext & EXT_SMTPUTF8);
	p->conv = (eight ? MC_8BIT : 0) | (binary ? MC_LONG : 0) |
	    (p->utf8 ? MC_UTF8HDR : 0) | (sh & SHAPE_BUTF8 ? MC_BUTF8 : 0);
	p->convert = ((sh & SHAPE_LONG) && !binary) ||
	    (t->body8 == 1 && !eight) ||
	    ((sh & SHAPE_H8) && (!p->utf8 || (sh & SHAPE_HBAD)));
	p->body = binary ? "BINARYMIME" : t->body8 == 1 && eight ?
	    "8BITMIME" : NULL;
}

/* The message as one server gets it, a piece at a time. */
struct src {
	const struct txn *t;
	struct mimeconv *conv;	/* or NULL: the queued bytes as they are */
	off_t off;
};

/* src_open - b reads t's message, converted when p says so */
static enum pstep
src_open(struct src *b, const struct txn *t, const struct plan *p,
    struct result *res)
{
	b->t = t;
	b->off = 0;
	b->conv = NULL;
	if (p->convert && (b->conv = mimeconv_new(p->conv)) == NULL)
		return oom(res);
	return P_OK;
}

/* src_next - the next piece appended to out; *end set after the last.
 * P_OK, P_LOCAL (res set), P_UNCONVERTIBLE. */
static enum pstep
src_next(struct src *b, struct buf *out, int *end, struct result *res)
{
	static char chunk[WRITE_BLOCK];
	ssize_t n = 0;

	if (b->off < b->t->size &&
	    (n = read_chunk(b->t, chunk, sizeof(chunk), &b->off, res)) < 0)
		return P_LOCAL;
	*end = b->off >= b->t->size;
	if (b->conv == NULL)
		return buf_add(out, chunk, (size_t)n) < 0 ? oom(res) : P_OK;
	if (mimeconv_put(b->conv, chunk, (size_t)n, out) < 0 ||
	    (*end && mimeconv_end(b->conv, out) < 0))
		return P_UNCONVERTIBLE;
	return P_OK;
}

/* src_close - the converter's last word: a signature it may have broken */
static void
src_close(struct src *b, const struct smtp *s, int sent)
{
	if (b->conv && sent && mimeconv_signed(b->conv))
		logmsg(LOG_WARNING, "%s: %s%s: a part of a multipart/signed was "
		    "re-encoded for this server: its signature may break",
		    b->t->id, s->host, s->peer);
	mimeconv_free(b->conv);
	b->conv = NULL;
}

/* convertible - a dry run: can the message be converted as p says? */
static enum pstep
convertible(const struct txn *t, const struct plan *p, struct result *res)
{
	struct buf scratch;
	struct src b;
	enum pstep rc;
	int end = 0;

	if ((rc = src_open(&b, t, p, res)) != P_OK)
		return rc;
	buf_init(&scratch, 0);
	while (!end && (rc = src_next(&b, &scratch, &end, res)) == P_OK)
		buf_reset(&scratch);
	buf_free(&scratch);
	src_close(&b, NULL, 0);
	return rc;
}

/* unconverted - rc, with a conversion that failed halfway made P_LOCAL:
 * it cannot be taken back, so the connection is abandoned (convertible
 * said it would not fail) */
static enum pstep
unconverted(const struct smtp *s, enum pstep rc, struct result *res)
{
	if (rc != P_UNCONVERTIBLE)
		return rc;
	result_at(res, OUT_TEMP, R_8BIT, s->host, s->peer, "%s", "");
	return P_LOCAL;
}

/* shown - the verbose line of what went out */
static void
shown(const struct txn *t, const struct plan *p)
{
	if (verbose)
		fprintf(stderr, ">>> [%lld octets of message%s%s]\n",
		    (long long)t->size, p->convert ? ", converted" : "",
		    p->bdat ? " in BDAT chunks" : "");
}

/* send_data - after DATA's 354: the message, dot-stuffed, then the final
 * dot in the same write as the last data; with hold, the end stays in
 * the output buffer for the next write (pipelining) */
static enum pstep
send_data(struct smtp *s, struct txn *t, const struct plan *p, int hold,
    struct result *res)
{
	struct buf piece;
	struct src b;
	enum pstep rc;
	int bol = 1, end = 0;

	if ((rc = src_open(&b, t, p, res)) != P_OK)
		return rc;
	buf_init(&piece, 0);
	while (!end) {
		if ((rc = src_next(&b, &piece, &end, res)) != P_OK)
			goto out;
		if (stuff(&s->out, piece.p, piece.len, &bol) < 0) {
			rc = oom(res);
			goto out;
		}
		buf_reset(&piece);
		if (s->out.len >= WRITE_BLOCK && !end &&
		    s_flush(s, s->data_timeout, res) < 0) {
			rc = P_LOST;
			goto out;
		}
	}
	if ((!bol && buf_add(&s->out, "\r\n", 2) < 0) ||
	    buf_add(&s->out, ".\r\n", 3) < 0) {
		rc = oom(res);
		goto out;
	}
	shown(t, p);
	if (verbose)
		fprintf(stderr, ">>> .\n");
	rc = hold || s_flush(s, s->data_timeout, res) == 0 ? P_OK : P_LOST;
out:
	src_close(&b, s, rc == P_OK);
	buf_free(&piece);
	return unconverted(s, rc, res);
}

/* set_all - the same result for every recipient still undecided */
static void
set_all(struct txn *t, const int *accepted, const struct result *r)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (accepted == NULL || accepted[i])
			t->rres[i] = *r;
}

/* xtext - prefix and v in RFC 3461 4 xtext, appended to out (v was
 * checked at intake: printable ASCII) */
static void
xtext(char *out, size_t outlen, const char *prefix, const char *v)
{
	size_t k = (size_t)snprintf(out, outlen, "%s", prefix);

	for (; *v && k + 4 < outlen; v++) {
		unsigned char ch = (unsigned char)*v;

		if (ch > ' ' && ch < 0x7f && ch != '+' && ch != '=')
			out[k++] = (char)ch;
		else
			k += (size_t)snprintf(out + k, outlen - k, "+%02X", ch);
	}
	out[k < outlen ? k : outlen - 1] = '\0';
}

/* lost_after_dot - the end of data went out and no reply came back */
static void
lost_after_dot(struct txn *t, const struct smtp *s, const struct result *res)
{
	struct result tmp;
	struct rtext why;

	logmsg(LOG_WARNING, "%s: possible duplicate: connection to %s%s lost "
	    "after the end of data: %s", t->id, s->host, s->peer,
	    result_str(res, &why));
	tmp = *res;
	tmp.o = OUT_TEMP;
	tmp.step = STEP_DOT;
	set_all(t, t->acc, &tmp);
}

/* finish_txn - read a pending final reply; more says that replies to
 * pipelined commands follow it */
static enum outcome
finish_txn(struct smtp *s, struct txn *t, int more, struct result *res)
{
	struct result tmp;
	struct reply r;
	enum outcome rc = OUT_OK;

	if (!t->pending)
		return OUT_OK;
	t->pending = 0;
	/* RFC 5321 4.5.3.2.6: the final reply may take 10 minutes. */
	if ((s->out.len && s_flush(s, s->data_timeout, res) < 0) ||
	    s_reply(s, &r, s->data_timeout, res) < 0 ||
	    (!more && s_none(s, res) < 0)) {
		lost_after_dot(t, s, res);
		rc = OUT_TEMP;
	} else {
		/* Only 2xx delivers; anything else that is not 5xx (a 3xx
		 * here is a broken server) is tried again. */
		say(&tmp, r.code / 100 == 2 ? OUT_OK : r.code >= 500 ? OUT_PERM :
		    OUT_TEMP, s, &r, STEP_DOT);
		set_all(t, t->acc, &tmp);
	}
	free(t->acc);
	t->acc = NULL;
	return rc;
}

enum outcome
smtp_finish(struct smtp *s, struct txn *t, struct result *res)
{
	return finish_txn(s, t, 0, res);
}

/* One transaction on its way: what the server was told, what it took. */
struct xfer {
	struct smtp *s;
	struct txn *t;
	int pipe;		/* MAIL, RCPT and DATA in one write */
	struct plan plan;
	int *acc;		/* recipients the server took */
	size_t nacc;
	const char *from;	/* the sender as sent */
	const char **to;	/* each recipient as sent; NULL: decided here */
	struct strlist owned;	/* the strings of from and to made here */
	size_t nto;		/* recipients sent */
	char params[512];	/* MAIL's parameters */
	char notify[48];	/* RCPT's */
};

/* too_big - over the server's SIZE (RFC 1870): every recipient fails */
static int
too_big(struct smtp *s, struct txn *t)
{
	struct result tmp;

	if (!(s->ext & EXT_SIZE) || s->maxsize == 0 ||
	    (unsigned long long)t->size <= s->maxsize)
		return 0;
	result_at(&tmp, OUT_PERM, R_TOO_BIG, s->host, s->peer, "%s", "");
	tmp.size = (long long)t->size;
	tmp.limit = s->maxsize > (unsigned long long)LLONG_MAX ?
	    LLONG_MAX : (long long)s->maxsize;
	set_all(t, NULL, &tmp);
	return 1;
}

/* no_utf8 - rres: addr cannot be sent to s without SMTPUTF8 (5.6.7) */
static void
no_utf8(struct result *rres, const struct smtp *s, const char *addr)
{
	result_at(rres, OUT_PERM, R_NO_SMTPUTF8, s->host, s->peer, "%s", addr);
}

/* owned - a copy of a kept with x, or NULL when out of memory */
static const char *
owned(struct xfer *x, const char *a)
{
	return strlist_add(&x->owned, a) < 0 ? NULL :
	    x->owned.v[x->owned.n - 1];
}

/*
 * wire_addrs - the envelope as this server gets it (RFC 6531 3.7.4): as
 * given in an SMTPUTF8 session or when it is ASCII; otherwise domains as
 * A-labels, and a recipient whose local part is not ASCII decided here
 * (5.6.7), every recipient when the sender's is not.  x->nto counts what
 * is left to send.
 */
static void
wire_addrs(struct xfer *x)
{
	struct txn *t = x->t;
	char a[2 * ADDR_MAX];
	size_t i;

	x->from = t->sender;
	x->nto = 0;
	for (i = 0; i < t->n; i++)
		x->to[i] = t->rcpts[i];
	if (x->plan.utf8 || !(t->shape & SHAPE_EAI)) {
		x->nto = t->n;
		return;
	}
	if (has8(t->sender, strlen(t->sender))) {
		if (addr_alabel(t->sender, a, sizeof(a)) != AD_OK) {
			for (i = 0; i < t->n; i++) {
				no_utf8(&t->rres[i], x->s, t->sender);
				x->to[i] = NULL;
			}
			return;
		}
		if ((x->from = owned(x, a)) == NULL) {
			for (i = 0; i < t->n; i++) {
				result_oom(&t->rres[i]);
				x->to[i] = NULL;
			}
			return;
		}
	}
	for (i = 0; i < t->n; i++) {
		if (!has8(t->rcpts[i], strlen(t->rcpts[i]))) {
			x->nto++;
			continue;
		}
		if (addr_alabel(t->rcpts[i], a, sizeof(a)) != AD_OK) {
			no_utf8(&t->rres[i], x->s, t->rcpts[i]);
			x->to[i] = NULL;
			continue;
		}
		if ((x->to[i] = owned(x, a)) == NULL)
			result_oom(&t->rres[i]);
		else
			x->nto++;
	}
}

/* decided_here - a message the server cannot take, by what it said at
 * EHLO: over its SIZE, no recipient it can be sent to, or not
 * convertible to what it takes.  Every recipient's result is set; 1
 * when decided. */
static int
decided_here(struct xfer *x)
{
	struct smtp *s = x->s;
	struct txn *t = x->t;
	struct result tmp;

	if (too_big(s, t))
		return 1;
	if (x->nto == 0)
		return 1;
	if (!x->plan.convert)
		return 0;
	/* RFC 6152 3: convert, or refuse; find out before MAIL. */
	switch (convertible(t, &x->plan, &tmp)) {
	case P_UNCONVERTIBLE:
		result_at(&tmp, OUT_PERM, R_8BIT, s->host, s->peer, "%s", "");
		set_all(t, NULL, &tmp);
		return 1;
	case P_OK:
		return 0;
	default:
		set_all(t, NULL, &tmp);
		return 1;
	}
}

/* mail_params - MAIL's parameters (RFC 1870, RFC 6152, RFC 3030,
 * RFC 6531, RFC 3461) and RCPT's NOTIFY, as far as the server takes
 * them */
static void
mail_params(struct xfer *x)
{
	const struct smtp *s = x->s;
	const struct txn *t = x->t;
	char *p = x->params;
	size_t len = sizeof(x->params), n;

	p[0] = '\0';
	x->notify[0] = '\0';
	if (s->ext & EXT_SIZE)
		snprintf(p, len, " SIZE=%lld", (long long)t->size);
	n = strlen(p);
	if (x->plan.body)
		snprintf(p + n, len - n, " BODY=%s", x->plan.body);
	n = strlen(p);
	if (x->plan.utf8)
		snprintf(p + n, len - n, " SMTPUTF8");
	n = strlen(p);
	if ((s->ext & EXT_DSN) && t->ret)
		snprintf(p + n, len - n, " RET=%s", t->ret);
	n = strlen(p);
	if ((s->ext & EXT_DSN) && t->envid)
		xtext(p + n, len - n, " ENVID=", t->envid);
	if ((s->ext & EXT_DSN) && t->notify)
		snprintf(x->notify, sizeof(x->notify), " NOTIFY=%s", t->notify);
}

/* rcpt_cmd - RCPT for recipient i, with NOTIFY and ORCPT (RFC 3461 4.2:
 * the address as it was given) where the server offers DSN */
static int
rcpt_cmd(struct xfer *x, size_t i)
{
	char orcpt[4 * ADDR_MAX + 32] = "";

	if (x->s->ext & EXT_DSN)
		orcpt_param(orcpt, sizeof(orcpt), x->t->rcpts[i], x->plan.utf8);
	return s_cmd(x->s, "RCPT TO:<%s>%s%s", x->to[i], x->notify, orcpt);
}

/* mail_refused - MAIL's reply r refused: every recipient gets it */
static void
mail_refused(struct xfer *x, const struct reply *r)
{
	struct result tmp;
	size_t i;

	say(&tmp, class_of(r->code) == OUT_OK ? OUT_TEMP : class_of(r->code),
	    x->s, r, STEP_MAIL);
	for (i = 0; i < x->t->n; i++)
		if (x->to[i])
			x->t->rres[i] = tmp;
}

/* rcpt_reply - recipient i's reply r to RCPT */
static void
rcpt_reply(struct xfer *x, size_t i, const struct reply *r)
{
	if (r->code / 100 == 2) {
		x->acc[i] = 1;
		x->nacc++;
	} else
		say(&x->t->rres[i], class_of(r->code) == OUT_OK ? OUT_TEMP :
		    class_of(r->code), x->s, r, STEP_RCPT);
}

/* envelope_pipelined - RFC 2920 3.1: the previous message's content and
 * end of data, then MAIL, every RCPT and DATA (not with BDAT), in one
 * write; the replies come back in that order.  P_OK with DATA's reply
 * in r. */
static enum pstep
envelope_pipelined(struct xfer *x, struct txn *prev, struct reply *r,
    struct result *res)
{
	struct smtp *s = x->s;
	size_t i;
	int mail_ok, bad;

	bad = s_cmd(s, "MAIL FROM:<%s>%s", x->from, x->params);
	for (i = 0; i < x->t->n && !bad; i++)
		bad = x->to[i] && rcpt_cmd(x, i) < 0;
	if (bad || (!x->plan.bdat && s_cmd(s, "DATA") < 0))
		return oom(res);
	if (s_flush(s, s->cmd_timeout, res) < 0 ||
	    (prev && finish_txn(s, prev, 1, res) != OUT_OK) ||
	    s_reply(s, r, s->cmd_timeout, res) < 0)
		return P_LOST;
	if (!(mail_ok = r->code / 100 == 2))
		mail_refused(x, r);
	for (i = 0; i < x->t->n; i++) {
		if (x->to[i] == NULL)
			continue;
		if (s_reply(s, r, s->cmd_timeout, res) < 0)
			return P_LOST;
		if (mail_ok)
			rcpt_reply(x, i, r);
	}
	if (x->plan.bdat)
		return s_none(s, res) < 0 ? P_LOST : mail_ok ? P_OK : P_REFUSED;
	if (s_reply(s, r, s->cmd_timeout, res) < 0 || s_none(s, res) < 0)
		return P_LOST;
	return P_OK;
}

/* envelope_lockstep - MAIL, then each RCPT, a reply at a time, and DATA
 * (not with BDAT) when a recipient was taken: P_OK with DATA's reply in
 * r; P_REFUSED when MAIL or every RCPT was refused */
static enum pstep
envelope_lockstep(struct xfer *x, struct reply *r, struct result *res)
{
	struct smtp *s = x->s;
	size_t i;

	if (s_cmd(s, "MAIL FROM:<%s>%s", x->from, x->params) < 0)
		return oom(res);
	if (ask(s, r, res) != P_OK)
		return P_LOST;
	if (r->code / 100 != 2) {
		mail_refused(x, r);
		return P_REFUSED;
	}
	for (i = 0; i < x->t->n; i++) {
		if (x->to[i] == NULL)
			continue;
		if (rcpt_cmd(x, i) < 0)
			return oom(res);
		if (ask(s, r, res) != P_OK)
			return P_LOST;
		rcpt_reply(x, i, r);
	}
	if (x->nacc == 0)
		return P_REFUSED;
	if (x->plan.bdat)
		return P_OK;
	if (s_cmd(s, "DATA") < 0)
		return oom(res);
	return ask(s, r, res) != P_OK || s_none(s, res) < 0 ? P_LOST : P_OK;
}

/* bdat_replies - read the replies owed to chunks sent, down to keep; the
 * first that is not 2xx becomes the result of every recipient taken
 * (*failed set), later ones are read and dropped */
static enum pstep
bdat_replies(struct xfer *x, int *owed, int keep, int *failed,
    struct result *res)
{
	struct smtp *s = x->s;
	struct result tmp;
	struct reply r;

	while (*owed > keep) {
		if (s_flush(s, s->data_timeout, res) < 0 ||
		    s_reply(s, &r, s->data_timeout, res) < 0)
			return P_LOST;
		(*owed)--;
		if (r.code / 100 == 2 || *failed)
			continue;
		say(&tmp, class_of(r.code) == OUT_OK ? OUT_TEMP :
		    class_of(r.code), s, &r, STEP_BDAT);
		set_all(x->t, x->acc, &tmp);
		*failed = 1;
	}
	return P_OK;
}

/* BDAT chunk size: large enough that a chunk's reply costs nothing. */
#define BDAT_CHUNK (4 * WRITE_BLOCK)

/*
 * send_bdat - RFC 3030 2: the message in BDAT chunks, not dot-stuffed,
 * the last one "BDAT n LAST", whose reply is the final reply (read as
 * after DATA's dot, or left pending with hold).  With PIPELINING a
 * chunk's reply is read while the next chunk is on its way; without,
 * each in turn.  A chunk refused ends the transaction: P_REFUSED, the
 * recipients taken get that reply.
 */
static enum pstep
send_bdat(struct xfer *x, int hold, struct result *res)
{
	struct smtp *s = x->s;
	struct buf data;
	struct src b;
	enum pstep rc;
	int end = 0, owed = 0, failed = 0;

	if ((rc = src_open(&b, x->t, &x->plan, res)) != P_OK)
		return rc;
	buf_init(&data, 0);
	while (!failed) {
		if ((rc = src_next(&b, &data, &end, res)) != P_OK)
			goto out;
		if (data.len < BDAT_CHUNK && !end)
			continue;
		if (buf_printf(&s->out, "BDAT %zu%s\r\n", data.len,
		    end ? " LAST" : "") < 0 ||
		    buf_add(&s->out, data.p, data.len) < 0) {
			rc = oom(res);
			goto out;
		}
		buf_reset(&data);
		if (end)
			break;
		owed++;
		if ((rc = bdat_replies(x, &owed, x->pipe, &failed, res)) !=
		    P_OK)
			goto out;
	}
	if ((rc = bdat_replies(x, &owed, 0, &failed, res)) != P_OK)
		goto out;
	shown(x->t, &x->plan);
	if (failed)
		rc = P_REFUSED;
	else
		rc = hold || s_flush(s, s->data_timeout, res) == 0 ? P_OK :
		    P_LOST;
out:
	src_close(&b, s, rc == P_OK);
	buf_free(&data);
	return unconverted(s, rc, res);
}

/* content - after the envelope (and DATA's reply r): the body and its
 * end (the final reply not read), or P_REFUSED when there is nothing to
 * send */
static enum pstep
content(struct xfer *x, struct reply *r, struct result *res)
{
	struct smtp *s = x->s;
	struct result tmp;
	int hold = x->t->may_pend && x->pipe;

	if (x->plan.bdat)
		return x->nacc == 0 ? P_REFUSED : send_bdat(x, hold, res);
	if (r->code != 354) {
		if (x->nacc > 0) {
			say(&tmp, class_of(r->code) == OUT_OK ? OUT_TEMP :
			    class_of(r->code), s, r, STEP_DATA);
			set_all(x->t, x->acc, &tmp);
		}
		return P_REFUSED;
	}
	if (x->nacc == 0) {
		/* RFC 2920 3.1: every RCPT failed but DATA was accepted:
		 * end the empty message at once; nobody receives it. */
		if (buf_add(&s->out, ".\r\n", 3) < 0 || ask(s, r, res) != P_OK)
			return P_LOST;
		return P_REFUSED;
	}
	return send_data(s, x->t, &x->plan, hold, res);
}

/* rset - end a transaction that sent nothing; OUT_OK when the
 * connection can carry another */
static enum outcome
rset(struct smtp *s, struct result *res)
{
	struct reply r;

	if (s_cmd(s, "RSET") < 0 || ask(s, &r, res) != P_OK ||
	    r.code / 100 != 2 || s_none(s, res) < 0)
		return OUT_TEMP;
	return OUT_OK;
}

/* send_lost - the connection failed during t (prev still in flight, or
 * NULL): recipients refused for good before stay refused */
static void
send_lost(struct smtp *s, struct txn *t, struct txn *prev,
    const struct result *res)
{
	size_t i;

	if (prev && prev->pending) {
		/* Lost before the previous message's reply came back. */
		prev->pending = 0;
		lost_after_dot(prev, s, res);
		free(prev->acc);
		prev->acc = NULL;
	}
	for (i = 0; i < t->n; i++)
		if (t->rres[i].o != OUT_PERM)
			t->rres[i] = *res;
}

/* xfer_init - x for t on s: the plan, the envelope as sent; -1 when out
 * of memory */
static int
xfer_init(struct xfer *x, struct smtp *s, struct txn *t)
{
	memset(x, 0, sizeof(*x));
	x->s = s;
	x->t = t;
	strlist_init(&x->owned);
	/* RFC 2920 3.1: a client must not fill the server's output while
	 * it is not reading; past PIPE_RCPT_MAX recipients go in lockstep. */
	x->pipe = (s->ext & EXT_PIPELINING) && t->n <= PIPE_RCPT_MAX;
	plan_of(s, t, &x->plan);
	if ((x->acc = calloc(t->n ? t->n : 1, sizeof(int))) == NULL ||
	    (x->to = calloc(t->n ? t->n : 1, sizeof(char *))) == NULL)
		return -1;
	wire_addrs(x);
	return 0;
}

static void
xfer_free(struct xfer *x)
{
	free(x->acc);
	free(x->to);
	strlist_free(&x->owned);
}

enum outcome
smtp_send(struct smtp *s, struct txn *t, struct txn *prev, struct result *res)
{
	struct xfer x;
	struct result tmp;
	struct reply r;
	enum outcome rc = OUT_TEMP;
	enum pstep p;

	t->pending = 0;
	t->acc = NULL;
	/* Until a server says otherwise, every recipient is deferred. */
	result_at(&tmp, OUT_TEMP, R_UNFINISHED, s->host, s->peer, "%s", "");
	set_all(t, NULL, &tmp);
	if (xfer_init(&x, s, t) < 0) {
		result_oom(res);
		set_all(t, NULL, res);
		if (prev)
			(void)smtp_finish(s, prev, res);
		goto out;
	}
	s->ntxn++;
	if (decided_here(&x)) {
		/* Without a word to the server. */
		rc = !prev || smtp_finish(s, prev, res) == OUT_OK ? OUT_OK :
		    OUT_TEMP;
		goto out;
	}
	/* Without PIPELINING nothing may wait behind an end of data. */
	if (prev && !x.pipe && smtp_finish(s, prev, res) != OUT_OK) {
		p = P_LOST;
		goto end;
	}
	mail_params(&x);
	p = x.pipe ? envelope_pipelined(&x, prev, &r, res) :
	    envelope_lockstep(&x, &r, res);
	if (p == P_OK)
		p = content(&x, &r, res);
end:
	switch (p) {
	case P_OK:
		t->acc = x.acc;
		x.acc = NULL;
		t->pending = 1;
		xfer_free(&x);
		if (t->may_pend && x.pipe)
			return OUT_OK;	/* the caller reads the final reply */
		return smtp_finish(s, t, res);
	case P_REFUSED:
		rc = rset(s, res);
		break;
	case P_LOCAL:
		/* Our side failed: abandon the connection so that the server
		 * never takes a partial message. */
		set_all(t, x.acc, res);
		if (prev && prev->pending)
			send_lost(s, t, prev, res);
		break;
	default:
		send_lost(s, t, prev, res);
		break;
	}
out:
	xfer_free(&x);
	if (rc != OUT_OK && res->o == OUT_OK)
		result_at(res, OUT_TEMP, R_NOT_REUSABLE, s->host, s->peer, "%s",
		    "");
	return rc;
}
