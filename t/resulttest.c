/*
 * resulttest.c - result.c's mappings and report.c's composition, for
 * t/result.t's golden files:
 *
 *   resulttest text FILE     each case of FILE (below) as its sentence
 *                            and its RFC 3464 fields
 *   resulttest bounce FILE   the cases as one bounce, then as one delay
 *                            notice, with fixed names and times
 *   resulttest names         the envelope name of every reason, a line each
 *   resulttest env FILE ADDR the sentence of ADDR's last attempt in the
 *                            envelope text FILE ("-": stdin), as -bp and
 *                            the log word it, for the shell tests
 *
 * A case is the envelope form of a result (queue.c, version 2): a line
 * "rcpt ADDR", a line "result WORDS", optionally "detail TEXT"; cases
 * are separated by empty lines, and "#" lines are comments.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mxsend.h"

#define CASES_MAX 64

struct rcase {
	char addr[ADDR_MAX];
	char words[1024];
	char detail[ERRTEXT_MAX];
	struct result res;
};

/* load - the cases of path; their count, or -1 */
static int
load(const char *path, struct rcase *cs)
{
	char line[2048];
	FILE *f = fopen(path, "r");
	int n = 0, open = 0;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '#')
			continue;
		if (line[0] == '\0') {
			open = 0;
			continue;
		}
		if (!open) {
			if (n == CASES_MAX)
				break;
			memset(&cs[n++], 0, sizeof(cs[0]));
			open = 1;
		}
		if (strncmp(line, "rcpt ", 5) == 0)
			snprintf(cs[n - 1].addr, sizeof(cs[0].addr), "%.*s",
			    (int)sizeof(cs[0].addr) - 1, line + 5);
		else if (strncmp(line, "result ", 7) == 0)
			snprintf(cs[n - 1].words, sizeof(cs[0].words), "%.*s",
			    (int)sizeof(cs[0].words) - 1, line + 7);
		else if (strncmp(line, "detail ", 7) == 0)
			snprintf(cs[n - 1].detail, sizeof(cs[0].detail), "%.*s",
			    (int)sizeof(cs[0].detail) - 1, line + 7);
	}
	fclose(f);
	for (open = 0; open < n; open++)
		if (result_load(&cs[open].res, cs[open].words,
		    cs[open].detail[0] ? cs[open].detail : NULL) < 0) {
			fprintf(stderr, "case %d: bad result words\n", open + 1);
			return -1;
		}
	return n;
}

static void
text(const struct rcase *cs, int n)
{
	struct result_dsn d;
	char t[ERRTEXT_MAX];
	int i;

	for (i = 0; i < n; i++) {
		result_text(&cs[i].res, cs[i].addr, t, sizeof(t));
		result_dsn(&cs[i].res, cs[i].addr, &d);
		printf("%s\n  text: %s\n  status: %s\n  remote: %s\n"
		    "  diag: %s\n", cs[i].addr, t, d.status, d.remote, d.diag);
	}
}

static int
bounce(const struct rcase *cs, int n)
{
	static const char hdr[] = "From: alice@example.org\r\n"
	    "To: bob@example.net\r\nSubject: test\r\n";
	struct dsn_rcpt r[CASES_MAX];
	struct dsn d;
	struct buf b;
	int i, rc = 0;

	for (i = 0; i < n; i++) {
		r[i].addr = cs[i].addr;
		r[i].res = &cs[i].res;
	}
	memset(&d, 0, sizeof(d));
	d.hostname = "host.example.org";
	d.id = "6930A1B2C3D4E1F2";
	d.msgid = "6930A1B2C3D4E1F3";
	d.to = "alice@example.org";
	d.arrival = 1764318162;
	d.now = 1764321762;
	d.retry_until = 1764318162 + 5 * 86400;
	d.r = r;
	d.n = (size_t)n;
	d.headers = hdr;
	d.headers_len = sizeof(hdr) - 1;
	for (i = 0; i < 2; i++) {
		buf_init(&b, 0);
		d.action = i ? DSN_DELAYED : DSN_FAILED;
		rc |= dsn_compose(&d, &b);
		fwrite(b.p, 1, b.len, stdout);
		buf_free(&b);
	}
	return rc ? 1 : 0;
}

/* env_words - the sentence of addr's result in envelope text path */
static int
env_words(const char *path, const char *addr)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	char err[200], t[ERRTEXT_MAX];
	struct envelope e;
	struct buf b;
	size_t i;
	int c;

	if (f == NULL)
		return 2;
	buf_init(&b, 0);
	while ((c = getc(f)) != EOF)
		buf_addc(&b, c);
	env_init(&e);
	if (env_load(&e, b.p ? b.p : "", b.len, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	for (i = 0; i < e.nr; i++)
		if (strcmp(e.r[i].addr, addr) == 0 && e.r[i].res) {
			result_text(e.r[i].res, addr, t, sizeof(t));
			printf("%s\n", t);
		}
	env_free(&e);
	buf_free(&b);
	return 0;
}

int
main(int argc, char **argv)
{
	static struct rcase cs[CASES_MAX];
	int n;

	if (argc == 4 && strcmp(argv[1], "env") == 0)
		return env_words(argv[2], argv[3]);
	if (argc == 2 && strcmp(argv[1], "names") == 0) {
		for (n = 0; n < R_COUNT; n++)
			printf("%s\n", reason_name((enum reason)n));
		return 0;
	}
	if (argc != 3 || (n = load(argv[2], cs)) < 0) {
		fprintf(stderr, "usage: resulttest text|bounce FILE\n");
		return 2;
	}
	if (strcmp(argv[1], "text") == 0) {
		text(cs, n);
		return 0;
	}
	return bounce(cs, n);
}
