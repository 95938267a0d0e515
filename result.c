/*
 * result.c - the facts of an outcome, and the one place that words them.
 *
 * A delivery step that does not succeed fills a struct result with what
 * it knows: the outcome class, a reason from a closed set (enum reason),
 * the protocol step, the server's reply code, its RFC 3463 status and
 * text, the remote host and address, errno.  Everything that shows an
 * outcome reads those fields: result_text makes the sentence for the log,
 * the queue listing and --doctor; result_dsn makes the Status, Remote-MTA
 * and Diagnostic-Code of a bounce.  Nothing recovers a fact from a
 * sentence.
 *
 * Envelope form (queue.c stores it after its recipient, version 2):
 *
 *   result o=temp|perm why=NAME [step=NAME] [code=N] [status=X.Y.Z]
 *          [err=N] [sending=1] [host=NAME] [peer=[ADDR]:PORT]
 *          [size=N] [limit=N] [lifetime=N] [last=NAME]
 *   detail TEXT
 *
 * Names are those of the reasons and step_names tables below; an unknown
 * name or key refuses the envelope (an older mxsend reading a newer one
 * leaves the message alone).  Every value is bounded and printable, a
 * status is an RFC 3463 code, and last= goes only with why=expired (an
 * expiry is never the last error of another).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mxsend.h"

/*
 * Each reason: its name in envelopes and JSON, and its sentence, where
 * %H is the host and its address ("mx.example[192.0.2.1]:25"), %T the
 * detail, %C the reply code, %E errno in words, %S and %L the size and
 * the limit, %W the command a reply answered.  None: the detail alone,
 * or form() chooses.
 */
static const struct {
	const char *name, *words;
} reasons[R_COUNT] = {
	[R_NONE] = { "none", NULL },
	[R_REPLY] = { "reply", "%H said: %C %T (in reply to %W)" },
	[R_CONNECT] = { "connect", "%H: connect: %E" },
	[R_TIMEOUT] = { "timeout", NULL }, [R_CLOSED] = { "closed", NULL },
	[R_NETIO] = { "netio", NULL },
	[R_PROTOCOL] = { "protocol", "%H: protocol error: %T" },
	[R_UNFINISHED] = { "unfinished", "%H: transaction not completed" },
	[R_NOT_REUSABLE] = { "not-reusable", "%H: connection not reusable" },
	[R_TLS_NOT_OFFERED] = { "tls-not-offered", "%H does not offer "
	    "STARTTLS (tls %T: mail is not sent in plain text)" },
	[R_TLS_HANDSHAKE] = { "tls-handshake", "%H: TLS handshake failed: %T" },
	[R_TLS_VERIFY] = { "tls-verify", "%H: TLS handshake failed: "
	    "certificate verification failed: %T" },
	[R_TLS_NOT_TLS] = { "tls-not-tls", "%H speaks plain text, not implicit "
	    "TLS (port 465 means implicit TLS; for STARTTLS use port 587 or "
	    "smarthost_tls starttls)" },
	[R_TLS_SILENT] = { "tls-silent", "%H sent no greeting (a server that "
	    "expects implicit TLS waits like this: smarthost_tls implicit)" },
	[R_TLS_SETUP] = { "tls-setup", NULL },
	[R_AUTH_REFUSED] = { "auth-refused", "%H: authentication failed: %C %T" },
	[R_AUTH_UNVERIFIED] = { "auth-unverified", "%H: not authenticating to a "
	    "server whose certificate was not verified (tls %T); use tls "
	    "verify with the right tls_ca_file, or auth_unverified yes" },
	[R_AUTH_PLAIN_UNVERIFIED] = { "auth-plain-unverified", "%H: not "
	    "sending a password with AUTH PLAIN or LOGIN over TLS that was not "
	    "verified, auth_unverified yes or not (use tls verify, with "
	    "tls_ca_file if needed)" },
	[R_AUTH_NOT_OFFERED] = { "auth-not-offered", "%H does not offer AUTH, "
	    "but auth_file has credentials for it" },
	[R_AUTH_NO_MECH] = { "auth-no-mech", "%H offers no AUTH mechanism "
	    "mxsend speaks (offered: %T; mxsend: SCRAM-SHA-256 PLAIN LOGIN)" },
	[R_AUTH_NO_TLS] = { "auth-no-tls", "%H: not sending credentials "
	    "without TLS (tls is %T)" },
	[R_AUTH_SCRAM] = { "auth-scram", NULL },
	[R_TOO_BIG] = { "too-big", "%H: message size %S exceeds the server's "
	    "limit of %L" },
	[R_8BIT] = { "8bit", "%H does not offer 8BITMIME and the message "
	    "cannot be converted to 7-bit MIME" },
	[R_DNS_NXDOMAIN] = { "dns-nxdomain", "%T: domain not found" },
	[R_DNS_NULL_MX] = { "dns-null-mx", "%T: domain does not accept mail "
	    "(null MX)" },
	[R_DNS_NO_ADDRESS] = { "dns-no-address", NULL }, [R_DNS_TEMP] = { "dns-temp", NULL },
	[R_DNS_BAD_NAME] = { "dns-bad-name", NULL },
	[R_NO_ROUTE] = { "no-route", "no address to try for %T" },
	[R_NO_USER] = { "no-user", "no such local user" },
	[R_LOCAL_OFF] = { "local-off", "no mailbox for %T: local delivery is "
	    "off (local_delivery none) and no alias sends it elsewhere" },
	[R_LOCAL] = { "local", NULL }, [R_ALIAS] = { "alias", NULL },
	[R_EXPIRED] = { "expired", NULL }, [R_QUEUE] = { "queue", NULL },
	[R_CONFIG] = { "config", NULL }, [R_SYSTEM] = { "system", NULL },
	[R_NOMEM] = { "nomem", NULL }, [R_LEGACY] = { "legacy", NULL },
	[R_NO_SMTPUTF8] = { "no-smtputf8", "%H does not offer SMTPUTF8, and "
	    "the address %T cannot be sent without it: its local part is not "
	    "ASCII" },
};

static const char *const step_names[STEP_COUNT] = {
	"none", "connect", "greeting", "ehlo", "helo", "starttls", "tls",
	"auth", "mail", "rcpt", "data", "dot", "rset", "quit", "bdat" };

static const char *const outcome_names[] = { "ok", "temp", "perm" };

const char *
outcome_name(enum outcome o)
{
	return (unsigned)o < 3 ? outcome_names[o] : "temp";
}

const char *
reason_name(enum reason why)
{
	return (unsigned)why < R_COUNT && reasons[why].name ?
	    reasons[why].name : "none";
}

const char *
step_name(enum smtp_step step)
{
	return (unsigned)step < STEP_COUNT && step_names[step] ?
	    step_names[step] : "none";
}

/* set_text - the detail, printable */
static void
set_text(struct result *r, const char *fmt, va_list ap)
{
	char tmp[ERRTEXT_MAX];

	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	printable(r->text, sizeof(r->text), tmp, strlen(tmp));
}

void
result_set(struct result *r, enum outcome o, enum reason why,
    const char *fmt, ...)
{
	va_list ap;

	memset(r, 0, offsetof(struct result, text));
	r->o = o;
	r->why = why;
	va_start(ap, fmt);
	set_text(r, fmt, ap);
	va_end(ap);
}

void
result_at(struct result *r, enum outcome o, enum reason why,
    const char *host, const char *peer, const char *fmt, ...)
{
	va_list ap;

	memset(r, 0, offsetof(struct result, text));
	r->o = o;
	r->why = why;
	if (host)
		printable(r->host, sizeof(r->host), host, strlen(host));
	if (peer)
		printable(r->peer, sizeof(r->peer), peer, strlen(peer));
	va_start(ap, fmt);
	set_text(r, fmt, ap);
	va_end(ap);
}

void
result_oom(struct result *r)
{
	result_set(r, OUT_TEMP, R_NOMEM, "%s", "");
}

/* in_reply_to - the command a reply answered, as people read it */
static void
in_reply_to(enum smtp_step step, const char *rcpt, struct buf *b)
{
	static const char *const said[STEP_COUNT] = {
		[STEP_GREETING] = "the greeting", [STEP_EHLO] = "EHLO",
		[STEP_HELO] = "HELO", [STEP_STARTTLS] = "STARTTLS",
		[STEP_AUTH] = "AUTH", [STEP_MAIL] = "MAIL FROM",
		[STEP_DATA] = "DATA", [STEP_DOT] = "end of data",
		[STEP_RSET] = "RSET", [STEP_QUIT] = "QUIT",
	};

	if (step == STEP_RCPT && rcpt)
		buf_printf(b, "RCPT TO:<%s>", rcpt);
	else if (step == STEP_RCPT)
		buf_adds(b, "RCPT TO");
	else
		buf_adds(b, (unsigned)step < STEP_COUNT && said[step] ?
		    said[step] : "a command");
}

/* form - the sentence of r, for the reasons whose words vary */
static const char *
form(const struct result *r)
{
	switch (r->why) {
	case R_TIMEOUT:
		return r->step == STEP_CONNECT ? "%H: connection timed out" :
		    r->sending ? "%H: timeout while sending" :
		    "%H: timeout waiting for reply";
	case R_CLOSED:
		return r->sending ? "%H: write: connection closed" :
		    "%H: connection closed by server";
	case R_NETIO:
		return r->sending ? "%H: write: %E" : "%H: %E";
	case R_TLS_SETUP:
		return r->host[0] ? "%H: TLS setup: %T" : "TLS setup: %T";
	case R_AUTH_SCRAM:
		return r->host[0] ? "%H: SCRAM: %T" : "SCRAM: %T";
	case R_NOMEM:
		return r->text[0] ? "%T: out of memory" : "out of memory";
	default:
		return (unsigned)r->why < R_COUNT && reasons[r->why].words ?
		    reasons[r->why].words : "%T";
	}
}

/* expand - the sentence of r (not an expiry) into b */
static void
expand(const struct result *r, const char *rcpt, struct buf *b)
{
	const char *f;

	for (f = form(r); *f; f++) {
		if (*f != '%' || f[1] == '\0') {
			buf_addc(b, *f);
			continue;
		}
		switch (*++f) {
		case 'H':
			buf_printf(b, "%s%s", r->host, r->peer);
			break;
		case 'T':
			buf_adds(b, r->text);
			break;
		case 'C':
			buf_printf(b, "%d", r->code);
			break;
		case 'E':
			buf_adds(b, strerror(r->err));
			break;
		case 'S':
			buf_printf(b, "%lld", r->size);
			break;
		case 'L':
			buf_printf(b, "%lld", r->limit);
			break;
		case 'W':
			in_reply_to(r->step, rcpt, b);
			break;
		}
	}
	/* Past the final dot a lost connection may mean the message was
	 * delivered. */
	if (r->step == STEP_DOT && r->why != R_REPLY && r->why != R_NONE)
		buf_adds(b, " (possible duplicate)");
}

void
result_text(const struct result *r, const char *rcpt, char *out,
    size_t outlen)
{
	struct result last;
	struct buf b;
	char t[ERRTEXT_MAX];

	if (outlen == 0)
		return;
	buf_init(&b, 0);
	if (r->why == R_EXPIRED) {
		last = *r;
		last.why = r->why_last;
		last.why_last = R_NONE;
		t[0] = '\0';
		if (last.why != R_NONE && last.why != R_EXPIRED)
			result_text(&last, rcpt, t, sizeof(t));
		buf_printf(&b, "delivery time expired after %lds; last error: %s",
		    r->lifetime, t[0] ? t : "none");
	} else
		expand(r, rcpt, &b);
	/* One line of ERRTEXT_MAX at the most, as every result was. */
	printable(out, outlen < ERRTEXT_MAX ? outlen : ERRTEXT_MAX,
	    b.p ? b.p : "", b.len);
	buf_free(&b);
}

/* dsn_status - RFC 3463 status of a result that is not a reply */
static const char *
dsn_status(const struct result *r)
{
	int perm = r->o == OUT_PERM;

	if (r->o == OUT_OK)
		return "2.0.0";
	if (r->why == R_DNS_NULL_MX)
		return "5.1.10";
	if (perm && r->why == R_DNS_NXDOMAIN)
		return "5.1.2";
	/* RFC 3463 3.4, 3.7; RFC 6531 3.6 */
	if (r->why == R_TOO_BIG)
		return perm ? "5.3.4" : "4.3.4";
	if (r->why == R_8BIT)
		return perm ? "5.6.3" : "4.6.3";
	if (r->why == R_NO_SMTPUTF8)
		return perm ? "5.6.7" : "4.6.7";
	if (r->why == R_EXPIRED)
		return "4.4.7";
	if (perm)
		return "5.0.0";
	if (r->why == R_DNS_TEMP)
		return "4.4.3";
	return "4.4.1";
}

void
result_dsn(const struct result *r, const char *rcpt, struct result_dsn *d)
{
	struct result last;
	char t[ERRTEXT_MAX];

	/* Expired in the queue: the last temporary error is the one to
	 * report, with its 4.x.x status, as Postfix does. */
	if (r->why == R_EXPIRED && r->why_last != R_NONE &&
	    r->why_last != R_EXPIRED) {
		last = *r;
		last.why = r->why_last;
		last.why_last = R_NONE;
		last.o = OUT_TEMP;
		result_dsn(&last, rcpt, d);
		return;
	}
	memset(d, 0, sizeof(*d));
	if (r->why == R_REPLY) {
		snprintf(d->remote, sizeof(d->remote), "%s", r->host);
		snprintf(d->diag, sizeof(d->diag), "smtp; %d %s", r->code,
		    r->text);
		if (r->status[0])
			snprintf(d->status, sizeof(d->status), "%s", r->status);
		else if (r->code == 552 && (r->step == STEP_MAIL ||
		    r->step == STEP_DATA || r->step == STEP_DOT ||
		    r->step == STEP_BDAT))
			/* RFC 5321 4.2.2, RFC 1870 6.1: exceeded storage
			 * allocation for the message, not the mailbox */
			snprintf(d->status, sizeof(d->status), "%d.3.4",
			    r->o == OUT_PERM ? 5 : 4);
		else
			snprintf(d->status, sizeof(d->status), "%d.0.0",
			    r->code >= 400 && r->code < 600 ? r->code / 100 :
			    r->o == OUT_PERM ? 5 : 4);
		return;
	}
	snprintf(d->status, sizeof(d->status), "%s", dsn_status(r));
	result_text(r, rcpt, t, sizeof(t));
	snprintf(d->diag, sizeof(d->diag), "X-mxsend; %s", t);
}

/* add_word - " key=value", a space or '=' in the value as '?' */
static int
add_word(struct buf *b, const char *key, const char *val)
{
	int rc = buf_printf(b, " %s=", key);

	for (; *val; val++)
		rc |= buf_addc(b, *val == ' ' || *val == '=' ? '?' : *val);
	return rc;
}

int
result_dump(const struct result *r, struct buf *b)
{
	int rc;

	rc = buf_printf(b, "o=%s why=%s", outcome_name(r->o),
	    reason_name(r->why));
	if (r->why_last != R_NONE)
		rc |= buf_printf(b, " last=%s", reason_name(r->why_last));
	if (r->step != STEP_NONE && (unsigned)r->step < STEP_COUNT)
		rc |= buf_printf(b, " step=%s", step_names[r->step]);
	if (r->code)
		rc |= buf_printf(b, " code=%d", r->code);
	if (r->status[0])
		rc |= add_word(b, "status", r->status);
	if (r->err)
		rc |= buf_printf(b, " err=%d", r->err);
	if (r->sending)
		rc |= buf_adds(b, " sending=1");
	if (r->host[0])
		rc |= add_word(b, "host", r->host);
	if (r->peer[0])
		rc |= add_word(b, "peer", r->peer);
	if (r->size || r->limit)
		rc |= buf_printf(b, " size=%lld limit=%lld", r->size, r->limit);
	if (r->lifetime)
		rc |= buf_printf(b, " lifetime=%ld", r->lifetime);
	return rc ? -1 : 0;
}

/* name_of - the index of name in a table of n names, or -1 */
static int
name_of(const char *const *names, int n, const char *name, size_t len)
{
	int i;

	for (i = 0; i < n; i++)
		if (names[i] && strlen(names[i]) == len &&
		    memcmp(names[i], name, len) == 0)
			return i;
	return -1;
}

/* copy_word - a word's value into a field of size cap, printable */
static int
copy_word(char *dst, size_t cap, const char *v, size_t len)
{
	size_t i;

	if (len == 0 || len >= cap)
		return -1;
	for (i = 0; i < len; i++)
		if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f)
			return -1;
	memcpy(dst, v, len);
	dst[len] = '\0';
	return 0;
}

/* status_ok - an RFC 3463 status as smtp.c takes it from a reply
 * (enhanced): a class digit 2 to 5, subject and detail of one to three
 * digits */
static int
status_ok(const char *v, size_t len)
{
	size_t i = 1, part, n;

	if (len < 5 || v[0] < '2' || v[0] > '5')
		return 0;
	for (part = 0; part < 2; part++) {
		if (i >= len || v[i++] != '.')
			return 0;
		for (n = 0; i < len && v[i] >= '0' && v[i] <= '9'; i++)
			n++;
		if (n < 1 || n > 3)
			return 0;
	}
	return i == len;
}

/* load_word - one key=value of the envelope form */
static int
load_word(struct result *r, const char *k, size_t klen, const char *v,
    size_t vlen)
{
	long long n;
	int i;

#define KEY(s) (klen == sizeof(s) - 1 && memcmp(k, s, klen) == 0)
	if (KEY("o"))
		return (i = name_of(outcome_names, 3, v, vlen)) < 0 ? -1 :
		    (r->o = (enum outcome)i, 0);
	if (KEY("why") || KEY("last")) {
		for (i = 0; i < R_COUNT; i++)
			if (strlen(reasons[i].name) == vlen &&
			    memcmp(reasons[i].name, v, vlen) == 0)
				break;
		if (i == R_COUNT)
			return -1;
		*(KEY("why") ? &r->why : &r->why_last) = (enum reason)i;
		return 0;
	}
	if (KEY("step"))
		return (i = name_of(step_names, STEP_COUNT, v, vlen)) < 0 ? -1 :
		    (r->step = (enum smtp_step)i, 0);
	if (KEY("status"))
		return !status_ok(v, vlen) ? -1 :
		    copy_word(r->status, sizeof(r->status), v, vlen);
	if (KEY("host"))
		return copy_word(r->host, sizeof(r->host), v, vlen);
	if (KEY("peer"))
		return copy_word(r->peer, sizeof(r->peer), v, vlen);
	if (KEY("code"))
		return parse_decimal(v, vlen, 999, &n) < 0 ? -1 : (r->code = (int)n, 0);
	if (KEY("err"))
		return parse_decimal(v, vlen, 4095, &n) < 0 ? -1 : (r->err = (int)n, 0);
	if (KEY("sending"))
		return parse_decimal(v, vlen, 1, &n) < 0 ? -1 : (r->sending = (int)n, 0);
	if (KEY("size"))
		return parse_decimal(v, vlen, MESSAGE_SIZE_MAX, &r->size);
	if (KEY("limit"))
		return parse_decimal(v, vlen, 1LL << 62, &r->limit);
	if (KEY("lifetime"))
		return parse_decimal(v, vlen, DURATION_MAX, &n) < 0 ? -1 :
		    (r->lifetime = (long)n, 0);
#undef KEY
	return -1;
}

int
result_load(struct result *r, const char *words, const char *text)
{
	const char *p = words, *e, *eq;

	memset(r, 0, sizeof(*r));
	r->o = OUT_TEMP;
	while (*p) {
		if (*p == ' ') {
			p++;
			continue;
		}
		e = strchr(p, ' ');
		if (e == NULL)
			e = p + strlen(p);
		eq = memchr(p, '=', (size_t)(e - p));
		if (eq == NULL || load_word(r, p, (size_t)(eq - p), eq + 1,
		    (size_t)(e - eq - 1)) < 0)
			return -1;
		p = e;
	}
	/* The last error of an expiry is an error of its own kind. */
	if ((r->why_last != R_NONE) != (r->why == R_EXPIRED && r->why_last !=
	    R_NONE) || r->why_last == R_EXPIRED)
		return -1;
	if (text) {
		if (strlen(text) >= sizeof(r->text))
			return -1;
		printable(r->text, sizeof(r->text), text, strlen(text));
	}
	return 0;
}

const char *
result_str(const struct result *r, struct rtext *t)
{
	result_text(r, NULL, t->s, sizeof(t->s));
	return t->s;
}

struct result *
result_dup(const struct result *r)
{
	struct result *d = xmalloc(sizeof(*d));

	*d = *r;
	return d;
}
