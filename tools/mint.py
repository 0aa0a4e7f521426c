"""`scanbridge mint`: the wallet simulator. Issuer keys, signed payment codes, shown as PNG, in the
terminal or on a local page that refreshes like a wallet app; the demo's set of codes.

Tokens are built with scanbridge.tokens.format.build and signed with scanbridge.tokens.signing:
the same code the bridge parses and verifies with. Private keys stay here (files mode 0600); what
goes to the merchant is the public trust-store entry."""
from __future__ import annotations

import json
import os
import random
import sys
import time
from dataclasses import dataclass
from typing import Optional

import segno
from cryptography.hazmat.primitives import serialization

from scanbridge.tokens import format as fmt
from scanbridge.tokens import signing
from scanbridge.tokens.trust import TrustedKey, TrustStore, format_time

DEFAULT_LIFETIME_S = 120


@dataclass
class Issuer:
    """A wallet issuer's signing key (wallet side only)."""
    private_key: object
    issuer: str = "Demo Wallet"
    kid: Optional[bytes] = None

    def __post_init__(self):
        self.alg = signing.alg_of_private_key(self.private_key)
        if self.kid is None:
            self.kid = signing.kid_for(self.public_key)

    @classmethod
    def generate(cls, alg="ed25519", issuer: str = "Demo Wallet") -> "Issuer":
        alg_id = fmt.ALG_BY_NAME[alg.lower()] if isinstance(alg, str) else alg
        return cls(signing.generate_private_key(alg_id), issuer)

    @property
    def public_key(self):
        return self.private_key.public_key()  # type: ignore[attr-defined]

    def sign(self, message: bytes) -> bytes:
        return signing.sign_with(self.private_key, message)

    def mint(self, *, payer: bytes = b"", lifetime: int = DEFAULT_LIFETIME_S,
             amount_cap: Optional[int] = None, currency: Optional[str] = None,
             issued_at: Optional[int] = None, token_id: Optional[bytes] = None) -> bytes:
        """A signed binary token (what the QR code carries, in byte mode)."""
        return fmt.build(self.sign, self.alg, self.kid, int(time.time() if issued_at is None else issued_at),
                         lifetime, payer, amount_cap, currency, token_id)  # type: ignore[arg-type]

    def trusted_key(self, not_before: Optional[float] = None, not_after: Optional[float] = None) -> TrustedKey:
        return TrustedKey(self.kid, self.alg, self.public_key, self.issuer, not_before, not_after)  # type: ignore[arg-type]

    def trust_entry(self, not_before: Optional[float] = None, not_after: Optional[float] = None) -> dict:
        """The public entry the merchant installs with `scanbridge trust add`."""
        return self.trusted_key(not_before, not_after).entry()

    def save(self, path: str) -> None:
        """The private key as PKCS#8 PEM, created with mode 0600 (never readable by others)."""
        pem = self.private_key.private_bytes(serialization.Encoding.PEM,  # type: ignore[attr-defined]
                                             serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        os.chmod(path, 0o600)

    @classmethod
    def load(cls, path: str, issuer: Optional[str] = None) -> "Issuer":
        """Load a key written by `save`; the issuer name comes from the <kid>.trust.json that
        keygen wrote beside it, when present."""
        with open(path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
        found = cls(key, issuer or "Demo Wallet")
        if issuer is None:
            entry = os.path.join(os.path.dirname(path), "%s.trust.json" % found.kid.hex())  # type: ignore[union-attr]
            try:
                with open(entry, "r", encoding="utf-8") as f:
                    found.issuer = str(json.load(f).get("issuer") or found.issuer)
            except (OSError, ValueError, AttributeError):
                pass  # the name is cosmetic; the key is what matters
        return found


# -- rendering -------------------------------------------------------------------------------
def qr(payload: bytes):
    """The QR code for a payload: byte mode, error correction M, the smallest version that fits."""
    return segno.make(payload, error="m", boost_error=False, micro=False)


def to_png(payload: bytes, path: str, scale: int = 8, border: int = 4) -> str:
    qr(payload).save(path, kind="png", scale=scale, border=border)
    return path


def to_terminal(payload: bytes, out=None) -> None:
    qr(payload).terminal(out=out or sys.stdout, compact=True)


def to_svg_data_uri(payload: bytes, scale: int = 8) -> str:
    return qr(payload).svg_data_uri(scale=scale, border=4)


def qr_sizes(payer_len: int = 8, amount: bool = True) -> list:
    """The QR version each algorithm and encoding reaches at level M, measured with segno."""
    import base64
    rows = []
    for alg in (fmt.ALG_ED25519, fmt.ALG_ES256):
        tok = Issuer.generate(alg).mint(payer=b"\x07" * payer_len, amount_cap=1250 if amount else None,
                                        currency="USD" if amount else None)
        for enc, data in (("binary (byte mode)", tok), ("base45 SB1: (alphanumeric)", fmt.to_text(tok).decode()),
                          ("base64url (byte mode)", base64.urlsafe_b64encode(tok).rstrip(b"=").decode())):
            q = segno.make(data, error="m", boost_error=False, micro=False)
            rows.append({"alg": fmt.ALG_NAMES[alg], "encoding": enc, "chars": len(data),
                         "version": q.version, "modules": q.symbol_size(border=0)[0], "mode": q.mode})
    return rows


# -- the demo's codes ------------------------------------------------------------------------
@dataclass
class DemoSet:
    payloads: list  # [(label, payload bytes)]
    trust_store: TrustStore
    expected: list  # the reason the bridge should give for each payload, in order
    issuer: Issuer


def online_code(wallet: str = "alipay", rng: "random.Random | None" = None) -> bytes:
    """An Alipay-style (25-30...) or WeChat-style (10-15...) 18-digit online payment code."""
    rng = rng or random.Random()
    first = rng.randint(25, 30) if wallet == "alipay" else rng.randint(10, 15)
    return b"%02d%016d" % (first, rng.randrange(10 ** 16))


def demo_payloads(count: int = 12, *, now: Optional[float] = None, lifetime: int = 600,
                  alg: str = "ed25519", seed: Optional[int] = None) -> DemoSet:
    """Codes for `scanbridge demo`: good codes among one of each kind of trouble, and the trust
    store that trusts the demo issuer. Labels and expected reasons:
    good/ok, online/online_verification (pending), expired/expired, forged/bad_signature (an
    impostor's key under the trusted kid), tampered/bad_signature (one bit flipped),
    replayed/replayed (the first good code again; it comes last so the scanner's 3 s same-code
    suppression has passed). Every kind appears once `count` >= 9 (smaller counts are raised)."""
    rng = random.Random(seed)
    now = time.time() if now is None else now
    issuer = Issuer.generate(alg, "Demo Wallet")
    impostor = Issuer(signing.generate_private_key(issuer.alg), "Impostor", kid=issuer.kid)
    store = TrustStore([issuer.trusted_key(now - 86400, now + 365 * 86400)])
    count = max(9, count)

    def good(i):
        return issuer.mint(payer=b"payer%03d" % (i % 1000), lifetime=lifetime, issued_at=int(now),
                           amount_cap=5000 if i % 2 else None, currency="USD" if i % 2 else None)
    specials = {1: "online", 3: "expired", 5: "forged", 7: "tampered", 9: "online"}
    out, expected = [], []
    first = good(0)
    online_n = 0
    for i in range(count - 1):
        kind = specials.get(i % 12, "good") if i else "good"
        if i == 0:
            payload = first
        elif kind == "online":
            payload = online_code("alipay" if online_n % 2 == 0 else "wechat", rng)
            online_n += 1
            kind = "online"
        elif kind == "expired":
            payload = issuer.mint(payer=b"late", lifetime=60, issued_at=int(now) - 3600)
        elif kind == "forged":
            payload = impostor.mint(payer=b"thief", lifetime=lifetime, issued_at=int(now))
        elif kind == "tampered":
            raw = bytearray(good(i))  # flip one bit of the payer handle: still well-formed
            raw[fmt._HEAD.size + rng.randrange(8)] ^= 1 << rng.randrange(8)
            payload = bytes(raw)
        else:
            payload = good(i)
        out.append((kind, payload))
        expected.append({"good": "ok", "online": "online_verification", "expired": "expired",
                         "forged": "bad_signature", "tampered": "bad_signature"}[kind])
    out.append(("replayed", first))
    expected.append("replayed")
    return DemoSet(out, store, expected, issuer)


# -- the wallet page -------------------------------------------------------------------------
def _page_html(every_s: float) -> bytes:
    path = os.path.join(os.path.dirname(__file__), "mint_page.html")
    with open(path, "r", encoding="utf-8") as f:
        return f.read().replace("{{EVERY_MS}}", str(int(every_s * 1000))).encode("utf-8")


def make_wallet_server(issuer: Issuer, *, port: int = 0, every_s: float = 30.0, lifetime: int = 60,
                       payer: bytes = b"", amount_cap: Optional[int] = None, currency: Optional[str] = None):
    """An HTTP server on 127.0.0.1 only: "/" is the wallet page, "/next" mints a fresh code."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status, ctype, body: bytes):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path in ("/", "/index.html"):
                return self._send(200, "text/html; charset=utf-8", _page_html(every_s))
            if self.path.split("?")[0] == "/next":
                tok = issuer.mint(payer=payer, lifetime=lifetime, amount_cap=amount_cap, currency=currency)
                t = fmt.parse(tok)
                body = json.dumps({"token_hex": tok.hex(), "svg": to_svg_data_uri(tok),
                                   "expires_at": t.expires_at, "kid": t.kid_hex,
                                   "qr_version": qr(tok).version, "issuer": issuer.issuer}).encode()
                return self._send(200, "application/json", body)
            return self._send(404, "text/plain", b"not found")

        def log_message(self, format, *args):  # quiet: tokens are bearer codes, not for logs
            pass

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


# -- CLI -------------------------------------------------------------------------------------
def _amount(text: Optional[str]) -> Optional[int]:
    if text is None:
        return None
    units, _, frac = text.partition(".")
    return int(units) * 100 + int((frac + "00")[:2])


def _payer(text: str) -> bytes:
    if text.startswith("hex:"):
        return bytes.fromhex(text[4:])
    return text.encode("utf-8")


def add_arguments(parser):
    sub = parser.add_subparsers(dest="action", required=True)
    k = sub.add_parser("keygen", help="new issuer key: private PEM (0600) + public trust entry")
    k.add_argument("--alg", choices=("ed25519", "p256"), default="ed25519")
    k.add_argument("--dir", default=".", help="where to write <kid>.key.pem and <kid>.trust.json")
    k.add_argument("--issuer", default="Demo Wallet")
    k.add_argument("--valid-days", type=float, default=365.0, help="validity window of the public entry")
    for name, hlp in (("token", "mint one code"), ("serve", "local wallet page with a fresh code every N s")):
        t = sub.add_parser(name, help=hlp)
        t.add_argument("--key", required=True, help="issuer private key PEM (from keygen)")
        t.add_argument("--payer", default="demo", help="payer handle (text, or hex:...)")
        t.add_argument("--amount", help="amount cap, e.g. 12.50")
        t.add_argument("--currency", default="USD")
        t.add_argument("--lifetime", type=int, default=DEFAULT_LIFETIME_S, help="seconds")
        if name == "token":
            t.add_argument("--issued-at", type=int, help="unix seconds (default now)")
            t.add_argument("--png", help="write the QR code to this PNG file")
            t.add_argument("--terminal", action="store_true", help="draw the QR code in the terminal")
            t.add_argument("--raw", help="write the binary token to this file")
            t.add_argument("--text", action="store_true", help="use the base45 text form (SB1:...)")
        else:
            t.add_argument("--port", type=int, default=8765)
            t.add_argument("--every", type=float, default=30.0, help="seconds between fresh codes")
    sub.add_parser("sizes", help="QR version reached by each algorithm and encoding (level M)")


def main(args) -> int:
    if args.action == "keygen":
        issuer = Issuer.generate(args.alg, args.issuer)
        os.makedirs(args.dir, exist_ok=True)
        key_path = os.path.join(args.dir, "%s.key.pem" % issuer.kid.hex())  # type: ignore[union-attr]
        pub_path = os.path.join(args.dir, "%s.trust.json" % issuer.kid.hex())  # type: ignore[union-attr]
        issuer.save(key_path)
        now = time.time()
        with open(pub_path, "w", encoding="utf-8") as f:
            json.dump(issuer.trust_entry(now - 300, now + args.valid_days * 86400), f, indent=2)
            f.write("\n")
        print(json.dumps({"kid": issuer.kid.hex(), "alg": fmt.ALG_NAMES[issuer.alg],  # type: ignore[union-attr]
                          "private_key": key_path, "trust_entry": pub_path}))
        print("keep %s on the wallet side; give the merchant %s (scanbridge trust add %s)"
              % (key_path, pub_path, pub_path), file=sys.stderr)
        return 0
    if args.action == "sizes":
        rows = qr_sizes()
        for r in rows:
            print("%-8s %-28s %4d chars  version %2d (%dx%d)" % (r["alg"], r["encoding"], r["chars"],
                                                                 r["version"], r["modules"], r["modules"]))
        return 0
    issuer = Issuer.load(args.key)
    amount = _amount(args.amount)
    currency = args.currency if amount is not None else None
    if args.action == "serve":
        server = make_wallet_server(issuer, port=args.port, every_s=args.every, lifetime=args.lifetime,
                                    payer=_payer(args.payer), amount_cap=amount, currency=currency)
        print("wallet page: http://127.0.0.1:%d/ (a fresh code every %g s; Ctrl-C stops)"
              % (server.server_address[1], args.every), file=sys.stderr, flush=True)
        try:
            server.serve_forever()
        finally:
            server.server_close()
        return 0
    tok = issuer.mint(payer=_payer(args.payer), lifetime=args.lifetime, amount_cap=amount,
                      currency=currency, issued_at=args.issued_at)
    payload = fmt.to_text(tok) if args.text else tok
    if args.png:
        to_png(payload, args.png)
    if args.raw:
        with open(args.raw, "wb") as f:
            f.write(payload)
    if args.terminal:
        to_terminal(payload)
    info = fmt.parse(tok).summary()
    info.update(token_hex=tok.hex(), qr_version=qr(payload).version, png=args.png)
    print(json.dumps(info))
    return 0
