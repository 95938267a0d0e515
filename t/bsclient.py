#!/usr/bin/python3
"""t/bsclient.py - drive `sendmail -bs` (SMTP on stdin/stdout) for t/e2e-bs.t.

    bsclient.py [--step] [--hold] [--timeout SECS] [--reply-timeout SECS]
                [--elapsed FILE] -- COMMAND ARGS...   <SCRIPT

(--timeout: the whole session, default 15 s; --reply-timeout: one reply
in --step mode, default 5 s)

SCRIPT (stdin) is what the client sends, one chunk per line.  In a chunk,
backslash escapes are decoded (\\r \\n \\t \\0 \\xNN \\\\), then CRLF is
appended, unless the chunk ends in \\c (which is dropped: send it as is).
A line "@file PATH" is a chunk of PATH's bytes, sent as they are.  A line
"@sleep SECS" waits that long (reading meanwhile) before the next chunk.

Modes:
  (default)  pipelined: all chunks are written in one write (one write per
             stretch between @sleep lines), then stdin is closed; replies
             are read until EOF
  --step     lockstep: read the greeting, then for each chunk send it and
             read one whole reply (multi-line: up to the "NNN " line); then
             close stdin and read whatever else comes until EOF
  --hold     never close the command's stdin (it must end the session
             itself, e.g. on a timeout)
  --elapsed FILE
             write to FILE the milliseconds from the last byte sent to the
             end of the session: the command has exited and its output
             reached EOF (or only the exit, when something else holds the
             pipe)

Output (stdout), the transcript: the command's output, one line per reply
line, "\\r\\n" shown as the end of the line; a line ended by a bare LF gets
" [LF]", a last line without any line end " [no EOL]"; bytes outside
printable ASCII as \\xNN.  Then markers, each on a line of its own:
  [no reply]                     (--step) no complete reply in --reply-timeout
  [stdout open after exit]       the command exited but its stdout was still
                                 open 0.5 s later (a child holds it)
  [killed: running after N s]    the command was still running at --timeout
and last "exit N" (or "signal N").
"""

import os
import select
import signal
import sys
import time

HEX = b"0123456789abcdefABCDEF"


def decode_chunk(line):
    raw = line
    nocrlf = False
    if raw.endswith("\\c") and not raw.endswith("\\\\c"):
        raw = raw[:-2]
        nocrlf = True
    out = bytearray()
    i = 0
    b = raw.encode("utf-8", "surrogateescape")
    while i < len(b):
        c = b[i]
        if c == 0x5C and i + 1 < len(b):
            n = chr(b[i + 1])
            if n == "r":
                out += b"\r"
            elif n == "n":
                out += b"\n"
            elif n == "t":
                out += b"\t"
            elif n == "0":
                out += b"\0"
            elif n == "\\":
                out += b"\\"
            elif (n == "x" and len(b) >= i + 4 and b[i + 2] in HEX and
                  b[i + 3] in HEX):
                out.append(int(b[i + 2:i + 4], 16))
                i += 4
                continue
            else:
                out += b[i:i + 2]
            i += 2
            continue
        out.append(c)
        i += 1
    if not nocrlf:
        out += b"\r\n"
    return bytes(out)


def read_script(f):
    chunks = []
    for line in f.read().decode("utf-8", "surrogateescape").split("\n"):
        if line == "":
            continue
        if line.startswith("@sleep "):
            chunks.append(float(line[7:]))
        elif line.startswith("@file "):
            with open(line[6:], "rb") as g:
                chunks.append(g.read())
        else:
            chunks.append(decode_chunk(line))
    return chunks


def show(data):
    """The transcript text of the command's output bytes."""
    out = []
    lines = data.split(b"\n")
    for k, ln in enumerate(lines):
        last = k == len(lines) - 1
        if last and ln == b"":
            break
        suffix = ""
        if last:
            suffix = " [no EOL]"
        elif ln.endswith(b"\r"):
            ln = ln[:-1]
        else:
            suffix = " [LF]"
        s = "".join(chr(c) if 0x20 <= c < 0x7F else "\\x%02X" % c for c in ln)
        out.append(s + suffix)
    return out


class Session:
    def __init__(self, argv, timeout):
        # fork and exec by hand: the subprocess module costs a lot of the
        # start-up time of a script that runs a hundred times a test
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                signal.signal(signal.SIGPIPE, signal.SIG_DFL)
                os.dup2(in_r, 0)
                os.dup2(out_w, 1)
                os.closerange(3, 1024)
                os.execvp(argv[0], argv)
            finally:
                os._exit(127)
        os.close(in_r)
        os.close(out_w)
        self.pid = pid
        self.status = None
        self.fin = in_w
        self.fout = out_r
        os.set_blocking(self.fin, False)
        self.deadline = time.monotonic() + timeout
        self.timeout = timeout
        self.buf = b""          # everything read so far
        self.pos = 0            # how much of buf is consumed by --step
        self.eof = False
        self.wclosed = False
        self.markers = []
        self.inline = []
        self.last_write = time.monotonic()
        self.eof_at = None

    def close_stdin(self):
        if not self.wclosed:
            self.wclosed = True
            try:
                os.close(self.fin)
            except OSError:
                pass

    def poll(self):
        if self.status is None:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = st
                self.exit_at = time.monotonic()
        return self.status

    def pump(self, out=b"", until=None, limit=None):
        """Write out (all of it, unless the command stops reading) while
        reading; return when out is written and until() is true, at EOF,
        or at the time limit.  Returns False on the time limit."""
        end = self.deadline if limit is None else min(self.deadline, limit)
        while True:
            if not out and until is not None and until():
                return True
            if self.eof and (not out or self.wclosed):
                return True
            now = time.monotonic()
            if now >= end:
                return False
            r = [] if self.eof else [self.fout]
            w = [self.fin] if out and not self.wclosed else []
            if not r and not w:
                return True
            rr, ww, _ = select.select(r, w, [], min(end - now, 0.05))
            if ww:
                try:
                    n = os.write(self.fin, out)
                    out = out[n:]
                    self.last_write = time.monotonic()
                except BrokenPipeError:
                    out = b""
                    self.close_stdin()
                except BlockingIOError:
                    pass
            if rr:
                d = os.read(self.fout, 65536)
                if d:
                    self.buf += d
                else:
                    self.eof = True
                    self.eof_at = time.monotonic()

    def reply_complete(self):
        """A whole reply is buffered after pos: return its end, or None."""
        p = self.pos
        while True:
            nl = self.buf.find(b"\n", p)
            if nl < 0:
                return None
            line = self.buf[p:nl]
            if len(line) < 4 or line[3:4] != b"-":
                return nl + 1
            p = nl + 1

    def read_reply(self, reply_timeout):
        lim = time.monotonic() + reply_timeout
        self.pump(until=lambda: self.reply_complete() is not None, limit=lim)
        e = self.reply_complete()
        if e is None:
            self.markers_at_pos("[no reply]")
            return False
        self.pos = e
        return True

    def markers_at_pos(self, m):
        # a marker goes into the transcript where it happened
        self.inline.append((self.pos, m))

    def finish(self):
        """Read until EOF or the exit; the exit status marker."""
        self.pump(until=lambda: self.poll() is not None)
        while self.poll() is None and time.monotonic() < self.deadline:
            time.sleep(0.02)
        if self.poll() is None:
            self.markers.append("[killed: running after %g s]" % self.timeout)
            os.kill(self.pid, signal.SIGKILL)
            self.status = os.waitpid(self.pid, 0)[1]
            self.exit_at = time.monotonic()
            self.pump(limit=time.monotonic() + 0.5)
        else:
            # whatever is still in the pipe; then EOF must come, unless a
            # child that outlives the command holds its stdout
            self.pump(limit=time.monotonic() + 0.5)
            if not self.eof:
                self.markers.append("[stdout open after exit]")
        st = self.status
        if os.WIFSIGNALED(st):
            return "signal %d" % os.WTERMSIG(st)
        return "exit %d" % os.WEXITSTATUS(st)


def main():
    # (no argparse: start-up time)
    step = hold = False
    elapsed = None
    timeout, reply_timeout = 15.0, 5.0
    args = sys.argv[1:]
    while args and args[0] != "--":
        o = args.pop(0)
        if o == "--step":
            step = True
        elif o == "--hold":
            hold = True
        elif o == "--timeout" and args:
            timeout = float(args.pop(0))
        elif o == "--elapsed" and args:
            elapsed = args.pop(0)
        elif o == "--reply-timeout" and args:
            reply_timeout = float(args.pop(0))
        else:
            sys.exit("bsclient.py: bad option %s (see the top of the file)" % o)
    cmd = args[1:]
    if not cmd:
        sys.exit("bsclient.py: no command")
    chunks = read_script(sys.stdin.buffer)

    s = Session(cmd, timeout)
    if step:
        if s.read_reply(reply_timeout):
            for c in chunks:
                if isinstance(c, float):
                    s.pump(until=lambda: False, limit=time.monotonic() + c)
                    continue
                s.pump(out=c, until=lambda: True)
                if not s.read_reply(reply_timeout):
                    break
    else:
        out = b""
        for c in chunks + [0.0]:
            if isinstance(c, float):
                s.pump(out=out, until=lambda: True)
                out = b""
                if c:
                    s.pump(until=lambda: False, limit=time.monotonic() + c)
            else:
                out += c
    if not hold:
        s.close_stdin()
    ex = s.finish()
    if elapsed:
        end = max(s.exit_at, s.eof_at or 0.0)
        with open(elapsed, "w") as f:
            f.write("%d\n" % round((end - s.last_write) * 1000))

    # the output, with the inline markers where they happened
    out = []
    prev = 0
    for pos, m in s.inline:
        out += show(s.buf[prev:pos])
        out.append(m)
        prev = pos
    out += show(s.buf[prev:])
    out += s.markers
    out.append(ex)
    sys.stdout.write("".join(l + "\n" for l in out))


if __name__ == "__main__":
    main()
