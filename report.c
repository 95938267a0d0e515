/*
 * report.c - delivery status notifications (RFC 3464, RFC 6522).
 *
 * A report is a multipart/report; report-type=delivery-status with three
 * parts: a human-readable text/plain that names each recipient and why,
 * a message/delivery-status with one per-message block (Reporting-MTA,
 * Arrival-Date) and one block per recipient (Final-Recipient, Action,
 * Status, Remote-MTA, Diagnostic-Code), and the original header block as
 * text/rfc822-headers.  The same composer writes bounces (Action: failed)
 * and delay notices (Action: delayed).
 *
 * Each recipient comes with the facts of its last attempt (struct
 * result): the sentence of part 1 is result_text's, the fields of part 2
 * result_dsn's (result.c).
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

/* add_printable - s with anything outside printable ASCII as '?' */
static int
add_printable(struct buf *b, const char *s)
{
	char t[ERRTEXT_MAX + ADDR_MAX];

	printable(t, sizeof(t), s, strlen(s));
	return buf_adds(b, t);
}

/* reason_of - recipient i's result, its class the report's action */
static void
reason_of(const struct dsn *d, size_t i, struct result *why)
{
	if (d->r[i].res)
		*why = *d->r[i].res;
	else
		result_set(why, OUT_PERM, R_LEGACY, "unknown reason");
	why->o = d->action == DSN_DELAYED ? OUT_TEMP : OUT_PERM;
}

/* part_people - part 1: for people, each recipient and why */
static int
part_people(const struct dsn *d, const char *boundary, struct buf *b)
{
	char arr[64], until[64], text[ERRTEXT_MAX];
	struct result why;
	size_t i;
	int rc = 0;

	rfc5322_date(d->arrival, arr, sizeof(arr));
	rfc5322_date(d->retry_until, until, sizeof(until));
	rc |= buf_printf(b, "--%s\r\nContent-Description: Notification\r\n"
	    "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
	    "This is the mail system at host %s.\r\n\r\n", boundary,
	    d->hostname);
	if (d->action == DSN_DELAYED)
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
		reason_of(d, i, &why);
		result_text(&why, d->r[i].addr, text, sizeof(text));
		rc |= buf_adds(b, "<");
		rc |= add_printable(b, d->r[i].addr);
		rc |= buf_adds(b, ">:\r\n    ");
		rc |= add_printable(b, text);
		rc |= buf_adds(b, "\r\n\r\n");
	}
	return rc;
}

/* part_machines - part 2: for machines (RFC 3464 2.2, 2.3) */
static int
part_machines(const struct dsn *d, const char *boundary, struct buf *b)
{
	char arr[64], until[64];
	struct result_dsn dg;
	struct result why;
	int delayed = d->action == DSN_DELAYED, rc = 0;
	size_t i;

	rfc5322_date(d->arrival, arr, sizeof(arr));
	rfc5322_date(d->retry_until, until, sizeof(until));
	rc |= buf_printf(b, "--%s\r\nContent-Description: Delivery report\r\n"
	    "Content-Type: message/delivery-status\r\n\r\n"
	    "Reporting-MTA: dns; %s\r\nX-Mxsend-Queue-ID: %s\r\n"
	    "Arrival-Date: %s\r\n", boundary, d->hostname, d->id, arr);
	for (i = 0; i < d->n; i++) {
		reason_of(d, i, &why);
		result_dsn(&why, d->r[i].addr, &dg);
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
	return rc;
}

int
dsn_compose(const struct dsn *d, struct buf *b)
{
	char date[64], boundary[96];
	int rc = 0;

	rfc5322_date(d->now, date, sizeof(date));
	snprintf(boundary, sizeof(boundary), "%s.%lld/%s", d->msgid,
	    (long long)d->now, d->hostname);
	rc |= buf_printf(b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n",
	    d->hostname);
	rc |= buf_adds(b, "To: ");
	rc |= add_printable(b, d->to);
	rc |= buf_printf(b, "\r\nSubject: %s\r\n", d->action == DSN_DELAYED ?
	    "Delayed Mail (still being retried)" :
	    "Undelivered Mail Returned to Sender");
	rc |= buf_printf(b, "Date: %s\r\nMessage-ID: <%s@%s>\r\n"
	    "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
	    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	    "\tboundary=\"%s\"\r\n\r\n"
	    "This is a MIME-encapsulated message.\r\n\r\n", date, d->msgid,
	    d->hostname, boundary);
	rc |= part_people(d, boundary, b);
	rc |= part_machines(d, boundary, b);
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
