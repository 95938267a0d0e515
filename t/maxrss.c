/*
 * maxrss.c - run a command, print the peak resident set size in KB of it
 * and every descendant it waited for (for make bench; a wrapper in C
 * because an interpreter's own memory would be counted in its children).
 */
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	struct rusage ru;
	pid_t pid;
	int st;

	if (argc < 2)
		return 2;
	pid = fork();
	if (pid == 0) {
		execv(argv[1], argv + 1);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return 1;
	getrusage(RUSAGE_CHILDREN, &ru);
	fprintf(stderr, "%ld\n", ru.ru_maxrss);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
