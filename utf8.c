/*
 * utf8.c - internationalised mail: UTF-8 (RFC 3629), domains as A-labels
 * (IDNA2008 with UTS #46 mapping, RFC 5891, through libidn2), and the
 * downgrades a server without SMTPUTF8 (RFC 6531) needs.
 *
 * Security: pure functions over bounded input, no I/O.  libidn2 is given
 * only text that utf8_valid accepted.
 */
#include <idn2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mxsend.h"

/* utf8_len - octets of the well-formed UTF-8 sequence at s (at most n),
 * or 0: no overlong forms, no surrogates, nothing above U+10FFFF
 * (RFC 3629 4) */
size_t
utf8_len(const unsigned char *s, size_t n)
{
	size_t len, i;
	unsigned lo = 0x80, hi = 0xbf;

	if (n == 0)
		return 0;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		if (s[0] == 0xe0)
			lo = 0xa0;
		else if (s[0] == 0xed)
			hi = 0x9f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		if (s[0] == 0xf0)
			lo = 0x90;
		else if (s[0] == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

int
utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k;

	while (i < n) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if ((k = utf8_len(p + i, n - i)) == 0)
			return 0;
		i += k;
	}
	return 1;
}

int
has8(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] & 0x80)
			return 1;
	return 0;
}

int
idna_alabel(const char *dom, char *out, size_t outlen, char *err,
    size_t errlen)
{
	char *a = NULL;
	size_t i, n = strlen(dom);
	int rc;

	if (!has8(dom, n)) {
		if (n >= outlen) {
			snprintf(err, errlen, "domain too long");
			return -1;
		}
		for (i = 0; i <= n; i++)
			out[i] = (char)((dom[i] >= 'A' && dom[i] <= 'Z') ?
			    dom[i] - 'A' + 'a' : dom[i]);
		return 0;
	}
	if (!utf8_valid(dom, n)) {
		snprintf(err, errlen, "domain is not valid UTF-8");
		return -1;
	}
	/* UTS #46 non-transitional mapping, then IDNA2008 (RFC 5891). */
	rc = idn2_to_ascii_8z(dom, &a, IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL);
	if (rc != IDN2_OK) {
		snprintf(err, errlen, "domain refused by IDNA2008: %s",
		    idn2_strerror(rc));
		return -1;
	}
	n = strlen(a);
	if (n >= outlen) {
		idn2_free(a);
		snprintf(err, errlen, "domain too long");
		return -1;
	}
	memcpy(out, a, n + 1);
	idn2_free(a);
	return 0;
}

enum addr_down
addr_alabel(const char *addr, char *out, size_t outlen)
{
	const char *at = strrchr(addr, '@');
	char dom[DOMAIN_MAX + 1], err[128];
	size_t local = at ? (size_t)(at - addr) : strlen(addr);

	if (has8(addr, local))
		return AD_LOCAL8;
	if (at == NULL) {
		if (strlen(addr) >= outlen)
			return AD_BADDOMAIN;
		memcpy(out, addr, strlen(addr) + 1);
		return AD_OK;
	}
	if (!has8(at + 1, strlen(at + 1))) {
		/* An ASCII domain is sent as given. */
		if (strlen(addr) >= outlen)
			return AD_BADDOMAIN;
		memcpy(out, addr, strlen(addr) + 1);
		return AD_OK;
	}
	if (idna_alabel(at + 1, dom, sizeof(dom), err, sizeof(err)) < 0 ||
	    local + 1 + strlen(dom) >= outlen)
		return AD_BADDOMAIN;
	memcpy(out, addr, local + 1);
	memcpy(out + local + 1, dom, strlen(dom) + 1);
	return AD_OK;
}

/* Placeholders until the downgrades land. */
int
hdr_downgrade(const char *field, size_t len, int utf8_ok, struct buf *out)
{
	(void)utf8_ok;
	return buf_add(out, field, len);
}

void
orcpt_param(char *out, size_t outlen, const char *addr, int utf8)
{
	(void)addr;
	(void)utf8;
	if (outlen)
		out[0] = '\0';
}

void
term_safe(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	printable(dst, dstlen, src, srclen);
}
