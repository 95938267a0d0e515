/*
 * doctor.c - sendmail --doctor [DOMAIN]: can mail flow from here?
 *
 * One line per check, "ok  WHAT" or "FAIL WHAT: ADVICE", in the order a
 * message travels: the configuration, the queue, the credentials file,
 * DNS, then for each mail exchanger of DOMAIN (or the smarthost) a real
 * connection with EHLO, STARTTLS and certificate verification, and AUTH
 * when auth_file has credentials.  No mail is sent: each connection ends
 * with QUIT after the checks.  The answer is yes (exit 0) when at least
 * one exchanger took a connection the configured tls policy accepts.
 *
 * Security: nothing secret is printed; credentials are only used for
 * AUTH over TLS, as in delivery.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mxsend.h"

/* Exchanger addresses tried at the most: enough to see a pattern. */
#define DOCTOR_ADDRS 4

static void
say_ok(FILE *out, const char *what)
{
	fprintf(out, "ok  %s\n", what);
}

static void
say_fail(FILE *out, const char *what, const char *advice)
{
	fprintf(out, "FAIL %s: %s\n", what, advice);
}

/* advice - plain words for a failed connection */
static const char *
advice(const struct conf *c, const char *err)
{
	if (strstr(err, "certificate verification failed"))
		return "the server's certificate does not verify for its name; "
		    "with tls verify mail to it is deferred (tls_ca_file names "
		    "other trust anchors; tls opportunistic skips the check)";
	if (strstr(err, "TLS handshake failed"))
		return "the TLS handshake failed; with tls opportunistic mxsend "
		    "retries in plain text, with required or verify mail waits";
	if (strstr(err, "does not offer STARTTLS"))
		return "the server offers no STARTTLS; with tls required or "
		    "verify nothing is sent to it";
	if (strstr(err, "authentication failed"))
		return "check the user and password in auth_file";
	if (strstr(err, "speaks plain text") || strstr(err, "no greeting"))
		return err;
	if (!c->smarthost[0] && (strstr(err, "timed out") ||
	    strstr(err, "refused") || strstr(err, "unreachable")))
		return "cannot reach port 25 of this exchanger: if outbound port "
		    "25 is blocked here (common with home and cloud providers), "
		    "configure a smarthost (smarthost host:587 with an "
		    "auth_file)";
	return "the server did not accept a session; see the reason above";
}

int
doctor(const struct conf *c, const char *domain, FILE *out)
{
	struct route rt = { NULL, 0, 0 };
	struct dns *dns = NULL;
	struct result res;
	char what[4096], path[1100], user[256], pass[512];
	size_t i, tried = 0;
	int flows = 0, fd, have_auth = 0;
	enum outcome o;

	if (domain == NULL || domain[0] == '\0')
		domain = c->qualify_domain;
	snprintf(what, sizeof(what), "config: hostname %s, qualify_domain %s, "
	    "tls %s%s%s", c->hostname, c->qualify_domain, c->tls == TLS_NONE ?
	    "none" : c->tls == TLS_OPPORTUNISTIC ? "opportunistic" :
	    c->tls == TLS_REQUIRED ? "required" : "verify", c->smarthost[0] ?
	    ", smarthost " : "", c->smarthost);
	say_ok(out, what);

	/* The queue: can a submission be stored? */
	snprintf(path, sizeof(path), "%s/tmp/doctor.%ld", c->queue_dir,
	    (long)getpid());
	if (queue_open(c, &res) < 0)
		say_fail(out, "queue", res.text);
	else if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600)) < 0) {
		snprintf(what, sizeof(what), "queue %s", c->queue_dir);
		say_fail(out, what, strerror(errno));
	} else {
		close(fd);
		unlink(path);
		snprintf(what, sizeof(what), "queue %s is writable", c->queue_dir);
		say_ok(out, what);
	}

	if (c->auth_file[0]) {
		const char *h = c->smarthost[0] ? c->smarthost : domain;

		have_auth = auth_lookup(c->auth_file, h, user, sizeof(user), pass,
		    sizeof(pass), &res);
		explicit_bzero(pass, sizeof(pass));
		snprintf(what, sizeof(what), "auth_file %s", c->auth_file);
		if (have_auth < 0)
			say_fail(out, what, res.text);
		else {
			snprintf(what + strlen(what), sizeof(what) - strlen(what),
			    "%s credentials for %s", have_auth ? " has" :
			    ": no", h);
			say_ok(out, what);
		}
	}

	dns = dns_new(c->dns_server, c->connect_timeout, &res);
	if (dns == NULL) {
		say_fail(out, "DNS", res.text);
		goto out;
	}
	if (c->smarthost[0]) {
		o = dns_host(dns, c->smarthost, c->smarthost_port, &rt, &res);
		snprintf(what, sizeof(what), "DNS: smarthost %s", c->smarthost);
	} else {
		o = dns_route(dns, domain, c->smtp_port, &rt, &res);
		snprintf(what, sizeof(what), "DNS: mail exchangers of %s", domain);
	}
	if (o != OUT_OK) {
		say_fail(out, what, o == OUT_PERM ? res.text :
		    "no answer: check dns_server or /etc/resolv.conf, and that "
		    "this machine can reach its DNS servers");
		goto out;
	}
	for (i = 0; i < rt.n; i++) {
		size_t n = strlen(what);

		snprintf(what + n, sizeof(what) - n, "%s %d %s", i ? "," : ":",
		    rt.a[i].pref, rt.a[i].host);
	}
	say_ok(out, what);

	for (i = 0; i < rt.n && tried < DOCTOR_ADDRS; i++, tried++) {
		struct tlsopts t;
		struct smtp s;

		memset(&t, 0, sizeof(t));
		t.policy = c->tls;
		t.implicit = c->smarthost[0] && c->smarthost_tls == 1;
		t.name = c->smarthost[0] ? c->smarthost : rt.a[i].host;
		if (c->auth_file[0]) {
			int found = auth_lookup(c->auth_file, t.name, user,
			    sizeof(user), pass, sizeof(pass), &res);

			if (found < 0) {
				/* Delivery would defer here too. */
				say_fail(out, t.name, res.text);
				continue;
			}
			if (found) {
				t.user = user;
				t.pass = pass;
			}
		}
		o = smtp_open(&s, &rt.a[i], c, &t, &res);
		explicit_bzero(pass, sizeof(pass));
		if (o != OUT_OK) {
			snprintf(what, sizeof(what), "%s", res.text);
			say_fail(out, what, advice(c, res.text));
			continue;
		}
		if (s.tls_failed[0])
			say_fail(out, s.tls_failed, "STARTTLS is offered but does "
			    "not work; mail goes out in plain text (tls "
			    "opportunistic), or waits (required, verify)");
		snprintf(what, sizeof(what), "%s%s: EHLO%s%s%s%s", s.host, s.peer,
		    s.ssl ? ", TLS " : (s.ext & EXT_STARTTLS) ? "" :
		    ", no STARTTLS offered", s.ssl ? s.tls_desc : "",
		    t.user ? ", AUTH as " : "", t.user ? t.user : "");
		say_ok(out, what);
		flows = 1;
		/* Under a lighter policy, say whether verify would pass too. */
		if (s.ssl && c->tls != TLS_VERIFY && !s.tls_verified) {
			struct smtp v;

			smtp_close(&s, 1);
			t.policy = TLS_VERIFY;
			t.user = NULL;
			if (smtp_open(&v, &rt.a[i], c, &t, &res) == OUT_OK) {
				snprintf(what, sizeof(what), "%s%s: the certificate "
				    "verifies for %s", v.host, v.peer, t.name);
				say_ok(out, what);
				smtp_close(&v, 1);
			} else
				fprintf(out, "note %s (fine for tls %s)\n", res.text,
				    c->tls == TLS_REQUIRED ? "required" :
				    "opportunistic");
		} else
			smtp_close(&s, 1);
	}
	if (flows)
		say_ok(out, "mail can flow");
	else
		say_fail(out, "mail cannot flow", "see the lines above");
out:
	route_free(&rt);
	if (dns)
		dns_free(dns);
	return flows ? 0 : 1;
}
