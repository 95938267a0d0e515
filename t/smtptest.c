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
struct pstep {
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
peer(int lfd, const struct pstep *s)
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
run(const struct pstep *steps, const char *msg, const char **rcpts,
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

static void
test_engine(void)
{
	struct result rres[3], res;
	char text[ERRTEXT_MAX], want[ERRTEXT_MAX];
	enum outcome oo, so;
	const char *two[] = { "b@y.test", "c@y.test" };
	const char *one[] = { "b@y.test" };
	int st;

	{
		static const struct pstep s[] = {
			{ 'S', "220 mx.test ESMTP\r\n" },
			{ 'C', "EHLO client.test\r\n" },
			{ 'S', "250-mx.test\r\n250-PIPELINING\r\n250 SIZE\r\n" },
			{ 'C', "MAIL FROM:<a@x.test> SIZE=25\r\n"
			    "RCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\nDATA\r\n" },
			{ 'S', "250 ok\r\n250 ok\r\n550 5.1.1 no such user\r\n"
			    "354 go\r\n" },
			{ 'C', "Subject: x\r\n\r\n..dot\r\nend\r\n.\r\n" },
			{ 'S', "250 2.0.0 queued as X\r\n" },
			{ 'C', "QUIT\r\n" },
			{ 'S', "221 bye\r\n" },
			{ 0, NULL },
		};
		st = run(s, "Subject: x\r\n\r\n.dot\r\nend\r\n", two, 2, rres,
		    &oo, &so, &res);
		is_int(st, 0, "pipelined: the server saw exactly the right bytes");
		is_int(oo, OUT_OK, "pipelined: open ok");
		is_int(so, OUT_OK, "pipelined: connection reusable");
		is_int(rres[0].o, OUT_OK, "pipelined: b accepted");
		is_int(rres[1].o, OUT_PERM, "pipelined: c refused for good");
		ok(rres[1].why == R_REPLY && rres[1].step == STEP_RCPT &&
		    rres[1].code == 550 && strcmp(rres[1].status, "5.1.1") == 0 &&
		    strcmp(rres[1].host, "mx.test") == 0 &&
		    strncmp(rres[1].peer, "[127.0.0.1]:", 12) == 0 &&
		    strcmp(rres[1].text, "5.1.1 no such user") == 0,
		    "pipelined: c's result: the server and its reply to RCPT");
		result_text(&rres[1], "c@y.test", text, sizeof(text));
		snprintf(want, sizeof(want), "mx.test%s said: 550 5.1.1 no such "
		    "user (in reply to RCPT TO:<c@y.test>)", rres[1].peer);
		is_str(text, want, "pipelined: c's error in words");
	}
	{
		static const struct pstep s[] = {
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
			{ 'C', "QUIT\r\n" },
			{ 'S', "221 bye\r\n" },
			{ 0, NULL },
		};
		st = run(s, "x\r\n", two, 2, rres, &oo, &so, &res);
		is_int(st, 0, "HELO fallback, lockstep: exact bytes");
		is_int(rres[0].o, OUT_TEMP, "lockstep: b deferred");
		is_int(rres[1].o, OUT_OK, "lockstep: c delivered");
	}
	{
		static const struct pstep s[] = {
			{ 'S', "220 mx.test\r\n" },
			{ 'C', "EHLO client.test\r\n" },
			{ 'S', "250 mx.test\r\n" },
			{ 'C', "MAIL FROM:<a@x.test>\r\n" },
			{ 'S', "250 ok\r\n" },
			{ 'C', "RCPT TO:<b@y.test>\r\n" },
			{ 'S', "250 ok\r\n" },
			{ 'C', "DATA\r\n" },
			{ 'S', "354 go\r\n" },
			{ 'C', "x\r\n.\r\n" },
			{ 'X', "" },
			{ 0, NULL },
		};
		st = run(s, "x\r\n", one, 1, rres, &oo, &so, &res);
		is_int(st, 0, "drop after the dot: peer ran");
		is_int(so, OUT_TEMP, "drop after the dot: connection lost");
		is_int(rres[0].o, OUT_TEMP, "drop after the dot: deferred");
		ok((rres[0].why == R_CLOSED || rres[0].why == R_NETIO) &&
		    rres[0].step == STEP_DOT, "drop after the dot: lost at the "
		    "end of data");
		result_text(&rres[0], NULL, text, sizeof(text));
		ok(strlen(text) > 21 && strcmp(text + strlen(text) - 21,
		    " (possible duplicate)") == 0,
		    "drop after the dot: flagged as a possible duplicate");
	}
	{
		static const struct pstep s[] = {
			{ 'S', "554 5.3.2 go away\r\n" },
			{ 'C', "QUIT\r\n" },
			{ 'S', "221 bye\r\n" },
			{ 0, NULL },
		};
		st = run(s, "x\r\n", one, 1, rres, &oo, &so, &res);
		is_int(st, 0, "554 greeting: QUIT sent");
		is_int(oo, OUT_PERM, "554 greeting: open fails");
		ok(res.why == R_REPLY && res.step == STEP_GREETING &&
		    res.code == 554 && strcmp(res.status, "5.3.2") == 0 &&
		    strcmp(res.text, "5.3.2 go away") == 0,
		    "554 greeting: reason kept");
	}
	{
		static const struct pstep s[] = {
			{ 'S', "220 mx.test\r\n" },
			{ 'C', "EHLO client.test\r\n" },
			{ 'S', "250-mx.test\r\n250 SIZE 10\r\n" },
			{ 'C', "QUIT\r\n" },
			{ 'S', "221 bye\r\n" },
			{ 0, NULL },
		};
		st = run(s, "0123456789abcdef\r\n", one, 1, rres, &oo, &so, &res);
		is_int(st, 0, "SIZE limit: no MAIL sent");
		is_int(rres[0].o, OUT_PERM, "SIZE limit: refused for good");
	}
	{
		static const struct pstep s[] = {
			{ 'S', "220 mx.test\r\n" },
			{ 'C', "EHLO client.test\r\n" },
			{ 'S', "250 mx.test\r\n" },
			{ 'C', "MAIL FROM:<a@x.test>\r\n" },
			{ 'S', "hello there\r\n" },
			{ 0, NULL },
		};
		st = run(s, "x\r\n", one, 1, rres, &oo, &so, &res);
		is_int(st, 0, "garbage reply: peer ran");
		is_int(rres[0].o, OUT_TEMP, "garbage reply: deferred");
		is_int(rres[0].why, R_PROTOCOL, "garbage reply: protocol error");
	}
	{
		static const struct pstep s[] = {
			{ 'S', "220 mx.test\r\n" },
			{ 'C', "EHLO client.test\r\n" },
			{ 'S', "250 mx.test\r\n250 surprise\r\n" },
			{ 0, NULL },
		};
		st = run(s, "x\r\n", one, 1, rres, &oo, &so, &res);
		is_int(st, 0, "stray reply after EHLO: peer ran");
		is_int(oo, OUT_TEMP, "stray reply after EHLO: the session fails");
		ok(res.why == R_PROTOCOL && strcmp(res.text,
		    "unexpected data after a reply") == 0,
		    "stray reply after EHLO: protocol error (%s)", res.text);
	}
	{
		static const struct pstep s[] = {
			{ 'S', "220 mx.test\r\n" },
			{ 'C', "EHLO client.test\r\n" },
			{ 'S', "250 mx.test\r\n" },
			{ 'C', "MAIL FROM:<a@x.test>\r\n" },
			{ 'S', "250 ok\r\n" },
			{ 'C', "RCPT TO:<b@y.test>\r\n" },
			{ 'S', "250 ok\r\n" },
			{ 'C', "DATA\r\n" },
			{ 'S', "354 go\r\n" },
			{ 'C', "x\r\n.\r\n" },
			{ 'S', "354 what?\r\n" },
			{ 'C', "QUIT\r\n" },
			{ 'S', "221 bye\r\n" },
			{ 0, NULL },
		};
		st = run(s, "x\r\n", one, 1, rres, &oo, &so, &res);
		is_int(st, 0, "3xx after the end of data: peer ran");
		is_int(rres[0].o, OUT_TEMP, "3xx after the end of data: deferred, "
		    "not delivered");
	}
	{
		static const struct pstep s[] = {
			{ 'S', "220 mx.test\r\n" },
			{ 'C', "EHLO client.test\r\n" },
			{ 'S', "250-mx.test\r\n250 PIPELINING\r\n" },
			{ 'C', "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\n"
			    "DATA\r\n" },
			{ 'S', "451 4.3.0 later\r\n503 no mail\r\n503 no rcpt\r\n" },
			{ 'C', "RSET\r\n" },
			{ 'S', "250 ok\r\n" },
			{ 'C', "QUIT\r\n" },
			{ 'S', "221 bye\r\n" },
			{ 0, NULL },
		};
		st = run(s, "x\r\n", one, 1, rres, &oo, &so, &res);
		is_int(st, 0, "MAIL 451 pipelined: all replies read, RSET");
		is_int(rres[0].o, OUT_TEMP, "MAIL 451: recipient deferred");
		ok(rres[0].why == R_REPLY && rres[0].step == STEP_MAIL &&
		    rres[0].code == 451 && strcmp(rres[0].text, "4.3.0 later") ==
		    0, "MAIL 451: the MAIL reply is the reason");
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
