/*
 * fuzz_mime8.c - libFuzzer entry point for mime.c's 8-bit downgrade
 * (mime8_new, mime8_line, mime8_end).
 *
 * The input is split into lines (LF, a CR before it dropped, as the
 * driver does) and converted.  Besides memory errors (ASan/UBSan) it
 * checks, and abort()s when one fails:
 *   - the output is CRLF lines of at most 998 octets, with no NUL and no
 *     bare CR or LF (also when the conversion failed half way);
 *   - read by an independent MIME walker (below: recursive over line
 *     ranges, where mime.c is a streaming state machine), the output
 *     has the same entities as the input, 8-bit octets only in header
 *     blocks, no 8bit or binary label, and every leaf decodes to the
 *     octets the input's leaf decodes to (identity, quoted-printable
 *     read leniently, base64 as its alphabet);
 *   - converting the output again changes nothing (unless a limit is
 *     hit on the way: the added fields make headers a little longer).
 *
 *   clang -g -O1 -std=c11 -D_GNU_SOURCE -I. \
 *     -fsanitize=fuzzer,address,undefined -o t/fuzz_mime8 \
 *     t/fuzz_mime8.c mime.c util.c
 *   ./t/fuzz_mime8 -max_len=4096 t/corpus/mime8
 * (add -DMIME8_HOLD_MAX=512 -DMIME8_HEADER_MAX=2048 so that the limits
 * are reached with short inputs.)
 *
 * t/mime8test.c includes this file with FUZZ_MIME8_NO_MAIN defined, so
 * that "t/mime8test check FILE..." replays the corpus in make check.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mxsend.h"
#include "t/testlib.h"

/* recursion of the walker; mime.c stops at 20 */
#define CK_DEPTH_MAX 64

struct ck_line {
	const char *p;
	size_t len;
};

struct ck_lines {
	struct ck_line *v;
	size_t n, cap;
};

enum { CK_NONE, CK_7BIT, CK_8BIT, CK_BINARY, CK_QP, CK_BASE64, CK_OTHER };

struct ck_leaf {
	int cte;
	size_t a, b;		/* body lines */
};

struct ck_walk {
	const struct ck_lines *l;
	int output;		/* check the output's properties */
	struct ck_leaf *leaf;
	size_t n, cap;
};

static void *
ck_grow(void *v, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return v;
	*cap = *cap ? *cap * 2 : 64;
	v = realloc(v, *cap * size);
	fuzz_assert(v != NULL);
	return v;
}

static void
ck_push(struct ck_lines *l, const char *p, size_t len)
{
	l->v = ck_grow(l->v, &l->cap, l->n, sizeof(*l->v));
	l->v[l->n].p = p;
	l->v[l->n++].len = len;
}

/* ck_split_input - lines on LF, a CR before it dropped, the last line
 * taken even without an LF */
static void
ck_split_input(const char *s, size_t n, struct ck_lines *l)
{
	const char *nl;
	size_t len;

	while (n > 0) {
		nl = memchr(s, '\n', n);
		len = nl ? (size_t)(nl - s) : n;
		ck_push(l, s, len > 0 && nl && s[len - 1] == '\r' ? len - 1 :
		    len);
		if (nl == NULL)
			break;
		n -= len + 1;
		s += len + 1;
	}
}

/* ck_split_output - the output must be CRLF lines of at most 998
 * octets without NUL, CR or LF inside */
static void
ck_split_output(const char *s, size_t n, struct ck_lines *l)
{
	size_t i, start = 0;

	for (i = 0; i < n; i++) {
		fuzz_assert(s[i] != '\0');
		if (s[i] == '\r') {
			fuzz_assert(i + 1 < n && s[i + 1] == '\n');
			fuzz_assert(i - start <= LINE_MAX_OCTETS);
			if (l != NULL)
				ck_push(l, s + start, i - start);
			start = i + 2;
			i++;
		} else
			fuzz_assert(s[i] != '\n');
	}
	fuzz_assert(start == n);
}

/* ck_convert - the lines through mime8; 0 or -1 */
static int
ck_convert(const struct ck_lines *l, struct buf *out)
{
	struct mime8 *m = mime8_new();
	size_t i;
	int rc = 0;

	fuzz_assert(m != NULL);
	for (i = 0; i < l->n && rc == 0; i++)
		rc = mime8_line(m, l->v[i].p, l->v[i].len, out);
	if (rc == 0)
		rc = mime8_end(m, out);
	else
		fuzz_assert(mime8_end(m, out) == -1);	/* stays failed */
	mime8_free(m);
	return rc;
}

static int
ck_wsp(int c)
{
	return c == ' ' || c == '\t';
}

/* ck_field - "name:" (white space allowed before the colon): the length
 * of name, or 0 */
static size_t
ck_field(const struct ck_line *x)
{
	size_t i, n;

	for (i = 0; i < x->len; i++) {
		unsigned char c = (unsigned char)x->p[i];

		if (c == ':' || c <= ' ' || c >= 0x7f)
			break;
	}
	n = i;
	while (i < x->len && ck_wsp(x->p[i]))
		i++;
	return n > 0 && i < x->len && x->p[i] == ':' ? n : 0;
}

static int
ck_named(const struct ck_line *x, const char *name)
{
	size_t n = ck_field(x);

	return n == strlen(name) && strncasecmp(x->p, name, n) == 0;
}

/* ck_value - field value at line i, continuation lines appended, with
 * NUL, CR and LF as spaces (what mime.c keeps of them) */
static char *
ck_value(const struct ck_lines *l, size_t i, size_t h, size_t *len)
{
	struct buf v;
	size_t k;
	const char *c = memchr(l->v[i].p, ':', l->v[i].len) + 1;

	buf_init(&v, 0);
	fuzz_assert(buf_add(&v, c, l->v[i].len - (size_t)(c - l->v[i].p)) == 0);
	for (i++; i < h && l->v[i].len > 0 && ck_wsp(l->v[i].p[0]); i++)
		fuzz_assert(buf_add(&v, l->v[i].p, l->v[i].len) == 0);
	fuzz_assert(buf_add(&v, "", 0) == 0);
	for (k = 0; k < v.len; k++)
		if (v.p[k] == '\0' || v.p[k] == '\r' || v.p[k] == '\n')
			v.p[k] = ' ';
	*len = v.len;
	return v.p;
}

/*
 * A Content-Type reader of its own: the value with comments removed
 * first (outside quoted strings), then "type/subtype" and ";"-separated
 * "name=value" parameters, a value a token or a quoted string.
 * Parameters stop at the first that is followed by anything but ';'.
 */
static size_t
ck_uncomment(const char *s, size_t n, char *d)
{
	size_t i, o = 0;
	int depth = 0, q = 0;

	for (i = 0; i < n; i++) {
		char c = s[i];

		if (depth > 0) {
			if (c == '\\')
				i++;
			else if (c == '(')
				depth++;
			else if (c == ')' && --depth == 0)
				d[o++] = ' ';
			continue;
		}
		if (q) {
			d[o++] = c;
			if (c == '\\' && i + 1 < n)
				d[o++] = s[++i];
			else if (c == '"')
				q = 0;
		} else if (c == '(')
			depth = 1;
		else {
			if (c == '"')
				q = 1;
			d[o++] = c;
		}
	}
	return o;
}

static int
ck_tchar(int c)
{
	return c > ' ' && c < 0x7f && strchr("()<>@,;:\\\"/[]?=", c) == NULL;
}

enum { CK_LEAF, CK_MULTI, CK_RFC822 };

struct ck_type {
	int kind, digest;
	char bound[128];
	size_t blen;
};

static void
ck_content_type(const char *s0, size_t n0, struct ck_type *t)
{
	char *s = malloc(n0 + 1), *e, *p, *ty, *st, *nm, val[128];
	size_t tl, sl, nl, vl, keep;
	int got = 0, q;

	fuzz_assert(s != NULL);
	e = s + ck_uncomment(s0, n0, s);
	t->kind = CK_LEAF;
	for (p = s; p < e && ck_wsp(*p); p++)
		;
	for (ty = p; p < e && ck_tchar(*p); p++)
		;
	tl = (size_t)(p - ty);
	while (p < e && ck_wsp(*p))
		p++;
	if (tl == 0 || p == e || *p != '/')
		goto out;
	for (p++; p < e && ck_wsp(*p); p++)
		;
	for (st = p; p < e && ck_tchar(*p); p++)
		;
	sl = (size_t)(p - st);
	if (sl == 0)
		goto out;
	if (tl == 7 && strncasecmp(ty, "message", 7) == 0 && sl == 6 &&
	    strncasecmp(st, "rfc822", 6) == 0) {
		t->kind = CK_RFC822;
		goto out;
	}
	if (tl != 9 || strncasecmp(ty, "multipart", 9) != 0)
		goto out;
	t->digest = sl == 6 && strncasecmp(st, "digest", 6) == 0;
	for (;;) {
		while (p < e && ck_wsp(*p))
			p++;
		if (p == e || *p != ';')
			break;
		for (p++; p < e && ck_wsp(*p); p++)
			;
		for (nm = p; p < e && ck_tchar(*p); p++)
			;
		nl = (size_t)(p - nm);
		while (p < e && ck_wsp(*p))
			p++;
		if (nl == 0 || p == e || *p != '=') {
			q = 0;
			/* junk: on to the next ';' outside quotes */
			for (; p < e && (q || *p != ';'); p++)
				if (q && *p == '\\' && p + 1 < e)
					p++;
				else if (*p == '"')
					q = !q;
			continue;
		}
		for (p++; p < e && ck_wsp(*p); p++)
			;
		vl = keep = 0;
		if (p < e && *p == '"') {
			for (p++; p < e && *p != '"'; p++) {
				if (*p == '\\' && p + 1 < e)
					p++;
				if (vl < sizeof(val))
					val[vl] = *p;
				if (!ck_wsp(*p))
					keep = vl + 1;
				vl++;
			}
			if (p == e)
				continue;
			p++;
		} else
			for (; p < e && ck_tchar(*p); p++) {
				if (vl < sizeof(val))
					val[vl] = *p;
				keep = ++vl;
			}
		if (got || nl != 8 || strncasecmp(nm, "boundary", 8) != 0)
			continue;
		got = 1;
		/* mime.c fails on longer ones; a walk only follows success */
		fuzz_assert(keep <= 70);
		memcpy(t->bound, val, keep);
		t->blen = keep;
	}
	if (got && t->blen > 0)
		t->kind = CK_MULTI;
out:
	free(s);
}

static int
ck_cte(const char *s, size_t n)
{
	static const char *const names[] = {
		"7bit", "8bit", "binary", "quoted-printable", "base64"
	};
	static const int codes[] = {
		CK_7BIT, CK_8BIT, CK_BINARY, CK_QP, CK_BASE64
	};
	char *u = malloc(n + 1);
	size_t a, b, i, k;
	int r = CK_OTHER;

	fuzz_assert(u != NULL);
	k = ck_uncomment(s, n, u);
	for (a = 0; a < k && ck_wsp(u[a]); a++)
		;
	for (b = k; b > a && ck_wsp(u[b - 1]); b--)
		;
	for (i = 0; i < 5; i++)
		if (b - a == strlen(names[i]) &&
		    strncasecmp(u + a, names[i], b - a) == 0)
			r = codes[i];
	free(u);
	return r;
}

static int
ck_has8(const struct ck_line *x)
{
	size_t i;

	for (i = 0; i < x->len; i++)
		if ((unsigned char)x->p[i] >= 0x80)
			return 1;
	return 0;
}

/* ck_delim - 1 open, 2 close delimiter of bound, 0 neither */
static int
ck_delim(const struct ck_line *x, const char *bound, size_t blen)
{
	size_t j;
	int r = 1;

	if (x->len < 2 + blen || x->p[0] != '-' || x->p[1] != '-' ||
	    memcmp(x->p + 2, bound, blen) != 0)
		return 0;
	j = 2 + blen;
	if (x->len - j >= 2 && x->p[j] == '-' && x->p[j + 1] == '-') {
		j += 2;
		r = 2;
	}
	for (; j < x->len; j++)
		if (!ck_wsp(x->p[j]))
			return 0;
	return r;
}

/* ck_entity - the entity in lines [a, b) */
static void
ck_entity(struct ck_walk *w, size_t a, size_t b, int digest, int depth)
{
	const struct ck_lines *l = w->l;
	struct ck_type t;
	size_t i, h, bs, vlen, part = 0;
	int cte = CK_NONE, ct = 0, cte_seen = 0, inpart = 0, d;
	char *v;

	fuzz_assert(depth <= CK_DEPTH_MAX);
	memset(&t, 0, sizeof(t));
	for (i = a; i < b; i++) {
		const struct ck_line *x = &l->v[i];

		if (x->len == 0 || !(ck_wsp(x->p[0]) || ck_field(x) > 0))
			break;
	}
	h = i;
	bs = h < b && l->v[h].len == 0 ? h + 1 : h;
	for (i = a; i < h; i++) {
		if (!ct && ck_named(&l->v[i], "content-type")) {
			ct = 1;
			v = ck_value(l, i, h, &vlen);
			ck_content_type(v, vlen, &t);
			free(v);
		} else if (!cte_seen &&
		    ck_named(&l->v[i], "content-transfer-encoding")) {
			cte_seen = 1;
			v = ck_value(l, i, h, &vlen);
			cte = ck_cte(v, vlen);
			free(v);
		}
	}
	if (!ct && digest)
		t.kind = CK_RFC822;
	if (w->output && t.kind != CK_LEAF)
		fuzz_assert(cte != CK_8BIT && cte != CK_BINARY);
	if (t.kind == CK_RFC822) {
		ck_entity(w, bs, b, 0, depth + 1);
		return;
	}
	if (t.kind == CK_MULTI) {
		for (i = bs; i < b; i++) {
			d = ck_delim(&l->v[i], t.bound, t.blen);
			if (d == 0) {
				if (!inpart && w->output)	/* preamble */
					fuzz_assert(!ck_has8(&l->v[i]));
				continue;
			}
			if (inpart)
				ck_entity(w, part, i, t.digest, depth + 1);
			inpart = d == 1;
			part = i + 1;
			if (d == 2)
				break;
		}
		if (inpart)
			ck_entity(w, part, b, t.digest, depth + 1);
		else if (w->output)			/* epilogue */
			for (i++; i < b; i++)
				fuzz_assert(!ck_has8(&l->v[i]));
		return;
	}
	if (w->output) {
		fuzz_assert(cte != CK_8BIT && cte != CK_BINARY);
		for (i = bs; i < b; i++)
			fuzz_assert(!ck_has8(&l->v[i]));
	}
	w->leaf = ck_grow(w->leaf, &w->cap, w->n, sizeof(*w->leaf));
	w->leaf[w->n].cte = cte;
	w->leaf[w->n].a = bs;
	w->leaf[w->n++].b = b;
}

static int
ck_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* ck_decode - a leaf's content as cte says (lenient, as readers are) */
static void
ck_decode(const struct ck_lines *l, size_t a, size_t b, int cte,
    struct buf *d)
{
	size_t i, k, n;
	const char *p;
	int soft;

	buf_init(d, 0);
	for (i = a; i < b; i++) {
		p = l->v[i].p;
		n = l->v[i].len;
		if (cte == CK_BASE64) {
			for (k = 0; k < n; k++)
				if ((p[k] >= 'A' && p[k] <= 'Z') ||
				    (p[k] >= 'a' && p[k] <= 'z') ||
				    (p[k] >= '0' && p[k] <= '9') ||
				    p[k] == '+' || p[k] == '/' || p[k] == '=')
					fuzz_assert(buf_addc(d, p[k]) == 0);
			continue;
		}
		if (cte != CK_QP) {
			fuzz_assert(buf_add(d, p, n) == 0);
			if (i + 1 < b)
				fuzz_assert(buf_add(d, "\r\n", 2) == 0);
			continue;
		}
		while (n > 0 && ck_wsp(p[n - 1]))
			n--;
		soft = n > 0 && p[n - 1] == '=';
		if (soft)
			n--;
		for (k = 0; k < n; k++) {
			if (p[k] == '=' && k + 2 < n &&
			    ck_hexval(p[k + 1]) >= 0 && ck_hexval(p[k + 2]) >= 0) {
				fuzz_assert(buf_addc(d, ck_hexval(p[k + 1]) * 16 +
				    ck_hexval(p[k + 2])) == 0);
				k += 2;
			} else
				fuzz_assert(buf_addc(d, p[k]) == 0);
		}
		if (!soft && i + 1 < b)
			fuzz_assert(buf_add(d, "\r\n", 2) == 0);
	}
	fuzz_assert(buf_add(d, "", 0) == 0);
}

/* ck_same_leaf - output leaf o holds what input leaf i held */
static void
ck_same_leaf(const struct ck_lines *li, const struct ck_leaf *i,
    const struct ck_lines *lo, const struct ck_leaf *o)
{
	struct buf di, dout;
	int icte = i->cte;

	if (icte == CK_QP || icte == CK_BASE64)
		fuzz_assert(o->cte == icte);
	else if (icte == CK_8BIT || icte == CK_BINARY)
		fuzz_assert(o->cte == CK_QP);
	else {
		fuzz_assert(o->cte == icte || o->cte == CK_QP);
		icte = CK_NONE;	/* identity */
	}
	ck_decode(li, i->a, i->b, icte, &di);
	ck_decode(lo, o->a, o->b, o->cte, &dout);
	fuzz_assert(di.len == dout.len);
	fuzz_assert(memcmp(di.p, dout.p, di.len) == 0);
	buf_free(&di);
	buf_free(&dout);
}

/* mime8_check - convert one input and check everything above; 0 */
static int
mime8_check(const uint8_t *data, size_t size)
{
	struct ck_lines in = { 0 }, out = { 0 };
	struct ck_walk wi = { 0 }, wo = { 0 };
	struct buf o1, o2;
	size_t k;
	int rc;

	buf_init(&o1, 0);
	buf_init(&o2, 0);
	ck_split_input((const char *)data, size, &in);
	rc = ck_convert(&in, &o1);
	ck_split_output(o1.p ? o1.p : "", o1.len, rc == 0 ? &out : NULL);
	if (rc < 0)
		goto done;

	wi.l = &in;
	ck_entity(&wi, 0, in.n, 0, 0);
	wo.l = &out;
	wo.output = 1;
	ck_entity(&wo, 0, out.n, 0, 0);
	fuzz_assert(wi.n == wo.n);
	for (k = 0; k < wi.n; k++)
		ck_same_leaf(&in, &wi.leaf[k], &out, &wo.leaf[k]);

	if (ck_convert(&out, &o2) == 0) {
		fuzz_assert(o2.len == o1.len);
		fuzz_assert(o1.len == 0 || memcmp(o1.p, o2.p, o1.len) == 0);
	}
done:
	free(in.v);
	free(out.v);
	free(wi.leaf);
	free(wo.leaf);
	buf_free(&o1);
	buf_free(&o2);
	return 0;
}

#ifndef FUZZ_MIME8_NO_MAIN
FUZZ_ENTRY(mime8_check)
#endif
