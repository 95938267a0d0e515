/*
 * tlstest.c - exact assertions on tls.c's pure parts (t/tls.t): base64
 * against RFC 4648 section 10 and malformed input, SCRAM-SHA-256 against
 * the exchange of RFC 7677 section 3 and broken server messages.
 *
 * scram_first draws its client nonce at random; the RFC's exchange needs
 * the RFC's nonce.  The test checks what scram_first leaves in struct
 * scram (the nonce and the bare client-first message built from it),
 * then puts the RFC's nonce into those two fields the same way
 * (scram_rfc_start) before scram_final: no hook in tls.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mxsend.h"
#include "t/tap.h"

#define B64_ALPHABET "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" \
	"0123456789+/"

/* RFC 4648 section 10 */
static const struct {
	const char *raw, *b64;
} rfc4648[] = {
	{ "", "" },
	{ "f", "Zg==" },
	{ "fo", "Zm8=" },
	{ "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" },
	{ "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
};

/* Not base64: b64_decode returns -1 and leaves its buffer alone.  bug:
 * what tls.c takes today (RFC 4648 section 3.3 says to refuse it). */
static const struct {
	const char *in, *why;
	int bug;
} b64_bad[] = {
	{ "Z", "1 character", 0 },
	{ "Zg", "2 characters, no padding", 0 },
	{ "Zg=", "3 characters", 0 },
	{ "Zm9vY", "5 characters", 0 },
	{ "Zm9v\n", "a line end after it", 0 },
	{ "Zm9!", "'!'", 0 },
	{ "Zm 9", "a space inside", 0 },
	{ "Zm-v", "base64url's '-'", 0 },
	{ "Zm_v", "base64url's '_'", 0 },
	{ "Zm9v===", "7 characters", 0 },
	{ "Zm9v\xc3\xa9==", "8-bit octets", 0 },
	{ "Zg=a", "a character after '='", 0 },
	{ "Z===", "three '='", 0 },
	{ "====", "only '='", 0 },
	{ "=Zm9", "'=' first", 0 },
	{ "Zg==Zm9v", "'=' inside", 0 },
	{ "Zm9v    ", "trailing spaces", 0 },
	{ "Zm9v\r\n\r\n", "trailing line ends", 0 },
};

static void
test_b64(void)
{
	struct buf b;
	char *big;
	size_t i;

	buf_init(&b, 0);
	for (i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
		buf_reset(&b);
		is_int(b64_encode(rfc4648[i].raw, strlen(rfc4648[i].raw), &b), 0,
		    "b64_encode(\"%s\")", rfc4648[i].raw);
		is_str(b.p ? b.p : "", rfc4648[i].b64, "  is \"%s\"",
		    rfc4648[i].b64);
		buf_reset(&b);
		is_int(b64_decode(rfc4648[i].b64, &b), 0, "b64_decode(\"%s\")",
		    rfc4648[i].b64);
		is_str(b.p ? b.p : "", rfc4648[i].raw, "  is \"%s\"",
		    rfc4648[i].raw);
		is_int(b.len, strlen(rfc4648[i].raw), "  %zu octets",
		    strlen(rfc4648[i].raw));
	}
	for (i = 0; i < sizeof(b64_bad) / sizeof(b64_bad[0]); i++) {
		tap_todo = b64_bad[i].bug ? "tls.c takes it" : NULL;
		buf_reset(&b);
		buf_adds(&b, "kept");
		ok(b64_decode(b64_bad[i].in, &b) == -1 && b.len == 4 &&
		    strcmp(b.p, "kept") == 0, "b64_decode: %s: -1, nothing added",
		    b64_bad[i].why);
	}
	tap_todo = NULL;

	/* both append; binary octets; the 1 MiB limit */
	buf_reset(&b);
	buf_adds(&b, "<");
	ok(b64_encode("\0\xff\x10", 3, &b) == 0 && strcmp(b.p, "<AP8Q") == 0,
	    "b64_encode appends; NUL and 8-bit octets");
	ok(b64_decode("AP8Q", &b) == 0 && b.len == 8 &&
	    memcmp(b.p, "<AP8Q\0\xff\x10", 8) == 0,
	    "b64_decode appends; NUL and 8-bit octets");
	big = calloc(1, (1 << 20) + 5);
	buf_reset(&b);
	is_int(b64_encode(big, 1 << 20, &b), 0, "b64_encode: 1 MiB");
	is_int(b.len, 1398104, "  into 1398104 characters");
	buf_reset(&b);
	is_int(b64_encode(big, (1 << 20) + 1, &b), -1,
	    "b64_encode: over 1 MiB is -1");
	memset(big, 'A', (1 << 20) + 4);
	buf_reset(&b);
	is_int(b64_decode(big, &b), -1, "b64_decode: over 1 MiB is -1");
	is_int(b.len, 0, "  nothing added");
	free(big);
	buf_free(&b);
}

/* RFC 7677 section 3: user "user", password "pencil" */
#define RFC_CNONCE	"rOprNGfwEbeRWgbNEkqO"
#define RFC_NONCE	RFC_CNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_SALT	"W22ZaJ0SNY7soEsUEjb6gQ=="
#define RFC_SFIRST	"r=" RFC_NONCE ",s=" RFC_SALT ",i=4096"
#define RFC_CFINAL	"c=biws,r=" RFC_NONCE \
	",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_SFINAL	"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

/* scram_rfc_start - sc after scram_first for "user", with the RFC's
 * client nonce in place of the random one; 0 or -1 */
static int
scram_rfc_start(struct scram *sc)
{
	struct result res;
	struct buf first;
	int rc;

	buf_init(&first, 0);
	rc = scram_first(sc, "user", &first, &res);
	buf_free(&first);
	if (rc < 0)
		return -1;
	snprintf(sc->cnonce, sizeof(sc->cnonce), "%s", RFC_CNONCE);
	buf_reset(&sc->bare);
	return buf_printf(&sc->bare, "n=user,r=%s", sc->cnonce);
}

static void
test_scram_first(void)
{
	struct scram sc;
	struct result res;
	struct buf out;
	char want[128], nonce1[sizeof(sc.cnonce)];

	buf_init(&out, 0);
	is_int(scram_first(&sc, "user", &out, &res), 0, "scram_first");
	is_int(strlen(sc.cnonce), 24, "  a 24-character nonce (18 random "
	    "octets)");
	is_int(strspn(sc.cnonce, B64_ALPHABET), 24, "  of base64 characters");
	snprintf(want, sizeof(want), "n,,n=user,r=%s", sc.cnonce);
	is_str(out.p, want, "  client-first: GS2 header n,,; n=user,r=NONCE");
	is_str(sc.bare.p, want + 3, "  the bare message kept for the proof");
	snprintf(nonce1, sizeof(nonce1), "%s", sc.cnonce);
	scram_free(&sc);
	buf_reset(&out);
	is_int(scram_first(&sc, "a,b=c", &out, &res), 0, "scram_first again");
	ok(strcmp(sc.cnonce, nonce1) != 0, "  another nonce");
	snprintf(want, sizeof(want), "n,,n=a=2Cb=3Dc,r=%s", sc.cnonce);
	is_str(out.p, want, "  ',' and '=' in the name: =2C and =3D");
	scram_free(&sc);
	buf_free(&out);
}

static void
test_scram_rfc7677(void)
{
	static const char *const bad_final[] = {
		"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G5=",
		"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4",
		"v=",
		"",
		"e=invalid-proof",
	};
	struct scram sc;
	struct result res;
	struct buf out;
	size_t i;

	buf_init(&out, 0);
	is_int(scram_rfc_start(&sc), 0, "RFC 7677: the client nonce "
	    RFC_CNONCE);
	is_str(sc.bare.p, "n=user,r=" RFC_CNONCE, "  client-first-bare");
	is_int(scram_final(&sc, "pencil", RFC_SFIRST, &out, &res), 0,
	    "  scram_final");
	is_str(out.p, RFC_CFINAL, "  client-final, the RFC's to the octet");
	is_int(scram_verify(&sc, RFC_SFINAL), 0, "  the RFC's server-final "
	    "proves the server");
	for (i = 0; i < sizeof(bad_final) / sizeof(bad_final[0]); i++)
		is_int(scram_verify(&sc, bad_final[i]), -1,
		    "  server-final \"%s\": -1", bad_final[i]);
	scram_free(&sc);

	buf_reset(&out);
	is_int(scram_rfc_start(&sc), 0, "RFC 7677, password \"pencil2\"");
	is_int(scram_final(&sc, "pencil2", RFC_SFIRST, &out, &res), 0,
	    "  scram_final");
	ok(strncmp(out.p, "c=biws,r=" RFC_NONCE ",p=",
	    strlen("c=biws,r=" RFC_NONCE ",p=")) == 0 &&
	    strlen(out.p) == strlen(RFC_CFINAL) && strcmp(out.p,
	    RFC_CFINAL) != 0, "  another proof");
	is_int(scram_verify(&sc, RFC_SFINAL), -1,
	    "  the RFC's server-final does not prove that server");
	scram_free(&sc);
	buf_free(&out);
}

/* The words of a failed scram_final, as result_str makes them from its
 * reason (auth-scram) and detail. */
#define SCRAM_ERR(s)	"SCRAM: " s
#define MALFORMED	SCRAM_ERR("malformed server-first message")
#define ITERATIONS(n)	SCRAM_ERR("iteration count " n " outside 4096..1000000")

static void
test_scram_bad_first(void)
{
	static const struct {
		const char *sfirst, *why, *text;
	} bad[] = {
		{ "r=X" RFC_NONCE ",s=" RFC_SALT ",i=4096",
		    "a nonce that does not start with ours", MALFORMED },
		{ "r=" RFC_CNONCE ",s=" RFC_SALT ",i=4096",
		    "only our nonce, no server part", MALFORMED },
		{ "r=" RFC_NONCE ",i=4096", "no salt", MALFORMED },
		{ "r=" RFC_NONCE ",s=,i=4096", "an empty salt", MALFORMED },
		{ "r=" RFC_NONCE ",s=W22Z!a==,i=4096", "a salt not in base64",
		    MALFORMED },
		{ "r=" RFC_NONCE ",s=" RFC_SALT, "no iteration count",
		    MALFORMED },
		{ "s=" RFC_SALT ",i=4096", "no nonce", MALFORMED },
		{ "", "nothing in it", MALFORMED },
		{ "r=" RFC_NONCE ",s=" RFC_SALT ",i=1234567890123456",
		    "a 16-digit iteration count", MALFORMED },
		{ "r=" RFC_NONCE ",s=" RFC_SALT ",i=4095", "4095 iterations",
		    ITERATIONS("4095") },
		{ "r=" RFC_NONCE ",s=" RFC_SALT ",i=1000001",
		    "1000001 iterations",
		    ITERATIONS("1000001") },
		{ "r=" RFC_NONCE ",s=" RFC_SALT ",i=4096x",
		    "an iteration count with a letter",
		    ITERATIONS("4096x") },
	};
	struct scram sc;
	struct result res;
	struct rtext rt;
	struct buf out;
	size_t i;
	int rc;

	buf_init(&out, 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		buf_reset(&out);
		memset(&res, 0, sizeof(res));
		rc = scram_rfc_start(&sc) == 0 ? scram_final(&sc, "pencil",
		    bad[i].sfirst, &out, &res) : 2;
		ok(rc == -1 && res.o == OUT_TEMP && res.why == R_AUTH_SCRAM,
		    "server-first with %s: -1, TEMP, a SCRAM failure", bad[i].why);
		is_str(result_str(&res, &rt), bad[i].text, "  says so");
		scram_free(&sc);
	}
	buf_free(&out);
}

int
main(void)
{
	test_b64();
	test_scram_first();
	test_scram_rfc7677();
	test_scram_bad_first();
	return tap_done();
}
