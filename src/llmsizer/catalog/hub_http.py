"""The Hub's transport: one HTTP(S) request and one lookup, each under its own deadline, interruptible.

``hub.py`` says what to fetch; this module makes sure no fetch waits longer than it may: a request has ``timeout``
seconds from connecting to its last byte, a lookup (``_Lookup``) all of its requests' time, and at a deadline or
Ctrl-C every socket the lookup opened is shut down. Only http and https are followed (redirect loops are one line).
"""

from __future__ import annotations

import http.client
import os
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

from llmsizer import __version__
from llmsizer.errors import LlmsizerError

T = TypeVar("T")
TIMEOUT_ENV = "LLMSIZER_HUB_TIMEOUT"


class HubError(LlmsizerError):
    """The Hub could not be reached, refused access, or has no such file. ``str(e)`` is one line; exit code 2."""


class _NotFound(HubError):
    pass


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc or url


# ---------------------------------------------------------------------------------------------- deadlines


class _Lookup:
    """One lookup: its deadline and every connection it has open, so that the deadline (or Ctrl-C) can shut them
    all down, whichever thread is blocked reading them."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self.expired = False
        self._socks: set[socket.socket] = set()
        self._lock = threading.Lock()

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._socks.add(sock)
            expired = self.expired
        if expired:
            _shutdown(sock)

    def discard(self, socks: list[socket.socket]) -> None:
        with self._lock:
            self._socks.difference_update(socks)

    def expire(self) -> None:
        with self._lock:
            self.expired = True
            socks = list(self._socks)
        for s in socks:
            _shutdown(s)

    def run(self, fn: Callable[[], T], what: str) -> T:
        """``fn()`` in a worker thread while this thread waits (interruptibly) until the lookup's deadline."""
        box: dict[str, Any] = {}
        done = threading.Event()

        def work() -> None:
            try:
                box["value"] = fn()
            except BaseException as e:  # noqa: BLE001 - handed to the waiting thread, which raises it
                box["error"] = e
            finally:
                done.set()

        threading.Thread(target=work, name="llmsizer-hub", daemon=True).start()
        try:
            while not done.wait(max(0.0, min(self.end - time.monotonic(), 1.0))):
                if time.monotonic() >= self.end:
                    self.expire()
                    raise HubError(f"{what}: no complete answer within {self.seconds:g} s (the lookup's deadline, "
                                   f"${TIMEOUT_ENV}); offline or a slow mirror? pass a local config.json to --model")
        except BaseException:
            self.expire()  # Ctrl-C or the deadline: every connection of the lookup is closed now
            raise
        if "error" in box:
            raise box["error"]
        return box["value"]


def _shutdown(sock: socket.socket) -> None:
    """Wake a thread blocked on ``sock`` (shutdown, unlike close, does); the plain socket's own method, so that an
    SSL socket's state is left to the thread that uses it."""
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except (OSError, ValueError):
        pass


class _Request:
    """The sockets of one request (redirects included) and its own deadline, kept by a timer thread."""

    def __init__(self, lookup: _Lookup, seconds: float) -> None:
        self.lookup = lookup
        self.socks: list[socket.socket] = []
        self.timed_out = False
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self.socks.append(sock)
            late = self.timed_out
        self.lookup.add(sock)
        if late:
            _shutdown(sock)

    def _expire(self) -> None:
        with self._lock:
            self.timed_out = True
            socks = list(self.socks)
        for s in socks:
            _shutdown(s)

    def close(self) -> None:
        self._timer.cancel()
        self.lookup.discard(self.socks)


_current = threading.local()  # the _Request the current thread is making (its connections register there)


def _register(sock: socket.socket) -> None:
    request = getattr(_current, "request", None)
    if request is not None:
        request.add(sock)


class _Tracked:
    """A connection whose sockets register with the current request as soon as they exist."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        create = self._create_connection  # type: ignore[attr-defined]

        def create_connection(*a: Any, **k: Any) -> socket.socket:
            sock = create(*a, **k)
            _register(sock)
            return sock

        self._create_connection = create_connection


class _HTTPConnection(_Tracked, http.client.HTTPConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):  # type: ignore[no-untyped-def]
        return self.do_open(_HTTPConnection, req)


_handlers: list[Any] = [urllib.request.ProxyHandler(), urllib.request.UnknownHandler(), _HTTPHandler(),
                        urllib.request.HTTPDefaultErrorHandler(), urllib.request.HTTPErrorProcessor()]

if hasattr(http.client, "HTTPSConnection"):

    class _HTTPSConnection(_Tracked, http.client.HTTPSConnection):
        def connect(self) -> None:
            """TCP (registered), then the TLS socket registered *before* its handshake, which a trickling server
            could otherwise stretch without end."""
            http.client.HTTPConnection.connect(self)
            host = getattr(self, "_tunnel_host", None) or self.host
            self.sock = self._context.wrap_socket(self.sock, server_hostname=host,  # type: ignore[attr-defined]
                                                  do_handshake_on_connect=False)
            _register(self.sock)
            self.sock.do_handshake()

    class _HTTPSHandler(urllib.request.HTTPSHandler):
        def https_open(self, req):  # type: ignore[no-untyped-def]
            kwargs: dict[str, Any] = {"context": getattr(self, "_context", None)}
            if getattr(self, "_check_hostname", None) is not None:
                kwargs["check_hostname"] = self._check_hostname
            return self.do_open(_HTTPSConnection, req, **kwargs)

    _handlers.append(_HTTPSHandler())


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follow redirects (the Hub sends weight files to a CDN) keeping Range, but only to http(s), and never
    forward the token to another host: a presigned CDN URL carries its own credentials and may reject a second
    one."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        scheme = urllib.parse.urlsplit(urllib.parse.urljoin(req.full_url, newurl)).scheme
        if scheme not in ("http", "https"):
            raise HubError(f"{_host(req.full_url)} redirected to a {scheme or 'schemeless'} URL; only http and "
                           "https are followed")
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urllib.parse.urlsplit(new.full_url).netloc != urllib.parse.urlsplit(req.full_url).netloc:
            new.remove_header("Authorization")
        return new


_LOOP = " ".join(urllib.request.HTTPRedirectHandler.inf_msg.split())[:30]  # what urllib says of a loop

# no file://, ftp:// or data: handlers: an endpoint or a redirect can only make llmsizer speak http(s)
_OPENER = urllib.request.OpenerDirector()
for _h in (*_handlers, _RedirectHandler()):
    _OPENER.add_handler(_h)


def _read(response: Any, n: int, request: _Request) -> bytes:
    """At most ``n`` bytes of the body, chunk by chunk (so the request's deadline is checked between chunks)."""
    chunks: list[bytes] = []
    got = 0
    read = getattr(response, "read1", None) or response.read
    while got < n:
        chunk = read(min(1 << 16, n - got))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
        if request.timed_out or request.lookup.expired:
            raise TimeoutError
    return b"".join(chunks)


def _get(url: str, *, token: str | None, lookup: _Lookup, timeout: float, limit: int,
         byte_range: tuple[int, int] | None = None, what: str) -> bytes:
    """GET ``url`` and return at most ``limit`` bytes of the body (a Range request when ``byte_range``), within
    ``timeout`` seconds and the lookup's deadline."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        raise HubError(f"{what}: HF_HUB_OFFLINE is set, so the Hub is not contacted; use a local file with --model")
    left = lookup.end - time.monotonic()
    if lookup.expired or left <= 0:
        raise HubError(f"{what}: no time left of the lookup's {lookup.seconds:g} s (${TIMEOUT_ENV})")
    seconds = min(timeout, left)
    headers = {"User-Agent": f"llmsizer/{__version__}", "Accept-Encoding": "identity"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if byte_range is not None:
        headers["Range"] = f"bytes={byte_range[0]}-{byte_range[1]}"
    host = _host(url)
    request = _Request(lookup, seconds)
    _current.request = request
    try:
        with _OPENER.open(urllib.request.Request(url, headers=headers), timeout=seconds) as response:
            if byte_range is not None and response.status == 200 and byte_range[0] > 0:
                # a server that ignores Range sends the file from byte 0: skip to the range, reading no further
                _read(response, byte_range[0], request)
            return _read(response, limit, request)
    except HubError:
        raise
    except urllib.error.HTTPError as e:
        try:
            e.close()
        except Exception:  # noqa: BLE001 - closing what is left of the answer
            pass
        if request.timed_out or lookup.expired:
            raise _timed_out(what, host, seconds) from None
        if e.code == 404:
            raise _NotFound(f"{what}: not found (HTTP 404 from {url}); check the repo id and revision") from None
        if e.code in (401, 403):
            raise HubError(f"{what}: access denied (HTTP {e.code}); a gated or private repo needs a token: "
                           "accept its licence on the Hub and set HF_TOKEN") from None
        reason = " ".join(str(e.reason).split())
        if 300 <= e.code < 400 and "not allowed" in reason:
            raise HubError(f"{what}: {host} redirected to a URL that is not http(s); only http and https are "
                           "followed") from None
        if 300 <= e.code < 400 and _LOOP in reason:
            raise HubError(f"{what}: too many redirects from {host} (a redirect loop?)") from None
        reason = reason[:100]
        raise HubError(f"{what}: HTTP {e.code} {reason} from {url}") from None
    except Exception as e:  # noqa: BLE001 - the network's every failure is one line
        if request.timed_out or lookup.expired:
            raise _timed_out(what, host, seconds) from None
        raise _network_error(e, what, host, seconds) from None
    finally:
        _current.request = None
        request.close()


def _timed_out(what: str, host: str, seconds: float) -> HubError:
    return HubError(f"{what}: no complete answer from {host} within {seconds:g} s; offline or a slow mirror? pass a "
                    "local config.json to --model")


def _network_error(e: Exception, what: str, host: str, seconds: float) -> HubError:
    reason: Any = e.reason if isinstance(e, urllib.error.URLError) else e
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return _timed_out(what, host, seconds)
    if isinstance(reason, HubError):
        return reason
    if isinstance(reason, OSError):
        text = reason.strerror or str(reason) or type(reason).__name__
        return HubError(f"{what}: cannot reach {host} ({' '.join(text.split())[:100]}); offline? pass a local "
                        "config.json to --model, or set HF_ENDPOINT to a mirror")
    if isinstance(reason, http.client.HTTPException):
        return HubError(f"{what}: {host} sent an answer that is not valid HTTP ({type(reason).__name__})")
    text = " ".join(str(reason).split())[:100] or type(reason).__name__
    return HubError(f"{what}: network error talking to {host} ({text})")
