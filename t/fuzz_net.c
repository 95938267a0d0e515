/*
 * fuzz_net.c - fuzz entry points for what the network says to the
 * client, included by t/fuzzers.c:
 *
 *   smtp   the real smtp_open and smtp_send (two transactions, the first
 *          left pending behind PIPELINING) against a server whose every
 *          reply is the fuzz input;
 *   auth   SCRAM-SHA-256 (scram_first, scram_final, scram_verify) with
 *          fuzzed server messages, and base64 round trips;
 *   auth_file
 *          auth_parse on the input as an auth_file, for a few hosts;
 *   dns    dns_route against a DNS server whose answers are the fuzz
 *          input.
 *
 * smtp input: the first octet chooses the transactions (bits below),
 * the rest is the server's side, one chunk per command separated by NUL
 * octets: chunk 0 is the greeting, then one chunk answers each command
 * line (and the whole message after a 3xx reply to DATA).  A chunk that
 * does not end in a complete reply, or no chunk left, closes the
 * connection; so does a client idle for SRV_IDLE_MS while the server
 * waits (the two sides out of step), so no input waits for a timeout.
 * The server is a thread on an abstract AF_UNIX socket, which smtp_open
 * connects to like any address.
 *
 * dns input: answers separated by "||||", each one "FLAGS(2)
 * ANCOUNT NSCOUNT ARCOUNT (2 each) RRs..."; the server (a thread on a
 * UDP socket at FUZZ_DNS_ADDR) answers each query in turn with the
 * query's ID and question and the next answer, REFUSED when none is
 * left.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/un.h>

/* The address of the fuzz DNS server (t/fuzz.t owns 127.0.0.200-209). */
#define FUZZ_DNS_ADDR "127.0.0.200"
/* The server gives up on a client silent this long (out of step). */
#define SRV_IDLE_MS 200
/* One more recipient than smtp.c pipelines (PIPE_RCPT_MAX): lockstep. */
#define PIPE_RCPT_MAX_FUZZ 101

/* The fuzz input cut at a separator, one piece at a time. */
struct chunks {
	const uint8_t *p;
	size_t n, off;
	const char *sep;
	size_t seplen;
	int done;
};

/* chunk_next - the next piece; 0 when none is left */
static int
chunk_next(struct chunks *c, const uint8_t **p, size_t *n)
{
	const uint8_t *s;
	size_t i;

	if (c->done)
		return 0;
	s = c->p + c->off;
	for (i = c->off; i + c->seplen <= c->n; i++)
		if (memcmp(c->p + i, c->sep, c->seplen) == 0)
			break;
	if (i + c->seplen > c->n) {
		i = c->n;
		c->done = 1;
	}
	*p = s;
	*n = i - c->off;
	c->off = i + c->seplen;
	return 1;
}

/* SMTP */

struct srv {
	int lfd;		/* listening socket */
	struct chunks ch;
	int closed;		/* we shut our side */
};

/* whole_replies - p holds one or more complete replies and nothing else
 * (else the client would wait for more) */
static int
whole_replies(const uint8_t *p, size_t n)
{
	static struct reply r;	/* large; one server thread at a time */
	char err[100];
	size_t off = 0;
	ssize_t k;

	if (n == 0)
		return 0;
	while (off < n) {
		k = reply_parse((const char *)p + off, n - off, &r, err,
		    sizeof(err));
		if (k == 0)
			return 0;
		if (k < 0)
			return 1;	/* the client stops at the error */
		off += (size_t)k;
	}
	return 1;
}

/* srv_answer - the next chunk into out; 0, or -1 when the connection is
 * to close after out */
static int
srv_answer(struct srv *sv, struct buf *out, int *is3xx)
{
	const uint8_t *p;
	size_t n;

	*is3xx = 0;
	if (!chunk_next(&sv->ch, &p, &n))
		return -1;
	buf_add(out, p, n);
	*is3xx = n > 0 && p[0] == '3';
	return whole_replies(p, n) ? 0 : -1;
}

static void *
srv_run(void *arg)
{
	struct srv *sv = arg;
	struct pollfd pfd;
	struct buf in, out;
	char b[8192];
	int fd, data = 0, is3xx, quit = 0;
	ssize_t k;

	buf_init(&in, 0);
	buf_init(&out, 0);
	pfd.fd = sv->lfd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 5000) != 1 || (fd = accept(sv->lfd, NULL, NULL)) < 0)
		abort();	/* smtp_open always connects */
	if (srv_answer(sv, &out, &is3xx) < 0)
		quit = 1;
	for (;;) {
		if (out.len && write_all(fd, out.p, out.len) < 0)
			quit = 1;
		buf_reset(&out);
		if (quit && !sv->closed) {
			shutdown(fd, SHUT_WR);
			sv->closed = 1;
		}
		pfd.fd = fd;
		if (poll(&pfd, 1, SRV_IDLE_MS) != 1) {
			quit = 1;
			if (sv->closed)
				break;
			continue;
		}
		if ((k = read(fd, b, sizeof(b))) <= 0)
			break;
		if (sv->closed)
			continue;	/* drain until the client closes */
		buf_add(&in, b, (size_t)k);
		/* One chunk a command line, one for a whole message. */
		for (;;) {
			char *nl = memchr(in.p, '\n', in.len);
			size_t len;

			if (nl == NULL)
				break;
			len = (size_t)(nl - in.p) + 1;
			if (!data || (len == 3 && memcmp(in.p, ".\r\n", 3) == 0)) {
				int was_data = len >= 6 &&
				    strncasecmp(in.p, "DATA\r\n", 6) == 0 && !data;

				data = 0;
				if (!quit && srv_answer(sv, &out, &is3xx) < 0)
					quit = 1;
				if (was_data && is3xx)
					data = 1;
			}
			memmove(in.p, in.p + len, in.len - len);
			in.len -= len;
		}
	}
	close(fd);
	buf_free(&in);
	buf_free(&out);
	return NULL;
}

/* smtp_lsock - the listening socket and its address, made once */
static int
smtp_lsock(struct mxaddr *a)
{
	static struct sockaddr_un sun;
	static int lfd = -1;

	if (lfd < 0) {
		/* As sendmail.c does: a closed peer is an error, not a kill. */
		signal(SIGPIPE, SIG_IGN);
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		/* Abstract: nothing in the file system to clean up. */
		snprintf(sun.sun_path + 1, sizeof(sun.sun_path) - 1,
		    "mxsend-fuzz-smtp.%ld", (long)getpid());
		lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (lfd < 0 || bind(lfd, (struct sockaddr *)&sun,
		    sizeof(sun)) < 0 || listen(lfd, 4) < 0)
			abort();
	}
	memset(a, 0, sizeof(*a));
	snprintf(a->host, sizeof(a->host), "mx.fuzz.example");
	memcpy(&a->sa, &sun, sizeof(sun));
	a->salen = sizeof(sun);
	return lfd;
}

/* The first octet of the smtp input. */
#define SF_SECOND	0x01	/* a second transaction behind the first */
#define SF_8BIT		0x02	/* the first message has 8-bit octets */
#define SF_DSN		0x04	/* DSN parameters */
#define SF_MANY		0x08	/* over PIPE_RCPT_MAX recipients: lockstep */
#define SF_USER		0x10	/* credentials (refused without TLS) */
#define SF_NULLSENDER	0x20	/* the null sender */

/* txn_check - every recipient has a result and nothing is left over */
/* unsaid - a result whose sentence is empty or not one line */
static int
unsaid(const struct result *r)
{
	char t[ERRTEXT_MAX];

	result_text(r, "a@b", t, sizeof(t));
	return t[0] == '\0' || strchr(t, '\n') || strchr(t, '\r') ||
	    (r->o != OUT_OK && r->why == R_NONE);
}

static void
txn_check(const struct txn *t)
{
	size_t i;

	if (t->pending || t->acc)
		abort();
	for (i = 0; i < t->n; i++)
		if ((t->rres[i].o != OUT_OK && t->rres[i].o != OUT_TEMP &&
		    t->rres[i].o != OUT_PERM) || unsaid(&t->rres[i]))
			abort();
}

static void
fuzz_smtp(const uint8_t *p, size_t n)
{
	static const char msg8[] = "From: a@fuzz.example\r\nSubject: x\r\n"
	    "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
	    "\r\nh\xc3\xa9llo\r\n.\r\n..\r\nend";
	static const char msg7[] = "Subject: y\r\n\r\nbody\r\n";
	static const char *rcpts[PIPE_RCPT_MAX_FUZZ];
	static char names[PIPE_RCPT_MAX_FUZZ][32];
	struct result rres1[PIPE_RCPT_MAX_FUZZ], rres2[2], res;
	struct tlsopts to = { TLS_NONE, 0, "mx.fuzz.example", NULL, NULL };
	struct txn t1, t2;
	struct mxaddr a;
	struct conf c;
	struct smtp s;
	struct srv sv;
	pthread_t th;
	int fd1, fd2, flags;
	size_t i;

	if (n == 0)
		return;
	flags = p[0];
	conf_defaults(&c);
	snprintf(c.hostname, sizeof(c.hostname), "client.fuzz.example");
	c.connect_timeout = c.command_timeout = c.data_timeout = 2;
	memset(&sv, 0, sizeof(sv));
	sv.lfd = smtp_lsock(&a);
	sv.ch.p = p + 1;
	sv.ch.n = n - 1;
	sv.ch.sep = "";
	sv.ch.seplen = 1;
	for (i = 0; i < PIPE_RCPT_MAX_FUZZ; i++) {
		snprintf(names[i], sizeof(names[i]), "r%zu@fuzz.example", i);
		rcpts[i] = names[i];
	}
	fd1 = memfd_create("m1", 0);
	fd2 = memfd_create("m2", 0);
	if (fd1 < 0 || fd2 < 0 ||
	    write(fd1, (flags & SF_8BIT) ? msg8 : msg7, (flags & SF_8BIT) ?
	    sizeof(msg8) - 1 : sizeof(msg7) - 1) < 0 ||
	    write(fd2, msg7, sizeof(msg7) - 1) < 0)
		abort();
	memset(&t1, 0, sizeof(t1));
	t1.sender = (flags & SF_NULLSENDER) ? "" : "a@fuzz.example";
	t1.rcpts = rcpts;
	t1.n = (flags & SF_MANY) ? PIPE_RCPT_MAX_FUZZ : 2;
	t1.rres = rres1;
	t1.msgfd = fd1;
	t1.size = (flags & SF_8BIT) ? (off_t)sizeof(msg8) - 1 :
	    (off_t)sizeof(msg7) - 1;
	t1.body8 = (flags & SF_8BIT) ? 1 : 0;
	t1.id = "F1";
	if (flags & SF_DSN) {
		t1.notify = "SUCCESS,FAILURE";
		t1.ret = "HDRS";
		t1.envid = "id+2Bx=y";
	}
	t1.may_pend = (flags & SF_SECOND) != 0;
	t2 = t1;
	t2.rcpts = rcpts + 1;
	t2.n = 2;
	t2.rres = rres2;
	t2.msgfd = fd2;
	t2.size = (off_t)sizeof(msg7) - 1;
	t2.body8 = 0;
	t2.id = "F2";
	t2.may_pend = 1;
	if (flags & SF_USER) {
		to.user = "user";
		to.pass = "pencil";
	}
	if (pthread_create(&th, NULL, srv_run, &sv) != 0)
		abort();
	if (smtp_open(&s, &a, &c, &to, &res) == OUT_OK) {
		if (smtp_send(&s, &t1, NULL, &res) != OUT_OK) {
			if (t1.pending)
				abort();	/* a lost connection completes it */
			smtp_close(&s, 0);
		} else {
			if (flags & SF_SECOND) {
				if (smtp_send(&s, &t2, t1.pending ? &t1 : NULL,
				    &res) != OUT_OK)
					smtp_close(&s, 0);
				else if (t2.pending &&
				    smtp_finish(&s, &t2, &res) != OUT_OK)
					smtp_close(&s, 0);
				txn_check(&t2);
			} else if (t1.pending)
				abort();	/* may_pend was not set */
			if (s.fd >= 0)
				smtp_close(&s, 1);
		}
		txn_check(&t1);
	} else if (unsaid(&res))
		abort();
	pthread_join(th, NULL);
	close(fd1);
	close(fd2);
	conf_free(&c);
}

/* AUTH: SCRAM and base64 */

/* b64_check - encode, decode, the same octets again */
static void
b64_check(const void *p, size_t n)
{
	struct buf e, d;

	buf_init(&e, 0);
	buf_init(&d, 0);
	if (b64_encode(p, n, &e) < 0 || b64_decode(e.p ? e.p : "", &d) < 0 ||
	    d.len != n || (n && memcmp(d.p, p, n) != 0))
		abort();
	buf_free(&e);
	buf_free(&d);
}

/* subst - s with the first "@@" replaced by with */
static char *
subst(const char *s, const char *with)
{
	const char *at = strstr(s, "@@");
	struct buf b;

	buf_init(&b, 0);
	if (at == NULL)
		buf_adds(&b, s);
	else if (buf_add(&b, s, (size_t)(at - s)) < 0 || buf_adds(&b, with) < 0 ||
	    buf_adds(&b, at + 2) < 0)
		abort();
	return b.p ? b.p : xstrdup("");
}

/*
 * auth input: the server-first message, NUL, the server-final message,
 * NUL, octets for base64.  "@@" in the server-first message stands for
 * the client's random nonce, and in the server-final message for the
 * right ServerSignature, so that every branch can be reached.
 */
static void
fuzz_auth(const uint8_t *p, size_t n)
{
	struct chunks ch = { p, n, 0, "", 1, 0 };
	const uint8_t *part[3] = { NULL, NULL, NULL };
	size_t len[3] = { 0, 0, 0 }, i;
	char *sfirst = NULL, *sfinal = NULL, *str;
	const char *iv;
	struct buf out, dec, ssig;
	struct scram sc;
	struct result res;

	for (i = 0; i < 3 && chunk_next(&ch, &part[i], &len[i]); i++)
		;
	buf_init(&out, 0);
	buf_init(&dec, 0);
	buf_init(&ssig, 0);
	/* base64: any octets round trip; any text that decodes re-encodes
	 * to text that decodes to the same octets. */
	b64_check(p, n);
	str = xmalloc(n + 1);
	memcpy(str, p, n);
	str[n] = '\0';
	if (b64_decode(str, &dec) == 0)
		b64_check(dec.p ? dec.p : "", dec.len);
	free(str);
	if (scram_first(&sc, "us,er=", &out, &res) < 0)
		abort();
	if (strncmp(out.p, "n,,n=us=2Cer=3D,r=", 18) != 0)
		abort();
	if (part[0] == NULL || part[1] == NULL)
		goto out;
	str = xmalloc(len[0] + 1);
	memcpy(str, part[0], len[0]);
	str[len[0]] = '\0';
	sfirst = subst(str, sc.cnonce);
	free(str);
	/* PBKDF2 at the highest counts allowed takes a second: keep the
	 * fuzzer fast below the range check's top. */
	for (iv = strstr(sfirst, "i="); iv; iv = strstr(iv + 2, "i="))
		if (strtol(iv + 2, NULL, 10) > 8192)
			goto out;
	buf_reset(&out);
	if (scram_final(&sc, "pencil", sfirst, &out, &res) < 0) {
		if (res.o == OUT_OK || unsaid(&res))
			abort();
		goto out;
	}
	if (strncmp(out.p, "c=biws,r=", 9) != 0 || strstr(out.p, ",p=") == NULL)
		abort();
	if (b64_encode(sc.ssig, sizeof(sc.ssig), &ssig) < 0)
		abort();
	str = xmalloc(len[1] + 1);
	memcpy(str, part[1], len[1]);
	str[len[1]] = '\0';
	sfinal = subst(str, ssig.p);
	free(str);
	/* Only the right signature proves the server. */
	if (scram_verify(&sc, sfinal) == 0) {
		const char *v;
		size_t k;

		/* attr() takes the first "v=" at the start of an attribute */
		for (v = sfinal; v; v = strchr(v, ',') ? strchr(v, ',') + 1 :
		    NULL)
			if (v[0] == 'v' && v[1] == '=')
				break;
		k = v ? strcspn(v + 2, ",") : 0;
		if (v == NULL || k != ssig.len || memcmp(v + 2, ssig.p, k) != 0)
			abort();
	}
out:
	scram_free(&sc);
	free(sfirst);
	free(sfinal);
	buf_free(&out);
	buf_free(&dec);
	buf_free(&ssig);
}

/* auth_file_check - what auth_parse found for host in text[0..n) */
static void
auth_file_check(const uint8_t *p, size_t n, const char *host, size_t ulen,
    size_t plen)
{
	char user[64], pass[64];
	const char *why = NULL;
	size_t lineno = 0, lines = 1, i, ul, pl;
	int rc;

	for (i = 0; i < n; i++)
		lines += p[i] == '\n';
	rc = auth_parse((const char *)p, n, host, user, ulen, pass, plen,
	    &lineno, &why);
	if (rc < 0 && (why == NULL || lineno == 0 || lineno > lines))
		abort();
	if (rc != 1)
		return;
	/* One word of user, a password without the blanks around it. */
	ul = strlen(user);
	pl = strlen(pass);
	if (ul == 0 || ul >= ulen || pl == 0 || pl >= plen ||
	    strpbrk(user, " \t\n") != NULL || strchr(pass, '\n') != NULL ||
	    pass[0] == ' ' || pass[0] == '\t' || pass[pl - 1] == ' ' ||
	    pass[pl - 1] == '\t' || pass[pl - 1] == '\r' ||
	    memmem(p, n, user, ul) == NULL || memmem(p, n, pass, pl) == NULL)
		abort();
}

/* auth_file input: an auth_file; hosts that its seeds name, in other
 * case, none, and room too small for long credentials */
static void
fuzz_auth_file(const uint8_t *p, size_t n)
{
	auth_file_check(p, n, "smtp.example.com", 64, 64);
	auth_file_check(p, n, "SMTP.Example.COM", 64, 64);
	auth_file_check(p, n, "[192.0.2.1]", 64, 64);
	auth_file_check(p, n, "nowhere.example", 64, 64);
	auth_file_check(p, n, "smtp.example.com", 8, 8);
}

/* DNS */

struct dsrv {
	int fd;
	struct chunks ch;
	volatile int stop;
};

/* dns_reply - the answer to query q (qn octets) from the next chunk */
static size_t
dns_reply(struct dsrv *d, const uint8_t *q, size_t qn, uint8_t *r,
    size_t rmax)
{
	const uint8_t *p;
	size_t n, qend = 12, len;

	if (qn < 12)
		return 0;
	while (qend < qn && q[qend] != 0)
		qend += (size_t)q[qend] + 1;
	qend += 5;		/* the root label, QTYPE, QCLASS */
	if (qend > qn || qend > rmax)
		return 0;
	memcpy(r, q, qend);
	r[2] = 0x80 | (q[2] & 0x01);	/* QR, RD as asked */
	r[3] = 0x05;			/* REFUSED unless a chunk says */
	r[4] = 0;
	r[5] = 1;
	memset(r + 6, 0, 6);
	len = qend;
	if (chunk_next(&d->ch, &p, &n) && n >= 8) {
		/* QR kept, opcode 0, TC off (no TCP server here) */
		r[2] = (uint8_t)(0x80 | (p[0] & 0x05));
		r[3] = p[1];
		memcpy(r + 6, p + 2, 6);
		n -= 8;
		if (n > rmax - len)
			n = rmax - len;
		memcpy(r + len, p + 8, n);
		len += n;
	}
	return len;
}

static void *
dsrv_run(void *arg)
{
	struct dsrv *d = arg;
	struct sockaddr_storage from;
	socklen_t fl;
	uint8_t q[1500], r[4096];
	struct pollfd pfd = { d->fd, POLLIN, 0 };
	ssize_t k;
	size_t n;

	while (!d->stop) {
		if (poll(&pfd, 1, 20) != 1)
			continue;
		fl = sizeof(from);
		k = recvfrom(d->fd, q, sizeof(q), 0, (struct sockaddr *)&from,
		    &fl);
		if (k <= 0)
			continue;
		if ((n = dns_reply(d, q, (size_t)k, r, sizeof(r))) > 0)
			(void)sendto(d->fd, r, n, 0, (struct sockaddr *)&from, fl);
	}
	return NULL;
}

/* dns_sock - the server's UDP socket and its "ip:port", made once */
static int
dns_sock(char *csv, size_t csvlen)
{
	static int fd = -1;
	static struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	char b[64];

	if (fd < 0) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		if (inet_pton(AF_INET, FUZZ_DNS_ADDR, &sin.sin_addr) != 1 ||
		    (fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0 ||
		    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
		    getsockname(fd, (struct sockaddr *)&sin, &sl) < 0)
			abort();
	}
	/* Queries of an earlier input still waiting are not this one's. */
	while (recv(fd, b, sizeof(b), MSG_DONTWAIT) >= 0)
		;
	snprintf(csv, csvlen, "%s:%d", FUZZ_DNS_ADDR, ntohs(sin.sin_port));
	return fd;
}

static void
fuzz_dns(const uint8_t *p, size_t n)
{
	struct dsrv d;
	struct route r;
	struct result res;
	struct dns *dns;
	pthread_t th;
	char csv[64];
	size_t i;
	enum outcome o;

	memset(&d, 0, sizeof(d));
	d.fd = dns_sock(csv, sizeof(csv));
	d.ch.p = p;
	d.ch.n = n;
	d.ch.sep = "||||";
	d.ch.seplen = 4;
	if ((dns = dns_new(csv, 1, &res)) == NULL)
		abort();
	if (pthread_create(&th, NULL, dsrv_run, &d) != 0)
		abort();
	o = dns_route(dns, "fuzz.example", 25, &r, &res);
	d.stop = 1;
	pthread_join(th, NULL);
	if (unsaid(&res) || (o == OUT_OK) != (r.n > 0) ||
	    (o != OUT_OK && r.a != NULL) || r.n > 50)
		abort();
	for (i = 0; i < r.n; i++) {
		const struct mxaddr *a = &r.a[i];
		size_t k;

		/* Preference order, checked names, real addresses. */
		if ((i > 0 && a->pref < r.a[i - 1].pref) || a->host[0] == '\0' ||
		    !((a->sa.ss_family == AF_INET &&
		    a->salen == sizeof(struct sockaddr_in)) ||
		    (a->sa.ss_family == AF_INET6 &&
		    a->salen == sizeof(struct sockaddr_in6))))
			abort();
		for (k = 0; a->host[k]; k++)
			if ((unsigned char)a->host[k] <= 0x20 ||
			    (unsigned char)a->host[k] >= 0x7f)
				abort();
	}
	route_free(&r);
	dns_free(dns);
}
