#!/usr/bin/python3
"""t/smtpd.py - a scripted SMTP receiver for mxsend's end-to-end tests.

Run with Debian's /usr/bin/python3 (aiosmtpd comes from python3-aiosmtpd).

    smtpd.py --listen ADDR:PORT --dir DIR [fault options]

Recording, all under DIR: t/sinklib.py's layout (msgs/NNNN: the
envelope, a blank line, the message bytes; dropped/NNNN, conns, trace,
ready, maxconc), nothing added to the envelope lines.

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

import asyncio
import sys

from aiosmtpd.smtp import SMTP

import sinklib


class Handler(sinklib.Handler):
    """The faults asked for on top of sinklib's plain answers."""

    def __init__(self, rec, opts):
        super().__init__(rec, opts)
        self.rcpt = {}
        for spec in opts.rcpt:
            addr, eq, reply = spec.partition("=")
            if not eq:
                sys.exit("smtpd.py: --rcpt wants ADDR=REPLY, got %r" % spec)
            self.rcpt[addr.lower()] = reply

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        if server.faulty and self.opts.no_ehlo:
            return ["500 5.5.1 EHLO not recognized"]
        if server.faulty and self.opts.drop == "ehlo":
            server.drop("ehlo")
            return []
        session.host_name = hostname
        if self.opts.pipelining:
            responses.insert(1, "250-PIPELINING")
        if self.opts.no_8bitmime:
            responses = [r for r in responses if "8BITMIME" not in r]
        return responses

    async def handle_HELO(self, server, session, envelope, hostname):
        if server.faulty and self.opts.drop == "ehlo":
            server.drop("helo")
            return ""
        session.host_name = hostname
        return "250 %s" % server.hostname

    async def handle_MAIL(self, server, session, envelope, address, options):
        if server.faulty and self.opts.drop == "mail":
            server.drop("mail")
            return ""
        if server.faulty and self.opts.mail:
            return self.opts.mail
        return await super().handle_MAIL(server, session, envelope, address,
                                         options)

    async def handle_RCPT(self, server, session, envelope, address, options):
        if server.faulty and self.opts.drop == "rcpt":
            server.drop("rcpt")
            return ""
        raw = server.raw_path
        if server.faulty:
            reply = self.rcpt.get(raw.lower(), self.rcpt.get("*"))
            if reply is not None:
                if reply.startswith("2"):
                    envelope.rcpt_tos.append(raw)
                return reply
        return await super().handle_RCPT(server, session, envelope, address,
                                         options)

    async def handle_DATA(self, server, session, envelope):
        self.received(server, envelope)
        reply = self.opts.data if server.faulty else None
        if server.faulty and self.opts.drop == "dot":
            name = self.record(server, envelope, "dropped")
            server.drop("dot (recorded dropped/%s)" % name)
            return ""
        if reply and not reply.startswith("2"):
            return reply
        name = self.record(server, envelope)
        if self.opts.delay_dot > 0:
            await asyncio.sleep(self.opts.delay_dot)
        return reply or "250 2.0.0 OK saved " + name


class ScriptedSMTP(sinklib.TracingSMTP):
    async def push(self, status):
        s = status if isinstance(status, str) else status.decode("utf-8", "replace")
        if self.dropped or s == "":     # "": a hook that dropped
            return
        if self.faulty and self.opts.delay_each > 0 and s[3:4] != "-":
            await asyncio.sleep(self.opts.delay_each)
        await super().push(status)

    async def _handle_client(self):
        if self.faulty and self.opts.greeting:
            await self.push(self.opts.greeting)
            if not self.opts.greeting.startswith("2"):
                await asyncio.sleep(0.05)
                self.transport.close()
                return
        if self.faulty and self.opts.drop == "greeting":
            # sent, not traced: the trace shows the drop
            await SMTP.push(self, "220 %s ESMTP scripted" % self.hostname)
            self.drop("greeting")
            return
        await super()._handle_client()

    async def smtp_DATA(self, arg):
        self.trace_cmd("DATA", arg)
        if not (self.faulty and await self.data_fault()):
            await SMTP.smtp_DATA(self, arg)

    async def data_fault(self):
        """--drop data, --data-cmd, --drop in-data: True when one acted."""
        if self.opts.drop == "data":
            self.drop("data")
            return True
        if self.opts.data_cmd and self.envelope.rcpt_tos:
            await self.push(self.opts.data_cmd)
            return True
        if self.opts.drop == "in-data" and self.envelope.rcpt_tos:
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            try:
                line = await self._reader.readuntil(b"\n")
                self.event("first data line %r" % line)
            except Exception as e:  # connection gone already
                self.event("read error %r" % e)
            self.drop("in-data")
            return True
        return False


def main():
    ap = sinklib.arguments("scripted SMTP receiver", "smtpd.test")
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
    ap.add_argument("--delay-dot", type=float, default=0)
    ap.add_argument("--delay-each", type=float, default=0)
    opts = ap.parse_args()

    rec = sinklib.Recorder(opts.dir)
    handler = Handler(rec, opts)

    def session(loop):
        return ScriptedSMTP(handler, rec, opts, hostname=opts.hostname,
                            timeout=opts.timeout, loop=loop)
    return sinklib.serve(opts, rec, session)


if __name__ == "__main__":
    sys.exit(main())
