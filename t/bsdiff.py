#!/usr/bin/python3
"""
bsdiff.py - differential tester for the DATA phase of `sendmail -bs`.

Generates random SMTP sessions, computes the expected replies and queued
messages with a reference model of the intended semantics (the data ends
only at CRLF . CRLF; bare CR and LF end lines; dot-unstuffing; refusals
read on to the end), runs sendmail -C CONF -bs -odq on them and compares
replies and stored bytes.  t/e2e-bsdiff.t runs a fixed seed in make
check; longer runs: -n 10000, --adv-only (smuggling attempts), --targeted
(every lax end-of-data sequence at every split and buffer offset).

usage: bsdiff.py [-n SESSIONS] [-s SEED] [-j JOBS] [--adv-only|--targeted]
                 [-v]
environment: DIFFT_SENDMAIL (the binary, default ./sendmail next to t/),
             DIFFT_DIR (scratch directory, default a new one in /tmp)
"""
import os, re, sys, random, subprocess, threading, time, argparse, shutil
import concurrent.futures

HERE = os.path.dirname(os.path.abspath(__file__))
SENDMAIL = os.environ.get("DIFFT_SENDMAIL",
                          os.path.join(HERE, "..", "sendmail"))
import tempfile
SCRATCH = os.environ.get("DIFFT_DIR") or tempfile.mkdtemp(prefix="bsdiff.")
HOST = "test.example"
RBUF = 65536


class Unmodeled(Exception):
    pass


# ---------------------------------------------------------------- model

def is_ftext(c):
    return 33 <= c <= 126 and c != 58


def header_like(t, nfields):
    """Whether line t belongs to the header: a continuation when there is
    a field to continue, else a name of ftext octets and a colon."""
    if t[:1] in (b" ", b"\t"):
        return nfields > 0
    i = 0
    while i < len(t) and is_ftext(t[i]):
        i += 1
    return not (i == 0 or i == len(t) or t[i] != 58)


def fold_pieces(line):
    """submit.c add_folded: the pieces of a header line over 998 octets,
    cut before a space or tab (the last within 78 octets, else the first
    after, at most 998); None where no cut is possible and the rest is
    still over 998."""
    lo = line.find(b":")
    if lo < 0:
        lo = len(line)
    end = len(line)
    while end > 0 and line[end - 1] in (32, 9):
        end -= 1
    start = 0
    while len(line) - start > 78:
        cut = 0
        k = lo + 1
        while k < end and k - start <= 998:
            if line[k] in (32, 9):
                if cut == 0 or k - start <= 78:
                    cut = k
                if k - start > 78:
                    break
            k += 1
        if cut == 0 and len(line) - start > 998:
            yield None
            return
        if cut == 0:
            break
        yield line[start:cut]
        start = lo = cut
    yield line[start:]


def data_lines(S, p):
    """CR/LF/CRLF tokenisation from p (just after the DATA line, which
    counts as a CRLF).  Returns (lines, endpos) where lines is a list of
    (start, content, term, crlf_before) up to but excluding the final
    '.' line; endpos is the index after CRLF.CRLF, or None at EOF."""
    lines = []
    i = p
    prev = "CRLF"
    n = len(S)
    while True:
        j = i
        while j < n and S[j] not in (13, 10):
            j += 1
        if j == n:
            return lines + [(i, S[i:], None, prev == "CRLF")], None
        if S[j] == 10:
            term, nxt = "LF", j + 1
        elif j + 1 < n and S[j + 1] == 10:
            term, nxt = "CRLF", j + 2
        elif j + 1 == n:
            # CR at the very end of input: end of input in the data
            return lines + [(i, S[i:], None, prev == "CRLF")], None
        else:
            term, nxt = "CR", j + 1
        content = S[i:j]
        if content == b"." and term == "CRLF" and prev == "CRLF":
            return lines, nxt
        lines.append((i, content, term, prev == "CRLF"))
        prev = term
        i = nxt


def break_line(s):
    limit = 998 - (1 if s[:1] == b"." else 0)
    out = s[:limit]
    rest = s[limit:]
    while rest:
        out += b"\r\n " + rest[:997]
        rest = rest[997:]
    return out


def model_message(S, p, maxsize, rlen=0):
    """One DATA phase from p.  Returns (kind, info, endpos):
    kind 'eof' (no reply, session over), 'ok' (info = dict), 'err'
    (info = set of acceptable reply lines)."""
    lines, endpos = data_lines(S, p)
    if endpos is None:
        return "eof", None, None
    dataend = endpos - 3  # index of the "." of the final line
    # --- header phase, with rd_line (LF-split) semantics
    q = p
    fields = []
    body_start = None      # raw index where the body starts
    headerless = False
    while True:
        lf = S.find(b"\n", q, dataend)
        if lf < 0:
            # no more LF before the final "."; the header ends at the end
            # of data (only CRLF-terminated lines exist before it)
            if q != dataend:
                raise Unmodeled("header phase without LF")
            body_start = q
            break
        raw = S[q:lf]
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if b"\0" in line:
            return "err", {"554 5.6.0 Message contains a NUL byte"}, endpos
        if len(line) > 1 and line[:1] == b".":
            hl0 = line[1:]
        else:
            hl0 = line
        if len(hl0) > 998:
            # header_like looks at the first 998 octets
            if not header_like(hl0[:998], len(fields)):
                body_start = q
                break
            if hl0[:1] in (b" ", b"\t"):
                raise Unmodeled("long continuation line")
            for piece in fold_pieces(hl0):
                if piece is None:
                    return "err", {"554 5.6.0 Header line too long (over "
                                   "998 octets) and no space to fold it "
                                   "at"}, endpos
                if b"\r" in piece:
                    return "err", {"554 5.6.0 Bare CR in header line"}, \
                        endpos
                fields.append(piece)
            q = lf + 1
            continue
        hl = line[1:] if len(line) > 1 and line[:1] == b"." else line
        if len(hl) == 0:
            body_start = lf + 1
            break
        cont = hl[:1] in (b" ", b"\t")
        if not header_like(hl, len(fields)):
            body_start = q
            break
        if b"\r" in hl:
            return "err", {"554 5.6.0 Bare CR in header line"}, endpos
        if cont:
            raise Unmodeled("continuation line")
        fields.append(hl)
        q = lf + 1
    names = set(f.split(b":")[0].lower() for f in fields)
    if not {b"from", b"to", b"date", b"message-id"} <= names:
        headerless = True   # fix-ups add fields: compare the body only
    if headerless and maxsize:
        raise Unmodeled("headerless with max size")
    hdr = b"".join(f + b"\r\n" for f in fields) + b"\r\n"
    if maxsize and rlen + len(hdr) > maxsize:
        return "err", {"552 5.3.4 Message size exceeds fixed limit"}, endpos
    # --- body
    body = []
    size = rlen + len(hdr)    # the Received: field comes first
    for (st, content, term, _) in lines:
        if st < body_start:
            continue
        nul = content.find(b"\0")
        if nul >= 0:
            # size of stored output before the NUL's line, and with the
            # part of the line before the NUL
            pre = content[:nul]
            if len(pre) > 1 and pre[:1] == b".":
                pre = pre[1:]
            elif pre == b".":
                pre = b""
            partial = len(break_line(pre)) if pre else 0
            r554 = "554 5.6.0 Message contains a NUL byte"
            r552 = "552 5.3.4 Message size exceeds fixed limit"
            if maxsize and size > maxsize:
                return "err", {r552}, endpos
            if maxsize and size + partial > maxsize:
                return "err", {r552, r554}, endpos
            return "err", {r554}, endpos
        if len(content) > 1 and content[:1] == b".":
            content = content[1:]
        out = break_line(content) + b"\r\n"
        body.append(out)
        size += len(out)
    body = b"".join(body)
    if maxsize and size > maxsize:
        # a NUL later in the data cannot come first: it was checked above
        return "err", {"552 5.3.4 Message size exceeds fixed limit"}, endpos
    msg = hdr + body
    return "ok", {"headerless": headerless, "msg": msg, "body": body,
                  "eight": any(c >= 0x80 for c in msg)}, endpos


ADDR = re.compile(rb"^<([a-z0-9.]+@[a-z0-9.]+)>$")


def path_arg(verb, arg, keyword):
    """The path of a MAIL FROM:<...> or RCPT TO:<...> argument; anything
    else is not modelled."""
    if arg is None or not arg.upper().startswith(keyword):
        raise Unmodeled(verb + " " + repr(arg))
    m = ADDR.match(arg[len(keyword):].encode())
    if not m:
        raise Unmodeled(verb + " " + repr(arg))
    return m.group(1).decode()


def model_session(S, maxsize, rlen=0):
    """Returns list of expected items: each either a set of acceptable
    reply lines, or ('QUEUED', msginfo)."""
    out = [{"220 %s ESMTP mxsend" % HOST}]
    p = 0
    n = len(S)
    in_mail = False
    sender = None
    rcpts = []
    errors = 0

    def rep(*alts):
        nonlocal errors
        out.append(set(alts))
        if next(iter(alts))[0] == "5":
            errors += 1

    while True:
        if errors >= 10:
            rep("421 4.7.0 %s Error: too many errors" % HOST)
            break
        if p >= n:
            break
        lf = S.find(b"\n", p)
        if lf < 0:
            raw = S[p:]
            p = n
            line = raw
            toolong = len(raw) > 1001
        else:
            raw = S[p:lf]
            p = lf + 1
            line = raw[:-1] if raw.endswith(b"\r") else raw
            toolong = len(line) > 1000
        if toolong:
            rep("500 5.5.2 Error: line too long")
            continue
        if any(c < 0x20 or c > 0x7e for c in line):
            rep("500 5.5.2 Error: bad character in command")
            continue
        line = line.decode()
        k = line.find(" ")
        if k < 0:
            verb, arg = line, None
        else:
            verb, arg = line[:k], line[k + 1:]
            if arg == "":
                arg = None
        v = verb.upper()
        if v in ("HELO", "EHLO"):
            if arg is None:
                rep("501 5.5.4 Syntax: %s hostname" % v)
                continue
            in_mail, sender, rcpts = False, None, []
            if v == "HELO":
                rep("250 " + HOST)
            else:
                rep("250-" + HOST)
                rep("250-PIPELINING")
                rep("250-SIZE %d" % maxsize if maxsize else "250-SIZE")
                rep("250-8BITMIME")
                rep("250-ENHANCEDSTATUSCODES")
                rep("250 HELP")
        elif v == "MAIL":
            if in_mail:
                rep("503 5.5.1 Error: nested MAIL command")
                continue
            in_mail, sender, rcpts = True, path_arg(v, arg, "FROM:"), []
            rep("250 2.1.0 Ok")
        elif v == "RCPT":
            if not in_mail:
                rep("503 5.5.1 Error: need MAIL command")
                continue
            a = path_arg(v, arg, "TO:")
            if a not in rcpts:
                rcpts.append(a)
            rep("250 2.1.5 Ok")
        elif v == "DATA":
            if arg is not None:
                rep("501 5.5.4 Syntax: DATA")
                continue
            if not in_mail:
                rep("503 5.5.1 Error: need MAIL command")
                continue
            if not rcpts:
                rep("503 5.5.1 Error: need RCPT command")
                continue
            rep("354 End data with <CR><LF>.<CR><LF>")
            kind, info, endpos = model_message(S, p, maxsize, rlen)
            if kind == "eof":
                break
            p = endpos
            if kind == "ok":
                info["sender"] = sender
                info["rcpts"] = list(rcpts)
                out.append(("QUEUED", info))
            else:
                rep(*info)
            in_mail, sender, rcpts = False, None, []
        elif v == "RSET":
            if arg is not None:
                rep("501 5.5.4 Syntax: RSET")
                continue
            in_mail, sender, rcpts = False, None, []
            rep("250 2.0.0 Ok")
        elif v == "NOOP":
            rep("250 2.0.0 Ok")
        elif v == "QUIT":
            rep("221 2.0.0 Bye")
            break
        elif v == "HELP":
            rep("214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET "
                "NOOP QUIT HELP VRFY")
        elif v == "VRFY":
            rep("501 5.5.4 Syntax: VRFY address" if arg is None
                else "252 2.5.2 Cannot VRFY user")
        elif v in ("EXPN", "STARTTLS", "AUTH", "BDAT", "ETRN", "TURN"):
            rep("502 5.5.1 Error: command not implemented")
        else:
            rep("500 5.5.2 Error: command not recognized")
    return out


# ------------------------------------------------------------ generator

HEADER = (b"From: %s\r\nTo: r@b.example\r\nDate: Mon, 1 Jan 2024 00:00:00 "
          b"+0000\r\nMessage-ID: <%d@x.example>\r\nSubject: test\r\n")

# sequences a lax server might take for the end of data
ADV = [b"\n.\r\n", b"\r.\r\n", b"\r\n.\n", b"\r\n.\r", b".\r", b"\n.\n",
       b"\r.\r", b"\r\n.\r\r\n", b"\r\n.\rX", b"\n.\r", b"\r\n..\r\n",
       b"\r\n.\r\n", b"\r\r\n.\r\n", b"\n\r\n.\r\n", b"\r\n.\n\r\n",
       b"\r\n. \r\n", b"\r\n.\0\r\n"]


def smuggle(i):
    return (b"MAIL FROM:<evil%d@e.example>\r\nRCPT TO:<r@b.example>\r\n"
            b"DATA\r\n" % i + HEADER % (b"evil@e.example", 900 + i) +
            b"\r\nsmuggled\r\n.\r\n")


def rand_content(rng):
    r = rng.random()
    if r < 0.15:
        return b""
    if r < 0.25:
        return rng.choice([b".", b"..", b"...", b".x", b"..x"])
    parts = []
    ln = rng.choice([1, 2, 5, 20, 80, 300, 900]) if rng.random() < 0.97 \
        else rng.randint(990, 2100)
    if rng.random() < 0.3:
        parts.append(rng.choice([b".", b".."]))
    while sum(map(len, parts)) < ln:
        t = rng.random()
        if t < 0.6:
            parts.append(b"x" * rng.randint(1, 40))
        elif t < 0.7:
            parts.append(b".")
        elif t < 0.8:
            parts.append(bytes([rng.randint(0x80, 0xff)]))
        elif t < 0.9:
            parts.append(b" ")
        else:
            parts.append(rng.choice([b"ab", b"y.z", b"::"]))
    return b"".join(parts)[:ln]


def rand_body(rng, nul_p, markers, base):
    out = bytearray()
    prev = b"\r\n"
    for _ in range(rng.randint(0, 12)):
        r = rng.random()
        if r < 0.12:
            m = rng.choice(ADV)
            markers.append(base + len(out))
            out += m
            if rng.random() < 0.3:
                out += smuggle(rng.randint(0, 99))
            prev = m[-2:]
            continue
        c = rand_content(rng)
        if rng.random() < nul_p:
            k = rng.randint(0, len(c))
            c = c[:k] + b"\0" + c[k:]
        t = rng.random()
        term = b"\r\n" if t < 0.6 else b"\n" if t < 0.75 else b"\r" \
            if t < 0.9 else rng.choice([b"\r\r\n", b"\n\r", b"\r\r"])
        if c == b"." and term == b"\r\n" and prev.endswith(b"\r\n") \
                and rng.random() < 0.9:
            c = b".."
        out += c + term
        prev = term
    return bytes(out)


def filler(F):
    """F octets of CRLF lines of at most 900 octets"""
    out = []
    while F > 0:
        if F <= 902:
            k = F
        elif F < 905:
            k = F - 10
        else:
            k = 902
        if k < 3:  # only happens when F < 3
            return None
        out.append(b"y" * (k - 2) + b"\r\n")
        F -= k
    return b"".join(out)


def gen_session(rng, adv_only=False):
    maxsize = None
    if rng.random() < 0.2:
        maxsize = rng.choice([200, 400, 600, 1000, 3000, 70000, 140000])
    nul_p = 0.03 if rng.random() < 0.5 else 0.0
    segs = []      # (bytes, markers relative to the segment)
    segs.append((rng.choice([b"HELO c.example\r\n", b"EHLO c.example\r\n",
                             b"EHLO c.example\n"]), []))
    nmsg = rng.randint(1, 4)
    any_headerless = False
    boundary_msg = rng.randrange(nmsg) if rng.random() < 0.5 else None
    for i in range(nmsg):
        cmd = b"MAIL FROM:<s%d@a.example>\r\nRCPT TO:<r@b.example>\r\n" \
              b"DATA\r\n" % i
        mk = []
        headerless = maxsize is None and rng.random() < 0.1
        any_headerless = any_headerless or headerless
        if headerless:
            hdr = b""
        else:
            hdr = HEADER % (b"s%d@a.example" % i, i)
            if rng.random() < 0.2:
                hdr += rng.choice([
                    b".X-Dot: stuffed\r\n", b"X-LF: bare\n",
                    b"X-Long: " + b"h" * rng.randint(985, 1100) + b"\r\n",
                    b"X-Long: " + b"h" * rng.randint(985, 1100) + b"\n",
                    b"X-Words:" + b"".join(
                        rng.choice([b" ", b"  ", b"\t", b", "]) +
                        b"w" * rng.randint(1, 120)
                        for _ in range(rng.randint(10, 60))) + b"\r\n",
                    b"notafield line\r\n", b"not a field\n",
                    b"X-CR: a\rb\r\n", b"X-CR: a\r.\r\n",
                    b"y" * rng.randint(990, 1100) + b"\r\n",
                    b"." * rng.randint(990, 1100) + b"\n",
                    b"..y\r\n", b".\n", b"\r\n.\n"])
            hdr += b"\r\n" if rng.random() < 0.9 else b"\n"
        if adv_only or rng.random() < 0.3:
            # adversarial: one sequence, maybe a smuggled message after it
            body = rand_body(rng, nul_p, [], 0) if rng.random() < 0.5 else b""
            m = rng.choice(ADV)
            mk.append(len(body))
            body += m
            if rng.random() < 0.6:
                body += smuggle(i)
            if rng.random() < 0.3:
                body += b"more\r\n"
            if rng.random() < 0.25:
                # make it refused, with the lax end afterwards
                if rng.random() < 0.5:
                    body = b"a\0b\r\n" + body
                elif maxsize is None and not any_headerless:
                    maxsize = rng.choice([200, 300])
        else:
            body = rand_body(rng, nul_p, mk, 0)
        r = rng.random()
        end = b"\r\n.\r\n" if r < 0.75 else b".\r\n" if r < 0.9 else \
            rng.choice([b"\r\n.\r\n\r\n.\r\n", b"\n.\r\n", b""])
        pre = cmd + hdr
        seg = pre + body
        mk = [len(pre) + x for x in mk]
        mk.append(len(seg))     # the end of data
        seg += end
        segs.append((seg, mk))
        if i == boundary_msg:
            segs[-1] = (seg, mk, len(pre))   # where filler may go
    tail = rng.random()
    if tail < 0.3:
        segs.append((b"NOOP\r\nQUIT\r\n", []))
    elif tail < 0.5:
        segs.append((b"QUIT\r\n", []))
    elif tail < 0.6:
        segs.append((b"RSET\r\nNOOP\r\n", []))
    # assemble, adding filler to put a marker at a read-buffer boundary
    S = bytearray()
    markers = []
    for s in segs:
        seg, mk = s[0], s[1]
        if len(s) == 3 and mk:
            ins = s[2]
            target_m = rng.choice(mk)
            pos = len(S) + target_m
            d = rng.randint(-6, 6)
            k = 1
            while True:
                F = k * RBUF + d - pos
                if F >= 3 and filler(F) is not None:
                    break
                k += 1
            f = filler(F)
            seg = seg[:ins] + f + seg[ins:]
            mk = [x + len(f) if x >= ins else x for x in mk]
        markers += [len(S) + x for x in mk]
        S += seg
    return bytes(S), maxsize, markers


# ---------------------------------------------------------------- runner

def chunks_for(S, markers, rng):
    mode = rng.random()
    if mode < 0.45:
        return [S], "one"
    cuts = set()
    if mode < 0.75:
        for m in markers:
            for d in range(-2, 5):
                if rng.random() < 0.5:
                    cuts.add(m + d)
        name = "markers"
    else:
        for _ in range(rng.randint(1, 20)):
            cuts.add(rng.randint(1, max(1, len(S) - 1)))
        for m in markers:
            cuts.add(m + rng.randint(0, 3))
        name = "random"
    cuts = sorted(c for c in cuts if 0 < c < len(S))
    out, prev = [], 0
    for c in cuts:
        out.append(S[prev:c])
        prev = c
    out.append(S[prev:])
    # never more than 64 KiB in one write, so reads follow the chunks
    res = []
    for c in out:
        while len(c) > RBUF:
            res.append(c[:RBUF])
            c = c[RBUF:]
        res.append(c)
    return [c for c in res if c], name


def run_sendmail(chunks, conf, sleep):
    p = subprocess.Popen([SENDMAIL, "-C", conf, "-bs", "-odq"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)

    def writer():
        try:
            for i, c in enumerate(chunks):
                if i and sleep:
                    time.sleep(sleep)
                p.stdin.write(c)
                p.stdin.flush()
        except (BrokenPipeError, ConnectionResetError, ValueError):
            pass
        try:
            p.stdin.close()
        except Exception:
            pass
    t = threading.Thread(target=writer)
    t.start()
    errbuf = []
    te = threading.Thread(target=lambda: errbuf.append(p.stderr.read()))
    te.start()
    out = p.stdout.read()
    t.join()
    te.join()
    rc = p.wait()
    return out, rc, errbuf[0], p.pid


# The Received: field submit.c puts first (trace_field): the queue ID is
# 13 hex digits and the submitting process's ID in hex; the date 31 octets.
RCVD = (r"Received: by %s \(mxsend, from userid %d\)\r\n\tid %%s; "
        r"[A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} "
        r"[0-9]{2}:[0-9]{2}:[0-9]{2} [-+][0-9]{4}\r\n") % (
            re.escape(HOST), os.getuid())
RCVD = RCVD.encode()


def rcvd_len(pid):
    """Octets of the Received: field of a message that process pid queues."""
    return len("Received: by %s (mxsend, from userid %d)\r\n\tid %s; %s\r\n"
               % (HOST, os.getuid(), "X" * (13 + len("%X" % pid)), "D" * 31))


def read_queue(qdir):
    msgs = {}
    for f in os.listdir(qdir):
        if f.endswith(".msg"):
            data = open(os.path.join(qdir, f), "rb").read()
            foot = data.rindex(b"mxsend-env ")
            envoff = int(data[foot + 11:].strip())
            env = data[envoff:foot].decode()
            kv = {}
            for l in env.splitlines():
                k, _, v = l.partition(" ")
                kv.setdefault(k, []).append(v)
            size = int(kv["size"][0])
            msgs[f[:-4]] = (data[:size], kv)
    return msgs


def clean_queue(qdir):
    for f in os.listdir(qdir):
        if f.endswith(".msg") or f.endswith(".env"):
            os.unlink(os.path.join(qdir, f))
    for f in os.listdir(os.path.join(qdir, "tmp")):
        os.unlink(os.path.join(qdir, "tmp", f))


def showdiff(what, i, e, g):
    k = 0
    while k < min(len(e), len(g)) and e[k] == g[k]:
        k += 1
    a = max(0, k - 40)
    return ("reply %d: %s differs at octet %d (lengths %d/%d)\n expected "
            "...%r\n got      ...%r" % (i, what, k, len(e), len(g),
                                        e[a:k + 60], g[a:k + 60]))


def compare(expected, out, queue):
    """Returns None or a description of the first difference."""
    got = out.decode("latin-1").split("\r\n")
    if got and got[-1] == "":
        got.pop()
    else:
        return "reply stream does not end in CRLF: %r" % out[-50:]
    used = set()
    for i, e in enumerate(expected):
        if i >= len(got):
            return "missing reply %d: expected %r" % (i, e)
        g = got[i]
        if isinstance(e, tuple):
            m = re.match(r"^250 2\.0\.0 Ok: queued as ([0-9A-F]+)$", g)
            if not m:
                return "reply %d: expected queued, got %r" % (i, g)
            qid = m.group(1)
            if qid not in queue:
                return "reply %d: %s not in queue" % (i, qid)
            used.add(qid)
            info = e[1]
            msg, kv = queue[qid]
            # submit.c's trace field first, exactly, then the model's bytes
            m = re.match(RCVD % re.escape(qid).encode(), msg)
            if not m:
                return "reply %d: no Received: field first: %r" % (i, msg[:120])
            msg = msg[m.end():]
            if info["headerless"]:
                k = msg.find(b"\r\n\r\n")
                gb = msg[k + 4:] if k >= 0 else None
                if gb != info["body"]:
                    return showdiff("body", i, info["body"], gb or b"")
            elif msg != info["msg"]:
                return showdiff("message", i, info["msg"], msg)
            if kv["sender"] != [info["sender"]]:
                return "reply %d: sender %r expected %r" % (
                    i, kv["sender"], info["sender"])
            rc = [r.split(" ", 3)[3] for r in kv.get("rcpt", [])]
            if rc != info["rcpts"]:
                return "reply %d: rcpts %r expected %r" % (i, rc, info["rcpts"])
            want8 = "8bitmime" if info["eight"] else "7bit"
            if kv["body"] != [want8]:
                return "reply %d: body %r expected %r" % (i, kv["body"], want8)
        elif g not in e:
            return "reply %d: expected %r, got %r" % (i, sorted(e), g)
    if len(got) > len(expected):
        return "extra replies: %r" % got[len(expected):]
    extra = set(queue) - used
    if extra:
        return "queued but not acknowledged: %r" % sorted(extra)
    return None


def worker_dirs(wid):
    qdir = os.path.join(SCRATCH, "q%d" % wid)
    conf_base = os.path.join(SCRATCH, "conf%d" % wid)
    os.makedirs(os.path.join(qdir, "tmp"), exist_ok=True)
    os.chmod(qdir, 0o700)
    os.chmod(os.path.join(qdir, "tmp"), 0o700)
    return qdir, conf_base


def conf_for(qdir, conf_base, maxsize):
    path = "%s-%s.conf" % (conf_base, maxsize or 0)
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write("hostname %s\nqueue_dir %s\ntls none\nlocal_delivery none\n"
                    "command_timeout 5s\ndata_timeout 5s\n" % (HOST, qdir))
            # none: no limit (the default is 10240000)
            f.write("max_message_size %d\n" % (maxsize or 0))
    return path


def one(seed, wid, adv_only):
    rng = random.Random(seed)
    S, maxsize, markers = gen_session(rng, adv_only)
    try:
        model_session(S, maxsize)
    except Unmodeled as e:
        return ("unmodeled", seed, str(e))
    chunks, mode = chunks_for(S, markers, rng)
    sleep = 0.002 if mode != "one" else 0
    qdir, cb = worker_dirs(wid)
    conf = conf_for(qdir, cb, maxsize)
    clean_queue(qdir)
    out, rc, err, pid = run_sendmail(chunks, conf, sleep)
    expected = model_session(S, maxsize, rcvd_len(pid))
    queue = read_queue(qdir)
    clean_queue(qdir)
    d = compare(expected, out, queue)
    if d:
        return ("mismatch", seed, d, S, maxsize, mode, out)
    return ("ok", seed, mode)


def targeted_cases():
    """Hand-made sessions: every lax end-of-data sequence, after each kind
    of line end, in a message accepted or refused (NUL in the body or the
    header, too big), split across writes at every octet, and placed at
    the 64 KiB read-buffer boundary."""
    cases = []
    hdr = HEADER % (b"s0@a.example", 0)
    pre = b"HELO c.example\r\nMAIL FROM:<s0@a.example>\r\n" \
          b"RCPT TO:<r@b.example>\r\nDATA\r\n"
    for adv in ADV:
        for ctx in (b"", b"ctx\r\n", b"ctx\n", b"ctx\r"):
            for refuse in ("none", "nul", "hdrnul", "big"):
                for smug in (0, 1):
                    h = hdr + (b"X-N: a\0b\r\n" if refuse == "hdrnul"
                               else b"")
                    body = {"none": b"", "nul": b"a\0b\r\n",
                            "hdrnul": b"", "big": b"z" * 250 + b"\r\n"}[refuse]
                    mx = 300 if refuse == "big" else None
                    head = pre + h + b"\r\n" + body
                    after = (smuggle(1) if smug else b"") + \
                        b"tail\r\n.\r\nNOOP\r\nQUIT\r\n"
                    # split at every octet of ctx+adv, two writes
                    seq = ctx + adv
                    for j in range(len(seq) + 1):
                        S = head + seq + after
                        cut = len(head) + j
                        cases.append((S, mx, [S[:cut], S[cut:]], 0.02))
                    # one octet a write around the sequence
                    S = head + seq + after
                    a = len(head)
                    ch = [S[:a]] + [S[k:k + 1] for k in
                                    range(a, a + len(seq) + 1)] + \
                        [S[a + len(seq) + 1:]]
                    cases.append((S, mx, ch, 0.005))
                    # at the read-buffer boundary
                    for d in range(-6, 7):
                        F = RBUF + d - (len(head) + len(ctx))
                        f = filler(F)
                        S = head + f + seq + after
                        cases.append((S, mx, [S[:RBUF], S[RBUF:]], 0.02))
    # the data ends right after DATA (empty message) and variants
    for first in (b".\r\n", b"\n.\r\n", b"\r.\r\n", b".\n", b".\r",
                  b"..\r\n", b"\r\n.\r\n", b".\rX\r\n"):
        S = pre + first + b"\r\n.\r\nNOOP\r\nQUIT\r\n"
        for j in range(len(first) + 1):
            cut = len(pre) + j
            cases.append((S, None, [S[:cut], S[cut:]], 0.02))
    return cases


def run_case(case, wid):
    S, maxsize, chunks, sleep = case
    try:
        model_session(S, maxsize)
    except Unmodeled as e:
        return ("unmodeled", 0, str(e))
    qdir, cb = worker_dirs(wid)
    conf = conf_for(qdir, cb, maxsize)
    clean_queue(qdir)
    out, rc, err, pid = run_sendmail([c for c in chunks if c], conf, sleep)
    expected = model_session(S, maxsize, rcvd_len(pid))
    queue = read_queue(qdir)
    clean_queue(qdir)
    d = compare(expected, out, queue)
    if d:
        return ("mismatch", 0, d, S, maxsize, "targeted", out)
    return ("ok", 0, "targeted")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=3000)
    ap.add_argument("-s", type=int, default=1)
    ap.add_argument("-j", type=int, default=4)
    ap.add_argument("--adv-only", action="store_true")
    ap.add_argument("-v", action="store_true")
    ap.add_argument("--targeted", action="store_true")
    a = ap.parse_args()
    stats = {}
    bad = []
    import queue as _q
    wids = _q.Queue()
    for w in range(a.j):
        wids.put(w)

    def task(seed):
        w = wids.get()
        try:
            if a.targeted:
                return run_case(seed, w)
            return one(seed, w, a.adv_only)
        finally:
            wids.put(w)
    work = targeted_cases() if a.targeted else \
        [a.s * 1000003 + k for k in range(a.n)]
    a.n = len(work)
    with concurrent.futures.ThreadPoolExecutor(a.j) as ex:
        futs = []
        for k in work:
            futs.append(ex.submit(task, k))
        for f in futs:
            r = f.result()
            stats[r[0]] = stats.get(r[0], 0) + 1
            if r[0] == "mismatch":
                bad.append(r)
                if len(bad) <= 5:
                    print("MISMATCH seed=%d mode=%s max=%s: %s" % (
                        r[1], r[5], r[4], r[2]))
                    if a.v:
                        print("  session: %r" % r[3][:4000])
                        print("  replies: %r" % r[6][:2000])
            elif r[0] == "unmodeled" and a.v:
                print("unmodeled seed=%d: %s" % (r[1], r[2]))
    print("sessions:", a.n, stats)
    if not os.environ.get("DIFFT_DIR"):
        shutil.rmtree(SCRATCH, ignore_errors=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
