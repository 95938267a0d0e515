/*
 * localtest.c - local.c in a scratch directory: exact mbox bytes (From
 * line, mboxrd quoting, LF ends, the empty line after), Python's mailbox
 * module reading the results, concurrent appends, Maildir, both locks,
 * the dotlock rules (dated ahead, owned by someone else, taken over
 * during the append), unknown users, symlinked and odd mailboxes, and the
 * truncation back to the old size after a failure, a real file size
 * limit (RLIMIT_FSIZE) among them.  As root the mailboxes belong to
 * "nobody" in a root:mail 2775 spool, so the drop to the user is tested
 * too; otherwise to the invoking user.
 */
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mxsend.h"
#include "t/tap.h"

#define PY "/usr/bin/python3"
#define ARRIVAL 1764318162	/* Fri Nov 28 08:22:42 2025 UTC */
#define NPROC 4
#define NMSG 50

static char tmp[256], user[64];
static uid_t uid;
static int asroot;

static const char msg1[] =
    "Subject: test\r\n"
    "From: a@b.example\r\n"
    "\r\n"
    "From here\r\n"
    ">From there\r\n"
    ">>From deep\r\n"
    "From\r\n"
    ">Fro\r\n"
    "Fromage\r\n"
    " From indented\r\n"
    ".\r\n"
    "..dots\r\n"
    "bare\rcr\r\n"
    "\r\n"
    "last line without CRLF";

static const char body1[] =
    "Subject: test\n"
    "From: a@b.example\n"
    "\n"
    ">From here\n"
    ">>From there\n"
    ">>>From deep\n"
    "From\n"
    ">Fro\n"
    "Fromage\n"
    " From indented\n"
    ".\n"
    "..dots\n"
    "bare\rcr\n"
    "\n"
    "last line without CRLF\n";

/* path - tmp/NAME in a static buffer (two in turn) */
static const char *
path(const char *name)
{
	static char b[2][512];
	static int i;

	i = !i;
	snprintf(b[i], sizeof(b[i]), "%s/%s", tmp, name);
	return b[i];
}

/* msgfile - a queue-style message file, open for reading */
static int
msgfile(const char *name, const char *text, size_t len)
{
	int fd = open(path(name), O_RDWR | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write_all(fd, text, len) < 0) {
		perror(name);
		exit(2);
	}
	return fd;
}

/* slurp - a whole file into b; -1 when missing */
static int
slurp(const char *p, struct buf *b)
{
	char c[8192];
	ssize_t r;
	int fd = open(p, O_RDONLY);

	buf_reset(b);
	if (fd < 0)
		return -1;
	while ((r = read(fd, c, sizeof(c))) > 0)
		buf_add(b, c, (size_t)r);
	close(fd);
	return 0;
}

/* spool - a mailbox directory like Debian's /var/mail */
static void
spool(const char *name)
{
	struct group *g = getgrnam("mail");

	mkdir(path(name), 0700);
	if (asroot) {
		if (g && chown(path(name), 0, g->gr_gid) == 0)
			chmod(path(name), 02775);
		else
			chmod(path(name), 01777);
	}
}

/* py - run python3 with a script and args; its first output line */
static void
py(const char *script, const char *a1, const char *a2, char *out,
    size_t outlen)
{
	char cmd[4096];
	FILE *f;

	snprintf(cmd, sizeof(cmd), "%s -c '%s' '%s' '%s' 2>&1", PY, script,
	    a1, a2 ? a2 : "");
	out[0] = '\0';
	fflush(NULL);
	if ((f = popen(cmd, "r")) == NULL)
		return;
	if (fgets(out, (int)outlen, f) != NULL)
		out[strcspn(out, "\n")] = '\0';
	pclose(f);
}

/* big_message - msgfile "big": "Subject: big", then n lines "line I of
 * TEXT" (CRLF ends); the message is also appended to big */
static int
big_message(struct buf *big, size_t n, const char *text)
{
	size_t i;

	buf_adds(big, "Subject: big\r\n\r\n");
	for (i = 0; i < n; i++)
		buf_printf(big, "line %zu of %s\r\n", i, text);
	return msgfile("big", big->p, big->len);
}

static void
test_mbox(void)
{
	struct result res;
	struct buf b, want;
	struct stat st;
	char mbox[512], out[256];
	int fd;

	buf_init(&b, 0);
	buf_init(&want, 0);
	spool("spool");
	snprintf(mbox, sizeof(mbox), "%s/%s", path("spool"), user);
	fd = msgfile("m1", msg1, sizeof(msg1) - 1);
	is_int(local_mbox(path("spool"), user, "alice@example.org", ARRIVAL,
	    fd, sizeof(msg1) - 1, &res), OUT_OK, "mbox delivery: %s",
	    res.text);
	buf_printf(&want, "From alice@example.org Fri Nov 28 08:22:42 2025\n"
	    "Return-Path: <alice@example.org>\n%s\n", body1);
	slurp(mbox, &b);
	is_str(b.p, want.p, "exact mbox bytes: From line, >From, LF, "
	    "final newline added, empty line after");
	ok(stat(mbox, &st) == 0 && st.st_uid == uid &&
	    (st.st_mode & 07777) == 0600, "new mailbox is %s's, mode 0600",
	    user);
	{
		char lk[600];

		snprintf(lk, sizeof(lk), "%s.lock", mbox);
		ok(access(lk, F_OK) < 0, "dotlock removed");
	}

	/* The null sender, appended; owner and a changed mode kept. */
	chmod(mbox, 0640);
	is_int(local_mbox(path("spool"), user, "", ARRIVAL, fd,
	    sizeof(msg1) - 1, &res), OUT_OK, "second delivery: %s", res.text);
	buf_printf(&want, "From MAILER-DAEMON Fri Nov 28 08:22:42 2025\n"
	    "Return-Path: <>\n%s\n", body1);
	slurp(mbox, &b);
	is_str(b.p, want.p, "null sender is MAILER-DAEMON, appended");
	ok(stat(mbox, &st) == 0 && st.st_uid == uid &&
	    (st.st_mode & 07777) == 0640, "owner and mode 0640 preserved");
	close(fd);

	/* Python reads two messages; the first is exactly ours. */
	fd = msgfile("want1", "", 0);
	buf_reset(&b);
	buf_printf(&b, "Return-Path: <alice@example.org>\n%s", body1);
	write_all(fd, b.p, b.len);
	close(fd);
	py("import mailbox,sys; m=mailbox.mbox(sys.argv[1]); k=m.keys(); "
	    "w=open(sys.argv[2],\"rb\").read(); "
	    "print(len(k), m.get_bytes(k[0])==w, m[k[0]].get_from(), \"|\", "
	    "m[k[1]].get_from())", mbox, path("want1"), out, sizeof(out));
	is_str(out, "2 True alice@example.org Fri Nov 28 08:22:42 2025 | "
	    "MAILER-DAEMON Fri Nov 28 08:22:42 2025",
	    "python mailbox.mbox: 2 messages, first byte-exact, From lines");
	buf_free(&b);
	buf_free(&want);
}

/* test_mbox_damage - the mailbox test_mbox left: a damaged tail, a
 * message file that ends early */
static void
test_mbox_damage(void)
{
	struct result res;
	struct buf b, dmg, big, before;
	char mbox[512];
	int fd, dfd;

	buf_init(&b, 0);
	buf_init(&dmg, 0);
	buf_init(&big, 0);
	buf_init(&before, 0);
	snprintf(mbox, sizeof(mbox), "%s/%s", path("spool"), user);

	/* A damaged mailbox without a final LF: our From line still starts
	 * a line of its own. */
	dfd = open(mbox, O_WRONLY | O_APPEND);
	write_all(dfd, "damaged tail", 12);
	close(dfd);
	slurp(mbox, &dmg);
	fd = msgfile("m1", msg1, sizeof(msg1) - 1);
	is_int(local_mbox(path("spool"), user, "a@b", ARRIVAL, fd,
	    sizeof(msg1) - 1, &res), OUT_OK, "delivery after a damaged "
	    "tail: %s", res.text);
	close(fd);
	slurp(mbox, &b);
	ok(b.len > dmg.len + 20 && memcmp(b.p, dmg.p, dmg.len) == 0 &&
	    memcmp(b.p + dmg.len, "\nFrom a@b ", 10) == 0,
	    "a LF is added before the From line");
	if (truncate(mbox, (off_t)dmg.len - 12) < 0)
		perror("truncate");

	/* A failed read mid-message: the mailbox is back to its old size.
	 * The message is larger than one write block, so part of it has
	 * reached the file before the read fails. */
	fd = big_message(&big, 4000, "a long message, From the queue");
	slurp(mbox, &before);
	is_int(local_mbox(path("spool"), user, "a@b", ARRIVAL, fd,
	    (off_t)big.len + 100000, &res), OUT_TEMP,
	    "message file shorter than its size: TEMP (%s)", res.text);
	slurp(mbox, &b);
	ok(b.len == before.len && memcmp(b.p, before.p, b.len) == 0,
	    "mailbox unchanged after the failure (%zu octets)", b.len);
	is_int(local_mbox(path("spool"), user, "a@b", ARRIVAL, fd,
	    (off_t)big.len, &res), OUT_OK, "big message delivers: %s",
	    res.text);
	close(fd);
	buf_free(&big);
	buf_free(&before);
	buf_free(&dmg);
	buf_free(&b);
}

/* mbox_timed - the message in fd (msg1) into user's mailbox in the spool:
 * the outcome, and in *secs how long it took */
static enum outcome
mbox_timed(int fd, double *secs, struct result *res)
{
	struct timespec t0, t1;
	enum outcome o;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	o = local_mbox(path("spool"), user, "a@b", ARRIVAL, fd,
	    sizeof(msg1) - 1, res);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	*secs = t1.tv_sec - t0.tv_sec + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	return o;
}

/* test_locks - a stale dotlock is broken; a live dotlock and a live
 * fcntl lock are waited for */
static void
test_locks(void)
{
	struct timespec old[2] = {{ time(NULL) - 600, 0 },
	    { time(NULL) - 600, 0 }};
	struct result res;
	char mbox[512], lock[600];
	double secs;
	int fd, lfd, p[2];
	pid_t pid;
	char c;

	snprintf(mbox, sizeof(mbox), "%s/%s", path("spool"), user);
	snprintf(lock, sizeof(lock), "%s.lock", mbox);
	fd = msgfile("m1", msg1, sizeof(msg1) - 1);

	lfd = open(lock, O_WRONLY | O_CREAT | O_EXCL, 0600);
	close(lfd);
	utimensat(AT_FDCWD, lock, old, 0);
	is_int(local_mbox(path("spool"), user, "a@b", ARRIVAL, fd,
	    sizeof(msg1) - 1, &res), OUT_OK, "stale dotlock broken: %s",
	    res.text);
	ok(access(lock, F_OK) < 0, "and removed");

	/* A live dotlock, removed after half a second. */
	lfd = open(lock, O_WRONLY | O_CREAT | O_EXCL, 0600);
	close(lfd);
	fflush(NULL);
	if ((pid = fork()) == 0) {
		poll(NULL, 0, 500);
		unlink(lock);
		_exit(0);
	}
	is_int(mbox_timed(fd, &secs, &res), OUT_OK, "waits for a dotlock: %s",
	    res.text);
	waitpid(pid, NULL, 0);
	ok(secs > 0.4, "delivery waited for the dotlock");

	/* A live fcntl lock held by another process for half a second. */
	if (pipe(p) < 0)
		exit(2);
	fflush(NULL);
	if ((pid = fork()) == 0) {
		struct flock fl;

		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_WRLCK;
		lfd = open(mbox, O_RDWR);
		fcntl(lfd, F_SETLK, &fl);
		write_all(p[1], "x", 1);
		poll(NULL, 0, 500);
		_exit(0);
	}
	close(p[1]);
	if (read(p[0], &c, 1) != 1)
		exit(2);
	close(p[0]);
	is_int(mbox_timed(fd, &secs, &res), OUT_OK,
	    "waits for an fcntl lock: %s", res.text);
	waitpid(pid, NULL, 0);
	ok(secs > 0.4, "delivery waited for the fcntl lock");
	close(fd);
}

/* mklock - a dotlock owned by owner (when we may chown), mtime when */
static void
mklock(const char *lock, uid_t owner, time_t when)
{
	struct timespec ts[2] = {{ when, 0 }, { when, 0 }};
	int lfd = open(lock, O_WRONLY | O_CREAT | O_EXCL, 0600);

	if (lfd < 0 || (asroot && fchown(lfd, owner, (gid_t)-1) < 0)) {
		perror(lock);
		exit(2);
	}
	write_all(lfd, "4242\n", 5);
	close(lfd);
	utimensat(AT_FDCWD, lock, ts, AT_SYMLINK_NOFOLLOW);
}

/* limited - local_mbox in a child under RLIMIT_FSIZE limit; its result.
 * When holdfd >= 0 the child starts while we hold an fcntl lock on the
 * mailbox, and fn runs once the child's dotlock exists, before we let
 * go of the mailbox. */
static void
limited(const char *dir, int msgfd, off_t size, rlim_t limit, int holdfd,
    void (*fn)(const char *lock), const char *lock, struct result *res)
{
	struct result cr;
	struct rlimit rl;
	struct flock fl;
	int p[2], st, i;
	pid_t pid;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	if (holdfd >= 0 && fcntl(holdfd, F_SETLK, &fl) < 0) {
		perror("F_SETLK");
		exit(2);
	}
	if (pipe(p) < 0)
		exit(2);
	fflush(NULL);
	if ((pid = fork()) == 0) {
		close(p[0]);
		rl.rlim_cur = rl.rlim_max = limit;
		if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
			result_set(&cr, OUT_PERM, R_SYSTEM, "setrlimit: %s",
			    strerror(errno));
		else
			local_mbox(dir, user, "a@b", ARRIVAL, msgfd, size, &cr);
		write_all(p[1], &cr, sizeof(cr));
		_exit(0);
	}
	close(p[1]);
	if (holdfd >= 0) {
		/* The child has its dotlock and waits for our fcntl lock. */
		for (i = 0; i < 6000 && access(lock, F_OK) < 0; i++)
			poll(NULL, 0, 10);
		if (fn)
			fn(lock);
		fl.l_type = F_UNLCK;
		fcntl(holdfd, F_SETLK, &fl);
	}
	result_set(res, OUT_PERM, R_SYSTEM, "no result from the child");
	if (read(p[0], &cr, sizeof(cr)) == (ssize_t)sizeof(cr))
		*res = cr;
	close(p[0]);
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		result_set(res, OUT_PERM, R_SYSTEM, "child died (status %d)", st);
}

static ino_t other_ino;

/* replace_lock - another writer breaks the dotlock as stale and takes
 * it: a new file renamed over it (a new inode, never the old one's) */
static void
replace_lock(const char *lock)
{
	char t[600];
	struct stat st;

	snprintf(t, sizeof(t), "%s.other", lock);
	unlink(t);
	mklock(t, uid, time(NULL));
	if (rename(t, lock) < 0 || lstat(lock, &st) < 0) {
		perror("rename");
		exit(2);
	}
	other_ino = st.st_ino;
}

/* test_lock_rules - a dotlock dated far ahead, or owned by someone else,
 * is taken over; one a little ahead (clock skew) is waited for */
static void
test_lock_rules(void)
{
	struct result res;
	char mbox[512], lock[600];
	int fd;

	spool("rules");
	snprintf(mbox, sizeof(mbox), "%s/%s", path("rules"), user);
	snprintf(lock, sizeof(lock), "%s.lock", mbox);
	fd = msgfile("m1", msg1, sizeof(msg1) - 1);

	/* The user's own lock, dated 2099: it would never age. */
	mklock(lock, uid, 4070908800);	/* 2099-01-01 */
	is_int(local_mbox(path("rules"), user, "a@b", ARRIVAL, fd,
	    sizeof(msg1) - 1, &res), OUT_OK, "dotlock dated 2099 taken over: %s",
	    res.text);
	ok(access(lock, F_OK) < 0, "and removed");
	/* Half a minute ahead is clock skew: a live lock, waited for.  A
	 * helper removes it after half a second, if it is still there. */
	mklock(lock, uid, time(NULL) + 30);
	{
		struct stat l0, l1;
		pid_t pid;
		int st2;

		lstat(lock, &l0);
		fflush(NULL);
		if ((pid = fork()) == 0) {
			poll(NULL, 0, 500);
			_exit(lstat(lock, &l1) == 0 && l1.st_ino == l0.st_ino &&
			    unlink(lock) == 0 ? 0 : 1);
		}
		is_int(local_mbox(path("rules"), user, "a@b", ARRIVAL, fd,
		    sizeof(msg1) - 1, &res), OUT_OK, "dotlock 30 s ahead: "
		    "delivered after it went: %s", res.text);
		waitpid(pid, &st2, 0);
		ok(WIFEXITED(st2) && WEXITSTATUS(st2) == 0,
		    "dotlock 30 s ahead: waited for, not taken over");
	}

	/* A fresh lock owned by neither the user nor root. */
	if (asroot) {
		mklock(lock, uid + 1 == 0 ? 2 : uid + 1, time(NULL));
		is_int(local_mbox(path("rules"), user, "a@b", ARRIVAL, fd,
		    sizeof(msg1) - 1, &res), OUT_OK,
		    "fresh dotlock of uid %ld taken over: %s", (long)uid + 1,
		    res.text);
		ok(access(lock, F_OK) < 0, "and removed");
	} else {
		ok(1, "# SKIP a foreign-owned lock needs root to chown");
		ok(1, "# SKIP a foreign-owned lock needs root to chown");
	}
	close(fd);
}

/* test_size_limit - in the mailbox test_lock_rules used: a file size
 * limit rolls the append back; a dotlock taken over during the append
 * stops the roll-back and the unlink */
static void
test_size_limit(void)
{
	struct result res;
	struct buf before, after, big;
	char mbox[512], lock[600];
	struct stat st;
	int fd, hold;

	buf_init(&before, 0);
	buf_init(&after, 0);
	buf_init(&big, 0);
	snprintf(mbox, sizeof(mbox), "%s/%s", path("rules"), user);
	snprintf(lock, sizeof(lock), "%s.lock", mbox);

	/* A file size limit half-way through: EFBIG, not SIGXFSZ, and the
	 * mailbox exactly as before. */
	fd = big_message(&big, 6000, "a message larger than the limit");
	slurp(mbox, &before);
	limited(path("rules"), fd, (off_t)big.len,
	    (rlim_t)before.len + 100000, -1, NULL, lock, &res);
	is_int(res.o, OUT_TEMP, "file size limit: TEMP (%s)", res.text);
	ok(strstr(res.text, "File too large") != NULL,
	    "... the write failed with EFBIG: %s", res.text);
	slurp(mbox, &after);
	ok(after.len == before.len && memcmp(after.p, before.p,
	    after.len) == 0, "file size limit: mailbox byte-identical "
	    "(%zu octets)", after.len);
	ok(access(lock, F_OK) < 0, "file size limit: dotlock removed");

	/* The same, but the dotlock is taken over by another writer while
	 * the delivery holds it: no truncation, the other lock stays. */
	hold = open(mbox, O_RDWR);
	limited(path("rules"), fd, (off_t)big.len,
	    (rlim_t)before.len + 100000, hold, replace_lock, lock, &res);
	close(hold);
	is_int(res.o, OUT_TEMP, "lock taken over, then EFBIG: TEMP (%s)",
	    res.text);
	ok(stat(mbox, &st) == 0 && st.st_size == (off_t)before.len + 100000,
	    "lock taken over: not truncated back (%lld octets, limit %zu)",
	    (long long)st.st_size, before.len + 100000);
	ok(lstat(lock, &st) == 0 && st.st_ino == other_ino,
	    "lock taken over: the other writer's lock is not removed");
	unlink(lock);
	if (truncate(mbox, (off_t)before.len) < 0)
		perror("truncate");
	close(fd);
	buf_free(&before);
	buf_free(&after);
	buf_free(&big);
}

/* test_concurrent - NPROC processes append NMSG messages each */
static void
test_concurrent(void)
{
	char mbox[512], out[256], name[32];
	pid_t pids[NPROC];
	int i, k, st, bad = 0;

	spool("conc");
	snprintf(mbox, sizeof(mbox), "%s/%s", path("conc"), user);
	fflush(NULL);
	for (i = 0; i < NPROC; i++) {
		if ((pids[i] = fork()) != 0)
			continue;
		snprintf(name, sizeof(name), "c%d", i);
		for (k = 0; k < NMSG; k++) {
			struct result res;
			struct buf m;
			int j, fd;

			buf_init(&m, 0);
			buf_printf(&m, "Subject: %d-%d\r\n\r\n", i, k);
			for (j = 0; j < 100; j++)
				buf_printf(&m, j % 3 == 0 ? "From %d-%d %d\r\n" :
				    j % 3 == 1 ? ">From %d-%d %d\r\n" :
				    "%d-%d %d %0200d\r\n", i, k, j, 0);
			fd = msgfile(name, m.p, m.len);
			if (local_mbox(path("conc"), user, "c@d", ARRIVAL, fd,
			    (off_t)m.len, &res) != OUT_OK) {
				fprintf(stderr, "# %s\n", res.text);
				_exit(1);
			}
			close(fd);
			buf_free(&m);
		}
		_exit(0);
	}
	for (i = 0; i < NPROC; i++)
		if (waitpid(pids[i], &st, 0) < 0 || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != 0)
			bad++;
	is_int(bad, 0, "%d processes delivered %d messages each", NPROC,
	    NMSG);
	py("import mailbox,sys\n"
	    "m=mailbox.mbox(sys.argv[1]); seen=set(); bad=0\n"
	    "for k in m.keys():\n"
	    " h,_,b=m.get_bytes(k).decode().partition(\"\\n\\n\")\n"
	    " t=[l[9:] for l in h.split(\"\\n\") if l.startswith(\"Subject: \")][0]\n"
	    " w=\"\".join(\">From %s %d\\n\"%(t,j) if j%3==0 else \">>From %s %d\\n\"%(t,j) if j%3==1 else \"%s %d %s\\n\"%(t,j,\"0\"*200) for j in range(100))\n"
	    " bad+=b.rstrip(\"\\n\")+\"\\n\"!=w; seen.add(t)\n"
	    "print(len(m), len(seen), bad)", mbox, NULL, out, sizeof(out));
	{
		char want[64];

		snprintf(want, sizeof(want), "%d %d 0", NPROC * NMSG,
		    NPROC * NMSG);
		is_str(out, want, "python: %d distinct messages, bodies intact",
		    NPROC * NMSG);
	}
}

static void
test_maildir(void)
{
	struct result res;
	struct buf b, want;
	struct stat st;
	char md[512], f[1200], out[256], *name = NULL;
	struct dirent *d;
	DIR *dir;
	int fd, n = 0;
	size_t i;

	buf_init(&b, 0);
	buf_init(&want, 0);
	mkdir(path("home"), 0700);
	if (asroot && chown(path("home"), uid, (gid_t)-1) < 0)
		perror("chown");
	snprintf(md, sizeof(md), "%s/Maildir", path("home"));
	fd = msgfile("m1", msg1, sizeof(msg1) - 1);
	is_int(local_maildir(md, user, "alice@example.org", fd,
	    sizeof(msg1) - 1, &res), OUT_OK, "maildir delivery: %s", res.text);
	close(fd);
	snprintf(f, sizeof(f), "%s/new", md);
	if ((dir = opendir(f)) != NULL) {
		while ((d = readdir(dir)) != NULL)
			if (d->d_name[0] != '.') {
				n++;
				free(name);
				name = xstrdup(d->d_name);
			}
		closedir(dir);
	}
	is_int(n, 1, "exactly one file in new/");
	snprintf(f, sizeof(f), "%s/tmp", md);
	ok(rmdir(f) == 0 && mkdir(f, 0700) == 0, "tmp/ left empty");
	snprintf(f, sizeof(f), "%s/new/%s", md, name ? name : "");
	/* msg1 with LF ends and a final LF, not quoted */
	buf_adds(&want, "Return-Path: <alice@example.org>\n");
	for (i = 0; i < sizeof(msg1) - 1; i++)
		if (!(msg1[i] == '\r' && msg1[i + 1] == '\n'))
			buf_addc(&want, msg1[i]);
	buf_addc(&want, '\n');
	slurp(f, &b);
	is_str(b.p, want.p, "exact Maildir bytes: LF, no quoting");
	ok(stat(f, &st) == 0 && st.st_uid == uid && (st.st_mode & 0777) == 0600,
	    "message file is %s's, 0600", user);
	snprintf(f, sizeof(f), "%s/cur", md);
	ok(stat(f, &st) == 0 && st.st_uid == uid && (st.st_mode & 0777) == 0700,
	    "cur/ made, %s's, 0700", user);
	ok(name && strchr(name, '/') == NULL && strchr(name, ':') == NULL &&
	    strstr(name, ".M") && strstr(name, "P"), "unique name %s",
	    name ? name : "(none)");
	fd = msgfile("want2", want.p, want.len);
	close(fd);
	py("import mailbox,sys; m=mailbox.Maildir(sys.argv[1], factory=None); "
	    "k=m.keys(); print(len(k), m.get_bytes(k[0])==open(sys.argv[2],"
	    "\"rb\").read())", md, path("want2"), out, sizeof(out));
	is_str(out, "1 True", "python mailbox.Maildir: one message, exact");
	free(name);
	buf_free(&b);
	buf_free(&want);
}

static void
test_refusals(void)
{
	struct result res;
	char mbox[512];
	struct stat st;
	int fd;

	fd = msgfile("m1", msg1, sizeof(msg1) - 1);
	is_int(local_mbox(path("spool"), "no-such-user-mxsend", "a@b", ARRIVAL,
	    fd, sizeof(msg1) - 1, &res), OUT_PERM, "unknown user: PERM");
	ok(res.why == R_NO_USER && strcmp(res.text, "no-such-user-mxsend") == 0,
	    "its reason: no such user, the user's name the detail");
	is_int(local_mbox(path("spool"), "../etc", "a@b", ARRIVAL, fd,
	    sizeof(msg1) - 1, &res), OUT_PERM, "a path as user: PERM");
	is_int(local_maildir(path("home/M2"), "no-such-user-mxsend", "a@b", fd,
	    sizeof(msg1) - 1, &res), OUT_PERM, "unknown maildir user: PERM");

	spool("sym");
	snprintf(mbox, sizeof(mbox), "%s/%s", path("sym"), user);
	fd = msgfile("target", "", 0);
	close(fd);
	if (asroot && chown(path("target"), uid, (gid_t)-1) < 0)
		perror("chown");
	if (symlink(path("target"), mbox) < 0)
		perror("symlink");
	fd = msgfile("m1", msg1, sizeof(msg1) - 1);
	is_int(local_mbox(path("sym"), user, "a@b", ARRIVAL, fd,
	    sizeof(msg1) - 1, &res), OUT_TEMP, "symlinked mbox refused: %s",
	    res.text);
	ok(strstr(res.text, "symbolic link") != NULL, "says why");
	ok(stat(path("target"), &st) == 0 && st.st_size == 0,
	    "symlink target untouched");

	spool("fifo");
	snprintf(mbox, sizeof(mbox), "%s/%s", path("fifo"), user);
	mkfifo(mbox, 0600);
	if (asroot && chown(mbox, uid, (gid_t)-1) < 0)
		perror("chown");
	is_int(local_mbox(path("fifo"), user, "a@b", ARRIVAL, fd,
	    sizeof(msg1) - 1, &res), OUT_TEMP, "FIFO mbox refused: %s",
	    res.text);
	close(fd);
}

static void
test_expand(void)
{
	char out[64];

	is_int(local_expand("~/Maildir", "/home/u", out, sizeof(out)), 0,
	    "~/ expands");
	is_str(out, "/home/u/Maildir", "to the home");
	ok(local_expand("~", "/home/u", out, sizeof(out)) == 0 &&
	    strcmp(out, "/home/u") == 0, "~ alone");
	ok(local_expand("/var/mail/x", "/home/u", out, sizeof(out)) == 0 &&
	    strcmp(out, "/var/mail/x") == 0, "absolute path as is");
	is_int(local_expand("Maildir", "/home/u", out, sizeof(out)), -1,
	    "relative refused");
	is_int(local_expand("~bob/Maildir", "/home/u", out, sizeof(out)), -1,
	    "~user refused");
	is_int(local_expand("~/x", "/home/a-very-long-home-directory-name/"
	    "deeper/still", out, 16), -1, "too long refused");
}

int
main(void)
{
	struct passwd *pw;

	setenv("TZ", "UTC", 1);
	tzset();
	umask(022);
	asroot = geteuid() == 0;
	pw = asroot ? getpwnam("nobody") : getpwuid(geteuid());
	if (pw == NULL) {
		printf("1..0 # SKIP no user to deliver to\n");
		return 0;
	}
	snprintf(user, sizeof(user), "%s", pw->pw_name);
	uid = pw->pw_uid;
	if (access(PY, X_OK) < 0) {
		printf("1..0 # SKIP no %s\n", PY);
		return 0;
	}
	snprintf(tmp, sizeof(tmp), "/tmp/localtest.XXXXXX");
	if (mkdtemp(tmp) == NULL || chmod(tmp, 0755) < 0) {
		perror("mkdtemp");
		return 2;
	}
	printf("# delivering to %s (uid %ld)%s\n", user, (long)uid,
	    asroot ? ", as root" : "");
	test_expand();
	test_mbox();
	test_mbox_damage();
	test_locks();
	test_lock_rules();
	test_size_limit();
	test_concurrent();
	test_maildir();
	test_refusals();
	if (!tap_failed) {
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
		if (system(cmd) != 0)
			printf("# cannot remove %s\n", tmp);
	} else
		printf("# left %s for inspection\n", tmp);
	return tap_done();
}
