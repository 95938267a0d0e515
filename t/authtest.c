/*
 * authtest.c - auth_parse (pure) and auth_lookup's file checks, with
 * exact results: found or not, the user and password, the line and the
 * message of a malformed file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mxsend.h"
#include "tap.h"

/* One auth_parse case. */
struct pcase {
	const char *name;
	const char *text;
	size_t len;		/* 0: strlen(text) */
	const char *host;
	size_t room;		/* ulen and plen; 0: 64 */
	int rc;
	const char *user, *pass;	/* rc 1 */
	size_t lineno;			/* rc -1 */
	const char *why;		/* rc -1 */
};

#define SYNTAX "expected \"host user password\""
#define LONG "user or password too long"

static const struct pcase pcases[] = {
	{ "one line", "smtp.example.com alice s3cret\n", 0,
	    "smtp.example.com", 0, 1, "alice", "s3cret", 0, NULL },
	{ "no final newline", "smtp.example.com alice s3cret", 0,
	    "smtp.example.com", 0, 1, "alice", "s3cret", 0, NULL },
	{ "host without regard to case", "SMTP.Example.COM alice pw\n", 0,
	    "smtp.example.com", 0, 1, "alice", "pw", 0, NULL },
	{ "the password is the rest of the line",
	    "smtp.example.com alice  two words\there \n", 0,
	    "smtp.example.com", 0, 1, "alice", "two words\there", 0, NULL },
	{ "CRLF, blanks around the fields",
	    "  \tsmtp.example.com \t alice \t pw \t\r\n", 0,
	    "smtp.example.com", 0, 1, "alice", "pw", 0, NULL },
	{ "comments and blank lines",
	    "# credentials\n\n   \n\t# indented\nsmtp.example.com a p\n", 0,
	    "smtp.example.com", 0, 1, "a", "p", 0, NULL },
	{ "the first line for the host",
	    "other.example a b\nsmtp.example.com first 1\n"
	    "smtp.example.com second 2\n", 0,
	    "smtp.example.com", 0, 1, "first", "1", 0, NULL },
	{ "an address literal", "[192.0.2.1] u p\n", 0,
	    "[192.0.2.1]", 0, 1, "u", "p", 0, NULL },
	{ "a name that only begins like the host",
	    "smtp.example.com.evil u p\n", 0,
	    "smtp.example.com", 0, 0, NULL, NULL, 0, NULL },
	{ "the host is not listed", "other.example a b\n# x\n", 0,
	    "smtp.example.com", 0, 0, NULL, NULL, 0, NULL },
	{ "empty", "", 0, "smtp.example.com", 0, 0, NULL, NULL, 0, NULL },
	{ "two fields", "smtp.example.com alice\n", 0,
	    "smtp.example.com", 0, -1, NULL, NULL, 1, SYNTAX },
	{ "one field on line 3", "# c\nother.example a b\nlonely\n", 0,
	    "smtp.example.com", 0, -1, NULL, NULL, 3, SYNTAX },
	{ "a malformed line of another host stops the search",
	    "other.example a\nsmtp.example.com u p\n", 0,
	    "smtp.example.com", 0, -1, NULL, NULL, 1, SYNTAX },
	{ "a malformed line after the host's is not read",
	    "smtp.example.com u p\nbroken\n", 0,
	    "smtp.example.com", 0, 1, "u", "p", 0, NULL },
	{ "two fields and trailing blanks", "smtp.example.com alice  \t\r\n",
	    0, "smtp.example.com", 0, -1, NULL, NULL, 1, SYNTAX },
	{ "a NUL byte", "x a b\nsmtp.example.com al\0ice pw\n", 33,
	    "smtp.example.com", 0, -1, NULL, NULL, 2, SYNTAX },
	{ "user too long", "# c\nsmtp.example.com abcdefgh p\n", 0,
	    "smtp.example.com", 8, -1, NULL, NULL, 2, LONG },
	{ "password too long", "smtp.example.com a 12345678\n", 0,
	    "smtp.example.com", 8, -1, NULL, NULL, 1, LONG },
	{ "just fits", "smtp.example.com abcdefg 1234567\n", 0,
	    "smtp.example.com", 8, 1, "abcdefg", "1234567", 0, NULL },
	{ "long credentials of another host", "o.example abcdefghij pw\n", 0,
	    "smtp.example.com", 8, 0, NULL, NULL, 0, NULL },
};

static void
parse_cases(void)
{
	size_t i;

	for (i = 0; i < sizeof(pcases) / sizeof(pcases[0]); i++) {
		const struct pcase *c = &pcases[i];
		size_t room = c->room ? c->room : 64, lineno = 0;
		char user[64] = "untouched", pass[64] = "untouched";
		const char *why = NULL;
		int rc;

		rc = auth_parse(c->text, c->len ? c->len : strlen(c->text),
		    c->host, user, room, pass, room, &lineno, &why);
		is_int(rc, c->rc, "%s: returns %d", c->name, c->rc);
		if (c->rc == 1) {
			is_str(user, c->user, "%s: user", c->name);
			is_str(pass, c->pass, "%s: password", c->name);
		} else {
			is_str(user, "untouched", "%s: user untouched",
			    c->name);
			is_str(pass, "untouched", "%s: password untouched",
			    c->name);
		}
		if (c->rc < 0) {
			is_int(lineno, c->lineno, "%s: line", c->name);
			is_str(why, c->why, "%s: why", c->name);
		}
	}
}

/* put - a file of n octets of text with mode */
static int
put(const char *path, const char *text, size_t n, mode_t mode)
{
	int fd, rc;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0)
		return -1;
	rc = write_all(fd, text, n);
	if (fchmod(fd, mode) < 0)
		rc = -1;
	close(fd);
	return rc;
}

/* lookup - auth_lookup on path for smtp.example.com: its return, and
 * the result's sentence in why */
static int
lookup(const char *path, char *user, char *pass, char *why, size_t whylen)
{
	struct result res;
	struct rtext t;
	int rc;

	memset(&res, 0, sizeof(res));
	rc = auth_lookup(path, "smtp.example.com", user, 64, pass, 64, &res);
	snprintf(why, whylen, "%s", rc < 0 ? result_str(&res, &t) : "");
	if (rc < 0 && (res.o != OUT_TEMP || res.why != R_CONFIG))
		snprintf(why, whylen, "not OUT_TEMP R_CONFIG");
	return rc;
}

static void
file_cases(const char *dir)
{
	char f[1024], link[1024], want[2200], why[ERRTEXT_MAX];
	static const mode_t modes[] = { 0640, 0602, 0610 };
	char user[64], pass[64], *big;
	size_t bign = 64 * 1024 + 1, i;

	snprintf(f, sizeof(f), "%s/auth", dir);
	snprintf(link, sizeof(link), "%s/link", dir);

	ok(put(f, "smtp.example.com alice s3cret\n", 30, 0600) == 0,
	    "auth_file written");
	is_int(lookup(f, user, pass, why, sizeof(why)), 1, "found");
	is_str(user, "alice", "found: user");
	is_str(pass, "s3cret", "found: password");

	ok(put(f, "other.example a b\n", 18, 0400) == 0, "mode 400");
	is_int(lookup(f, user, pass, why, sizeof(why)), 0,
	    "mode 400, another host: not found");

	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		ok(put(f, "smtp.example.com alice s3cret\n", 30,
		    modes[i]) == 0, "mode %03o", (unsigned)modes[i]);
		is_int(lookup(f, user, pass, why, sizeof(why)), -1,
		    "mode %03o: -1", (unsigned)modes[i]);
		snprintf(want, sizeof(want), "auth_file %s is readable by "
		    "others (mode %03o): refusing to use it; chmod 600 %s", f,
		    (unsigned)modes[i], f);
		is_str(why, want, "mode %03o: message", (unsigned)modes[i]);
	}

	ok(put(f, "# c\nsmtp.example.com alice\n", 27, 0600) == 0,
	    "malformed line 2");
	is_int(lookup(f, user, pass, why, sizeof(why)), -1, "malformed: -1");
	snprintf(want, sizeof(want), "auth_file %s:2: expected \"host user "
	    "password\"", f);
	is_str(why, want, "malformed: message");

	big = xmalloc(bign);
	memset(big, '#', bign);
	ok(put(f, big, bign, 0600) == 0, "64 KB and one octet");
	free(big);
	is_int(lookup(f, user, pass, why, sizeof(why)), -1, "too large: -1");
	snprintf(want, sizeof(want), "auth_file %s: too large", f);
	is_str(why, want, "too large: message");

	ok(put(f, "smtp.example.com alice s3cret\n", 30, 0600) == 0 &&
	    symlink(f, link) == 0, "a symbolic link to a good file");
	is_int(lookup(link, user, pass, why, sizeof(why)), -1, "link: -1");
	snprintf(want, sizeof(want), "auth_file %s: %s", link,
	    strerror(ELOOP));
	is_str(why, want, "link: message");

	unlink(f);
	is_int(lookup(f, user, pass, why, sizeof(why)), -1, "missing: -1");
	snprintf(want, sizeof(want), "auth_file %s: %s", f, strerror(ENOENT));
	is_str(why, want, "missing: message");
	unlink(link);
}

int
main(void)
{
	char dir[] = "/tmp/authtest.XXXXXX";

	parse_cases();
	if (mkdtemp(dir) == NULL) {
		ok(0, "mkdtemp: %s", strerror(errno));
		return tap_done();
	}
	file_cases(dir);
	rmdir(dir);
	return tap_done();
}
