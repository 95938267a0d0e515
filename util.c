/*
 * util.c - growable buffers, string lists, logging and small helpers.
 *
 * struct buf is the one string discipline of mxsend: every append checks
 * for overflow and for the buffer's cap, and the contents stay
 * NUL-terminated.  Logging goes to stderr (under -v, or for errors) and to
 * syslog (LOG_MAIL).
 *
 * Syslog program names are "mxsend/NAME", Postfix's "postfix/NAME" shape,
 * so that log analysers (pflogsumm --syslog-name=mxsend) read our lines as
 * they read Postfix's: logmsg logs as mxsend/sendmail, logev as the part of
 * the mail system the event belongs to (sendmail.8, LOGGING, lists them
 * with the lines each logs).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "mxsend.h"

int verbose;
const char *progname = "sendmail";
static int log_opened;
/* The ident openlog holds on to: "mxsend/NAME" of the last line logged. */
static char log_ident[32];

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL) {
		fprintf(stderr, "%s: out of memory\n", progname);
		abort();
	}
	return p;
}

char *
xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = xmalloc(n);

	memcpy(p, s, n);
	return p;
}

void
buf_init(struct buf *b, size_t max)
{
	b->p = NULL;
	b->len = b->cap = 0;
	b->max = max ? max : SIZE_MAX / 2;
}

void
buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* buf_wipe - zero (it held a secret), then free */
void
buf_wipe(struct buf *b)
{
	if (b->p)
		explicit_bzero(b->p, b->cap);
	buf_free(b);
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->p)
		b->p[0] = '\0';
}

/* buf_grow - room for n more octets and the NUL */
static int
buf_grow(struct buf *b, size_t n)
{
	size_t need, ncap;
	char *np;

	if (n > b->max || b->len > b->max - n)
		return -1;
	need = b->len + n + 1;
	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 256;
	while (ncap < need)
		ncap *= 2;
	np = realloc(b->p, ncap);
	if (np == NULL)
		return -1;
	b->p = np;
	b->cap = ncap;
	return 0;
}

int
buf_add(struct buf *b, const void *p, size_t n)
{
	if (buf_grow(b, n) < 0)
		return -1;
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

int
buf_adds(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

int
buf_addc(struct buf *b, int c)
{
	char ch = (char)c;

	return buf_add(b, &ch, 1);
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || buf_grow(b, (size_t)n) < 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void
strlist_init(struct strlist *l)
{
	l->v = NULL;
	l->n = l->cap = 0;
}

void
strlist_free(struct strlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	strlist_init(l);
}

int
strlist_addn(struct strlist *l, const char *s, size_t n)
{
	char *p;

	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 8;
		char **nv = realloc(l->v, ncap * sizeof(*nv));

		if (nv == NULL)
			return -1;
		l->v = nv;
		l->cap = ncap;
	}
	p = malloc(n + 1);
	if (p == NULL)
		return -1;
	memcpy(p, s, n);
	p[n] = '\0';
	l->v[l->n++] = p;
	return 0;
}

int
strlist_add(struct strlist *l, const char *s)
{
	return strlist_addn(l, s, strlen(s));
}

/*
 * array_grow - room for one more element in the array p of n elements of
 * size sz, *cap allocated: p itself while there is room, else p
 * reallocated to twice its room (first elements the first time) and *cap
 * updated.  NULL when out of memory, and p is still the caller's.
 */
void *
array_grow(void *p, size_t n, size_t *cap, size_t sz, size_t first)
{
	size_t ncap;
	void *np;

	if (n < *cap)
		return p;
	ncap = *cap ? *cap * 2 : first;
	if (ncap < *cap || ncap > SIZE_MAX / sz)
		return NULL;
	np = realloc(p, ncap * sz);
	if (np != NULL)
		*cap = ncap;
	return np;
}

/* printable - copy src to dst with anything outside printable ASCII as '?' */
void
printable(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	size_t i, o = 0;

	if (dstlen == 0)
		return;
	for (i = 0; i < srclen && o + 1 < dstlen; i++) {
		unsigned char c = (unsigned char)src[i];

		if (c == '\n' || c == '\t')
			c = ' ';
		dst[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	dst[o] = '\0';
}

/* log_as - syslog's program name mxsend/name from now on (openlog keeps
 * the pointer, not a copy: log_ident stays put) */
static void
log_as(const char *name)
{
	char want[sizeof(log_ident)];
	int n = snprintf(want, sizeof(want), "mxsend/%s", name);

	if (n < 0 || (size_t)n >= sizeof(want) || strcmp(want, log_ident) == 0)
		return;
	memcpy(log_ident, want, (size_t)n + 1);
	openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

/* log_open - syslog, when there is a syslog daemon to take it (without
 * /dev/log every syslog() call would try to connect again) */
void
log_open(void)
{
	if (!log_opened && access(_PATH_LOG, W_OK) == 0) {
		log_as("sendmail");
		log_opened = 1;
	}
}

/* vlogev - one line to syslog as mxsend/name, and to stderr under -v */
static void
vlogev(const char *name, int prio, const char *fmt, va_list ap)
{
	char tmp[1024];

	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	if (log_opened) {
		log_as(name);
		syslog(prio, "%s", tmp);
	}
	if (verbose)
		fprintf(stderr, "%s: %s\n", progname, tmp);
}

/* logmsg - syslog as mxsend/sendmail, and stderr under -v */
void
logmsg(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlogev("sendmail", prio, fmt, ap);
	va_end(ap);
}

void
logev(const char *name, int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlogev(name, prio, fmt, ap);
	va_end(ap);
}

/* vlog - stderr under -v only */
void
vlog(const char *fmt, ...)
{
	va_list ap;

	if (!verbose)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* warnx_ - a one-line message on stderr, prefixed with the program name */
void
warnx_(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (*s == '\0')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* Longest duration taken: a century.  Longer is surely a typo, and the
 * bound keeps every time mxsend computes (arrival + queue_lifetime,
 * now + a retry interval) far inside the queue's bounded times. */

int
parse_decimal(const char *s, size_t len, long long max, long long *out)
{
	long long v = 0;
	size_t i;

	if (len == 0)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9' || v > (max - (s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* parse_duration - "90", "90s", "15m", "2h", "5d" to seconds, at most
 * DURATION_MAX */
int
parse_duration(const char *s, long *secs)
{
	char num[32];
	size_t n = strlen(s);
	long mult = 1, v;

	if (n == 0 || n >= sizeof(num))
		return -1;
	memcpy(num, s, n + 1);
	switch (num[n - 1]) {
	case 's': mult = 1; break;
	case 'm': mult = 60; break;
	case 'h': mult = 3600; break;
	case 'd': mult = 86400; break;
	default:
		if (num[n - 1] < '0' || num[n - 1] > '9')
			return -1;
		n++;
	}
	num[n - 1] = '\0';
	if (parse_long(num, 0, DURATION_MAX, &v) < 0 || v > DURATION_MAX / mult)
		return -1;
	*secs = v * mult;
	return 0;
}

/* read_all - the rest of fd appended to b; 0, or -errno (EFBIG past b's
 * cap).  The read block is wiped after: it may have held a password. */
int
read_all(int fd, struct buf *b)
{
	char chunk[8192];
	ssize_t r;
	int rc = 0;

	for (;;) {
		r = read(fd, chunk, sizeof(chunk));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = r < 0 ? -errno : 0;
			break;
		}
		if (buf_add(b, chunk, (size_t)r) < 0) {
			rc = -EFBIG;
			break;
		}
	}
	explicit_bzero(chunk, sizeof(chunk));
	return rc;
}

int
write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* fnv1a - FNV-1a over s, continuing from h (FNV1A_INIT to start) */
unsigned long long
fnv1a(unsigned long long h, const char *s)
{
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

/* now_ms - a monotonic clock in milliseconds */
long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The end of this process's delivery run (deadline_cap), or 0. */
static long long cap_ms;

/* deadline_in - the now_ms() deadline secs from now; for 0 or less,
 * none (a century); never later than the cap */
long long
deadline_in(long secs)
{
	long long d = now_ms() + (secs > 0 ? (long long)secs : 3153600000LL) *
	    1000;

	return cap_ms > 0 && cap_ms < d ? cap_ms : d;
}

/* deadline_cap - from now on no wait of this process (and of the
 * children it forks) goes past the now_ms() time end: a delivery run's
 * budget (queue_run_time) bounds every step of it */
void
deadline_cap(long long end)
{
	cap_ms = end;
}

/* wait_fd - poll fd for ev until the now_ms() deadline; 1 ready, 0
 * timeout, -1 error (errno) */
int
wait_fd(int fd, short ev, long long deadline)
{
	struct pollfd p;
	long long left;
	int r;

	for (;;) {
		left = deadline - now_ms();
		if (left <= 0)
			return 0;
		p.fd = fd;
		p.events = ev;
		p.revents = 0;
		r = poll(&p, 1, left > 1000000000 ? 1000000000 : (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r > 0)
			return 1;
	}
}

int
fsync_dir(const char *path)
{
	int fd, rc;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = fsync(fd);
	close(fd);
	return rc;
}

/* rfc5322_date - RFC 5322 3.3 date-time of t in local time, English
 * names whatever the locale: "Sat, 28 Nov 2026 08:22:42 +0000"; 0, or -1
 * when it does not fit */
int
rfc5322_date(time_t t, char *out, size_t outlen)
{
	static const char days[7][4] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
	};
	static const char months[12][4] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
	};
	struct tm tm;
	char hms[32];
	int n;

	if (localtime_r(&t, &tm) == NULL || tm.tm_wday < 0 ||
	    tm.tm_wday > 6 || tm.tm_mon < 0 || tm.tm_mon > 11)
		return -1;
	if (strftime(hms, sizeof(hms), "%H:%M:%S %z", &tm) == 0)
		return -1;
	n = snprintf(out, outlen, "%s, %02d %s %04ld %s", days[tm.tm_wday],
	    tm.tm_mday, months[tm.tm_mon], (long)tm.tm_year + 1900, hms);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}
