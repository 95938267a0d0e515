/*
 * tls.c - OpenSSL for the SMTP client: the context, the handshake on a
 * connected socket (after STARTTLS or, for implicit TLS, at once),
 * certificate verification, record I/O, and the AUTH credentials and
 * mechanisms (RFC 4954: SCRAM-SHA-256 RFC 5802/7677 without channel
 * binding, PLAIN RFC 4616, LOGIN).
 *
 * Policy (conf tls): none, opportunistic (TLS when offered, no checks),
 * required (TLS or nothing, no checks), verify (TLS, the chain against
 * tls_ca_file or the system store, and the server's name: the MX host or
 * the smarthost, with SNI).  TLS 1.2 at least.
 *
 * Connection: struct tls (mxsend.h), which smtp.c keeps in struct smtp;
 * the functions here take it and, for the handshake, the socket and the
 * names for results, and know nothing of SMTP.
 *
 * I/O: the socket is non-blocking; tls_read/tls_write return -1 with
 * errno EAGAIN and say in t->want which poll event OpenSSL waits for,
 * so smtp.c's poll loops serve plain and TLS connections alike.
 *
 * Loading: OpenSSL is opened with dlopen(3) on first use (the sonames
 * of the headers we were built with) and every function is called
 * through the table below.  Submissions, listings and deliveries over
 * plain connections never map libcrypto: mapping and relocating it costs
 * about 140 page faults, which on the virtual machines we measure on is
 * most of a submission's time.  Measured with make bench (3 runs each,
 * same machine, alternating): submit -odq took 3.81-4.20 ms (median of
 * the medians 3.96 ms, 116 page faults) loaded this way, and 6.10-7.23
 * ms (6.68 ms, 258 page faults) with libssl and libcrypto linked and so
 * mapped at every exec, against 2.15-2.28 ms for /bin/true; the peak
 * RSS of a 50 MB submission grew from 2.0 to 3.7 MB.  A new
 * OpenSSL call is added to the table and redirected below.  Security
 * updates of the system's OpenSSL apply as with ordinary linking.
 *
 * Security: credentials come from auth_file, which must not be readable
 * or writable by group or others; they are sent only over TLS whose peer
 * was verified (smtp.c s_auth; auth_unverified yes: SCRAM also to an
 * unverified peer) and never shown (-v prints the AUTH command with the
 * credentials masked).  The context is built once per process; nothing
 * here talks SMTP.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <dlfcn.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/opensslv.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "mxsend.h"

/* What tls.c uses of libcrypto and libssl, called through O. */
#define CRYPTO_FUNCS(F) F(ERR_get_error) F(ERR_peek_error) \
	F(ERR_clear_error) F(ERR_error_string_n) \
	F(X509_verify_cert_error_string) F(X509_VERIFY_PARAM_set1_ip_asc) \
	F(EVP_EncodeBlock) F(EVP_DecodeBlock) F(OPENSSL_cleanse) \
	F(EVP_sha256) F(EVP_Digest) F(HMAC) F(PKCS5_PBKDF2_HMAC) \
	F(RAND_bytes) F(CRYPTO_memcmp)
#define SSL_FUNCS(F) F(TLS_client_method) F(SSL_CTX_new) F(SSL_CTX_free) \
	F(SSL_CTX_ctrl) F(SSL_CTX_load_verify_locations) \
	F(SSL_CTX_set_default_verify_paths) \
	F(SSL_CTX_use_certificate_chain_file) F(SSL_CTX_use_PrivateKey_file) \
	F(SSL_CTX_check_private_key) F(SSL_new) F(SSL_set_fd) F(SSL_free) \
	F(SSL_ctrl) F(SSL_set_verify) F(SSL_set_hostflags) F(SSL_get0_param) \
	F(SSL_set1_host) F(SSL_connect) F(SSL_get_error) \
	F(SSL_get_verify_result) F(SSL_get_version) F(SSL_get_current_cipher) \
	F(SSL_CIPHER_get_name) F(SSL_read) F(SSL_write) F(SSL_pending) \
	F(SSL_shutdown)

#define MEMBER(f) __typeof__(f) *f;
static struct {
	CRYPTO_FUNCS(MEMBER)
	SSL_FUNCS(MEMBER)
} O;
#undef MEMBER

#define STR_(x) #x
#define STR(x) STR_(x)
#define LIBCRYPTO "libcrypto.so." STR(OPENSSL_VERSION_MAJOR)
#define LIBSSL "libssl.so." STR(OPENSSL_VERSION_MAJOR)

/* ossl_load - open OpenSSL and fill O, once; 0 or -1 with res set */
static int
ossl_load(struct result *res)
{
	static int loaded;
	const char *missing = NULL;
	void *lc, *ls;

	if (loaded)
		return 0;
	lc = dlopen(LIBCRYPTO, RTLD_NOW | RTLD_LOCAL);
	ls = dlopen(LIBSSL, RTLD_NOW | RTLD_LOCAL);
	if (lc == NULL || ls == NULL) {
		result_set(res, OUT_TEMP, R_TLS_SETUP,
		    "cannot load OpenSSL: %s", dlerror());
		return -1;
	}
#define LOAD(lib, f) if (missing == NULL && \
	(*(void **)&O.f = dlsym(lib, #f)) == NULL) missing = #f;
#define LOAD_C(f) LOAD(lc, f)
#define LOAD_S(f) LOAD(ls, f)
	CRYPTO_FUNCS(LOAD_C)
	SSL_FUNCS(LOAD_S)
#undef LOAD
#undef LOAD_C
#undef LOAD_S
	if (missing) {
		result_set(res, OUT_TEMP, R_TLS_SETUP, "%s or %s lacks %s",
		    LIBSSL, LIBCRYPTO, missing);
		return -1;
	}
	loaded = 1;
	return 0;
}

/* From here on every OpenSSL call goes through O (the header macros such
 * as SSL_set_tlsext_host_name expand to these too). */
#define ERR_get_error (O.ERR_get_error)
#define ERR_peek_error (O.ERR_peek_error)
#define ERR_clear_error (O.ERR_clear_error)
#define ERR_error_string_n (O.ERR_error_string_n)
#define X509_verify_cert_error_string (O.X509_verify_cert_error_string)
#define X509_VERIFY_PARAM_set1_ip_asc (O.X509_VERIFY_PARAM_set1_ip_asc)
#define EVP_EncodeBlock (O.EVP_EncodeBlock)
#define EVP_DecodeBlock (O.EVP_DecodeBlock)
#define OPENSSL_cleanse (O.OPENSSL_cleanse)
#define EVP_sha256 (O.EVP_sha256)
#define EVP_Digest (O.EVP_Digest)
#define HMAC (O.HMAC)
#define PKCS5_PBKDF2_HMAC (O.PKCS5_PBKDF2_HMAC)
#define RAND_bytes (O.RAND_bytes)
#define CRYPTO_memcmp (O.CRYPTO_memcmp)
#define TLS_client_method (O.TLS_client_method)
#define SSL_CTX_new (O.SSL_CTX_new)
#define SSL_CTX_free (O.SSL_CTX_free)
#define SSL_CTX_ctrl (O.SSL_CTX_ctrl)
#define SSL_CTX_load_verify_locations (O.SSL_CTX_load_verify_locations)
#define SSL_CTX_set_default_verify_paths (O.SSL_CTX_set_default_verify_paths)
#define SSL_CTX_use_certificate_chain_file \
	(O.SSL_CTX_use_certificate_chain_file)
#define SSL_CTX_use_PrivateKey_file (O.SSL_CTX_use_PrivateKey_file)
#define SSL_CTX_check_private_key (O.SSL_CTX_check_private_key)
#define SSL_new (O.SSL_new)
#define SSL_set_fd (O.SSL_set_fd)
#define SSL_free (O.SSL_free)
#define SSL_ctrl (O.SSL_ctrl)
#define SSL_set_verify (O.SSL_set_verify)
#define SSL_set_hostflags (O.SSL_set_hostflags)
#define SSL_get0_param (O.SSL_get0_param)
#define SSL_set1_host (O.SSL_set1_host)
#define SSL_connect (O.SSL_connect)
#define SSL_get_error (O.SSL_get_error)
#define SSL_get_verify_result (O.SSL_get_verify_result)
#define SSL_get_version (O.SSL_get_version)
#define SSL_get_current_cipher (O.SSL_get_current_cipher)
#define SSL_CIPHER_get_name (O.SSL_CIPHER_get_name)
#define SSL_read (O.SSL_read)
#define SSL_write (O.SSL_write)
#define SSL_pending (O.SSL_pending)
#define SSL_shutdown (O.SSL_shutdown)

/* An auth_file larger than this is not a credentials file. */
#define AUTH_FILE_MAX (64 * 1024)

static SSL_CTX *ctx;

/* ssl_err - the earliest OpenSSL error of the queue as text (the one
 * that started it), or fallback; the queue is cleared */
static void
ssl_err(char *out, size_t outlen, const char *fallback)
{
	unsigned long e = ERR_get_error();

	if (e == 0)
		snprintf(out, outlen, "%s", fallback);
	else {
		ERR_error_string_n(e, out, outlen);
		ERR_clear_error();
	}
}

int
tls_init(const struct conf *c, struct result *res)
{
	char why[256];

	if (ctx)
		return 0;
	if (ossl_load(res) < 0)
		return -1;
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL) {
		ssl_err(why, sizeof(why), "SSL_CTX_new failed");
		result_set(res, OUT_TEMP, R_TLS_SETUP, "%s", why);
		return -1;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (c->tls_ca_file[0] ?
	    SSL_CTX_load_verify_locations(ctx, c->tls_ca_file, NULL) != 1 :
	    SSL_CTX_set_default_verify_paths(ctx) != 1) {
		ssl_err(why, sizeof(why), "cannot load");
		result_set(res, OUT_TEMP, R_TLS_SETUP, "trust anchors %s: %s",
		    c->tls_ca_file[0] ? c->tls_ca_file : "(system store)", why);
		goto fail;
	}
	if (c->tls_cert[0] &&
	    (SSL_CTX_use_certificate_chain_file(ctx, c->tls_cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, c->tls_key,
	    SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1)) {
		ssl_err(why, sizeof(why), "cannot load");
		result_set(res, OUT_TEMP, R_TLS_SETUP, "client certificate %s, "
		    "key %s: %s", c->tls_cert, c->tls_key, why);
		goto fail;
	}
	return 0;
fail:
	SSL_CTX_free(ctx);
	ctx = NULL;
	return -1;
}

/* is_ip - an IPv4 or IPv6 literal (without brackets) */
static int
is_ip(const char *name)
{
	unsigned char b[16];

	return inet_pton(AF_INET, name, b) == 1 ||
	    inet_pton(AF_INET6, name, b) == 1;
}

/*
 * tls_new - an SSL on socket fd for the server name, a host name or an
 * address literal ("[192.0.2.1]", "[IPv6:2001:db8::1]"): SNI for a host
 * name; with verify, the chain and the name or address are checked.
 * NULL with res set.
 */
static SSL *
tls_new(int fd, const char *name, int verify, const char *host,
    const char *peer, struct result *res)
{
	char bare[HOST_MAX], why[256];
	SSL *ssl;

	snprintf(bare, sizeof(bare), "%s", name);
	if (bare[0] == '[') {
		/* A smarthost written as an address literal. */
		memmove(bare, bare + 1, strlen(bare));
		bare[strcspn(bare, "]")] = '\0';
		if (strncasecmp(bare, "IPv6:", 5) == 0)
			memmove(bare, bare + 5, strlen(bare + 5) + 1);
	}
	ssl = SSL_new(ctx);
	if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
		ssl_err(why, sizeof(why), "SSL_new failed");
		result_at(res, OUT_TEMP, R_TLS_SETUP, host, peer, "%s", why);
		goto fail;
	}
	if (!is_ip(bare))
		SSL_set_tlsext_host_name(ssl, bare);
	if (verify) {
		SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (is_ip(bare) ? X509_VERIFY_PARAM_set1_ip_asc(
		    SSL_get0_param(ssl), bare) != 1 :
		    SSL_set1_host(ssl, bare) != 1) {
			result_at(res, OUT_TEMP, R_TLS_SETUP, host, peer,
			    "cannot verify the name %s", bare);
			goto fail;
		}
	}
	return ssl;
fail:
	SSL_free(ssl);
	return NULL;
}

/*
 * handshake_error - why SSL_connect failed with r (SSL_get_error e, not
 * a wait): the reason and the words for the result; HS_NOT_TLS when the
 * server's bytes are not TLS at all.
 */
static enum handshake
handshake_error(SSL *ssl, int r, int e, enum reason *why_r, char *why,
    size_t whylen)
{
	long vr;
	unsigned long code;

	*why_r = R_TLS_HANDSHAKE;
	if ((vr = SSL_get_verify_result(ssl)) != X509_V_OK) {
		*why_r = R_TLS_VERIFY;
		snprintf(why, whylen, "%s", X509_verify_cert_error_string(vr));
		return HS_FAILED;
	}
	if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
		snprintf(why, whylen, "%s", r == 0 || errno == 0 ?
		    "connection closed by server" : strerror(errno));
		return HS_FAILED;
	}
	/* A plain-text reply read as a TLS record (reason codes are per
	 * library: only libssl's count) */
	code = ERR_peek_error();
	ssl_err(why, whylen, "handshake failed");
	return ERR_GET_LIB(code) == ERR_LIB_SSL &&
	    (ERR_GET_REASON(code) == SSL_R_WRONG_VERSION_NUMBER ||
	    ERR_GET_REASON(code) == SSL_R_PACKET_LENGTH_TOO_LONG) ?
	    HS_NOT_TLS : HS_FAILED;
}

enum handshake
tls_handshake(struct tls *t, int fd, const char *name, int verify,
    long timeout, const char *host, const char *peer, struct result *res)
{
	enum reason why_r = R_TLS_HANDSHAKE;
	enum handshake hs = HS_FAILED;
	long long deadline;
	char why[256];
	SSL *ssl;
	int r, e, w;

	if ((ssl = tls_new(fd, name, verify, host, peer, res)) == NULL)
		return HS_FAILED;
	deadline = deadline_in(timeout);
	ERR_clear_error();
	while ((r = SSL_connect(ssl)) != 1) {
		e = SSL_get_error(ssl, r);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
			hs = handshake_error(ssl, r, e, &why_r, why,
			    sizeof(why));
			goto fail;
		}
		w = wait_fd(fd, e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN,
		    deadline);
		if (w <= 0) {
			snprintf(why, sizeof(why), "%s", w == 0 ? "timeout" :
			    strerror(errno));
			goto fail;
		}
	}
	t->ssl = ssl;
	t->want = 0;
	t->verified = verify && SSL_get_verify_result(ssl) == X509_V_OK;
	snprintf(t->desc, sizeof(t->desc), "%s %s, peer %s",
	    SSL_get_version(ssl), SSL_get_cipher_name(ssl),
	    t->verified ? "verified" : "not verified");
	return HS_OK;
fail:
	result_at(res, OUT_TEMP, why_r, host, peer, "%s", why);
	SSL_free(ssl);
	return hs;
}

/* tls_io_err - map an SSL_read/SSL_write failure to errno conventions */
static ssize_t
tls_io_err(struct tls *t, int r)
{
	int e = SSL_get_error(t->ssl, r);

	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		t->want = e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN;
		errno = EAGAIN;
		return -1;
	}
	if (e == SSL_ERROR_ZERO_RETURN ||
	    (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && r == 0))
		return 0;
	ERR_clear_error();
	if (e != SSL_ERROR_SYSCALL || errno == 0)
		errno = EPROTO;
	return -1;
}

ssize_t
tls_read(struct tls *t, void *p, size_t n)
{
	int r;

	ERR_clear_error();
	r = SSL_read(t->ssl, p, n > 1 << 30 ? 1 << 30 : (int)n);
	return r > 0 ? r : tls_io_err(t, r);
}

ssize_t
tls_write(struct tls *t, const void *p, size_t n)
{
	int r;

	ERR_clear_error();
	r = SSL_write(t->ssl, p, n > 1 << 30 ? 1 << 30 : (int)n);
	return r > 0 ? r : tls_io_err(t, r);
}

int
tls_pending(const struct tls *t)
{
	return t->ssl && SSL_pending(t->ssl) > 0;
}

void
tls_close(struct tls *t)
{
	if (t->ssl) {
		/* One close_notify, no waiting for the peer's. */
		SSL_shutdown(t->ssl);
		SSL_free(t->ssl);
		t->ssl = NULL;
	}
}

int
b64_encode(const void *p, size_t n, struct buf *out)
{
	size_t need = 4 * ((n + 2) / 3) + 1;
	struct result r;
	char *tmp;
	int len, rc;

	if (n > (1 << 20) || ossl_load(&r) < 0)
		return -1;
	tmp = xmalloc(need);
	len = EVP_EncodeBlock((unsigned char *)tmp, p, (int)n);
	rc = len < 0 ? -1 : buf_add(out, tmp, (size_t)len);
	free(tmp);
	return rc;
}

/* b64_decode - a server's base64 challenge; -1 when it is not base64 */
#define B64_ALPHABET "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" \
    "0123456789+/"

int
b64_decode(const char *s, struct buf *out)
{
	size_t n = strlen(s), pad = 0;
	struct result r;
	unsigned char *tmp;
	int len, rc;

	if (n % 4 != 0 || n > (1 << 20) || ossl_load(&r) < 0)
		return -1;
	if (n >= 1 && s[n - 1] == '=')
		pad++;
	if (n >= 2 && s[n - 2] == '=')
		pad++;
	/* RFC 4648 3.3: nothing outside the alphabet, and '=' only as the
	 * padding at the end (EVP_DecodeBlock skips blanks and would take
	 * padding anywhere) */
	if (n == 0 ? 0 : pad == n || strspn(s, B64_ALPHABET) != n - pad)
		return -1;
	tmp = xmalloc(n / 4 * 3 + 1);
	len = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)n);
	rc = len < 0 ? -1 : buf_add(out, tmp, (size_t)len - pad);
	free(tmp);
	return rc;
}

/* One field of an auth_file line. */
struct field {
	const char *s;
	size_t len;
};

/* skip_blank - past spaces and tabs, not beyond e */
static const char *
skip_blank(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

/*
 * auth_fields - one auth_file line p[0..e), without its newline, into
 * host, user and password (f[0..3)): 1 when it has them, 0 for a blank
 * line or a comment, -1 when it is malformed (fewer than three fields, a
 * NUL byte).
 */
static int
auth_fields(const char *p, const char *e, struct field *f)
{
	const char *q;
	int i;

	while (e > p && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
		e--;
	p = skip_blank(p, e);
	if (p == e || *p == '#')
		return 0;
	if (memchr(p, '\0', (size_t)(e - p)) != NULL)
		return -1;
	for (i = 0; i < 2; i++) {
		for (q = p; q < e && *q != ' ' && *q != '\t'; q++)
			;
		f[i].s = p;
		f[i].len = (size_t)(q - p);
		p = skip_blank(q, e);
	}
	f[2].s = p;
	f[2].len = (size_t)(e - p);
	return f[1].len > 0 && f[2].len > 0 ? 1 : -1;
}

int
auth_parse(const char *text, size_t len, const char *host, char *user,
    size_t ulen, char *pass, size_t plen, size_t *lineno, const char **why)
{
	const char *p, *nl, *end = text + len;
	struct field f[3];
	size_t n = 0;
	int k;

	for (p = text; p < end; p = nl + 1) {
		n++;
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			nl = end;
		k = auth_fields(p, nl, f);
		if (k < 0) {
			*why = "expected \"host user password\"";
			goto bad;
		}
		if (k == 0 || f[0].len != strlen(host) ||
		    strncasecmp(f[0].s, host, f[0].len) != 0)
			continue;
		if (f[1].len >= ulen || f[2].len >= plen) {
			*why = "user or password too long";
			goto bad;
		}
		memcpy(user, f[1].s, f[1].len);
		user[f[1].len] = '\0';
		memcpy(pass, f[2].s, f[2].len);
		pass[f[2].len] = '\0';
		return 1;
	}
	return 0;
bad:
	*lineno = n;
	return -1;
}

/* auth_read - the auth_file into b: not through a symbolic link, not
 * open to group or others, at most b's cap; 0 or -1 with res set */
static int
auth_read(const char *file, struct buf *b, struct result *res)
{
	struct stat st;
	int fd, n, rc = -1;

	fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 || fstat(fd, &st) < 0) {
		result_set(res, OUT_TEMP, R_CONFIG, "auth_file %s: %s", file,
		    strerror(errno));
		goto out;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		result_set(res, OUT_TEMP, R_CONFIG, "auth_file %s is readable "
		    "by others (mode %03o): refusing to use it; chmod 600 %s",
		    file, (unsigned)(st.st_mode & 0777), file);
		goto out;
	}
	if ((n = read_all(fd, b)) < 0) {
		result_set(res, OUT_TEMP, R_CONFIG, "auth_file %s: %s", file,
		    n == -EFBIG ? "too large" : strerror(-n));
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* auth_lookup - auth_parse on the auth_file */
int
auth_lookup(const char *file, const char *host, char *user, size_t ulen,
    char *pass, size_t plen, struct result *res)
{
	const char *why = "";
	struct buf b;
	size_t lineno = 0;
	int rc = -1;

	buf_init(&b, AUTH_FILE_MAX);
	if (auth_read(file, &b, res) < 0)
		goto out;
	rc = auth_parse(b.p ? b.p : "", b.len, host, user, ulen, pass, plen,
	    &lineno, &why);
	if (rc < 0)
		result_set(res, OUT_TEMP, R_CONFIG, "auth_file %s:%zu: %s",
		    file, lineno, why);
out:
	buf_wipe(&b);
	return rc;
}

/* The server's iteration count, bounded: too few is a downgrade, too many
 * a way to keep us busy. */
#define SCRAM_ITER_MIN 4096
#define SCRAM_ITER_MAX 1000000

/* scram_name - a SASL name with ',' and '=' escaped (RFC 5802 5.1) */
static int
scram_name(struct buf *b, const char *s)
{
	int rc = 0;

	for (; *s && rc == 0; s++)
		rc = *s == ',' ? buf_adds(b, "=2C") : *s == '=' ?
		    buf_adds(b, "=3D") : buf_addc(b, *s);
	return rc;
}

int
scram_first(struct scram *sc, const char *user, struct buf *out,
    struct result *res)
{
	unsigned char rnd[18];
	struct buf nonce;

	memset(sc, 0, sizeof(*sc));
	buf_init(&sc->bare, 0);
	buf_init(&nonce, 0);
	if (ossl_load(res) < 0)
		return -1;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1 ||
	    b64_encode(rnd, sizeof(rnd), &nonce) < 0) {
		result_set(res, OUT_TEMP, R_AUTH_SCRAM, "no random nonce");
		buf_free(&nonce);
		return -1;
	}
	snprintf(sc->cnonce, sizeof(sc->cnonce), "%s", nonce.p);
	buf_free(&nonce);
	if (buf_adds(&sc->bare, "n=") < 0 || scram_name(&sc->bare, user) < 0 ||
	    buf_printf(&sc->bare, ",r=%s", sc->cnonce) < 0 ||
	    buf_adds(out, "n,,") < 0 || buf_add(out, sc->bare.p,
	    sc->bare.len) < 0) {
		result_oom(res);
		return -1;
	}
	return 0;
}

/* attr - the value of "k=" in a comma-separated SCRAM message */
static const char *
attr(const char *msg, char k, size_t *len)
{
	const char *p = msg;

	while (p && *p) {
		if (p[0] == k && p[1] == '=') {
			*len = strcspn(p + 2, ",");
			return p + 2;
		}
		p = strchr(p, ',');
		if (p)
			p++;
	}
	return NULL;
}

int
scram_final(struct scram *sc, const char *pass, const char *sfirst,
    struct buf *out, struct result *res)
{
	unsigned char salted[32], ckey[32], stored[32], csig[32], proof[32];
	unsigned char skey[32];
	unsigned int hl = 0;
	struct buf salt, saltb64, am;
	const char *r, *sv, *iv;
	size_t rl, sl, il, i;
	char num[16];
	long iter;
	int rc = -1;

	buf_init(&salt, 0);
	buf_init(&saltb64, 0);
	buf_init(&am, 0);
	r = attr(sfirst, 'r', &rl);
	sv = attr(sfirst, 's', &sl);
	iv = attr(sfirst, 'i', &il);
	if (r == NULL || sv == NULL || iv == NULL || il >= sizeof(num) ||
	    rl <= strlen(sc->cnonce) || strncmp(r, sc->cnonce,
	    strlen(sc->cnonce)) != 0 || buf_add(&saltb64, sv, sl) < 0 ||
	    b64_decode(saltb64.p, &salt) < 0 || salt.len == 0) {
		result_set(res, OUT_TEMP, R_AUTH_SCRAM,
		    "malformed server-first message");
		goto out;
	}
	memcpy(num, iv, il);
	num[il] = '\0';
	if (parse_long(num, SCRAM_ITER_MIN, SCRAM_ITER_MAX, &iter) < 0) {
		result_set(res, OUT_TEMP, R_AUTH_SCRAM,
		    "iteration count %s outside %d..%d", num, SCRAM_ITER_MIN,
		    SCRAM_ITER_MAX);
		goto out;
	}
	/* RFC 5802 3: the proof and the signature we expect back. */
	if (PKCS5_PBKDF2_HMAC(pass, (int)strlen(pass), (unsigned char *)salt.p,
	    (int)salt.len, (int)iter, EVP_sha256(), 32, salted) != 1 ||
	    HMAC(EVP_sha256(), salted, 32, (const unsigned char *)"Client Key",
	    10, ckey, &hl) == NULL ||
	    EVP_Digest(ckey, 32, stored, NULL, EVP_sha256(), NULL) != 1 ||
	    buf_add(&am, sc->bare.p, sc->bare.len) < 0 ||
	    buf_printf(&am, ",%s,c=biws,r=%.*s", sfirst, (int)rl, r) < 0 ||
	    HMAC(EVP_sha256(), stored, 32, (unsigned char *)am.p, am.len, csig,
	    &hl) == NULL ||
	    HMAC(EVP_sha256(), salted, 32, (const unsigned char *)"Server Key",
	    10, skey, &hl) == NULL ||
	    HMAC(EVP_sha256(), skey, 32, (unsigned char *)am.p, am.len,
	    sc->ssig, &hl) == NULL) {
		result_set(res, OUT_TEMP, R_AUTH_SCRAM, "computation failed");
		goto out;
	}
	for (i = 0; i < 32; i++)
		proof[i] = ckey[i] ^ csig[i];
	if (buf_printf(out, "c=biws,r=%.*s,p=", (int)rl, r) < 0 ||
	    b64_encode(proof, 32, out) < 0) {
		result_oom(res);
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(ckey, sizeof(ckey));
	OPENSSL_cleanse(skey, sizeof(skey));
	buf_free(&salt);
	buf_free(&saltb64);
	buf_free(&am);
	return rc;
}

int
scram_verify(struct scram *sc, const char *sfinal)
{
	struct buf want;
	size_t n;
	const char *v = attr(sfinal, 'v', &n);
	int ok;

	buf_init(&want, 0);
	ok = v && b64_encode(sc->ssig, 32, &want) == 0 && want.len == n &&
	    CRYPTO_memcmp(want.p, v, n) == 0;
	buf_free(&want);
	return ok ? 0 : -1;
}

void
scram_free(struct scram *sc)
{
	buf_free(&sc->bare);
	explicit_bzero(sc->ssig, sizeof(sc->ssig));
}
