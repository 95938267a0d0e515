/*
 * dns.c - mail routing: MX lookup and exchanger addresses, with c-ares.
 *
 * dns_route() turns a recipient domain into the ordered list of addresses
 * to try (RFC 5321 5.1):
 *   - MX records, sorted by preference, equal preferences shuffled;
 *   - no MX record (NOERROR, no data): the domain itself, preference 0;
 *   - a domain literal "[192.0.2.1]" or "[IPv6:2001:db8::1]"
 *     (RFC 5321 4.1.3), and an MX host written as an IP address: that
 *     address, no lookup.
 * Then the A and AAAA records of every exchanger, looked up in parallel.
 * dns_host() does the same for one host name (the smarthost).
 *
 * Outcomes:
 *   OUT_PERM  NXDOMAIN for the domain; null MX (RFC 7505); no exchanger
 *             name has an address and every lookup said so definitely
 *             (NXDOMAIN or no data); the implicit MX has no address;
 *             a malformed domain or domain literal.
 *   OUT_TEMP  everything else: SERVFAIL, REFUSED, timeouts, unreachable
 *             servers, malformed answers, no memory, a bad dns_server
 *             setting; and every failure of dns_host() (a smarthost that
 *             does not resolve is a configuration problem, not a reason
 *             to bounce mail).
 *
 * Security notes:
 *   - Domains come from recipient addresses, MX host names from the
 *     network: both are checked (LDH and '_' labels, RFC 1035 lengths)
 *     before they are queried or copied, and the number of exchangers and
 *     addresses used is bounded (DNS_MX_MAX, DNS_ADDR_MAX).
 *   - Routing uses DNS only: never /etc/hosts (lookups "b"), never the
 *     search list of resolv.conf (no domains, and every name is queried
 *     as an absolute name with a trailing dot, which c-ares 1.18
 *     ares_getaddrinfo() honours by trying that name alone), never
 *     HOSTALIASES (ARES_FLAG_NOALIASES).  So a short name in an MX record
 *     cannot be completed into a local one.
 *   - Every round of queries has a deadline; a lookup never blocks the
 *     caller for longer than the timeout given to dns_new().
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include <ares.h>

#include "mxsend.h"

/*
 * RFC 5321 5.1 lets a domain list any number of exchangers, and each may
 * have many addresses, all from the network.  A sender needs only the best
 * few (Postfix tries 5 addresses by default); these bounds are far beyond
 * any working setup and cap the parallel lookups, the memory and the time
 * a hostile domain can make us spend.  Exchangers beyond the limit, which
 * are the least preferred, are not used (logged under -v).
 */
#define DNS_MX_MAX	20
#define DNS_ADDR_MAX	50
/* Entries in a dns_server setting. */
#define DNS_SERVERS_MAX	8
/* Timeout when the caller gives none, and bounds for one try. */
#define DNS_TIMEOUT_DEFAULT	30
#define DNS_TIMEOUT_MAX		3600
#define DNS_TRY_MS_MIN		100
#define DNS_TRY_MS_MAX		5000
/* A name as queried: 253 octets, the trailing dot, the NUL. */
#define QNAME_MAX	(253 + 2)

struct dns {
	ares_channel mx;	/* routing: DNS only, absolute names */
	ares_channel host;	/* smarthost: hosts file, then DNS */
	long timeout;		/* seconds, for each round of queries */
};

/* One exchanger while its addresses are looked up. */
struct exch {
	char name[HOST_MAX];
	int pref;
	int literal;		/* name is an IP address: sa is set */
	struct sockaddr_storage sa;
	socklen_t salen;
	int status;		/* ares status of the address lookup */
	struct ares_addrinfo *ai;
	int *pending;
};

/* The MX query. */
struct mxq {
	int status;
	struct ares_mx_reply *mx;
	int *pending;
};

static int ares_ready;

/* errtext - the c-ares status as words; both kinds of timeout read alike */
static const char *
errtext(int status)
{
	if (status == ARES_ETIMEOUT || status == ARES_ECANCELLED)
		return "DNS timeout";
	/* c-ares 1.18 ends with this after SERVFAIL and REFUSED answers as
	 * well as after socket errors; its own text says only the latter */
	if (status == ARES_ECONNREFUSED)
		return "DNS server failed, refused or unreachable";
	return ares_strerror(status);
}

/* nx_status - the status says the name or its data do not exist */
static int
nx_status(int status)
{
	return status == ARES_ENOTFOUND || status == ARES_ENODATA ||
	    status == ARES_ENONAME;
}

/*
 * name_ok - a name we are willing to query: labels of 1 to 63 letters,
 * digits, '-' or '_', at most 253 octets (RFC 1035 2.3.4), no trailing
 * dot.  Anything else (spaces, controls, backslash escapes from
 * ares_expand_name, non-ASCII) is refused before it reaches a query.
 */
static int
name_ok(const char *s)
{
	size_t len = 0, label = 0;
	const char *p;

	for (p = s; *p; p++, len++) {
		unsigned char c = (unsigned char)*p;

		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return 0;
		if (++label > 63)
			return 0;
	}
	return len > 0 && len <= 253 && label > 0;
}

/* set_port - store port into an AF_INET or AF_INET6 address */
static void
set_port(struct sockaddr_storage *ss, int port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
	else if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
}

/*
 * ip_parse - s as an IPv4 or IPv6 address, in sa.  With brackets it is an
 * address literal (RFC 5321 4.1.3): "[192.0.2.1]", "[IPv6:2001:db8::1]";
 * "[2001:db8::1]" is accepted too.  IP_NAME: not an address (a name),
 * IP_BAD: brackets around something else.
 */
enum ip_form { IP_ADDR, IP_NAME, IP_BAD };

static enum ip_form
ip_parse(const char *s, struct sockaddr_storage *sa, socklen_t *salen)
{
	char tmp[INET6_ADDRSTRLEN + 8];
	struct sockaddr_in *sin = (struct sockaddr_in *)sa;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)sa;
	size_t len = strlen(s);
	int bracket = 0, v6only = 0;

	if (s[0] == '[') {
		if (len < 3 || s[len - 1] != ']')
			return IP_BAD;
		s++;
		len -= 2;
		bracket = 1;
		if (len > 5 && strncasecmp(s, "IPv6:", 5) == 0) {
			s += 5;
			len -= 5;
			v6only = 1;
		}
	}
	if (len >= sizeof(tmp))
		return bracket ? IP_BAD : IP_NAME;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	memset(sa, 0, sizeof(*sa));
	if (!v6only && inet_pton(AF_INET, tmp, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		*salen = sizeof(*sin);
		return IP_ADDR;
	}
	if (inet_pton(AF_INET6, tmp, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		*salen = sizeof(*sin6);
		return IP_ADDR;
	}
	return bracket ? IP_BAD : IP_NAME;
}

/* addr_text - the address of sa as text ("?" if it has none) */
static void
addr_text(const struct sockaddr_storage *sa, char *out, size_t outlen)
{
	const void *p;

	if (sa->ss_family == AF_INET)
		p = &((const struct sockaddr_in *)sa)->sin_addr;
	else
		p = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (inet_ntop(sa->ss_family, p, out, (socklen_t)outlen) == NULL &&
	    outlen >= 2) {
		out[0] = '?';
		out[1] = '\0';
	}
}

/* same_addr - the same IP address (ports are not compared) */
static int
same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET)
		return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
		    &((const struct sockaddr_in *)b)->sin_addr,
		    sizeof(struct in_addr)) == 0;
	return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
	    &((const struct sockaddr_in6 *)b)->sin6_addr,
	    sizeof(struct in6_addr)) == 0;
}

/*
 * route_add - append one address; an address already in the route is
 * kept once, at its best preference.  ROUTE_FULL: DNS_ADDR_MAX reached,
 * the address left out; ROUTE_NOMEM: out of memory.
 */
enum route_add { ROUTE_ADDED, ROUTE_FULL, ROUTE_NOMEM };

static enum route_add
route_add(struct route *r, const char *host, int pref,
    const struct sockaddr *sa, socklen_t salen, int port)
{
	struct sockaddr_storage ss;
	struct mxaddr *m;
	size_t i;

	if (salen > sizeof(ss) ||
	    (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
		return ROUTE_ADDED;
	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, sa, salen);
	for (i = 0; i < r->n; i++)
		if (same_addr(&r->a[i].sa, &ss))
			return ROUTE_ADDED;
	if (r->n >= DNS_ADDR_MAX)
		return ROUTE_FULL;
	m = array_grow(r->a, r->n, &r->cap, sizeof(*r->a), 8);
	if (m == NULL)
		return ROUTE_NOMEM;
	r->a = m;
	m = &r->a[r->n];
	memset(m, 0, sizeof(*m));
	if (snprintf(m->host, sizeof(m->host), "%s", host) >=
	    (int)sizeof(m->host))
		return ROUTE_ADDED;	/* cannot happen: names are checked */
	m->pref = pref;
	m->sa = ss;
	m->salen = salen;
	set_port(&m->sa, port);
	r->n++;
	return ROUTE_ADDED;
}

void
route_free(struct route *r)
{
	free(r->a);
	r->a = NULL;
	r->n = r->cap = 0;
}

/* rand_below - a uniform random number in [0, n), n > 0 */
static uint32_t
rand_below(uint32_t n)
{
#if defined(__OpenBSD__) || defined(__FreeBSD__) || defined(__NetBSD__) || \
    defined(__DragonFly__) || defined(__APPLE__) || \
    (defined(__GLIBC__) && \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 36)))
	return arc4random_uniform(n);
#else
	/* Rejection sampling: no modulo bias.  The order only spreads load,
	 * so if the kernel cannot help, random() will do. */
	uint32_t v, lim = UINT32_MAX - UINT32_MAX % n;

	do {
		if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
			v = (uint32_t)random();
	} while (v >= lim);
	return v % n;
#endif
}

static int
exch_cmp(const void *a, const void *b)
{
	const struct exch *x = a, *y = b;

	return (x->pref > y->pref) - (x->pref < y->pref);
}

/* exch_order - sort by preference, shuffle equal preferences (RFC 5321 5.1) */
static void
exch_order(struct exch *e, size_t n)
{
	size_t i, j, k;

	qsort(e, n, sizeof(*e), exch_cmp);
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && e[j].pref == e[i].pref; j++)
			;
		/* Fisher-Yates over e[i..j) */
		for (k = j - 1; k > i; k--) {
			size_t r = i + rand_below((uint32_t)(k - i + 1));
			struct exch t = e[k];

			e[k] = e[r];
			e[r] = t;
		}
	}
}

/* dns_pollfds - the channel's sockets and the events it waits for, in
 * pfd[0..ARES_GETSOCK_MAXNUM); returns how many */
static int
dns_pollfds(ares_channel ch, struct pollfd *pfd)
{
	ares_socket_t socks[ARES_GETSOCK_MAXNUM];
	int bits, i, nfds = 0;

	bits = ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM);
	for (i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
		short ev = 0;

		/* ARES_GETSOCK_WRITABLE shifts a signed 1 into the sign bit
		 * for the last socket; do it unsigned */
		if ((unsigned)bits & (1u << i))
			ev |= POLLIN;
		if ((unsigned)bits & (1u << (i + ARES_GETSOCK_MAXNUM)))
			ev |= POLLOUT;
		if (ev == 0)
			continue;
		pfd[nfds].fd = socks[i];
		pfd[nfds].events = ev;
		pfd[nfds].revents = 0;
		nfds++;
	}
	return nfds;
}

/* dns_process - hand the sockets poll found ready to c-ares */
static void
dns_process(ares_channel ch, const struct pollfd *pfd, int nfds)
{
	int i;

	for (i = 0; i < nfds; i++) {
		ares_socket_t r = ARES_SOCKET_BAD, w = ARES_SOCKET_BAD;
		short re = pfd[i].revents;

		if ((pfd[i].events & POLLIN) &&
		    (re & (POLLIN | POLLERR | POLLHUP)))
			r = pfd[i].fd;
		if ((pfd[i].events & POLLOUT) &&
		    (re & (POLLOUT | POLLERR | POLLHUP)))
			w = pfd[i].fd;
		if (r != ARES_SOCKET_BAD || w != ARES_SOCKET_BAD)
			ares_process_fd(ch, r, w);
	}
}

/*
 * dns_wait - drive the channel until *pending queries have all called
 * back, or cancel them all when timeout_secs have passed (their callbacks
 * then run with ARES_ECANCELLED).  Returns 0, or -1 on the deadline or a
 * poll failure.
 */
static int
dns_wait(ares_channel ch, const int *pending, long timeout_secs)
{
	struct pollfd pfd[ARES_GETSOCK_MAXNUM];
	long long end = deadline_in(timeout_secs);
	int rc = 0;

	while (*pending > 0) {
		struct timeval maxtv, tv, *tvp;
		long long left = end - now_ms();
		int n, nfds, ms;

		if (left <= 0) {
			ares_cancel(ch);
			rc = -1;
			break;
		}
		nfds = dns_pollfds(ch, pfd);
		maxtv.tv_sec = left / 1000;
		maxtv.tv_usec = (left % 1000) * 1000;
		tvp = ares_timeout(ch, &maxtv, &tv);
		/* round up, so that a timeout due is due when poll returns */
		ms = (int)(tvp->tv_sec * 1000 + (tvp->tv_usec + 999) / 1000);
		n = poll(pfd, (nfds_t)nfds, ms);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ares_cancel(ch);
			rc = -1;
			break;
		}
		if (n == 0)
			ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
		else
			dns_process(ch, pfd, nfds);
	}
	return rc;
}

/* mx_cb - ares_query callback: parse the MX answer */
static void
mx_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct mxq *q = arg;

	(void)timeouts;
	if (status == ARES_SUCCESS)
		status = ares_parse_mx_reply(abuf, alen, &q->mx);
	q->status = status;
	(*q->pending)--;
}

/* addr_cb - ares_getaddrinfo callback: keep the addresses */
static void
addr_cb(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
	struct exch *e = arg;

	(void)timeouts;
	e->status = status;
	if (status == ARES_SUCCESS)
		e->ai = ai;
	else if (ai != NULL)
		ares_freeaddrinfo(ai);
	(*e->pending)--;
}

/* mk_qname - name as an absolute name for a query: "name." */
static int
mk_qname(char *out, size_t outlen, const char *name)
{
	int n = snprintf(out, outlen, "%s.", name);

	return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}

/*
 * addr_query - start the lookup of x's addresses on ch, counted in
 * *pending; a literal exchanger (nothing to look up) and a name too long
 * to query are settled at once.  absolute: query "name.".
 */
static void
addr_query(ares_channel ch, struct exch *x, int absolute, int *pending)
{
	static const struct ares_addrinfo_hints hints = {
		.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM
	};
	char qname[QNAME_MAX];
	int n;

	x->ai = NULL;
	x->pending = pending;
	if (x->literal) {
		x->status = ARES_SUCCESS;
		return;
	}
	n = snprintf(qname, sizeof(qname), "%s%s", x->name,
	    absolute ? "." : "");
	if (n < 0 || (size_t)n >= sizeof(qname)) {
		x->status = ARES_EBADNAME;
		return;
	}
	x->status = ARES_ECANCELLED;
	(*pending)++;
	ares_getaddrinfo(ch, qname, NULL, &hints, addr_cb, x);
}

/*
 * addr_take - x's addresses into r, unless full (route_add's last
 * answer, which is returned updated); x's lookup result is freed, and a
 * lookup that succeeded with no address becomes ARES_ENODATA.
 */
static enum route_add
addr_take(struct route *r, struct exch *x, int port, enum route_add full)
{
	struct ares_addrinfo_node *node;
	int added = 0;

	if (x->literal)
		return full != ROUTE_ADDED ? full : route_add(r, x->name, x->pref,
		    (struct sockaddr *)&x->sa, x->salen, port);
	if (x->status != ARES_SUCCESS)
		vlog("dns: %s: no address: %s", x->name, errtext(x->status));
	for (node = x->ai ? x->ai->nodes : NULL; node != NULL &&
	    full == ROUTE_ADDED;
	    node = node->ai_next) {
		full = route_add(r, x->name, x->pref, node->ai_addr,
		    (socklen_t)node->ai_addrlen, port);
		if (full == ROUTE_FULL)
			vlog("dns: more than %d addresses, the rest from %s "
			    "on are not used", DNS_ADDR_MAX, x->name);
		added++;
	}
	if (x->status == ARES_SUCCESS && added == 0)
		x->status = ARES_ENODATA;
	if (x->ai != NULL)
		ares_freeaddrinfo(x->ai);
	x->ai = NULL;
	return full;
}

/*
 * resolve - the addresses of e[0..n) into r, in that order; literal
 * exchangers without a lookup, the others in parallel on ch.  Names are
 * queried as given, or absolute.  Returns 0, or -1 when out of memory;
 * each e[i].status tells how its lookup went.
 */
static int
resolve(struct dns *d, ares_channel ch, struct exch *e, size_t n, int port,
    int absolute, struct route *r)
{
	enum route_add full = ROUTE_ADDED;
	int pending = 0, rc = 0;
	size_t i;

	for (i = 0; i < n; i++)
		addr_query(ch, &e[i], absolute, &pending);
	(void)dns_wait(ch, &pending, d->timeout);
	for (i = 0; i < n; i++) {
		full = addr_take(r, &e[i], port, full);
		if (full == ROUTE_NOMEM)
			rc = -1;
	}
	return rc;
}

/* new_channel - one c-ares channel with our options and servers */
static int
new_channel(ares_channel *ch, long timeout, int routing, const char *csv)
{
	static char lookups_dns[] = "b", lookups_files_dns[] = "fb";
	struct ares_options o;
	int mask, st;
	long try_ms;

	/* Two tries on one server, the second twice as long as the first
	 * (c-ares backs off), fill the timeout. */
	try_ms = timeout * 1000 / 3;
	if (try_ms < DNS_TRY_MS_MIN)
		try_ms = DNS_TRY_MS_MIN;
	if (try_ms > DNS_TRY_MS_MAX)
		try_ms = DNS_TRY_MS_MAX;
	memset(&o, 0, sizeof(o));
	o.flags = ARES_FLAG_NOALIASES;
	o.timeout = (int)try_ms;
	o.tries = 2;
	mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
	    ARES_OPT_LOOKUPS;
	if (routing) {
		o.flags |= ARES_FLAG_NOSEARCH;
		o.lookups = lookups_dns;
		o.domains = NULL;	/* no search list at all */
		o.ndomains = 0;
		mask |= ARES_OPT_DOMAINS;
	} else
		o.lookups = lookups_files_dns;
	st = ares_init_options(ch, &o, mask);
	if (st != ARES_SUCCESS)
		return st;
	if (csv[0] != '\0') {
		st = ares_set_servers_ports_csv(*ch, csv);
		if (st != ARES_SUCCESS) {
			ares_destroy(*ch);
			return st;
		}
	}
	return ARES_SUCCESS;
}

/*
 * server_add - one dns_server entry s[0..len), "ip", "ip:port",
 * "[ip6]:port", "[ip6]" or a bare IPv6 address, checked and appended to
 * out at *used in the form c-ares takes.  Returns 0 or -1.
 */
static int
server_add(const char *s, size_t len, char *out, size_t outlen, size_t *used)
{
	char ent[INET6_ADDRSTRLEN + 16], ip[INET6_ADDRSTRLEN + 8];
	unsigned char bin[sizeof(struct in6_addr)];
	const char *port = NULL, *ipend;
	long portnum = 53;
	int v6 = 0, n;

	if (len >= sizeof(ent))
		return -1;
	memcpy(ent, s, len);
	ent[len] = '\0';
	if (ent[0] == '[') {
		ipend = strchr(ent, ']');
		if (ipend == NULL)
			return -1;
		if (ipend[1] == ':')
			port = ipend + 2;
		else if (ipend[1] != '\0')
			return -1;
		n = snprintf(ip, sizeof(ip), "%.*s", (int)(ipend - ent - 1),
		    ent + 1);
		v6 = 1;
	} else if (strchr(ent, ':') != strrchr(ent, ':')) {
		n = snprintf(ip, sizeof(ip), "%s", ent);	/* bare IPv6 */
		v6 = 1;
	} else {
		ipend = strchr(ent, ':');
		if (ipend != NULL)
			port = ipend + 1;
		else
			ipend = ent + len;
		n = snprintf(ip, sizeof(ip), "%.*s", (int)(ipend - ent), ent);
	}
	if (n < 0 || (size_t)n >= sizeof(ip) ||
	    inet_pton(v6 ? AF_INET6 : AF_INET, ip, bin) != 1)
		return -1;
	if (port != NULL && parse_long(port, 1, 65535, &portnum) < 0)
		return -1;
	n = snprintf(out + *used, outlen - *used, "%s%s%s%s:%ld",
	    *used ? "," : "", v6 ? "[" : "", ip, v6 ? "]" : "", portnum);
	if (n < 0 || (size_t)n >= outlen - *used)
		return -1;
	*used += (size_t)n;
	return 0;
}

/*
 * servers_csv - check a dns_server value, "ip[:port][,ip[:port]...]" with
 * IPv6 as "[ip]:port" or a bare "ip", and write it in the form c-ares
 * takes.  Returns 0 or -1.
 */
static int
servers_csv(const char *s, char *out, size_t outlen)
{
	size_t used = 0, count = 0;

	out[0] = '\0';
	while (*s) {
		const char *end = strchr(s, ',');
		size_t len = end ? (size_t)(end - s) : strlen(s);

		while (len > 0 && (*s == ' ' || *s == '\t')) {
			s++;
			len--;
		}
		while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
			len--;
		if (len == 0 || ++count > DNS_SERVERS_MAX ||
		    server_add(s, len, out, outlen, &used) < 0)
			return -1;
		s += len;
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == ',') {
			s++;
			if (*s == '\0')
				return -1;
		}
	}
	return 0;
}

struct dns *
dns_new(const char *server, long timeout_secs, struct result *res)
{
	struct dns *d = NULL;
	char csv[1024];
	int st;

	if (!ares_ready) {
		st = ares_library_init(ARES_LIB_INIT_ALL);
		if (st != ARES_SUCCESS) {
			result_set(res, OUT_TEMP, R_SYSTEM,
			    "cannot initialise c-ares: %s", ares_strerror(st));
			goto out;
		}
		ares_ready = 1;
	}
	if (server == NULL)
		server = "";
	if (servers_csv(server, csv, sizeof(csv)) < 0) {
		result_set(res, OUT_TEMP, R_CONFIG, "bad dns_server value "
		    "\"%s\": expected ip[:port][,ip[:port]...]", server);
		goto out;
	}
	if (timeout_secs <= 0)
		timeout_secs = DNS_TIMEOUT_DEFAULT;
	if (timeout_secs > DNS_TIMEOUT_MAX)
		timeout_secs = DNS_TIMEOUT_MAX;
	d = calloc(1, sizeof(*d));
	if (d == NULL) {
		result_set(res, OUT_TEMP, R_SYSTEM,
		    "cannot create DNS resolver: %s", strerror(errno));
		goto out;
	}
	d->timeout = timeout_secs;
	st = new_channel(&d->mx, timeout_secs, 1, csv);
	if (st == ARES_SUCCESS &&
	    (st = new_channel(&d->host, timeout_secs, 0, csv)) != ARES_SUCCESS)
		ares_destroy(d->mx);
	if (st != ARES_SUCCESS) {
		result_set(res, OUT_TEMP, R_SYSTEM,
		    "cannot create DNS resolver: %s", ares_strerror(st));
		free(d);
		d = NULL;
		goto out;
	}
	result_set(res, OUT_OK, R_NONE, "ok");
out:
	return d;
}

void
dns_free(struct dns *d)
{
	if (d == NULL)
		return;
	ares_destroy(d->mx);
	ares_destroy(d->host);
	free(d);
}

/* literal_route - the route to one IP address, no lookup */
static enum outcome
literal_route(const char *what, const struct sockaddr_storage *sa,
    socklen_t salen, int port, struct route *r, struct result *res)
{
	char txt[INET6_ADDRSTRLEN];

	addr_text(sa, txt, sizeof(txt));
	if (route_add(r, txt, 0, (const struct sockaddr *)sa, salen,
	    port) != ROUTE_ADDED) {
		result_set(res, OUT_TEMP, R_NOMEM, "%s", what);
		return OUT_TEMP;
	}
	result_set(res, OUT_OK, R_NONE, "%s: address literal", what);
	return OUT_OK;
}

/*
 * domain_name - a recipient domain as it is looked up: dom without a
 * final dot ("example.com." is the same domain as "example.com"), qname
 * the absolute name to query.  OUT_OK, or OUT_PERM with res set when it
 * is not a name we query.
 */
static enum outcome
domain_name(const char *domain, char *dom, char *qname, struct result *res)
{
	size_t len = strlen(domain);

	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (len < HOST_MAX) {
		memcpy(dom, domain, len);
		dom[len] = '\0';
		if (name_ok(dom) && mk_qname(qname, QNAME_MAX, dom) == 0)
			return OUT_OK;
	}
	result_set(res, OUT_PERM, R_DNS_BAD_NAME, "%s: bad domain name",
	    domain);
	return OUT_PERM;
}

/*
 * mx_query - the MX records of dom (qname) into q.  OUT_OK when there
 * are some (q->mx) or the domain has none (q->status ARES_ENODATA: RFC
 * 5321 5.1, the domain is its own exchanger); OUT_PERM for NXDOMAIN;
 * OUT_TEMP for every other failure.
 */
static enum outcome
mx_query(struct dns *d, const char *dom, const char *qname, struct mxq *q,
    struct result *res)
{
	int pending = 1;

	q->pending = &pending;
	q->status = ARES_ECANCELLED;
	ares_query(d->mx, qname, ns_c_in, ns_t_mx, mx_cb, q);
	(void)dns_wait(d->mx, &pending, d->timeout);
	if (q->status == ARES_ENOTFOUND) {
		result_set(res, OUT_PERM, R_DNS_NXDOMAIN, "%s", dom);
		return OUT_PERM;
	}
	if (q->status != ARES_SUCCESS && q->status != ARES_ENODATA) {
		result_set(res, OUT_TEMP, R_DNS_TEMP,
		    "cannot look up MX of %s: %s", dom, errtext(q->status));
		return OUT_TEMP;
	}
	return OUT_OK;
}

/* exch_set - x from an MX record of dom; 0 when its host is not a name
 * we query (logged under -v) */
static int
exch_set(struct exch *x, const char *dom, const struct ares_mx_reply *m)
{
	char p[HOST_MAX];

	memset(x, 0, sizeof(*x));
	x->pref = m->priority;
	if (ip_parse(m->host, &x->sa, &x->salen) == IP_ADDR &&
	    m->host[0] != '[') {
		x->literal = 1;
		addr_text(&x->sa, x->name, sizeof(x->name));
		return 1;
	}
	if (name_ok(m->host) && snprintf(x->name, sizeof(x->name), "%s",
	    m->host) < (int)sizeof(x->name))
		return 1;
	printable(p, sizeof(p), m->host, strlen(m->host));
	vlog("dns: %s: MX host \"%s\" is not a valid name, ignored", dom, p);
	return 0;
}

/*
 * exch_list - the exchangers of dom in *ep, *np: its MX records (q->mx)
 * in the order to try (RFC 5321 5.1), at most DNS_MX_MAX, or dom itself
 * when it has none.  Null MX (RFC 7505 3): a record whose host is the
 * root is dropped; when every MX record was such, the domain does not
 * take mail (OUT_PERM).  A null MX next to real ones is a broken zone
 * (RFC 7505 says it MUST NOT happen); we use the real ones.  Otherwise
 * res says why: no usable exchanger, no memory.
 */
static enum outcome
exch_list(const char *dom, const struct mxq *q, struct exch **ep,
    size_t *np, struct result *res)
{
	const struct ares_mx_reply *m;
	struct exch *e;
	size_t n = 0, nmx = 0, nnull = 0, i;

	for (m = q->mx; m != NULL; m = m->next)
		nmx++;
	*ep = e = calloc(q->status == ARES_ENODATA ? 1 : nmx, sizeof(*e));
	if (e == NULL) {
		result_set(res, OUT_TEMP, R_NOMEM, "%s", dom);
		return OUT_TEMP;
	}
	if (q->status == ARES_ENODATA) {
		memcpy(e[0].name, dom, strlen(dom) + 1);
		*np = 1;
		return OUT_OK;
	}
	for (m = q->mx; m != NULL; m = m->next) {
		if (m->host[0] == '\0' || strcmp(m->host, ".") == 0)
			nnull++;
		else if (exch_set(&e[n], dom, m))
			n++;
	}
	if (nnull > 0 && n == 0) {
		result_set(res, OUT_PERM, R_DNS_NULL_MX, "%s", dom);
		return OUT_PERM;
	}
	if (nnull > 0)
		vlog("dns: %s: null MX next to other MX records, ignored", dom);
	if (n == 0) {
		result_set(res, OUT_PERM, R_DNS_NO_ADDRESS,
		    "no address for any MX of %s", dom);
		return OUT_PERM;
	}
	exch_order(e, n);
	if (n > DNS_MX_MAX) {
		vlog("dns: %s has %zu MX records, using the best %d", dom, n,
		    DNS_MX_MAX);
		n = DNS_MX_MAX;
	}
	for (i = 0; i < n; i++)
		vlog("dns: %s: MX %d %s", dom, e[i].pref, e[i].name);
	*np = n;
	return OUT_OK;
}

/*
 * route_verdict - what the address lookups of dom's exchangers e[0..n)
 * came to, r holding the addresses found: OUT_OK when there is one;
 * OUT_TEMP when a lookup failed for now; OUT_PERM when every one said
 * definitely that there is no address.
 */
static enum outcome
route_verdict(const char *dom, const struct exch *e, size_t n, int implicit,
    const struct route *r, struct result *res)
{
	size_t i;

	if (r->n > 0) {
		result_set(res, OUT_OK, R_NONE, "%s: %zu address%s", dom, r->n,
		    r->n == 1 ? "" : "es");
		return OUT_OK;
	}
	for (i = 0; i < n; i++)
		if (!nx_status(e[i].status)) {
			result_set(res, OUT_TEMP, R_DNS_TEMP, "cannot look up "
			    "address of %s (MX of %s): %s", e[i].name, dom,
			    errtext(e[i].status));
			return OUT_TEMP;
		}
	if (implicit)
		result_set(res, OUT_PERM, R_DNS_NO_ADDRESS,
		    "%s: no MX and no address", dom);
	else
		result_set(res, OUT_PERM, R_DNS_NO_ADDRESS,
		    "no address for any MX of %s", dom);
	return OUT_PERM;
}

/* dns_route - RFC 5321 5.1: validation, the MX query, the exchanger
 * list, their addresses */
enum outcome
dns_route(struct dns *d, const char *domain, int port, struct route *r,
    struct result *res)
{
	struct sockaddr_storage sa;
	struct exch *e = NULL;
	struct mxq q;
	char dom[HOST_MAX], qname[QNAME_MAX];
	size_t n = 0;
	socklen_t salen;
	enum ip_form lit;
	enum outcome o = OUT_TEMP;

	r->a = NULL;
	r->n = r->cap = 0;
	memset(&q, 0, sizeof(q));
	if (port < 1 || port > 65535) {
		result_set(res, OUT_TEMP, R_CONFIG, "%s: bad port %d", domain,
		    port);
		goto out;
	}
	lit = ip_parse(domain, &sa, &salen);
	if (lit == IP_ADDR && domain[0] == '[') {
		o = literal_route(domain, &sa, salen, port, r, res);
		goto out;
	}
	if (lit == IP_BAD) {
		o = OUT_PERM;
		result_set(res, o, R_DNS_BAD_NAME, "%s: bad address literal",
		    domain);
		goto out;
	}
	if ((o = domain_name(domain, dom, qname, res)) != OUT_OK ||
	    (o = mx_query(d, dom, qname, &q, res)) != OUT_OK ||
	    (o = exch_list(dom, &q, &e, &n, res)) != OUT_OK)
		goto out;
	if (resolve(d, d->mx, e, n, port, 1, r) < 0) {
		o = OUT_TEMP;
		result_set(res, o, R_NOMEM, "%s", dom);
		goto out;
	}
	o = route_verdict(dom, e, n, q.status == ARES_ENODATA, r, res);
out:
	if (q.mx != NULL)
		ares_free_data(q.mx);
	free(e);
	if (o != OUT_OK)
		route_free(r);
	return o;
}

/*
 * dns_host - the smarthost.  Resolved like the system would for a program
 * (hosts file first, so "localhost" and /etc/hosts entries work, then DNS
 * with the resolv.conf search list) but through c-ares, so that the
 * configured dns_server and the timeout apply.  Failures are all OUT_TEMP:
 * mail waits until the configuration or the name is fixed.
 */
enum outcome
dns_host(struct dns *d, const char *host, int port, struct route *r,
    struct result *res)
{
	struct sockaddr_storage sa;
	struct exch e;
	char p[HOST_MAX];
	socklen_t salen;
	enum ip_form lit;
	enum outcome o = OUT_TEMP;

	r->a = NULL;
	r->n = r->cap = 0;
	printable(p, sizeof(p), host, strlen(host));
	if (port < 1 || port > 65535) {
		result_set(res, OUT_TEMP, R_CONFIG, "%s: bad port %d", p, port);
		goto out;
	}
	lit = ip_parse(host, &sa, &salen);
	if (lit == IP_ADDR) {
		o = literal_route(p, &sa, salen, port, r, res);
		goto out;
	}
	memset(&e, 0, sizeof(e));
	if (lit == IP_BAD || !name_ok(host) || snprintf(e.name, sizeof(e.name), "%s",
	    host) >= (int)sizeof(e.name)) {
		result_set(res, OUT_TEMP, R_DNS_BAD_NAME, "%s: bad host name",
		    p);
		goto out;
	}
	if (resolve(d, d->host, &e, 1, port, 0, r) < 0) {
		result_set(res, OUT_TEMP, R_NOMEM, "%s", p);
		goto out;
	}
	if (r->n == 0) {
		result_set(res, OUT_TEMP, R_DNS_TEMP,
		    "cannot look up address of %s: %s", p, errtext(e.status));
		goto out;
	}
	o = OUT_OK;
	result_set(res, o, R_NONE, "%s: %zu address%s", p, r->n,
	    r->n == 1 ? "" : "es");
out:
	if (o != OUT_OK)
		route_free(r);
	return o;
}
