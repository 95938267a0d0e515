/*
 * server.c - sendmail -bs: an SMTP server on standard input and output,
 * for the clients that submit mail that way (Symfony Mailer, Alpine,
 * swaks --pipe).  RFC 5321 as a receiver, with PIPELINING (RFC 2920),
 * 8BITMIME (RFC 6152), SIZE (RFC 1870) and ENHANCEDSTATUSCODES (RFC
 * 2034).  No AUTH, no STARTTLS: the client is a local process, already
 * known by its uid.
 *
 * Every accepted message goes through submit.c, the intake of -t, into
 * the queue; the reply to the final "." is "250 ... queued as ID" only
 * once the message is on disk for good.  The caller hears of each queued
 * message and delivers it (sendmail.c: at once with -odb, after the
 * session with -odi, never with -odq).
 *
 * Replies are buffered and written before the server waits for input,
 * so a pipelining client gets a whole group of replies in one write
 * (RFC 2920 3.2 item 2).
 *
 * Untrusted input: a command line is at most SMTPD_LINE_MAX octets of
 * printable US-ASCII; anything else is answered with 500 and never looked
 * at further.  Addresses go through the same checks as those of the
 * command line.  A client that keeps sending errors is cut off after
 * SMTPD_ERRORS_MAX of them; one that stops sending after command_timeout
 * (data_timeout inside DATA).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>

#include "mxsend.h"

/* Longest command line, without CRLF.  RFC 5321 4.5.3.1.4 allows 512
 * octets with CRLF and lets extensions add their parameters (SIZE=,
 * BODY=); 1000 leaves room for a 320-octet path with parameters and still
 * stops a client that sends a message where a command belongs. */
#define SMTPD_LINE_MAX 1000
/* Error replies before the server gives up on the client (Postfix's
 * smtpd_hard_error_limit is 20; a local client has no excuse for 10). */
#define SMTPD_ERRORS_MAX 10
/* Flush the reply buffer when it holds this much, even mid-group. */
#define SMTPD_OUT_FLUSH 8192

struct session {
	const struct conf *c;
	const struct subopts *so;
	struct reader *rd;
	int out;		/* fd of the replies */
	struct buf obuf;	/* replies not yet written */
	int werr;		/* writing failed: the client is gone */
	struct envelope e;
	int in_mail;		/* MAIL accepted, transaction open */
	int errors;
	int done;		/* QUIT, EOF, timeout, cut off */
	void (*queued)(const char *, void *);	/* told each queue ID */
	void *qarg;
};

/*
 * flush - write the buffered replies.  A client that does not read them
 * within command_timeout is given up: each write waits for room (POLLOUT)
 * and is at most PIPE_BUF octets, which a pipe with room takes whole.
 */
static void
flush(void *arg)
{
	struct session *s = arg;
	size_t off = 0;

	while (off < s->obuf.len && !s->werr) {
		size_t n = s->obuf.len - off;
		ssize_t w;

		if (wait_fd(s->out, POLLOUT,
		    deadline_in(s->c->command_timeout)) <= 0) {
			s->werr = 1;
			break;
		}
		w = write(s->out, s->obuf.p + off, n > PIPE_BUF ? PIPE_BUF : n);
		if (w < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (w <= 0) {
			s->werr = 1;
			break;
		}
		off += (size_t)w;
	}
	if (s->werr)
		s->done = 1;
	buf_reset(&s->obuf);
}

/* reply - one reply line; a 5xx counts as an error of the client */
static void reply(struct session *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static void
reply(struct session *s, const char *fmt, ...)
{
	va_list ap;
	char line[600];

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	buf_adds(&s->obuf, line);
	buf_add(&s->obuf, "\r\n", 2);
	if (line[0] == '5')
		s->errors++;
	if (s->obuf.len >= SMTPD_OUT_FLUSH)
		flush(s);
}

/* reset - forget the transaction (RSET, HELO, EHLO, after DATA) */
static void
reset(struct session *s)
{
	env_free(&s->e);
	env_init(&s->e);
	s->in_mail = 0;
}

/* What path_split found. */
enum path_status {
	PATH_OK,
	PATH_SYNTAX,	/* a syntax error: a bad command */
	PATH_UNCLOSED	/* the brackets do not close: a bad address */
};

/*
 * path_split - the argument of MAIL or RCPT: word ("FROM:" or "TO:",
 * any case), then "<path> params" or "path params" (RFC 5321 4.1.2; a
 * space after the colon is tolerated): the path with its brackets, and
 * the parameters after it.  A '>' inside a quoted local part does not end
 * the path.
 */
static enum path_status
path_split(char *arg, const char *word, char **path, char **params)
{
	size_t n = strlen(word);
	char *p;
	int quoted = 0;

	if (arg == NULL || strncasecmp(arg, word, n) != 0)
		return PATH_SYNTAX;
	p = arg + n;
	while (*p == ' ')
		p++;
	*path = p;
	if (*p == '<') {
		for (p++; *p && (quoted || *p != '>'); p++) {
			if (*p == '\\' && quoted && p[1])
				p++;
			else if (*p == '"')
				quoted = !quoted;
		}
		if (*p != '>')
			return PATH_UNCLOSED;
		p++;
	} else
		p += strcspn(p, " ");
	if ((*p != '\0' && *p != ' ') || p == *path)
		return PATH_SYNTAX;
	if (*p)
		*p++ = '\0';
	*params = p;
	/* A source route, "<@a,@b:user@c>", is ignored (RFC 5321 4.1.1.3,
	 * C.). */
	if (strncmp(*path, "<@", 2) == 0 && (p = strchr(*path, ':')) != NULL) {
		*p = '<';
		*path = p;
	}
	return PATH_OK;
}

/* The commands that carry a path, "VERB WORD<path> params". */
struct pathcmd {
	const char *verb, *word;
	int in_mail;		/* the transaction it needs: open or not */
	const char *state;	/* the 503 reply's text when it is not so */
	const char *bad;	/* the code and what the address is, for a 501
				 * reply about it */
};

static const struct pathcmd mail_from = {
	"MAIL", "FROM:", 0, "nested MAIL command", "5.1.7 Bad sender address"
};
static const struct pathcmd rcpt_to = {
	"RCPT", "TO:", 1, "need MAIL command", "5.1.3 Bad recipient address"
};

/*
 * take_path - the path and parameters of command pc, or the reply that
 * refuses it: 503 in the wrong state of the transaction, 501 for its
 * syntax or a path that does not close.  0, or -1 when refused.
 */
static int
take_path(struct session *s, const struct pathcmd *pc, char *arg,
    char **path, char **params)
{
	if (s->in_mail != pc->in_mail) {
		reply(s, "503 5.5.1 Error: %s", pc->state);
		return -1;
	}
	switch (path_split(arg, pc->word, path, params)) {
	case PATH_OK:
		return 0;
	case PATH_SYNTAX:
		reply(s, "501 5.5.4 Syntax: %s %s<address>", pc->verb,
		    pc->word);
		break;
	case PATH_UNCLOSED:
		reply(s, "501 %s: no closing '>'", pc->bad);
		break;
	}
	return -1;
}

/*
 * next_param - the next "KEY[=VALUE]" of a parameter list, split in
 * place; NULL at the end
 */
static char *
next_param(char **list, char **value)
{
	char *p = *list, *k;

	while (*p == ' ')
		p++;
	if (*p == '\0')
		return NULL;
	k = p;
	p += strcspn(p, " ");
	if (*p)
		*p++ = '\0';
	*list = p;
	*value = strchr(k, '=');
	if (*value)
		*(*value)++ = '\0';
	return k;
}

static void
cmd_mail(struct session *s, char *arg)
{
	char err[300], *path, *params, *k, *v;
	unsigned long long size = 0;
	struct subres sr;

	if (take_path(s, &mail_from, arg, &path, &params) < 0)
		return;
	while ((k = next_param(&params, &v)) != NULL) {
		if (strcasecmp(k, "SIZE") == 0 && v && *v &&
		    strlen(v) <= 20 && v[strspn(v, "0123456789")] == '\0') {
			/* RFC 1870 6: refuse what is known to be too big;
			 * below MESSAGE_SIZE_MAX, size is a long long that
			 * submit_admit can add to (20 digits past
			 * ULLONG_MAX: strtoull gives ULLONG_MAX). */
			size = strtoull(v, NULL, 10);
			if (size >= (unsigned long long)MESSAGE_SIZE_MAX ||
			    (s->c->max_message_size > 0 && size >
			    (unsigned long long)s->c->max_message_size)) {
				reply(s, "552 5.3.4 Message size exceeds fixed "
				    "limit");
				return;
			}
		} else if (strcasecmp(k, "BODY") == 0 && v &&
		    (strcasecmp(v, "7BIT") == 0 ||
		    strcasecmp(v, "8BITMIME") == 0)) {
			/* The body is scanned for 8-bit octets anyway. */
		} else if (strcasecmp(k, "SIZE") == 0 ||
		    strcasecmp(k, "BODY") == 0) {
			reply(s, "501 5.5.4 Bad %s parameter value", k);
			return;
		} else {
			reply(s, "555 5.5.4 Unsupported parameter: %.100s", k);
			return;
		}
	}
	if (submit_sender(s->c, path, &s->e, err, sizeof(err)) < 0) {
		reply(s, "501 5.1.7 Bad sender address: %s", err);
		return;
	}
	/* The user's queue quota and the root reserve (submit.c), with the
	 * size the client announced; checked again at the end of data. */
	switch (submit_admit(s->c, (long long)size, NULL, &sr)) {
	case SUB_OK:
		break;
	case SUB_QUOTA:
	case SUB_RESERVE:
		printable(err, sizeof(err), sr.text, strlen(sr.text));
		reply(s, "452 4.3.1 Error: %s", err);
		return;
	default:
		printable(err, sizeof(err), sr.text, strlen(sr.text));
		reply(s, "451 4.3.0 Error: %s", err);
		return;
	}
	s->in_mail = 1;
	reply(s, "250 2.1.0 Ok");
}

static void
cmd_rcpt(struct session *s, char *arg)
{
	char err[300], *path, *params, *k, *v;
	enum add_status r;

	if (take_path(s, &rcpt_to, arg, &path, &params) < 0)
		return;
	if ((k = next_param(&params, &v)) != NULL) {
		reply(s, "555 5.5.4 Unsupported parameter: %.100s", k);
		return;
	}
	r = submit_rcpt(s->c, &s->e, path, "Bad recipient address", err,
	    sizeof(err));
	if (r == ADD_OK)
		reply(s, "250 2.1.5 Ok");
	else if (r == ADD_FULL)
		reply(s, "452 4.5.3 Error: too many recipients");
	else
		reply(s, "501 5.1.3 %s", err);
}

static void
cmd_data(struct session *s, char *arg)
{
	struct subres sr;
	char text[sizeof(sr.text)];

	if (arg) {
		reply(s, "501 5.5.4 Syntax: DATA");
		return;
	}
	if (!s->in_mail) {
		reply(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (s->e.nr == 0) {
		reply(s, "503 5.5.1 Error: need RCPT command");
		return;
	}
	reply(s, "354 End data with <CR><LF>.<CR><LF>");
	s->rd->timeout = s->c->data_timeout;
	submit_message(s->c, s->rd, &s->e, s->so, &sr);
	s->rd->timeout = s->c->command_timeout;
	printable(text, sizeof(text), sr.text, strlen(sr.text));
	switch (sr.st) {
	case SUB_OK:
		reply(s, "250 2.0.0 Ok: queued as %s", s->e.id);
		if (s->queued)
			s->queued(s->e.id, s->qarg);
		break;
	case SUB_DATA:
		text[0] = (char)toupper((unsigned char)text[0]);
		reply(s, "554 5.6.0 %s", text);
		break;
	case SUB_TOOBIG:
		reply(s, "552 5.3.4 Message size exceeds fixed limit");
		break;
	case SUB_QUEUE:
	case SUB_TEMP:
		reply(s, "451 4.3.0 Error: %s", text);
		break;
	case SUB_QUOTA:
	case SUB_RESERVE:
		reply(s, "452 4.3.1 Error: %s", text);
		break;
	case SUB_TIMEOUT:
		reply(s, "421 4.4.2 %s Error: timeout exceeded",
		    s->c->hostname);
		s->done = 1;
		break;
	case SUB_IOERR:
	case SUB_EOF:
		s->done = 1;
		break;
	}
	if (sr.st != SUB_OK && sr.st != SUB_EOF)
		logmsg(LOG_NOTICE, "-bs: message refused: %s", text);
	reset(s);
}

/* The commands; a NULL handler is a known command not offered here. */
enum verb {
	V_HELO, V_EHLO, V_MAIL, V_RCPT, V_DATA, V_RSET, V_NOOP, V_QUIT,
	V_HELP, V_VRFY, V_NOTIMPL
};

static const struct {
	const char *name;
	enum verb v;
} verbs[] = {
	{ "HELO", V_HELO }, { "EHLO", V_EHLO }, { "MAIL", V_MAIL },
	{ "RCPT", V_RCPT }, { "DATA", V_DATA }, { "RSET", V_RSET },
	{ "NOOP", V_NOOP }, { "QUIT", V_QUIT }, { "HELP", V_HELP },
	{ "VRFY", V_VRFY }, { "EXPN", V_NOTIMPL }, { "STARTTLS", V_NOTIMPL },
	{ "AUTH", V_NOTIMPL }, { "BDAT", V_NOTIMPL }, { "ETRN", V_NOTIMPL },
	{ "TURN", V_NOTIMPL },
};

/* command - one command line, checked to be printable US-ASCII */
static void
command(struct session *s, char *line)
{
	char *arg;
	size_t i, n = strcspn(line, " ");

	arg = line[n] ? line + n + 1 : NULL;
	line[n] = '\0';
	if (arg && *arg == '\0')
		arg = NULL;
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strcasecmp(line, verbs[i].name) == 0)
			break;
	if (i == sizeof(verbs) / sizeof(verbs[0])) {
		reply(s, "500 5.5.2 Error: command not recognized");
		return;
	}
	switch (verbs[i].v) {
	case V_HELO:
	case V_EHLO:
		if (arg == NULL) {
			reply(s, "501 5.5.4 Syntax: %s hostname", verbs[i].name);
			break;
		}
		reset(s);
		if (verbs[i].v == V_HELO) {
			reply(s, "250 %s", s->c->hostname);
			break;
		}
		reply(s, "250-%s", s->c->hostname);
		reply(s, "250-PIPELINING");
		if (s->c->max_message_size > 0)
			reply(s, "250-SIZE %lld", s->c->max_message_size);
		else
			reply(s, "250-SIZE");
		reply(s, "250-8BITMIME");
		reply(s, "250-ENHANCEDSTATUSCODES");
		reply(s, "250 HELP");
		break;
	case V_MAIL:
		cmd_mail(s, arg);
		break;
	case V_RCPT:
		cmd_rcpt(s, arg);
		break;
	case V_DATA:
		cmd_data(s, arg);
		break;
	case V_RSET:
		if (arg) {
			reply(s, "501 5.5.4 Syntax: RSET");
			break;
		}
		reset(s);
		reply(s, "250 2.0.0 Ok");
		break;
	case V_NOOP:
		reply(s, "250 2.0.0 Ok");
		break;
	case V_QUIT:
		reply(s, "221 2.0.0 Bye");
		s->done = 1;
		break;
	case V_HELP:
		reply(s, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET "
		    "NOOP QUIT HELP VRFY");
		break;
	case V_VRFY:
		if (arg == NULL)
			reply(s, "501 5.5.4 Syntax: VRFY address");
		else
			reply(s, "252 2.5.2 Cannot VRFY user");
		break;
	case V_NOTIMPL:
		reply(s, "502 5.5.1 Error: command not implemented");
		break;
	}
}

/* printable_ascii - only octets 0x20-0x7e */
static int
printable_ascii(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20 || (unsigned char)p[i] > 0x7e)
			return 0;
	return 1;
}

/*
 * smtp_server - run one session on fds in and out; queued(ID, arg) is
 * called for each message accepted, right after its reply.  Returns 0,
 * or -1 when the replies could not be written (the client went away).
 */
int
smtp_server(const struct conf *c, const struct subopts *so, int in, int out,
    void (*queued)(const char *, void *), void *arg)
{
	struct session s;
	struct buf line;
	enum rd_status r;
	int rc;

	memset(&s, 0, sizeof(s));
	s.c = c;
	s.so = so;
	s.out = out;
	s.queued = queued;
	s.qarg = arg;
	buf_init(&s.obuf, 0);
	buf_init(&line, 0);
	env_init(&s.e);
	s.rd = xmalloc(sizeof(*s.rd));
	rd_init(s.rd, in, c->command_timeout);
	s.rd->before_wait = flush;
	s.rd->arg = &s;

	reply(&s, "220 %s ESMTP mxsend", c->hostname);
	while (!s.done) {
		if (s.errors >= SMTPD_ERRORS_MAX) {
			reply(&s, "421 4.7.0 %s Error: too many errors",
			    c->hostname);
			break;
		}
		r = rd_line(s.rd, &line, SMTPD_LINE_MAX);
		if (r == RD_TOOLONG) {
			/* The rest of the line is dropped unread. */
			if (rd_skip_line(s.rd) != RD_ERR ||
			    errno != ETIMEDOUT) {
				reply(&s, "500 5.5.2 Error: line too long");
				continue;
			}
			r = RD_ERR;
		}
		if (r == RD_ERR && errno == ETIMEDOUT)
			reply(&s, "421 4.4.2 %s Error: timeout exceeded",
			    c->hostname);
		if (r != RD_OK)
			break;
		if (!printable_ascii(line.p, line.len)) {
			reply(&s, "500 5.5.2 Error: bad character in command");
			continue;
		}
		command(&s, line.p);
	}
	flush(&s);
	rc = s.werr ? -1 : 0;
	env_free(&s.e);
	buf_free(&line);
	buf_free(&s.obuf);
	free(s.rd);
	return rc;
}
