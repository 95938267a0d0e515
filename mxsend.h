/*
 * mxsend.h - shared types and every cross-file prototype, grouped by file.
 *
 * mxsend is a sendmail replacement for machines that send mail but do not
 * receive it.  Data flows one way:
 *
 *   sendmail.c -> msg.c -> queue.c -> deliver.c -> dns.c -> smtp.c
 *
 * Modules return outcomes; only sendmail.c exits.
 */
#ifndef MXSEND_H
#define MXSEND_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <time.h>
#include <sys/types.h>
#include <sys/socket.h>

#define MXSEND_VERSION "0.2"

/*
 * Named limits on what users and the network control.
 */
/* RFC 5321 4.5.3.1.3: a path is at most 256 octets; we allow a little more
 * for quoted local parts and still keep every address one short line. */
#define ADDR_MAX 320
#define DOMAIN_MAX 253		/* RFC 1035 2.3.4, as A-labels, no final dot */
/* RFC 1035 2.3.4: 255 octets for a domain name. */
#define HOST_MAX 256
/* RFC 5322 2.1.1: a line is at most 998 octets plus CRLF. */
#define LINE_MAX_OCTETS 998
/* The whole header block of a submitted message.  Big enough for a To: with
 * thousands of recipients, small enough that a runaway producer is caught. */
#define HEADER_MAX (1024 * 1024)
/* Recipients of one message. */
#define RCPT_MAX 10000
/* One error text kept per recipient (server text made printable). */
#define ERRTEXT_MAX 400
/* The largest message the queue can describe: its envelope's size is
 * below 2^50 octets (1 PiB; queue.c's ENV_SIZE_MAX), so 8192 of them
 * still sum below 2^63.  A SIZE= announced at MAIL (RFC 1870) past it is
 * refused whatever max_message_size says. */
#define MESSAGE_SIZE_MAX (1LL << 50)

/*
 * One outcome type for everything that can fail in delivery.  Anything
 * unexpected is TEMP: a wrong TEMP delays mail, a wrong PERM loses it.
 */
enum outcome { OUT_OK = 0, OUT_TEMP = 1, OUT_PERM = 2 };

/*
 * Why a step did not succeed: a closed set.  The facts travel in struct
 * result from the place they are known to the bounce, the queue listing,
 * the log and --doctor; result.c is the one place that words them
 * (result_text) and maps them to RFC 3463 status codes (result_dsn).
 * Stored in envelopes by name (result.c's table): append, never renumber
 * a name.
 */
enum reason {
	R_NONE,			/* nothing went wrong */
	R_REPLY,		/* the server's reply: code, status, step, text */
	R_CONNECT,		/* connect(2) failed: err */
	R_TIMEOUT,		/* no progress in time: step, sending */
	R_CLOSED,		/* the server closed the connection: step */
	R_NETIO,		/* read or write failed: err, step */
	R_PROTOCOL,		/* the server's bytes are not SMTP: text */
	R_UNFINISHED,		/* the transaction was not completed */
	R_NOT_REUSABLE,		/* the connection cannot take another */
	R_TLS_NOT_OFFERED,	/* no STARTTLS, and the policy wants TLS */
	R_TLS_HANDSHAKE,	/* TLS failed: text says OpenSSL's reason */
	R_TLS_VERIFY,		/* the certificate failed verification: text
				 * says OpenSSL's reason */
	R_TLS_NOT_TLS,		/* the server answered TLS in plain text */
	R_TLS_SILENT,		/* no greeting on an implicit TLS port */
	R_TLS_SETUP,		/* our side could not set TLS up: text */
	R_AUTH_REFUSED,		/* the server refused AUTH: code, text */
	R_AUTH_UNVERIFIED,	/* no AUTH to a peer not verified: text says
				 * the tls policy */
	R_AUTH_PLAIN_UNVERIFIED,	/* no password in PLAIN or LOGIN over
				 * TLS not verified */
	R_AUTH_NOT_OFFERED,	/* credentials, but the server offers no AUTH */
	R_AUTH_NO_MECH,		/* no mechanism in common: text, the offer */
	R_AUTH_NO_TLS,		/* no credentials without TLS: text, policy */
	R_AUTH_SCRAM,		/* SCRAM failed: text */
	R_TOO_BIG,		/* over the server's SIZE: size, limit */
	R_8BIT,			/* no 8BITMIME and not convertible */
	R_DNS_NXDOMAIN,		/* the domain does not exist */
	R_DNS_NULL_MX,		/* RFC 7505: the domain takes no mail */
	R_DNS_NO_ADDRESS,	/* exchangers without addresses: text */
	R_DNS_TEMP,		/* DNS failed for now: text */
	R_DNS_BAD_NAME,		/* not a name that can be looked up: text */
	R_NO_ROUTE,		/* no address left to try */
	R_NO_USER,		/* no such local user */
	R_LOCAL_OFF,		/* local delivery is off (local_delivery none) */
	R_LOCAL,		/* a mailbox could not be written: text */
	R_ALIAS,		/* the aliases refused the recipient: text */
	R_EXPIRED,		/* queue lifetime over; the other fields are the
				 * last error (R_EXPIRED with why_last) */
	R_QUEUE,		/* the queue could not be read or written: text */
	R_CONFIG,		/* the configuration does not allow it: text */
	R_SYSTEM,		/* a system resource failed: text */
	R_NOMEM,		/* out of memory */
	R_LEGACY,		/* an older envelope's error: text only */
	R_NO_SMTPUTF8,		/* no SMTPUTF8, and the address (text) has a
				 * local part that is not ASCII */
	R_COUNT
};

/* The protocol step a reply or a failure belongs to. */
enum smtp_step {
	STEP_NONE, STEP_CONNECT, STEP_GREETING, STEP_EHLO, STEP_HELO,
	STEP_STARTTLS, STEP_TLS, STEP_AUTH, STEP_MAIL, STEP_RCPT, STEP_DATA,
	STEP_DOT, STEP_RSET, STEP_QUIT, STEP_BDAT, STEP_COUNT
};

/* Room for a peer "[IPv6 address]:port". */
#define PEER_MAX 64

struct result {
	enum outcome o;
	enum reason why;
	enum reason why_last;	/* R_EXPIRED: the last error's reason */
	enum smtp_step step;		/* where it happened, or STEP_NONE */
	int sending;		/* R_TIMEOUT/R_NETIO: while writing */
	int code;		/* SMTP reply code, or 0 */
	char status[16];	/* RFC 3463 status the reply gave, or "" */
	int err;		/* errno, or 0 */
	char host[HOST_MAX];	/* the remote host's name, or "" */
	char peer[PEER_MAX];	/* its address "[192.0.2.1]:25", or "" */
	long long size, limit;	/* R_TOO_BIG: message size, server limit */
	long lifetime;		/* R_EXPIRED: the queue lifetime */
	char text[ERRTEXT_MAX];	/* the detail, printable, one line: the
				 * reply's text, or a local reason worded
				 * where it is known (file names, errno) */
};

/* util.c */

/* A growable byte buffer with a cap; always NUL-terminated. */
struct buf {
	char *p;
	size_t len, cap, max;
};

struct strlist {
	char **v;
	size_t n, cap;
};

void buf_init(struct buf *, size_t max);
void buf_free(struct buf *);
void buf_wipe(struct buf *);
void buf_reset(struct buf *);
int buf_add(struct buf *, const void *, size_t);	/* 0 or -1 (cap/ENOMEM) */
int buf_adds(struct buf *, const char *);
int buf_addc(struct buf *, int);
int buf_printf(struct buf *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

void strlist_init(struct strlist *);
void strlist_free(struct strlist *);
int strlist_add(struct strlist *, const char *);	/* copies; 0 or -1 */
int strlist_addn(struct strlist *, const char *, size_t);
/* array_grow - p with room for element n, or NULL when out of memory */
void *array_grow(void *p, size_t n, size_t *cap, size_t sz, size_t first);

void printable(char *dst, size_t dstlen, const char *src, size_t srclen);

extern int verbose;		/* -v */
extern const char *progname;	/* for messages: "sendmail" */
void log_open(void);
void logmsg(int prio, const char *, ...) __attribute__((format(printf, 2, 3)));
/* logev - an event of the mail system's part name ("smtp", "local",
 * "pickup", "qmgr", "bounce"), logged as mxsend/name; logmsg is logev
 * as "sendmail" */
void logev(const char *name, int prio, const char *, ...)
    __attribute__((format(printf, 3, 4)));
void vlog(const char *, ...) __attribute__((format(printf, 1, 2)));
void warnx_(const char *, ...) __attribute__((format(printf, 1, 2)));

int parse_long(const char *, long min, long max, long *out);
/* parse_decimal - len digits (no sign, no blanks) as a number up to max;
 * 0, or -1 (not digits, empty, over max) */
int parse_decimal(const char *, size_t len, long long max, long long *out);
/* The longest duration a config may give (parse_duration). */
#define DURATION_MAX (100L * 366 * 86400)
int parse_duration(const char *, long *secs);
int read_all(int fd, struct buf *);
int write_all(int fd, const void *, size_t);
#define FNV1A_INIT 14695981039346656037ULL
unsigned long long fnv1a(unsigned long long h, const char *s);
long long now_ms(void);
long long deadline_in(long secs);
void deadline_cap(long long);
int wait_fd(int fd, short ev, long long deadline);
int fsync_dir(const char *path);
int rfc5322_date(time_t, char *, size_t);
void *xmalloc(size_t);
char *xstrdup(const char *);

/* result.c */

/* result_set - a result with no remote facts: outcome, reason, detail */
void result_set(struct result *, enum outcome, enum reason, const char *, ...)
    __attribute__((format(printf, 4, 5)));
/* result_oom - OUT_TEMP, out of memory */
void result_oom(struct result *);
/* result_at - a result about the remote host and peer (NULL: none) */
void result_at(struct result *, enum outcome, enum reason, const char *host,
    const char *peer, const char *, ...)
    __attribute__((format(printf, 6, 7)));
/* result_str - result_text without a recipient, into t */
struct rtext {
	char s[ERRTEXT_MAX];
};
const char *result_str(const struct result *, struct rtext *t);
/* result_dup - a copy on the heap */
struct result *result_dup(const struct result *);
/* result_text - the sentence for people: "mx[192.0.2.1]:25 said: 550
 * 5.1.1 unknown (in reply to RCPT TO:<a@b>)"; rcpt is the recipient the
 * result is about, or NULL.  Always NUL-terminated, at most outlen-1. */
void result_text(const struct result *, const char *rcpt, char *out,
    size_t outlen);
/* The RFC 3464 fields of a result. */
struct result_dsn {
	char status[16];		/* RFC 3463, "5.1.1" */
	char remote[HOST_MAX];		/* Remote-MTA, or "" */
	char diag[ERRTEXT_MAX + 32];	/* Diagnostic-Code value */
};
void result_dsn(const struct result *, const char *rcpt, struct result_dsn *);
/* result_dump / result_load - the envelope form of a result: one line of
 * "key=value" words, then the text; load is pure (fuzzed with env) */
int result_dump(const struct result *, struct buf *);
int result_load(struct result *, const char *words, const char *text);
const char *reason_name(enum reason);
const char *outcome_name(enum outcome);
const char *step_name(enum smtp_step);

/* conf.c */

enum tls_policy { TLS_NONE, TLS_OPPORTUNISTIC, TLS_REQUIRED, TLS_VERIFY };
/* local_delivery: where mail for a local user goes (local_path says) */
enum local_kind {
	LOCAL_NONE,		/* nowhere: it fails unless an alias sends it on */
	LOCAL_MBOX,		/* local_path/USER, mbox */
	LOCAL_MAILDIR		/* the Maildir local_path ("~/" the user's home) */
};

#define RETRY_MAX 32

struct conf {
	char hostname[HOST_MAX];
	char qualify_domain[HOST_MAX];
	struct strlist local_domains;
	char queue_dir[1024];
	char aliases[1024];
	enum local_kind local_kind;	/* local_delivery, parsed */
	char local_path[1024];		/* its DIR or PATH; "" for none */
	char smarthost[HOST_MAX];	/* empty: deliver to MX hosts */
	int smarthost_port;
	int smarthost_tls;		/* -1 by port, 0 STARTTLS, 1 implicit */
	int smtp_port;
	char dns_server[512];		/* empty: resolv.conf */
	enum tls_policy tls;
	int tls_set;			/* tls given in the file */
	char tls_ca_file[1024], tls_cert[1024], tls_key[1024];
	char auth_file[1024];
	int auth_unverified;		/* AUTH over TLS whose peer is not
					 * verified (SCRAM only) */
	long retry[RETRY_MAX];
	size_t nretry;
	long queue_lifetime, warn_after;
	long max_parallel;
	long queue_run_time;		/* budget of one delivery run */
	long connect_timeout, command_timeout, data_timeout;
	long long max_message_size;	/* 0: none */
	/* What users other than root may put into the queue (submit.c). */
	long user_queue_messages;	/* messages of one uid; 0: none */
	long long user_queue_size;	/* octets of one uid; 0: none */
	int user_queue_size_pct;	/* or this percent of the queue's file
					 * system (user_queue_size then 0) */
	long long queue_min_free;	/* octets kept free for root */
	char metrics_file[1024];	/* -q writes metrics here; "" none */
};

void conf_defaults(struct conf *);
/* conf_parse - parse config text; err gets "FILE:LINE: reason". */
int conf_parse(struct conf *, const char *text, size_t len, const char *fname,
    char *err, size_t errlen);
/* conf_load - defaults, then FILE if it exists (missing default file is ok). */
int conf_load(struct conf *, const char *path, int must_exist, char *err,
    size_t errlen);
void conf_free(struct conf *);
int conf_local(const struct conf *, const char *addr);

/* msg.c - RFC 5322 header block and addresses; pure functions. */

struct hfield {
	char *name;	/* field name as written, without the colon */
	char *body;	/* after the colon, as written; folded lines joined by
			 * "\n" (the line breaks of the input), no final newline */
};

struct header {
	struct hfield *f;
	size_t n, cap;
	size_t bytes;		/* total input octets, for HEADER_MAX */
};

void header_init(struct header *);
void header_free(struct header *);
/*
 * header_add_line - feed one line of the header block, without its line
 * ending.  Returns 0 when taken, 1 when the line is not part of a header
 * (an empty line, or the first line that is neither a field nor a
 * continuation: the body starts there), -1 on error with err set.
 */
int header_add_line(struct header *, const char *line, size_t len,
    char *err, size_t errlen);
struct hfield *header_get(const struct header *, const char *name);
size_t header_count(const struct header *, const char *name);
void header_remove(struct header *, const char *name);
int header_append(struct header *, const char *name, const char *body);
/* header_write - the fields as CRLF lines, folding kept. */
int header_write(const struct header *, struct buf *);

/*
 * addrlist_parse - append every addr-spec of an RFC 5322 address-list
 * (mailboxes, groups, display names, comments, quoted strings) to out,
 * without angle brackets.  Returns 0 or -1 with err set.
 */
int addrlist_parse(const char *text, struct strlist *out, char *err,
    size_t errlen);
/*
 * addrlist_qualify - copy an address-list to out, appending "@domain" to
 * every addr-spec without one; display names, comments, groups and
 * spacing are kept.  Returns 0, or -1 when the list does not parse (out
 * then holds the text unchanged).
 */
int addrlist_qualify(const char *text, const char *domain, struct buf *out);
/*
 * addr_check - an envelope address from the command line or SMTP: no
 * control characters, within ADDR_MAX, a local part and an optional
 * "@domain" of valid syntax.  "" is the null sender, allowed only when
 * null_ok.  Returns 0 or -1 with err set.
 */
int addr_check(const char *addr, int null_ok, char *err, size_t errlen);
/* addr_qualify - addr, or addr@domain when it has no '@'; -1 if too long */
int addr_qualify(const char *addr, const char *domain, char *out,
    size_t outlen);
/* addr_domain - the part after the last '@', or NULL */
const char *addr_domain(const char *addr);

struct fixup {
	const char *sender;	/* envelope sender, qualified ("" = null) */
	const char *fullname;	/* -F, may be NULL */
	const char *user;	/* login name for a generated From: */
	const char *qualify_domain;
	const char *hostname;	/* Message-ID domain */
	const char *msgid;	/* local part of a generated Message-ID */
	time_t now;
};
/*
 * msg_rcpts - -t: the addresses of To, Cc, Bcc, or of Resent-To,
 * Resent-Cc, Resent-Bcc when any Resent- field is present.
 */
int msg_rcpts(const struct header *, struct strlist *out, char *err,
    size_t errlen);
/*
 * msg_fixup - remove Bcc, Resent-Bcc, Return-Path; qualify addresses in
 * From, To, Cc, Reply-To, Sender and their Resent- forms; add Date,
 * Message-ID and From when missing.
 */
int msg_fixup(struct header *, const struct fixup *, char *err,
    size_t errlen);

/* queue.c */

/* failed: refused for good, the sender not told yet; bounced: failed
 * and the sender told (or nobody to tell: null sender, a report). */
enum rcpt_state { RCPT_PENDING, RCPT_DONE, RCPT_FAILED, RCPT_BOUNCED };

struct rcpt {
	char *addr;
	enum rcpt_state state;
	int tries;
	time_t next;		/* earliest next attempt */
	struct result *res;	/* the last attempt's facts, or NULL */
	int unexpanded;		/* local, aliases not expanded yet: the
				 * submitter could not read them (submit.c) */
};

/* What intake found in a message, for the conversions each server
 * needs (envelope "shape" words, in this order). */
enum {
	SHAPE_LONG = 1,		/* "long": a body line over 998 octets */
	SHAPE_EAI = 2,		/* "eai": a non-ASCII envelope address */
	SHAPE_H8 = 4,		/* "h8": 8-bit octets in the header */
	SHAPE_HBAD = 8,		/* "hbad": some of those are not UTF-8 */
	SHAPE_BUTF8 = 16	/* "butf8": 8-bit body octets, all UTF-8 */
};
#define SHAPE_WORDS { "long", "eai", "h8", "hbad", "butf8" }

struct envelope {
	char id[32];
	char *sender;		/* "" for the null sender */
	time_t arrival;
	off_t size;		/* octets of the message file */
	int body8;		/* 1: 8BITMIME, 0: 7BIT, -1: not said */
	unsigned shape;		/* SHAPE_* */
	int warned;		/* delay notice sent */
	int is_bounce;		/* generated by mxsend: never bounced */
	int has_env;		/* ID.env exists (not dumped) */
	int version;		/* of the envelope text loaded (not dumped) */
	char *dsn_notify, *dsn_ret, *dsn_envid;	/* or NULL */
	struct rcpt *r;
	size_t nr, capr;
};

void env_init(struct envelope *);
void env_free(struct envelope *);
int env_add_rcpt(struct envelope *, const char *addr);
/* env_dump / env_load - the versioned envelope text; load is pure. */
int env_dump(const struct envelope *, struct buf *);
int env_load(struct envelope *, const char *text, size_t len, char *err,
    size_t errlen);

/* A message being written into the queue. */
struct qfile {
	char id[32];
	int fd;			/* the message file, locked */
	char tmppath[1100];
	off_t size;
	struct buf wbuf;
};

int queue_open(const struct conf *, struct result *);
int queue_create(const struct conf *, struct qfile *, struct result *);
int queue_write(struct qfile *, const void *, size_t, struct result *);
/* queue_commit - fsync, write the envelope, rename both, fsync the dir. */
int queue_commit(const struct conf *, struct qfile *, struct envelope *,
    struct result *);
void queue_abort(struct qfile *);
/* What a queue operation found. */
enum qstatus {
	Q_OK,
	Q_BUSY,		/* another process holds the lock */
	Q_GONE,		/* no such message (delivered meanwhile) */
	Q_ERROR		/* it cannot be had; res says why where there is one */
};

/* queue_lock - lock message ID for delivery, never waiting; *fd gets its
 * message file, to keep open while delivering */
enum qstatus queue_lock(const struct conf *, const char *id, int *fd);
/* queue_dest_lock - a queue run's lock of destination dest into *fd;
 * Q_ERROR: it cannot be had (go on without) */
enum qstatus queue_dest_lock(const struct conf *, const char *dest, int *fd);
/* queue_give - the new message q counts as uid's (a report about uid's
 * message): its file's owner; root only */
int queue_give(struct qfile *, uid_t uid);
/* queue_owner - who submitted message ID (its file's owner), or -1 */
uid_t queue_owner(const struct conf *, const char *id);
/* queue_read_env - the current envelope; msgfd is the locked message
 * file when the caller holds it, else -1 */
enum qstatus queue_read_env(const struct conf *, const char *id, int msgfd,
    struct envelope *, struct result *);
int queue_write_env(const struct conf *, const struct envelope *,
    struct result *);
int queue_remove(const struct conf *, const struct envelope *);
/* queue_shared - queue_dir/NAME (lock, bounce-times), a regular file
 * opened O_RDWR, created with the queue's mode; never through a link. */
int queue_shared(const struct conf *, const char *name, struct result *);
/* queue_sweep - -q: remove what crashed processes left (tmp/ files
 * nobody holds, queue_stale debris) older than an hour */
void queue_sweep(const struct conf *, time_t now);
/* queue_report_seen - has a report with this key (the sender, the
 * recipients and their statuses) gone out within the hour?  On any
 * error: no.  queue_report_note - it went out now. (bounce-times) */
int queue_report_seen(const struct conf *, unsigned long long key, time_t now);
void queue_report_note(const struct conf *, unsigned long long key,
    time_t now);
/* report_times_scan - bounce-times text: the lines still within the hour
 * into keep; 1 when key is among them.  Pure (fuzzed). */
int report_times_scan(const char *text, size_t len, unsigned long long key,
    time_t now, struct buf *keep);
/* queue_list - the IDs of committed messages, oldest first. */
int queue_list(const struct conf *, struct strlist *, struct result *);
/* queue_usage - how many messages uid owns and their octets: committed,
 * held and being written in tmp/, but not the submission self (an ID or
 * NULL) */
int queue_usage(const struct conf *, uid_t uid, const char *self,
    long *count, long long *bytes, struct result *);
/* queue_space - the queue's file system: its size, and the octets a
 * process other than root may still fill (statvfs f_bavail) */
int queue_space(const struct conf *, long long *total, long long *avail,
    struct result *);
/* queue_hold - hold back message ID, locked by the caller, whose attempt
 * could not be recorded: it is not delivered until queue_release, at
 * the start of a -q run, can write its envelope (queue.c, ID.hold);
 * 0 or -errno.  queue_release returns how many stay held.
 * queue_list_held - the IDs of held messages, oldest first. */
int queue_hold(const struct conf *, const char *id);
int queue_release(const struct conf *);
int queue_list_held(const struct conf *, struct strlist *, struct result *);
/* queue_stale - is NAME of queue_dir (open as dfd) debris the sweep may
 * remove (an envelope without its message, a message file taken back at
 * submission)?  The caller checks its age and that nobody holds it
 * locked. */
int queue_stale(int dfd, const char *name);

/* submit.c - one message from an input stream into the queue */

/* The input is read in blocks this large. */
#define READ_BLOCK 65536

/* Buffered input from a file descriptor (stdin). */
struct reader {
	int fd;
	long timeout;			/* seconds a read may wait; 0: forever */
	void (*before_wait)(void *);	/* called before a read may block */
	void *arg;
	char buf[READ_BLOCK];
	size_t off, len;
	int eof;
	int crlf;			/* rd_line: the line ended in CRLF */
};

/* What a step of the reader got. */
enum rd_status {
	RD_OK,		/* more input (rd_fill), a line (rd_line), past one
			 * (rd_skip_line) */
	RD_EOF,		/* the end of input */
	RD_ERR,		/* a read error, errno set (ETIMEDOUT: no input came
			 * within the reader's timeout) */
	RD_TOOLONG	/* rd_line: the line is longer than asked */
};

void rd_init(struct reader *, int fd, long timeout);
enum rd_status rd_fill(struct reader *);
enum rd_status rd_line(struct reader *, struct buf *line, size_t max);
enum rd_status rd_skip_line(struct reader *);

struct subopts {
	const char *user;	/* login name, for a generated From: */
	const char *fullname;	/* -F or the GECOS name, or NULL */
	int tflag;		/* -t: recipients from the header too */
	int iflag;		/* -i: a "." line is data */
	int smtp;		/* SMTP DATA: "." ends, dots unstuffed */
};

enum submit_status {
	SUB_OK,
	SUB_DATA,	/* the message is refused (bad header, NUL, ...) */
	SUB_TOOBIG,	/* over max_message_size */
	SUB_QUEUE,	/* the queue failed; err is the errno */
	SUB_TEMP,	/* could not be queued now; try again later */
	SUB_IOERR,	/* reading the input failed */
	SUB_TIMEOUT,	/* no input within the reader's timeout */
	SUB_EOF,	/* SMTP: the input ended inside the data */
	SUB_QUOTA,	/* over user_queue_messages or user_queue_size */
	SUB_RESERVE	/* the queue's free space is down to queue_min_free */
};

struct subres {
	enum submit_status st;
	int err;
	char text[512];		/* one line */
};

int submit_sender(const struct conf *, const char *text, struct envelope *,
    char *err, size_t errlen);
/* What became of a recipient offered to an envelope. */
enum add_status {
	ADD_OK,		/* added, or there already */
	ADD_BAD,	/* a bad address: refused */
	ADD_FULL	/* the envelope holds RCPT_MAX recipients */
};

enum add_status submit_rcpt(const struct conf *, struct envelope *,
    const char *addr, const char *what, char *err, size_t errlen);
int submit_rcpt_list(const struct conf *, struct envelope *, const char *text,
    const char *what, char *err, size_t errlen);
enum submit_status submit_message(const struct conf *, struct reader *,
    struct envelope *, const struct subopts *, struct subres *);
/* submit_admit - may the submitter queue size more octets (0: not known
 * yet), self being its message in tmp/ (its ID, or NULL)?  SUB_OK always
 * for root; else SUB_QUOTA, SUB_RESERVE, SUB_TEMP with sr set */
enum submit_status submit_admit(const struct conf *, long long size,
    const char *self, struct subres *);
/* submit_expand_queued - deliver.c, before making jobs of e: recipients
 * whose aliases the submitter could not read are expanded by a run as
 * root (the envelope rewritten), or dropped from e for this run */
void submit_expand_queued(const struct conf *, struct envelope *e);

/* server.c - -bs */

/* smtp_server - one SMTP session on fds in and out; queued(ID, arg) is
 * called for each message queued; -1 when the client went away */
int smtp_server(const struct conf *, const struct subopts *, int in, int out,
    void (*queued)(const char *, void *), void *arg);

/* dns.c */

/* One address to try, in order. */
struct mxaddr {
	char host[HOST_MAX];	/* exchanger name */
	int pref;
	struct sockaddr_storage sa;
	socklen_t salen;
};

struct route {
	struct mxaddr *a;
	size_t n, cap;
};

struct dns;
/* dns_new - a resolver; server "" means the system's resolv.conf,
 * otherwise "ip[:port][,ip[:port]...]". */
struct dns *dns_new(const char *server, long timeout_secs, struct result *);
void dns_free(struct dns *);
/*
 * dns_route - addresses to try for mail to domain, MX preference order,
 * equal preferences shuffled, implicit MX when there is none.  port goes
 * into every address.  NXDOMAIN and null MX (RFC 7505) are OUT_PERM,
 * SERVFAIL and timeouts OUT_TEMP.
 */
enum outcome dns_route(struct dns *, const char *domain, int port,
    struct route *, struct result *);
/* dns_host - addresses of one host (a smarthost), as a route. */
enum outcome dns_host(struct dns *, const char *host, int port,
    struct route *, struct result *);
void route_free(struct route *);

/* tls.c */

/*
 * One TLS connection on a connected socket (struct smtp keeps one).
 * Its user reads these fields; everything else goes through the
 * functions below.
 */
struct tls {
	void *ssl;		/* SSL *; NULL while the connection is plain */
	int verified;		/* the peer's chain and name were checked */
	int want;		/* after EAGAIN, the poll event OpenSSL needs */
	char desc[128];		/* "TLSv1.3 TLS_AES_256_GCM_SHA384, peer ..." */
};

int tls_init(const struct conf *, struct result *);
/* tls_handshake - TLS on the connected socket fd into t; verify checks
 * the chain and name.  HS_OK, or res says why (about host and peer, the
 * server's name and address for people): HS_NOT_TLS when the server's
 * bytes are not TLS at all (a plain-text greeting), else HS_FAILED. */
enum handshake { HS_OK, HS_FAILED, HS_NOT_TLS };
enum handshake tls_handshake(struct tls *, int fd, const char *name,
    int verify, long timeout, const char *host, const char *peer,
    struct result *);
ssize_t tls_read(struct tls *, void *, size_t);
ssize_t tls_write(struct tls *, const void *, size_t);
int tls_pending(const struct tls *);
void tls_close(struct tls *);
int b64_encode(const void *, size_t, struct buf *);
int b64_decode(const char *, struct buf *);
/*
 * auth_parse - the credentials for host in the text of an auth_file:
 * lines "host user password" (host matched without regard to case; the
 * password is the rest of the line), '#' comments, blank lines.  Pure.
 * Returns 1 with user and pass set from the first line for host, 0 when
 * no line is for host, -1 with *lineno and *why set at the first
 * malformed line (fewer than three fields, a NUL byte) or when the user
 * or password of host's line does not fit ulen or plen.
 */
int auth_parse(const char *text, size_t len, const char *host, char *user,
    size_t ulen, char *pass, size_t plen, size_t *lineno, const char **why);
/* auth_lookup - auth_parse on the auth_file, opened not through a
 * symbolic link, with no permission for group or others, at most 64 KB;
 * -1 with res set when the file cannot be used or is malformed */
int auth_lookup(const char *file, const char *host, char *user, size_t ulen,
    char *pass, size_t plen, struct result *);

/* SCRAM-SHA-256 (RFC 7677) client state, between the three messages. */
struct scram {
	char cnonce[32];
	struct buf bare;		/* client-first-message-bare */
	unsigned char ssig[32];		/* the ServerSignature we expect */
};
/* scram_first - client-first-message into out */
int scram_first(struct scram *, const char *user, struct buf *out,
    struct result *);
/* scram_final - client-final-message for the server-first message */
int scram_final(struct scram *, const char *pass, const char *sfirst,
    struct buf *out, struct result *);
/* scram_verify - 0 when the server-final message proves the server */
int scram_verify(struct scram *, const char *sfinal);
void scram_free(struct scram *);

/* smtp.c */

#define REPLY_LINES_MAX 100	/* lines in one multi-line reply */
#define REPLY_TEXT_MAX 4096	/* octets of one reply, all lines */

struct reply {
	int code;		/* 200..599 */
	char text[REPLY_TEXT_MAX];	/* lines joined with "\n", no codes */
	size_t nlines;
};

/*
 * reply_parse - one complete reply at the start of buf.  Returns the
 * octets it took (> 0), 0 when more input is needed, -1 when the bytes
 * are not an SMTP reply (err set).
 */
ssize_t reply_parse(const char *buf, size_t len, struct reply *,
    char *err, size_t errlen);

/* Extensions a server offered in its EHLO reply. */
#define EXT_PIPELINING	0x01
#define EXT_SIZE	0x02
#define EXT_8BITMIME	0x04
#define EXT_STARTTLS	0x08
#define EXT_DSN		0x10
#define EXT_AUTH	0x20
#define EXT_SMTPUTF8	0x40
#define EXT_CHUNKING	0x80
#define EXT_BINARYMIME	0x100

#define SMTP_INBUF 16384	/* read buffer: several pipelined replies */

/* One client connection to one server address. */
struct smtp {
	int fd;
	char host[HOST_MAX];	/* exchanger name, for messages */
	char peer[80];		/* its address, "[1.2.3.4]:25" */
	char in[SMTP_INBUF];
	size_t inlen;
	struct buf out;
	unsigned ext;
	unsigned long long maxsize;	/* SIZE, 0 = none said */
	char auth_mechs[256];	/* the AUTH line's mechanisms */
	long cmd_timeout, data_timeout;
	int ntxn;		/* transactions on this connection */
	struct tls tls;		/* tls.ssl set once TLS is on */
	char tls_failed[ERRTEXT_MAX];	/* why this is a plain-text retry */
};

/* How to secure and authenticate one connection. */
struct tlsopts {
	enum tls_policy policy;
	int implicit;		/* TLS from the first octet (port 465) */
	const char *name;	/* SNI and the name to verify */
	const char *user, *pass;	/* AUTH, or NULL */
};

/* One transaction: a message to several recipients. */
struct txn {
	const char *sender;	/* "" = null sender */
	const char **rcpts;
	size_t n;
	struct result *rres;	/* out: one result per recipient */
	int msgfd;		/* the queue's message file */
	off_t size;
	int body8;
	unsigned shape;		/* SHAPE_* */
	const char *id;		/* queue ID, for the log */
	const char *notify, *ret, *envid;	/* DSN (RFC 3461), or NULL */
	int may_pend;		/* may leave the final reply pending */
	int pending;		/* out: end of data sent, reply not read */
	int *acc;		/* internal: recipients the server took */
};

/*
 * smtp_open - connect to a, read the greeting, EHLO (HELO fallback).
 * OUT_OK: ready for a transaction.  Otherwise the connection is closed
 * and res says why; the caller tries the next address.
 */
enum outcome smtp_open(struct smtp *, const struct mxaddr *a,
    const struct conf *, const struct tlsopts *, struct result *);
/*
 * smtp_send - one transaction; every t->rres[i] is set, except that with
 * t->may_pend and a PIPELINING server the end of data may be left in
 * the output with its reply unread (t->pending): pass t as prev to the
 * next smtp_send, whose commands then go out in the same write, or call
 * smtp_finish.  A pending prev is always completed.  Returns OUT_OK
 * while the connection can carry another transaction, OUT_TEMP when it
 * was lost or closed (res says why).
 */
enum outcome smtp_send(struct smtp *, struct txn *t, struct txn *prev,
    struct result *res);
/* smtp_finish - read a pending transaction's final reply */
enum outcome smtp_finish(struct smtp *, struct txn *t, struct result *res);
void smtp_close(struct smtp *, int quit);

/* report.c */

enum dsn_action { DSN_FAILED, DSN_DELAYED };

struct dsn_rcpt {
	const char *addr;
	const struct result *res;	/* its last attempt, or NULL */
};

/* One delivery status notification to compose. */
struct dsn {
	enum dsn_action action;
	const char *hostname;	/* Reporting-MTA, From: domain */
	const char *id;		/* queue ID of the original */
	const char *msgid;	/* local part of the report's Message-ID */
	const char *to;		/* the original's envelope sender */
	time_t arrival, now, retry_until;
	const struct dsn_rcpt *r;
	size_t n;
	const char *headers;	/* the original's header block, CRLF */
	size_t headers_len;
};

/* dsn_compose - the whole report message, CRLF lines, into b */
int dsn_compose(const struct dsn *, struct buf *b);

/* utf8.c - UTF-8 (RFC 3629), IDNA2008 (libidn2), SMTPUTF8 downgrades */

/* utf8_len - octets of the well-formed sequence at s, 0 if there is none */
size_t utf8_len(const unsigned char *s, size_t n);
int utf8_valid(const char *s, size_t n);	/* 1: well-formed (or ASCII) */
int has8(const char *s, size_t n);		/* 1: an octet above 0x7f */
/* idna_alabel - dom (ASCII or UTF-8) as lower-case A-labels (IDNA2008,
 * UTS #46 non-transitional): 0, or -1 with the reason in err */
int idna_alabel(const char *dom, char *out, size_t outlen, char *err,
    size_t errlen);
/* addr_alabel - addr with its domain as A-labels, for a server without
 * SMTPUTF8 (RFC 6531 3.7.4): AD_OK; AD_LOCAL8 when the local part is not
 * ASCII (no downgrade exists: 5.6.7); AD_BADDOMAIN when IDNA refuses */
enum addr_down { AD_OK, AD_LOCAL8, AD_BADDOMAIN };
enum addr_down addr_alabel(const char *addr, char *out, size_t outlen);
/*
 * hdr_downgrade - one header field, "Name: value" with its folds (CRLF
 * line ends, the last CRLF included), made 7-bit for a server without
 * SMTPUTF8 and appended to out (RFC 6857 3.1, RFC 2047): unstructured
 * fields, display names and comments as encoded words (charset utf-8,
 * or unknown-8bit for octets that are not UTF-8), domains in address
 * fields as A-labels, an address with a non-ASCII local part as an
 * encoded-word group with no members; the result folded in lines of at
 * most 78 octets where it can be.  With utf8_ok (an SMTPUTF8 session) a
 * field that is valid UTF-8 is appended unchanged and only one that is
 * not is encoded.  A field without 8-bit octets is appended unchanged.
 * 0, or -1 when out of memory.
 */
int hdr_downgrade(const char *field, size_t len, int utf8_ok, struct buf *out);
/* orcpt_param - " ORCPT=..." for RCPT (RFC 3461 4.2): rfc822;xtext for an
 * ASCII addr, utf-8;utf-8-addr-unitext (utf8 session) or
 * utf-8;utf-8-addr-xtext (RFC 6533 3) otherwise; "" when it does not fit */
void orcpt_param(char *out, size_t outlen, const char *addr, int utf8);
/* term_safe - src for a terminal: well-formed printable UTF-8 kept, C0
 * and C1 controls, DEL and octets that are not UTF-8 as \xHH */
void term_safe(char *dst, size_t dstlen, const char *src, size_t srclen);

/* mime.c */

/*
 * 8-bit to 7-bit MIME downgrade for a server without 8BITMIME (RFC 6152
 * 3): streaming, pure.  Feed the queued message a line at a time
 * (without its CRLF); the converted text (CRLF lines, not dot-stuffed)
 * is appended to out.  Both return 0, or -1 when out of memory or over
 * a limit (header block, boundary length, nesting): the message cannot
 * be sent 7-bit, and every later call fails too.
 */
struct mime8;
struct mime8 *mime8_new(void);		/* NULL when out of memory */
int mime8_line(struct mime8 *, const char *line, size_t len, struct buf *out);
/* mime8_end - end of the message: what is still held goes out */
int mime8_end(struct mime8 *, struct buf *out);
void mime8_free(struct mime8 *);

/*
 * The per-server converter: the queued message fed in pieces of any
 * size, converted for what the server takes (flags), appended to out.
 */
enum { MC_8BIT = 1,	/* 8BITMIME: 8-bit leaves may stay 8-bit */
	MC_LONG = 2,	/* BINARYMIME: lines over 998 octets may stay */
	MC_UTF8HDR = 4,	/* SMTPUTF8: header fields in UTF-8 may stay */
	MC_BUTF8 = 8	/* the body's 8-bit octets are UTF-8 (SHAPE_BUTF8) */
};
struct mimeconv;
struct mimeconv *mimeconv_new(unsigned flags);	/* NULL: out of memory */
int mimeconv_put(struct mimeconv *, const char *p, size_t n, struct buf *out);
int mimeconv_end(struct mimeconv *, struct buf *out);
/* mimeconv_signed - 1: a part inside a multipart/signed was re-encoded */
int mimeconv_signed(const struct mimeconv *);
void mimeconv_free(struct mimeconv *);

/* mailq.c */

/* mailq_print - -bp in the sendmail/Postfix layout */
int mailq_print(const struct conf *, FILE *, struct result *);
/* mailq_json - one JSON object per message and line */
int mailq_json(const struct conf *, FILE *, struct result *);
/* mailq_check - one status line (Nagios plugin form): CHECK_WARNING
 * or CHECK_CRITICAL when the oldest pending message is at least warn or
 * crit seconds old (or mail is held), CHECK_UNKNOWN when the queue cannot
 * be read; sendmail.c's exit table makes them 0 to 3 */
enum check { CHECK_OK, CHECK_WARNING, CHECK_CRITICAL, CHECK_UNKNOWN };
enum check mailq_check(const struct conf *, long warn, long crit, FILE *);

/* A message's or a recipient's state, as metrics count them: every
 * message and recipient not yet done with is in exactly one. */
enum qstate_kind {
	QS_PENDING,	/* a recipient still to be tried */
	QS_FAILED,	/* failed, its report not yet queued */
	QS_HELD,	/* in a held message (queue.c, ID.hold) */
	QS_COUNT
};

/* The queue in figures (mailq_state). */
struct qstate {
	size_t msgs[QS_COUNT];		/* a message is held, else pending
					 * with a pending recipient, else
					 * failed with a failed one */
	size_t rcpts[QS_COUNT];		/* recipients of those, by their own
					 * state (held: any of a held one) */
	size_t by_reason[R_COUNT];	/* pending recipients (held or not)
					 * by the reason of their last error */
	size_t unreadable;		/* envelopes that cannot be read */
	long long bytes;		/* sizes of the counted messages,
					 * saturating */
	long oldest;			/* age in seconds of the oldest
					 * counted message, 0 when none */
};
/* mailq_state - the queue's figures as of now; 0, or -1 with res set */
int mailq_state(const struct conf *, struct qstate *, struct result *);

/* doctor.c */

/* doctor - --doctor: one line per check; DOCTOR_FLOWS when mail can
 * flow (exit 0), else DOCTOR_STUCK (exit 1) */
enum doctor { DOCTOR_FLOWS, DOCTOR_STUCK };
enum doctor doctor(const struct conf *, const char *domain, FILE *);

/* deliver.c */

/* What one delivery pass did, recipient by recipient. */
struct dstats {
	int messages;		/* messages tried */
	int done, deferred, failed;
	int left;		/* jobs left for the next run: the budget
				 * was used up, or another process held them */
	int connections;	/* SMTP sessions opened */
};

/* Which messages -q takes: -qI, -qR, -qS select by substring and force. */
struct qfilter {
	char kind;		/* 0 (all due), 'I', 'R' or 'S' */
	const char *str;
};

/*
 * deliver_message - after a submission: a run restricted to message id,
 * every pending recipient tried now, and any report it makes delivered.
 */
int deliver_message(const struct conf *, const char *id, struct dstats *);
/* deliver_queue - -q: every due (or selected) message, within
 * queue_run_time; 0, or -1 with res set. */
int deliver_queue(const struct conf *, const struct qfilter *,
    struct dstats *, struct result *);
/* deliver_log_queued - "ID: from=<sender>, size=N, nrcpt=M (queue active)"
 * as mxsend/qmgr, once e is in the queue for good */
void deliver_log_queued(const struct envelope *);
/*
 * deliver_log_rcpt - the log line of one recipient's outcome, in Postfix's
 * shape: "ID: to=<rcpt>, relay=R, delay=S, dsn=X.Y.Z,
 * status=sent|deferred|bounced (words)", as mxsend/smtp, mxsend/local, or
 * mxsend/qmgr for an expiry; delay is counted from the arrival
 */
void deliver_log_rcpt(const struct conf *, const struct envelope *,
    const char *rcpt, const struct result *, time_t now);

/* metrics.c - the Prometheus text format (--metrics, metrics_file) */

/* metrics_print - --metrics: the queue's state; 0, or -1 with res set */
int metrics_print(const struct conf *, FILE *, struct result *);
/* metrics_run - after a -q run that took ms: the queue's state and the
 * run's figures into metrics_file, when set; a failure is logged and
 * changes nothing else */
void metrics_run(const struct conf *, const struct dstats *, long long ms);

/* aliases.c - the aliases file (aliases(5)) and recursive expansion. */

#define ALIAS_DEPTH_MAX 20	/* aliases within aliases, one expansion */

struct aliases;			/* the table; opaque */
/* aliases_new - an empty table, NULL when out of memory */
struct aliases *aliases_new(void);
/*
 * aliases_parse - add the entries of an aliases file's text (fname for
 * messages) to the table.  Pure.  Every error in the text appends one
 * "fname:line: reason" to errs and the rest is still parsed; a refused
 * target (pipe, file, bad syntax) is kept as a failure that
 * aliases_expand reports.  :include: targets stay unread (aliases_load
 * reads them).  Returns 0, or -1 when out of memory.
 */
int aliases_parse(struct aliases *, const char *text, size_t len,
    const char *fname, struct strlist *errs);
/*
 * aliases_load - read path (missing: an empty table, no error), parse it
 * and read its :include: files (absolute paths, nested at most 5 deep;
 * each file a regular file with one link, not opened through a symbolic
 * link; "/dev/null" an empty table); errors are appended to errs as in aliases_parse.  NULL when the file
 * exists but cannot be read, or out of memory (errs says which): the
 * caller must not deliver as if there were no aliases.
 */
struct aliases *aliases_load(const char *path, struct strlist *errs);
/*
 * aliases_load_denied - aliases_load, with *denied set when the file or
 * one of its :include: files exists but this process may not open it
 * (EACCES, EPERM): a process with more privilege may expand what this
 * one cannot (submit.c).  The file itself: NULL; an :include: file: a
 * table in which it is a failure, as aliases_load makes it.
 */
struct aliases *aliases_load_denied(const char *path, struct strlist *errs,
    int *denied);
void aliases_free(struct aliases *);
/*
 * aliases_expand - the final recipients of local part name (matched
 * case-insensitively), appended to out, each once (what out held before
 * is not looked at): remote addresses as written, local user names
 * (lower case, unqualified: the caller qualifies or delivers them).  A
 * name that is not an alias is itself the result; an alias that lists
 * itself ("root: root, a@b") keeps itself as the local user, as does
 * "\name".  Returns 0, or -1
 * with err set and nothing appended on a loop ("alias loop: a -> b ->
 * a"), nesting over ALIAS_DEPTH_MAX, a refused or unread target ("alias
 * root: pipe targets are not supported (/etc/aliases:3)"), more than
 * RCPT_MAX results, or out of memory.  ta may be NULL (no aliases).
 */
int aliases_expand(const struct aliases *, const char *name,
    struct strlist *out, char *err, size_t errlen);
/* aliases_dump - the table as text, one alias a line, for tests */
int aliases_dump(const struct aliases *, struct buf *);

/* local.c */

/*
 * local_mbox - append the message (msgfd, size octets from 0, CRLF
 * lines) to DIR/USER in mbox format: "From SENDER DATE" (asctime date of
 * arrival, "MAILER-DAEMON" for the null sender), Return-Path, LF lines,
 * mboxrd ">From " quoting, an empty line after; dotlock USER.lock and
 * fcntl locked, fsynced, truncated back to the old size on any error.
 * Unknown user: OUT_PERM "no such local user"; other failures OUT_TEMP.
 * As root the work runs in a child with the user's uid (see local.c).
 */
enum outcome local_mbox(const char *dir, const char *user, const char *sender,
    time_t arrival, int msgfd, off_t size, struct result *res);
/*
 * local_maildir - deliver to the Maildir PATH ("~/" is the user's home):
 * Return-Path, LF lines, tmp/NAME, fsync, link to new/NAME, fsync new/.
 */
enum outcome local_maildir(const char *path, const char *user,
    const char *sender, int msgfd, off_t size, struct result *res);
/* local_expand - "~/x" to HOME/x, an absolute path as is; 0, or -1 for a
 * relative path, "~user", or no room */
int local_expand(const char *path, const char *home, char *out,
    size_t outlen);

#endif
