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

/*
 * more - the array p of *cap elements of size octets, n of them used,
 * with room for one more: p itself, or p grown to twice its size (first
 * elements at first).  NULL when out of memory: p is still valid and
 * *cap unchanged.
 */
static void *
more(void *p, size_t n, size_t *cap, size_t size, size_t first)
{
	size_t ncap = *cap ? *cap * 2 : first;
	void *np;

	if (n < *cap)
		return p;
	if (ncap > SIZE_MAX / size || (np = realloc(p, ncap * size)) == NULL)
		return NULL;
	*cap = ncap;
	return np;
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
	struct target *t = more(v->t, v->n, &v->cap, sizeof(*t), 4);

	if (t == NULL)
		return -1;
	v->t = t;
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
 * unquote - a wholly quoted target, unquoted into *out (allocated, *olen
 * octets) when that makes it a pipe, a file or an include, as sendmail
 * reads "|cmd arg"; otherwise the quotes are a quoted local part and
 * stay (*out NULL).  0, or -1 when out of memory.
 */
static int
unquote(const char *s, size_t len, char **out, size_t *olen)
{
	char *tmp;
	size_t i, o;

	*out = NULL;
	if (len < 2 || s[0] != '"')
		return 0;
	for (i = 1; i < len && s[i] != '"'; i++)
		if (s[i] == '\\')
			i++;
	if (i != len - 1)
		return 0;
	if ((tmp = malloc(len)) == NULL)
		return -1;
	for (i = 1, o = 0; i < len - 1; i++) {
		if (s[i] == '\\' && i + 1 < len - 1)
			i++;
		tmp[o++] = s[i];
	}
	tmp[o] = '\0';
	if (tmp[0] == '|' || tmp[0] == '/' ||
	    strncasecmp(tmp, ":include:", 9) == 0) {
		*out = tmp;
		*olen = o;
	} else
		free(tmp);
	return 0;
}

/* add_include - the path after ":include:" (blanks before it skipped):
 * absolute, of bounded length, without control characters */
static int
add_include(struct tvec *v, const char *p, size_t plen, const char *file,
    size_t line, int depth, struct strlist *errs)
{
	char why[512], q[ERR_QUOTE_MAX + 8];
	size_t i;

	while (plen > 0 && (*p == ' ' || *p == '\t'))
		p++, plen--;
	quote(q, sizeof(q), p, plen);
	if (plen == 0)
		return bad(v, errs, file, line, depth,
		    ":include: without a path");
	if (p[0] != '/')
		snprintf(why, sizeof(why), "relative :include: path refused: "
		    "%s", q);
	else if (plen >= ALIAS_PATH_MAX)
		snprintf(why, sizeof(why), ":include: path too long (limit "
		    "%d): %s", ALIAS_PATH_MAX - 1, q);
	else {
		for (i = 0; i < plen && (unsigned char)p[i] >= 0x20 &&
		    p[i] != 0x7f; i++)
			;
		if (i == plen)
			return tvec_add(v, T_INCLUDE, p, plen, file, line,
			    depth);
		snprintf(why, sizeof(why), "control character in :include: "
		    "path: %s", q);
	}
	return bad(v, errs, file, line, depth, why);
}

/* add_address - a target that is an address: a remote one as written,
 * a local name ("\name" too) in lower case */
static int
add_address(struct tvec *v, const char *s, size_t len, const char *file,
    size_t line, int depth, struct strlist *errs)
{
	char why[512], *lower = malloc(len + 1);
	size_t i, o;
	int rc;

	if (lower == NULL)
		return -1;
	memcpy(lower, s, len);
	lower[len] = '\0';
	i = lower[0] == '\\' ? 1 : 0;
	if (addr_check(lower + i, 0, why, sizeof(why)) < 0)
		rc = bad(v, errs, file, line, depth, why);
	else if (addr_domain(lower + i) != NULL)
		rc = tvec_add(v, T_REMOTE, lower, len, file, line, depth);
	else {
		for (o = i; o < len; o++)
			lower[o] = (char)tolower((unsigned char)lower[o]);
		rc = tvec_add(v, i ? T_LOCAL : T_NAME, lower + i, len - i,
		    file, line, depth);
	}
	free(lower);
	return rc;
}

/*
 * add_target - classify one target (trimmed, non-empty) and append it.
 * Returns 0 (refusals included), -1 when out of memory.
 */
static int
add_target(struct tvec *v, const char *s, size_t len, const char *file,
    size_t line, int depth, struct strlist *errs)
{
	const char *inner = s;
	size_t ilen = len;
	char *tmp;
	int rc;

	if (unquote(s, len, &tmp, &ilen) < 0)
		return -1;
	if (tmp != NULL)
		inner = tmp;
	if (memchr(inner, '\0', ilen) != NULL)
		rc = bad(v, errs, file, line, depth, "NUL octet in a target");
	else if (inner[0] == '|')
		rc = bad(v, errs, file, line, depth,
		    "pipe targets are not supported");
	else if (inner[0] == '/')
		rc = bad(v, errs, file, line, depth,
		    "file targets are not supported");
	else if (ilen >= 9 && strncasecmp(inner, ":include:", 9) == 0)
		rc = add_include(v, inner + 9, ilen - 9, file, line, depth,
		    errs);
	else
		rc = add_address(v, s, len, file, line, depth, errs);
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
 * name_len - the length of the alias name that starts an entry (up to
 * its ':', blanks before the colon dropped), *rest the offset of what
 * follows the colon; 0 with why set when there is no valid name.
 */
static size_t
name_len(const char *text, size_t len, size_t *rest, char *why,
    size_t whylen)
{
	const char *colon = memchr(text, ':', len);
	char q[ERR_QUOTE_MAX + 8];
	size_t n, i;

	quote(q, sizeof(q), text, colon ? (size_t)(colon - text) : len);
	if (colon == NULL) {
		snprintf(why, whylen, "missing ':' after the alias name: %s",
		    q);
		return 0;
	}
	*rest = (size_t)(colon - text) + 1;
	n = (size_t)(colon - text);
	while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\t'))
		n--;
	if (n == 0) {
		snprintf(why, whylen, "empty alias name");
		return 0;
	}
	if (n > ALIAS_NAME_MAX) {
		snprintf(why, whylen, "alias name too long (limit %d): %s",
		    ALIAS_NAME_MAX, q);
		return 0;
	}
	for (i = 0; i < n; i++)
		if (!name_char_ok((unsigned char)text[i])) {
			snprintf(why, whylen, "invalid alias name: %s", q);
			return 0;
		}
	return n;
}

/* too_many - the targets of v become the one failure of an alias over
 * ALIAS_TARGETS_MAX.  Returns 0, or -1 when out of memory. */
static int
too_many(struct tvec *v, const char *name, const char *file, size_t line,
    struct strlist *errs)
{
	char why[128];

	tvec_free(v);
	snprintf(why, sizeof(why), "alias \"%s\" has too many targets (limit "
	    "%d)", name, ALIAS_TARGETS_MAX);
	return bad(v, errs, file, line, 0, why);
}

/* take_targets - a's targets are those of v, taken (v left empty); what
 * a held is not freed */
static void
take_targets(struct alias *a, struct tvec *v)
{
	a->t = v->t;
	a->nt = v->n;
	a->capt = v->cap;
	v->t = NULL;
	v->n = v->cap = 0;
}

/* table_add - alias name with the targets of v into ta, both taken
 * (v left empty); -1 when out of memory, nothing taken */
static int
table_add(struct aliases *ta, char *name, const char *file, size_t line,
    struct tvec *v)
{
	struct alias *a = more(ta->a, ta->n, &ta->cap, sizeof(*a), 16);
	size_t i;

	if (a == NULL)
		return -1;
	ta->a = a;
	if (2 * (ta->n + 1) >= ta->nidx && reindex(ta) < 0)
		return -1;
	a = &ta->a[ta->n++];
	a->name = name;
	a->file = file;
	a->line = line;
	take_targets(a, v);
	for (i = hash(a->name) & (ta->nidx - 1); ta->idx[i];
	    i = (i + 1) & (ta->nidx - 1))
		;
	ta->idx[i] = ta->n;
	return 0;
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
	struct alias *dup;
	char why[200], *name = NULL;
	size_t nlen, i, rest = 0, line = lines[0];
	int rc = -1;

	if ((nlen = name_len(text, len, &rest, why, sizeof(why))) == 0) {
		rc = errf(errs, file, line, "%s", why);
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
	if (split_targets(&v, text + rest, len - rest, rest, off, lines,
	    nlines, file, 0, errs) < 0)
		goto out;
	if (v.n == 0) {
		snprintf(why, sizeof(why), "alias \"%s\" has no targets", name);
		if (bad(&v, errs, file, line, 0, why) < 0)
			goto out;
	}
	if (v.n > ALIAS_TARGETS_MAX && too_many(&v, name, file, line, errs) < 0)
		goto out;
	if (table_add(ta, name, file, line, &v) < 0)
		goto out;
	name = NULL;
	rc = 0;
out:
	free(name);
	tvec_free(&v);
	return rc;
}

/* One physical line of a file's text. */
struct pline {
	const char *p;
	size_t len;		/* without its LF or CRLF */
	size_t indent;		/* blanks it starts with */
};

/* next_line - the line of text at *off into l, *off moved past it;
 * 0 at the end of text */
static int
next_line(const char *text, size_t len, size_t *off, struct pline *l)
{
	const char *nl;

	if (*off >= len)
		return 0;
	l->p = text + *off;
	nl = memchr(l->p, '\n', len - *off);
	l->len = nl ? (size_t)(nl - l->p) : len - *off;
	*off += l->len + 1;
	if (l->len > 0 && l->p[l->len - 1] == '\r')
		l->len--;
	for (l->indent = 0; l->indent < l->len && (l->p[l->indent] == ' ' ||
	    l->p[l->indent] == '\t'); l->indent++)
		;
	return 1;
}

/* ignored - a blank line or a '#' comment: it neither ends nor
 * continues an entry */
static int
ignored(const struct pline *l)
{
	return l->indent == l->len || l->p[l->indent] == '#';
}

/* Physical-line bookkeeping of one logical line. */
struct logical {
	struct buf text;
	size_t *off, *lines;
	size_t n, cap;
	int skip;		/* too long: drop until the next entry */
};

/* What logical_add did with a line. */
enum lg_status {
	LG_OK,
	LG_NOMEM,
	LG_TOOLONG	/* the entry is over ALIAS_LINE_MAX */
};

static enum lg_status
logical_add(struct logical *lg, const char *s, size_t n, size_t lineno)
{
	if (lg->n == lg->cap) {
		size_t ncap = lg->cap ? lg->cap * 2 : 8;
		size_t *no = realloc(lg->off, ncap * sizeof(*no));

		if (no == NULL)
			return LG_NOMEM;
		lg->off = no;
		no = realloc(lg->lines, ncap * sizeof(*no));
		if (no == NULL)
			return LG_NOMEM;
		lg->lines = no;
		lg->cap = ncap;
	}
	if (lg->n > 0 && buf_addc(&lg->text, ' ') < 0)
		return LG_TOOLONG;
	lg->off[lg->n] = lg->text.len;
	lg->lines[lg->n] = lineno;
	lg->n++;
	return buf_add(&lg->text, s, n) < 0 ? LG_TOOLONG : LG_OK;
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
	struct pline l;
	const char *file;
	size_t off = 0, lineno = 0;
	enum lg_status r;
	int rc = -1;

	buf_init(&lg.text, ALIAS_LINE_MAX);
	if ((file = intern(ta, fname)) == NULL)
		goto out;
	while (next_line(text, len, &off, &l)) {
		lineno++;
		if (ignored(&l))
			continue;
		if (memchr(l.p, '\0', l.len) != NULL) {
			if (errf(errs, file, lineno, "NUL octet in the line") < 0)
				goto out;
			lg.skip = 1;
			continue;
		}
		if (l.indent == 0) {
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
		r = logical_add(&lg, l.p + l.indent, l.len - l.indent, lineno);
		if (r == LG_NOMEM)
			goto out;
		if (r == LG_TOOLONG) {
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

/* What read_file found. */
enum file_status {
	FILE_READ,	/* the file is in the buffer */
	FILE_MISSING,	/* it does not exist */
	FILE_DENIED,	/* it may not be opened (EACCES, EPERM) */
	FILE_BAD	/* any other failure */
};

/*
 * read_file - a whole regular file with one link into b, the last
 * component not a symbolic link (see the head of this file); why set
 * unless FILE_READ.
 */
static enum file_status
read_file(const char *path, struct buf *b, char *why, size_t whylen)
{
	struct stat st;
	ssize_t r;
	int fd;
	enum file_status rc = FILE_BAD;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK |
	    O_NOFOLLOW);
	if (fd < 0) {
		int e = errno;

		if (e == ELOOP && lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
			snprintf(why, whylen, "a symbolic link");
		else
			snprintf(why, whylen, "%s", strerror(e));
		return e == ENOENT ? FILE_MISSING : e == EACCES || e == EPERM ?
		    FILE_DENIED : FILE_BAD;
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
	rc = FILE_READ;
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
	struct pline l;
	size_t off = 0, lineno = 0, zero = 0;

	while (next_line(text, len, &off, &l)) {
		lineno++;
		if (ignored(&l))
			continue;
		if (l.len > ALIAS_LINE_MAX) {
			if (bad(v, errs, file, lineno, depth, "line too long") < 0)
				return -1;
			continue;
		}
		if (split_targets(v, l.p, l.len, 0, &zero, &lineno, 1, file,
		    depth, errs) < 0)
			return -1;
	}
	return 0;
}

/*
 * include_read - the targets of t's :include: file into v; a file that
 * may not be read, or one too many, or nested too deep, becomes a
 * failure in v.  -1: out of memory.
 */
static int
include_read(struct aliases *ta, const struct target *t, struct tvec *v,
    struct strlist *errs)
{
	char why[700], q[ERR_QUOTE_MAX + 8], rwhy[200];
	const char *file;
	enum file_status r;
	struct buf b;
	int rc;

	quote(q, sizeof(q), t->s, strlen(t->s));
	if (t->depth >= ALIAS_INCLUDE_DEPTH_MAX) {
		snprintf(why, sizeof(why), ":include: files nested too deeply "
		    "(limit %d): %s", ALIAS_INCLUDE_DEPTH_MAX, q);
		return bad(v, errs, t->file, t->line, t->depth, why);
	}
	if (ta->nincludes >= ALIAS_INCLUDES_MAX) {
		snprintf(why, sizeof(why), "too many :include: files (limit "
		    "%d): %s", ALIAS_INCLUDES_MAX, q);
		return bad(v, errs, t->file, t->line, t->depth, why);
	}
	ta->nincludes++;
	buf_init(&b, ALIAS_FILE_MAX);
	if ((r = read_file(t->s, &b, rwhy, sizeof(rwhy))) != FILE_READ) {
		if (r == FILE_DENIED)
			ta->denied = 1;
		snprintf(why, sizeof(why), "cannot read :include: file %s: %s",
		    q, rwhy);
		rc = bad(v, errs, t->file, t->line, t->depth, why);
	} else if ((file = intern(ta, t->s)) == NULL)
		rc = -1;
	else
		rc = include_targets(v, b.p ? b.p : "", b.len, file,
		    t->depth + 1, errs);
	buf_free(&b);
	return rc;
}

/* splice_targets - the targets of v (taken, v left empty) in place of a's
 * target i; -1 when out of memory */
static int
splice_targets(struct alias *a, size_t i, struct tvec *v)
{
	size_t n = a->nt - 1 + v->n;

	if (n > a->capt) {
		struct target *nt = realloc(a->t, n * sizeof(*nt));

		if (nt == NULL)
			return -1;
		a->t = nt;
		a->capt = n;
	}
	free(a->t[i].s);
	memmove(&a->t[i + v->n], &a->t[i + 1],
	    (a->nt - i - 1) * sizeof(*a->t));
	if (v->n)
		memcpy(&a->t[i], v->t, v->n * sizeof(*v->t));
	a->nt = n;
	free(v->t);
	v->t = NULL;
	v->n = v->cap = 0;
	return 0;
}

/* replace_targets - a's targets become those of v (taken, v left empty) */
static void
replace_targets(struct alias *a, struct tvec *v)
{
	struct tvec old = { a->t, a->nt, a->capt };

	tvec_free(&old);
	take_targets(a, v);
}

/*
 * resolve - replace the :include: targets of a by the targets of their
 * files, nested ones too.  Failures become T_BAD.  -1: out of memory.
 */
static int
resolve(struct aliases *ta, struct alias *a, struct strlist *errs)
{
	struct tvec v = { NULL, 0, 0 };
	size_t i = 0;
	int rc = 0;

	while (rc == 0 && i < a->nt) {
		if (a->t[i].kind != T_INCLUDE)
			i++;
		else if ((rc = include_read(ta, &a->t[i], &v, errs)) < 0)
			break;
		else if (a->nt - 1 + v.n > ALIAS_TARGETS_MAX) {
			/* The whole alias becomes one failure. */
			if ((rc = too_many(&v, a->name, a->file, a->line,
			    errs)) == 0)
				replace_targets(a, &v);
			break;
		} else	/* v in place of the include; its own come next */
			rc = splice_targets(a, i, &v);
	}
	tvec_free(&v);
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
	enum file_status r = FILE_READ;
	int ok = 0;

	*denied = 0;
	buf_init(&b, ALIAS_FILE_MAX);
	if ((ta = aliases_new()) == NULL)
		goto out;
	/* "aliases /dev/null" turns aliases off (read_file opens no device) */
	r = strcmp(path, "/dev/null") == 0 ? FILE_MISSING : read_file(path,
	    &b, why, sizeof(why));
	if (r == FILE_MISSING) {
		ok = 1;
		goto out;
	}
	if (r != FILE_READ) {
		*denied = r == FILE_DENIED;
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
		if (r == FILE_READ)
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
