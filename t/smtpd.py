#!/usr/bin/python3
"""t/smtpd.py - a scripted SMTP receiver for mxsend's end-to-end tests.

Run with Debian's /usr/bin/python3 (aiosmtpd comes from python3-aiosmtpd).

    smtpd.py --listen ADDR:PORT --dir DIR [fault options]

Recording, all under DIR:
  DIR/msgs/NNNN    one file per accepted transaction (written to a temp
                   name, then renamed): "MAIL FROM:<...>" then one
                   "RCPT TO:<...>" line per accepted recipient (the paths
                   exactly as the client wrote them, parameters left out),
                   a blank line, then the message bytes exactly as received
                   after dot-unstuffing (line ends as sent, normally CRLF).
  DIR/conns        one line per connection, written when it is accepted:
                   "N PEER-IP:PEER-PORT"
  DIR/trace        the dialogue: "N > command line" / "N < reply", plus
                   "N * event" lines (drops, data received, refusals)
  DIR/ready        created once the socket listens (also "ready" on stdout)
  DIR/maxconc      the most connections open at once so far (rewritten
                   whenever that number grows)

Faults (each applies to the first --faults-for N connections, default all):
  --greeting 'TEXT'     greeting reply instead of 220 (e.g. '554 5.3.2 no')
  --pipelining          announce PIPELINING (RFC 2920) in the EHLO reply
  --no-8bitmime         leave 8BITMIME (RFC 6152) out of the EHLO reply
  --no-ehlo             answer EHLO with 500 (the client must fall back to HELO)
  --mail 'REPLY'        reply to every MAIL
  --rcpt 'ADDR=REPLY'   reply to RCPT TO:<ADDR> (repeatable, ADDR is matched
                        case-insensitively; '*' matches every address)
  --data 'REPLY'        reply after the final dot (no message is recorded
                        unless the reply is 2xx)
  --data-cmd 'REPLY'    reply to the DATA command itself instead of 354
  --drop STAGE          close the connection without replying, at STAGE:
                        greeting (right after sending the greeting),
                        ehlo, mail, rcpt (first RCPT), data (the DATA command),
                        in-data (after 354 and the first line of data),
                        dot (after the final dot, before any reply; the
                        message is then recorded as DIR/dropped/NNNN)
Other options:
  --delay-dot SECS      after the final dot, save the message, then wait SECS
                        before replying (every connection): widens the
                        client's post-DATA window
  --delay-each SECS     wait SECS before every reply, the greeting too (a
                        tarpit: each reply just inside the client's timeout)
Exits on SIGTERM or SIGINT.
"""

import argparse
import asyncio
import os
import signal
import sys

from aiosmtpd.smtp import SMTP, MISSING


class Recorder:
    def __init__(self, top):
        self.top = top
        self.msgs = os.path.join(top, "msgs")
        self.dropped = os.path.join(top, "dropped")
        os.makedirs(self.msgs, exist_ok=True)
        os.makedirs(self.dropped, exist_ok=True)
        self.nconn = 0
        self.active = 0
        self.maxconc = 0
        self.nmsg = 0
        self.trace_f = open(os.path.join(top, "trace"), "a", buffering=1,
                            encoding="utf-8", errors="backslashreplace")
        self.conns_f = open(os.path.join(top, "conns"), "a", buffering=1)

    def trace(self, n, line):
        self.trace_f.write("%d %s\n" % (n, line))

    def opened(self):
        self.active += 1
        if self.active > self.maxconc:
            self.maxconc = self.active
            tmp = os.path.join(self.top, ".maxconc.tmp")
            with open(tmp, "w") as f:
                f.write("%d\n" % self.maxconc)
            os.rename(tmp, os.path.join(self.top, "maxconc"))

    def closed(self):
        self.active -= 1

    def conn(self, peer):
        self.nconn += 1
        self.conns_f.write("%d %s:%s\n" % (self.nconn, peer[0], peer[1]))
        return self.nconn

    def save(self, sub, mail_from, rcpts, data):
        self.nmsg += 1
        name = "%04d" % self.nmsg
        d = os.path.join(self.top, sub)
        tmp = os.path.join(d, "." + name + ".tmp")
        head = "MAIL FROM:<%s>\n" % mail_from
        head += "".join("RCPT TO:<%s>\n" % r for r in rcpts)
        head += "\n"
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
        return None
    rest = arg[len(keyword):].strip() if arg[:len(keyword)].upper() == keyword else arg
    if rest.startswith("<"):
        end = rest.find(">")
        if end >= 0:
            return rest[1:end]
    return rest.split(" ")[0]


class Faults:
    def __init__(self, opts):
        self.opts = opts
        self.rcpt = {}
        for spec in opts.rcpt:
            addr, eq, reply = spec.partition("=")
            if not eq:
                sys.exit("smtpd.py: --rcpt wants ADDR=REPLY, got %r" % spec)
            self.rcpt[addr.lower()] = reply


class Handler:
    """aiosmtpd hooks; the per-connection state lives on the SMTP object."""

    def __init__(self, rec, faults):
        self.rec = rec
        self.faults = faults

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        if server.faulty and server.opts.no_ehlo:
            return ["500 5.5.1 EHLO not recognized"]
        if server.faulty and server.opts.drop == "ehlo":
            server.drop("ehlo")
            return []
        session.host_name = hostname
        if server.opts.pipelining:
            responses.insert(1, "250-PIPELINING")
        if server.opts.no_8bitmime:
            responses = [r for r in responses if "8BITMIME" not in r]
        return responses

    async def handle_HELO(self, server, session, envelope, hostname):
        if server.faulty and server.opts.drop == "ehlo":
            server.drop("helo")
            return ""
        session.host_name = hostname
        return "250 %s" % server.hostname

    async def handle_MAIL(self, server, session, envelope, address, options):
        if server.faulty and server.opts.drop == "mail":
            server.drop("mail")
            return ""
        if server.faulty and server.opts.mail:
            return server.opts.mail
        envelope.mail_from = address or "<>"   # aiosmtpd wants it truthy
        envelope.raw_from = server.raw_path
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, options):
        if server.faulty and server.opts.drop == "rcpt":
            server.drop("rcpt")
            return ""
        raw = server.raw_path
        if server.faulty:
            reply = self.faults.rcpt.get(raw.lower(), self.faults.rcpt.get("*"))
            if reply is not None:
                if reply.startswith("2"):
                    envelope.rcpt_tos.append(raw)
                return reply
        envelope.rcpt_tos.append(raw)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content
        server.event("data %d octets" % len(data))
        if server.faulty and server.opts.drop == "dot":
            name = self.rec.save("dropped", envelope.raw_from,
                                 envelope.rcpt_tos, data)
            server.drop("dot (recorded dropped/%s)" % name)
            return ""
        if server.faulty and server.opts.data:
            if not server.opts.data.startswith("2"):
                return server.opts.data
        name = self.rec.save("msgs", envelope.raw_from, envelope.rcpt_tos,
                             data)
        server.event("saved msgs/%s" % name)
        if server.opts.delay_dot > 0:
            await asyncio.sleep(server.opts.delay_dot)
        return server.opts.data if server.faulty and server.opts.data \
            else "250 2.0.0 OK saved " + name


class ScriptedSMTP(SMTP):
    def __init__(self, handler, rec, opts, **kw):
        super().__init__(handler, **kw)
        self.rec = rec
        self.opts = opts
        self.n = 0
        self.faulty = False
        self.raw_path = ""
        self.dropped = False

    def event(self, text):
        self.rec.trace(self.n, "* " + text)

    def drop(self, stage):
        self.event("drop at " + stage)
        self.dropped = True
        if self.transport is not None:
            self.transport.close()

    def connection_made(self, transport):
        if self.transport is None:
            peer = transport.get_extra_info("peername")
            self.n = self.rec.conn(peer)
            self.faulty = (self.opts.faults_for < 0
                           or self.n <= self.opts.faults_for)
            self.rec.opened()
        super().connection_made(transport)

    def connection_lost(self, error):
        self.event("closed")
        self.rec.closed()
        super().connection_lost(error)

    async def push(self, status):
        if self.dropped:
            return
        s = status if isinstance(status, str) else status.decode("utf-8", "replace")
        if s == "":
            return
        if self.faulty and self.opts.delay_each > 0 and s[3:4] != "-":
            await asyncio.sleep(self.opts.delay_each)
        self.rec.trace(self.n, "< " + s)
        await super().push(status)

    async def _handle_client(self):
        if self.faulty and self.opts.greeting:
            await self.push(self.opts.greeting)
            if not self.opts.greeting.startswith("2"):
                await asyncio.sleep(0.05)
                self.transport.close()
                return
        if self.faulty and self.opts.drop == "greeting":
            await super().push("220 %s ESMTP scripted" % self.hostname)
            self.drop("greeting")
            return
        await super()._handle_client()

    def _trace_cmd(self, name, arg):
        self.rec.trace(self.n, "> %s%s" % (name, "" if arg is None else " " + arg))

    async def smtp_EHLO(self, arg):
        self._trace_cmd("EHLO", arg)
        await super().smtp_EHLO(arg)

    async def smtp_HELO(self, arg):
        self._trace_cmd("HELO", arg)
        await super().smtp_HELO(arg)

    async def smtp_MAIL(self, arg):
        self._trace_cmd("MAIL", arg)
        self.raw_path = path_of(arg, "FROM:") or ""
        await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg):
        self._trace_cmd("RCPT", arg)
        self.raw_path = path_of(arg, "TO:") or ""
        await super().smtp_RCPT(arg)

    async def smtp_RSET(self, arg):
        self._trace_cmd("RSET", arg)
        await super().smtp_RSET(arg)

    async def smtp_NOOP(self, arg):
        self._trace_cmd("NOOP", arg)
        await super().smtp_NOOP(arg)

    async def smtp_QUIT(self, arg):
        self._trace_cmd("QUIT", arg)
        await super().smtp_QUIT(arg)

    async def smtp_DATA(self, arg):
        self._trace_cmd("DATA", arg)
        if self.faulty and self.opts.drop == "data":
            self.drop("data")
            return
        if self.faulty and self.opts.data_cmd and self.envelope.rcpt_tos:
            await self.push(self.opts.data_cmd)
            return
        if self.faulty and self.opts.drop == "in-data" and self.envelope.rcpt_tos:
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            try:
                line = await self._reader.readuntil(b"\n")
                self.event("first data line %r" % line)
            except Exception as e:  # connection gone already
                self.event("read error %r" % e)
            self.drop("in-data")
            return
        await super().smtp_DATA(arg)


def main():
    ap = argparse.ArgumentParser(description="scripted SMTP receiver")
    ap.add_argument("--listen", required=True, help="ADDR:PORT")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--hostname", default="smtpd.test")
    ap.add_argument("--greeting")
    ap.add_argument("--no-ehlo", action="store_true")
    ap.add_argument("--pipelining", action="store_true")
    ap.add_argument("--no-8bitmime", action="store_true")
    ap.add_argument("--mail")
    ap.add_argument("--rcpt", action="append", default=[])
    ap.add_argument("--data")
    ap.add_argument("--data-cmd")
    ap.add_argument("--drop", choices=["greeting", "ehlo", "mail", "rcpt",
                                       "data", "in-data", "dot"])
    ap.add_argument("--faults-for", type=int, default=-1)
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--delay-dot", type=float, default=0)
    ap.add_argument("--delay-each", type=float, default=0)
    opts = ap.parse_args()

    host, _, port = opts.listen.rpartition(":")
    os.makedirs(opts.dir, exist_ok=True)
    rec = Recorder(opts.dir)
    handler = Handler(rec, Faults(opts))

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def factory():
        return ScriptedSMTP(handler, rec, opts, hostname=opts.hostname,
                            timeout=opts.timeout, loop=loop)

    server = loop.run_until_complete(
        loop.create_server(factory, host=host, port=int(port),
                           reuse_address=True))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, loop.stop)
    ready = os.path.join(opts.dir, "ready")
    with open(ready + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(ready + ".tmp", ready)
    print("ready", opts.listen, flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
