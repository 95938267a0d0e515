/*
 * mime.c - MIME structure, and the 8-bit to 7-bit conversion for a
 * server without 8BITMIME (below).
 *
 * Security: all of this is pure: no I/O, bounded by the limits below.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mxsend.h"

/*
 * 8-bit to 7-bit downgrade (RFC 6152 3, RFC 2045, RFC 2046), for a server
 * that does not offer 8BITMIME.  A streaming converter in the manner of
 * Postfix's mime_state: one line in, converted lines out, no I/O.
 *
 * Each entity's header block is held until its empty line and then
 * parsed: Content-Type (type, subtype, boundary), Content-Transfer-
 * Encoding, MIME-Version; the first of each counts.  Content-Type is
 * honoured with or without MIME-Version, as Postfix, Python and the
 * common readers do; without one an entity is text/plain
 * (message/rfc822 in multipart/digest, RFC 2046 5.1.5).
 *
 *   multipart        header copied; boundaries tracked on a stack; a
 *                    delimiter of any open level ends what is inside
 *                    it, outermost first (RFC 2046 5.1.1: no part holds
 *                    an enclosing delimiter; Python reads it so too).
 *                    Without a boundary it is a leaf (nobody can find
 *                    its parts); with one that is unusable, see below.
 *   message/rfc822   header copied; its body parsed as a message.
 *                    Both: CTE 8bit/binary relabelled 7bit (what is
 *                    inside is made 7-bit), any other label kept.
 *   leaf, 8bit or    body re-encoded quoted-printable (RFC 2045 6.7),
 *   binary           CTE replaced by quoted-printable.
 *   leaf, 7bit,      held, header and body: the header must go out
 *   none, unknown    before the body, and the label may be a lie.  If
 *                    it ends clean it goes out unchanged; at the first
 *                    line with 8-bit data, NUL, a bare CR or LF, or over
 *                    998 octets, or when the hold is full, it is
 *                    converted as above.
 *   leaf, QP or      copied; a line that is not clean is repaired so
 *   base64           that it decodes to the same octets: QP gets raw
 *                    octets as =XX and soft breaks, base64 loses what
 *                    is not in its alphabet (decoders skip it, 6.8).
 *   preamble,        copied; in a line that is not clean, 8-bit octets,
 *   epilogue         NUL, CR and LF become '?' and long lines are cut:
 *                    nobody displays them (RFC 2046 5.1.1).
 *
 * A converted leaf gets MIME-Version: 1.0 when it is a message (the top
 * or an encapsulated one) without one, and Content-Type: text/plain;
 * charset=unknown-8bit (RFC 1428) when it has no Content-Type.  A
 * composite message without MIME-Version keeps its header as it was.
 *
 * Header fields are left as they are, 8-bit octets included (RFC 2047
 * encoding is out of scope), except: lines over 998 octets are folded
 * before white space, or cut with a space added when there is none (see
 * m8_fold_out); NUL, CR and LF become spaces; a header block that ends
 * without its empty line (the body just starts) gets one.
 *
 * So the output is CRLF lines of at most 998 octets, 8-bit octets only
 * in header fields.  No line this code creates or changes starts with
 * "--" (none becomes a delimiter), and quoted-printable output encodes
 * a leading '.' and "From ", so that nothing depends on dot-stuffing
 * (which is the caller's) or on mbox.
 *
 * Security: every quantity the input controls is bounded below.  Over a
 * limit (header block, boundary, nesting), or with a Content-Type or
 * Content-Transfer-Encoding line that cannot be folded within 998
 * octets, the conversion fails: -1, and every later call fails too;
 * the caller must not send this message to that server (RFC 3463
 * 5.6.3, conversion required but not supported).
 * Sending the rest unconverted would break the promise to the server,
 * and guessing at the structure could corrupt the content.
 */

#include <strings.h>

/* The limits can be set smaller with -D, for the fuzzer. */
/* Header block of one entity.  The top header was already held to this
 * by msg.c; parts get the same room. */
#ifndef MIME8_HEADER_MAX
#define MIME8_HEADER_MAX HEADER_MAX
#endif
/* Body of a 7-bit-labelled leaf held to see whether it is clean.  Past
 * this it is converted anyway: always correct, only less pretty. */
#ifndef MIME8_HOLD_MAX
#define MIME8_HOLD_MAX (256 * 1024)
#endif
/* RFC 2046 5.1.1: a boundary is 1 to 70 characters. */
#define MIME8_BOUNDARY_MAX 70
/* Nested multipart and message/rfc822 entities: the boundary stack
 * (Postfix's mime_nesting_limit is 100; 20 is plenty for real mail). */
#ifndef MIME8_DEPTH_MAX
#define MIME8_DEPTH_MAX 20
#endif
/* RFC 2045 6.7 (5): encoded lines are at most 76 characters. */
#define QP_LINE_MAX 76
/* Repaired preamble and epilogue lines are cut to this. */
#define M8_TEXT_CHUNK 990

enum m8_cte { CTE_NONE, CTE_7BIT, CTE_8BIT, CTE_BINARY, CTE_QP, CTE_BASE64,
	CTE_OTHER };
enum m8_kind { K_LEAF, K_MULTI, K_RFC822 };
enum m8_state { M8_HEADER, M8_BODY, M8_DONE };
enum m8_mode {
	M8_TEXT,	/* preamble, epilogue: made safe */
	M8_HOLD,	/* 7-bit leaf held until known clean */
	M8_QP,		/* leaf being encoded */
	M8_QPFIX,	/* quoted-printable leaf, repaired */
	M8_B64FIX	/* base64 leaf, repaired */
};

struct m8_level {		/* one open multipart */
	char bound[MIME8_BOUNDARY_MAX + 1];
	size_t blen;
	int digest;		/* parts default to message/rfc822 */
	int depth;		/* of the multipart entity */
};

struct mime8 {
	enum m8_state state;
	enum m8_mode mode;
	int failed;
	struct m8_level lv[MIME8_DEPTH_MAX];
	size_t nlv;
	/* the current entity */
	int depth;		/* 0 for the top */
	int message;		/* the top or a message/rfc822 body */
	int digest;		/* its parent is multipart/digest */
	struct buf hdr;		/* its header lines, CRLF */
	int blank;		/* the header ended with an empty line */
	int nonfield;		/* ... or with a body line */
	int has_mv, has_ct;	/* MIME-Version, Content-Type seen */
	struct buf hold;	/* M8_HOLD: the body so far, CRLF lines */
};

struct m8_info {
	enum m8_kind kind;
	enum m8_cte cte;
	int has_mv, has_ct, digest;
	char bound[MIME8_BOUNDARY_MAX + 1];
	size_t blen;
};

static const char m8_hex[] = "0123456789ABCDEF";

#define M8_WSP(c)	((c) == ' ' || (c) == '\t')

struct mime8 *
mime8_new(void)
{
	struct mime8 *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	m->state = M8_HEADER;
	m->message = 1;
	buf_init(&m->hdr, MIME8_HEADER_MAX);
	buf_init(&m->hold, MIME8_HOLD_MAX + 1);
	/* allocated from the start: the code walks them by pointer */
	if (buf_add(&m->hdr, "", 0) < 0 || buf_add(&m->hold, "", 0) < 0) {
		mime8_free(m);
		return NULL;
	}
	return m;
}

void
mime8_free(struct mime8 *m)
{
	if (m == NULL)
		return;
	buf_free(&m->hdr);
	buf_free(&m->hold);
	free(m);
}

/* m8_clean - 7bit data (RFC 2045 2.7): no 8-bit octet, NUL, CR or LF,
 * at most 998 octets */
static int
m8_clean(const char *s, size_t len)
{
	size_t i;

	if (len > LINE_MAX_OCTETS)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x80 || c == 0 || c == '\r' || c == '\n')
			return 0;
	}
	return 1;
}

/* m8_name_len - length of "name" in a header field line "name[WSP]:",
 * or 0 when the line is not a field (RFC 5322 2.2, obsolete WSP) */
static size_t
m8_name_len(const char *s, size_t len)
{
	size_t i = 0, n;

	while (i < len && (unsigned char)s[i] > 0x20 &&
	    (unsigned char)s[i] < 0x7f && s[i] != ':')
		i++;
	if (i == 0)
		return 0;
	n = i;
	while (i < len && M8_WSP(s[i]))
		i++;
	return i < len && s[i] == ':' ? n : 0;
}

/* m8_is - the field line s is named name */
static int
m8_is(const char *s, size_t len, const char *name)
{
	size_t n = m8_name_len(s, len);

	return n > 0 && n == strlen(name) && strncasecmp(s, name, n) == 0;
}

/* m8_cfws - skip white space and (nested) comments (RFC 5322 3.2.2) */
static const char *
m8_cfws(const char *p, const char *e)
{
	int nest;

	for (;;) {
		while (p < e && M8_WSP(*p))
			p++;
		if (p == e || *p != '(')
			return p;
		for (nest = 0; p < e; p++) {
			if (*p == '\\' && p + 1 < e)
				p++;
			else if (*p == '(')
				nest++;
			else if (*p == ')' && --nest == 0) {
				p++;
				break;
			}
		}
	}
}

/* m8_token - end of an RFC 2045 5.1 token at p (p when there is none) */
static const char *
m8_token(const char *p, const char *e)
{
	while (p < e && (unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f &&
	    strchr("()<>@,;:\\\"/[]?=", *p) == NULL)
		p++;
	return p;
}

static int
m8_tokis(const char *p, const char *q, const char *word)
{
	size_t n = (size_t)(q - p);

	return n == strlen(word) && strncasecmp(p, word, n) == 0;
}

/* m8_skip_param - to the next ';' outside quoted strings and comments */
static const char *
m8_skip_param(const char *p, const char *e)
{
	int q = 0;

	while (p < e) {
		if (q && *p == '\\' && p + 1 < e)
			p += 2;
		else if (*p == '"')
			q = !q, p++;
		else if (!q && *p == '(')
			p = m8_cfws(p, e);
		else if (!q && *p == ';')
			break;
		else
			p++;
	}
	return p;
}

/* m8_value - a parameter's value at *p (quoted string or token; *p moves
 * past it) into v, as much as fits; the length it keeps once trailing
 * white space is gone (Python strips it), or (size_t)-1 for a quoted
 * string without its end */
static size_t
m8_value(const char **pp, const char *e, char *v, size_t vlen)
{
	const char *p = *pp, *end;
	size_t tot = 0, keep = 0;

	if (p < e && *p == '"') {
		for (p++; p < e && *p != '"'; p++) {
			if (*p == '\\' && p + 1 < e)
				p++;
			if (tot < vlen)
				v[tot] = *p;
			tot++;
			if (!M8_WSP(*p))
				keep = tot;
		}
		*pp = p;
		if (p == e)
			return (size_t)-1;
		*pp = p + 1;
		return keep;
	}
	for (end = m8_token(p, e); p < end; p++) {
		if (tot < vlen)
			v[tot] = *p;
		tot++;
	}
	*pp = p;
	return tot;
}

/*
 * m8_content_type - RFC 2045 5.1 Content-Type value: kind, digest and
 * boundary.  Returns -1 for a multipart whose boundary cannot be used
 * (over MIME8_BOUNDARY_MAX, not printable ASCII, RFC 2231 form).  A
 * value that does not parse is text/plain (RFC 2045 5.2); a multipart
 * without a boundary is a leaf, as nobody can find its parts.
 */
static int
m8_content_type(const char *p, const char *e, struct m8_info *in)
{
	const char *t0, *t1, *s0, *s1, *n0, *n1;
	char v[MIME8_BOUNDARY_MAX + 1];
	size_t keep, i;
	int found = 0, bad = 0;

	in->kind = K_LEAF;
	t0 = m8_cfws(p, e);
	t1 = m8_token(t0, e);
	p = m8_cfws(t1, e);
	if (t1 == t0 || p == e || *p != '/')
		return 0;
	s0 = m8_cfws(p + 1, e);
	s1 = m8_token(s0, e);
	if (s1 == s0)
		return 0;
	if (m8_tokis(t0, t1, "message") && m8_tokis(s0, s1, "rfc822")) {
		in->kind = K_RFC822;
		return 0;
	}
	if (!m8_tokis(t0, t1, "multipart"))
		return 0;
	in->digest = m8_tokis(s0, s1, "digest");
	for (p = s1; ; ) {
		p = m8_cfws(p, e);
		if (p == e || *p != ';')
			break;
		n0 = m8_cfws(p + 1, e);
		n1 = m8_token(n0, e);
		p = m8_cfws(n1, e);
		if (n1 - n0 > 9 && strncasecmp(n0, "boundary*", 9) == 0)
			bad = 1;
		if (n1 == n0 || p == e || *p != '=') {
			p = m8_skip_param(p, e);
			continue;
		}
		p = m8_cfws(p + 1, e);
		if ((keep = m8_value(&p, e, v, sizeof(v))) == (size_t)-1)
			continue;	/* unterminated: ignored */
		if (found || !m8_tokis(n0, m8_token(n0, e), "boundary"))
			continue;
		found = 1;
		if (keep > MIME8_BOUNDARY_MAX) {
			bad = 1;
			continue;
		}
		for (i = 0; i < keep; i++)
			if ((unsigned char)v[i] < 0x20 ||
			    (unsigned char)v[i] > 0x7e)
				bad = 1;
		memcpy(in->bound, v, keep);
		in->bound[keep] = '\0';
		in->blen = keep;
	}
	if (bad)
		return -1;
	if (found && in->blen > 0)
		in->kind = K_MULTI;
	return 0;
}

/* m8_cte_of - RFC 2045 6.1 mechanism */
static enum m8_cte
m8_cte_of(const char *p, const char *e)
{
	static const struct {
		const char *name;
		enum m8_cte cte;
	} map[] = {
		{ "7bit", CTE_7BIT }, { "8bit", CTE_8BIT },
		{ "binary", CTE_BINARY }, { "quoted-printable", CTE_QP },
		{ "base64", CTE_BASE64 },
	};
	const char *t0, *t1;
	size_t i;

	t0 = m8_cfws(p, e);
	t1 = m8_token(t0, e);
	if (t1 == t0 || m8_cfws(t1, e) != e)
		return CTE_OTHER;
	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (m8_tokis(t0, t1, map[i].name))
			return map[i].cte;
	return CTE_OTHER;
}

/* m8_unfold - the value of the field starting at p (header lines up to
 * e), continuation lines joined (RFC 5322 2.2.3) */
static int
m8_unfold(const char *p, const char *e, struct buf *v)
{
	const char *nl;
	int first = 1;

	buf_reset(v);
	while (p < e) {
		nl = memchr(p, '\n', (size_t)(e - p));
		if (!first && !M8_WSP(*p))
			break;
		if (first)
			p = (const char *)memchr(p, ':', (size_t)(nl - p)) + 1;
		if (buf_add(v, p, (size_t)(nl - 1 - p)) < 0)
			return -1;
		first = 0;
		p = nl + 1;
	}
	return buf_add(v, "", 0);
}

/* m8_parse - what the held header block says */
static int
m8_parse(const struct mime8 *m, struct m8_info *in)
{
	const char *p = m->hdr.p, *e = p + m->hdr.len, *nl;
	struct buf v;
	int ct = 0, cte = 0, rc = 0;

	memset(in, 0, sizeof(*in));
	in->kind = K_LEAF;
	in->cte = CTE_NONE;
	buf_init(&v, MIME8_HEADER_MAX);
	for (; p < e; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(e - p));
		if (m8_is(p, (size_t)(nl - 1 - p), "mime-version"))
			in->has_mv = 1;
		else if (!ct && m8_is(p, (size_t)(nl - 1 - p), "content-type")) {
			ct = in->has_ct = 1;
			if (m8_unfold(p, e, &v) < 0 ||
			    m8_content_type(v.p, v.p + v.len, in) < 0) {
				rc = -1;
				goto out;
			}
		} else if (!cte && m8_is(p, (size_t)(nl - 1 - p),
		    "content-transfer-encoding")) {
			cte = 1;
			if (m8_unfold(p, e, &v) < 0) {
				rc = -1;
				goto out;
			}
			in->cte = m8_cte_of(v.p, v.p + v.len);
		}
	}
	if (!in->has_ct && m->digest)
		in->kind = K_RFC822;	/* RFC 2046 5.1.5 */
out:
	buf_free(&v);
	return rc;
}

/*
 * m8_fold_out - one header line; over 998 octets it is folded (RFC 5322
 * 2.2.3) before white space that precedes a word, or else cut at 997
 * octets with a space added, as Postfix's smtp client does; -1 instead
 * of such a cut when strict (a field this code reads: a cut would
 * change it).  No piece is white space only (it could be taken for the
 * empty line): trailing white space goes, a run as long as a line
 * shrinks to one, and a line of nothing else is dropped.
 */
static int
m8_fold_out(struct buf *out, const char *p, size_t len, int strict)
{
	size_t room, cut, fn;
	int pre = 0, rc = 0;

	if (len <= LINE_MAX_OCTETS) {
		rc |= buf_add(out, p, len);
		rc |= buf_add(out, "\r\n", 2);
		return rc ? -1 : 0;
	}
	while (len > 0 && M8_WSP(p[len - 1]))
		len--;
	while (len > 0) {
		room = LINE_MAX_OCTETS - (size_t)pre;
		for (fn = 0; M8_WSP(p[fn]); fn++)	/* p[len - 1] is not */
			;
		if (fn >= room) {
			p += fn - 1;
			len -= fn - 1;
			fn = 1;
		}
		if (pre)
			rc |= buf_addc(out, ' ');
		if (len <= room) {
			rc |= buf_add(out, p, len);
			rc |= buf_add(out, "\r\n", 2);
			break;
		}
		/* p[cut + 1] exists: p[cut] is white space, p[len - 1] not */
		for (cut = room; cut > fn; cut--)
			if (M8_WSP(p[cut]) && !M8_WSP(p[cut + 1]))
				break;
		if ((pre = cut == fn) != 0) {
			if (strict)
				return -1;
			cut = room;
		}
		rc |= buf_add(out, p, cut);
		rc |= buf_add(out, "\r\n", 2);
		p += cut;
		len -= cut;
	}
	return rc ? -1 : 0;
}

/*
 * m8_header_out - the held header block, Content-Transfer-Encoding
 * replaced by cte (in place of the first, the others dropped) unless
 * NULL, MIME-Version and a Content-Type added on request; then the
 * empty line, also when the body started without one (as Postfix does
 * for the primary header): a body line made safe could otherwise read
 * as a header field ("Conte\xffnt-Type:" -> "Conte?nt-Type:").
 */
static int
m8_header_out(struct mime8 *m, struct buf *out, const char *cte, int add_mv,
    int add_ct)
{
	const char *p = m->hdr.p, *e = p + m->hdr.len, *nl;
	int skip = 0, strict = 0, placed = 0, rc = 0;
	size_t len;

	for (; p < e; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(e - p));
		len = (size_t)(nl - 1 - p);
		if (!M8_WSP(*p)) {
			strict = m8_is(p, len, "content-type") ||
			    m8_is(p, len, "content-transfer-encoding");
			skip = cte != NULL &&
			    m8_is(p, len, "content-transfer-encoding");
			if (skip && !placed) {
				rc |= buf_printf(out, "Content-Transfer-"
				    "Encoding: %s\r\n", cte);
				placed = 1;
			}
		}
		if (!skip && m8_fold_out(out, p, len, strict) < 0)
			rc = -1;
	}
	if (add_mv)
		rc |= buf_adds(out, "MIME-Version: 1.0\r\n");
	if (add_ct)
		rc |= buf_adds(out, "Content-Type: text/plain; "
		    "charset=unknown-8bit\r\n");
	if (cte != NULL && !placed)
		rc |= buf_printf(out, "Content-Transfer-Encoding: %s\r\n", cte);
	if (m->blank || m->nonfield)
		rc |= buf_add(out, "\r\n", 2);
	buf_reset(&m->hdr);
	return rc ? -1 : 0;
}

/* m8_qp_out - one line as quoted-printable (RFC 2045 6.7): '=', controls
 * but TAB, DEL and 8-bit octets as =XX, white space before the line end
 * too, soft breaks to stay within 76; at the start of an output line
 * '.', '-' and the F of "From " are encoded as well. */
static int
m8_qp_out(struct buf *out, const char *s, size_t len)
{
	size_t i, col = 0, w;
	int rc = 0, enc, last;
	char t[3];

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		last = i + 1 == len;
		for (;;) {
			enc = c == '=' || c >= 0x7f || (c < 0x20 && c != '\t') ||
			    (last && M8_WSP(c));
			if (col == 0 && (c == '.' || c == '-' || (c == 'F' &&
			    len - i >= 5 && memcmp(s + i, "From ", 5) == 0)))
				enc = 1;
			w = enc ? 3 : 1;
			if (col + w <= (last ? QP_LINE_MAX : QP_LINE_MAX - 1))
				break;
			rc |= buf_add(out, "=\r\n", 3);
			col = 0;
		}
		t[0] = '=';
		t[1] = m8_hex[c >> 4];
		t[2] = m8_hex[c & 15];
		rc |= enc ? buf_add(out, t, 3) : buf_addc(out, c);
		col += w;
	}
	rc |= buf_add(out, "\r\n", 2);
	return rc ? -1 : 0;
}

static int
m8_ishex(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') ||
	    (c >= 'a' && c <= 'f');
}

/*
 * m8_qpfix_out - a quoted-printable line that is not clean, rewritten to
 * decode to the same octets: trailing white space dropped (decoders
 * drop it, RFC 2045 6.7 (3)), a final '=' kept as the soft break, =XX
 * escapes kept, a stray '=' as =3D, 8-bit octets, NUL, CR and LF as =XX,
 * soft breaks to stay within 76, a leading '.', '-' or "From " encoded.
 */
static int
m8_qpfix_out(struct buf *out, const char *s, size_t len)
{
	size_t i, n = len, col = 0, adv, w;
	int rc = 0, soft = 0, enc, last;
	char t[3];

	while (n > 0 && M8_WSP(s[n - 1]))
		n--;
	if (n > 0 && s[n - 1] == '=') {
		soft = 1;
		n--;
	}
	for (i = 0; i < n; i += adv) {
		unsigned char c = (unsigned char)s[i];
		int esc = c == '=' && i + 2 < n && m8_ishex(s[i + 1]) &&
		    m8_ishex(s[i + 2]);

		adv = esc ? 3 : 1;
		last = i + adv == n && !soft;
		for (;;) {
			enc = !esc && (c == '=' || c >= 0x80 || c == 0 ||
			    c == '\r' || c == '\n');
			if (col == 0 && (c == '.' || c == '-' || (c == 'F' &&
			    n - i >= 5 && memcmp(s + i, "From ", 5) == 0)))
				enc = 1;
			w = esc || enc ? 3 : 1;
			if (col + w <= (last ? QP_LINE_MAX : QP_LINE_MAX - 1))
				break;
			rc |= buf_add(out, "=\r\n", 3);
			col = 0;
		}
		if (esc)
			rc |= buf_add(out, s + i, 3);
		else if (enc) {
			t[0] = '=';
			t[1] = m8_hex[c >> 4];
			t[2] = m8_hex[c & 15];
			rc |= buf_add(out, t, 3);
		} else
			rc |= buf_addc(out, c);
		col += w;
	}
	if (soft)
		rc |= buf_addc(out, '=');
	rc |= buf_add(out, "\r\n", 2);
	return rc ? -1 : 0;
}

/* m8_text_out - a preamble or epilogue line; one that is not clean has
 * 8-bit octets, NUL, CR and LF as '?' and is cut into pieces, a piece
 * that would start with '-' getting a space before it */
static int
m8_text_out(struct buf *out, const char *s, size_t len)
{
	char t[M8_TEXT_CHUNK + 1];
	size_t i, n;
	int rc = 0;

	if (m8_clean(s, len)) {
		rc |= buf_add(out, s, len);
		return rc | buf_add(out, "\r\n", 2);
	}
	do {
		n = len < M8_TEXT_CHUNK ? len : M8_TEXT_CHUNK;
		for (i = 0; i < n; i++) {
			unsigned char c = (unsigned char)s[i];

			t[i] = c >= 0x80 || c == 0 || c == '\r' || c == '\n' ?
			    '?' : (char)c;
		}
		if (n > 0 && t[0] == '-')
			rc |= buf_addc(out, ' ');
		rc |= buf_add(out, t, n);
		rc |= buf_add(out, "\r\n", 2);
		s += n;
		len -= n;
	} while (len > 0);
	return rc ? -1 : 0;
}

/* m8_b64fix_out - a base64 line that is not clean: only its alphabet
 * (RFC 2045 6.8: decoders ignore the rest), in lines of 76 */
static int
m8_b64fix_out(struct buf *out, const char *s, size_t len)
{
	char t[QP_LINE_MAX];
	size_t i, n = 0;
	int rc = 0, any = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '='))
			continue;
		t[n++] = (char)c;
		if (n == sizeof(t)) {
			rc |= buf_add(out, t, n);
			rc |= buf_add(out, "\r\n", 2);
			n = 0;
			any = 1;
		}
	}
	if (n > 0 || !any) {
		rc |= buf_add(out, t, n);
		rc |= buf_add(out, "\r\n", 2);
	}
	return rc ? -1 : 0;
}

/* m8_convert - the held leaf turns out to need encoding: its header
 * relabelled, what was held encoded, and from now on the rest */
static int
m8_convert(struct mime8 *m, struct buf *out)
{
	const char *p = m->hold.p, *e = p + m->hold.len, *nl;
	int rc;

	rc = m8_header_out(m, out, "quoted-printable",
	    m->message && !m->has_mv, !m->has_ct);
	for (; rc == 0 && p < e; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(e - p));
		rc = m8_qp_out(out, p, (size_t)(nl - 1 - p));
	}
	buf_reset(&m->hold);
	m->mode = M8_QP;
	return rc;
}

/* m8_body - one body line of the current entity */
static int
m8_body(struct mime8 *m, const char *s, size_t len, struct buf *out)
{
	switch (m->mode) {
	case M8_HOLD:
		if (m8_clean(s, len) &&
		    len + 2 <= MIME8_HOLD_MAX - m->hold.len) {
			if (buf_add(&m->hold, s, len) < 0 ||
			    buf_add(&m->hold, "\r\n", 2) < 0)
				return -1;
			return 0;
		}
		if (m8_convert(m, out) < 0)
			return -1;
		return m8_qp_out(out, s, len);
	case M8_QP:
		return m8_qp_out(out, s, len);
	case M8_QPFIX:
		if (!m8_clean(s, len))
			return m8_qpfix_out(out, s, len);
		break;
	case M8_B64FIX:
		if (!m8_clean(s, len))
			return m8_b64fix_out(out, s, len);
		break;
	case M8_TEXT:
		return m8_text_out(out, s, len);
	}
	if (buf_add(out, s, len) < 0 || buf_add(out, "\r\n", 2) < 0)
		return -1;
	return 0;
}

/* m8_header_end - the header block of the current entity is complete:
 * decide what its body is, and send what can be sent */
static int
m8_header_end(struct mime8 *m, struct buf *out)
{
	struct m8_info in;
	const char *relabel;
	struct m8_level *l;

	if (m8_parse(m, &in) < 0)
		return -1;
	m->has_mv = in.has_mv;
	m->has_ct = in.has_ct;
	m->state = M8_BODY;
	relabel = in.cte == CTE_8BIT || in.cte == CTE_BINARY ? "7bit" : NULL;
	switch (in.kind) {
	case K_MULTI:
		if (m->depth >= MIME8_DEPTH_MAX)
			return -1;
		if (m8_header_out(m, out, relabel, 0, 0) < 0)
			return -1;
		l = &m->lv[m->nlv++];
		memcpy(l->bound, in.bound, in.blen + 1);
		l->blen = in.blen;
		l->digest = in.digest;
		l->depth = m->depth;
		m->mode = M8_TEXT;
		return 0;
	case K_RFC822:
		if (m->depth >= MIME8_DEPTH_MAX)
			return -1;
		if (m8_header_out(m, out, relabel, 0, 0) < 0)
			return -1;
		m->state = M8_HEADER;
		m->depth++;
		m->message = 1;
		m->digest = 0;
		m->blank = m->nonfield = 0;
		return 0;
	case K_LEAF:
		break;
	}
	switch (in.cte) {
	case CTE_QP:
		m->mode = M8_QPFIX;
		return m8_header_out(m, out, NULL, 0, 0);
	case CTE_BASE64:
		m->mode = M8_B64FIX;
		return m8_header_out(m, out, NULL, 0, 0);
	case CTE_8BIT:
	case CTE_BINARY:
		m->mode = M8_QP;
		return m8_header_out(m, out, "quoted-printable",
		    m->message && !m->has_mv, !m->has_ct);
	default:
		m->mode = M8_HOLD;
		buf_reset(&m->hold);
		return 0;
	}
}

/* m8_entity_end - the current entity ends: a delimiter or the end */
static int
m8_entity_end(struct mime8 *m, struct buf *out)
{
	int rc = 0;

	while (m->state == M8_HEADER) {
		m->blank = m->nonfield = 0;
		if (m8_header_end(m, out) < 0)
			return -1;
	}
	if (m->mode == M8_HOLD) {
		rc = m8_header_out(m, out, NULL, 0, 0);
		if (buf_add(out, m->hold.p, m->hold.len) < 0)
			rc = -1;
		buf_reset(&m->hold);
	}
	m->mode = M8_TEXT;
	return rc;
}

/* m8_delimiter - the level a delimiter line belongs to, outermost first
 * (RFC 2046 5.1.1: "--" boundary ["--"] then only white space), or -1 */
static int
m8_delimiter(const struct mime8 *m, const char *s, size_t len, int *closing)
{
	const struct m8_level *l;
	size_t i, j;

	if (len < 2 || s[0] != '-' || s[1] != '-')
		return -1;
	for (i = 0; i < m->nlv; i++) {
		l = &m->lv[i];
		if (len < 2 + l->blen || memcmp(s + 2, l->bound, l->blen) != 0)
			continue;
		j = 2 + l->blen;
		*closing = len - j >= 2 && s[j] == '-' && s[j + 1] == '-';
		if (*closing)
			j += 2;
		while (j < len && M8_WSP(s[j]))
			j++;
		if (j == len)
			return (int)i;
	}
	return -1;
}

/* m8_line - one input line, in whatever state */
static int
m8_line(struct mime8 *m, const char *s, size_t len, struct buf *out)
{
	struct m8_level *l;
	size_t at;
	int k, closing = 0, rc = 0;

	if ((k = m8_delimiter(m, s, len, &closing)) >= 0) {
		if (m8_entity_end(m, out) < 0)
			return -1;
		l = &m->lv[k];
		m->nlv = (size_t)k + 1;
		if (len <= LINE_MAX_OCTETS)
			rc |= buf_add(out, s, len);
		else
			rc |= buf_printf(out, "--%s%s", l->bound,
			    closing ? "--" : "");
		rc |= buf_add(out, "\r\n", 2);
		if (closing) {
			m->nlv = (size_t)k;	/* the epilogue: M8_TEXT */
			return rc ? -1 : 0;
		}
		m->state = M8_HEADER;
		buf_reset(&m->hdr);
		m->blank = m->nonfield = 0;
		m->depth = l->depth + 1;
		m->message = 0;
		m->digest = l->digest;
		return rc ? -1 : 0;
	}
	if (m->state == M8_BODY)
		return m8_body(m, s, len, out);

	/* M8_HEADER */
	if (len == 0) {
		m->blank = 1;
		return m8_header_end(m, out);
	}
	if (M8_WSP(s[0]) || m8_name_len(s, len) > 0) {
		at = m->hdr.len;
		if (buf_add(&m->hdr, s, len) < 0 ||
		    buf_add(&m->hdr, "\r\n", 2) < 0)
			return -1;
		for (; at < m->hdr.len - 2; at++)
			if (m->hdr.p[at] == '\0' || m->hdr.p[at] == '\r' ||
			    m->hdr.p[at] == '\n')
				m->hdr.p[at] = ' ';
		return 0;
	}
	/* not a header line: the body starts here, without an empty line */
	m->nonfield = 1;
	if (m8_header_end(m, out) < 0)
		return -1;
	return m8_line(m, s, len, out);
}

int
mime8_line(struct mime8 *m, const char *line, size_t len, struct buf *out)
{
	if (m->failed || m->state == M8_DONE)
		return -1;
	if (m8_line(m, line, len, out) < 0) {
		m->failed = 1;
		return -1;
	}
	return 0;
}

int
mime8_end(struct mime8 *m, struct buf *out)
{
	if (m->failed || m->state == M8_DONE)
		return -1;
	if (m8_entity_end(m, out) < 0) {
		m->failed = 1;
		return -1;
	}
	m->state = M8_DONE;
	return 0;
}

/* The per-server converter, for now the 8-bit downgrade line by line
 * whatever the flags (replaced by the general converter). */
struct mimeconv {
	struct mime8 *m;
	struct buf line;
};

struct mimeconv *
mimeconv_new(unsigned flags)
{
	struct mimeconv *c = calloc(1, sizeof(*c));

	(void)flags;
	if (c == NULL || (c->m = mime8_new()) == NULL) {
		free(c);
		return NULL;
	}
	buf_init(&c->line, 0);
	return c;
}

int
mimeconv_put(struct mimeconv *c, const char *p, size_t n, struct buf *out)
{
	size_t i, start = 0;

	for (i = 0; i < n; i++) {
		if (p[i] != '\n')
			continue;
		if (buf_add(&c->line, p + start, i + 1 - start) < 0)
			return -1;
		start = i + 1;
		c->line.len -= c->line.len >= 2 &&
		    c->line.p[c->line.len - 2] == '\r' ? 2 : 1;
		if (mime8_line(c->m, c->line.p, c->line.len, out) < 0)
			return -1;
		buf_reset(&c->line);
	}
	return buf_add(&c->line, p + start, n - start);
}

int
mimeconv_end(struct mimeconv *c, struct buf *out)
{
	if (c->line.len && mime8_line(c->m, c->line.p, c->line.len, out) < 0)
		return -1;
	return mime8_end(c->m, out);
}

int
mimeconv_signed(const struct mimeconv *c)
{
	(void)c;
	return 0;
}

void
mimeconv_free(struct mimeconv *c)
{
	if (c == NULL)
		return;
	mime8_free(c->m);
	buf_free(&c->line);
	free(c);
}
