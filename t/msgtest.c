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

static char *
slurp(FILE *fp, size_t *len)
{
	struct buf b;
	char tmp[65536];
	size_t n;

	buf_init(&b, INPUT_MAX);
	while ((n = fread(tmp, 1, sizeof(tmp), fp)) > 0)
		if (buf_add(&b, tmp, n) < 0) {
			fprintf(stderr, "msgtest: input too big\n");
			exit(2);
		}
	if (buf_add(&b, "", 0) < 0)
		exit(2);
	*len = b.len;
	return b.p;
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
	size_t len, s, e, i, lineno = 0;
	int rc = 0;

	in = slurp(stdin, &len);
	header_init(&h);
	for (s = 0; s < len; s = e + 1) {
		const char *nl = memchr(in + s, '\n', len - s);
		size_t n;

		e = nl ? (size_t)(nl - in) : len;
		n = e - s;
		if (n > 0 && in[s + n - 1] == '\r')
			n--;
		lineno++;
		rc = header_add_line(&h, in + s, n, err, sizeof(err));
		if (rc != 0)
			break;
	}
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

static int
do_addr(void)
{
	struct strlist l;
	struct buf q;
	char err[512];
	char *in;
	size_t len, s, e;
	int first = 1;

	in = slurp(stdin, &len);
	for (s = 0; s < len; s = e + 1) {
		const char *nl = memchr(in + s, '\n', len - s);
		char *line;

		e = nl ? (size_t)(nl - in) : len;
		line = in + s;
		in[e] = '\0';
		if (!first)
			putchar('\n');
		first = 0;
		if (strncmp(line, "# ", 2) == 0) {
			puts(line);
			first = 1;
			continue;
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
	free(in);
	return 0;
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

static int
do_check(void)
{
	char *in;
	size_t len, s, e;

	in = slurp(stdin, &len);
	for (s = 0; s < len; s = e + 1) {
		const char *nl = memchr(in + s, '\n', len - s);
		char *line;

		e = nl ? (size_t)(nl - in) : len;
		line = in + s;
		in[e] = '\0';
		if (strncmp(line, "# ", 2) == 0) {
			puts(line);
			continue;
		}
		check_one(line, 0);
		if (line[0] == '\0') {
			fputs("null_ok: ", stdout);
			check_one(line, 1);
		}
	}
	free(in);
	return 0;
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
	int i;

	for (i = 0; i < argc; i++) {
		FILE *fp = fopen(argv[i], "rb");
		size_t len;
		char *d;

		if (fp == NULL) {
			perror(argv[i]);
			return 1;
		}
		d = slurp(fp, &len);
		fclose(fp);
		fuzz_msg((const uint8_t *)d, len);
		free(d);
	}
	printf("replayed %d inputs\n", argc);
	return 0;
}

/* The unit mode: exact assertions on what the golden files do not show. */

static int unit_failed;

static void
unit_ok(int cond, const char *name)
{
	printf("%sok - %s\n", cond ? "" : "not ", name);
	if (!cond)
		unit_failed = 1;
}

static void
unit_is(const char *got, const char *want, const char *name)
{
	int same = got && strcmp(got, want) == 0;

	unit_ok(same, name);
	if (!same)
		printf("#   got  [%s]\n#   want [%s]\n", got ? got : "(null)",
		    want);
}

static int
add(struct header *h, const char *line)
{
	char err[256];

	return header_add_line(h, line, strlen(line), err, sizeof(err));
}

static int
do_unit(void)
{
	struct header h;
	struct strlist l;
	struct buf b;
	struct fixup fx;
	char err[512], q[16], *big;
	size_t i, n;
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

	/* msg_rcpts */
	header_init(&h);
	add(&h, "To: a@b");
	add(&h, "Resent-Date: x");
	add(&h, "Resent-To: c@d");
	strlist_init(&l);
	unit_ok(msg_rcpts(&h, &l, err, sizeof(err)) == 0 && l.n == 1 &&
	    strcmp(l.v[0], "c@d") == 0, "msg_rcpts: Resent- set");
	strlist_free(&l);
	header_free(&h);
	header_init(&h);
	add(&h, "To: a@b");
	add(&h, "Resent-Date: x");
	unit_ok(msg_rcpts(&h, &l, err, sizeof(err)) == 0 && l.n == 0,
	    "msg_rcpts: Resent- without Resent-To");
	header_free(&h);
	header_init(&h);
	add(&h, "To: a@b, c@[1.2.3.4]");
	add(&h, "Cc: x@bad_domain");
	unit_ok(msg_rcpts(&h, &l, err, sizeof(err)) < 0 && l.n == 0 &&
	    strcmp(err, "bad address in Cc: invalid address "
	    "\"x@bad_domain\": invalid character '_' in domain") == 0,
	    "msg_rcpts: envelope check, nothing appended on error");
	header_free(&h);
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

	/* msg_fixup */
	header_init(&h);
	fixup_init(&fx);
	fx.msgid = "a b";
	unit_ok(msg_fixup(&h, &fx, err, sizeof(err)) < 0,
	    "msg_fixup: bad msgid refused");
	header_free(&h);
	header_init(&h);
	fixup_init(&fx);
	fx.user = NULL;
	unit_ok(msg_fixup(&h, &fx, err, sizeof(err)) < 0 &&
	    strcmp(err, "cannot make From: no sender or user") == 0,
	    "msg_fixup: no user");
	header_free(&h);
	header_init(&h);
	fixup_init(&fx);
	fx.qualify_domain = NULL;
	unit_ok(msg_fixup(&h, &fx, err, sizeof(err)) < 0 &&
	    strcmp(err, "cannot make From: cannot qualify address") == 0,
	    "msg_fixup: no qualify_domain for a bare user");
	header_free(&h);
	header_init(&h);
	fixup_init(&fx);
	big = malloc(1001);
	memset(big, 'x', 1000);
	big[1000] = '\0';
	fx.msgid = big;
	unit_ok(msg_fixup(&h, &fx, err, sizeof(err)) < 0 &&
	    strcmp(err, "cannot make Message-ID: too long") == 0,
	    "msg_fixup: Message-ID too long");
	free(big);
	header_free(&h);
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
	free(big);
	header_free(&h);
	header_init(&h);
	big = malloc(1000);
	memset(big, 'a', 990);
	big[990] = '\0';
	header_append(&h, "To", big);
	unit_ok(msg_fixup(&h, &fx, err, sizeof(err)) == 0 &&
	    strcmp(h.f[0].body, big) == 0,
	    "msg_fixup: a To: that cannot be folded stays unqualified");
	free(big);
	header_free(&h);
	/* 1000 lines of 497 bare addresses grow ninefold when qualified */
	header_init(&h);
	big = malloc(1000);
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
		return do_addr();
	if (argc >= 2 && strcmp(argv[1], "check") == 0)
		return do_check();
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
