"""t/sinklib.py - what t/smtpd.py and t/tlsd.py share: the recorder, the
tracing SMTP session, the handler hooks every receiver answers the same
way, the common options and the main loop (aiosmtpd, Debian's
/usr/bin/python3).

Recording, all under DIR (t/lib.sh's rx_* helpers read it):
  DIR/msgs/NNNN    one file per accepted transaction (written to a temp
                   name, then renamed): "MAIL FROM:<...>" then one
                   "RCPT TO:<...>" line per accepted recipient (the paths
                   exactly as the client wrote them, parameters left out),
                   the receiver's own lines if it has any, a blank line,
                   then the message bytes exactly as received after
                   dot-unstuffing (line ends as sent, normally CRLF)
  DIR/dropped/NNNN the same for a message the receiver took but did not
                   acknowledge (t/smtpd.py --drop dot); NNNN counts on
                   from msgs/
  DIR/conns        one line per connection, written when it is accepted:
                   "N PEER-IP:PEER-PORT"
  DIR/trace        the dialogue: "N > command line" / "N < reply", plus
                   "N * event" lines (drops, data received, ...)
  DIR/ready        created once the socket listens (also "ready ADDR:PORT"
                   on stdout); it holds the server's pid
  DIR/maxconc      the most connections open at once so far (rewritten
                   whenever that number grows)
A server restarted on the same DIR goes on numbering connections and
transactions.
"""

import argparse
import asyncio
import os
import signal

from aiosmtpd.smtp import SMTP


class Recorder:
    SUBDIRS = ("msgs", "dropped")

    def __init__(self, top):
        self.top = top
        for sub in self.SUBDIRS:
            os.makedirs(os.path.join(top, sub), exist_ok=True)
        # a restarted server (same DIR) goes on counting
        self.nmsg = sum(1 for sub in self.SUBDIRS
                        for f in os.listdir(os.path.join(top, sub))
                        if not f.startswith("."))
        try:
            with open(os.path.join(top, "conns")) as f:
                self.nconn = sum(1 for _ in f)
        except OSError:
            self.nconn = 0
        self.active = 0
        self.maxconc = 0
        self.trace_f = open(os.path.join(top, "trace"), "a", buffering=1,
                            encoding="utf-8", errors="backslashreplace")
        self.conns_f = open(os.path.join(top, "conns"), "a", buffering=1)

    def trace(self, n, line):
        self.trace_f.write("%d %s\n" % (n, line))

    def conn(self, peer):
        """A new connection from peer: its number, counted from 1."""
        self.nconn += 1
        self.conns_f.write("%d %s:%s\n" % (self.nconn, peer[0], peer[1]))
        self.active += 1
        if self.active > self.maxconc:
            self.maxconc = self.active
            self._replace("maxconc", "%d\n" % self.maxconc)
        return self.nconn

    def closed(self):
        self.active -= 1

    def _replace(self, name, text):
        tmp = os.path.join(self.top, "." + name + ".tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, os.path.join(self.top, name))

    def save(self, sub, head_lines, data):
        """DIR/SUB/NNNN: head_lines, a blank line, data; returns NNNN."""
        self.nmsg += 1
        name = "%04d" % self.nmsg
        d = os.path.join(self.top, sub)
        tmp = os.path.join(d, "." + name + ".tmp")
        head = "".join(line + "\n" for line in head_lines) + "\n"
        with open(tmp, "wb") as f:
            f.write(head.encode("utf-8", "surrogateescape"))
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, os.path.join(d, name))
        return name


def path_of(arg, keyword):
    """The <...> path of a MAIL/RCPT argument exactly as written."""
    if arg is None:
        return ""
    rest = arg[len(keyword):].strip() \
        if arg[:len(keyword)].upper() == keyword else arg
    if rest.startswith("<"):
        end = rest.find(">")
        if end >= 0:
            return rest[1:end]
    return rest.split(" ")[0]


class Handler:
    """The aiosmtpd hooks; the per-connection state lives on the session
    (TracingSMTP).  A receiver refines them and adds its own lines to a
    recorded transaction through head()."""

    def __init__(self, rec, opts):
        self.rec = rec
        self.opts = opts

    async def handle_MAIL(self, server, session, envelope, address, options):
        envelope.mail_from = address or "<>"   # aiosmtpd wants it truthy
        envelope.raw_from = server.raw_path
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, options):
        envelope.rcpt_tos.append(server.raw_path)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received(server, envelope)
        return "250 2.0.0 OK saved " + self.record(server, envelope)

    def head(self, server, envelope):
        """The lines before the message in its DIR/msgs file."""
        return (["MAIL FROM:<%s>" % envelope.raw_from]
                + ["RCPT TO:<%s>" % r for r in envelope.rcpt_tos])

    def received(self, server, envelope):
        server.event("data %d octets" % len(envelope.original_content))

    def record(self, server, envelope, sub="msgs"):
        """The transaction into DIR/SUB; its name."""
        name = self.rec.save(sub, self.head(server, envelope),
                             envelope.original_content)
        if sub == "msgs":
            server.event("saved msgs/%s" % name)
        return name


class TracingSMTP(SMTP):
    """An aiosmtpd session that writes its dialogue to the trace, keeps the
    MAIL and RCPT paths as the client wrote them (raw_path) and can drop
    the connection without a reply."""

    def __init__(self, handler, rec, opts, **kw):
        super().__init__(handler, **kw)
        self.rec = rec
        self.opts = opts
        self.n = 0
        self.raw_path = ""
        self.dropped = False

    @property
    def faulty(self):
        """The faults asked for apply to this connection (--faults-for)."""
        return self.opts.faults_for < 0 or self.n <= self.opts.faults_for

    def event(self, text):
        self.rec.trace(self.n, "* " + text)

    def trace_cmd(self, name, arg):
        self.rec.trace(self.n, "> %s%s" % (name, "" if arg is None else " " + arg))

    def drop(self, stage):
        self.event("drop at " + stage)
        self.dropped = True
        if self.transport is not None:
            self.transport.close()

    def connection_made(self, transport):
        if self.transport is None:      # not the one STARTTLS makes
            self.n = self.rec.conn(transport.get_extra_info("peername"))
        super().connection_made(transport)

    def connection_lost(self, error):
        self.event("closed")
        self.rec.closed()
        super().connection_lost(error)

    async def push(self, status):
        if self.dropped:
            return
        s = status if isinstance(status, str) else status.decode("utf-8", "replace")
        self.rec.trace(self.n, "< " + s)
        await super().push(status)

    async def smtp_MAIL(self, arg):
        self.trace_cmd("MAIL", arg)
        self.raw_path = path_of(arg, "FROM:")
        await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg):
        self.trace_cmd("RCPT", arg)
        self.raw_path = path_of(arg, "TO:")
        await super().smtp_RCPT(arg)


def _traced(name):
    """smtp_NAME that writes "N > NAME ARG" to the trace, then runs
    aiosmtpd's own."""
    plain = getattr(SMTP, "smtp_" + name)

    async def method(self, arg):
        self.trace_cmd(name, arg)
        await plain(self, arg)
    method.__name__ = "smtp_" + name
    return method


for _name in ("EHLO", "HELO", "DATA", "RSET", "NOOP", "QUIT"):
    setattr(TracingSMTP, "smtp_" + _name, _traced(_name))


def arguments(description, hostname):
    """The options every receiver takes; the caller adds its own."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--listen", required=True, help="ADDR:PORT")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--hostname", default=hostname)
    ap.add_argument("--faults-for", type=int, default=-1)
    ap.add_argument("--timeout", type=float, default=30)
    return ap


def serve(opts, rec, session, ssl=None, quiet=False):
    """Listen on opts.listen, one session(loop) per connection (TLS from
    the start with ssl), until SIGTERM or SIGINT.  quiet: errors the loop
    would print (failed handshakes, say) go to the trace as connection 0's
    "loop:" events."""
    host, _, port = opts.listen.rpartition(":")
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    if quiet:
        def to_trace(loop_, context):
            rec.trace(0, "* loop: %s %r" % (context.get("message", ""),
                                            context.get("exception")))
        loop.set_exception_handler(to_trace)
    server = loop.run_until_complete(
        loop.create_server(lambda: session(loop), host=host, port=int(port),
                           reuse_address=True, ssl=ssl))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, loop.stop)
    rec._replace("ready", "%d\n" % os.getpid())
    print("ready", opts.listen, flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()
    return 0
