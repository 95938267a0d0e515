/*
 * mime8test.c - driver for mime.c's 8-bit downgrade (t/mime8.t).
 *
 *   t/mime8test < MSG           the message (lines split on LF, a CR
 *                               before it dropped) through mime8_line
 *                               and mime8_end; the output as it is, CRLF
 *                               lines.  When the conversion fails, what
 *                               came out so far and then the line
 *                               "*** mime8: failed at line N", exit 1.
 *   t/mime8test check [FILE...] each file (or stdin) through
 *                               t/fuzz_mime8.c's checks, which abort()
 *                               when an invariant fails; prints how
 *                               many were checked.
 *
 *   cc -std=c11 -D_GNU_SOURCE -Wall ... -I. -o t/mime8test \
 *     t/mime8test.c mime.c util.c
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mxsend.h"

#define FUZZ_MIME8_NO_MAIN
#include "fuzz_mime8.c"
#include "t/testlib.h"

/* what one test input may be */
#define INPUT_MAX (64 * 1024 * 1024)

static int
convert(void)
{
	struct ck_lines l = { 0 };
	struct mime8 *m;
	struct buf out;
	size_t len, i;
	char *text = slurp(stdin, INPUT_MAX, &len);
	int rc = 0;

	if ((m = mime8_new()) == NULL) {
		fprintf(stderr, "mime8test: out of memory\n");
		return 2;
	}
	buf_init(&out, 0);
	ck_split_input(text, len, &l);
	for (i = 0; i < l.n; i++) {
		if (mime8_line(m, l.v[i].p, l.v[i].len, &out) < 0) {
			rc = 1;
			break;
		}
		/* what a caller does: send, then reuse the buffer */
		if (out.len)
			fwrite(out.p, 1, out.len, stdout);
		buf_reset(&out);
	}
	if (rc == 0 && mime8_end(m, &out) < 0)
		rc = 1;
	fwrite(out.p ? out.p : "", 1, out.len, stdout);
	if (rc)
		printf("*** mime8: failed at line %zu\n", i + 1);
	mime8_free(m);
	buf_free(&out);
	free(l.v);
	free(text);
	return rc;
}

int
main(int argc, char **argv)
{
	size_t len;
	char *text;

	if (argc == 1)
		return convert();
	if (strcmp(argv[1], "check") != 0) {
		fprintf(stderr, "usage: mime8test [check [FILE...]]\n");
		return 2;
	}
	if (argc == 2) {
		text = slurp(stdin, INPUT_MAX, &len);
		mime8_check((const uint8_t *)text, len);
		free(text);
		printf("1 input checked\n");
		return 0;
	}
	if (replay(argc - 2, argv + 2, INPUT_MAX, mime8_check) != 0)
		return 2;
	printf("%d inputs checked\n", argc - 2);
	return 0;
}
