/*
 * benchrun.c - run a command N times with its standard input from a file,
 * print the median wall time (for make bench: a small C parent forks
 * cheaply, where an interpreter's fork would be part of the figure).
 *
 * usage: benchrun NAME N INFILE|- COMMAND ARGS...
 * prints "NAME: median X ms (min, p90, n)" and then the median in
 * microseconds alone on the last line.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	struct timespec t0, t1;
	double *t;
	int i, n, st;

	if (argc < 5)
		return 2;
	n = atoi(argv[2]);
	if (n < 1)
		return 2;
	t = calloc((size_t)n, sizeof(*t));
	for (i = 0; i < n; i++) {
		pid_t pid;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		pid = fork();
		if (pid == 0) {
			int fd = open(strcmp(argv[3], "-") ? argv[3] : "/dev/null",
			    O_RDONLY);
			int nul = open("/dev/null", O_WRONLY);

			if (fd < 0 || nul < 0)
				_exit(126);
			dup2(fd, 0);
			dup2(nul, 1);
			execv(argv[4], argv + 4);
			_exit(127);
		}
		if (pid < 0 || waitpid(pid, &st, 0) < 0)
			return 1;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "%s: run %d failed (status %d)\n", argv[1],
			    i, st);
			return 1;
		}
		t[i] = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
		    (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	}
	qsort(t, (size_t)n, sizeof(*t), cmp);
	printf("%-34s median %7.3f ms  (min %.3f, p90 %.3f, n %d)\n", argv[1],
	    t[n / 2], t[0], t[n * 9 / 10], n);
	printf("%.0f\n", t[n / 2] * 1000);
	return 0;
}
