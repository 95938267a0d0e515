/*
 * fuzz_msg.c - libFuzzer entry point for msg.c.
 *
 * One input goes through everything: its lines as a header block
 * (header_add_line, msg_rcpts, msg_fixup, header_write), the whole input
 * as an address list (addrlist_parse, addrlist_qualify) and as an
 * envelope address (addr_check, addr_qualify, addr_domain), and -F.
 * Besides memory errors (ASan/UBSan) it checks invariants and abort()s
 * when one fails:
 *   - a list parses iff it qualifies; a bad list comes back unchanged; a
 *     qualified list parses to the same addresses, "@host.example" added
 *     to the bare ones;
 *   - an address addr_check takes is short and free of controls;
 *   - every recipient of msg_rcpts passes addr_check;
 *   - msg_fixup succeeds (its inputs are valid, -F is short) and
 *     header_write after it gives CRLF lines of at most 998 octets
 *     that read back into the same fields.
 *
 *   make fuzz-msg && ./t/fuzz_msg t/corpus/msg
 *
 * t/msgtest.c includes this file with FUZZ_MSG_NO_MAIN defined, so that
 * "t/msgtest fuzz FILE..." replays the corpus in make check (and its
 * hdr mode reads a header block with header_lines, as this file does).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mxsend.h"
#include "t/testlib.h"

#define FUZZ_DOMAIN "host.example"

/* header_lines - the lines of text (LF ends, a CR before one dropped)
 * through header_add_line until it stops: its last result (1 at the end
 * of the header, -1 with err set); *lines counts the lines it took */
static int
header_lines(struct header *h, const char *text, size_t size,
    size_t *lines, char *err, size_t errlen)
{
	size_t s, e, len;
	int rc = 0;

	*lines = 0;
	for (s = 0; s < size && rc == 0; s = e + 1) {
		const char *nl = memchr(text + s, '\n', size - s);

		e = nl ? (size_t)(nl - text) : size;
		len = e - s;
		if (len > 0 && text[s + len - 1] == '\r')
			len--;
		++*lines;
		rc = header_add_line(h, text + s, len, err, errlen);
	}
	return rc;
}

/* fuzz_lists - the addrlist_parse / addrlist_qualify invariants */
static void
fuzz_lists(const char *text)
{
	struct strlist a, b;
	struct buf q;
	char err[256], want[4096];
	size_t i;
	int rp, rq;

	strlist_init(&a);
	strlist_init(&b);
	buf_init(&q, 0);
	rp = addrlist_parse(text, &a, err, sizeof(err));
	rq = addrlist_qualify(text, FUZZ_DOMAIN, &q);
	fuzz_assert(rp == rq);
	if (rp < 0) {
		fuzz_assert(a.n == 0);
		fuzz_assert(strcmp(q.p ? q.p : "", text) == 0);
	} else {
		fuzz_assert(addrlist_parse(q.p ? q.p : "", &b, err,
		    sizeof(err)) == 0);
		fuzz_assert(a.n == b.n);
		for (i = 0; i < a.n; i++) {
			if (addr_domain(a.v[i]) != NULL)
				snprintf(want, sizeof(want), "%s", a.v[i]);
			else
				snprintf(want, sizeof(want), "%s@%s", a.v[i],
				    FUZZ_DOMAIN);
			if (strlen(a.v[i]) + sizeof(FUZZ_DOMAIN) <
			    sizeof(want))
				fuzz_assert(strcmp(b.v[i], want) == 0);
		}
	}
	strlist_free(&a);
	strlist_free(&b);
	buf_free(&q);
}

/* fuzz_addr - addr_check, addr_qualify, addr_domain */
static void
fuzz_addr(const char *text)
{
	char err[256], q[ADDR_MAX];
	size_t i;

	(void)addr_domain(text);
	if (addr_check(text, 1, err, sizeof(err)) == 0) {
		fuzz_assert(strlen(text) < ADDR_MAX);
		for (i = 0; text[i] != '\0'; i++)
			fuzz_assert((unsigned char)text[i] >= 0x20 &&
			    text[i] != 0x7f);
		if (text[0] != '\0' &&
		    addr_qualify(text, FUZZ_DOMAIN, q, sizeof(q)) == 0) {
			fuzz_assert(addr_domain(q) != NULL);
			fuzz_assert(addr_check(q, 0, err, sizeof(err)) == 0);
		}
	}
	(void)addr_check(text, 0, err, sizeof(err));
}

/* fuzz_rewrite - header_write output: CRLF lines within the limit that
 * read back into the same fields */
static void
fuzz_rewrite(const struct header *h)
{
	struct header r;
	struct buf w;
	char err[256];
	size_t i, s, e, bytes = 0;

	buf_init(&w, 0);
	header_init(&r);
	fuzz_assert(header_write(h, &w) == 0);
	for (s = 0; s < w.len; s = e + 2) {
		const char *nl = memchr(w.p + s, '\n', w.len - s);

		fuzz_assert(nl != NULL && nl > w.p + s && nl[-1] == '\r');
		e = (size_t)(nl - w.p) - 1;
		fuzz_assert(e - s <= LINE_MAX_OCTETS);
		fuzz_assert(memchr(w.p + s, '\r', e - s) == NULL);
		/* what msg_fixup adds may take it past what we read */
		bytes += e - s + 1;
		if (bytes > HEADER_MAX)
			goto out;
		fuzz_assert(header_add_line(&r, w.p + s, e - s, err,
		    sizeof(err)) == 0);
	}
	fuzz_assert(r.n == h->n);
	for (i = 0; i < r.n; i++) {
		fuzz_assert(strcmp(r.f[i].name, h->f[i].name) == 0);
		fuzz_assert(strcmp(r.f[i].body, h->f[i].body) == 0);
	}
out:
	header_free(&r);
	buf_free(&w);
}

/* fuzz_msg - one input through everything above; 0 */
static int
fuzz_msg(const uint8_t *data, size_t size)
{
	struct header h;
	struct strlist rc;
	struct fixup fx;
	char err[256], name[64], *text;
	size_t i, k, lines;

	text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	fuzz_lists(text);
	fuzz_addr(text);

	header_init(&h);
	(void)header_lines(&h, text, size, &lines, err, sizeof(err));
	for (i = 0; i < h.n; i++) {
		fuzz_assert(strlen(h.f[i].name) > 0);
		fuzz_assert(strchr(h.f[i].body, '\r') == NULL);
		fuzz_lists(h.f[i].body);
	}
	(void)header_get(&h, "to");
	(void)header_count(&h, "CC");

	strlist_init(&rc);
	if (msg_rcpts(&h, &rc, err, sizeof(err)) == 0)
		for (k = 0; k < rc.n; k++)
			fuzz_assert(addr_check(rc.v[k], 0, err,
			    sizeof(err)) == 0);
	else
		fuzz_assert(rc.n == 0);
	strlist_free(&rc);

	/* -F: the start of the input, short enough for a From: line */
	memcpy(name, text, size < sizeof(name) ? size + 1 : sizeof(name));
	name[sizeof(name) - 1] = '\0';
	memset(&fx, 0, sizeof(fx));
	fx.sender = "";
	fx.fullname = name;
	fx.user = "user";
	fx.qualify_domain = FUZZ_DOMAIN;
	fx.hostname = FUZZ_DOMAIN;
	fx.msgid = "FUZZID";
	fx.now = 0;
	if (msg_fixup(&h, &fx, err, sizeof(err)) < 0) {
		/* the only failure valid inputs allow */
		fuzz_assert(strncmp(err, "header too big", 14) == 0);
		goto out;
	}
	fuzz_assert(header_count(&h, "bcc") == 0);
	fuzz_assert(header_count(&h, "return-path") == 0);
	fuzz_assert(header_count(&h, "date") > 0);
	fuzz_assert(header_count(&h, "message-id") > 0);
	fuzz_assert(header_count(&h, "from") > 0);
	fuzz_rewrite(&h);
out:
	header_free(&h);
	free(text);
	return 0;
}

#ifndef FUZZ_MSG_NO_MAIN
FUZZ_ENTRY(fuzz_msg)
#endif
