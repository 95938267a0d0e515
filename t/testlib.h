/*
 * testlib.h - what the test drivers and the fuzz entry points in t/ share:
 *   fuzz_assert(c)   abort() with the condition when an invariant fails
 *   slurp            a whole input, NUL-terminated, up to a limit
 *   replay           each file of a corpus through a fuzz entry point
 *   unit_ok/unit_is  the "ok - NAME" lines of a driver's unit mode,
 *                    without a plan (t/unit.sh numbers them)
 *   FUZZ_ENTRY(fn)   libFuzzer's entry point, running fn (which returns 0)
 * The functions are static inline: a program uses what it needs.
 */
#ifndef TESTLIB_H
#define TESTLIB_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mxsend.h"

#define fuzz_assert(c) do { \
	if (!(c)) { \
		fprintf(stderr, "%s:%d: invariant failed: %s\n", \
		    __FILE__, __LINE__, #c); \
		abort(); \
	} \
} while (0)

#define FUZZ_ENTRY(fn) \
int LLVMFuzzerTestOneInput(const uint8_t *, size_t); \
int \
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) \
{ \
	return fn(data, size); \
}

/* slurp - all of fp, NUL-terminated (*len without the NUL); past max
 * octets the program exits 2 */
static inline char *
slurp(FILE *fp, size_t max, size_t *len)
{
	struct buf b;
	char tmp[65536];
	size_t n;

	buf_init(&b, max);
	while ((n = fread(tmp, 1, sizeof(tmp), fp)) > 0)
		if (buf_add(&b, tmp, n) < 0) {
			fprintf(stderr, "input over %zu octets\n", max);
			exit(2);
		}
	if (buf_add(&b, "", 0) < 0)
		exit(2);
	*len = b.len;
	return b.p;
}

/* replay - each of the files through fn; 0, or 1 when one cannot be
 * opened (fn aborts on a failed invariant) */
static inline int
replay(int argc, char **argv, size_t max,
    int (*fn)(const uint8_t *, size_t))
{
	size_t len;
	char *d;
	FILE *fp;
	int i;

	for (i = 0; i < argc; i++) {
		if ((fp = fopen(argv[i], "rb")) == NULL) {
			perror(argv[i]);
			return 1;
		}
		d = slurp(fp, max, &len);
		fclose(fp);
		fn((const uint8_t *)d, len);
		free(d);
	}
	return 0;
}

static int unit_failed;

static inline void
unit_ok(int cond, const char *name)
{
	printf("%sok - %s\n", cond ? "" : "not ", name);
	if (!cond)
		unit_failed = 1;
}

static inline void
unit_is(const char *got, const char *want, const char *name)
{
	int same = got && strcmp(got, want) == 0;

	unit_ok(same, name);
	if (!same)
		printf("#   got  [%s]\n#   want [%s]\n", got ? got : "(null)",
		    want);
}
#endif
