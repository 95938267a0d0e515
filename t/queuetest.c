/*
 * queuetest.c - envelope load/dump round trip, bad envelopes, and the
 * commit/lock protocol of queue.c in a scratch directory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mxsend.h"
#include "t/tap.h"

/* The fields before the recipients, in both versions. */
#define SAMPLE_HEAD \
    "id 6930A1B2C3D4E1F2\n" \
    "sender alice@example.org\n" \
    "arrival 1764318162\n" \
    "size 4096\n" \
    "body 8bitmime\n" \
    "bounce 0\n" \
    "warned 1\n"

static const char sample[] =
    "version 2\n"
    SAMPLE_HEAD
    "notify SUCCESS,FAILURE\n"
    "ret HDRS\n"
    "envid abc123\n"
    "rcpt done 1 0 bob@example.net\n"
    "rcpt pending 2 1764321762 carol@example.net\n"
    "result o=temp why=reply step=rcpt code=450 status=4.2.0 "
    "host=mx.example.net peer=[192.0.2.1]:25\n"
    "detail 4.2.0 busy\n"
    "rcpt failed 1 0 \"dave smith\"@example.com\n"
    "result o=perm why=dns-nxdomain\n"
    "detail example.com\n";

/* The same recipients as an mxsend of envelope version 1 wrote them. */
static const char sample_v1[] =
    "version 1\n"
    SAMPLE_HEAD
    "rcpt pending 2 1764321762 carol@example.net\n"
    "error mx.example.net[192.0.2.1]:25 said: 450 4.2.0 busy (in reply to "
    "RCPT TO:<carol@example.net>)\n"
    "rcpt failed 1 0 \"dave smith\"@example.com\n"
    "error example.com: domain not found\n";

/* test_v1 - an envelope of version 1 loads; its errors are kept as they
 * were worded, and it is written again as version 2 */
static void
test_v1(void)
{
	struct envelope e;
	struct buf b;
	char err[200], t[ERRTEXT_MAX];

	env_init(&e);
	buf_init(&b, 0);
	is_int(env_load(&e, sample_v1, strlen(sample_v1), err, sizeof(err)), 0,
	    "v1: loads");
	ok(e.nr == 2 && e.r[0].res && e.r[1].res, "v1: two recipients with "
	    "their errors");
	result_text(e.r[0].res, e.r[0].addr, t, sizeof(t));
	is_str(t, "mx.example.net[192.0.2.1]:25 said: 450 4.2.0 busy (in reply "
	    "to RCPT TO:<carol@example.net>)", "v1: a deferral's words as "
	    "they were");
	ok(e.r[0].res->o == OUT_TEMP && e.r[1].res->o == OUT_PERM,
	    "v1: pending is temporary, failed permanent");
	is_int(env_dump(&e, &b), 0, "v1: dumps");
	ok(strncmp(b.p, "version 2\n", 10) == 0 && strstr(b.p, "\nresult "
	    "o=temp why=legacy\ndetail mx.example.net[192.0.2.1]:25 said: 450 "
	    "4.2.0 busy (in reply to RCPT TO:<carol@example.net>)\n"),
	    "v1: written again as version 2, the words kept");
	env_free(&e);
	env_init(&e);
	is_int(env_load(&e, b.p, b.len, err, sizeof(err)), 0, "v1: and that "
	    "loads");
	env_free(&e);
	buf_free(&b);
	env_init(&e);
	is_int(env_load(&e, "version 2\nid A\nrcpt pending 0 0 a@b\n"
	    "error x\n", 37, err, sizeof(err)), -1, "v2: the error key of v1 "
	    "is refused");
	env_free(&e);
}

/* load - e (initialised here) from the envelope text; env_load's result */
static int
load(struct envelope *e, const char *text)
{
	char err[200];

	env_init(e);
	return env_load(e, text, strlen(text), err, sizeof(err));
}

static void
test_roundtrip(void)
{
	struct envelope e;
	struct buf b;

	buf_init(&b, 0);
	is_int(load(&e, sample), 0, "sample envelope loads");
	is_str(e.id, "6930A1B2C3D4E1F2", "id");
	is_str(e.sender, "alice@example.org", "sender");
	is_int(e.arrival, 1764318162, "arrival");
	is_int(e.size, 4096, "size");
	is_int(e.body8, 1, "body");
	is_int(e.warned, 1, "warned");
	is_int(e.nr, 3, "three recipients");
	is_int(e.r[1].state, RCPT_PENDING, "second is pending");
	is_int(e.r[1].tries, 2, "second tried twice");
	is_int(e.r[1].next, 1764321762, "second's next attempt");
	ok(e.r[1].res && e.r[1].res->why == R_REPLY && e.r[1].res->code == 450 &&
	    e.r[1].res->step == STEP_RCPT && strcmp(e.r[1].res->status,
	    "4.2.0") == 0 && strcmp(e.r[1].res->host, "mx.example.net") == 0 &&
	    strcmp(e.r[1].res->peer, "[192.0.2.1]:25") == 0 &&
	    strcmp(e.r[1].res->text, "4.2.0 busy") == 0, "second's result: "
	    "the reply's facts");
	is_str(e.r[2].addr, "\"dave smith\"@example.com",
	    "quoted local part with a space survives");
	is_int(env_dump(&e, &b), 0, "dump");
	is_str(b.p, sample, "dump(load(x)) == x");
	env_free(&e);

	env_init(&e);
	e.sender = xstrdup("");
	snprintf(e.id, sizeof(e.id), "ABC");
	env_add_rcpt(&e, "x@y");
	buf_reset(&b);
	env_dump(&e, &b);
	is_str(b.p, "version 2\nid ABC\nsender <>\narrival 0\nsize 0\n"
	    "body none\nbounce 0\nwarned 0\nrcpt pending 0 0 x@y\n",
	    "null sender dumps as <>");
	env_free(&e);
	is_int(load(&e, b.p), 0, "and loads");
	is_str(e.sender, "", "  as the null sender");
	env_free(&e);

	/* A value with a newline could forge a line: refused. */
	env_init(&e);
	e.sender = xstrdup("a@b");
	env_add_rcpt(&e, "x@y\nrcpt pending 0 0 evil@z");
	buf_reset(&b);
	is_int(env_dump(&e, &b), -1, "newline in an address is not dumped");
	env_free(&e);
	buf_free(&b);
}

/* The mark of recipients whose aliases wait for root (submit.c):
 * dumped after its rcpt line, loaded back to the same recipient. */
static void
test_unexpanded(void)
{
	static const char text[] =
	    "version 2\nid AB\nsender a@b\narrival 0\nsize 0\nbody none\n"
	    "bounce 0\nwarned 0\n"
	    "rcpt pending 0 0 secret@host.example\nunexpanded 1\n"
	    "rcpt done 1 0 x@remote.example\n"
	    "rcpt pending 1 5 other@host.example\nunexpanded 1\n"
	    "result o=temp why=local\ndetail earlier\n";
	struct envelope e;
	struct buf b;

	buf_init(&b, 0);
	is_int(load(&e, text), 0,
	    "an envelope with unexpanded recipients loads");
	ok(e.nr == 3 && e.r[0].unexpanded == 1 && e.r[1].unexpanded == 0 &&
	    e.r[2].unexpanded == 1, "the mark goes with its recipient");
	is_int(env_dump(&e, &b), 0, "and dumps");
	is_str(b.p, text, "dump(load(x)) == x, the mark after its rcpt line");
	env_free(&e);
	buf_free(&b);
}

static void
bad(const char *text, const char *want, const char *name)
{
	struct envelope e;
	char err[200] = "";

	env_init(&e);
	ok(env_load(&e, text, strlen(text), err, sizeof(err)) < 0 &&
	    strcmp(err, want) == 0, "bad envelope: %s", name);
	if (strcmp(err, want) != 0)
		printf("#   got [%s]\n#   want [%s]\n", err, want);
	env_free(&e);
}

static void
test_bad(void)
{
	bad("", "line 1: incomplete envelope", "empty");
	bad("version 3\nid A\nsender <>\n", "line 1: unsupported envelope "
	    "version", "future version");
	bad("id A\n", "line 1: not an envelope", "no version line");
	bad("version 1\nid A\nsender <>\nrcpt pending 0 0 a@b",
	    "line 4: last line incomplete", "truncated last line");
	bad("version 1\nid A\nsender <>\nrcpt maybe 0 0 a@b\n",
	    "line 4: bad rcpt line", "unknown state");
	bad("version 1\nid A\nsender <>\nrcpt pending x 0 a@b\n",
	    "line 4: bad rcpt line", "tries not a number");
	bad("version 1\nid A\nsender <>\nrcpt pending 0 0\n",
	    "line 4: short rcpt line", "no address");
	bad("version 1\nid A\nsender <>\nerror x\n",
	    "line 4: error without rcpt", "error before any rcpt");
	bad("version 2\nid A\nsender <>\nresult o=temp why=reply\n",
	    "line 4: result without rcpt", "result before any rcpt");
	bad("version 2\nid A\nrcpt pending 0 0 a@b\nresult o=temp why=reply\n"
	    "result o=temp why=reply\n", "line 5: result without rcpt",
	    "two results for one rcpt");
	bad("version 2\nid A\nrcpt pending 0 0 a@b\ndetail x\n",
	    "line 4: detail without result", "detail without result");
	bad("version 2\nid A\nrcpt pending 0 0 a@b\nresult o=temp why=reply\n"
	    "detail x\ndetail y\n", "line 6: detail without result",
	    "two details");
	bad("version 2\nid A\nrcpt pending 0 0 a@b\nresult o=temp why=guess\n",
	    "line 4: bad result", "unknown reason");
	bad("version 2\nid A\nrcpt pending 0 0 a@b\nresult o=temp why=reply "
	    "colour=blue\n", "line 4: bad result", "unknown result key");
	bad("version 2\nid A\nrcpt pending 0 0 a@b\nresult o=temp why=reply "
	    "code=1000\n", "line 4: bad result", "reply code over 999");
	bad("version 2\nid A\nrcpt pending 0 0 a@b\nresult o=temp why=reply "
	    "step=rcpt code\n", "line 4: bad result", "a word without a value");
	bad("version 2\nid A\nrcpt pending 0 0 a@b\nresult o=maybe why=reply\n",
	    "line 4: bad result", "unknown outcome");
	bad("version 1\nid A\nsender <>\ncolour blue\n",
	    "line 4: unknown key", "unknown key");
	bad("version 1\nid a/../b\nsender <>\n", "line 2: bad id",
	    "id with a path in it");
	bad("version 1\nid A\nsender a\tb\n", "line 3: control character",
	    "control character");
	bad("version 1\nid A\nsender <>\nsize 99999999999999999999999\n",
	    "line 4: bad size", "size overflow");
	bad("version 1\nid A\n", "line 3: incomplete envelope", "no sender");
	bad("version 1\nid A\nsender <>\nunexpanded 1\n",
	    "line 4: unexpanded without rcpt", "unexpanded before any rcpt");
	bad("version 1\nid A\nsender <>\nrcpt pending 0 0 a@b\nunexpanded yes\n",
	    "line 5: bad flag", "unexpanded not 1");
	bad("version 1\nid A\nsender <>\nrcpt pending 0 0 a@b\nunexpanded 1\n"
	    "unexpanded 1\n", "line 6: unexpanded twice", "unexpanded twice");
	/* Numbers past the bounds of queue.c are a corrupt envelope, so no
	 * later sum (arrival + queue_lifetime, a listing's total) overflows. */
	bad("version 1\nid A\nsender <>\narrival 9223372036854775807\n",
	    "line 4: bad arrival", "arrival at LLONG_MAX");
	bad("version 1\nid A\nsender <>\narrival 1099511627776\n",
	    "line 4: bad arrival", "arrival at 2^40");
	bad("version 1\nid A\nsender <>\nsize 1125899906842624\n",
	    "line 4: bad size", "size at 2^50");
	bad("version 1\nid A\nsender <>\nrcpt pending 0 1099511627776 a@b\n",
	    "line 4: bad rcpt line", "next attempt at 2^40");
	bad("version 1\nid A\nsender <>\nrcpt pending 1000001 0 a@b\n",
	    "line 4: bad rcpt line", "tries over 1000000");
}

/* test_bounds - the largest numbers in bounds load and dump unchanged */
static void
test_bounds(void)
{
	static const char text[] = "version 2\nid A\nsender <>\n"
	    "arrival 1099511627775\nsize 1125899906842623\nbody none\n"
	    "bounce 0\nwarned 0\nrcpt pending 1000000 1099511627775 a@b\n";
	struct envelope e;
	struct buf b;
	char err[200] = "";

	env_init(&e);
	buf_init(&b, 0);
	is_int(env_load(&e, text, strlen(text), err, sizeof(err)), 0,
	    "the largest arrival, size, tries and next attempt load");
	ok(env_dump(&e, &b) == 0 && strcmp(b.p, text) == 0,
	    "and dump unchanged");
	env_free(&e);
	buf_free(&b);
}

static int
count_files(const char *dir)
{
	struct dirent *d;
	DIR *dp = opendir(dir);
	int n = 0;

	if (dp == NULL)
		return -1;
	while ((d = readdir(dp)) != NULL)
		if (d->d_name[0] != '.')
			n++;
	closedir(dp);
	return n;
}

/* scratch_init - c's defaults, its queue_dir DIR/q for a fresh DIR made
 * from the mkdtemp template dir */
static void
scratch_init(struct conf *c, char *dir)
{
	conf_defaults(c);
	if (mkdtemp(dir) == NULL)
		printf("# mkdtemp failed\n");
	snprintf(c->queue_dir, sizeof(c->queue_dir), "%s/q", dir);
}

/* scratch_free - dir and all in it removed, c freed */
static void
scratch_free(struct conf *c, const char *dir)
{
	char cmd[2048];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		printf("# cleanup failed\n");
	conf_free(c);
}

/* commit - the message text from a@b.test to c@d.test (and to rcpt2
 * unless NULL) into c's queue, its envelope in e; queue_commit's result
 * (q stays open: the lock is the submitter's until q.fd is closed) */
static int
commit(const struct conf *c, struct qfile *q, struct envelope *e,
    const char *text, const char *rcpt2)
{
	struct result res;

	queue_create(c, q, &res);
	queue_write(q, text, strlen(text), &res);
	env_init(e);
	e->sender = xstrdup("a@b.test");
	env_add_rcpt(e, "c@d.test");
	if (rcpt2 != NULL)
		env_add_rcpt(e, rcpt2);
	return queue_commit(c, q, e, &res);
}

/* spool_msg_file - the file at path holds a committed message: the
 * message, the submission envelope of id, and the footer */
static void
spool_msg_file(const char *path, const char *id)
{
	char want[512], got[512];
	int n, mfd = open(path, O_RDONLY);

	n = snprintf(want, sizeof(want), "Subject: t\r\n\r\nhi\r\n"
	    "version 2\nid %s\nsender a@b.test\narrival 0\nsize 18\n"
	    "body none\nbounce 0\nwarned 0\nrcpt pending 0 0 c@d.test\n"
	    "mxsend-env 00000000000000000018\n", id);
	memset(got, 0, sizeof(got));
	ok(read(mfd, got, sizeof(got) - 1) == n && strcmp(got, want) == 0,
	    "ID.msg: message, submission envelope, footer");
	if (strcmp(got, want) != 0)
		printf("# got [%s]\n", got);
	close(mfd);
}

/* spool_commit - a message committed into a fresh queue: tmp/ and ID.msg
 * with their modes, and no ID.env yet; its envelope in e, q still open */
static void
spool_commit(const struct conf *c, struct qfile *q, struct envelope *e)
{
	char path[2048];
	struct envelope e2;
	struct result res;
	struct stat st;

	is_int(queue_open(c, &res), 0, "queue_open creates the queue");
	snprintf(path, sizeof(path), "%s/tmp", c->queue_dir);
	ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0700,
	    "tmp/ exists, mode 0700");
	is_int(queue_create(c, q, &res), 0, "queue_create");
	is_int(count_files(c->queue_dir), 1, "only tmp/ before commit");
	queue_write(q, "Subject: t\r\n\r\nhi\r\n", 18, &res);
	env_init(e);
	e->sender = xstrdup("a@b.test");
	env_add_rcpt(e, "c@d.test");
	is_int(queue_commit(c, q, e, &res), 0, "queue_commit");
	is_int(count_files(path), 0, "tmp/ empty after commit");
	snprintf(path, sizeof(path), "%s/%s.msg", c->queue_dir, e->id);
	ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600,
	    "ID.msg in place, mode 0600");
	spool_msg_file(path, e->id);
	snprintf(path, sizeof(path), "%s/%s.env", c->queue_dir, e->id);
	ok(access(path, F_OK) < 0, "no ID.env before the first attempt");
	is_int(queue_read_env(c, e->id, -1, &e2, &res), 0,
	    "the submission envelope reads back");
	ok(e2.size == 18 && e2.nr == 1 && strcmp(e2.r[0].addr, "c@d.test") == 0,
	    "  with its size and recipient");
	env_free(&e2);
}

/* spool_lock - e's message (committed through q, still open) is locked
 * by its submitter until q closes, then by one deliverer; its envelope
 * is updated in ID.env and read back; then it is removed */
static void
spool_lock(const struct conf *c, struct qfile *q, struct envelope *e)
{
	char path[2048];
	struct envelope e2;
	struct result res;
	struct strlist ids;
	int fd, fd2;

	/* The committing process still holds the lock. */
	is_int(queue_lock(c, e->id, &fd), Q_BUSY, "locked while the submitter "
	    "holds it");
	close(q->fd);
	ok(queue_lock(c, e->id, &fd) == Q_OK && fd >= 0, "lockable once the "
	    "submitter is done");
	is_int(queue_lock(c, e->id, &fd2), Q_BUSY, "a second lock fails");
	strlist_init(&ids);
	queue_list(c, &ids, &res);
	ok(ids.n == 1 && strcmp(ids.v[0], e->id) == 0, "queue_list finds it");
	strlist_free(&ids);
	e->r[0].state = RCPT_FAILED;
	e->r[0].res = xmalloc(sizeof(*e->r[0].res));
	result_set(e->r[0].res, OUT_PERM, R_NO_USER, "%s", "no");
	is_int(queue_write_env(c, e, &res), 0, "queue_write_env");
	is_int(queue_read_env(c, e->id, -1, &e2, &res), 0, "queue_read_env");
	ok(e2.nr == 1 && e2.r[0].state == RCPT_FAILED &&
	    e2.r[0].res && e2.r[0].res->why == R_NO_USER &&
	    strcmp(e2.r[0].res->text, "no") == 0, "the update is read back");
	env_free(&e2);
	snprintf(path, sizeof(path), "%s/%s.env", c->queue_dir, e->id);
	ok(access(path, F_OK) == 0, "ID.env after an update");
	e->has_env = 1;
	is_int(queue_remove(c, e), 0, "queue_remove");
	is_int(count_files(c->queue_dir), 1, "only tmp/ left");
	close(fd);
}

/* spool_damaged - a message file whose footer is damaged is not read as
 * a message */
static void
spool_damaged(const struct conf *c)
{
	char path[2048];
	struct qfile q;
	struct envelope e, e2;
	struct result res;

	commit(c, &q, &e, "x\r\n", NULL);
	close(q.fd);
	snprintf(path, sizeof(path), "%s/%s.msg", c->queue_dir, e.id);
	if (truncate(path, 40) == 0)
		ok(queue_read_env(c, e.id, -1, &e2, &res) == Q_ERROR &&
		    res.why == R_QUEUE && res.o == OUT_TEMP,
		    "damaged footer: refused, a queue failure");
	queue_remove(c, &e);
	env_free(&e);
}

/* spool_abort - an aborted message leaves nothing */
static void
spool_abort(const struct conf *c)
{
	char path[2048];
	struct qfile q;
	struct result res;

	queue_create(c, &q, &res);
	queue_write(&q, "x", 1, &res);
	queue_abort(&q);
	snprintf(path, sizeof(path), "%s/tmp", c->queue_dir);
	is_int(count_files(path), 0, "queue_abort leaves nothing");
}

/* test_spool - the life of a message file in a scratch queue, then a
 * queue whose parent directory is missing */
static void
test_spool(void)
{
	char dir[] = "/tmp/queuetest.XXXXXX";
	struct conf c;
	struct qfile q;
	struct envelope e;
	struct result res;

	scratch_init(&c, dir);
	spool_commit(&c, &q, &e);
	spool_lock(&c, &q, &e);
	env_free(&e);
	spool_damaged(&c);
	spool_abort(&c);
	snprintf(c.queue_dir, sizeof(c.queue_dir), "%s/no/such/dir", dir);
	ok(queue_open(&c, &res) < 0 && strstr(res.text, "No such file"),
	    "missing parent: clear error (%s)", res.text);
	scratch_free(&c, dir);
}

/* exists - queue_dir/ID.SUFFIX is there */
static int
exists(const struct conf *c, const char *id, const char *suffix)
{
	char path[2048];

	snprintf(path, sizeof(path), "%s/%s%s", c->queue_dir, id, suffix);
	return access(path, F_OK) == 0;
}

/* hold_locked - e's message (committed, its q closed) held while a
 * deliverer has it locked: out of the queue listing, in the held one,
 * not released while that lock stands */
static void
hold_locked(const struct conf *c, const struct envelope *e)
{
	struct envelope e2;
	struct result res;
	struct strlist ids;
	int fd, fd2;

	ok(queue_lock(c, e->id, &fd) == Q_OK,
	    "hold: the message is locked for delivery");
	is_int(queue_hold(c, e->id), 0, "queue_hold");
	ok(!exists(c, e->id, ".msg") && exists(c, e->id, ".hold"),
	    "ID.msg is now ID.hold");
	strlist_init(&ids);
	queue_list(c, &ids, &res);
	is_int(ids.n, 0, "queue_list leaves a held message out");
	strlist_free(&ids);
	strlist_init(&ids);
	queue_list_held(c, &ids, &res);
	ok(ids.n == 1 && strcmp(ids.v[0], e->id) == 0,
	    "queue_list_held lists it");
	strlist_free(&ids);
	ok(queue_read_env(c, e->id, -1, &e2, &res) == 0 && e2.nr == 2,
	    "a held message's envelope reads (for mailq)");
	env_free(&e2);
	is_int(queue_lock(c, e->id, &fd2), Q_GONE, "a held message cannot be "
	    "locked for delivery");
	is_int(queue_hold(c, e->id), -ENOENT, "holding it again: it is gone");
	is_int(queue_release(c), 1, "not released while its holder has it");
	ok(exists(c, e->id, ".hold"), "  still held");
	close(fd);
}

/* hold_unwritable - the envelope of e's held message cannot be written
 * (tmp/ unusable, as on a full disk): it stays held */
static void
hold_unwritable(const struct conf *c, const struct envelope *e)
{
	char path[2048], away[2048];
	int fd;

	snprintf(path, sizeof(path), "%s/tmp", c->queue_dir);
	snprintf(away, sizeof(away), "%s/tmp.away", c->queue_dir);
	rename(path, away);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	close(fd);
	is_int(queue_release(c), 1, "not released while its envelope cannot be "
	    "written");
	ok(exists(c, e->id, ".hold") && !exists(c, e->id, ".msg") &&
	    !exists(c, e->id, ".env"), "  still held, no ID.env");
	unlink(path);
	rename(away, path);
}

/* hold_release - e's held message, its first recipient done in ID.env:
 * the stale-file sweep keeps that envelope, and the message is released
 * with it once it can be written */
static void
hold_release(const struct conf *c, struct envelope *e, int qfd,
    const char *env)
{
	struct envelope e2;
	struct result res;
	struct strlist ids;

	e->r[0].state = RCPT_DONE;
	queue_write_env(c, e, &res);
	is_int(queue_stale(qfd, env), 0, "a held message's ID.env is no debris");

	is_int(queue_release(c), 0, "released once its envelope can be written");
	ok(exists(c, e->id, ".msg") && !exists(c, e->id, ".hold") &&
	    exists(c, e->id, ".env"), "  ID.msg again, with ID.env");
	ok(queue_read_env(c, e->id, -1, &e2, &res) == 0 && e2.nr == 2 &&
	    e2.r[0].state == RCPT_DONE && e2.r[1].state == RCPT_PENDING &&
	    e2.has_env, "  its envelope as it was");
	env_free(&e2);
	strlist_init(&ids);
	queue_list(c, &ids, &res);
	is_int(ids.n, 1, "  and queue_list has it");
	strlist_free(&ids);
}

/* hold_debris - what the stale-file sweep takes for debris in the queue
 * open as qfd: ID.env (named env) only without e's message file */
static void
hold_debris(const struct conf *c, struct envelope *e, int qfd,
    const char *env)
{
	char path[2048];

	is_int(queue_stale(qfd, env), 0, "ID.env of a message is no debris");
	e->has_env = 1;
	snprintf(path, sizeof(path), "%s/%s.msg", c->queue_dir, e->id);
	unlink(path);
	is_int(queue_stale(qfd, env), 1, "ID.env without its message is debris");
	is_int(queue_stale(qfd, "tmp"), 0, "tmp/ is no debris");
	is_int(queue_stale(qfd, "lock"), 0, "lock is no debris");
}

/* A message whose attempt could not be recorded is held back until its
 * envelope can be written again (queue.c, ID.hold). */
static void
test_hold(void)
{
	char dir[] = "/tmp/queuetest.XXXXXX", env[64];
	struct conf c;
	struct qfile q;
	struct envelope e;
	struct result res;
	int qfd;

	scratch_init(&c, dir);
	queue_open(&c, &res);
	commit(&c, &q, &e, "Subject: t\r\n\r\nhi\r\n", "e@f.test");
	close(q.fd);
	hold_locked(&c, &e);
	hold_unwritable(&c, &e);
	qfd = open(c.queue_dir, O_RDONLY | O_DIRECTORY);
	snprintf(env, sizeof(env), "%s.env", e.id);
	hold_release(&c, &e, qfd, env);
	hold_debris(&c, &e, qfd, env);
	queue_remove(&c, &e);
	close(qfd);
	env_free(&e);
	scratch_free(&c, dir);
}

/* A message file emptied by a submission that took it back (its
 * directory fsync failed) is no message. */
static void
test_taken_back(void)
{
	char dir[] = "/tmp/queuetest.XXXXXX", name[64];
	struct conf c;
	struct qfile q;
	struct envelope e, e2;
	struct result res;
	struct buf out;
	FILE *f;
	int qfd;

	scratch_init(&c, dir);
	queue_open(&c, &res);
	commit(&c, &q, &e, "x\r\n", NULL);
	if (ftruncate(q.fd, 0) < 0)
		printf("# ftruncate failed\n");
	ok(queue_read_env(&c, e.id, -1, &e2, &res) == Q_GONE,
	    "an empty ID.msg: no envelope, and no error to report");
	qfd = open(c.queue_dir, O_RDONLY | O_DIRECTORY);
	snprintf(name, sizeof(name), "%s.msg", e.id);
	is_int(queue_stale(qfd, name), 1, "an empty ID.msg is debris");
	f = tmpfile();
	mailq_print(&c, f, &res);
	buf_init(&out, 0);
	rewind(f);
	read_all(fileno(f), &out);
	fclose(f);
	is_str(out.p ? out.p : "", "Mail queue is empty\n",
	    "mailq does not list it");
	buf_free(&out);
	close(q.fd);
	queue_remove(&c, &e);
	/* A real message file is no debris. */
	queue_create(&c, &q, &res);
	queue_write(&q, "x\r\n", 3, &res);
	queue_commit(&c, &q, &e, &res);
	close(q.fd);
	snprintf(name, sizeof(name), "%s.msg", e.id);
	is_int(queue_stale(qfd, name), 0, "a committed ID.msg is no debris");
	close(qfd);
	env_free(&e);
	scratch_free(&c, dir);
}

int
main(void)
{
	test_roundtrip();
	test_v1();
	test_unexpanded();
	test_bad();
	test_bounds();
	test_spool();
	test_hold();
	test_taken_back();
	return tap_done();
}
