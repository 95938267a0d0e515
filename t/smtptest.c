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

/* What the client saw of one session. */
struct sess {
	int peer;			/* the peer's exit status */
	enum outcome open, send;	/* smtp_open's, smtp_send's */
	struct result rres[2], res;
};

/* An outcome a session must have, checked as the test NAME (not checked
 * when NAME is NULL). */
struct want {
	enum outcome o;
	const char *name;
};

/* An engine session: the peer sends greeting; unless ehlo is NULL it
 * expects EHLO and answers ehlo; then it plays each of steps (NULL
 * ends them).  The client sends msg to the first n of rcpts.  name
 * tests that the peer saw exactly its script; check, unless NULL,
 * tests the result facts. */
struct scase {
	const char *name;
	const char *greeting, *ehlo;
	const struct pstep *steps[4];
	const char *msg;
	size_t n;
	struct want open, send, rcpt[2];
	void (*check)(const struct sess *);
};

static const char *rcpts[] = { "b@y.test", "c@y.test" };

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

/* play - one peer step on fd; 'X' and any failure end the peer */
static void
play(int fd, const struct pstep *s)
{
	char got[8192];
	size_t n = strlen(s->text);

	if (s->dir == 'S' && write(fd, s->text, n) != (ssize_t)n)
		_exit(3);
	if (s->dir == 'X')
		_exit(0);
	if (s->dir == 'C') {
		memset(got, 0, sizeof(got));
		if (n >= sizeof(got) || read_exact(fd, got, n) < 0 ||
		    memcmp(got, s->text, n) != 0) {
			printf("# peer expected [%s]\n# got [%s]\n", s->text,
			    got);
			fflush(stdout);
			_exit(1);
		}
	}
}

/* peer - k's script on the first connection to lfd; exits 0 when the
 * client sent exactly what it expects */
static void
peer(int lfd, const struct scase *k)
{
	const struct pstep greet = { 'S', k->greeting },
	    ehlo[] = { { 'C', "EHLO client.test\r\n" }, { 'S', k->ehlo } };
	const struct pstep *s;
	char got[1];
	int fd = accept(lfd, NULL, NULL);
	size_t i;

	if (fd < 0)
		_exit(2);
	play(fd, &greet);
	if (k->ehlo != NULL) {
		play(fd, &ehlo[0]);
		play(fd, &ehlo[1]);
	}
	for (i = 0; k->steps[i] != NULL; i++)
		for (s = k->steps[i]; s->dir; s++)
			play(fd, s);
	/* Nothing more may arrive. */
	if (read(fd, got, 1) > 0) {
		printf("# peer: unexpected bytes after the script\n");
		_exit(4);
	}
	_exit(0);
}

/* listen_loopback - a listening socket on 127.0.0.1, its address in
 * sin; -1 on failure */
static int
listen_loopback(struct sockaddr_in *sin)
{
	socklen_t sl = sizeof(*sin);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);

	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)sin, sizeof(*sin)) < 0 ||
	    listen(lfd, 1) < 0 ||
	    getsockname(lfd, (struct sockaddr *)sin, &sl) < 0)
		return -1;
	return lfd;
}

/* client - k's message through the engine to the server at sin, what
 * happened in s */
static void
client(const struct scase *k, const struct sockaddr_in *sin,
    struct sess *s)
{
	struct mxaddr a;
	struct conf c;
	struct smtp sm;
	struct txn t;
	struct tlsopts plain = { TLS_NONE, 0, "mx.test", NULL, NULL };
	char path[] = "/tmp/smtptest.XXXXXX";
	int mfd;

	conf_defaults(&c);
	snprintf(c.hostname, sizeof(c.hostname), "client.test");
	c.command_timeout = c.data_timeout = c.connect_timeout = 5;
	memset(&a, 0, sizeof(a));
	snprintf(a.host, sizeof(a.host), "mx.test");
	memcpy(&a.sa, sin, sizeof(*sin));
	a.salen = sizeof(*sin);
	mfd = mkstemp(path);
	unlink(path);
	if (write(mfd, k->msg, strlen(k->msg)) < 0)
		printf("# cannot write the message\n");
	s->send = OUT_TEMP;
	s->open = smtp_open(&sm, &a, &c, &plain, &s->res);
	if (s->open == OUT_OK) {
		memset(&t, 0, sizeof(t));
		t.sender = "a@x.test";
		t.rcpts = rcpts;
		t.n = k->n;
		t.rres = s->rres;
		t.msgfd = mfd;
		t.size = (off_t)strlen(k->msg);
		t.id = "TEST";
		s->send = smtp_send(&sm, &t, NULL, &s->res);
		smtp_close(&sm, s->send == OUT_OK);
	}
	close(mfd);
	conf_free(&c);
}

/* run - k's session, the client against a peer playing its script;
 * s->peer is the peer's exit status */
static void
run(const struct scase *k, struct sess *s)
{
	struct sockaddr_in sin;
	int lfd, status;
	pid_t pid;

	memset(s, 0, sizeof(*s));
	s->peer = -1;
	lfd = listen_loopback(&sin);
	if (lfd < 0)
		return;
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		peer(lfd, k);
	close(lfd);
	client(k, &sin, s);
	waitpid(pid, &status, 0);
	s->peer = WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

static void
check_pipelined(const struct sess *s)
{
	const struct result *r = &s->rres[1];
	char text[ERRTEXT_MAX], want[ERRTEXT_MAX];

	ok(r->why == R_REPLY && r->step == STEP_RCPT && r->code == 550 &&
	    strcmp(r->status, "5.1.1") == 0 &&
	    strcmp(r->host, "mx.test") == 0 &&
	    strncmp(r->peer, "[127.0.0.1]:", 12) == 0 &&
	    strcmp(r->text, "5.1.1 no such user") == 0,
	    "pipelined: c's result: the server and its reply to RCPT");
	result_text(r, "c@y.test", text, sizeof(text));
	snprintf(want, sizeof(want), "mx.test%s said: 550 5.1.1 no such "
	    "user (in reply to RCPT TO:<c@y.test>)", r->peer);
	is_str(text, want, "pipelined: c's error in words");
}

static void
check_drop(const struct sess *s)
{
	const struct result *r = &s->rres[0];
	char text[ERRTEXT_MAX];

	ok((r->why == R_CLOSED || r->why == R_NETIO) && r->step == STEP_DOT,
	    "drop after the dot: lost at the end of data");
	result_text(r, NULL, text, sizeof(text));
	ok(strlen(text) > 21 && strcmp(text + strlen(text) - 21,
	    " (possible duplicate)") == 0,
	    "drop after the dot: flagged as a possible duplicate");
}

static void
check_greeting_554(const struct sess *s)
{
	const struct result *r = &s->res;

	ok(r->why == R_REPLY && r->step == STEP_GREETING && r->code == 554 &&
	    strcmp(r->status, "5.3.2") == 0 &&
	    strcmp(r->text, "5.3.2 go away") == 0, "554 greeting: reason kept");
}

static void
check_garbage(const struct sess *s)
{
	is_int(s->rres[0].why, R_PROTOCOL, "garbage reply: protocol error");
}

static void
check_stray(const struct sess *s)
{
	ok(s->res.why == R_PROTOCOL && strcmp(s->res.text,
	    "unexpected data after a reply") == 0,
	    "stray reply after EHLO: protocol error (%s)", s->res.text);
}

static void
check_mail_451(const struct sess *s)
{
	const struct result *r = &s->rres[0];

	ok(r->why == R_REPLY && r->step == STEP_MAIL && r->code == 451 &&
	    strcmp(r->text, "4.3.0 later") == 0,
	    "MAIL 451: the MAIL reply is the reason");
}

/* The parts of the scripts after EHLO. */
static const struct pstep quit[] = {
	{ 'C', "QUIT\r\n" },
	{ 'S', "221 bye\r\n" },
	{ 0, NULL },
}, pipelined[] = {
	{ 'C', "MAIL FROM:<a@x.test> SIZE=25\r\n"
	    "RCPT TO:<b@y.test>\r\nRCPT TO:<c@y.test>\r\nDATA\r\n" },
	{ 'S', "250 ok\r\n250 ok\r\n550 5.1.1 no such user\r\n354 go\r\n" },
	{ 'C', "Subject: x\r\n\r\n..dot\r\nend\r\n.\r\n" },
	{ 'S', "250 2.0.0 queued as X\r\n" },
	{ 0, NULL },
}, helo_lockstep[] = {
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
	{ 0, NULL },
}, to_the_dot[] = {		/* lockstep, "x" to b@y.test */
	{ 'C', "MAIL FROM:<a@x.test>\r\n" },
	{ 'S', "250 ok\r\n" },
	{ 'C', "RCPT TO:<b@y.test>\r\n" },
	{ 'S', "250 ok\r\n" },
	{ 'C', "DATA\r\n" },
	{ 'S', "354 go\r\n" },
	{ 'C', "x\r\n.\r\n" },
	{ 0, NULL },
}, drop[] = {
	{ 'X', "" },
	{ 0, NULL },
}, dot_354[] = {
	{ 'S', "354 what?\r\n" },
	{ 0, NULL },
}, garbage[] = {
	{ 'C', "MAIL FROM:<a@x.test>\r\n" },
	{ 'S', "hello there\r\n" },
	{ 0, NULL },
}, mail_451[] = {
	{ 'C', "MAIL FROM:<a@x.test>\r\nRCPT TO:<b@y.test>\r\nDATA\r\n" },
	{ 'S', "451 4.3.0 later\r\n503 no mail\r\n503 no rcpt\r\n" },
	{ 'C', "RSET\r\n" },
	{ 'S', "250 ok\r\n" },
	{ 0, NULL },
};

static const struct scase scases[] = {
	{ "pipelined: the server saw exactly the right bytes",
	    "220 mx.test ESMTP\r\n",
	    "250-mx.test\r\n250-PIPELINING\r\n250 SIZE\r\n",
	    { pipelined, quit }, "Subject: x\r\n\r\n.dot\r\nend\r\n", 2,
	    { OUT_OK, "pipelined: open ok" },
	    { OUT_OK, "pipelined: connection reusable" },
	    { { OUT_OK, "pipelined: b accepted" },
	    { OUT_PERM, "pipelined: c refused for good" } }, check_pipelined },
	{ "HELO fallback, lockstep: exact bytes", "220 old.test\r\n",
	    "502 5.5.1 what?\r\n", { helo_lockstep, quit }, "x\r\n", 2,
	    { 0, NULL }, { 0, NULL },
	    { { OUT_TEMP, "lockstep: b deferred" },
	    { OUT_OK, "lockstep: c delivered" } }, NULL },
	{ "drop after the dot: peer ran", "220 mx.test\r\n", "250 mx.test\r\n",
	    { to_the_dot, drop }, "x\r\n", 1,
	    { 0, NULL }, { OUT_TEMP, "drop after the dot: connection lost" },
	    { { OUT_TEMP, "drop after the dot: deferred" } }, check_drop },
	{ "554 greeting: QUIT sent", "554 5.3.2 go away\r\n", NULL,
	    { quit }, "x\r\n", 1,
	    { OUT_PERM, "554 greeting: open fails" }, { 0, NULL },
	    { { 0, NULL } }, check_greeting_554 },
	{ "SIZE limit: no MAIL sent", "220 mx.test\r\n",
	    "250-mx.test\r\n250 SIZE 10\r\n", { quit },
	    "0123456789abcdef\r\n", 1,
	    { 0, NULL }, { 0, NULL },
	    { { OUT_PERM, "SIZE limit: refused for good" } }, NULL },
	{ "garbage reply: peer ran", "220 mx.test\r\n", "250 mx.test\r\n",
	    { garbage }, "x\r\n", 1,
	    { 0, NULL }, { 0, NULL },
	    { { OUT_TEMP, "garbage reply: deferred" } }, check_garbage },
	{ "stray reply after EHLO: peer ran", "220 mx.test\r\n",
	    "250 mx.test\r\n250 surprise\r\n", { NULL }, "x\r\n", 1,
	    { OUT_TEMP, "stray reply after EHLO: the session fails" },
	    { 0, NULL }, { { 0, NULL } }, check_stray },
	{ "3xx after the end of data: peer ran", "220 mx.test\r\n",
	    "250 mx.test\r\n", { to_the_dot, dot_354, quit }, "x\r\n", 1,
	    { 0, NULL }, { 0, NULL },
	    { { OUT_TEMP, "3xx after the end of data: deferred, not "
	    "delivered" } }, NULL },
	{ "MAIL 451 pipelined: all replies read, RSET", "220 mx.test\r\n",
	    "250-mx.test\r\n250 PIPELINING\r\n", { mail_451, quit }, "x\r\n", 1,
	    { 0, NULL }, { 0, NULL },
	    { { OUT_TEMP, "MAIL 451: recipient deferred" } }, check_mail_451 },
};

/* is_outcome - got is w's outcome, unless w is not checked */
static void
is_outcome(enum outcome got, const struct want *w)
{
	if (w->name != NULL)
		is_int(got, w->o, "%s", w->name);
}

/* test_engine - each of scases: the peer's verdict, the outcomes, then
 * the case's own checks of the result facts */
static void
test_engine(void)
{
	const struct scase *k;
	struct sess s;
	size_t i;

	for (i = 0; i < sizeof(scases) / sizeof(scases[0]); i++) {
		k = &scases[i];
		run(k, &s);
		is_int(s.peer, 0, "%s", k->name);
		is_outcome(s.open, &k->open);
		is_outcome(s.send, &k->send);
		is_outcome(s.rres[0].o, &k->rcpt[0]);
		is_outcome(s.rres[1].o, &k->rcpt[1]);
		if (k->check != NULL)
			k->check(&s);
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
