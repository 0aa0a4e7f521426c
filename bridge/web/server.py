"""The counter web page's server: static files, a small JSON API and Server-Sent Events.

Binds to 127.0.0.1 by default. Binding anywhere else needs a token, and then every request must
carry it (Authorization: Bearer, ?token= once to set a same-site cookie, or that cookie); without
a token only requests whose Host is the loopback address are served (DNS rebinding). State-changing
requests must be JSON (a cross-site form cannot send that without a CORS preflight we refuse)."""
from __future__ import annotations

import hmac
import ipaddress
import json
import mimetypes
import os
import queue
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional
from urllib.parse import parse_qs, urlsplit

from scanbridge.orders import OrderError

STATIC = os.path.join(os.path.dirname(__file__), "static")
COOKIE = "sb_counter"
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]", "::1")


class WebConfigError(ValueError):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def is_loopback(host: str) -> bool:
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class EventHub:
    """Fan-out of (kind, data) to every connected page; a slow page loses events, not the bridge."""

    def __init__(self, depth: int = 256):
        self.depth = depth
        self._subs: list[queue.Queue] = []
        self._lock = threading.Lock()

    def subscribe(self) -> queue.Queue:
        q: queue.Queue = queue.Queue(self.depth)
        with self._lock:
            self._subs.append(q)
        return q

    def unsubscribe(self, q: queue.Queue) -> None:
        with self._lock:
            if q in self._subs:
                self._subs.remove(q)

    def publish(self, kind: str, data) -> None:
        msg = "event: %s\ndata: %s\n\n" % (kind, json.dumps(data, default=str))
        with self._lock:
            subs = list(self._subs)
        for q in subs:
            try:
                q.put_nowait(msg)
            except queue.Full:  # the page reloads its state on reconnect; drop, do not block
                pass

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._subs)


class CounterWeb:
    def __init__(self, counter, registry=None, host: str = "127.0.0.1", port: int = 8080,
                 token: Optional[str] = None):
        if not is_loopback(host) and not token:
            raise WebConfigError("web_token_required",
                                 "the counter page binds to %s, reachable from other hosts: give a token "
                                 "(--web-token-file or $SCANBRIDGE_WEB_TOKEN)" % host)
        self.counter = counter
        self.registry = registry
        self._token = token
        self.hub = EventHub()
        counter.listeners.append(self.hub.publish)
        if registry is not None:
            registry.listeners.append(lambda d: self.hub.publish("scanner", d))
        self.httpd = ThreadingHTTPServer((host, port), self._handler())
        self.httpd.daemon_threads = True
        self.host, self.port = self.httpd.server_address[:2]
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        host = self.host if ":" not in self.host else "[%s]" % self.host
        return "http://%s:%d/" % (host, self.port)

    def start(self) -> "CounterWeb":
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="counter-web", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- the API, apart from HTTP
    def state(self, till: Optional[str] = None) -> dict:
        d = self.counter.snapshot(till)
        d["scanners"] = self.registry.snapshot() if self.registry is not None else []
        d["now"] = time.time()
        return d

    def _handler(self):
        web = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "scanbridge-counter/1"

            def log_message(self, *a):  # quiet: URLs may carry the token
                pass

            def _send(self, status, body: bytes, ctype="application/json", headers=None):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.send_header("X-Content-Type-Options", "nosniff")
                self.send_header("X-Frame-Options", "DENY")
                self.send_header("Referrer-Policy", "no-referrer")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _json(self, status, doc, headers=None):
                self._send(status, json.dumps(doc, default=str).encode("utf-8"), headers=headers)

            def _error(self, status, reason, message=""):
                self._json(status, {"error": reason, "message": message})

            def _authorized(self, query) -> tuple[bool, dict]:
                """(ok, headers to add). With a token: header, query or cookie must hold it."""
                if web._token is None:
                    host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
                    return host in _LOOPBACK_NAMES, {}
                given = None
                auth = self.headers.get("Authorization") or ""
                if auth.startswith("Bearer "):
                    given = auth[7:].strip()
                from_query = (query.get("token") or [None])[0]
                if given is None and from_query:
                    given = from_query
                if given is None:
                    for part in (self.headers.get("Cookie") or "").split(";"):
                        k, _, v = part.strip().partition("=")
                        if k == COOKIE:
                            given = v
                ok = given is not None and hmac.compare_digest(given.encode(), web._token.encode())
                extra = {}
                if ok and from_query:
                    extra["Set-Cookie"] = "%s=%s; HttpOnly; SameSite=Strict; Path=/" % (COOKIE, from_query)
                return ok, extra

            def _route(self):
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                ok, extra = self._authorized(query)
                if not ok:
                    self._error(401 if web._token else 421, "unauthorized" if web._token else "bad_host",
                                "token required" if web._token else "use http://127.0.0.1")
                    return None
                return parts.path, query, extra

            def do_GET(self):
                r = self._route()
                if r is None:
                    return
                path, query, extra = r
                if path == "/api/events":
                    return self._events()
                if path == "/api/state":
                    return self._json(200, web.state((query.get("till") or [None])[0]), extra)
                if path == "/api/scanners":
                    return self._json(200, web.registry.snapshot() if web.registry else [], extra)
                if path == "/":
                    path = "/index.html"
                name = os.path.normpath(path.lstrip("/"))
                full = os.path.join(STATIC, name)
                if name.startswith("..") or not os.path.isfile(full):
                    return self._error(404, "not_found", path)
                with open(full, "rb") as f:
                    data = f.read()
                ctype = mimetypes.guess_type(full)[0] or "application/octet-stream"
                if ctype.startswith("text/") or ctype.endswith("javascript"):
                    ctype += "; charset=utf-8"
                self._send(200, data, ctype, extra)

            do_HEAD = do_GET

            def do_POST(self):
                r = self._route()
                if r is None:
                    return
                path, query, extra = r
                n = int(self.headers.get("Content-Length") or 0)
                if n > 4096:
                    return self._error(413, "too_large")
                raw = self.rfile.read(n)
                if not (self.headers.get("Content-Type") or "").startswith("application/json"):
                    return self._error(415, "json_required", "send application/json")
                try:
                    doc = json.loads(raw or b"{}")
                except ValueError as e:
                    return self._error(400, "bad_json", str(e))
                seg = path.strip("/").split("/")
                try:
                    if seg == ["api", "orders"]:
                        order = web.counter.orders.create(doc.get("amount"), doc.get("currency") or "USD",
                                                          doc.get("reference") or None, doc.get("till") or None)
                        return self._json(201, order.to_dict(), extra)
                    if len(seg) == 4 and seg[:2] == ["api", "orders"] and seg[3] == "cancel":
                        return self._json(200, web.counter.orders.cancel(seg[2]).to_dict(), extra)
                    if len(seg) == 4 and seg[:2] == ["api", "outbox"] and seg[3] == "retry":
                        ok = web.counter.outbox.retry(int(seg[2]))
                        if ok and web.counter.deliverer is not None:
                            web.counter.deliverer.wake()
                        return self._json(200 if ok else 409, {"retried": ok}, extra)
                except OrderError as e:
                    return self._error(409 if e.reason in ("till_busy", "order_closed", "order_authorizing")
                                       else 400, e.reason, str(e))
                except ValueError as e:
                    return self._error(400, "bad_request", str(e))
                return self._error(404, "not_found", path)

            def _events(self):
                q = web.hub.subscribe()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Cache-Control", "no-store")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.close_connection = True
                    self.wfile.write(b"retry: 1000\nevent: hello\ndata: {}\n\n")
                    self.wfile.flush()
                    while not web._stop.is_set():
                        try:
                            msg = q.get(timeout=10)
                        except queue.Empty:
                            msg = ": keepalive\n\n"
                        self.wfile.write(msg.encode("utf-8"))
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError, OSError):
                    pass
                finally:
                    web.hub.unsubscribe(q)
        return Handler
