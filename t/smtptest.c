/*
 * smtptest.c - the SMTP reply parser, and the client engine against a
 * scripted peer on loopback that checks every byte the client sends.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mxsend.h"
#include "t/tap.h"

/* reply_parse cases: the result n, and what is checked besides (code
 * and nlines when not 0, text and err when not NULL) */
static const struct pcase {
	const char *in, *name;
	ssize_t n;
	int code, nlines;
	const char *text, *err;
} pcases[] = {
	{ "250 ok\r\n", "single line", 8, 250, 0, "ok", NULL },
	{ "250-mx.example\r\n250-PIPELINING\r\n250 SIZE 1000\r\n",
	    "multi-line", 47, 0, 3, "mx.example\nPIPELINING\nSIZE 1000", NULL },
	{ "250-a\r\n250-b\r\n", "incomplete multi-line needs more", 0, 0, 0,
	    NULL, NULL },
	{ "250 ok", "line without end needs more", 0, 0, 0, NULL, NULL },
	{ "250\r\n", "code only is a reply", 5, 0, 0, "", NULL },
	{ "250 ok\n", "bare LF accepted", 7, 0, 0, NULL, NULL },
	{ "250 one\r\n354 two\r\n", "pipelined replies: only the first is "
	    "taken", 9, 0, 0, NULL, NULL },
	{ "250-a\r\n251 b\r\n", "code changing inside a reply is an error",
	    -1, 0, 0, NULL, "reply code changes within a reply" },
	{ "25O ok\r\n", "letter in code", -1, 0, 0, NULL, NULL },
	{ "650 ok\r\n", "first digit over 5", -1, 0, 0, NULL, NULL },
	{ "150 ok\r\n", "first digit under 2", -1, 0, 0, NULL, NULL },
	{ "260 ok\r\n", "second digit over 5", -1, 0, 0, NULL, NULL },
	{ "250_ok\r\n", "bad separator", -1, 0, 0, NULL, NULL },
	{ "25\r\n", "short line", -1, 0, 0, NULL, NULL },
	{ "HTTP/1.1 400 Bad Request\r\n", "not SMTP at all", -1, 0, 0, NULL,
	    NULL },
	{ "250 a\x01\x1b[31mb\xff\r\n", "control characters in text: parsed",
	    15, 0, 0, "a??[31mb?", NULL },
};

static void
test_parser(void)
{
	const struct pcase *c;
	struct reply r;
	char err[100];
	size_t i;

	for (i = 0; i < sizeof(pcases) / sizeof(pcases[0]); i++) {
		c = &pcases[i];
		memset(&r, 0, sizeof(r));
		err[0] = '\0';
		is_int(reply_parse(c->in, strlen(c->in), &r, err, sizeof(err)),
		    c->n, "%s", c->name);
		if (c->code)
			is_int(r.code, c->code, "%s: code", c->name);
		if (c->nlines)
			is_int(r.nlines, c->nlines, "%s: lines", c->name);
		if (c->text)
			is_str(r.text, c->text, "%s: text", c->name);
		if (c->err)
			is_str(err, c->err, "%s: its message", c->name);
	}
}

/* test_parser_limits - a line, the lines and the text of a reply past
 * their limits */
static void
test_parser_limits(void)
{
	static char big[4000];
	struct reply r;
	struct buf b;
	char err[100];
	int i;

	memset(big, 'x', sizeof(big));
	memcpy(big, "250 ", 4);
	is_int(reply_parse(big, sizeof(big), &r, err, sizeof(err)), -1,
	    "line over the limit without an end");
	big[sizeof(big) - 2] = '\r';
	big[sizeof(big) - 1] = '\n';
	is_int(reply_parse(big, sizeof(big), &r, err, sizeof(err)), -1,
	    "line over the limit with an end");
	buf_init(&b, 0);
	for (i = 0; i < REPLY_LINES_MAX; i++)
		buf_adds(&b, "250-x\r\n");
	buf_adds(&b, "250 x\r\n");
	is_int(reply_parse(b.p, b.len, &r, err, sizeof(err)), -1,
	    "more than REPLY_LINES_MAX lines");
	is_str(err, "reply has too many lines", "  its message");
	buf_reset(&b);
	for (i = 0; i < 60; i++)
		buf_adds(&b, "250-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n");
	buf_adds(&b, "250 x\r\n");
	is_int(reply_parse(b.p, b.len, &r, err, sizeof(err)), -1,
	    "reply text over REPLY_TEXT_MAX");
	buf_free(&b);
}

/* A scripted peer: 'S' sends, 'C' expects exactly these client bytes,
 * 'X' closes the connection. */
struct step {
	char dir;
	const char *text;
};

static int
read_exact(int fd, char *p, size_t n)
{
	struct pollfd pf = { fd, POLLIN, 0 };

	while (n > 0) {
		ssize_t r;

		if (poll(&pf, 1, 5000) <= 0)
			return -1;
		r = read(fd, p, n);
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static void
peer(int lfd, const struct step *s)
{
	int fd = accept(lfd, NULL, NULL);
	char got[8192];

	if (fd < 0)
		_exit(2);
	for (; s->dir; s++) {
		size_t n = strlen(s->text);

		if (s->dir == 'S' && write(fd, s->text, n) != (ssize_t)n)
			_exit(3);
		if (s->dir == 'X')
			_exit(0);
		if (s->dir == 'C') {
			memset(got, 0, sizeof(got));
			if (n >= sizeof(got) || read_exact(fd, got, n) < 0 ||
			    memcmp(got, s->text, n) != 0) {
				printf("# peer expected [%s]\n# got [%s]\n",
				    s->text, got);
				fflush(stdout);
				_exit(1);
			}
		}
	}
	/* Nothing more may arrive. */
	if (read(fd, got, 1) > 0) {
		printf("# peer: unexpected bytes after the script\n");
		_exit(4);
	}
	_exit(0);
}

/* run - the client side against a peer playing steps; returns the
 * peer's exit status. */
static int
run(const struct step *steps, const char *msg, const char **rcpts,
    size_t n, struct result *rres, enum outcome *open_o,
    enum outcome *send_o, struct result *res)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	struct mxaddr a;
	struct conf c;
	struct smtp s;
	struct txn t;
	struct tlsopts plain = { TLS_NONE, 0, "mx.test", NULL, NULL };
	char path[] = "/tmp/smtptest.XXXXXX";
	int lfd, mfd, status;
	pid_t pid;

	conf_defaults(&c);
	snprintf(c.hostname, sizeof(c.hostname), "client.test");
	c.command_timeout = c.data_timeout = c.connect_timeout = 5;
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(lfd, 1) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &sl) < 0)
		return -1;
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		peer(lfd, steps);
	close(lfd);
	memset(&a, 0, sizeof(a));
	snprintf(a.host, sizeof(a.host), "mx.test");
	memcpy(&a.sa, &sin, sizeof(sin));
	a.salen = sizeof(sin);
	mfd = mkstemp(path);
	unlink(path);
	if (write(mfd, msg, strlen(msg)) < 0)
		return -1;
	*send_o = OUT_TEMP;
	*open_o = smtp_open(&s, &a, &c, &plain, res);
	if (*open_o == OUT_OK) {
		memset(&t, 0, sizeof(t));
		t.sender = "a@x.test";
		t.rcpts = rcpts;
		t.n = n;
		t.rres = rres;
		t.msgfd = mfd;
		t.size = (off_t)strlen(msg);
		t.body8 = 0;
		t.id = "TEST";
		*send_o = smtp_send(&s, &t, NULL, res);
		smtp_close(&s, *send_o == OUT_OK);
	}
	close(mfd);
	conf_free(&c);
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

/* Pieces the scripts share: the greeting and EHLO of a server without
 * extensions, one recipient in lockstep up to the end of the data, the
 * QUIT, the end. */
#define HELLO \
	{ 'S', "220 mx.test\r\n" }, \
	{ 'C', "EHLO client.test\r\n" }
#define PLAIN_HELLO HELLO, { 'S', "250 mx.test\r\n" }
#define ONE_MESSAGE \
	{ 'C', "MAIL FROM:<a@x.test>\r\n" }, \
	{ 'S', "250 ok\r\n" }, \
	{ 'C', "RCPT TO:<b@y.test>\r\n" }, \
	{ 'S', "250 ok\r\n" }, \
	{ 'C', "DATA\r\n" }, \
	{ 'S', "354 go\r\n" }, \
	{ 'C', "x\r\n.\r\n" }
#define BYE { 'C', "QUIT\r\n" }, { 'S', "221 bye\r\n" }
#define END { 0, NULL }

static const struct step pipelined[] = {
	{ 'S', "220 mx.test ESMTP\r\n" },
	{ 'C', "EHLO client.test\r\n" },
	{ 'S', "250-mx.test\r\n250-PIPELINING\r\n250 SIZE\r\n" },
	{ 'C', "MAIL FROM:<a@x.test> SIZE=25\r\n"
	    "RCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\nDATA\r\n" },
	{ 'S', "250 ok\r\n250 ok\r\n550 5.1.1 no such user\r\n354 go\r\n" },
	{ 'C', "Subject: x\r\n\r\n..dot\r\nend\r\n.\r\n" },
	{ 'S', "250 2.0.0 queued as X\r\n" },
	BYE, END,
};
static const struct step helo_lockstep[] = {
	{ 'S', "220 old.test\r\n" },
	{ 'C', "EHLO client.test\r\n" },
	{ 'S', "502 5.5.1 what?\r\n" },
	{ 'C', "HELO client.test\r\n" },
	{ 'S', "250 old.test\r\n" },
	{ 'C', "MAIL FROM:<a@x.test>\r\n" },
	{ 'S', "250 ok\r\n" },
	{ 'C', "RCPT TO:<b@y.test>\r\n" },
	{ 'S', "450 4.2.0 busy\r\n" },
	{ 'C', "RCPT TO:<c@y.test>\r\n" },
	{ 'S', "250 ok\r\n" },
	{ 'C', "DATA\r\n" },
	{ 'S', "354 go\r\n" },
	{ 'C', "x\r\n.\r\n" },
	{ 'S', "250 ok\r\n" },
	BYE, END,
};
static const struct step drop_after_dot[] = {
	PLAIN_HELLO, ONE_MESSAGE, { 'X', "" }, END,
};
static const struct step greeting_554[] = {
	{ 'S', "554 5.3.2 go away\r\n" }, BYE, END,
};
static const struct step size_limit[] = {
	HELLO, { 'S', "250-mx.test\r\n250 SIZE 10\r\n" }, BYE, END,
};
static const struct step garbage_reply[] = {
	PLAIN_HELLO,
	{ 'C', "MAIL FROM:<a@x.test>\r\n" },
	{ 'S', "hello there\r\n" },
	END,
};
static const struct step stray_reply[] = {
	HELLO, { 'S', "250 mx.test\r\n250 surprise\r\n" }, END,
};
static const struct step reply_3xx_after_data[] = {
	PLAIN_HELLO, ONE_MESSAGE, { 'S', "354 what?\r\n" }, BYE, END,
};
static const struct step mail_451_pipelined[] = {
	HELLO,
	{ 'S', "250-mx.test\r\n250 PIPELINING\r\n" },
	{ 'C', "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n" },
	{ 'S', "451 4.3.0 later\r\n503 no mail\r\n503 no rcpt\r\n" },
	{ 'C', "RSET\r\n" },
	{ 'S', "250 ok\r\n" },
	BYE, END,
};

/* What a session is checked for: an outcome (smtp_open's, smtp_send's,
 * a recipient's) or an error text (a recipient's or the session's), which
 * must start with prefix (unless NULL) and contain has. */
enum what { OPEN, SEND, RCPT1, RCPT2, TEXT1, TEXT2, TEXT };
struct check {
	enum what what;
	enum outcome o;
	const char *prefix, *has, *name;
};
#define CHECKS_MAX 5

/* One session: the message to a@x.test's recipients b@y.test (and
 * c@y.test when nrcpt is 2) against a peer playing steps, who must see
 * exactly the bytes of its script (the test named peer). */
static const struct ecase {
	const char *name;
	const struct step *steps;
	const char *msg;
	size_t nrcpt;
	const char *peer;
	struct check c[CHECKS_MAX];
} ecases[] = {
	{ "pipelined", pipelined, "Subject: x\r\n\r\n.dot\r\nend\r\n", 2,
	    "the server saw exactly the right bytes", {
		{ OPEN, OUT_OK, NULL, NULL, "open ok" },
		{ SEND, OUT_OK, NULL, NULL, "connection reusable" },
		{ RCPT1, OUT_OK, NULL, NULL, "b accepted" },
		{ RCPT2, OUT_PERM, NULL, NULL, "c refused for good" },
		{ TEXT2, OUT_OK, "mx.test[127.0.0.1]:", " said: 550 5.1.1 no "
		    "such user (in reply to RCPT TO:<c@y.test>)",
		    "c's error names the server and the reply" } } },
	{ "HELO fallback, lockstep", helo_lockstep, "x\r\n", 2, "exact bytes", {
		{ RCPT1, OUT_TEMP, NULL, NULL, "b deferred" },
		{ RCPT2, OUT_OK, NULL, NULL, "c delivered" } } },
	{ "drop after the dot", drop_after_dot, "x\r\n", 1, "peer ran", {
		{ SEND, OUT_TEMP, NULL, NULL, "connection lost" },
		{ RCPT1, OUT_TEMP, NULL, NULL, "deferred" },
		{ TEXT1, OUT_OK, NULL, "possible duplicate",
		    "flagged as a possible duplicate" } } },
	{ "554 greeting", greeting_554, "x\r\n", 1, "QUIT sent", {
		{ OPEN, OUT_PERM, NULL, NULL, "open fails" },
		{ TEXT, OUT_OK, NULL, "554 5.3.2 go away (in reply to the "
		    "greeting)", "reason kept" } } },
	{ "SIZE limit", size_limit, "0123456789abcdef\r\n", 1, "no MAIL sent", {
		{ RCPT1, OUT_PERM, NULL, NULL, "refused for good" } } },
	{ "garbage reply", garbage_reply, "x\r\n", 1, "peer ran", {
		{ RCPT1, OUT_TEMP, NULL, NULL, "deferred" },
		{ TEXT1, OUT_OK, NULL, "protocol error", "protocol error" } } },
	{ "stray reply after EHLO", stray_reply, "x\r\n", 1, "peer ran", {
		{ OPEN, OUT_TEMP, NULL, NULL, "the session fails" },
		{ TEXT, OUT_OK, NULL, "unexpected data after a reply",
		    "protocol error" } } },
	{ "3xx after the end of data", reply_3xx_after_data, "x\r\n", 1,
	    "peer ran", {
		{ RCPT1, OUT_TEMP, NULL, NULL, "deferred, not delivered" } } },
	{ "MAIL 451 pipelined", mail_451_pipelined, "x\r\n", 1,
	    "all replies read, RSET", {
		{ RCPT1, OUT_TEMP, NULL, NULL, "recipient deferred" },
		{ TEXT1, OUT_OK, NULL, "451 4.3.0 later (in reply to MAIL FROM)",
		    "the MAIL reply is the reason" } } },
};

/* check - one check of a session's results */
static void
check(const char *name, const struct check *c, enum outcome oo,
    enum outcome so, const struct result *rres, const struct result *res)
{
	enum outcome got[] = { oo, so, rres[0].o, rres[1].o };
	const char *text;

	if (c->what <= RCPT2) {
		is_int(got[c->what], c->o, "%s: %s", name, c->name);
		return;
	}
	text = c->what == TEXT ? res->text : rres[c->what - TEXT1].text;
	ok((c->prefix == NULL || strncmp(text, c->prefix,
	    strlen(c->prefix)) == 0) && strstr(text, c->has) != NULL,
	    "%s: %s (%s)", name, c->name, text);
}

static void
test_engine(void)
{
	static const char *rcpts[] = { "b@y.test", "c@y.test" };
	const struct ecase *e;
	struct result rres[2], res;
	enum outcome oo, so;
	size_t i, k;

	for (i = 0; i < sizeof(ecases) / sizeof(ecases[0]); i++) {
		e = &ecases[i];
		memset(rres, 0, sizeof(rres));
		memset(&res, 0, sizeof(res));
		is_int(run(e->steps, e->msg, rcpts, e->nrcpt, rres, &oo, &so,
		    &res), 0, "%s: %s", e->name, e->peer);
		for (k = 0; k < CHECKS_MAX && e->c[k].name != NULL; k++)
			check(e->name, &e->c[k], oo, so, rres, &res);
	}
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	test_parser();
	test_parser_limits();
	test_engine();
	return tap_done();
}
