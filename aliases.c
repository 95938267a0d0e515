/*
 * aliases.c - the aliases file (aliases(5), as sendmail and Postfix read
 * it) and the expansion of a local part through it.
 *
 * Format owned here:
 *   name: target, target, ...
 *   - a line whose first non-blank octet is '#', and a blank line, is
 *     ignored (it neither ends nor continues an entry);
 *   - a line starting with a space or tab continues the entry above;
 *   - names are local parts, matched case-insensitively;
 *   - targets are separated by commas outside double quotes;
 *     "user@domain" is a remote address, kept as written; a bare "user"
 *     is a local name, expanded again if it is an alias; "\user" is the
 *     local user, never expanded; ":include:/abs/path" names a file of
 *     more targets (one or several a line, '#' comments), read by
 *     aliases_load; "|command" and "/file" (quoted or not) are refused.
 *   Errors read "FILE:LINE: reason", LINE the physical line of the
 *   target (or of the entry when the entry itself is wrong).
 *
 * Choices:
 *   - A duplicate name is an error; the first definition is kept.
 *   - A target that is refused (pipe, file, bad syntax, unreadable or
 *     relative :include:) is kept in the table as a failure: expanding
 *     the alias then fails as a whole, with that reason, so the caller
 *     bounces the recipient instead of delivering part of the list.  The
 *     rest of the file is still loaded, so newaliases reports every error.
 *   - An entry with no targets ("name:") is an error and a failure too:
 *     mail to it bounces rather than going to a local user of that name.
 *   - Expansion: a name that lists itself ("a: a, b") keeps itself as the
 *     local user, as sendmail does; any other return to a name on the way
 *     ("a: b", "b: a") is a loop, and the whole expansion fails.
 *   - Local names (not remote addresses) are folded to lower case, as
 *     Postfix does; duplicates in the result are removed.
 *
 * Security notes:
 *   - aliases_parse is pure: no I/O, no globals, no exit(); it takes
 *     untrusted bytes and every quantity has a named limit below (over a
 *     limit is an error, never a truncation).  Only aliases_load reads
 *     files, the aliases file and the :include: files alike (read_file):
 *     opened O_NOFOLLOW (a symbolic link as the last component is
 *     refused, so a user who controls the path of an included file
 *     cannot point it at a file only root may read), O_NONBLOCK (a FIFO
 *     cannot hang the open) and O_NOCTTY, then read only when fstat
 *     says it is a regular file with one link (no device, FIFO,
 *     directory, nor a hard link to another file).  "aliases /dev/null"
 *     is recognised by its name and never opened.  :include: paths must
 *     be absolute; nesting and count are bounded.
 *   - Error texts are made printable before they quote input.  They may
 *     quote the contents of an included file: a caller who reads files
 *     with more privilege than the user who will see the errors must
 *     keep the texts from that user (submit.c logs them instead).
 *   - Expansion is iterative in effort (every alias expanded at most once
 *     per call, so diamonds cannot blow up) and recursive in depth only up
 *     to ALIAS_DEPTH_MAX.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/stat.h>

#include "mxsend.h"

/* One file, the aliases file or an :include: file: /etc/aliases of a big
 * site is a few hundred KB; more is a mistake or an attack. */
#define ALIAS_FILE_MAX (4 * 1024 * 1024)
/* One entry with its continuation lines: room for a few thousand
 * addresses, and a bound on the work one line can cause. */
#define ALIAS_LINE_MAX (64 * 1024)
/* Targets of one alias after its :include: files are read: a list this
 * long belongs in a mailing list manager. */
#define ALIAS_TARGETS_MAX 1000
/* A name is a local part: RFC 5321 4.5.3.1.1 allows 64 octets. */
#define ALIAS_NAME_MAX 64
/* :include: files within :include: files. */
#define ALIAS_INCLUDE_DEPTH_MAX 5
/* :include: files read by one load, so that many aliases including one
 * big file cannot make a load read gigabytes. */
#define ALIAS_INCLUDES_MAX 256
/* An :include: path. */
#define ALIAS_PATH_MAX 1024
/* How much of bad input an error text quotes. */
#define ERR_QUOTE_MAX 60

enum tkind {
	T_NAME,		/* bare local name: expanded again if aliased */
	T_LOCAL,	/* "\name": the local user, not expanded */
	T_REMOTE,	/* has a domain: kept as written */
	T_INCLUDE,	/* :include: path, until aliases_load reads it */
	T_BAD		/* refused; s is the reason */
};

struct target {
	enum tkind kind;
	char *s;
	const char *file;	/* interned in aliases.files */
	size_t line;
	int depth;		/* :include: nesting it came from */
};

struct alias {
	char *name;		/* lower case */
	const char *file;
	size_t line;
	struct target *t;
	size_t nt, capt;
};

struct aliases {
	struct alias *a;
	size_t n, cap;
	size_t *idx;		/* open addressing: alias index + 1, 0 empty */
	size_t nidx;		/* a power of two, > 2 * n */
	struct strlist files;	/* file names, for messages */
	size_t nincludes;	/* :include: files read */
	int denied;		/* one could not be opened: no permission */
};

/* A list of targets being built. */
struct tvec {
	struct target *t;
	size_t n, cap;
};

static int errf(struct strlist *, const char *, size_t, const char *, ...)
    __attribute__((format(printf, 4, 5)));

/* errf - append "file:line: reason" to errs; -1 only when out of memory */
static int
errf(struct strlist *errs, const char *file, size_t line, const char *fmt,
    ...)
{
	char tmp[600], out[700];
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (line)
		n = snprintf(out, sizeof(out), "%s:%zu: %s", file, line, tmp);
	else
		n = snprintf(out, sizeof(out), "%s: %s", file, tmp);
	if (n < 0)
		return -1;
	return strlist_add(errs, out);
}

/* quote - input made printable and cut to ERR_QUOTE_MAX, for messages */
static void
quote(char *dst, size_t dstlen, const char *s, size_t n)
{
	size_t m = n > ERR_QUOTE_MAX ? ERR_QUOTE_MAX : n, l;

	printable(dst, dstlen, s, m);
	l = strlen(dst);
	if (m < n && l + 4 <= dstlen)
		memcpy(dst + l, "...", 4);
}

static size_t
hash(const char *s)
{
	size_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static struct alias *
lookup(const struct aliases *ta, const char *lname)
{
	size_t i;

	if (ta->nidx == 0)
		return NULL;
	for (i = hash(lname) & (ta->nidx - 1); ta->idx[i];
	    i = (i + 1) & (ta->nidx - 1))
		if (strcmp(ta->a[ta->idx[i] - 1].name, lname) == 0)
			return &ta->a[ta->idx[i] - 1];
	return NULL;
}

/* reindex - grow the index to keep it under half full */
static int
reindex(struct aliases *ta)
{
	size_t n = ta->nidx ? ta->nidx * 2 : 64, i, j;
	size_t *ni;

	ni = calloc(n, sizeof(*ni));
	if (ni == NULL)
		return -1;
	for (i = 0; i < ta->n; i++) {
		for (j = hash(ta->a[i].name) & (n - 1); ni[j]; j = (j + 1) & (n - 1))
			;
		ni[j] = i + 1;
	}
	free(ta->idx);
	ta->idx = ni;
	ta->nidx = n;
	return 0;
}

/* intern - the file name kept for messages */
static const char *
intern(struct aliases *ta, const char *fname)
{
	size_t i;

	for (i = 0; i < ta->files.n; i++)
		if (strcmp(ta->files.v[i], fname) == 0)
			return ta->files.v[i];
	if (strlist_add(&ta->files, fname) < 0)
		return NULL;
	return ta->files.v[ta->files.n - 1];
}

static void
tvec_free(struct tvec *v)
{
	size_t i;

	for (i = 0; i < v->n; i++)
		free(v->t[i].s);
	free(v->t);
	v->t = NULL;
	v->n = v->cap = 0;
}

static int
tvec_add(struct tvec *v, enum tkind kind, const char *s, size_t len,
    const char *file, size_t line, int depth)
{
	struct target *t;

	if (v->n == v->cap) {
		size_t ncap = v->cap ? v->cap * 2 : 4;
		struct target *nt = realloc(v->t, ncap * sizeof(*nt));

		if (nt == NULL)
			return -1;
		v->t = nt;
		v->cap = ncap;
	}
	t = &v->t[v->n];
	t->s = malloc(len + 1);
	if (t->s == NULL)
		return -1;
	memcpy(t->s, s, len);
	t->s[len] = '\0';
	t->kind = kind;
	t->file = file;
	t->line = line;
	t->depth = depth;
	v->n++;
	return 0;
}

struct aliases *
aliases_new(void)
{
	struct aliases *ta = calloc(1, sizeof(*ta));

	if (ta != NULL)
		strlist_init(&ta->files);
	return ta;
}

void
aliases_free(struct aliases *ta)
{
	size_t i, j;

	if (ta == NULL)
		return;
	for (i = 0; i < ta->n; i++) {
		for (j = 0; j < ta->a[i].nt; j++)
			free(ta->a[i].t[j].s);
		free(ta->a[i].t);
		free(ta->a[i].name);
	}
	free(ta->a);
	free(ta->idx);
	strlist_free(&ta->files);
	free(ta);
}

/*
 * bad - a refused target: kept as a failure and reported.  Returns 0, or
 * -1 when out of memory.
 */
static int
bad(struct tvec *v, struct strlist *errs, const char *file, size_t line,
    int depth, const char *why)
{
	if (errf(errs, file, line, "%s", why) < 0)
		return -1;
	return tvec_add(v, T_BAD, why, strlen(why), file, line, depth);
}

/*
 * add_target - classify one target (trimmed, non-empty) and append it.
 * Returns 0 (refusals included), -1 when out of memory.
 */
static int
add_target(struct tvec *v, const char *s, size_t len, const char *file,
    size_t line, int depth, struct strlist *errs)
{
	char why[512], q[ERR_QUOTE_MAX + 8], *tmp = NULL, *lower;
	const char *inner = s;
	size_t ilen = len, i, o;
	int rc = -1;

	/* A wholly quoted target is unquoted when that makes it a pipe, a
	 * file or an include (sendmail's "|cmd arg"); otherwise the quotes
	 * are a quoted local part and stay. */
	if (len >= 2 && s[0] == '"') {
		for (i = 1; i < len && s[i] != '"'; i++)
			if (s[i] == '\\')
				i++;
		if (i == len - 1) {
			tmp = malloc(len);
			if (tmp == NULL)
				goto out;
			for (i = 1, o = 0; i < len - 1; i++) {
				if (s[i] == '\\' && i + 1 < len - 1)
					i++;
				tmp[o++] = s[i];
			}
			tmp[o] = '\0';
			if (tmp[0] == '|' || tmp[0] == '/' ||
			    strncasecmp(tmp, ":include:", 9) == 0) {
				inner = tmp;
				ilen = o;
			}
		}
	}
	if (memchr(inner, '\0', ilen) != NULL) {
		rc = bad(v, errs, file, line, depth, "NUL octet in a target");
		goto out;
	}
	if (inner[0] == '|') {
		rc = bad(v, errs, file, line, depth,
		    "pipe targets are not supported");
		goto out;
	}
	if (inner[0] == '/') {
		rc = bad(v, errs, file, line, depth,
		    "file targets are not supported");
		goto out;
	}
	if (ilen >= 9 && strncasecmp(inner, ":include:", 9) == 0) {
		const char *p = inner + 9;
		size_t plen = ilen - 9;

		while (plen > 0 && (*p == ' ' || *p == '\t'))
			p++, plen--;
		quote(q, sizeof(q), p, plen);
		if (plen == 0)
			rc = bad(v, errs, file, line, depth,
			    ":include: without a path");
		else if (p[0] != '/') {
			snprintf(why, sizeof(why), "relative :include: path "
			    "refused: %s", q);
			rc = bad(v, errs, file, line, depth, why);
		} else if (plen >= ALIAS_PATH_MAX) {
			snprintf(why, sizeof(why), ":include: path too long "
			    "(limit %d): %s", ALIAS_PATH_MAX - 1, q);
			rc = bad(v, errs, file, line, depth, why);
		} else {
			for (i = 0; i < plen; i++)
				if ((unsigned char)p[i] < 0x20 ||
				    p[i] == 0x7f)
					break;
			if (i < plen) {
				snprintf(why, sizeof(why), "control character "
				    "in :include: path: %s", q);
				rc = bad(v, errs, file, line, depth, why);
			} else
				rc = tvec_add(v, T_INCLUDE, p, plen, file,
				    line, depth);
		}
		goto out;
	}
	lower = malloc(len + 1);
	if (lower == NULL)
		goto out;
	memcpy(lower, s, len);
	lower[len] = '\0';
	i = lower[0] == '\\' ? 1 : 0;
	if (addr_check(lower + i, 0, why, sizeof(why)) < 0) {
		rc = bad(v, errs, file, line, depth, why);
		free(lower);
		goto out;
	}
	if (addr_domain(lower + i) != NULL)
		rc = tvec_add(v, T_REMOTE, lower, len, file, line, depth);
	else {
		for (o = i; o < len; o++)
			lower[o] = (char)tolower((unsigned char)lower[o]);
		rc = tvec_add(v, i ? T_LOCAL : T_NAME, lower + i, len - i,
		    file, line, depth);
	}
	free(lower);
out:
	free(tmp);
	return rc;
}

/*
 * split_targets - the comma-separated targets of text (one entry's
 * value, or one line of an :include: file); lines[k] is the physical
 * line of the octets from off[k] on, offsets counted from base octets
 * before text.  Returns 0 or -1 (out of memory).
 */
static int
split_targets(struct tvec *v, const char *text, size_t len, size_t base,
    const size_t *off, const size_t *lines, size_t nlines, const char *file,
    int depth, struct strlist *errs)
{
	size_t s = 0, e, k = 0, line;
	int inq;

	while (s < len) {
		while (s < len && (text[s] == ' ' || text[s] == '\t'))
			s++;
		while (k + 1 < nlines && off[k + 1] <= base + s)
			k++;
		line = lines[k];
		inq = 0;
		for (e = s; e < len; e++) {
			if (inq && text[e] == '\\' && e + 1 < len)
				e++;
			else if (text[e] == '"')
				inq = !inq;
			else if (!inq && text[e] == ',')
				break;
		}
		if (inq) {
			if (bad(v, errs, file, line, depth,
			    "unterminated quoted string") < 0)
				return -1;
			return 0;
		}
		{
			size_t t = e;

			while (t > s && (text[t - 1] == ' ' ||
			    text[t - 1] == '\t'))
				t--;
			if (t > s && add_target(v, text + s, t - s, file, line,
			    depth, errs) < 0)
				return -1;
		}
		s = e + 1;
	}
	return 0;
}

static int
name_char_ok(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("@,:\"<>()[]\\;", c) == NULL;
}

/*
 * entry - one logical line (continuations joined by a space).  Returns 0
 * (errors go to errs), -1 when out of memory.
 */
static int
entry(struct aliases *ta, const char *text, size_t len, const size_t *off,
    const size_t *lines, size_t nlines, const char *file,
    struct strlist *errs)
{
	struct tvec v = { NULL, 0, 0 };
	struct alias *a, *dup;
	const char *colon;
	char q[ERR_QUOTE_MAX + 8], *name = NULL;
	size_t nlen, i, line = lines[0];
	int rc = -1;

	colon = memchr(text, ':', len);
	quote(q, sizeof(q), text, colon ? (size_t)(colon - text) : len);
	if (colon == NULL) {
		rc = errf(errs, file, line, "missing ':' after the alias "
		    "name: %s", q);
		goto out;
	}
	nlen = (size_t)(colon - text);
	while (nlen > 0 && (text[nlen - 1] == ' ' || text[nlen - 1] == '\t'))
		nlen--;
	if (nlen == 0) {
		rc = errf(errs, file, line, "empty alias name");
		goto out;
	}
	if (nlen > ALIAS_NAME_MAX) {
		rc = errf(errs, file, line, "alias name too long (limit %d): "
		    "%s", ALIAS_NAME_MAX, q);
		goto out;
	}
	for (i = 0; i < nlen; i++)
		if (!name_char_ok((unsigned char)text[i])) {
			rc = errf(errs, file, line, "invalid alias name: %s", q);
			goto out;
		}
	if ((name = malloc(nlen + 1)) == NULL)
		goto out;
	for (i = 0; i < nlen; i++)
		name[i] = (char)tolower((unsigned char)text[i]);
	name[nlen] = '\0';
	if ((dup = lookup(ta, name)) != NULL) {
		rc = errf(errs, file, line, "duplicate alias \"%s\" (first "
		    "defined at %s:%zu), ignored", name, dup->file, dup->line);
		goto out;
	}
	i = (size_t)(colon - text) + 1;
	if (split_targets(&v, text + i, len - i, i, off, lines, nlines, file,
	    0, errs) < 0)
		goto out;
	if (v.n == 0) {
		char why[128];

		snprintf(why, sizeof(why), "alias \"%s\" has no targets", name);
		if (bad(&v, errs, file, line, 0, why) < 0)
			goto out;
	}
	if (v.n > ALIAS_TARGETS_MAX) {
		char why[128];

		tvec_free(&v);
		snprintf(why, sizeof(why), "alias \"%s\" has too many targets "
		    "(limit %d)", name, ALIAS_TARGETS_MAX);
		if (bad(&v, errs, file, line, 0, why) < 0)
			goto out;
	}
	if (ta->n == ta->cap) {
		size_t ncap = ta->cap ? ta->cap * 2 : 16;
		struct alias *na = realloc(ta->a, ncap * sizeof(*na));

		if (na == NULL)
			goto out;
		ta->a = na;
		ta->cap = ncap;
	}
	if (2 * (ta->n + 1) >= ta->nidx && reindex(ta) < 0)
		goto out;
	a = &ta->a[ta->n++];
	a->name = name;
	a->file = file;
	a->line = line;
	a->t = v.t;
	a->nt = v.n;
	a->capt = v.cap;
	name = NULL;
	v.t = NULL;
	v.n = 0;
	for (i = hash(a->name) & (ta->nidx - 1); ta->idx[i];
	    i = (i + 1) & (ta->nidx - 1))
		;
	ta->idx[i] = ta->n;
	rc = 0;
out:
	free(name);
	tvec_free(&v);
	return rc;
}

/* Physical-line bookkeeping of one logical line. */
struct logical {
	struct buf text;
	size_t *off, *lines;
	size_t n, cap;
	int skip;		/* too long: drop until the next entry */
};

static int
logical_add(struct logical *lg, const char *s, size_t n, size_t lineno)
{
	if (lg->n == lg->cap) {
		size_t ncap = lg->cap ? lg->cap * 2 : 8;
		size_t *no = realloc(lg->off, ncap * sizeof(*no));

		if (no == NULL)
			return -1;
		lg->off = no;
		no = realloc(lg->lines, ncap * sizeof(*no));
		if (no == NULL)
			return -1;
		lg->lines = no;
		lg->cap = ncap;
	}
	if (lg->n > 0 && buf_addc(&lg->text, ' ') < 0)
		return 1;
	lg->off[lg->n] = lg->text.len;
	lg->lines[lg->n] = lineno;
	lg->n++;
	return buf_add(&lg->text, s, n) < 0 ? 1 : 0;
}

static int
logical_flush(struct aliases *ta, struct logical *lg, const char *file,
    struct strlist *errs)
{
	int rc = 0;

	if (lg->n > 0 && !lg->skip)
		rc = entry(ta, lg->text.p, lg->text.len, lg->off, lg->lines,
		    lg->n, file, errs);
	buf_reset(&lg->text);
	lg->n = 0;
	lg->skip = 0;
	return rc;
}

int
aliases_parse(struct aliases *ta, const char *text, size_t len,
    const char *fname, struct strlist *errs)
{
	struct logical lg = { { NULL, 0, 0, 0 }, NULL, NULL, 0, 0, 0 };
	const char *file;
	size_t s, e, n, lineno = 0, i;
	int rc = -1, r;

	buf_init(&lg.text, ALIAS_LINE_MAX);
	if ((file = intern(ta, fname)) == NULL)
		goto out;
	for (s = 0; s < len; s = e + 1) {
		const char *nl = memchr(text + s, '\n', len - s);
		const char *l = text + s;

		e = nl ? (size_t)(nl - text) : len;
		n = e - s;
		lineno++;
		if (n > 0 && l[n - 1] == '\r')
			n--;
		for (i = 0; i < n && (l[i] == ' ' || l[i] == '\t'); i++)
			;
		if (i == n || l[i] == '#')
			continue;
		if (memchr(l, '\0', n) != NULL) {
			if (errf(errs, file, lineno, "NUL octet in the line") < 0)
				goto out;
			lg.skip = 1;
			continue;
		}
		if (i == 0) {
			if (logical_flush(ta, &lg, file, errs) < 0)
				goto out;
		} else if (lg.n == 0 && !lg.skip) {
			if (errf(errs, file, lineno, "continuation line "
			    "without an alias above it") < 0)
				goto out;
			continue;
		}
		if (lg.skip)
			continue;
		r = logical_add(&lg, l + i, n - i, lineno);
		if (r < 0)
			goto out;
		if (r > 0) {
			if (errf(errs, file, lg.lines[0], "entry too long "
			    "(limit %d octets with its continuation lines)",
			    ALIAS_LINE_MAX) < 0)
				goto out;
			lg.skip = 1;
		}
	}
	if (logical_flush(ta, &lg, file, errs) < 0)
		goto out;
	rc = 0;
out:
	buf_free(&lg.text);
	free(lg.off);
	free(lg.lines);
	return rc;
}

/*
 * read_file - a whole regular file with one link into b, the last
 * component not a symbolic link (see the head of this file).  0, 1 when
 * it does not exist, -2 when it may not be opened (EACCES, EPERM), -1;
 * why set on < 0.
 */
static int
read_file(const char *path, struct buf *b, char *why, size_t whylen)
{
	struct stat st;
	ssize_t r;
	int fd, rc = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK |
	    O_NOFOLLOW);
	if (fd < 0) {
		int e = errno;

		if (e == ELOOP && lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
			snprintf(why, whylen, "a symbolic link");
		else
			snprintf(why, whylen, "%s", strerror(e));
		return e == ENOENT ? 1 : e == EACCES || e == EPERM ? -2 : -1;
	}
	if (fstat(fd, &st) < 0) {
		snprintf(why, whylen, "%s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "not a regular file");
		goto out;
	}
	if (st.st_nlink != 1) {
		snprintf(why, whylen, "has %ju links (one is required)",
		    (uintmax_t)st.st_nlink);
		goto out;
	}
	if ((r = read_all(fd, b)) < 0) {
		if (r == -EFBIG)
			snprintf(why, whylen, "too large (limit %d octets)",
			    ALIAS_FILE_MAX);
		else
			snprintf(why, whylen, "%s", strerror((int)-r));
		goto out;
	}
	rc = 0;
out:
	close(fd);
	return rc;
}

/*
 * include_targets - the targets of an :include: file's text: every line
 * a comma list, '#' comment lines and blank lines skipped.  Pure.
 */
static int
include_targets(struct tvec *v, const char *text, size_t len,
    const char *file, int depth, struct strlist *errs)
{
	size_t s, e, n, lineno = 0, zero = 0;

	for (s = 0; s < len; s = e + 1) {
		const char *nl = memchr(text + s, '\n', len - s);
		const char *l = text + s;
		size_t i;

		e = nl ? (size_t)(nl - text) : len;
		n = e - s;
		lineno++;
		if (n > 0 && l[n - 1] == '\r')
			n--;
		for (i = 0; i < n && (l[i] == ' ' || l[i] == '\t'); i++)
			;
		if (i == n || l[i] == '#')
			continue;
		if (n > ALIAS_LINE_MAX) {
			if (bad(v, errs, file, lineno, depth, "line too long") < 0)
				return -1;
			continue;
		}
		if (split_targets(v, l, n, 0, &zero, &lineno, 1, file, depth,
		    errs) < 0)
			return -1;
	}
	return 0;
}

/*
 * resolve - replace the :include: targets of a by the targets of their
 * files, nested ones too.  Failures become T_BAD.  -1: out of memory.
 */
static int
resolve(struct aliases *ta, struct alias *a, struct strlist *errs)
{
	struct tvec v;
	struct buf b;
	char why[700], q[ERR_QUOTE_MAX + 8];
	size_t i = 0, j;
	int rc = -1, r;

	buf_init(&b, ALIAS_FILE_MAX);
	while (i < a->nt) {
		struct target *t = &a->t[i];
		const char *file;

		if (t->kind != T_INCLUDE) {
			i++;
			continue;
		}
		v.t = NULL;
		v.n = v.cap = 0;
		quote(q, sizeof(q), t->s, strlen(t->s));
		buf_reset(&b);
		if (t->depth >= ALIAS_INCLUDE_DEPTH_MAX) {
			snprintf(why, sizeof(why), ":include: files nested too "
			    "deeply (limit %d): %s", ALIAS_INCLUDE_DEPTH_MAX, q);
			r = bad(&v, errs, t->file, t->line, t->depth, why);
		} else if (ta->nincludes >= ALIAS_INCLUDES_MAX) {
			snprintf(why, sizeof(why), "too many :include: files "
			    "(limit %d): %s", ALIAS_INCLUDES_MAX, q);
			r = bad(&v, errs, t->file, t->line, t->depth, why);
		} else {
			char rwhy[200];

			ta->nincludes++;
			if ((r = read_file(t->s, &b, rwhy, sizeof(rwhy))) != 0) {
				if (r == -2)
					ta->denied = 1;
				snprintf(why, sizeof(why), "cannot read "
				    ":include: file %s: %s", q, rwhy);
				r = bad(&v, errs, t->file, t->line, t->depth,
				    why);
			} else if ((file = intern(ta, t->s)) == NULL)
				r = -1;
			else
				r = include_targets(&v, b.p ? b.p : "", b.len,
				    file, t->depth + 1, errs);
		}
		if (r < 0) {
			tvec_free(&v);
			goto out;
		}
		/* splice v in place of t; its own includes come next */
		if (a->nt - 1 + v.n > ALIAS_TARGETS_MAX) {
			snprintf(why, sizeof(why), "alias \"%s\" has too many "
			    "targets (limit %d)", a->name, ALIAS_TARGETS_MAX);
			tvec_free(&v);
			if (bad(&v, errs, a->file, a->line, 0, why) < 0)
				goto out;
			for (j = 0; j < a->nt; j++)
				free(a->t[j].s);
			free(a->t);
			a->t = v.t;
			a->nt = v.n;
			a->capt = v.cap;
			break;
		}
		if (a->nt - 1 + v.n > a->capt) {
			size_t ncap = a->nt - 1 + v.n;
			struct target *nt = realloc(a->t, ncap * sizeof(*nt));

			if (nt == NULL) {
				tvec_free(&v);
				goto out;
			}
			a->t = nt;
			a->capt = ncap;
			t = &a->t[i];
		}
		free(t->s);
		memmove(&a->t[i + v.n], &a->t[i + 1],
		    (a->nt - i - 1) * sizeof(*a->t));
		if (v.n)
			memcpy(&a->t[i], v.t, v.n * sizeof(*v.t));
		a->nt = a->nt - 1 + v.n;
		free(v.t);
	}
	rc = 0;
out:
	buf_free(&b);
	return rc;
}

struct aliases *
aliases_load(const char *path, struct strlist *errs)
{
	int denied;

	return aliases_load_denied(path, errs, &denied);
}

struct aliases *
aliases_load_denied(const char *path, struct strlist *errs, int *denied)
{
	struct aliases *ta;
	struct buf b;
	char why[200];
	size_t i;
	int r = 0, ok = 0;

	*denied = 0;
	buf_init(&b, ALIAS_FILE_MAX);
	if ((ta = aliases_new()) == NULL)
		goto out;
	/* "aliases /dev/null" turns aliases off (read_file opens no device) */
	r = strcmp(path, "/dev/null") == 0 ? 1 : read_file(path, &b, why,
	    sizeof(why));
	if (r == 1) {
		ok = 1;
		goto out;
	}
	if (r < 0) {
		*denied = r == -2;
		errf(errs, path, 0, "cannot read aliases file: %s", why);
		goto out;
	}
	if (aliases_parse(ta, b.p ? b.p : "", b.len, path, errs) < 0)
		goto out;
	for (i = 0; i < ta->n; i++)
		if (resolve(ta, &ta->a[i], errs) < 0)
			goto out;
	*denied = ta->denied;
	ok = 1;
out:
	buf_free(&b);
	if (!ok) {
		if (r >= 0)
			errf(errs, path, 0, "out of memory");
		aliases_free(ta);
		return NULL;
	}
	return ta;
}

/* Expansion state of one aliases_expand call. */
struct expand {
	const struct aliases *ta;
	unsigned char *state;	/* per alias: 0 new, 1 on the path, 2 done */
	size_t path[ALIAS_DEPTH_MAX + 1];
	size_t depth;
	struct strlist *out;
	size_t first;		/* out->v[first..] are ours */
	char *err;
	size_t errlen;
};

/* path_text - "a -> b -> c" for the names on the path, then last */
static void
path_text(struct expand *x, const char *last, char *dst, size_t dstlen)
{
	size_t i, o = 0;
	int n;

	dst[0] = '\0';
	for (i = 0; i < x->depth && o < dstlen; i++) {
		n = snprintf(dst + o, dstlen - o, "%s -> ",
		    x->ta->a[x->path[i]].name);
		if (n < 0)
			return;
		o += (size_t)n;
	}
	if (o < dstlen)
		snprintf(dst + o, dstlen - o, "%s", last);
}

/* emit - one final recipient, unless already there */
static int
emit(struct expand *x, const char *s)
{
	size_t i;

	for (i = x->first; i < x->out->n; i++)
		if (strcmp(x->out->v[i], s) == 0)
			return 0;
	if (x->out->n - x->first >= RCPT_MAX) {
		snprintf(x->err, x->errlen, "alias expansion too large "
		    "(limit %d recipients)", RCPT_MAX);
		return -1;
	}
	if (strlist_add(x->out, s) < 0) {
		snprintf(x->err, x->errlen, "out of memory");
		return -1;
	}
	return 0;
}

static int
expand_alias(struct expand *x, size_t ai)
{
	const struct alias *a = &x->ta->a[ai];
	char p[512];
	size_t i;

	if (x->depth >= ALIAS_DEPTH_MAX) {
		path_text(x, a->name, p, sizeof(p));
		snprintf(x->err, x->errlen, "aliases nested too deeply (limit "
		    "%d): %s", ALIAS_DEPTH_MAX, p);
		return -1;
	}
	x->state[ai] = 1;
	x->path[x->depth++] = ai;
	for (i = 0; i < a->nt; i++) {
		const struct target *t = &a->t[i];
		const struct alias *b;

		switch (t->kind) {
		case T_REMOTE:
		case T_LOCAL:
			if (emit(x, t->s) < 0)
				return -1;
			break;
		case T_NAME:
			b = lookup(x->ta, t->s);
			if (b == NULL || b == a) {	/* a user; "a: a" */
				if (emit(x, t->s) < 0)
					return -1;
			} else if (x->state[b - x->ta->a] == 1) {
				path_text(x, b->name, p, sizeof(p));
				snprintf(x->err, x->errlen, "alias loop: %s",
				    p);
				return -1;
			} else if (x->state[b - x->ta->a] == 0 &&
			    expand_alias(x, (size_t)(b - x->ta->a)) < 0)
				return -1;
			break;
		case T_INCLUDE:
			snprintf(x->err, x->errlen, "alias %s: :include: file "
			    "%s not read (%s:%zu)", a->name, t->s, t->file,
			    t->line);
			return -1;
		case T_BAD:
			snprintf(x->err, x->errlen, "alias %s: %s (%s:%zu)",
			    a->name, t->s, t->file, t->line);
			return -1;
		}
	}
	x->depth--;
	x->state[ai] = 2;
	return 0;
}

int
aliases_expand(const struct aliases *ta, const char *name,
    struct strlist *out, char *err, size_t errlen)
{
	struct expand x;
	const struct alias *a;
	char *lname;
	size_t i, n = strlen(name);
	int rc = -1;

	memset(&x, 0, sizeof(x));
	x.ta = ta;
	x.out = out;
	x.first = out->n;
	x.err = err;
	x.errlen = errlen;
	if ((lname = malloc(n + 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i <= n; i++)
		lname[i] = (char)tolower((unsigned char)name[i]);
	a = ta ? lookup(ta, lname) : NULL;
	if (a == NULL) {
		rc = emit(&x, lname);
		goto out;
	}
	if ((x.state = calloc(ta->n, 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	rc = expand_alias(&x, (size_t)(a - ta->a));
out:
	if (rc < 0)
		while (out->n > x.first)
			free(out->v[--out->n]);
	free(x.state);
	free(lname);
	return rc;
}

/* aliases_dump - the table, for tests and newaliases -v: one alias a
 * line, "name: target, target" with "\name" for a local user, "!reason"
 * for a refused target; names in file order. */
int
aliases_dump(const struct aliases *ta, struct buf *b)
{
	size_t i, j;
	int rc = 0;

	for (i = 0; i < ta->n && rc == 0; i++) {
		const struct alias *a = &ta->a[i];

		rc |= buf_printf(b, "%s (%s:%zu):", a->name, a->file, a->line);
		for (j = 0; j < a->nt && rc == 0; j++) {
			const struct target *t = &a->t[j];
			static const char *const pfx[] = { "", "\\", "", "?", "!" };

			rc |= buf_printf(b, "%s %s%s (%s:%zu)", j ? "," : "",
			    pfx[t->kind], t->s, t->file, t->line);
		}
		rc |= buf_addc(b, '\n');
	}
	return rc ? -1 : 0;
}
