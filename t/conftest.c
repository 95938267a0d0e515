/*
 * conftest.c - the config parser: defaults, every kind of value, and
 * errors that name the file and the line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mxsend.h"
#include "t/tap.h"

static void
bad(const char *text, const char *want)
{
	struct conf c;
	char err[300] = "";

	conf_defaults(&c);
	ok(conf_parse(&c, text, strlen(text), "f.conf", err, sizeof(err)) < 0 &&
	    strcmp(err, want) == 0, "refused: %s", want);
	if (strcmp(err, want) != 0)
		printf("#   got [%s]\n", err);
	conf_free(&c);
}

/* local - text parses, and local_delivery is kind with path */
static void
local(const char *text, enum local_kind kind, const char *path)
{
	struct conf c;
	char err[300] = "";

	conf_defaults(&c);
	ok(conf_parse(&c, text, strlen(text), "f.conf", err, sizeof(err)) == 0 &&
	    c.local_kind == kind && strcmp(c.local_path, path) == 0,
	    "local_delivery: kind %d, path [%.40s]", kind, path);
	if (err[0])
		printf("#   got [%s]\n", err);
	conf_free(&c);
}

/* long_value - "KEY " and a value of n octets (a '/' and then 'a's) */
static char *
long_value(const char *key, size_t n)
{
	size_t k = strlen(key);
	char *t = malloc(k + n + 3);

	if (t == NULL)
		abort();
	memcpy(t, key, k);
	t[k] = ' ';
	t[k + 1] = '/';
	memset(t + k + 2, 'a', n - 1);
	t[k + 1 + n] = '\n';
	t[k + 2 + n] = '\0';
	return t;
}

/* load - conf_load of a file holding text; c is to be freed after */
static int
load(struct conf *c, const char *text, char *err, size_t errlen)
{
	char path[] = "/tmp/conftest.XXXXXX";
	int fd = mkstemp(path), rc = -1;

	conf_defaults(c);
	snprintf(err, errlen, "cannot write %s", path);
	if (fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text)) {
		conf_free(c);
		rc = conf_load(c, path, 1, err, errlen);
	}
	if (fd >= 0) {
		close(fd);
		unlink(path);
	}
	return rc;
}

int
main(void)
{
	struct conf c;
	char err[300] = "";
	const char *good =
	    "# a comment\n"
	    "\n"
	    "hostname mx1.example.org\n"
	    "  qualify_domain example.org   \n"
	    "queue_dir /tmp/q\r\n"
	    "smarthost [192.0.2.1]:587\n"
	    "dns_server 127.0.0.1:5353,127.0.0.2\n"
	    "retry_intervals 30s 2m, 1h\n"
	    "queue_lifetime 2d\n"
	    "warn_after 0\n"
	    "max_parallel 3\n"
	    "queue_run_time 90s\n"
	    "connect_timeout 5\n"
	    "local_domains a.example, b.example\n"
	    "max_message_size 1000000\n";

	conf_defaults(&c);
	is_int(c.smtp_port, 25, "default smtp_port");
	is_int(c.nretry, 5, "default retry_intervals: five");
	is_int(c.retry[4], 4 * 3600, "default last interval 4h");
	is_int(c.queue_lifetime, 5 * 86400, "default queue_lifetime 5d");
	is_int(c.queue_run_time, 240, "default queue_run_time 4m");
	is_str(c.queue_dir, "/var/spool/mxsend", "default queue_dir");
	is_int(c.tls, TLS_OPPORTUNISTIC, "default tls");
	is_int(conf_parse(&c, good, strlen(good), "f.conf", err, sizeof(err)),
	    0, "a full file parses");
	is_str(c.hostname, "mx1.example.org", "hostname");
	is_str(c.qualify_domain, "example.org", "qualify_domain, spaces trimmed");
	is_str(c.queue_dir, "/tmp/q", "queue_dir, CR trimmed");
	is_str(c.smarthost, "[192.0.2.1]", "smarthost host");
	is_int(c.smarthost_port, 587, "smarthost port");
	is_str(c.dns_server, "127.0.0.1:5353,127.0.0.2", "dns_server");
	is_int(c.nretry, 3, "three intervals");
	ok(c.retry[0] == 30 && c.retry[1] == 120 && c.retry[2] == 3600,
	    "intervals in seconds");
	is_int(c.queue_lifetime, 2 * 86400, "queue_lifetime");
	is_int(c.warn_after, 0, "warn_after 0");
	is_int(c.max_parallel, 3, "max_parallel");
	is_int(c.queue_run_time, 90, "queue_run_time");
	is_int(c.connect_timeout, 5, "bare number is seconds");
	ok(c.local_domains.n == 2 && strcmp(c.local_domains.v[1],
	    "b.example") == 0, "local_domains list");
	is_int(c.max_message_size, 1000000, "max_message_size");
	conf_free(&c);

	bad("colour blue\n", "f.conf:1: colour: unknown key");
	bad("\n\nsmtp_port 0\n", "f.conf:3: smtp_port: not a port number");
	bad("smtp_port 25x\n", "f.conf:1: smtp_port: not a port number");
	bad("hostname\n", "f.conf:1: hostname: missing value");
	bad("hostname a b\n", "f.conf:1: hostname: not a host name");
	bad("queue_dir relative/path\n",
	    "f.conf:1: queue_dir: not an absolute path");
	bad("tls sometimes\n", "f.conf:1: tls: expected none, opportunistic, "
	    "required or verify");
	bad("retry_intervals 10x\n",
	    "f.conf:1: retry_intervals: not a list of durations above zero");
	bad("retry_intervals 0\n",
	    "f.conf:1: retry_intervals: not a list of durations above zero");
	bad("queue_lifetime -1d\n", "f.conf:1: queue_lifetime: not a duration");
	bad("smarthost relay.example:99999\n", "f.conf:1: smarthost: bad port");
	bad("local_delivery pigeon\n", "f.conf:1: local_delivery: expected "
	    "mbox DIR, maildir PATH or none");
	bad("max_parallel 0\n",
	    "f.conf:1: max_parallel: not a number from 1 to 1000");
	bad("queue_lifetime 36601d\n", "f.conf:1: queue_lifetime: not a duration");
	bad("warn_after 9223372036854775807\n",
	    "f.conf:1: warn_after: not a duration");
	bad("queue_run_time 0\n",
	    "f.conf:1: queue_run_time: not a duration above zero");
	bad("queue_run_time 5 minutes\n",
	    "f.conf:1: queue_run_time: not a duration above zero");
	bad("hostname a.example\nhostname b.example\n",
	    "f.conf:2: hostname: given twice (first on line 1)");
	bad("hostname a\001b\n", "f.conf:1: control character");
	bad("smarthost_tls sometimes\n",
	    "f.conf:1: smarthost_tls: expected implicit or starttls");
	bad("# relay\nauth_unverified maybe\n",
	    "f.conf:2: auth_unverified: expected no or yes");
	bad("auth_unverified 1\n", "f.conf:1: auth_unverified: expected no or yes");
	{
		struct conf c2;

		conf_defaults(&c2);
		is_int(c2.auth_unverified, 0, "default auth_unverified no");
		ok(conf_parse(&c2, "auth_unverified yes\n", 20, "f.conf", err,
		    sizeof(err)) == 0 && c2.auth_unverified == 1,
		    "auth_unverified yes");
		ok(conf_parse(&c2, "auth_unverified no\n", 19, "g.conf", err,
		    sizeof(err)) == 0 && c2.auth_unverified == 0,
		    "auth_unverified no");
		conf_free(&c2);
	}
	bad("dns_server 127.0.0.1 5353\n",
	    "f.conf:1: dns_server: expected ip[:port][,ip[:port]...]");

	/* local_delivery: parsed once into a kind and a path. */
	conf_defaults(&c);
	ok(c.local_kind == LOCAL_MBOX && strcmp(c.local_path, "/var/mail") == 0,
	    "default local_delivery mbox /var/mail");
	conf_free(&c);
	local("local_delivery none\n", LOCAL_NONE, "");
	local("local_delivery mbox /srv/mail\n", LOCAL_MBOX, "/srv/mail");
	local("local_delivery maildir ~/Maildir \n", LOCAL_MAILDIR, "~/Maildir");
	local("local_delivery maildir /home/%u/Maildir\n", LOCAL_MAILDIR,
	    "/home/%u/Maildir");
	local("local_delivery none\r\n", LOCAL_NONE, "");
	bad("local_delivery mbox\n", "f.conf:1: local_delivery: expected "
	    "mbox DIR, maildir PATH or none");
	bad("local_delivery maildir\t~/Maildir\n", "f.conf:1: local_delivery: "
	    "expected mbox DIR, maildir PATH or none");
	bad("local_delivery MBOX /var/mail\n", "f.conf:1: local_delivery: "
	    "expected mbox DIR, maildir PATH or none");
	bad("local_delivery none /var/mail\n", "f.conf:1: local_delivery: "
	    "expected mbox DIR, maildir PATH or none");
	bad("local_delivery /var/mail\n", "f.conf:1: local_delivery: "
	    "expected mbox DIR, maildir PATH or none");
	bad("local_delivery none\nlocal_delivery mbox /m\n",
	    "f.conf:2: local_delivery: given twice (first on line 1)");
	{
		/* The whole value, "mbox " too, fits 1023 octets. */
		char *t = long_value("local_delivery mbox", 1018);
		char *path = long_value("", 1018);

		path[strlen(path) - 1] = '\0';
		local(t, LOCAL_MBOX, path + 1);
		free(path);
		free(t);
		t = long_value("local_delivery mbox", 1019);
		bad(t, "f.conf:1: local_delivery: too long");
		free(t);
	}

	/* The reasons of the other keys, one each. */
	bad("qualify_domain a/b\n", "f.conf:1: qualify_domain: not a domain");
	bad("local_domains a.example, b/c\n",
	    "f.conf:1: local_domains: not a list of domains");
	bad("smarthost relay example\n", "f.conf:1: smarthost: not host[:port]");
	bad("connect_timeout 0\n",
	    "f.conf:1: connect_timeout: not a duration above zero");
	bad("command_timeout 0s\n",
	    "f.conf:1: command_timeout: not a duration above zero");
	bad("data_timeout x\n", "f.conf:1: data_timeout: not a duration above zero");
	bad("retry_intervals , ,\n", "f.conf:1: retry_intervals: empty list");
	bad("retry_intervals 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 "
	    "21 22 23 24 25 26 27 28 29 30 31 32 33\n",
	    "f.conf:1: retry_intervals: too many intervals");
	bad("max_parallel 1001\n",
	    "f.conf:1: max_parallel: not a number from 1 to 1000");
	bad("user_queue_messages 100000001\n", "f.conf:1: user_queue_messages: "
	    "not a number of messages (0 for no limit)");
	{
		static const char *const str[] = {
			"aliases", "tls_ca_file", "tls_cert", "tls_key", "auth_file"
		};
		char want[80], *t;
		size_t i;

		for (i = 0; i < 5; i++) {
			t = long_value(str[i], 1024);
			snprintf(want, sizeof(want), "f.conf:1: %s: too long", str[i]);
			bad(t, want);
			free(t);
		}
		t = long_value("queue_dir", 1024);
		bad(t, "f.conf:1: queue_dir: not an absolute path");
		free(t);
		t = long_value("queue_dir", 1023);
		conf_defaults(&c);
		ok(conf_parse(&c, t, strlen(t), "f.conf", err, sizeof(err)) == 0 &&
		    strlen(c.queue_dir) == 1023, "queue_dir of 1023 octets: kept");
		conf_free(&c);
		free(t);
	}
	/* Words and numbers land in their fields. */
	{
		const char *t = "tls required\nsmarthost_tls starttls\n"
		    "smtp_port 587\ncommand_timeout 2m\ndata_timeout 1h\n"
		    "max_parallel 1000\nuser_queue_messages 100000000\n"
		    "retry_intervals 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 "
		    "18 19 20 21 22 23 24 25 26 27 28 29 30 31 32\n";

		conf_defaults(&c);
		is_int(conf_parse(&c, t, strlen(t), "f.conf", err, sizeof(err)),
		    0, "words and numbers parse");
		ok(c.tls == TLS_REQUIRED && c.tls_set == 1 &&
		    c.smarthost_tls == 0 && c.smtp_port == 587 &&
		    c.command_timeout == 120 && c.data_timeout == 3600 &&
		    c.max_parallel == 1000 && c.user_queue_messages == 100000000 &&
		    c.nretry == RETRY_MAX && c.retry[RETRY_MAX - 1] == 32,
		    "tls, smarthost_tls, smtp_port, timeouts, limits, 32 intervals");
		conf_free(&c);
	}
	{
		static const char *const tls[] = {
			"tls none\n", "tls opportunistic\n", "tls required\n",
			"tls verify\n"
		};
		int i, good_words = 1;

		for (i = 0; i < 4; i++) {
			conf_defaults(&c);
			good_words &= conf_parse(&c, tls[i], strlen(tls[i]), "f.conf",
			    err, sizeof(err)) == 0 && (int)c.tls == i;
			conf_free(&c);
		}
		ok(good_words, "tls: none, opportunistic, required, verify");
	}

	/* What one user may queue (submit.c). */
	conf_defaults(&c);
	is_int(c.max_message_size, 10240000, "default max_message_size 10240000");
	is_int(c.user_queue_messages, 1000, "default user_queue_messages 1000");
	ok(c.user_queue_size == 0 && c.user_queue_size_pct == 25,
	    "default user_queue_size 25%%");
	{
		const char *t = "max_message_size 2M\nuser_queue_messages 5\n"
		    "user_queue_size 64k\nqueue_min_free 1G\n";

		is_int(conf_parse(&c, t, strlen(t), "f.conf", err, sizeof(err)),
		    0, "sizes with suffixes parse");
		ok(c.max_message_size == 2 * 1024 * 1024 &&
		    c.user_queue_messages == 5 && c.user_queue_size == 65536 &&
		    c.user_queue_size_pct == 0 &&
		    c.queue_min_free == 1024LL * 1024 * 1024,
		    "2M, 5, 64k, 1G: octets (k, M, G are powers of 1024)");
	}
	conf_free(&c);
	conf_defaults(&c);
	{
		const char *t = "user_queue_size 10%\nmax_message_size 0\n"
		    "user_queue_messages 0\n";

		is_int(conf_parse(&c, t, strlen(t), "f.conf", err, sizeof(err)),
		    0, "a percentage and zeros parse");
		ok(c.user_queue_size == 0 && c.user_queue_size_pct == 10 &&
		    c.max_message_size == 0 && c.user_queue_messages == 0,
		    "10%%: a share of the file system; 0: no limit");
	}
	conf_free(&c);
	bad("max_message_size 10x\n", "f.conf:1: max_message_size: not a size "
	    "(octets, or a number with k, M or G)");
	bad("max_message_size -1\n", "f.conf:1: max_message_size: not a size "
	    "(octets, or a number with k, M or G)");
	bad("max_message_size 50%\n", "f.conf:1: max_message_size: not a size "
	    "(octets, or a number with k, M or G)");
	bad("max_message_size 99999999999999999999\n", "f.conf:1: "
	    "max_message_size: not a size (octets, or a number with k, M or G)");
	bad("max_message_size 9999999999999G\n", "f.conf:1: "
	    "max_message_size: not a size (octets, or a number with k, M or G)");
	bad("\nuser_queue_messages many\n", "f.conf:2: user_queue_messages: "
	    "not a number of messages (0 for no limit)");
	bad("user_queue_messages -5\n", "f.conf:1: user_queue_messages: "
	    "not a number of messages (0 for no limit)");
	bad("user_queue_size 101%\n", "f.conf:1: user_queue_size: not a size "
	    "(octets, a number with k, M or G, or a percentage of the file "
	    "system such as 25%)");
	bad("user_queue_size %\n", "f.conf:1: user_queue_size: not a size "
	    "(octets, a number with k, M or G, or a percentage of the file "
	    "system such as 25%)");
	bad("user_queue_size 1.5G\n", "f.conf:1: user_queue_size: not a size "
	    "(octets, a number with k, M or G, or a percentage of the file "
	    "system such as 25%)");
	bad("user_queue_size 25 %\n", "f.conf:1: user_queue_size: not a size "
	    "(octets, a number with k, M or G, or a percentage of the file "
	    "system such as 25%)");
	bad("queue_min_free G\n", "f.conf:1: queue_min_free: not a size "
	    "(octets, or a number with k, M or G)");
	bad("queue_min_free 5%\n", "f.conf:1: queue_min_free: not a size "
	    "(octets, or a number with k, M or G)");
	bad("queue_min_free 1k\nqueue_min_free 2k\n",
	    "f.conf:2: queue_min_free: given twice (first on line 1)");
	/* queue_min_free follows max_message_size unless given. */
	if (load(&c, "max_message_size 1000\n", err, sizeof(err)) == 0)
		is_int(c.queue_min_free, 2000,
		    "queue_min_free defaults to twice max_message_size");
	else
		ok(0, "max_message_size 1000: loads (%s)", err);
	conf_free(&c);

	/* A client certificate needs its key, and the other way round. */
	ok(load(&c, "tls_cert /etc/x.pem\n", err, sizeof(err)) < 0 &&
	    strstr(err, "tls_cert and tls_key go together") != NULL,
	    "tls_cert without tls_key: refused (%s)", err);
	conf_free(&c);
	/* Defaults that follow from other keys: a smarthost on 465 is
	 * implicit TLS, and with a smarthost tls defaults to verify. */
	if (load(&c, "smarthost relay.example:465\n", err, sizeof(err)) == 0)
		ok(c.smarthost_tls == 1 && c.tls == TLS_VERIFY,
		    "smarthost on 465: implicit TLS, tls verify");
	else
		ok(0, "smarthost on 465: loads (%s)", err);
	conf_free(&c);

	/* conf_load: a missing default file is fine, a missing -C is not. */
	is_int(conf_load(&c, "/nonexistent/mxsend.conf", 0, err, sizeof(err)),
	    0, "missing default file: defaults");
	ok(c.hostname[0] != '\0', "hostname defaults to the machine's name");
	is_str(c.qualify_domain, c.hostname, "qualify_domain defaults to it");
	is_int(c.queue_min_free, 20480000,
	    "queue_min_free defaults to twice the default max_message_size");
	conf_free(&c);
	ok(conf_load(&c, "/nonexistent/mxsend.conf", 1, err, sizeof(err)) < 0 &&
	    strcmp(err, "cannot open config file /nonexistent/mxsend.conf: "
	    "No such file or directory") == 0, "missing -C file: clear error");
	conf_free(&c);
	return tap_done();
}
