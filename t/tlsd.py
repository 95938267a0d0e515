#!/usr/bin/python3
"""t/tlsd.py - an SMTP receiver with STARTTLS, implicit TLS and AUTH for
mxsend's TLS end-to-end tests (aiosmtpd, Debian's /usr/bin/python3).

    tlsd.py --listen ADDR:PORT --dir DIR [options]

Without --cert it is a plain server that does not offer STARTTLS.

TLS:
  --cert PEM --key PEM   offer STARTTLS with this certificate
  --implicit             TLS right after connect (port-465 style) instead;
                         STARTTLS is then not offered
  --ca PEM               ask for a client certificate (optional) and accept
                         those signed by this CA
  --tls-max 1.1          speak at most TLS 1.1 (to test the 1.2 minimum)
  --require-starttls     530 to every command but EHLO/HELO/NOOP/QUIT/
                         STARTTLS before STARTTLS
  --break MODE           STARTTLS is offered but broken:
                           close    reply 220, then close the connection
                           garbage  reply 220 and non-TLS bytes in one
                                    write (they arrive with the reply), close
                           late-garbage  reply 220, wait 0.2 s, then send
                                    non-TLS bytes (the handshake reads them)
                           noise    reply with a line of binary garbage
                                    instead of 220, then close
                           silent   reply 220, then say nothing (until the
                                    client gives up)
  --faults-for N         --break applies to the first N connections only
AUTH (offered only over TLS):
  --auth USER:PASSWORD   accept these credentials (repeatable)
  --mechs LIST           mechanisms offered, comma-separated, from PLAIN,
                         LOGIN, SCRAM-SHA-256 (default PLAIN,LOGIN)
  --auth-required        530 to MAIL before a successful AUTH
  --auth-plaintext       offer AUTH before TLS too (to check the client
                         never sends credentials in plain text)
  --echo-user            a refused SCRAM login is answered "535 5.7.8
                         Authentication failed for USER" (as some servers
                         do; the client must not keep the name)

Recording, all under DIR: t/sinklib.py's layout, as t/smtpd.py's (so
t/lib.sh's rx_* helpers work), with
  DIR/msgs/NNNN   after the "MAIL FROM:<...>" and "RCPT TO:<...>" lines:
                  "tls VERSION CIPHER" or "tls none",
                  "auth USER MECHANISM" or "auth none",
                  "sni NAME" or "sni none" (server name the client sent),
                  "client-cert CN" or "client-cert none",
                  "ehlo-after-tls yes|no|n/a"
  DIR/trace       AUTH commands with the mechanism only; events tls ...,
                  tls-failed ..., auth-ok USER MECH, auth-failed USER MECH,
                  drop ...
"""

import asyncio
import base64
import hashlib
import hmac
import logging
import os
import secrets
import ssl
import sys
import warnings

from aiosmtpd.smtp import AuthResult, LoginPassword

import sinklib


SNI = {}    # id(SSLObject) -> server name the client sent


def make_ctx(opts):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(opts.cert, opts.key)
    if opts.tls_max == "1.1":
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    if opts.ca:
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.load_verify_locations(opts.ca)

    def sni_cb(sslobj, name, _ctx):
        SNI[id(sslobj)] = name
    ctx.sni_callback = sni_cb
    return ctx


def cn_of(cert):
    for rdn in (cert or {}).get("subject", ()):
        for k, v in rdn:
            if k == "commonName":
                return v
    return None


class Handler(sinklib.Handler):
    def __init__(self, rec, opts):
        super().__init__(rec, opts)
        # --auth USER:PASSWORD, as bytes
        self.users = {u.encode(): p.encode() for u, _, p in
                      (spec.partition(":") for spec in opts.auth)}

    def check(self, server, mech, login, password):
        user = login.decode("utf-8", "replace")
        if self.users.get(login) == password:
            server.auth_user = user
            server.auth_mech = mech
            server.event("auth-ok %s %s" % (user, mech))
            return True
        server.event("auth-failed %s %s" % (user, mech))
        return False

    def authenticator(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and self.check(
            server, mechanism, auth_data.login, auth_data.password)
        return AuthResult(success=ok, handled=False,
                          auth_data=auth_data if ok else None)

    # SCRAM-SHA-256 (RFC 5802 / RFC 7677), no channel binding
    async def auth_SCRAM__SHA__256(self, server, args):
        if len(args) > 1:
            try:
                first = base64.b64decode(args[1], validate=True)
            except Exception:
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        else:
            first = await server.challenge_auth("")
            if not isinstance(first, bytes):
                return AuthResult(success=False, handled=True)
        try:
            first = first.decode()
            gs2, _, bare = first.partition(",,")
            if not gs2.startswith(("n", "y")) or not bare:
                raise ValueError("gs2 header")
            attrs = dict(kv.split("=", 1) for kv in bare.split(","))
            user = attrs["n"].replace("=2C", ",").replace("=3D", "=")
            cnonce = attrs["r"]
        except Exception:
            await server.push("501 5.5.2 bad SCRAM client-first message")
            return AuthResult(success=False, handled=True)
        salt = secrets.token_bytes(16)
        iters = 4096
        nonce = cnonce + base64.b64encode(secrets.token_bytes(18)).decode()
        sfirst = "r=%s,s=%s,i=%d" % (nonce, base64.b64encode(salt).decode(),
                                     iters)
        final = await server.challenge_auth(sfirst)
        if not isinstance(final, bytes):
            return AuthResult(success=False, handled=True)
        try:
            final = final.decode()
            without_proof, _, proof = final.rpartition(",p=")
            fattrs = dict(kv.split("=", 1) for kv in without_proof.split(","))
            if fattrs["r"] != nonce:
                raise ValueError("nonce")
            proof = base64.b64decode(proof)
        except Exception:
            await server.push("501 5.5.2 bad SCRAM client-final message")
            return AuthResult(success=False, handled=True)
        password = self.users.get(user.encode())
        authmsg = ("%s,%s,%s" % (bare, sfirst, without_proof)).encode()
        ok = False
        if password is not None:
            salted = hashlib.pbkdf2_hmac("sha256", password, salt, iters)
            ckey = hmac.new(salted, b"Client Key", "sha256").digest()
            stored = hashlib.sha256(ckey).digest()
            csig = hmac.new(stored, authmsg, "sha256").digest()
            got = bytes(a ^ b for a, b in zip(proof, csig))
            ok = len(proof) == 32 and hmac.compare_digest(got, ckey)
        if not ok:
            server.event("auth-failed %s SCRAM-SHA-256" % user)
            await server.push(
                "535 5.7.8 Authentication failed for %s" % user
                if self.opts.echo_user else
                "535 5.7.8 Authentication credentials invalid")
            return AuthResult(success=False, handled=True)
        skey = hmac.new(salted, b"Server Key", "sha256").digest()
        ssig = hmac.new(skey, authmsg, "sha256").digest()
        # additional data with success goes in a 334; the client answers
        # with an empty line (RFC 4954 section 4)
        empty = await server.challenge_auth("v=" + base64.b64encode(ssig).decode())
        if empty != b"":
            await server.push("501 5.5.2 expected an empty response")
            return AuthResult(success=False, handled=True)
        server.auth_user = user
        server.auth_mech = "SCRAM-SHA-256"
        server.event("auth-ok %s SCRAM-SHA-256" % user)
        return AuthResult(success=True, auth_data=user)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if server.tls_info is not None:
            server.ehlo_after_tls = True
        out = []
        for r in responses:
            if r[4:].upper().startswith("AUTH"):
                if not self.opts.auth:
                    continue
                offered = [m for m in self.opts.mechs.split(",") if m]
                r = r[:4] + "AUTH " + " ".join(offered)
            out.append(r)
        return out

    async def handle_MAIL(self, server, session, envelope, address, options):
        if self.opts.auth_required and server.auth_user is None:
            return "530 5.7.0 Authentication required"
        return await super().handle_MAIL(server, session, envelope, address,
                                         options)

    def head(self, server, envelope):
        head = super().head(server, envelope)
        ti = server.tls_info
        head.append("tls " + ("%s %s" % (ti["version"], ti["cipher"])
                              if ti else "none"))
        head.append("auth " + ("%s %s" % (server.auth_user, server.auth_mech)
                               if server.auth_user else "none"))
        head.append("sni " + ((ti and ti["sni"]) or "none"))
        head.append("client-cert " + ((ti and ti["client"]) or "none"))
        head.append("ehlo-after-tls " + (
            "n/a" if not server.starttls_done else
            "yes" if server.ehlo_after_tls else "no"))
        return head


MECH_METHODS = {"PLAIN": "auth_PLAIN", "LOGIN": "auth_LOGIN",
                "SCRAM-SHA-256": "auth_SCRAM__SHA__256"}


class TLSSMTP(sinklib.TracingSMTP):
    def __init__(self, handler, rec, opts, **kw):
        super().__init__(handler, rec, opts, **kw)
        self.tls_info = None
        self.starttls_done = False
        self.ehlo_after_tls = False
        self.auth_user = None
        self.auth_mech = None

    def _note_tls(self, sslobj):
        if sslobj is None:
            return
        cert = sslobj.getpeercert()
        self.tls_info = {
            "version": sslobj.version(),
            "cipher": (sslobj.cipher() or ("?",))[0],
            "sni": SNI.pop(id(sslobj), None),
            "client": cn_of(cert),
        }
        self.event("tls %s %s sni=%s client-cert=%s" % (
            self.tls_info["version"], self.tls_info["cipher"],
            self.tls_info["sni"] or "none", self.tls_info["client"] or "none"))

    def connection_made(self, transport):
        first = self.transport is None
        super().connection_made(transport)
        if first and self.opts.implicit:
            self._note_tls(transport.get_extra_info("ssl_object"))
        elif not first:          # STARTTLS handshake completed
            self.starttls_done = True
            self._note_tls(transport.get_extra_info("ssl_object"))

    async def smtp_AUTH(self, arg):
        # only the mechanism: the rest is a credential
        self.trace_cmd("AUTH", None if arg is None else arg.split(" ")[0])
        mech = (arg or "").split(" ")[0].upper()
        offered = [m for m in self.opts.mechs.split(",") if m]
        if self.opts.auth and mech and mech not in offered:
            await self.push("504 5.5.4 Unrecognized authentication type")
            return
        await super().smtp_AUTH(arg)

    async def smtp_STARTTLS(self, arg):
        self.trace_cmd("STARTTLS", arg)
        mode = self.opts.brk if self.faulty else None
        junk = b"HTTP/1.0 400 Bad Request\r\n\r\n" + bytes(range(256)) * 4
        if mode == "garbage":
            self.rec.trace(self.n, "< 220 2.0.0 Ready to start TLS")
            self.event("garbage in the same write as the 220")
            self.transport.write(b"220 2.0.0 Ready to start TLS\r\n" + junk)
            await asyncio.sleep(0.3)
            self.event("drop after STARTTLS (%s)" % mode)
            self.dropped = True
            self.transport.close()
            return
        if mode in ("close", "late-garbage", "silent"):
            await self.push("220 2.0.0 Ready to start TLS")
            if mode == "late-garbage":
                await asyncio.sleep(0.2)
                self.event("sending garbage instead of a TLS handshake")
                self.transport.write(junk)
                await asyncio.sleep(0.3)
            elif mode == "silent":
                self.event("silent after 220")
                await asyncio.sleep(60)
            self.event("drop after STARTTLS (%s)" % mode)
            self.dropped = True
            self.transport.close()
            return
        if mode == "noise":
            self.event("noise instead of a STARTTLS reply")
            self.transport.write(b"\x16\x03\x01\x00\xff\x80garbage\x00\xfe\r\n")
            await asyncio.sleep(0.3)
            self.dropped = True
            self.transport.close()
            return
        try:
            await super().smtp_STARTTLS(arg)
        except Exception as e:
            cause = e.__cause__ or e
            self.event("tls-failed %s" % (cause,))
            raise


def main():
    ap = sinklib.arguments("TLS/AUTH SMTP receiver", "tlsd.test")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--implicit", action="store_true")
    ap.add_argument("--ca")
    ap.add_argument("--tls-max", choices=["1.1"])
    ap.add_argument("--require-starttls", action="store_true")
    ap.add_argument("--break", dest="brk",
                    choices=["close", "garbage", "late-garbage", "noise",
                             "silent"])
    ap.add_argument("--auth", action="append", default=[])
    ap.add_argument("--mechs", default="PLAIN,LOGIN")
    ap.add_argument("--auth-required", action="store_true")
    ap.add_argument("--auth-plaintext", action="store_true")
    ap.add_argument("--echo-user", action="store_true")
    opts = ap.parse_args()
    warnings.simplefilter("ignore", DeprecationWarning)
    logging.basicConfig(level=logging.DEBUG if os.environ.get("TLSD_DEBUG")
                        else logging.ERROR)
    if (opts.implicit or opts.brk or opts.ca or opts.tls_max) and not opts.cert:
        sys.exit("tlsd.py: --implicit/--break/--ca/--tls-max need --cert")
    for m in opts.mechs.split(","):
        if m and m not in MECH_METHODS:
            sys.exit("tlsd.py: unknown mechanism %r" % m)

    rec = sinklib.Recorder(opts.dir)
    handler = Handler(rec, opts)
    ctx = make_ctx(opts) if opts.cert else None
    excluded = [m for m in MECH_METHODS if m not in opts.mechs.split(",")]

    def session(loop):
        return TLSSMTP(handler, rec, opts, hostname=opts.hostname,
                       timeout=opts.timeout, loop=loop,
                       tls_context=None if opts.implicit else ctx,
                       require_starttls=opts.require_starttls,
                       authenticator=handler.authenticator,
                       # aiosmtpd knows only STARTTLS: with implicit TLS
                       # every session is TLS already
                       auth_require_tls=not (opts.implicit
                                             or opts.auth_plaintext),
                       auth_exclude_mechanism=excluded)
    # handshake failures are expected here: into the trace
    return sinklib.serve(opts, rec, session,
                         ssl=ctx if opts.implicit else None, quiet=True)


if __name__ == "__main__":
    sys.exit(main())
