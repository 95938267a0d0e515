/*
 * local.c - final delivery of one queued message to one local mailbox.
 *
 * Input: the queue's message file (CRLF lines, not dot-stuffed, "size"
 * octets from offset 0).  Both formats get LF line ends and, first, a
 * "Return-Path: <SENDER>" line (RFC 5321 4.4: the delivering MTA adds it
 * at final delivery; msg_fixup removed any the submitter wrote).  No
 * Delivered-To is added: the address is not known here.
 *
 *   mbox DIR      DIR/USER, appended: "From SENDER DATE" (asctime date of
 *                 the arrival, local time; "MAILER-DAEMON" for the null
 *                 sender, spaces and controls in SENDER as '_'), the
 *                 message with mboxrd quoting (a line matching ">*From "
 *                 gets one more '>'), a final LF if it had none, then one
 *                 empty line.  Locked with a dotlock DIR/USER.lock
 *                 (O_CREAT|O_EXCL) and then fcntl F_SETLK on the whole
 *                 file, each polled for at most MBOX_LOCK_WAIT seconds.
 *                 A dotlock is stale, removed and taken, when it is older
 *                 than DOTLOCK_STALE seconds, dated more than DOTLOCK_SKEW
 *                 seconds ahead (it would never age), or owned by neither
 *                 USER nor root (no delivery to this mailbox made it);
 *                 the log says which.  After the append: fsync; on any
 *                 error (SIGXFSZ is ignored, so a file size limit is the
 *                 error EFBIG, not a kill) the file is truncated back to
 *                 its old size, so no reader ever sees half a message (a
 *                 crash of the writing process itself can still leave a
 *                 tail) -- but only while DIR/USER.lock is still the one
 *                 we made (same device and inode): if it was broken as
 *                 stale, another writer may have appended since, and
 *                 neither the truncation nor the final unlink happens.
 *   maildir PATH  "~/" is the user's home.  PATH, PATH/tmp, new, cur are
 *                 made 0700 when missing; the message goes to tmp/NAME
 *                 (O_EXCL), is fsynced, linked (renamed where link is not
 *                 supported) to new/NAME, and new/ is fsynced.  NAME is
 *                 SECS.MUSECSPPIDQN.HOST, HOST with '/' and ':' as \057
 *                 and \072.  No ">From" quoting.
 *
 * Security.  When mxsend runs as root, no mailbox file is touched with
 * root's rights: a child process sets its groups to the user's plus the
 * group of the mbox DIR (Debian: /var/mail is root:mail 2775, so this is
 * the "setgid mail" right every Debian MDA holds), then setgid and setuid
 * to the user, and does the whole delivery; its outcome comes back over
 * a pipe.  Path lookups, O_CREAT and link therefore run with only the
 * user's rights, so a link planted by the user cannot make mxsend write
 * a file the user could not write anyway; new files and directories are
 * the user's without any chown.  (The alternative, create as root and
 * fchown, leaves every path lookup under root's rights, so it was not
 * taken.)  On top of that the mbox is opened with O_NOFOLLOW, must be a
 * regular file (checked with lstat before the open, so no device or FIFO
 * is ever opened, and with fstat after), have one link, and belong to the
 * user; a new one is created 0600 with O_EXCL.  Owner and mode of an
 * existing mailbox are never changed.  A Maildir PATH may be a symlink
 * (the user's own choice; the child has only the user's rights).
 * Without root mxsend works with its own rights: it can deliver to the
 * invoking user's mailbox, or append to another's existing mbox through
 * the DIR group when installed setgid mail; it never creates a mailbox
 * for someone else (it would be owned by the wrong user), nor writes into
 * another user's Maildir: those wait in the queue for root's run.
 *
 * Outcomes: an unknown user is PERM "no such local user"; everything
 * else (locks busy, disk full, a symlinked or odd mailbox the admin must
 * fix) is TEMP, so the message waits in the queue.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "mxsend.h"

/* How long to wait for another writer's dotlock or fcntl lock before the
 * attempt is deferred: a healthy writer holds them for milliseconds. */
#define MBOX_LOCK_WAIT 60
/* A dotlock older than this is left over from a crash (five minutes, as
 * procmail and liblockfile). */
#define DOTLOCK_STALE 300
/* A dotlock dated further ahead than this never ages: it was not made
 * by a writer with our clock (NFS clocks differ by seconds, not more). */
#define DOTLOCK_SKEW 60
/* Longest user name taken; useradd allows 32. */
#define LOCAL_USER_MAX 64
/* Read the queue file and write the mailbox in blocks this large. */
#define LOCAL_BLOCK 65536
/* What the delivery child may take, all waits included (two lock waits of
 * MBOX_LOCK_WAIT, then a copy that takes well under a second for the
 * largest message); it runs as the user, who can stop it.  A run's
 * budget (queue_run_time) may cut it shorter. */
#define LOCAL_TIMEOUT (2 * MBOX_LOCK_WAIT + 60)
/* After LOCAL_TIMEOUT the child is asked to stop (it rolls the mailbox
 * back and removes its lock), and killed if it has not this much later. */
#define LOCAL_GRACE 5
/* Supplementary groups kept for the delivery child. */
#define LOCAL_GROUPS_MAX 256

/* One delivery, copied out of getpwnam's storage before any fork. */
struct job {
	char user[LOCAL_USER_MAX + 1];
	uid_t uid;
	gid_t gid;
	gid_t xgid;		/* the mbox DIR's group, or (gid_t)-1 */
	char path[PATH_MAX];	/* mbox DIR/USER, or the Maildir */
	const char *sender;
	time_t arrival;
	int msgfd;
	off_t size;
};

typedef enum outcome (*jobfn)(const struct job *, struct result *);

/* valid_user - a name that can be one path component */
static int
valid_user(const char *u)
{
	size_t i, n = strlen(u);

	if (n == 0 || n > LOCAL_USER_MAX || u[0] == '.' || u[0] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)u[i] <= 0x20 || u[i] == 0x7f || u[i] == '/')
			return 0;
	return 1;
}

/* lookup - fill j from the password database: 0, or -1 with res set
 * (PERM when the user does not exist, TEMP when the lookup failed) */
static int
lookup(const char *user, struct job *j, char *home, size_t homelen,
    struct result *res)
{
	struct passwd pw, *p = NULL;
	size_t blen = 16384;
	char *b = NULL;
	int e, rc = -1;

	if (!valid_user(user)) {
		result_set(res, OUT_PERM, R_NO_USER, "%s", user);
		return -1;
	}
	for (;;) {
		b = xmalloc(blen);
		e = getpwnam_r(user, &pw, b, blen, &p);
		if (e != ERANGE || blen >= 1024 * 1024)
			break;
		free(b);
		blen *= 4;
	}
	if (e != 0 && e != ENOENT && e != ESRCH) {
		result_set(res, OUT_TEMP, R_LOCAL, "cannot look up local user %s: %s",
		    user, strerror(e));
		goto out;
	}
	if (p == NULL) {
		result_set(res, OUT_PERM, R_NO_USER, "%s", user);
		goto out;
	}
	snprintf(j->user, sizeof(j->user), "%s", user);
	j->uid = pw.pw_uid;
	j->gid = pw.pw_gid;
	j->xgid = (gid_t)-1;
	if (home != NULL && (size_t)snprintf(home, homelen, "%s",
	    pw.pw_dir) >= homelen) {
		result_set(res, OUT_TEMP, R_LOCAL, "home directory of %s too long", user);
		goto out;
	}
	rc = 0;
out:
	free(b);
	return rc;
}

/* drop_to - become the job's user for good (groups first: after setuid
 * they could not be changed); 0 or -1 */
static int
drop_to(const struct job *j)
{
	gid_t g[LOCAL_GROUPS_MAX + 1];
	int n = LOCAL_GROUPS_MAX, i, have = 0;

	if (getgrouplist(j->user, j->gid, g, &n) < 0) {
		/* Too many: the primary group only, fewer rights is safe. */
		g[0] = j->gid;
		n = 1;
	}
	if (j->xgid != (gid_t)-1 && j->xgid != 0) {
		for (i = 0; i < n; i++)
			if (g[i] == j->xgid)
				have = 1;
		if (!have)
			g[n++] = j->xgid;
	}
	if (setgroups((size_t)n, g) < 0 || setgid(j->gid) < 0 ||
	    setuid(j->uid) < 0)
		return -1;
	if (getuid() != j->uid || geteuid() != j->uid ||
	    getegid() != j->gid || (j->uid != 0 && setuid(0) == 0))
		return -1;
	return 0;
}

/* Set in the delivery child when its parent asks it to stop (SIGTERM):
 * the delivery gives up where it is, rolling the mailbox back. */
static volatile sig_atomic_t stop_asked;

static void
on_term(int sig)
{
	(void)sig;
	stop_asked = 1;
}

/* stopping - has the delivery been asked to stop?  res says so then. */
static int
stopping(struct result *res)
{
	if (stop_asked)
		result_set(res, OUT_TEMP, R_LOCAL, "local delivery stopped at the end of "
		    "the run's time");
	return stop_asked;
}

/* child_result - the delivery child's outcome from pipe fd, read until
 * the deadline; 0 when it came whole, -1 on EOF, error or timeout (*late
 * set for the timeout) */
static int
child_result(int fd, struct result *cr, long long deadline, int *late)
{
	size_t got = 0;
	ssize_t r;
	int w;

	*late = 0;
	while (got < sizeof(*cr)) {
		if ((w = wait_fd(fd, POLLIN, deadline)) <= 0) {
			*late = w == 0;
			return -1;
		}
		r = read(fd, (char *)cr + got, sizeof(*cr) - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

/*
 * as_user - run fn for the job with the user's rights: in a child that
 * dropped to the user when we are root, else right here.  The child
 * runs with the user's uid, so the user can stop it (SIGSTOP): it gets
 * LOCAL_TIMEOUT (never past the run's budget) and is then killed, and
 * the delivery is deferred.  It cannot dump core and cannot be traced,
 * so the user never sees the memory it shares with root's run.
 */
static enum outcome
as_user(const struct job *j, jobfn fn, struct result *res)
{
	const struct rlimit nocore = { 0, 0 };
	struct result cr;
	pid_t pid;
	int p[2], st = 0, late = 0, again, whole;

	if (geteuid() != 0 || j->uid == 0)
		return fn(j, res);
	if (pipe2(p, O_CLOEXEC) < 0) {
		result_set(res, OUT_TEMP, R_LOCAL, "cannot create pipe: %s",
		    strerror(errno));
		return res->o;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		result_set(res, OUT_TEMP, R_LOCAL, "cannot fork: %s", strerror(errno));
		close(p[0]);
		close(p[1]);
		return res->o;
	}
	if (pid == 0) {
		struct sigaction sa;

		close(p[0]);
		umask(077);
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_term;
		sigemptyset(&sa.sa_mask);
		(void)sigaction(SIGTERM, &sa, NULL);
		memset(&cr, 0, sizeof(cr));
		if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 ||
		    setrlimit(RLIMIT_CORE, &nocore) < 0)
			result_set(&cr, OUT_TEMP, R_LOCAL, "cannot keep the delivery process "
			    "from dumping core: %s", strerror(errno));
		else if (drop_to(j) < 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
			/* (a change of uid resets "dumpable" to the system's
			 * fs.suid_dumpable: it is set again after the drop) */
			result_set(&cr, OUT_TEMP, R_LOCAL, "cannot switch to user %s: %s",
			    j->user, strerror(errno));
		else
			fn(j, &cr);
		(void)write_all(p[1], &cr, sizeof(cr));
		_exit(0);
	}
	close(p[1]);
	memset(&cr, 0, sizeof(cr));
	whole = child_result(p[0], &cr, deadline_in(LOCAL_TIMEOUT), &late) == 0;
	if (late) {
		/* Ask it to stop and roll back (waking it if the user stopped
		 * it: root may signal the user's process), and kill it if it
		 * has not answered within the grace. */
		kill(pid, SIGTERM);
		kill(pid, SIGCONT);
		whole = child_result(p[0], &cr, now_ms() + LOCAL_GRACE * 1000,
		    &again) == 0;
		if (!whole)
			kill(pid, SIGKILL);
	}
	close(p[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	/* (one that finished just then did deliver) */
	if (late && !(whole && cr.o == OUT_OK))
		result_set(res, OUT_TEMP, R_LOCAL, "local delivery to %s did not finish "
		    "in time; stopped", j->user);
	else if (whole && (cr.o == OUT_OK || cr.o == OUT_TEMP ||
	    cr.o == OUT_PERM)) {
		cr.text[sizeof(cr.text) - 1] = '\0';
		*res = cr;
	} else if (WIFSIGNALED(st))
		result_set(res, OUT_TEMP, R_LOCAL, "local delivery process killed by "
		    "signal %d", WTERMSIG(st));
	else
		result_set(res, OUT_TEMP, R_LOCAL, "local delivery process failed");
	return res->o;
}

/* The copy: CRLF to LF, mboxrd quoting, buffered writes. */
struct conv {
	int fd;
	int quote;		/* mboxrd: ">*From " gets one more '>' */
	int cr;			/* a CR held back: CRLF becomes LF */
	int bol;		/* at a line start, still matching ">*From " */
	size_t ngt, nfrom;	/* '>'s and octets of "From " matched */
	int last;		/* last octet out, -1 for none */
	int err;		/* errno of a failed write */
	struct buf out;
};

static void
conv_out(struct conv *c, const char *p, size_t n)
{
	if (c->err || n == 0)
		return;
	if (buf_add(&c->out, p, n) < 0) {
		c->err = ENOMEM;
		return;
	}
	c->last = (unsigned char)p[n - 1];
	if (c->out.len >= LOCAL_BLOCK) {
		if (write_all(c->fd, c->out.p, c->out.len) < 0)
			c->err = errno;
		buf_reset(&c->out);
	}
}

/* conv_held - give up matching: the held '>'s and "From" prefix go out */
static void
conv_held(struct conv *c)
{
	for (; c->ngt > 0; c->ngt--)
		conv_out(c, ">", 1);
	conv_out(c, "From ", c->nfrom);
	c->nfrom = 0;
	c->bol = 0;
}

/* conv_lf - one octet of LF-ended text */
static void
conv_lf(struct conv *c, char ch)
{
	if (c->bol) {
		if (ch == '>' && c->nfrom == 0) {
			c->ngt++;
			return;
		}
		if (ch == "From "[c->nfrom]) {
			if (++c->nfrom < 5)
				return;
			conv_out(c, ">", 1);	/* the added quote */
			conv_held(c);
			return;
		}
		conv_held(c);
	}
	conv_out(c, &ch, 1);
	if (ch == '\n')
		c->bol = c->quote;
}

/* conv_byte - one octet of the queued CRLF text */
static void
conv_byte(struct conv *c, char ch)
{
	if (c->cr) {
		c->cr = 0;
		if (ch == '\n') {
			conv_lf(c, '\n');
			return;
		}
		conv_lf(c, '\r');
	}
	if (ch == '\r')
		c->cr = 1;
	else
		conv_lf(c, ch);
}

/* copy_msg - the message at msgfd to fd, LF lines ending in a LF;
 * 0 or -1 with res set */
static int
copy_msg(int fd, int msgfd, off_t size, int quote, const char *head,
    struct result *res)
{
	struct conv c;
	char *in = xmalloc(LOCAL_BLOCK);
	off_t pos = 0;
	ssize_t r, i;
	int rc = -1;

	memset(&c, 0, sizeof(c));
	c.fd = fd;
	c.quote = c.bol = quote;
	c.last = -1;
	buf_init(&c.out, 2 * LOCAL_BLOCK + 16);
	conv_out(&c, head, strlen(head));
	while (pos < size && !c.err) {
		size_t want = LOCAL_BLOCK;

		if ((off_t)want > size - pos)
			want = (size_t)(size - pos);
		if (stopping(res))
			goto out;
		r = pread(msgfd, in, want, pos);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			result_set(res, OUT_TEMP, R_LOCAL, "cannot read queued message: %s",
			    r < 0 ? strerror(errno) : "file shorter than its size");
			goto out;
		}
		for (i = 0; i < r; i++)
			conv_byte(&c, in[i]);
		pos += r;
	}
	if (c.cr)
		conv_lf(&c, '\r');
	if (c.bol)
		conv_held(&c);
	if (c.last != '\n')
		conv_out(&c, "\n", 1);
	if (quote)
		conv_out(&c, "\n", 1);
	if (!c.err && c.out.len && write_all(fd, c.out.p, c.out.len) < 0)
		c.err = errno;
	if (c.err) {
		result_set(res, OUT_TEMP, R_LOCAL, "cannot write mailbox: %s",
		    strerror(c.err));
		goto out;
	}
	rc = 0;
out:
	free(in);
	buf_free(&c.out);
	return rc;
}

/* sender_word - the sender as one word for a From line or Return-Path */
static void
sender_word(const char *s, char *out, size_t outlen)
{
	size_t i, o = 0;

	for (i = 0; s[i] && o + 1 < outlen; i++) {
		unsigned char ch = (unsigned char)s[i];

		out[o++] = ch <= 0x20 || ch == 0x7f ? '_' : (char)ch;
	}
	out[o] = '\0';
}

/* mbox_head - the From line (asctime date) and Return-Path */
static void
mbox_head(const struct job *j, int mbox, char *out, size_t outlen)
{
	static const char day[7][4] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
	};
	static const char mon[12][4] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
		"Oct", "Nov", "Dec"
	};
	char s[ADDR_MAX + 1];
	struct tm tm;
	size_t n = 0;

	sender_word(j->sender, s, sizeof(s));
	if (mbox) {
		if (localtime_r(&j->arrival, &tm) == NULL)
			memset(&tm, 0, sizeof(tm));
		n = (size_t)snprintf(out, outlen,
		    "From %s %s %s %2d %02d:%02d:%02d %d\n",
		    s[0] ? s : "MAILER-DAEMON", day[tm.tm_wday % 7],
		    mon[tm.tm_mon % 12], tm.tm_mday, tm.tm_hour, tm.tm_min,
		    tm.tm_sec, tm.tm_year + 1900);
		if (n >= outlen)
			n = 0;
	}
	snprintf(out + n, outlen - n, "Return-Path: <%s>\n", s);
}

/* backoff - sleep a little longer each time, at most a quarter second */
static void
backoff(int *ms)
{
	poll(NULL, 0, *ms);
	if (*ms < 250)
		*ms *= 2;
}

/* wait_more - back off once more before trying a lock again; -1 (res
 * set, busy worded with path) when the run is stopping or the deadline
 * has passed */
static int
wait_more(struct result *res, long long deadline, int *ms, const char *busy,
    const char *path)
{
	if (stopping(res))
		return -1;
	if (now_ms() > deadline) {
		result_set(res, OUT_TEMP, R_LOCAL, busy, path);
		return -1;
	}
	backoff(ms);
	return 0;
}

/* lock_stale - why the dotlock st is left over and may be broken, or
 * NULL while it may be a live writer's: too old, dated ahead, or owned
 * by someone who has no business locking owner's mailbox */
static const char *
lock_stale(const struct stat *st, uid_t owner, time_t now)
{
	if (st->st_uid != owner && st->st_uid != 0)
		return "owned by neither the mailbox's user nor root";
	if (st->st_mtime > now + DOTLOCK_SKEW)
		return "dated in the future";
	if (now - st->st_mtime > DOTLOCK_STALE)
		return "older than five minutes";
	return NULL;
}

/* dotlock - create lock with O_EXCL, breaking a stale one; 0 with the
 * new lock's device and inode in *mine, or -1 with res set */
static int
dotlock(const struct job *j, const char *lock, struct stat *mine,
    struct result *res)
{
	long long deadline = deadline_in(MBOX_LOCK_WAIT);
	const char *why;
	char pid[32];
	struct stat st;
	int fd, ms = 5;

	for (;;) {
		fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
		if (fd >= 0)
			break;
		if (errno != EEXIST) {
			result_set(res, OUT_TEMP, R_LOCAL, "cannot create lock %s: %s",
			    lock, strerror(errno));
			return -1;
		}
		if (lstat(lock, &st) == 0 &&
		    (why = lock_stale(&st, j->uid, time(NULL))) != NULL) {
			if (unlink(lock) < 0 && errno != ENOENT) {
				result_set(res, OUT_TEMP, R_LOCAL, "cannot remove stale "
				    "lock %s: %s", lock, strerror(errno));
				return -1;
			}
			logev("local", LOG_WARNING, "removed stale lock %s (uid %ld, "
			    "mtime %lld): %s", lock, (long)st.st_uid,
			    (long long)st.st_mtime, why);
			continue;
		}
		if (wait_more(res, deadline, &ms, "mailbox lock %s busy",
		    lock) < 0)
			return -1;
	}
	if (fstat(fd, mine) < 0) {
		result_set(res, OUT_TEMP, R_LOCAL, "cannot stat lock %s: %s", lock,
		    strerror(errno));
		close(fd);
		unlink(lock);
		return -1;
	}
	snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	(void)write_all(fd, pid, strlen(pid));
	close(fd);
	return 0;
}

/* lock_mine - is lock still the dotlock we made (device and inode)? */
static int
lock_mine(const char *lock, const struct stat *mine)
{
	struct stat st;

	return lstat(lock, &st) == 0 && st.st_dev == mine->st_dev &&
	    st.st_ino == mine->st_ino;
}

/* fcntl_lock - the whole file, polled (F_SETLKW would need alarm()) */
static int
fcntl_lock(int fd, const char *path, struct result *res)
{
	long long deadline = deadline_in(MBOX_LOCK_WAIT);
	struct flock fl;
	int ms = 5;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	while (fcntl(fd, F_SETLK, &fl) < 0) {
		if (errno != EACCES && errno != EAGAIN && errno != EINTR) {
			result_set(res, OUT_TEMP, R_LOCAL, "cannot lock %s: %s", path,
			    strerror(errno));
			return -1;
		}
		if (wait_more(res, deadline, &ms, "mailbox %s locked", path) < 0)
			return -1;
	}
	return 0;
}

/* mbox_open - the mailbox for appending (and reading its last octet),
 * created when missing; checks that it is the user's own regular file;
 * fd or -1 with res set */
static int
mbox_open(const struct job *j, struct result *res)
{
	const int fl = O_RDWR | O_APPEND | O_NOFOLLOW | O_NOCTTY |
	    O_NONBLOCK | O_CLOEXEC;
	struct stat ls, st;
	int fd = -1, exists;

	exists = lstat(j->path, &ls) == 0;
	if (!exists && errno != ENOENT) {
		result_set(res, OUT_TEMP, R_LOCAL, "cannot stat mailbox %s: %s",
		    j->path, strerror(errno));
		return -1;
	}
	if (exists && S_ISLNK(ls.st_mode)) {
		result_set(res, OUT_TEMP, R_LOCAL, "mailbox %s is a symbolic link",
		    j->path);
		return -1;
	}
	if (exists && !S_ISREG(ls.st_mode)) {
		result_set(res, OUT_TEMP, R_LOCAL, "mailbox %s is not a regular file",
		    j->path);
		return -1;
	}
	if (!exists && j->uid != geteuid()) {
		result_set(res, OUT_TEMP, R_LOCAL, "no mailbox %s, and uid %ld cannot "
		    "create it for %s", j->path, (long)geteuid(), j->user);
		return -1;
	}
	fd = exists ? open(j->path, fl) : open(j->path, fl | O_CREAT | O_EXCL,
	    0600);
	if (fd < 0) {
		result_set(res, OUT_TEMP, R_LOCAL, "cannot open mailbox %s: %s", j->path,
		    errno == ELOOP ? "symbolic link" : strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (exists && (st.st_dev != ls.st_dev || st.st_ino != ls.st_ino))) {
		result_set(res, OUT_TEMP, R_LOCAL, "mailbox %s changed while opening",
		    j->path);
		goto bad;
	}
	if (st.st_nlink != 1) {
		result_set(res, OUT_TEMP, R_LOCAL, "mailbox %s has %ld links", j->path,
		    (long)st.st_nlink);
		goto bad;
	}
	if (st.st_uid != j->uid) {
		result_set(res, OUT_TEMP, R_LOCAL, "mailbox %s is owned by uid %ld, not "
		    "%s", j->path, (long)st.st_uid, j->user);
		goto bad;
	}
	return fd;
bad:
	close(fd);
	return -1;
}

/* mbox_job - the append, under both locks */
static enum outcome
mbox_job(const struct job *j, struct result *res)
{
	char lock[PATH_MAX + 8], head[ADDR_MAX * 2 + 128];
	struct sigaction ign, oxfsz;
	struct stat st, mine;
	off_t old = -1;
	int fd = -1, locked = 0, mine_now;
	char last;

	/* A file size limit (RLIMIT_FSIZE) must fail the write with EFBIG,
	 * so that the append is rolled back, not kill us half-way. */
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigemptyset(&ign.sa_mask);
	(void)sigaction(SIGXFSZ, &ign, &oxfsz);
	result_set(res, OUT_TEMP, R_LOCAL, "mailbox delivery failed");
	if ((size_t)snprintf(lock, sizeof(lock), "%s.lock", j->path) >=
	    sizeof(lock)) {
		result_set(res, OUT_TEMP, R_LOCAL, "mailbox path too long");
		goto out;
	}
	if (dotlock(j, lock, &mine, res) < 0)
		goto out;
	locked = 1;
	if ((fd = mbox_open(j, res)) < 0 || fcntl_lock(fd, j->path, res) < 0)
		goto out;
	if (fstat(fd, &st) < 0) {
		result_set(res, OUT_TEMP, R_LOCAL, "cannot stat mailbox %s: %s",
		    j->path, strerror(errno));
		goto out;
	}
	old = st.st_size;
	/* A mailbox not ending in LF (damaged) would glue our From line to
	 * its last line. */
	if (old > 0 && pread(fd, &last, 1, old - 1) == 1 && last != '\n' &&
	    write_all(fd, "\n", 1) < 0) {
		result_set(res, OUT_TEMP, R_LOCAL, "cannot write mailbox %s: %s",
		    j->path, strerror(errno));
		goto out;
	}
	mbox_head(j, 1, head, sizeof(head));
	if (copy_msg(fd, j->msgfd, j->size, 1, head, res) < 0)
		goto out;
	if (fsync(fd) < 0) {
		result_set(res, OUT_TEMP, R_LOCAL, "cannot sync mailbox %s: %s",
		    j->path, strerror(errno));
		goto out;
	}
	result_set(res, OUT_OK, R_NONE, "delivered to mailbox %s", j->path);
out:
	mine_now = locked && lock_mine(lock, &mine);
	if (locked && !mine_now)
		logev("local", LOG_WARNING, "lock %s was taken over during "
		    "delivery to %s", lock, j->path);
	if (res->o != OUT_OK && old >= 0) {
		/* Never leave half a message: back to the old size.  Unless
		 * the dotlock was broken meanwhile: a writer that took it may
		 * have appended after our tail, and cutting at old would take
		 * its message too. */
		if (!mine_now)
			logev("local", LOG_ERR, "not truncating %s back to %lld: "
			    "its lock is no longer ours", j->path,
			    (long long)old);
		else if (ftruncate(fd, old) < 0 || fsync(fd) < 0)
			logev("local", LOG_ERR, "cannot truncate %s back to %lld: %s",
			    j->path, (long long)old, strerror(errno));
	}
	if (fd >= 0)
		close(fd);	/* drops the fcntl lock */
	if (mine_now)
		unlink(lock);
	(void)sigaction(SIGXFSZ, &oxfsz, NULL);
	return res->o;
}

enum outcome
local_mbox(const char *dir, const char *user, const char *sender,
    time_t arrival, int msgfd, off_t size, struct result *res)
{
	struct job j;
	struct stat st;

	memset(&j, 0, sizeof(j));
	if (lookup(user, &j, NULL, 0, res) < 0)
		return res->o;
	if ((size_t)snprintf(j.path, sizeof(j.path), "%s/%s", dir, user) >=
	    sizeof(j.path)) {
		result_set(res, OUT_TEMP, R_LOCAL, "mailbox path too long");
		return res->o;
	}
	/* A group-writable spool (root:mail 2775): the child needs its group
	 * to make dotlocks and new mailboxes there. */
	if (stat(dir, &st) == 0 && (st.st_mode & S_IWGRP))
		j.xgid = st.st_gid;
	j.sender = sender;
	j.arrival = arrival;
	j.msgfd = msgfd;
	j.size = size;
	return as_user(&j, mbox_job, res);
}

/* mkdir_ok - a directory that exists afterwards; 0 or -1 with res set */
static int
mkdir_ok(const char *path, struct result *res)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		result_set(res, OUT_TEMP, R_LOCAL, "cannot create %s: %s", path,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/* md_name - a unique file name (Maildir spec: time, a unique part for
 * this host, the host name with '/' and ':' escaped) */
static void
md_name(char *out, size_t outlen)
{
	static unsigned seq;
	char host[HOST_MAX], h[HOST_MAX * 4];
	struct timeval tv;
	size_t i, o = 0;

	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	for (i = 0; host[i] && o + 5 < sizeof(h); i++) {
		if (host[i] == '/' || host[i] == ':') {
			snprintf(h + o, 5, "\\%03o", (unsigned char)host[i]);
			o += 4;
		} else
			h[o++] = host[i];
	}
	h[o] = '\0';
	gettimeofday(&tv, NULL);
	snprintf(out, outlen, "%lld.M%ldP%ldQ%u.%s", (long long)tv.tv_sec,
	    (long)tv.tv_usec, (long)getpid(), ++seq, h);
}

/* maildir_job - tmp, fsync, link to new, fsync new */
static enum outcome
maildir_job(const struct job *j, struct result *res)
{
	char name[HOST_MAX * 4 + 64], head[ADDR_MAX + 32];
	char d[PATH_MAX + 8], tmp[sizeof(d) + sizeof(name)];
	char fin[sizeof(tmp)];
	int fd = -1, i;
	size_t n;

	result_set(res, OUT_TEMP, R_LOCAL, "maildir delivery failed");
	tmp[0] = '\0';
	if (mkdir_ok(j->path, res) < 0)
		goto out;
	for (i = 0; i < 3; i++) {
		n = (size_t)snprintf(d, sizeof(d), "%s/%s", j->path,
		    i == 0 ? "tmp" : i == 1 ? "new" : "cur");
		if (n >= sizeof(d)) {
			result_set(res, OUT_TEMP, R_LOCAL, "maildir path too long");
			goto out;
		}
		if (mkdir_ok(d, res) < 0)
			goto out;
	}
	for (i = 0; i < 10 && fd < 0; i++) {
		md_name(name, sizeof(name));
		snprintf(tmp, sizeof(tmp), "%s/tmp/%s", j->path, name);
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0) {
		result_set(res, OUT_TEMP, R_LOCAL, "cannot create %s: %s", tmp,
		    strerror(errno));
		tmp[0] = '\0';
		goto out;
	}
	mbox_head(j, 0, head, sizeof(head));
	if (copy_msg(fd, j->msgfd, j->size, 0, head, res) < 0)
		goto out;
	if (fsync(fd) < 0 || close(fd) < 0) {
		fd = -1;
		result_set(res, OUT_TEMP, R_LOCAL, "cannot write %s: %s", tmp,
		    strerror(errno));
		goto out;
	}
	fd = -1;
	snprintf(fin, sizeof(fin), "%s/new/%s", j->path, name);
	if (link(tmp, fin) == 0)
		unlink(tmp);
	else if ((errno != EPERM && errno != ENOSYS && errno != EOPNOTSUPP) ||
	    rename(tmp, fin) < 0) {
		result_set(res, OUT_TEMP, R_LOCAL, "cannot move %s to new/: %s", tmp,
		    strerror(errno));
		goto out;
	}
	tmp[0] = '\0';
	snprintf(d, sizeof(d), "%s/new", j->path);
	if (fsync_dir(d) < 0) {
		result_set(res, OUT_TEMP, R_LOCAL, "cannot sync %s: %s", d,
		    strerror(errno));
		unlink(fin);
		goto out;
	}
	result_set(res, OUT_OK, R_NONE, "delivered to maildir %s", j->path);
out:
	if (fd >= 0)
		close(fd);
	if (tmp[0])
		unlink(tmp);
	return res->o;
}

int
local_expand(const char *path, const char *home, char *out, size_t outlen)
{
	size_t n;

	if (path[0] == '~' && (path[1] == '/' || path[1] == '\0')) {
		if (home == NULL || home[0] != '/')
			return -1;
		n = (size_t)snprintf(out, outlen, "%s%s", home, path + 1);
	} else if (path[0] == '/')
		n = (size_t)snprintf(out, outlen, "%s", path);
	else
		return -1;
	return n < outlen ? 0 : -1;
}

enum outcome
local_maildir(const char *path, const char *user, const char *sender,
    int msgfd, off_t size, struct result *res)
{
	char home[PATH_MAX];
	struct job j;

	memset(&j, 0, sizeof(j));
	if (lookup(user, &j, home, sizeof(home), res) < 0)
		return res->o;
	if (local_expand(path, home, j.path, sizeof(j.path)) < 0) {
		result_set(res, OUT_TEMP, R_LOCAL, "bad maildir path %s for %s", path,
		    user);
		return res->o;
	}
	/* Without root the files would be ours, not the user's: root's
	 * next queue run delivers it. */
	if (geteuid() != 0 && geteuid() != j.uid) {
		result_set(res, OUT_TEMP, R_LOCAL, "uid %ld cannot deliver to the Maildir "
		    "of %s; a queue run as root will", (long)geteuid(), user);
		return res->o;
	}
	j.sender = sender;
	j.msgfd = msgfd;
	j.size = size;
	if (geteuid() != 0 && getegid() != getgid()) {
		/* The user's own Maildir, by the user's own run: the setgid
		 * group stays out of a path the user controls. */
		gid_t keep = getegid();
		enum outcome o;

		if (setegid(getgid()) < 0) {
			result_set(res, OUT_TEMP, R_LOCAL, "cannot drop the group: %s",
			    strerror(errno));
			return res->o;
		}
		o = as_user(&j, maildir_job, res);
		if (setegid(keep) < 0)
			logev("local", LOG_WARNING, "cannot take back group %ld: %s",
			    (long)keep, strerror(errno));
		return o;
	}
	return as_user(&j, maildir_job, res);
}
