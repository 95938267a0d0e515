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
	bad("queue_run_time 0\n",
	    "f.conf:1: queue_run_time: not a duration above zero");
	bad("queue_run_time 5 minutes\n",
	    "f.conf:1: queue_run_time: not a duration above zero");
	bad("hostname a.example\nhostname b.example\n",
	    "f.conf:2: hostname: given twice (first on line 1)");
	bad("hostname a\001b\n", "f.conf:1: control character");
	bad("smarthost_tls sometimes\n",
	    "f.conf:1: smarthost_tls: expected implicit or starttls");
	bad("dns_server 127.0.0.1 5353\n",
	    "f.conf:1: dns_server: expected ip[:port][,ip[:port]...]");

	/* A client certificate needs its key, and the other way round. */
	{
		char path[] = "/tmp/conftest.XXXXXX";
		int fd = mkstemp(path);

		if (fd >= 0 && write(fd, "tls_cert /etc/x.pem\n", 20) == 20) {
			ok(conf_load(&c, path, 1, err, sizeof(err)) < 0 &&
			    strstr(err, "tls_cert and tls_key go together") != NULL,
			    "tls_cert without tls_key: refused (%s)", err);
			conf_free(&c);
		}
		if (fd >= 0)
			close(fd);
		unlink(path);
	}
	/* Defaults that follow from other keys: a smarthost on 465 is
	 * implicit TLS, and with a smarthost tls defaults to verify. */
	{
		char path[] = "/tmp/conftest.XXXXXX";
		int fd = mkstemp(path);
		const char *t = "smarthost relay.example:465\n";

		if (fd >= 0 && write(fd, t, strlen(t)) == (ssize_t)strlen(t) &&
		    conf_load(&c, path, 1, err, sizeof(err)) == 0) {
			ok(c.smarthost_tls == 1 && c.tls == TLS_VERIFY,
			    "smarthost on 465: implicit TLS, tls verify");
			conf_free(&c);
		} else
			ok(0, "smarthost on 465: loads (%s)", err);
		if (fd >= 0)
			close(fd);
		unlink(path);
	}

	/* conf_load: a missing default file is fine, a missing -C is not. */
	is_int(conf_load(&c, "/nonexistent/mxsend.conf", 0, err, sizeof(err)),
	    0, "missing default file: defaults");
	ok(c.hostname[0] != '\0', "hostname defaults to the machine's name");
	is_str(c.qualify_domain, c.hostname, "qualify_domain defaults to it");
	conf_free(&c);
	ok(conf_load(&c, "/nonexistent/mxsend.conf", 1, err, sizeof(err)) < 0 &&
	    strcmp(err, "cannot open config file /nonexistent/mxsend.conf: "
	    "No such file or directory") == 0, "missing -C file: clear error");
	conf_free(&c);
	return tap_done();
}
