/*
 * doctor.c - sendmail --doctor [DOMAIN]: can mail flow from here?
 *
 * One line per check, "ok  WHAT" or "FAIL WHAT: ADVICE" ("warn WHAT:
 * ADVICE" where it may be fine), in the order a message travels: the
 * configuration, the queue, the credentials file, the host name (the EHLO
 * name), DNS, then for each mail exchanger of DOMAIN (or the smarthost) a real
 * connection with EHLO, STARTTLS and certificate verification, and AUTH
 * when auth_file has credentials.  No mail is sent: each connection ends
 * with QUIT after the checks.  The answer is yes (exit 0) when at least
 * one exchanger took a connection the configured tls policy accepts.
 *
 * The queue line says who can use the queue, from the directory's owner,
 * group and mode (queue.c, Permissions): root-only (0700: only root can
 * submit) or shared with a group (2770: users submit through a sendmail
 * installed setgid to that group; whether this one is comes from
 * /proc/self/exe, the file that is running).  A test submission is
 * created and removed, and in a group queue every file must be
 * read-write for the group, or other users' runs cannot deliver it.
 *
 * The host name must be a fully qualified domain name with an address,
 * or receivers reject the EHLO.  Whether that address is this machine's
 * is told only when it is one of the interfaces' addresses, or when an
 * interface has a public address (then "warn"): behind NAT the public
 * address is on no interface here, and nothing is said.
 *
 * Security: nothing secret is printed; credentials are only used for
 * AUTH over TLS, as in delivery.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
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

static void
say_warn(FILE *out, const char *what, const char *advice)
{
	fprintf(out, "warn %s: %s\n", what, advice);
}

/* id_name - the name of a user (group 0) or group id, or the number */
static const char *
id_name(int group, unsigned long id, char *buf, size_t len)
{
	struct passwd *pw = group ? NULL : getpwuid((uid_t)id);
	struct group *gr = group ? getgrgid((gid_t)id) : NULL;
	const char *name = pw ? pw->pw_name : gr ? gr->gr_name : NULL;

	if (name)
		snprintf(buf, len, "%s", name);
	else
		snprintf(buf, len, "%lu", id);
	return buf;
}

/* queue_odd - count the files of dir (one level) that a group queue's
 * users could not share (not read-write for group gid) or that anyone
 * could read (world bits); the first of each kind goes to ex */
static void
queue_odd(const char *dir, int group, gid_t gid, size_t *ngrp, size_t *nworld,
    char *exg, char *exw, size_t exlen)
{
	char path[1100];
	struct dirent *d;
	struct stat st;
	DIR *dp = opendir(dir);

	if (dp == NULL)
		return;
	while ((d = readdir(dp)) != NULL) {
		if (d->d_name[0] == '.' || (size_t)snprintf(path, sizeof(path),
		    "%s/%s", dir, d->d_name) >= sizeof(path) ||
		    lstat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (st.st_mode & S_IRWXO) {
			if ((*nworld)++ == 0)
				snprintf(exw, exlen, "%s", path);
		}
		if (group && ((st.st_mode & (S_IRGRP | S_IWGRP)) !=
		    (S_IRGRP | S_IWGRP) || st.st_gid != gid)) {
			if ((*ngrp)++ == 0)
				snprintf(exg, exlen, "%s", path);
		}
	}
	closedir(dp);
}

/* queue_who - who can use the queue of mode st, in plain words, into
 * what (after the first n octets) */
static void
queue_who(const struct stat *st, const char *owner, const char *grp,
    char *what, size_t len, size_t n)
{
	char path[1100], bgrp[64];
	struct stat bin;
	ssize_t k;

	if (!(st->st_mode & S_IRWXG)) {
		snprintf(what + n, len - n, "root-only, only %s can submit mail",
		    st->st_uid == 0 ? "root" : owner);
		return;
	}
	if (!(st->st_mode & S_IWGRP)) {
		snprintf(what + n, len - n, "group %s may read it (mailq) but "
		    "not write, so only %s can submit mail", grp,
		    st->st_uid == 0 ? "root" : owner);
		return;
	}
	n += (size_t)snprintf(what + n, len - n, "shared by root and group %s; "
	    "other users submit through a sendmail installed setgid %s "
	    "(root:%s 2755)", grp, grp, grp);
	/* The running file, whatever name started it. */
	if (n >= len || stat("/proc/self/exe", &bin) < 0)
		return;
	k = readlink("/proc/self/exe", path, sizeof(path) - 1);
	path[k > 0 ? k : 0] = '\0';
	if ((bin.st_mode & S_ISGID) && bin.st_gid == st->st_gid)
		snprintf(what + n, len - n, "; %s (running now) is setgid %s, so "
		    "every user can submit mail", path[0] ? path :
		    "this sendmail", grp);
	else
		snprintf(what + n, len - n, "; %s (running now) is not (group "
		    "%s, mode %04o), so only root and group %s can submit mail",
		    path[0] ? path : "this sendmail", id_name(1, bin.st_gid,
		    bgrp, sizeof(bgrp)), (unsigned)(bin.st_mode & 07777), grp);
}

/* queue_store - can a submission be stored, and with which mode? */
static void
queue_store(const struct conf *c, FILE *out)
{
	char what[4096], bgrp[64];
	struct result res;
	struct rtext t;
	struct stat bin;
	struct qfile q;

	if (queue_create(c, &q, &res) < 0) {
		snprintf(what, sizeof(what), "queue %s", c->queue_dir);
		say_fail(out, what, result_str(&res, &t));
		return;
	}
	if (fstat(q.fd, &bin) < 0)
		memset(&bin, 0, sizeof(bin));
	queue_abort(&q);
	snprintf(what, sizeof(what), "queue %s is writable: a new message file "
	    "gets mode %04o, group %s", c->queue_dir,
	    (unsigned)(bin.st_mode & 07777), id_name(1, bin.st_gid, bgrp,
	    sizeof(bgrp)));
	say_ok(out, what);
}

/* queue_files - files the other users of a group queue could not
 * handle, or that anyone could read */
static void
queue_files(const struct conf *c, const struct stat *st, const char *grp,
    FILE *out)
{
	char what[4096], path[1100], exg[1100], exw[1100], fix[256];
	int group = (st->st_mode & S_IRWXG) != 0;
	size_t ngrp = 0, nworld = 0;

	queue_odd(c->queue_dir, group, st->st_gid, &ngrp, &nworld, exg, exw,
	    sizeof(exg));
	snprintf(path, sizeof(path), "%s/tmp", c->queue_dir);
	queue_odd(path, group, st->st_gid, &ngrp, &nworld, exg, exw,
	    sizeof(exg));
	if (nworld) {
		snprintf(what, sizeof(what), "queue %s: %zu file%s readable or "
		    "writable by everyone (%s)", c->queue_dir, nworld,
		    nworld == 1 ? " is" : "s are", exw);
		say_fail(out, what, "chmod o-rwx them");
	}
	if (ngrp) {
		snprintf(what, sizeof(what), "queue %s: %zu file%s not read-write "
		    "for group %s (%s)", c->queue_dir, ngrp, ngrp == 1 ? " is" :
		    "s are", grp, exg);
		snprintf(fix, sizeof(fix), "runs of sendmail by users other "
		    "than their owner cannot deliver or update them; chgrp %s "
		    "and chmod 660 them", grp);
		say_fail(out, what, fix);
	}
}

/* doctor_queue - who can use the queue, in plain words, and can a
 * submission be stored there */
static void
doctor_queue(const struct conf *c, FILE *out)
{
	char what[4096], owner[64], grp[64];
	struct result res;
	struct rtext t;
	struct stat st;
	int n;

	if (queue_open(c, &res) < 0) {
		say_fail(out, "queue", result_str(&res, &t));
		return;
	}
	if (lstat(c->queue_dir, &st) < 0) {
		say_fail(out, "queue", strerror(errno));
		return;
	}
	id_name(0, st.st_uid, owner, sizeof(owner));
	id_name(1, st.st_gid, grp, sizeof(grp));
	n = snprintf(what, sizeof(what), "queue %s: owner %s, group %s, mode "
	    "%04o: ", c->queue_dir, owner, grp, (unsigned)(st.st_mode & 07777));
	if (n < 0 || (size_t)n >= sizeof(what))
		n = 0;
	queue_who(&st, owner, grp, what, sizeof(what), (size_t)n);
	say_ok(out, what);
	queue_store(c, out);
	queue_files(c, &st, grp, out);
}

/* advice - plain words for a failed connection; said is the sentence
 * of r */
static const char *
advice(const struct conf *c, const struct result *r, const char *said)
{
	switch (r->why) {
	case R_TLS_VERIFY:
		return "the server's certificate does not verify for its name; "
		    "with tls verify mail to it is deferred (tls_ca_file names "
		    "other trust anchors; tls opportunistic skips the check)";
	case R_TLS_HANDSHAKE:
		return "the TLS handshake failed; with tls opportunistic mxsend "
		    "retries in plain text, with required or verify mail waits";
	case R_TLS_NOT_OFFERED:
		return "the server offers no STARTTLS; with tls required or "
		    "verify nothing is sent to it";
	case R_AUTH_UNVERIFIED:
		return "credentials go only to a server whose certificate "
		    "verifies: tls verify, with tls_ca_file naming its CA (or "
		    "auth_unverified yes, for SCRAM-SHA-256 only)";
	case R_AUTH_REFUSED:
		return "check the user and password in auth_file";
	case R_TLS_NOT_TLS:
	case R_TLS_SILENT:
		return said;
	case R_CONNECT:
	case R_TIMEOUT:
		if (!c->smarthost[0] && (r->why == R_CONNECT ||
		    r->step == STEP_CONNECT))
			return "cannot reach port 25 of this exchanger: if "
			    "outbound port 25 is blocked here (common with home "
			    "and cloud providers), configure a smarthost "
			    "(smarthost host:587 with an auth_file)";
		break;
	default:
		break;
	}
	return "the server did not accept a session; see the reason above";
}

/* doctor_auth - does auth_file have credentials for host h? */
static void
doctor_auth(const struct conf *c, const char *h, FILE *out)
{
	char what[4096], user[256], pass[512];
	struct result res;
	struct rtext t;
	int have;

	have = auth_lookup(c->auth_file, h, user, sizeof(user), pass,
	    sizeof(pass), &res);
	explicit_bzero(pass, sizeof(pass));
	snprintf(what, sizeof(what), "auth_file %s", c->auth_file);
	if (have < 0) {
		say_fail(out, what, result_str(&res, &t));
		return;
	}
	snprintf(what + strlen(what), sizeof(what) - strlen(what),
	    "%s credentials for %s", have ? " has" : ": no", h);
	say_ok(out, what);
}

/* Names that are never a host's name in the public DNS: localhost
 * (RFC 6761 6.3), multicast DNS names (RFC 6762) and the "localdomain"
 * of distributions' /etc/hosts. */
static const char *const local_names[] = {
	"localhost", ".localhost", ".local", ".localdomain", NULL
};

/* not_fqdn - why name is no fully qualified domain name, or NULL; an
 * address literal ("[192.0.2.1]") is a valid EHLO argument */
static const char *
not_fqdn(const char *name)
{
	size_t n = strlen(name), k;
	const char *const *l;

	if (name[0] == '[')
		return NULL;
	for (l = local_names; *l != NULL; l++) {
		k = strlen(*l);
		if (n >= k && strcasecmp(name + n - k, *l) == 0 &&
		    ((*l)[0] == '.' || n == k))
			return "is a local name";
	}
	if (strchr(name, '.') == NULL || strchr(name, '.') == name + n - 1)
		return "has no domain";
	return NULL;
}

/* ip_bytes - the address of sa and its length (4 or 16), or NULL */
static const unsigned char *
ip_bytes(const struct sockaddr *sa, size_t *len)
{
	if (sa == NULL)
		return NULL;
	*len = sa->sa_family == AF_INET ? 4 : 16;
	if (sa->sa_family == AF_INET)
		return (const unsigned char *)&((const struct sockaddr_in *)
		    (const void *)sa)->sin_addr;
	if (sa->sa_family == AF_INET6)
		return ((const struct sockaddr_in6 *)(const void *)sa)->
		    sin6_addr.s6_addr;
	return NULL;
}

/* ip_public - is this address reachable from other networks: not
 * loopback, link-local, private (RFC 1918, 4193) or shared (RFC 6598)? */
static int
ip_public(const unsigned char *b, size_t len)
{
	static const unsigned char loop6[16] = { [15] = 1 };

	if (len == 4)
		return !(b[0] == 127 || b[0] == 10 || (b[0] == 172 &&
		    (b[1] & 0xf0) == 16) || (b[0] == 192 && b[1] == 168) ||
		    (b[0] == 169 && b[1] == 254) || (b[0] == 100 &&
		    (b[1] & 0xc0) == 64) || b[0] == 0);
	return !(memcmp(b, loop6, 16) == 0 || (b[0] == 0xfe &&
	    (b[1] & 0xc0) == 0x80) || (b[0] & 0xfe) == 0xfc);
}

/* Whether the host name's addresses are this machine's. */
enum own_addr {
	OWN_MATCH,	/* one of them is an address of an interface */
	OWN_OTHER,	/* none is, and an interface has a public address */
	OWN_UNKNOWN	/* none is, and no interface has a public address:
			 * behind NAT, the public address is not here */
};

/* own_addr - are rt's addresses this machine's (getifaddrs)? */
static enum own_addr
own_addr(const struct route *rt)
{
	struct ifaddrs *ifs = NULL, *i;
	const unsigned char *a, *b;
	enum own_addr v = OWN_UNKNOWN;
	size_t alen, blen, k;

	if (getifaddrs(&ifs) < 0)
		return OWN_UNKNOWN;
	for (i = ifs; i != NULL; i = i->ifa_next) {
		if ((a = ip_bytes(i->ifa_addr, &alen)) == NULL)
			continue;
		if (ip_public(a, alen))
			v = OWN_OTHER;
		for (k = 0; k < rt->n; k++) {
			b = ip_bytes((const struct sockaddr *)(const void *)
			    &rt->a[k].sa, &blen);
			if (b != NULL && alen == blen && memcmp(a, b, alen) == 0) {
				v = OWN_MATCH;
				goto out;
			}
		}
	}
out:
	freeifaddrs(ifs);
	return v;
}

/* doctor_hostname - receivers reject an EHLO name that is not a fully
 * qualified domain name, or that has no address: is hostname one, does
 * it resolve (through the resolver delivery uses for a smarthost: the
 * hosts file, then DNS), and to an address of this machine? */
static void
doctor_hostname(const struct conf *c, struct dns *dns, FILE *out)
{
	char what[4096], addr[INET6_ADDRSTRLEN];
	struct route rt = { NULL, 0, 0 };
	const unsigned char *b;
	struct result res;
	struct rtext t;
	const char *why = not_fqdn(c->hostname);
	size_t len;

	if (why != NULL) {
		snprintf(what, sizeof(what), "hostname %s %s", c->hostname, why);
		say_fail(out, what, "receivers reject such EHLO names; set "
		    "hostname to this machine's fully qualified name in DNS");
		return;
	}
	if (dns_host(dns, c->hostname, 25, &rt, &res) != OUT_OK) {
		snprintf(what, sizeof(what), "hostname %s has no address (%s)",
		    c->hostname, result_str(&res, &t));
		say_fail(out, what, "receivers reject EHLO names that do not "
		    "resolve; give it an A or AAAA record for this machine, or "
		    "set hostname to a name that has one");
		return;
	}
	b = ip_bytes((const struct sockaddr *)(const void *)&rt.a[0].sa, &len);
	if (b == NULL || inet_ntop(len == 4 ? AF_INET : AF_INET6, b, addr,
	    sizeof(addr)) == NULL)
		snprintf(addr, sizeof(addr), "?");
	snprintf(what, sizeof(what), "hostname %s resolves to %s%s",
	    c->hostname, addr, rt.n > 1 ? " and more" : "");
	switch (own_addr(&rt)) {
	case OWN_MATCH:
		snprintf(what + strlen(what), sizeof(what) - strlen(what),
		    ", an address of this machine");
		say_ok(out, what);
		break;
	case OWN_OTHER:
		snprintf(what + strlen(what), sizeof(what) - strlen(what),
		    ", not an address of this machine");
		say_warn(out, what, "receivers may reject an EHLO name that "
		    "names another machine; point it at this one, or set "
		    "hostname to this machine's name");
		break;
	case OWN_UNKNOWN:
		say_ok(out, what);
		break;
	}
	route_free(&rt);
}

/* doctor_dns - the addresses mail for domain (or the smarthost) goes to
 * into rt; 0, or -1 when there are none */
static int
doctor_dns(const struct conf *c, struct dns *dns, const char *domain,
    struct route *rt, FILE *out)
{
	char what[4096];
	struct result res;
	struct rtext t;
	enum outcome o;
	size_t i;

	if (c->smarthost[0]) {
		o = dns_host(dns, c->smarthost, c->smarthost_port, rt, &res);
		snprintf(what, sizeof(what), "DNS: smarthost %s", c->smarthost);
	} else {
		o = dns_route(dns, domain, c->smtp_port, rt, &res);
		snprintf(what, sizeof(what), "DNS: mail exchangers of %s", domain);
	}
	if (o != OUT_OK) {
		say_fail(out, what, o == OUT_PERM ? result_str(&res, &t) :
		    "no answer: check dns_server or /etc/resolv.conf, and that "
		    "this machine can reach its DNS servers");
		return -1;
	}
	for (i = 0; i < rt->n; i++) {
		size_t n = strlen(what);

		snprintf(what + n, sizeof(what) - n, "%s %d %s", i ? "," : ":",
		    rt->a[i].pref, rt->a[i].host);
	}
	say_ok(out, what);
	return 0;
}

/* verify_too - under a lighter tls policy, would verify pass as well? */
static void
verify_too(const struct conf *c, const struct mxaddr *a, struct tlsopts *t,
    FILE *out)
{
	char what[4096];
	struct result res;
	struct rtext rt;
	struct smtp v;

	t->policy = TLS_VERIFY;
	t->user = NULL;
	if (smtp_open(&v, a, c, t, &res) == OUT_OK) {
		snprintf(what, sizeof(what), "%s%s: the certificate verifies for "
		    "%s", v.host, v.peer, t->name);
		say_ok(out, what);
		smtp_close(&v, 1);
	} else
		fprintf(out, "note %s (fine for tls %s)\n", result_str(&res, &rt),
		    c->tls == TLS_REQUIRED ? "required" : "opportunistic");
}

/* doctor_mx - one exchanger address: a session as delivery would have
 * it; 1 when mail can flow through it */
static int
doctor_mx(const struct conf *c, const struct mxaddr *a, FILE *out)
{
	char what[4096], user[256], pass[512];
	struct result res;
	struct tlsopts t;
	struct rtext rt;
	struct smtp s;
	int found;

	memset(&t, 0, sizeof(t));
	t.policy = c->tls;
	t.implicit = c->smarthost[0] && c->smarthost_tls == 1;
	t.name = c->smarthost[0] ? c->smarthost : a->host;
	if (c->auth_file[0]) {
		found = auth_lookup(c->auth_file, t.name, user, sizeof(user),
		    pass, sizeof(pass), &res);
		if (found < 0) {
			/* Delivery would defer here too. */
			say_fail(out, t.name, result_str(&res, &rt));
			return 0;
		}
		if (found) {
			t.user = user;
			t.pass = pass;
		}
	}
	found = smtp_open(&s, a, c, &t, &res) == OUT_OK;
	explicit_bzero(pass, sizeof(pass));
	if (!found) {
		result_str(&res, &rt);
		say_fail(out, rt.s, advice(c, &res, rt.s));
		return 0;
	}
	if (s.tls_failed[0])
		say_fail(out, s.tls_failed, "STARTTLS is offered but does not "
		    "work; mail goes out in plain text (tls opportunistic), or "
		    "waits (required, verify)");
	snprintf(what, sizeof(what), "%s%s: EHLO%s%s%s%s", s.host, s.peer,
	    s.tls.ssl ? ", TLS " : (s.ext & EXT_STARTTLS) ? "" :
	    ", no STARTTLS offered", s.tls.ssl ? s.tls.desc : "",
	    t.user ? ", AUTH as " : "", t.user ? t.user : "");
	say_ok(out, what);
	if (s.tls.ssl && c->tls != TLS_VERIFY && !s.tls.verified) {
		smtp_close(&s, 1);
		verify_too(c, a, &t, out);
	} else
		smtp_close(&s, 1);
	return 1;
}

enum doctor
doctor(const struct conf *c, const char *domain, FILE *out)
{
	struct route rt = { NULL, 0, 0 };
	struct dns *dns = NULL;
	struct result res;
	struct rtext t;
	char what[4096];
	size_t i;
	int flows = 0;

	if (domain == NULL || domain[0] == '\0')
		domain = c->qualify_domain;
	snprintf(what, sizeof(what), "config: hostname %s, qualify_domain %s, "
	    "tls %s%s%s", c->hostname, c->qualify_domain, c->tls == TLS_NONE ?
	    "none" : c->tls == TLS_OPPORTUNISTIC ? "opportunistic" :
	    c->tls == TLS_REQUIRED ? "required" : "verify", c->smarthost[0] ?
	    ", smarthost " : "", c->smarthost);
	say_ok(out, what);
	doctor_queue(c, out);
	if (c->auth_file[0])
		doctor_auth(c, c->smarthost[0] ? c->smarthost : domain, out);
	dns = dns_new(c->dns_server, c->connect_timeout, &res);
	if (dns == NULL) {
		say_fail(out, "DNS", result_str(&res, &t));
		goto out;
	}
	doctor_hostname(c, dns, out);
	if (doctor_dns(c, dns, domain, &rt, out) < 0)
		goto out;
	for (i = 0; i < rt.n && i < DOCTOR_ADDRS; i++)
		flows |= doctor_mx(c, &rt.a[i], out);
	if (flows)
		say_ok(out, "mail can flow");
	else
		say_fail(out, "mail cannot flow", "see the lines above");
out:
	route_free(&rt);
	if (dns)
		dns_free(dns);
	return flows ? DOCTOR_FLOWS : DOCTOR_STUCK;
}
