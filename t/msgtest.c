/*
 * msgtest.c - driver for msg.c's tests (t/msg.t).
 *
 *   t/msgtest hdr  < FILE   a header block: the fields, the addresses of
 *                           each address field, msg_rcpts, and the header
 *                           written after msg_fixup
 *   t/msgtest addr < FILE   one address list a line: addresses, qualified
 *   t/msgtest check < FILE  one envelope address a line: addr_check,
 *                           addr_domain, addr_qualify
 *   t/msgtest from FULLNAME SENDER   the From: msg_fixup makes
 *   t/msgtest unit          exact assertions on the API, as TAP lines
 *                           without a plan ("ok - name")
 *   t/msgtest fuzz FILE...  replay fuzz inputs (t/fuzz_msg.c)
 *
 * The fixup is fixed: now 0 in UTC, Message-ID <TESTID@host.example>,
 * qualify_domain host.example, user "user", null envelope sender.
 * Output is escaped: "\\", "\n", "\t", "\r", "\xNN" for other controls
 * and 8-bit octets.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mxsend.h"

#define FUZZ_MSG_NO_MAIN
#include "fuzz_msg.c"
#include "t/testlib.h"

#define DOMAIN "host.example"
#define INPUT_MAX (16 * 1024 * 1024)

static void
esc(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\\')
			fputs("\\\\", stdout);
		else if (c == '\n')
			fputs("\\n", stdout);
		else if (c == '\t')
			fputs("\\t", stdout);
		else if (c == '\r')
			fputs("\\r", stdout);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
}

static void
escs(const char *s)
{
	esc(s, strlen(s));
}

static void
fixup_init(struct fixup *fx)
{
	memset(fx, 0, sizeof(*fx));
	fx->sender = "";
	fx->fullname = NULL;
	fx->user = "user";
	fx->qualify_domain = DOMAIN;
	fx->hostname = DOMAIN;
	fx->msgid = "TESTID";
	fx->now = 0;
}

static void
print_list(const struct strlist *l)
{
	size_t i;

	if (l->n == 0)
		fputs(" (none)", stdout);
	for (i = 0; i < l->n; i++) {
		fputs(" <", stdout);
		escs(l->v[i]);
		putchar('>');
	}
	putchar('\n');
}

/* print_written - header_write output, one "| " line per CRLF line */
static void
print_written(const struct header *h)
{
	struct buf w;
	size_t s, e;

	buf_init(&w, 0);
	if (header_write(h, &w) < 0) {
		puts("header_write: ERROR");
		return;
	}
	for (s = 0; s < w.len; s = e + 2) {
		const char *nl = memchr(w.p + s, '\n', w.len - s);

		if (nl == NULL || nl == w.p + s || nl[-1] != '\r') {
			fputs("BAD LINE ENDING: ", stdout);
			esc(w.p + s, w.len - s);
			putchar('\n');
			break;
		}
		e = (size_t)(nl - w.p) - 1;
		fputs("| ", stdout);
		esc(w.p + s, e - s);
		putchar('\n');
	}
	buf_free(&w);
}

static int
is_addr_field(const char *name)
{
	static const char *const names[] = { "From", "Sender", "Reply-To",
	    "To", "Cc", "Bcc", "Resent-From", "Resent-Sender", "Resent-To",
	    "Resent-Cc", "Resent-Bcc", NULL };
	size_t k;

	for (k = 0; names[k] != NULL; k++)
		if (strcasecmp(name, names[k]) == 0)
			return 1;
	return 0;
}

static int
do_hdr(void)
{
	struct header h;
	struct strlist l;
	struct fixup fx;
	char err[512];
	char *in;
	size_t len, i, lineno;
	int rc;

	in = slurp(stdin, INPUT_MAX, &len);
	header_init(&h);
	rc = header_lines(&h, in, len, &lineno, err, sizeof(err));
	if (rc == 1)
		printf("end: body starts at line %zu\n", lineno);
	else if (rc == 0)
		printf("end: end of input after %zu lines\n", lineno);
	else
		printf("end: ERROR at line %zu: %s\n", lineno, err);
	printf("fields: %zu\n", h.n);
	for (i = 0; i < h.n; i++) {
		fputs("name=<", stdout);
		escs(h.f[i].name);
		fputs("> body=<", stdout);
		escs(h.f[i].body);
		puts(">");
	}
	if (rc < 0)
		goto out;
	for (i = 0; i < h.n; i++) {
		if (!is_addr_field(h.f[i].name))
			continue;
		strlist_init(&l);
		fputs("parsed ", stdout);
		escs(h.f[i].name);
		putchar(':');
		if (addrlist_parse(h.f[i].body, &l, err, sizeof(err)) < 0)
			printf(" ERROR: %s\n", err);
		else
			print_list(&l);
		strlist_free(&l);
	}
	strlist_init(&l);
	fputs("rcpts:", stdout);
	if (msg_rcpts(&h, &l, err, sizeof(err)) < 0)
		printf(" ERROR: %s\n", err);
	else
		print_list(&l);
	strlist_free(&l);
	fixup_init(&fx);
	if (msg_fixup(&h, &fx, err, sizeof(err)) < 0)
		printf("fixup: ERROR: %s\n", err);
	else
		puts("fixup: ok");
	print_written(&h);
out:
	header_free(&h);
	free(in);
	return 0;
}

/* each_line - every line of stdin, its LF cut off, through fn; 0 */
static int
each_line(void (*fn)(const char *))
{
	char *in;
	size_t len, s, e;

	in = slurp(stdin, INPUT_MAX, &len);
	for (s = 0; s < len; s = e + 1) {
		const char *nl = memchr(in + s, '\n', len - s);

		e = nl ? (size_t)(nl - in) : len;
		in[e] = '\0';
		fn(in + s);
	}
	free(in);
	return 0;
}

/* addr_line - addr mode: one address list; blank lines between them */
static void
addr_line(const char *line)
{
	static int first = 1;
	struct strlist l;
	struct buf q;
	char err[512];

	if (!first)
		putchar('\n');
	first = 0;
	if (strncmp(line, "# ", 2) == 0) {
		puts(line);
		first = 1;
		return;
	}
	fputs("list:  ", stdout);
	escs(line);
	putchar('\n');
	strlist_init(&l);
	if (addrlist_parse(line, &l, err, sizeof(err)) < 0)
		printf("error: %s\n", err);
	else {
		fputs("addrs:", stdout);
		print_list(&l);
	}
	strlist_free(&l);
	buf_init(&q, 0);
	if (addrlist_qualify(line, DOMAIN, &q) < 0)
		printf("qual:  ERROR, %s\n", strcmp(q.p ? q.p : "",
		    line) == 0 ? "unchanged" : "CHANGED");
	else {
		fputs("qual:  ", stdout);
		escs(q.p ? q.p : "");
		putchar('\n');
	}
	buf_free(&q);
}

static void
check_one(const char *a, int null_ok)
{
	char err[512], q[ADDR_MAX];
	const char *d;

	if (addr_check(a, null_ok, err, sizeof(err)) < 0) {
		printf("error %s\n", err);
		return;
	}
	fputs("ok    <", stdout);
	escs(a);
	fputs("> domain=", stdout);
	if ((d = addr_domain(a)) != NULL) {
		putchar('<');
		escs(d);
		putchar('>');
	} else
		fputs("(none)", stdout);
	fputs(" qualified=", stdout);
	if (addr_qualify(a, DOMAIN, q, sizeof(q)) < 0)
		puts("(too long)");
	else {
		putchar('<');
		escs(q);
		puts(">");
	}
}

/* check_line - check mode: one envelope address */
static void
check_line(const char *line)
{
	if (strncmp(line, "# ", 2) == 0) {
		puts(line);
		return;
	}
	check_one(line, 0);
	if (line[0] == '\0') {
		fputs("null_ok: ", stdout);
		check_one(line, 1);
	}
}

static int
do_from(const char *fullname, const char *sender)
{
	struct header h;
	struct fixup fx;
	struct hfield *f;
	char err[512];

	header_init(&h);
	fixup_init(&fx);
	fx.fullname = fullname;
	fx.sender = sender;
	if (msg_fixup(&h, &fx, err, sizeof(err)) < 0)
		printf("ERROR: %s\n", err);
	else if ((f = header_get(&h, "from")) == NULL)
		puts("no From");
	else {
		fputs("From:", stdout);
		escs(f->body);
		putchar('\n');
	}
	header_free(&h);
	return 0;
}

static int
do_fuzz(int argc, char **argv)
{
	if (replay(argc, argv, INPUT_MAX, fuzz_msg) != 0)
		return 1;
	printf("replayed %d inputs\n", argc);
	return 0;
}

/* The unit mode: exact assertions on what the golden files do not show. */

static int
add(struct header *h, const char *line)
{
	char err[256];

	return header_add_line(h, line, strlen(line), err, sizeof(err));
}

/* unit_header - the header block API */
static void
unit_header(void)
{
	struct header h;
	struct buf b;
	size_t n;
	clock_t t0;

	header_init(&h);
	add(&h, "To: a@b");
	add(&h, "SUBJECT: one");
	add(&h, "subject: two");
	add(&h, "X-Folded: x");
	add(&h, "\ty");
	unit_ok(header_get(&h, "subject") == &h.f[1], "header_get: first "
	    "match, case-insensitive");
	unit_ok(header_get(&h, "Subj") == NULL, "header_get: whole names");
	unit_ok(header_count(&h, "Subject") == 2, "header_count");
	unit_is(h.f[3].body, " x\n\ty", "continuation joined with \\n");
	unit_ok(header_append(&h, "X-Ok", " a\n b") == 0, "header_append");
	unit_ok(header_append(&h, "X-Bad", " a\r\nBcc: x") < 0,
	    "header_append refuses CR");
	unit_ok(header_append(&h, "X-Bad", " a\nBcc: x") < 0,
	    "header_append refuses a line break without whitespace");
	unit_ok(header_append(&h, "X Bad", " a") < 0 &&
	    header_append(&h, "", " a") < 0 &&
	    header_append(&h, "X:Bad", " a") < 0,
	    "header_append refuses bad names");
	unit_ok(h.n == 5, "refused fields are not added");
	header_remove(&h, "SUBJECT");
	unit_ok(h.n == 3 && header_count(&h, "subject") == 0,
	    "header_remove: every match");
	unit_ok(add(&h, " z") == 0 && strcmp(h.f[2].body, " a\n b\n z") == 0,
	    "continuation after header_append and header_remove");
	buf_init(&b, 0);
	unit_ok(header_write(&h, &b) == 0 && strcmp(b.p, "To: a@b\r\n"
	    "X-Folded: x\r\n\ty\r\nX-Ok: a\r\n b\r\n z\r\n") == 0,
	    "header_write");
	buf_free(&b);
	header_free(&h);

	/* 1 MB of one-octet continuation lines: linear, not quadratic */
	header_init(&h);
	add(&h, "To: a@b");
	t0 = clock();
	for (n = 0; add(&h, " ") == 0; n++)
		;
	unit_ok(n == (HEADER_MAX - 8) / 2 &&
	    strlen(h.f[0].body) == 4 + 2 * n, "continuations up to HEADER_MAX");
	unit_ok(clock() - t0 < 2 * CLOCKS_PER_SEC,
	    "continuations are not quadratic");
	header_free(&h);
}

/* unit_lists - addrlist_parse and addrlist_qualify */
static void
unit_lists(void)
{
	struct strlist l;
	struct buf b;
	char err[512], *big;
	size_t i, n;
	clock_t t0;

	/* 1 MB address list */
	n = 100000;
	big = malloc(n * 10 + 1);
	for (i = 0; i < n; i++)
		memcpy(big + i * 10, "abcdefgh, ", 10);
	big[n * 10 - 2] = '\0';
	strlist_init(&l);
	t0 = clock();
	unit_ok(addrlist_parse(big, &l, err, sizeof(err)) == 0 && l.n == n,
	    "100000 addresses");
	buf_init(&b, 0);
	unit_ok(addrlist_qualify(big, DOMAIN, &b) == 0 &&
	    b.len == n * (10 + sizeof(DOMAIN)) - 2, "100000 qualified");
	unit_ok(clock() - t0 < 2 * CLOCKS_PER_SEC, "big lists are fast");
	buf_free(&b);
	strlist_free(&l);
	/* deep comments */
	memset(big, '(', 500000);
	memset(big + 500000, ')', 500000);
	big[1000000] = '\0';
	unit_ok(addrlist_parse(big, &l, err, sizeof(err)) < 0 &&
	    strcmp(err, "comments nested too deeply") == 0,
	    "comment nesting limit");
	free(big);

	strlist_init(&l);
	strlist_add(&l, "keep@x");
	unit_ok(addrlist_parse("a@b, c@d, <e", &l, err, sizeof(err)) < 0 &&
	    l.n == 1 && strcmp(l.v[0], "keep@x") == 0,
	    "addrlist_parse: nothing appended on error");
	unit_ok(addrlist_parse("a@b, c", &l, err, sizeof(err)) == 0 &&
	    l.n == 3, "addrlist_parse appends");
	strlist_free(&l);

	buf_init(&b, 0);
	buf_adds(&b, "X");
	unit_ok(addrlist_qualify("root, <a", DOMAIN, &b) < 0 &&
	    strcmp(b.p, "Xroot, <a") == 0,
	    "addrlist_qualify: appends the text unchanged on error");
	buf_reset(&b);
	unit_ok(addrlist_qualify("root", "bad domain", &b) < 0 &&
	    strcmp(b.p, "root") == 0, "addrlist_qualify: bad domain");
	buf_reset(&b);
	unit_ok(addrlist_qualify("root", "x\r\nBcc: y", &b) < 0 &&
	    strcmp(b.p, "root") == 0, "addrlist_qualify: domain with CRLF");
	buf_free(&b);
}

/* unit_addr - one address: addr_qualify, addr_domain, addr_check */
static void
unit_addr(void)
{
	char err[512], q[16];

	unit_ok(addr_qualify("root", DOMAIN, q, sizeof(q)) < 0,
	    "addr_qualify: -1 when it does not fit");
	unit_ok(addr_qualify("root", "x.y", q, sizeof(q)) == 0 &&
	    strcmp(q, "root@x.y") == 0, "addr_qualify");
	unit_ok(addr_qualify("a@b", NULL, q, sizeof(q)) == 0 &&
	    strcmp(q, "a@b") == 0, "addr_qualify: qualified stays");
	unit_ok(addr_qualify("", "x.y", q, sizeof(q)) == 0 &&
	    strcmp(q, "") == 0, "addr_qualify: null sender stays empty");
	unit_ok(addr_qualify("root", "", q, sizeof(q)) < 0,
	    "addr_qualify: no domain");
	unit_is(addr_domain("a@b@c"), "c", "addr_domain: last '@'");
	unit_ok(addr_domain("\"a@b\"") == NULL,
	    "addr_domain: not inside quotes");
	unit_is(addr_domain("\"a@b\"@c"), "c", "addr_domain: after quotes");
	unit_ok(addr_check("", 1, err, sizeof(err)) == 0,
	    "addr_check: null sender when null_ok");
	unit_ok(addr_check("", 0, err, sizeof(err)) < 0 &&
	    strcmp(err, "invalid address \"\": empty address") == 0,
	    "addr_check: null sender refused otherwise");
	unit_ok(addr_check("x\ny", 0, err, sizeof(err)) < 0 &&
	    strcmp(err, "invalid address \"x y\": control character") == 0,
	    "addr_check: control character, printable in err");
}

/* rcpts_of - msg_rcpts of a header of the LF-ended lines fields: its
 * result, the recipients in l (emptied first) */
static int
rcpts_of(const char *fields, struct strlist *l, char *err, size_t errlen)
{
	struct header h;
	size_t lines;
	int rc;

	header_init(&h);
	(void)header_lines(&h, fields, strlen(fields), &lines, err, errlen);
	strlist_free(l);
	strlist_init(l);
	rc = msg_rcpts(&h, l, err, errlen);
	header_free(&h);
	return rc;
}

/* unit_rcpts - msg_rcpts */
static void
unit_rcpts(void)
{
	struct header h;
	struct strlist l;
	char err[512], *big;
	size_t i;

	strlist_init(&l);
	unit_ok(rcpts_of("To: a@b\nResent-Date: x\nResent-To: c@d\n", &l, err,
	    sizeof(err)) == 0 && l.n == 1 && strcmp(l.v[0], "c@d") == 0,
	    "msg_rcpts: Resent- set");
	unit_ok(rcpts_of("To: a@b\nResent-Date: x\n", &l, err,
	    sizeof(err)) == 0 && l.n == 0,
	    "msg_rcpts: Resent- without Resent-To");
	unit_ok(rcpts_of("To: a@b, c@[1.2.3.4]\nCc: x@bad_domain\n", &l, err,
	    sizeof(err)) < 0 && l.n == 0 &&
	    strcmp(err, "bad address in Cc: invalid address "
	    "\"x@bad_domain\": invalid character '_' in domain") == 0,
	    "msg_rcpts: envelope check, nothing appended on error");
	header_init(&h);
	big = malloc((RCPT_MAX + 1) * 6 + 1);
	for (i = 0; i <= RCPT_MAX; i++)
		memcpy(big + i * 6, " a@b,\n", 6);
	big[(RCPT_MAX + 1) * 6 - 2] = '\0';
	unit_ok(header_append(&h, "To", big) == 0, "a To: of 10001 lines");
	unit_ok(msg_rcpts(&h, &l, err, sizeof(err)) < 0 &&
	    strcmp(err, "too many recipients in the header (limit 10000)") == 0,
	    "msg_rcpts: RCPT_MAX");
	free(big);
	header_free(&h);
	strlist_free(&l);
}

/* fixup_fails - msg_fixup with fx on an empty header fails, with the
 * error want (any error when want is NULL) */
static int
fixup_fails(const struct fixup *fx, const char *want)
{
	struct header h;
	char err[512];
	int rc;

	header_init(&h);
	rc = msg_fixup(&h, fx, err, sizeof(err));
	header_free(&h);
	return rc < 0 && (want == NULL || strcmp(err, want) == 0);
}

/* unit_fixup - msg_fixup: refusals, kept fields, folding, the limit */
static void
unit_fixup(void)
{
	struct header h;
	struct fixup fx;
	char err[512], *big;
	size_t i;

	fixup_init(&fx);
	fx.msgid = "a b";
	unit_ok(fixup_fails(&fx, NULL), "msg_fixup: bad msgid refused");
	fixup_init(&fx);
	fx.user = NULL;
	unit_ok(fixup_fails(&fx, "cannot make From: no sender or user"),
	    "msg_fixup: no user");
	fixup_init(&fx);
	fx.qualify_domain = NULL;
	unit_ok(fixup_fails(&fx, "cannot make From: cannot qualify address"),
	    "msg_fixup: no qualify_domain for a bare user");
	fixup_init(&fx);
	big = malloc(1001);
	memset(big, 'x', 1000);
	big[1000] = '\0';
	fx.msgid = big;
	unit_ok(fixup_fails(&fx, "cannot make Message-ID: too long"),
	    "msg_fixup: Message-ID too long");
	free(big);
	header_init(&h);
	add(&h, "date: x");
	add(&h, "message-id: <y@z>");
	add(&h, "from: w");
	fixup_init(&fx);
	unit_ok(msg_fixup(&h, &fx, err, sizeof(err)) == 0 && h.n == 3 &&
	    strcmp(h.f[2].body, " w@host.example") == 0,
	    "msg_fixup: present fields, any case, are kept");
	header_free(&h);
	/* qualification that would pass 998 octets folds after commas */
	header_init(&h);
	big = malloc(1000);
	for (i = 0; i < 99; i++)
		memcpy(big + i * 10, "abcdefgh, ", 10);
	big[988] = '\0';
	unit_ok(header_append(&h, "To", big) == 0, "a 991-octet To:");
	fixup_init(&fx);
	unit_ok(msg_fixup(&h, &fx, err, sizeof(err)) == 0 &&
	    strncmp(h.f[0].body, "abcdefgh@host.example,\n abcdefgh@",
	    33) == 0 &&
	    strlen(h.f[0].body) == 988 + 99 * 13 + 98,
	    "msg_fixup: folds a To: that qualification makes too long");
	header_free(&h);
	header_init(&h);
	memset(big, 'a', 990);
	big[990] = '\0';
	header_append(&h, "To", big);
	unit_ok(msg_fixup(&h, &fx, err, sizeof(err)) == 0 &&
	    strcmp(h.f[0].body, big) == 0,
	    "msg_fixup: a To: that cannot be folded stays unqualified");
	header_free(&h);
	/* 1000 lines of 497 bare addresses grow ninefold when qualified */
	header_init(&h);
	memcpy(big, "To: ", 4);
	for (i = 0; i < 497; i++)
		memcpy(big + 4 + 2 * i, "a,", 2);
	big[997] = 'a';
	for (i = 0; i < 1000; i++)
		header_add_line(&h, big, 998, err, sizeof(err));
	unit_ok(msg_fixup(&h, &fx, err, sizeof(err)) < 0 && strcmp(err,
	    "header too big after qualifying addresses (limit 2097152 "
	    "octets)") == 0, "msg_fixup: growth limit");
	free(big);
	header_free(&h);
}

static int
do_unit(void)
{
	unit_header();
	unit_lists();
	unit_addr();
	unit_rcpts();
	unit_fixup();
	return unit_failed;
}

int
main(int argc, char **argv)
{
	setenv("TZ", "UTC", 1);
	tzset();
	if (argc >= 2 && strcmp(argv[1], "hdr") == 0)
		return do_hdr();
	if (argc >= 2 && strcmp(argv[1], "addr") == 0)
		return each_line(addr_line);
	if (argc >= 2 && strcmp(argv[1], "check") == 0)
		return each_line(check_line);
	if (argc == 4 && strcmp(argv[1], "from") == 0)
		return do_from(argv[2], argv[3]);
	if (argc >= 2 && strcmp(argv[1], "unit") == 0)
		return do_unit();
	if (argc >= 2 && strcmp(argv[1], "fuzz") == 0)
		return do_fuzz(argc - 2, argv + 2);
	fprintf(stderr, "usage: msgtest hdr|addr|check|unit < input\n"
	    "       msgtest from FULLNAME SENDER\n"
	    "       msgtest fuzz FILE...\n");
	return 2;
}
