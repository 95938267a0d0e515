/*
 * aliastest.c - driver for aliases.c's tests (t/alias.t).
 *
 *   t/aliastest parse FILE          aliases_load FILE: the errors, one a
 *                                   line, then the table (aliases_dump)
 *   t/aliastest expand FILE NAME... aliases_load FILE, then one line a
 *                                   NAME: its expansion or the error
 *   t/aliastest unit                exact assertions on the API, as TAP
 *                                   lines without a plan ("ok - name")
 *
 * Output is made printable: "\xNN" for control and 8-bit octets.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mxsend.h"
#include "t/testlib.h"

static void
escs(const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c >= 0x7f)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
}

static struct aliases *
load(const char *path, struct strlist *errs)
{
	struct aliases *ta = aliases_load(path, errs);

	if (ta == NULL)
		puts("load: NULL");
	return ta;
}

static int
do_parse(const char *path)
{
	struct strlist errs;
	struct aliases *ta;
	struct buf b;
	size_t i;

	strlist_init(&errs);
	ta = load(path, &errs);
	printf("errors: %zu\n", errs.n);
	for (i = 0; i < errs.n; i++) {
		escs(errs.v[i]);
		putchar('\n');
	}
	if (ta != NULL) {
		buf_init(&b, 0);
		if (aliases_dump(ta, &b) < 0)
			puts("dump: ERROR");
		else
			fputs(b.p ? b.p : "", stdout);
		buf_free(&b);
	}
	aliases_free(ta);
	strlist_free(&errs);
	return 0;
}

static int
do_expand(const char *path, int argc, char **argv)
{
	struct strlist errs, out;
	struct aliases *ta;
	char err[512];
	size_t i;
	int k;

	strlist_init(&errs);
	ta = load(path, &errs);
	for (k = 0; k < argc; k++) {
		strlist_init(&out);
		fputs("expand ", stdout);
		escs(argv[k]);
		putchar(':');
		if (aliases_expand(ta, argv[k], &out, err, sizeof(err)) < 0) {
			fputs(" ERROR ", stdout);
			escs(err);
			if (out.n != 0)
				fputs(" (BUT OUTPUT NOT EMPTY)", stdout);
		}
		for (i = 0; i < out.n; i++) {
			fputs(" <", stdout);
			escs(out.v[i]);
			putchar('>');
		}
		putchar('\n');
		strlist_free(&out);
	}
	aliases_free(ta);
	strlist_free(&errs);
	return 0;
}

/* parse - text into a fresh table; errs holds the errors */
static struct aliases *
parse(const char *text, struct strlist *errs)
{
	struct aliases *ta = aliases_new();

	strlist_init(errs);
	if (ta == NULL || aliases_parse(ta, text, strlen(text), "f",
	    errs) < 0) {
		aliases_free(ta);
		return NULL;
	}
	return ta;
}

/* unit_expand - what aliases_expand appends; two texts in one table */
static void
unit_expand(void)
{
	struct strlist errs, out;
	struct aliases *ta;
	char err[512];

	/* expansion appends, and appends nothing on error */
	ta = parse("a: x@y, b\nb: c\nl1: l2\nl2: l1\n", &errs);
	strlist_init(&out);
	strlist_add(&out, "keep");
	unit_ok(ta && errs.n == 0 && aliases_expand(ta, "A", &out, err,
	    sizeof(err)) == 0 && out.n == 3 && strcmp(out.v[0], "keep") == 0 &&
	    strcmp(out.v[1], "x@y") == 0 && strcmp(out.v[2], "c") == 0,
	    "aliases_expand appends");
	unit_ok(aliases_expand(ta, "l1", &out, err, sizeof(err)) < 0 &&
	    out.n == 3 && strcmp(err, "alias loop: l1 -> l2 -> l1") == 0,
	    "loop: nothing appended, the path in err");
	unit_ok(aliases_expand(ta, "x@y", &out, err, sizeof(err)) == 0 &&
	    out.n == 4 && strcmp(out.v[3], "x@y") == 0,
	    "duplicates are removed within one call only");
	strlist_free(&out);
	unit_ok(aliases_expand(NULL, "Root", &out, err, sizeof(err)) == 0 &&
	    out.n == 1 && strcmp(out.v[0], "root") == 0,
	    "no table: the name itself, lower case");
	strlist_free(&out);
	aliases_free(ta);
	strlist_free(&errs);

	/* aliases_parse alone does not read :include: files */
	ta = parse("a: :include:/etc/passwd\n", &errs);
	unit_ok(ta && errs.n == 0 && aliases_expand(ta, "a", &out, err,
	    sizeof(err)) < 0 && strcmp(err, "alias a: :include: file "
	    "/etc/passwd not read (f:1)") == 0,
	    "aliases_parse: :include: left unread, expansion fails");
	aliases_free(ta);
	strlist_free(&errs);

	/* two calls add to one table; duplicates across them found */
	ta = parse("a: b\n", &errs);
	unit_ok(ta && aliases_parse(ta, "A: c\n", 5, "g", &errs) == 0 &&
	    errs.n == 1 && strcmp(errs.v[0], "g:1: duplicate alias \"a\" "
	    "(first defined at f:1), ignored") == 0,
	    "duplicate across two texts names both files");
	aliases_free(ta);
	strlist_free(&errs);

}

/* unit_limits - NUL octets, ALIAS_LINE_MAX, ALIAS_TARGETS_MAX, and
 * expansion that stays linear */
static void
unit_limits(void)
{
	struct strlist errs, out;
	struct aliases *ta;
	struct buf b;
	char err[512], *big;
	size_t i;

	strlist_init(&out);
	/* NUL and over-long entries */
	ta = aliases_new();
	strlist_init(&errs);
	unit_ok(ta && aliases_parse(ta, "a: b\0c\nd: e\n", 12, "f", &errs) == 0
	    && errs.n == 1 && strcmp(errs.v[0], "f:1: NUL octet in the line")
	    == 0, "NUL octet refused, the rest parsed");
	aliases_free(ta);
	strlist_free(&errs);
	big = malloc(70000 + 1);
	memcpy(big, "a: ", 3);
	for (i = 3; i < 70000; i++)
		big[i] = (i % 10 == 0) ? ',' : 'x';
	big[70000] = '\0';
	ta = parse(big, &errs);
	unit_ok(ta && errs.n == 1 && strcmp(errs.v[0], "f:1: entry too long "
	    "(limit 65536 octets with its continuation lines)") == 0,
	    "ALIAS_LINE_MAX");
	buf_init(&b, 0);
	unit_ok(aliases_dump(ta, &b) == 0 && b.len == 0,
	    "an entry too long is not added");
	buf_free(&b);
	aliases_free(ta);
	strlist_free(&errs);
	/* 1001 targets */
	for (i = 3; i < 3 + 1001 * 4; i += 4)
		memcpy(big + i, "xyz,", 4);
	big[3 + 1001 * 4 - 1] = '\0';
	ta = parse(big, &errs);
	unit_ok(ta && errs.n == 1 && strcmp(errs.v[0], "f:1: alias \"a\" has "
	    "too many targets (limit 1000)") == 0, "ALIAS_TARGETS_MAX");
	aliases_free(ta);
	strlist_free(&errs);
	big[3 + 1000 * 4 - 1] = '\0';
	ta = parse(big, &errs);
	unit_ok(ta && errs.n == 0 && aliases_expand(ta, "a", &out, err,
	    sizeof(err)) == 0 && out.n == 1, "1000 targets, deduplicated");
	strlist_free(&out);
	aliases_free(ta);
	strlist_free(&errs);
	free(big);

	/* a diamond 19 levels deep: each alias expanded once, not 2^19 times */
	buf_init(&b, 0);
	for (i = 0; i < 19; i++)
		buf_printf(&b, "d%zu: d%zu, e%zu\ne%zu: d%zu, x%zu@y\n", i,
		    i + 1, i + 1, i, i + 1, i);
	ta = parse(b.p, &errs);
	unit_ok(ta && errs.n == 0 && aliases_expand(ta, "d0", &out, err,
	    sizeof(err)) == 0 && out.n == 20,
	    "diamonds: each alias expanded once");
	strlist_free(&out);
	aliases_free(ta);
	strlist_free(&errs);
	buf_free(&b);
}

static int
do_unit(void)
{
	unit_expand();
	unit_limits();
	return unit_failed;
}

int
main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "parse") == 0)
		return do_parse(argv[2]);
	if (argc >= 3 && strcmp(argv[1], "expand") == 0)
		return do_expand(argv[2], argc - 3, argv + 3);
	if (argc == 2 && strcmp(argv[1], "unit") == 0)
		return do_unit();
	fprintf(stderr, "usage: aliastest parse FILE\n"
	    "       aliastest expand FILE NAME...\n"
	    "       aliastest unit\n");
	return 2;
}
