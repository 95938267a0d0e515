/*
 * dnstest.c - driver for dns.c.
 *
 *   t/dnstest [-v] [-t SECS] [-H] [-n N] SERVER DOMAIN [PORT]
 *
 * SERVER is a dns_server value ("" for resolv.conf).  Prints one line per
 * route entry, "PREF HOST ADDR PORT", or "TEMP: text" / "PERM: text", and
 * exits 0 (2 on a usage error).  -H looks DOMAIN up with dns_host()
 * instead of dns_route().  -n N runs dns_route() N times on one resolver
 * and prints each distinct order of exchanger names once, as
 * "order HOST,HOST,...", then "orderings K".  -t is the timeout
 * (default 5), -v shows dns.c's log.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mxsend.h"

/* distinct orders remembered in -n mode */
#define ORDERS_MAX 1000

static void
usage(void)
{
	fprintf(stderr, "usage: dnstest [-v] [-t SECS] [-H] [-n N] SERVER "
	    "DOMAIN [PORT]\n");
	exit(2);
}

static void
print_route(const struct route *r)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		const struct mxaddr *m = &r->a[i];
		char txt[INET6_ADDRSTRLEN];
		const void *p;
		int port;

		if (m->sa.ss_family == AF_INET) {
			const struct sockaddr_in *s4 = (const void *)&m->sa;

			p = &s4->sin_addr;
			port = ntohs(s4->sin_port);
		} else {
			const struct sockaddr_in6 *s6 = (const void *)&m->sa;

			p = &s6->sin6_addr;
			port = ntohs(s6->sin6_port);
		}
		if (inet_ntop(m->sa.ss_family, p, txt, sizeof(txt)) == NULL) {
			txt[0] = '?';
			txt[1] = '\0';
		}
		printf("%d %s %s %d\n", m->pref, m->host, txt, port);
	}
}

/* order - the exchanger names of r, in order, each once, comma-separated */
static int
order(const struct route *r, struct buf *b)
{
	size_t i;

	buf_reset(b);
	for (i = 0; i < r->n; i++) {
		if (i > 0 && strcmp(r->a[i].host, r->a[i - 1].host) == 0)
			continue;
		if ((i > 0 && buf_addc(b, ',') < 0) ||
		    buf_adds(b, r->a[i].host) < 0)
			return -1;
	}
	return 0;
}

/* number - optarg as a number in 1..max into *out, or the usage */
static void
number(const char *s, long max, long *out)
{
	if (parse_long(s, 1, max, out) < 0)
		usage();
}

/* failed - the line of an outcome other than OUT_OK: its words */
static void
failed(enum outcome o, const struct result *res)
{
	struct rtext t;

	printf("%s: %s\n", o == OUT_PERM ? "PERM" : "TEMP",
	    result_str(res, &t));
}

/* orderings - dns_route runs times on d: each distinct order of the
 * exchanger names once, then how many there were */
static void
orderings(struct dns *d, const char *domain, int port, long runs)
{
	struct strlist seen;
	struct result res;
	struct route r;
	struct buf b;
	enum outcome o;
	size_t k;
	long i;
	int rc = 0;

	strlist_init(&seen);
	buf_init(&b, 0);
	for (i = 0; i < runs && rc == 0; i++) {
		o = dns_route(d, domain, port, &r, &res);
		if (o != OUT_OK) {
			failed(o, &res);
			rc = 1;
		} else if (order(&r, &b) < 0) {
			printf("TEMP: out of memory\n");
			rc = 1;
		} else {
			for (k = 0; k < seen.n; k++)
				if (strcmp(seen.v[k], b.p) == 0)
					break;
			if (k == seen.n && seen.n < ORDERS_MAX &&
			    strlist_add(&seen, b.p) == 0)
				printf("order %s\n", b.p);
		}
		route_free(&r);
	}
	if (rc == 0)
		printf("orderings %zu\n", seen.n);
	strlist_free(&seen);
	buf_free(&b);
}

int
main(int argc, char **argv)
{
	struct result res;
	struct route r;
	struct dns *d;
	long timeout = 5, runs = 0, port = 25;
	int c, host = 0;
	enum outcome o;

	progname = "dnstest";
	while ((c = getopt(argc, argv, "vt:Hn:")) != -1) {
		switch (c) {
		case 'v':
			verbose = 1;
			break;
		case 'H':
			host = 1;
			break;
		case 't':
			number(optarg, 3600, &timeout);
			break;
		case 'n':
			number(optarg, 100000, &runs);
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 2 || argc > 3)
		usage();
	if (argc == 3)
		number(argv[2], 65535, &port);

	d = dns_new(argv[0], timeout, &res);
	if (d == NULL) {
		failed(res.o, &res);
		return 0;
	}
	if (runs > 0)
		orderings(d, argv[1], (int)port, runs);
	else {
		if (host)
			o = dns_host(d, argv[1], (int)port, &r, &res);
		else
			o = dns_route(d, argv[1], (int)port, &r, &res);
		if (o == OUT_OK)
			print_route(&r);
		else
			failed(o, &res);
		route_free(&r);
	}
	dns_free(d);
	return 0;
}
