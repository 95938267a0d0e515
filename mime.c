/*
 * mime.c - delivery status notifications (RFC 3464, RFC 6522).
 *
 * A report is a multipart/report; report-type=delivery-status with three
 * parts: a human-readable text/plain that names each recipient and why,
 * a message/delivery-status with one per-message block (Reporting-MTA,
 * Arrival-Date) and one block per recipient (Final-Recipient, Action,
 * Status, Remote-MTA, Diagnostic-Code), and the original header block as
 * text/rfc822-headers.  The same composer writes bounces (Action: failed)
 * and delay notices (Action: delayed).
 *
 * The reason kept for a recipient (struct rcpt's error) is the text
 * smtp.c makes of a server reply, "HOST[ADDR]:PORT said: CODE TEXT (in
 * reply to WHAT)", or a local reason ("domain not found").  dsn_diag
 * takes it apart again for the machine-readable fields.
 *
 * Security: all of this is pure: no I/O.  Every text that came from a
 * server was made printable before it was stored; it is made printable
 * again here, so a report is 7-bit except for the original headers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mxsend.h"

static const char *const wday[] = {
	"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
};
static const char *const mon[] = {
	"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
	"Nov", "Dec"
};

/* rfc5322_date - "Sat, 28 Nov 2026 08:22:42 +0000" in local time */
void
rfc5322_date(time_t t, char *out, size_t outlen)
{
	struct tm tm;
	long off;

	localtime_r(&t, &tm);
	off = tm.tm_gmtoff / 60;
	snprintf(out, outlen, "%s, %d %s %d %02d:%02d:%02d %c%02ld%02ld",
	    wday[tm.tm_wday % 7], tm.tm_mday, mon[tm.tm_mon % 12],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    off < 0 ? '-' : '+', (off < 0 ? -off : off) / 60,
	    (off < 0 ? -off : off) % 60);
}

/* enhanced - length of an RFC 3463 code "c.sss.ddd" at p, or 0 */
static size_t
enhanced(const char *p)
{
	size_t i = 0, n;
	int part;

	if (p[0] < '2' || p[0] > '5' || p[1] != '.')
		return 0;
	i = 2;
	for (part = 0; part < 2; part++) {
		for (n = 0; p[i] >= '0' && p[i] <= '9' && n < 3; n++)
			i++;
		if (n == 0)
			return 0;
		if (part == 0) {
			if (p[i] != '.')
				return 0;
			i++;
		}
	}
	return (p[i] == ' ' || p[i] == '\0') ? i : 0;
}

void
dsn_diag(const char *error, int perm, struct dsn_diag *d)
{
	const char *said = strstr(error, " said: "), *p, *br;
	size_t n;

	snprintf(d->status, sizeof(d->status), "%c.0.0", perm ? '5' : '4');
	d->remote[0] = '\0';
	if (said == NULL) {
		if (strstr(error, "null MX"))
			snprintf(d->status, sizeof(d->status), "5.1.10");
		else if (perm && strstr(error, "not found"))
			snprintf(d->status, sizeof(d->status), "5.1.2");
		else if (!perm && strstr(error, "DNS"))
			snprintf(d->status, sizeof(d->status), "4.4.3");
		else if (!perm)
			snprintf(d->status, sizeof(d->status), "4.4.1");
		snprintf(d->diag, sizeof(d->diag), "X-mxsend; %s", error);
		return;
	}
	br = strchr(error, '[');
	n = (size_t)((br && br < said ? br : said) - error);
	if (n < sizeof(d->remote))
		snprintf(d->remote, sizeof(d->remote), "%.*s", (int)n, error);
	p = said + 7;
	/* "CODE TEXT (in reply to WHAT)" -> "smtp; CODE TEXT" */
	n = strlen(p);
	br = strstr(p, " (in reply to ");
	if (br)
		n = (size_t)(br - p);
	snprintf(d->diag, sizeof(d->diag), "smtp; %.*s", (int)n, p);
	if (strlen(p) > 4 && (n = enhanced(p + 4)) > 0 && n < sizeof(d->status))
		snprintf(d->status, sizeof(d->status), "%.*s", (int)n, p + 4);
	else if (p[0] >= '4' && p[0] <= '5')
		snprintf(d->status, sizeof(d->status), "%c.0.0", p[0]);
}

/* add_printable - s with anything outside printable ASCII as '?' */
static int
add_printable(struct buf *b, const char *s)
{
	char t[ERRTEXT_MAX + ADDR_MAX];

	printable(t, sizeof(t), s, strlen(s));
	return buf_adds(b, t);
}

int
dsn_compose(const struct dsn *d, struct buf *b)
{
	char date[64], arr[64], until[64], boundary[96];
	struct dsn_diag dg;
	int delayed = d->action == DSN_DELAYED, rc = 0;
	size_t i;

	rfc5322_date(d->now, date, sizeof(date));
	rfc5322_date(d->arrival, arr, sizeof(arr));
	rfc5322_date(d->retry_until, until, sizeof(until));
	snprintf(boundary, sizeof(boundary), "%s.%lld/%s", d->msgid,
	    (long long)d->now, d->hostname);

	rc |= buf_printf(b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n",
	    d->hostname);
	rc |= buf_adds(b, "To: ");
	rc |= add_printable(b, d->to);
	rc |= buf_printf(b, "\r\nSubject: %s\r\n", delayed ?
	    "Delayed Mail (still being retried)" :
	    "Undelivered Mail Returned to Sender");
	rc |= buf_printf(b, "Date: %s\r\nMessage-ID: <%s@%s>\r\n"
	    "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	    "\tboundary=\"%s\"\r\n\r\n"
	    "This is a MIME-encapsulated message.\r\n\r\n", date, d->msgid,
	    d->hostname, boundary);

	/* Part 1: for people. */
	rc |= buf_printf(b, "--%s\r\nContent-Description: Notification\r\n"
	    "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
	    "This is the mail system at host %s.\r\n\r\n", boundary,
	    d->hostname);
	if (delayed)
		rc |= buf_printf(b, "Your message of %s has not yet been "
		    "delivered\r\nto the recipients below. It stays queued and "
		    "delivery is retried\r\nuntil %s; you do not need to send "
		    "it again.\r\n\r\n", arr, until);
	else
		rc |= buf_printf(b, "Your message of %s could not be "
		    "delivered\r\nto the recipients below, for the reasons "
		    "given. The delivery\r\nreport and the headers of your "
		    "message follow.\r\n\r\n", arr);
	for (i = 0; i < d->n; i++) {
		rc |= buf_adds(b, "<");
		rc |= add_printable(b, d->r[i].addr);
		rc |= buf_adds(b, ">:\r\n    ");
		rc |= add_printable(b, d->r[i].error ? d->r[i].error :
		    "unknown reason");
		rc |= buf_adds(b, "\r\n\r\n");
	}

	/* Part 2: for machines (RFC 3464 2.2, 2.3). */
	rc |= buf_printf(b, "--%s\r\nContent-Description: Delivery report\r\n"
	    "Content-Type: message/delivery-status\r\n\r\n"
	    "Reporting-MTA: dns; %s\r\nX-Mxsend-Queue-ID: %s\r\n"
	    "Arrival-Date: %s\r\n", boundary, d->hostname, d->id, arr);
	for (i = 0; i < d->n; i++) {
		dsn_diag(d->r[i].error ? d->r[i].error : "unknown reason",
		    !delayed, &dg);
		rc |= buf_adds(b, "\r\nFinal-Recipient: rfc822; ");
		rc |= add_printable(b, d->r[i].addr);
		rc |= buf_printf(b, "\r\nAction: %s\r\nStatus: %s\r\n",
		    delayed ? "delayed" : "failed", dg.status);
		if (dg.remote[0])
			rc |= buf_printf(b, "Remote-MTA: dns; %s\r\n", dg.remote);
		rc |= buf_adds(b, "Diagnostic-Code: ");
		rc |= add_printable(b, dg.diag);
		rc |= buf_adds(b, "\r\n");
		if (delayed)
			rc |= buf_printf(b, "Will-Retry-Until: %s\r\n", until);
	}

	/* Part 3: the original header block (RFC 6522 3). */
	rc |= buf_printf(b, "\r\n--%s\r\nContent-Description: Undelivered "
	    "Message Headers\r\nContent-Type: text/rfc822-headers\r\n\r\n",
	    boundary);
	rc |= buf_add(b, d->headers, d->headers_len);
	if (d->headers_len >= 2 && memcmp(d->headers + d->headers_len - 2,
	    "\r\n", 2) != 0)
		rc |= buf_adds(b, "\r\n");
	rc |= buf_printf(b, "\r\n--%s--\r\n", boundary);
	return rc ? -1 : 0;
}
