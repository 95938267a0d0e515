/*
 * msg.c - the RFC 5322 header block and addresses.
 *
 * What it does:
 *   - collects the header block of a submitted message one line at a time
 *     (RFC 5322 2.2 fields, 2.2.3 folding), keeping every field as written
 *     so that it leaves the machine byte for byte as it came in;
 *   - parses address lists (RFC 5322 3.4 with the obsolete forms of 4.4),
 *     to find the recipients of -t and to qualify bare local parts;
 *   - checks envelope addresses (RFC 5321 4.1.2) from the command line;
 *   - removes Bcc:, Resent-Bcc: and Return-Path:, and adds Date:,
 *     Message-ID: and From: when missing (RFC 5322 3.6).
 *
 * Security notes:
 *   - Every function here is pure: no I/O, no globals, no exit().  They
 *     get untrusted bytes (stdin, the command line) and are fuzzed
 *     (t/fuzz_msg.c).  Only msg_fixup reads the time zone (localtime_r).
 *   - Every input is bounded: LINE_MAX_OCTETS a line, HEADER_MAX a header
 *     block, COMMENT_DEPTH_MAX nested comments, ADDR_MAX an envelope
 *     address, RCPT_MAX recipients.  Over a limit is an error.
 *   - Parsing is linear in its input; the only recursion is a group's
 *     mailboxes, one level deep; a continuation line is appended in
 *     amortised O(1) (see mark_end).
 *   - NUL and CR inside a header line are refused, and field bodies keep
 *     "\n" only before whitespace, so the header written out has exactly
 *     the line breaks of its fields.  Generated bodies are made of checked
 *     parts: control characters from -F or the configuration never reach a
 *     header.
 *   - Error texts are made printable before they quote input.
 *
 * Change the fields of a struct header through these functions only: the
 * slot after the last field records where the last body ends.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mxsend.h"

/* Comments nest (RFC 5322 3.2.2); real ones nest once or twice, and a
 * limit keeps the depth counter meaningful on hostile input. */
#define COMMENT_DEPTH_MAX 64
/* How much of a bad address an error text quotes: enough to recognise
 * it, short enough to leave room for the reason. */
#define ERR_QUOTE_MAX 80
/* RFC 1035 2.3.4: a label is at most 63 octets, a name 255 on the wire,
 * which leaves 253 for the dotted text form. */
#define LABEL_MAX 63
/* Qualifying bare addresses lengthens the header ("a,a,..." grows by the
 * domain at every comma); past twice what we take in it is refused
 * rather than built. */
#define FIXUP_MAX (2 * HEADER_MAX)

static int seterr(char *, size_t, const char *, ...)
    __attribute__((format(printf, 3, 4)));

/* seterr - the reason into err (when there is room); -1, for the caller
 * to return */
static int
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* name_eq - field names match case-insensitively (RFC 5322 1.2.2), in ASCII */
static int
name_eq(const char *a, const char *b)
{
	unsigned char x, y;

	do {
		x = (unsigned char)*a++;
		y = (unsigned char)*b++;
		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x + 'a' - 'A');
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y + 'a' - 'A');
		if (x != y)
			return 0;
	} while (x != '\0');
	return 1;
}

/* has_prefix - name starts with prefix, case-insensitively */
static int
has_prefix(const char *name, const char *prefix)
{
	size_t n = strlen(prefix);
	char tmp[32];

	if (n >= sizeof(tmp) || strlen(name) < n)
		return 0;
	memcpy(tmp, name, n);
	tmp[n] = '\0';
	return name_eq(tmp, prefix);
}

/* is_ftext - RFC 5322 3.6.8: printable US-ASCII except ':' */
static int
is_ftext(unsigned char c)
{
	return c >= 33 && c <= 126 && c != ':';
}

/* is_atext - RFC 5322 3.2.3 atext, with RFC 6532 3.2 UTF-8 octets */
static int
is_atext(unsigned char c)
{
	if (c >= 0x80)
		return 1;
	if (c <= ' ' || c == 0x7f)
		return 0;
	return strchr("()<>[]:;@\\,.\"", c) == NULL;
}

/* is_ctl - a control character other than HTAB */
static int
is_ctl(unsigned char c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

/*
 * Header fields.
 */

void
header_init(struct header *h)
{
	h->f = NULL;
	h->n = h->cap = 0;
	h->bytes = 0;
}

static void
field_free(struct hfield *f)
{
	free(f->name);
	free(f->body);
}

void
header_free(struct header *h)
{
	size_t i;

	for (i = 0; i < h->n; i++)
		field_free(&h->f[i]);
	free(h->f);
	header_init(h);
}

/* body_cap - allocation for a body of len octets: a power of two, so that
 * continuation lines are appended in amortised O(1) */
static size_t
body_cap(size_t len)
{
	size_t c = 64;

	while (c < len + 1 && c < SIZE_MAX / 2)
		c *= 2;
	return c < len + 1 ? len + 1 : c;
}

static char *
body_dup(const char *s, size_t len)
{
	char *p = malloc(body_cap(len));

	if (p == NULL)
		return NULL;
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

/*
 * mark_end - record where the last body ends.  The slot f[n] past the
 * last field always exists (cap > n); its name points at the last body
 * and its body at that body's NUL.  A continuation line then finds the
 * end without strlen() over a body that may be a megabyte long.  A record
 * that does not name f[n-1].body is ignored.
 */
static void
mark_end(struct header *h, size_t len)
{
	if (h->f == NULL || h->cap <= h->n)
		return;
	if (h->n == 0) {
		h->f[0].name = h->f[0].body = NULL;
		return;
	}
	h->f[h->n].name = h->f[h->n - 1].body;
	h->f[h->n].body = h->f[h->n - 1].body + len;
}

static void
clear_end(struct header *h)
{
	if (h->f != NULL && h->cap > h->n)
		h->f[h->n].name = h->f[h->n].body = NULL;
}

/* grow_fields - room for one more field and the end record */
static int
grow_fields(struct header *h)
{
	struct hfield *nf;
	size_t ncap, i;

	if (h->n + 2 <= h->cap)
		return 0;
	ncap = h->cap ? h->cap * 2 : 16;
	if (ncap < h->n + 2 || ncap > SIZE_MAX / sizeof(*nf))
		return -1;
	nf = realloc(h->f, ncap * sizeof(*nf));
	if (nf == NULL)
		return -1;
	for (i = h->cap; i < ncap; i++)
		nf[i].name = nf[i].body = NULL;
	h->f = nf;
	h->cap = ncap;
	return 0;
}

/* add_field - append a field; name and body are copied */
static int
add_field(struct header *h, const char *name, size_t nlen, const char *body,
    size_t blen)
{
	char *n, *b;

	if (grow_fields(h) < 0)
		return -1;
	n = malloc(nlen + 1);
	b = body_dup(body, blen);
	if (n == NULL || b == NULL) {
		free(n);
		free(b);
		return -1;
	}
	memcpy(n, name, nlen);
	n[nlen] = '\0';
	h->f[h->n].name = n;
	h->f[h->n].body = b;
	h->n++;
	mark_end(h, blen);
	return 0;
}

/* add_continuation - RFC 5322 2.2.3: a folded line joins the last field */
static int
add_continuation(struct header *h, const char *line, size_t len)
{
	struct hfield *f = &h->f[h->n - 1];
	size_t old, nlen;
	int known = 0;
	char *nb;

	if (h->cap > h->n && f->body != NULL && h->f[h->n].name == f->body) {
		old = (size_t)(h->f[h->n].body - f->body);
		known = 1;
	} else
		old = strlen(f->body);
	nlen = old + 1 + len;
	if (!known || body_cap(old) < nlen + 1) {
		nb = realloc(f->body, body_cap(nlen));
		if (nb == NULL)
			return -1;
		f->body = nb;
	}
	f->body[old] = '\n';
	memcpy(f->body + old + 1, line, len);
	f->body[nlen] = '\0';
	mark_end(h, nlen);
	return 0;
}

/*
 * header_add_line - RFC 5322 2.2: "name:body", where name is printable
 * US-ASCII without ':', or a continuation (leading SP/HTAB).  Anything
 * else starts the body, as in Postfix; so does an empty line.  The limits
 * apply to lines taken into the header only.
 */
int
header_add_line(struct header *h, const char *line, size_t len, char *err,
    size_t errlen)
{
	size_t i = 0;
	int cont;

	if (len == 0)
		return 1;
	cont = line[0] == ' ' || line[0] == '\t';
	if (cont) {
		if (h->n == 0)
			return 1;
	} else {
		while (i < len && is_ftext((unsigned char)line[i]))
			i++;
		if (i == 0 || i == len || line[i] != ':')
			return 1;
	}
	if (len > LINE_MAX_OCTETS) {
		seterr(err, errlen, "header line too long (%zu octets, "
		    "limit %d)", len, LINE_MAX_OCTETS);
		return -1;
	}
	if (memchr(line, '\0', len) != NULL) {
		seterr(err, errlen, "NUL character in header line");
		return -1;
	}
	if (memchr(line, '\r', len) != NULL) {
		seterr(err, errlen, "bare CR in header line");
		return -1;
	}
	if (h->bytes > HEADER_MAX || len + 1 > HEADER_MAX - h->bytes) {
		seterr(err, errlen, "header too big (limit %d octets)",
		    HEADER_MAX);
		return -1;
	}
	if ((cont ? add_continuation(h, line, len) :
	    add_field(h, line, i, line + i + 1, len - i - 1)) < 0) {
		seterr(err, errlen, "out of memory");
		return -1;
	}
	h->bytes += len + 1;
	return 0;
}

struct hfield *
header_get(const struct header *h, const char *name)
{
	size_t i;

	for (i = 0; i < h->n; i++)
		if (name_eq(h->f[i].name, name))
			return &h->f[i];
	return NULL;
}

size_t
header_count(const struct header *h, const char *name)
{
	size_t i, c = 0;

	for (i = 0; i < h->n; i++)
		if (name_eq(h->f[i].name, name))
			c++;
	return c;
}

void
header_remove(struct header *h, const char *name)
{
	size_t i, j = 0;

	for (i = 0; i < h->n; i++) {
		if (name_eq(h->f[i].name, name)) {
			field_free(&h->f[i]);
			continue;
		}
		h->f[j++] = h->f[i];
	}
	if (j != h->n) {
		h->n = j;
		clear_end(h);
	}
}

/*
 * field_ok - a field we add: RFC 5322 2.2 name, a body without CR, NUL or
 * control characters, "\n" only before SP/HTAB, no line over
 * LINE_MAX_OCTETS counting "name:" on the first.
 */
static int
field_ok(const char *name, const char *body)
{
	size_t i, line;

	for (i = 0; name[i] != '\0'; i++)
		if (!is_ftext((unsigned char)name[i]))
			return 0;
	if (i == 0)
		return 0;
	line = i + 1;
	for (i = 0; body[i] != '\0'; i++) {
		unsigned char c = (unsigned char)body[i];

		if (c == '\n') {
			if (body[i + 1] != ' ' && body[i + 1] != '\t')
				return 0;
			line = 0;
			continue;
		}
		if (is_ctl(c) || ++line > LINE_MAX_OCTETS)
			return 0;
	}
	return 1;
}

/* header_append - add a field at the end; -1 if it is not a valid field */
int
header_append(struct header *h, const char *name, const char *body)
{
	if (!field_ok(name, body))
		return -1;
	return add_field(h, name, strlen(name), body, strlen(body));
}

int
header_write(const struct header *h, struct buf *b)
{
	size_t i;

	for (i = 0; i < h->n; i++) {
		const char *p = h->f[i].body, *nl;

		if (buf_adds(b, h->f[i].name) < 0 || buf_addc(b, ':') < 0)
			return -1;
		while ((nl = strchr(p, '\n')) != NULL) {
			if (buf_add(b, p, (size_t)(nl - p)) < 0 ||
			    buf_add(b, "\r\n", 2) < 0)
				return -1;
			p = nl + 1;
		}
		if (buf_adds(b, p) < 0 || buf_add(b, "\r\n", 2) < 0)
			return -1;
	}
	return 0;
}

/* set_body - replace the body of field i */
static int
set_body(struct header *h, size_t i, const char *s, size_t len)
{
	char *b = body_dup(s, len);

	if (b == NULL)
		return -1;
	free(h->f[i].body);
	h->f[i].body = b;
	if (i + 1 == h->n)
		mark_end(h, len);
	return 0;
}

/*
 * Address lists, RFC 5322 3.4.  A lexer turns the text into atoms, quoted
 * strings, domain literals and specials, skipping CFWS (3.2.2); a parser
 * (recursive only into a group's mailboxes) follows the grammar, with the
 * obsolete forms of 4.4 (obs-phrase, obs-local-part, obs-domain,
 * obs-route, empty list elements).  An addr-spec without "@domain" (a
 * bare "root") is taken too: sendmail users write those, and they are
 * qualified later.
 */

enum tok { T_END, T_ATOM, T_QSTR, T_DLIT, T_SPECIAL, T_ERR };

struct lex {
	const char *s;
	size_t len, pos;
	enum tok t;		/* the current token */
	size_t ts, te;		/* its extent: s[ts..te) */
	const char *why;	/* the reason, once t is T_ERR */
};

struct parser {
	struct lex lx;
	struct strlist *out;	/* addresses found, or NULL */
	struct buf *ins;	/* offsets where "@domain" belongs, or NULL */
	struct buf *commas;	/* offsets of the list commas, or NULL */
	struct buf a;		/* the address being built */
};

/* fws_nl - a "\n" at i is folding (RFC 5322 3.2.2) only before SP/HTAB */
static int
fws_nl(const struct lex *lx, size_t i)
{
	return i + 1 < lx->len && (lx->s[i + 1] == ' ' || lx->s[i + 1] == '\t');
}

/* lex_err - the input is bad for why; -1 */
static int
lex_err(struct lex *lx, const char *why)
{
	lx->why = why;
	return -1;
}

/* bad_ctl - c, at lx->pos, is a control character: a "\n" that is not
 * folding, or any other but HTAB */
static int
bad_ctl(const struct lex *lx, unsigned char c)
{
	return c == '\n' ? !fws_nl(lx, lx->pos) : is_ctl(c);
}

/* quoted_pair - RFC 5322 3.2.1: "\" then VCHAR or WSP (or UTF-8) */
static int
quoted_pair(struct lex *lx, const char *at_end)
{
	if (lx->pos + 1 >= lx->len)
		return lex_err(lx, at_end);
	if (is_ctl((unsigned char)lx->s[lx->pos + 1]))
		return lex_err(lx, "control character");
	lx->pos += 2;
	return 0;
}

/* skip_comment - RFC 5322 3.2.2 comment, nested, from its "(" */
static int
skip_comment(struct lex *lx)
{
	size_t depth = 0;
	unsigned char c;

	do {
		if (lx->pos == lx->len)
			return lex_err(lx, "unbalanced '('");
		c = (unsigned char)lx->s[lx->pos];
		if (c == '(') {
			if (++depth > COMMENT_DEPTH_MAX)
				return lex_err(lx,
				    "comments nested too deeply");
		} else if (c == ')')
			depth--;
		else if (c == '\\') {
			if (quoted_pair(lx, "unbalanced '('") < 0)
				return -1;
			continue;
		} else if (bad_ctl(lx, c))
			return lex_err(lx, "control character");
		lx->pos++;
	} while (depth > 0);
	return 0;
}

/* skip_cfws - RFC 5322 3.2.2 whitespace and (nested) comments */
static int
skip_cfws(struct lex *lx)
{
	unsigned char c;

	while (lx->pos < lx->len) {
		c = (unsigned char)lx->s[lx->pos];
		if (c == ' ' || c == '\t' ||
		    (c == '\n' && fws_nl(lx, lx->pos)))
			lx->pos++;
		else if (c != '(')
			return 0;
		else if (skip_comment(lx) < 0)
			return -1;
	}
	return 0;
}

/*
 * scan_enclosed - from an opening '"' to its close, RFC 5322 3.2.4
 * quoted-string (qtext, quoted pairs, FWS), or from '[' to ']' (close),
 * 3.4.1 domain-literal (dtext and FWS, ASCII only, no quoted pairs);
 * unbalanced is the reason when the input ends first
 */
static int
scan_enclosed(struct lex *lx, unsigned char close, const char *unbalanced)
{
	unsigned char c;

	for (lx->pos++; lx->pos < lx->len; ) {
		c = (unsigned char)lx->s[lx->pos];
		if (c == close) {
			lx->pos++;
			return 0;
		}
		if (c == '\\' && close == '"') {
			if (quoted_pair(lx, unbalanced) < 0)
				return -1;
			continue;
		}
		if (bad_ctl(lx, c))
			return lex_err(lx, "control character");
		if (close == ']' && (c == '[' || c == '\\' || c >= 0x80))
			return lex_err(lx, "bad domain literal");
		lx->pos++;
	}
	return lex_err(lx, unbalanced);
}

/* lex_next - the next token; T_ERR sticks */
static void
lex_next(struct lex *lx)
{
	unsigned char c;

	if (lx->t == T_ERR)
		return;
	if (skip_cfws(lx) < 0) {
		lx->t = T_ERR;
		return;
	}
	lx->ts = lx->pos;
	if (lx->pos == lx->len) {
		lx->t = T_END;
		lx->te = lx->pos;
		return;
	}
	c = (unsigned char)lx->s[lx->pos];
	if (is_atext(c)) {
		while (lx->pos < lx->len &&
		    is_atext((unsigned char)lx->s[lx->pos]))
			lx->pos++;
		lx->t = T_ATOM;
	} else if (c == '"') {
		lx->t = scan_enclosed(lx, '"', "unbalanced '\"'") < 0 ? T_ERR :
		    T_QSTR;
	} else if (c == '[') {
		lx->t = scan_enclosed(lx, ']', "unbalanced '['") < 0 ? T_ERR :
		    T_DLIT;
	} else if (strchr("<>:;@,.", c) != NULL) {
		lx->pos++;
		lx->t = T_SPECIAL;
	} else {
		lx->t = T_ERR;
		lx->why = c == ')' ? "unbalanced ')'" :
		    c == ']' ? "unbalanced ']'" :
		    c == '\\' ? "unexpected '\\'" : "control character";
	}
	lx->te = lx->pos;
}

static int
adv(struct parser *p)
{
	lex_next(&p->lx);
	return p->lx.t == T_ERR ? -1 : 0;
}

static int
fail(struct parser *p, const char *why)
{
	p->lx.t = T_ERR;
	p->lx.why = why;
	return -1;
}

static int
is_sp(const struct parser *p, int c)
{
	return p->lx.t == T_SPECIAL && p->lx.s[p->lx.ts] == c;
}

/* misplaced - the reason for the current token where an address should
 * start (start), or after a complete address */
static const char *
misplaced(const struct parser *p, int start)
{
	if (is_sp(p, '>'))
		return "unbalanced '>'";
	if (is_sp(p, ';'))
		return "unexpected ';'";
	if (is_sp(p, '@'))
		return start ? "missing local part" : "more than one '@'";
	if (start && p->lx.t == T_DLIT)
		return "domain literal without local part";
	if (start && is_sp(p, '<'))
		return "unexpected '<'";
	return start ? "address expected" : "junk after address";
}

/* add_token - the current token's text to the address, without FWS line
 * breaks; drop_ws also drops SP/HTAB (domain literals) */
static int
add_token(struct parser *p, int drop_ws)
{
	size_t i;

	for (i = p->lx.ts; i < p->lx.te; i++) {
		char c = p->lx.s[i];

		if (c == '\n' || (drop_ws && (c == ' ' || c == '\t')))
			continue;
		if (buf_addc(&p->a, c) < 0)
			return fail(p, "out of memory");
	}
	return 0;
}

static int
mark(struct parser *p, struct buf *where, size_t off)
{
	if (where != NULL && buf_add(where, &off, sizeof(off)) < 0)
		return fail(p, "out of memory");
	return 0;
}

/* list_comma - a comma between list elements: a place to fold */
static int
list_comma(struct parser *p)
{
	if (mark(p, p->commas, p->lx.ts) < 0)
		return -1;
	return adv(p);
}

struct phrase {
	size_t ntok;		/* words and dots */
	int local_ok;		/* word *("." word): obs-local-part */
	int display_ok;		/* word *(word / "."): obs-phrase */
	size_t end;		/* end of the last token */
};

/* phrase - the words and dots up to the next other token; their text,
 * without CFWS, goes to p->a */
static int
phrase(struct parser *p, struct phrase *ph)
{
	int last = 0;		/* 0 nothing yet, 1 a word, 2 a dot */

	ph->ntok = 0;
	ph->local_ok = ph->display_ok = 1;
	ph->end = p->lx.ts;
	buf_reset(&p->a);
	for (;;) {
		if (p->lx.t == T_ATOM || p->lx.t == T_QSTR) {
			if (last == 1)
				ph->local_ok = 0;
			last = 1;
		} else if (is_sp(p, '.')) {
			if (last != 1)
				ph->local_ok = 0;
			if (last == 0)
				ph->display_ok = 0;
			last = 2;
		} else
			break;
		if (add_token(p, 0) < 0)
			return -1;
		ph->ntok++;
		ph->end = p->lx.te;
		if (adv(p) < 0)
			return -1;
	}
	if (last != 1)
		ph->local_ok = 0;
	if (last == 0)
		ph->display_ok = 0;
	return 0;
}

/* domain - RFC 5322 3.4.1 domain after "@": dot-atom, obs-domain or a
 * domain literal (whitespace inside dropped) */
static int
domain(struct parser *p)
{
	if (p->lx.t == T_DLIT) {
		if (add_token(p, 1) < 0)
			return -1;
		return adv(p);
	}
	if (p->lx.t != T_ATOM)
		return fail(p, p->lx.t == T_END || is_sp(p, ',') ||
		    is_sp(p, ';') || is_sp(p, '>') ? "'@' without domain" :
		    "bad domain");
	for (;;) {
		if (add_token(p, 0) < 0 || adv(p) < 0)
			return -1;
		if (!is_sp(p, '.'))
			return 0;
		if (add_token(p, 0) < 0 || adv(p) < 0)
			return -1;
		if (p->lx.t != T_ATOM)
			return fail(p, "bad domain");
	}
}

/* emit - the address in p->a is complete; bare ones end at off */
static int
emit(struct parser *p, int bare, size_t off)
{
	if (bare && mark(p, p->ins, off) < 0)
		return -1;
	if (p->out != NULL && strlist_addn(p->out, p->a.p ? p->a.p : "",
	    p->a.len) < 0)
		return fail(p, "out of memory");
	return 0;
}

/* addr_tail - after a local part: "@" domain, or nothing (bare) */
static int
addr_tail(struct parser *p, const struct phrase *ph)
{
	if (!is_sp(p, '@'))
		return emit(p, 1, ph->end);
	if (add_token(p, 0) < 0 || adv(p) < 0 || domain(p) < 0)
		return -1;
	return emit(p, 0, 0);
}

/* angle_addr - RFC 5322 3.4 "<" addr-spec ">", with 4.4 obs-route
 * ("<@a,@b:u@d>") dropped; at "<" */
static int
angle_addr(struct parser *p)
{
	struct phrase ph;
	int commas = 0, bare = 1;

	if (adv(p) < 0)
		return -1;
	while (is_sp(p, ',')) {
		commas = 1;
		if (adv(p) < 0)
			return -1;
	}
	if (is_sp(p, '@')) {
		for (;;) {
			if (adv(p) < 0)
				return -1;
			buf_reset(&p->a);
			if (domain(p) < 0)
				return -1;
			while (is_sp(p, ','))
				if (adv(p) < 0)
					return -1;
			if (is_sp(p, '@'))
				continue;
			if (!is_sp(p, ':'))
				return fail(p, p->lx.t == T_END ?
				    "unbalanced '<'" : "bad route");
			if (adv(p) < 0)
				return -1;
			break;
		}
	} else if (commas)
		return fail(p, "bad route");
	if (phrase(p, &ph) < 0)
		return -1;
	if (ph.ntok == 0) {
		if (is_sp(p, '>'))
			return fail(p, "empty address <>");
		return fail(p, p->lx.t == T_END ? "unbalanced '<'" :
		    misplaced(p, 1));
	}
	if (!ph.local_ok)
		return fail(p, "bad local part");
	if (is_sp(p, '@')) {
		bare = 0;
		if (add_token(p, 0) < 0 || adv(p) < 0 || domain(p) < 0)
			return -1;
	}
	if (!is_sp(p, '>'))
		return fail(p, p->lx.t == T_END ? "unbalanced '<'" :
		    "expected '>'");
	if (emit(p, bare, ph.end) < 0)
		return -1;
	return adv(p);
}

static int address_list(struct parser *, int);

/*
 * address - RFC 5322 3.4 address.  A phrase comes first; what follows it
 * says what it was: "<" a display name, ":" a group name, "@" a local
 * part, anything else a bare local part.  Groups do not nest, so the
 * call of a group's list is the only re-entry.
 */
static int
address(struct parser *p, int in_group)
{
	struct phrase ph;

	if (phrase(p, &ph) < 0)
		return -1;
	if (is_sp(p, '<')) {
		if (ph.ntok > 0 && !ph.display_ok)
			return fail(p, "bad display name");
		return angle_addr(p);
	}
	if (is_sp(p, ':')) {
		if (in_group)
			return fail(p, "nested group");
		if (ph.ntok == 0)
			return fail(p, "group without a name");
		if (!ph.display_ok)
			return fail(p, "bad group name");
		return address_list(p, 1);
	}
	if (ph.ntok == 0)
		return fail(p, misplaced(p, 1));
	if (!ph.local_ok) {
		if (is_sp(p, '@') || !ph.display_ok)
			return fail(p, "bad local part");
		return fail(p, "display name without <address>");
	}
	return addr_tail(p, &ph);
}

/*
 * address_list - RFC 5322 3.4 address-list and 4.4 obs-addr-list, up to
 * the end of the text; or in_group, at the ":" of a group
 * (display-name ":" [group-list] ";"), the group's mailboxes up to its
 * ";".  Empty elements are skipped (4.4).
 */
static int
address_list(struct parser *p, int in_group)
{
	if (adv(p) < 0)
		return -1;
	for (;;) {
		if (in_group && is_sp(p, ';'))
			return adv(p);
		if (p->lx.t == T_END && in_group)
			return fail(p, "group not terminated by ';'");
		if (p->lx.t == T_END)
			return 0;
		if (is_sp(p, ',')) {
			if (list_comma(p) < 0)
				return -1;
			continue;
		}
		if (address(p, in_group) < 0)
			return -1;
		if (!is_sp(p, ',') && p->lx.t != T_END &&
		    !(in_group && is_sp(p, ';')))
			return fail(p, misplaced(p, 0));
	}
}

static void
parser_init(struct parser *p, const char *text, struct strlist *out,
    struct buf *ins, struct buf *commas)
{
	memset(p, 0, sizeof(*p));
	p->lx.s = text;
	p->lx.len = strlen(text);
	p->lx.t = T_END;
	p->out = out;
	p->ins = ins;
	p->commas = commas;
	buf_init(&p->a, 0);
}

int
addrlist_parse(const char *text, struct strlist *out, char *err,
    size_t errlen)
{
	struct parser p;
	size_t n0 = out->n;
	int rc;

	parser_init(&p, text, out, NULL, NULL);
	rc = address_list(&p, 0);
	if (rc < 0) {
		seterr(err, errlen, "%s", p.lx.why);
		while (out->n > n0)
			free(out->v[--out->n]);
	}
	buf_free(&p.a);
	return rc;
}

/* domain_why - why d is not a domain for mail (RFC 5321 4.1.2 Domain or
 * address-literal), or NULL; tmp holds a formatted reason */
static const char *
domain_why(const char *d, size_t len, char *tmp, size_t tmplen)
{
	size_t i, label = 0;

	if (len == 0)
		return "empty domain";
	if (d[0] == '[') {
		if (len < 3 || d[len - 1] != ']')
			return "bad domain literal";
		for (i = 1; i + 1 < len; i++) {
			unsigned char c = (unsigned char)d[i];

			if (c < 33 || c > 126 || c == '[' || c == ']' ||
			    c == '\\')
				return "bad domain literal";
		}
		return NULL;
	}
	if (len > DOMAIN_MAX)
		return "domain too long";
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)d[i];

		if (c == '.') {
			if (label == 0)
				return "empty domain label";
			if (d[i - 1] == '-')
				return "domain label ends with '-'";
			label = 0;
			continue;
		}
		if (c >= 0x80)
			return "non-ASCII domain";
		if (is_ctl(c) || c == '\t')
			return "control character";
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-')) {
			snprintf(tmp, tmplen,
			    "invalid character '%c' in domain", c);
			return tmp;
		}
		if (label == 0 && c == '-')
			return "domain label starts with '-'";
		if (++label > LABEL_MAX)
			return "domain label too long";
	}
	if (label == 0)
		return "empty domain label";
	if (d[len - 1] == '-')
		return "domain label ends with '-'";
	return NULL;
}

static size_t
get_off(const struct buf *b, size_t i)
{
	size_t off;

	memcpy(&off, b->p + i * sizeof(off), sizeof(off));
	return off;
}

/* fold_at - what to insert after the list comma at c so that a new line
 * starts there, or NULL where the rest of the line is blank */
static const char *
fold_at(const char *s, size_t len, size_t c)
{
	size_t k = c + 1;

	while (k < len && (s[k] == ' ' || s[k] == '\t'))
		k++;
	if (k == len || s[k] == '\n')
		return NULL;
	return s[c + 1] == ' ' || s[c + 1] == '\t' ? "\n" : "\n ";
}

/* build - text with "@domain" at each offset of ins, and with a fold
 * after each comma of commas (when not NULL) */
static int
build(const char *s, size_t len, const char *dom, const struct buf *ins,
    const struct buf *commas, struct buf *out)
{
	size_t ni = ins->len / sizeof(size_t), i = 0;
	size_t nc = commas ? commas->len / sizeof(size_t) : 0, j = 0;
	size_t pos = 0, at;
	const char *fold;

	while (i < ni || j < nc) {
		if (i < ni &&
		    (j == nc || get_off(ins, i) <= get_off(commas, j))) {
			at = get_off(ins, i++);
			if (buf_add(out, s + pos, at - pos) < 0 ||
			    buf_addc(out, '@') < 0 || buf_adds(out, dom) < 0)
				return -1;
		} else {
			at = get_off(commas, j++) + 1;
			if ((fold = fold_at(s, len, at - 1)) == NULL)
				continue;
			if (buf_add(out, s + pos, at - pos) < 0 ||
			    buf_adds(out, fold) < 0)
				return -1;
		}
		pos = at;
	}
	return buf_add(out, s + pos, len - pos);
}

/* longest_line - the longest line of b, the first counting first more */
static size_t
longest_line(const struct buf *b, size_t first)
{
	size_t i, line = first, max = 0;

	for (i = 0; i < b->len; i++) {
		if (b->p[i] == '\n') {
			if (line > max)
				max = line;
			line = 0;
		} else
			line++;
	}
	return line > max ? line : max;
}

/* What qualify made of an address list. */
enum qualify_status {
	QUAL_OK,	/* appended to out */
	QUAL_BAD,	/* a bad list or domain, or a line that cannot be
			 * folded */
	QUAL_FULL	/* out is full (its cap, or no memory) */
};

/*
 * qualify - text with "@domain" after each bare addr-spec, appended to
 * out; *n is the number of addresses qualified.  With fold, a result
 * with a line over LINE_MAX_OCTETS (the first line carrying `first` more
 * octets, for "Name:") is folded after each list comma, and given up if
 * that is not enough.  Unless QUAL_OK, out is left as it was.
 */
static enum qualify_status
qualify(const char *text, const char *dom, size_t first, int fold,
    struct buf *out, size_t *n)
{
	struct parser p;
	struct buf ins, commas;
	char tmp[64];
	size_t len = strlen(text), out0 = out->len;
	enum qualify_status rc = QUAL_BAD;

	*n = 0;
	buf_init(&ins, 0);
	buf_init(&commas, 0);
	if (dom == NULL || domain_why(dom, strlen(dom), tmp, sizeof(tmp)))
		return QUAL_BAD;
	parser_init(&p, text, NULL, &ins, &commas);
	if (address_list(&p, 0) < 0)
		goto out;
	rc = QUAL_FULL;
	if (build(text, len, dom, &ins, NULL, out) < 0)
		goto out;
	if (fold && longest_line(out, first) > LINE_MAX_OCTETS) {
		out->len = out0;
		if (build(text, len, dom, &ins, &commas, out) < 0)
			goto out;
		rc = QUAL_BAD;
		if (longest_line(out, first) > LINE_MAX_OCTETS)
			goto out;
	}
	rc = QUAL_OK;
	*n = ins.len / sizeof(size_t);
out:
	if (rc != QUAL_OK && out->p != NULL) {
		out->len = out0;
		out->p[out0] = '\0';
	}
	buf_free(&p.a);
	buf_free(&ins);
	buf_free(&commas);
	return rc;
}

int
addrlist_qualify(const char *text, const char *domain, struct buf *out)
{
	size_t n;

	if (qualify(text, domain, 0, 0, out, &n) == QUAL_OK)
		return 0;
	buf_adds(out, text);
	return -1;
}

/* addr_err - "invalid address "ADDR": why", the address made printable */
static int
addr_err(char *err, size_t errlen, const char *addr, size_t len,
    const char *why)
{
	char pa[ERR_QUOTE_MAX + 1];

	printable(pa, sizeof(pa), addr, len);
	seterr(err, errlen, "invalid address \"%s%s\": %s", pa,
	    len > ERR_QUOTE_MAX ? "..." : "", why);
	return -1;
}

/*
 * addr_check - RFC 5321 4.1.2 Mailbox, leniently: the local part is a
 * quoted string, or any octets but controls, SP and the RFC 5322
 * specials other than "." (so "a..b" and 8-bit octets pass, as in
 * Postfix); the domain is strict, ASCII LDH labels or an address literal.
 */
int
addr_check(const char *addr, int null_ok, char *err, size_t errlen)
{
	size_t len = strlen(addr), i, at;
	const char *why;
	char tmp[64];

	if (len == 0) {
		if (null_ok)
			return 0;
		return addr_err(err, errlen, addr, len, "empty address");
	}
	for (i = 0; i < len; i++)
		if ((unsigned char)addr[i] < 0x20 || addr[i] == 0x7f)
			return addr_err(err, errlen, addr, len,
			    "control character");
	if (len >= ADDR_MAX) {
		snprintf(tmp, sizeof(tmp), "too long (%zu octets, limit %d)",
		    len, ADDR_MAX - 1);
		return addr_err(err, errlen, addr, len, tmp);
	}
	if (addr[0] == '"') {
		for (i = 1; i < len && addr[i] != '"'; i++)
			if (addr[i] == '\\')
				i++;
		if (i >= len)
			return addr_err(err, errlen, addr, len,
			    "unbalanced '\"'");
		if (i == 1)
			return addr_err(err, errlen, addr, len,
			    "empty local part");
		at = i + 1;
		if (at < len && addr[at] != '@')
			return addr_err(err, errlen, addr, len,
			    "junk after quoted local part");
	} else {
		for (i = 0; i < len && addr[i] != '@'; i++) {
			if (strchr(" <>()[]\\,;:\"", addr[i]) != NULL) {
				snprintf(tmp, sizeof(tmp),
				    "invalid character '%c'", addr[i]);
				return addr_err(err, errlen, addr, len, tmp);
			}
		}
		if (i == 0)
			return addr_err(err, errlen, addr, len,
			    "empty local part");
		at = i;
	}
	if (at >= len)
		return 0;		/* bare local part, qualified later */
	if (memchr(addr + at + 1, '@', len - at - 1) != NULL)
		return addr_err(err, errlen, addr, len, "more than one '@'");
	why = domain_why(addr + at + 1, len - at - 1, tmp, sizeof(tmp));
	if (why != NULL)
		return addr_err(err, errlen, addr, len, why);
	return 0;
}

/* addr_domain - after the last "@" that is not inside a quoted local part */
const char *
addr_domain(const char *addr)
{
	const char *at = NULL, *p;
	int q = 0;

	for (p = addr; *p != '\0'; p++) {
		if (q && *p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '"')
			q = !q;
		else if (!q && *p == '@')
			at = p;
	}
	return at ? at + 1 : NULL;
}

/* addr_qualify - "" (the null sender) stays ""; -1 also when a domain is
 * needed and there is none */
int
addr_qualify(const char *addr, const char *domain, char *out, size_t outlen)
{
	int n;

	if (outlen == 0)
		return -1;
	if (addr[0] == '\0' || addr_domain(addr) != NULL)
		n = snprintf(out, outlen, "%s", addr);
	else if (domain == NULL || domain[0] == '\0')
		return -1;
	else
		n = snprintf(out, outlen, "%s@%s", addr, domain);
	if (n < 0 || (size_t)n >= outlen)
		return -1;
	return 0;
}

/*
 * The message.
 */

/*
 * msg_rcpts - RFC 5322 3.6.3 destination fields, or the 3.6.6 Resent-
 * set when there is any Resent- field; every occurrence, in header order.
 * Each address must also pass addr_check: it goes into the envelope.
 */
int
msg_rcpts(const struct header *h, struct strlist *out, char *err,
    size_t errlen)
{
	static const char *const plain[] = { "To", "Cc", "Bcc" };
	static const char *const resent[] = { "Resent-To", "Resent-Cc",
	    "Resent-Bcc" };
	const char *const *set = plain;
	char why[ERRTEXT_MAX];
	size_t i, k, n0 = out->n, first;

	for (i = 0; i < h->n; i++)
		if (has_prefix(h->f[i].name, "Resent-"))
			set = resent;
	for (i = 0; i < h->n; i++) {
		const char *name = h->f[i].name;

		if (!name_eq(name, set[0]) && !name_eq(name, set[1]) &&
		    !name_eq(name, set[2]))
			continue;
		first = out->n;
		if (addrlist_parse(h->f[i].body, out, why, sizeof(why)) < 0)
			goto bad;
		for (k = first; k < out->n; k++)
			if (addr_check(out->v[k], 0, why, sizeof(why)) < 0)
				goto bad;
		if (out->n - n0 > RCPT_MAX) {
			seterr(err, errlen, "too many recipients in the "
			    "header (limit %d)", RCPT_MAX);
			goto fail;
		}
	}
	return 0;
bad:
	seterr(err, errlen, "bad address in %s: %s", h->f[i].name, why);
fail:
	while (out->n > n0)
		free(out->v[--out->n]);
	return -1;
}

/* date_body - " " and the RFC 5322 date of t, as a field body */
static int
date_body(time_t t, char *out, size_t outlen)
{
	if (outlen < 2)
		return -1;
	out[0] = ' ';
	return rfc5322_date(t, out + 1, outlen - 1);
}

/* dot_atom_ok - RFC 5322 3.2.3 dot-atom-text, ASCII only (3.6.4 msg-id) */
static int
dot_atom_ok(const char *s)
{
	size_t i;

	if (s == NULL || s[0] == '\0' || s[0] == '.')
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.' ? s[i + 1] == '.' || s[i + 1] == '\0' :
		    c >= 0x80 || !is_atext(c))
			return 0;
	}
	return 1;
}

/* display_name - -F made safe: control characters dropped, HTAB made a
 * space, outer blanks trimmed, a quoted-string (RFC 5322 3.2.4) when it
 * has specials; nothing when nothing is left */
static int
display_name(const char *fullname, struct buf *b)
{
	size_t i, s = 0, e = 0;
	int quote = 0, seen = 0;

	for (i = 0; fullname[i] != '\0'; i++) {
		unsigned char c = (unsigned char)fullname[i];

		if (c == ' ' || c == '\t' || is_ctl(c))
			continue;
		if (!seen)
			s = i;
		seen = 1;
		e = i + 1;
		if (c < 0x80 && !is_atext(c))
			quote = 1;
	}
	if (!seen)
		return 0;
	if (quote && buf_addc(b, '"') < 0)
		return -1;
	for (i = s; i < e; i++) {
		unsigned char c = (unsigned char)fullname[i];

		if (is_ctl(c))
			continue;
		if (c == '\t')
			c = ' ';
		if (quote && (c == '"' || c == '\\') && buf_addc(b, '\\') < 0)
			return -1;
		if (buf_addc(b, c) < 0)
			return -1;
	}
	if (quote && buf_addc(b, '"') < 0)
		return -1;
	return 0;
}

/* make_from - RFC 5322 3.6.2 From: for a message without one */
static int
make_from(struct header *h, const struct fixup *fx, char *err,
    size_t errlen)
{
	char addr[ADDR_MAX], why[ERRTEXT_MAX];
	const char *a = fx->sender != NULL && fx->sender[0] != '\0' ?
	    fx->sender : fx->user;
	const char *bad = NULL;
	struct buf b;

	buf_init(&b, 0);
	if (a == NULL || a[0] == '\0')
		bad = "no sender or user";
	else if (addr_qualify(a, fx->qualify_domain, addr, sizeof(addr)) < 0)
		bad = "cannot qualify address";
	else if (addr_check(addr, 0, why, sizeof(why)) < 0)
		bad = why;
	else if (buf_addc(&b, ' ') < 0 || (fx->fullname != NULL &&
	    display_name(fx->fullname, &b) < 0) || (b.len > 1 ?
	    buf_printf(&b, " <%s>", addr) : buf_adds(&b, addr)) < 0)
		bad = "out of memory";
	else if (b.len + sizeof("From:") - 1 > LINE_MAX_OCTETS)
		bad = "full name too long";
	else if (header_append(h, "From", b.p) < 0)
		bad = "out of memory";
	if (bad != NULL)
		seterr(err, errlen, "cannot make From: %s", bad);
	buf_free(&b);
	return bad != NULL ? -1 : 0;
}

/* make_date - RFC 5322 3.6.1 Date: for a message without one */
static int
make_date(struct header *h, time_t now, char *err, size_t errlen)
{
	char line[LINE_MAX_OCTETS + 1];

	if (date_body(now, line, sizeof(line)) < 0)
		return seterr(err, errlen, "cannot make Date: bad time");
	if (header_append(h, "Date", line) < 0)
		return seterr(err, errlen, "out of memory");
	return 0;
}

/* make_msgid - RFC 5322 3.6.4 Message-ID: for a message without one */
static int
make_msgid(struct header *h, const struct fixup *fx, char *err,
    size_t errlen)
{
	char line[LINE_MAX_OCTETS + 1];
	int n;

	if (!dot_atom_ok(fx->msgid) || !dot_atom_ok(fx->hostname))
		return seterr(err, errlen, "cannot make Message-ID: bad id or "
		    "host name");
	n = snprintf(line, sizeof(line), " <%s@%s>", fx->msgid, fx->hostname);
	if (n < 0 || (size_t)n + sizeof("Message-ID:") - 1 > LINE_MAX_OCTETS)
		return seterr(err, errlen, "cannot make Message-ID: too long");
	if (header_append(h, "Message-ID", line) < 0)
		return seterr(err, errlen, "out of memory");
	return 0;
}

/*
 * qualify_fields - bare local parts in the originator and destination
 * fields get dom, as msg_fixup says; a header that would grow past
 * FIXUP_MAX is an error (err set, -1).
 */
static int
qualify_fields(struct header *h, const char *dom, char *err, size_t errlen)
{
	static const char *const addrfields[] = {
		"From", "To", "Cc", "Reply-To", "Sender", "Resent-From",
		"Resent-To", "Resent-Cc", "Resent-Reply-To", "Resent-Sender",
		NULL
	};
	enum qualify_status q;
	struct buf b;
	size_t i, k, n, old, total = 0;
	int rc = 0;

	buf_init(&b, FIXUP_MAX);
	for (i = 0; i < h->n; i++)
		total += strlen(h->f[i].name) + strlen(h->f[i].body) + 3;
	for (i = 0; rc == 0 && dom != NULL && i < h->n; i++) {
		for (k = 0; addrfields[k] != NULL &&
		    !name_eq(h->f[i].name, addrfields[k]); k++)
			;
		if (addrfields[k] == NULL)
			continue;
		buf_reset(&b);
		q = qualify(h->f[i].body, dom, strlen(h->f[i].name) + 1, 1, &b,
		    &n);
		if (q == QUAL_BAD || (q == QUAL_OK && n == 0))
			continue;
		old = strlen(h->f[i].body);
		if (q == QUAL_FULL || total - old + b.len > FIXUP_MAX) {
			seterr(err, errlen, "header too big after qualifying "
			    "addresses (limit %d octets)", FIXUP_MAX);
			rc = -1;
		} else if (set_body(h, i, b.p, b.len) < 0) {
			seterr(err, errlen, "out of memory");
			rc = -1;
		} else
			total = total - old + b.len;
	}
	buf_free(&b);
	return rc;
}

/*
 * msg_fixup - Bcc, Resent-Bcc and Return-Path never leave the machine;
 * bare local parts in the originator and destination fields (RFC 5322
 * 3.6.2, 3.6.3, 3.6.6) get fx->qualify_domain, folding the field after
 * list commas when a line would grow past LINE_MAX_OCTETS (a field that
 * does not parse, or cannot be folded, stays as it is; a header that
 * would grow past FIXUP_MAX is an error); Date:, Message-ID:
 * and From: are added, in that order, when missing (3.6.1, 3.6.4, 3.6.2).
 * On error the header may be half done.
 */
int
msg_fixup(struct header *h, const struct fixup *fx, char *err,
    size_t errlen)
{
	header_remove(h, "Bcc");
	header_remove(h, "Resent-Bcc");
	header_remove(h, "Return-Path");
	if (qualify_fields(h, fx->qualify_domain, err, errlen) < 0 ||
	    (header_count(h, "Date") == 0 &&
	    make_date(h, fx->now, err, errlen) < 0) ||
	    (header_count(h, "Message-ID") == 0 &&
	    make_msgid(h, fx, err, errlen) < 0) ||
	    (header_count(h, "From") == 0 && make_from(h, fx, err, errlen) < 0))
		return -1;
	return 0;
}
