"""``--model org/name``: read a model's config.json and safetensors headers from a Hugging Face endpoint.

Only the standard library's ``urllib`` is used (no dependency on ``huggingface_hub``). Files are fetched from
``{endpoint}/{repo}/resolve/{revision}/{file}``, the endpoint being ``HF_ENDPOINT`` or https://huggingface.co and
the token ``HF_TOKEN`` when not given. Weights are never downloaded: for each safetensors shard two HTTP Range
requests fetch the 8-byte header length and then the JSON header, and nothing else is read from the response.
``HF_HUB_OFFLINE=1`` refuses the network outright.

Every wait is bounded. One request (connecting, the answer's headers and its body) has ``timeout`` seconds in all
(default 10), and one lookup (config.json, the index and every shard header of a model) has
``$LLMSIZER_HUB_TIMEOUT`` seconds in all (default 30): a server that trickles a byte every few seconds is cut off
at the deadline, not after every byte. The network runs in worker threads while the calling thread waits, so
Ctrl-C stops a lookup at once, and at a deadline or an interrupt every connection of the lookup is shut down.
Only http and https are spoken (a redirect elsewhere, or a redirect loop, is one line); ``HF_ENDPOINT``, the token
and ``LLMSIZER_HUB_TIMEOUT`` are checked before anything is sent, and a bad one is an error naming the variable.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

from llmsizer import __version__
from llmsizer.catalog.modelfiles import (
    LoadedModel,
    model_from_config,
    parse_config_bytes,
)
from llmsizer.catalog.modelfiles._common import MAX_CONFIG_BYTES
from llmsizer.catalog.modelfiles.safetensors_header import (
    SafetensorsHeader,
    header_length,
    parse_header,
)
from llmsizer.errors import LlmsizerError
from llmsizer.explain import Message, message

T = TypeVar("T")

DEFAULT_ENDPOINT = "https://huggingface.co"
#: seconds for one whole lookup (every request of one ``--model org/name``), unless $LLMSIZER_HUB_TIMEOUT says
DEFAULT_LOOKUP_S = 30.0
TIMEOUT_ENV = "LLMSIZER_HUB_TIMEOUT"
#: safetensors index files are a few MB at most (DeepSeek-V3: ~9 MB with 91k tensors; Kimi K2: ~14 MB).
_MAX_INDEX_BYTES = 24_000_000
#: shards of one checkpoint (the largest published ones have a few hundred) and their headers' bytes in all
_MAX_SHARDS = 10_000
_MAX_HEADER_BYTES_TOTAL = 128_000_000
_WORKERS = 8
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*/[A-Za-z0-9][A-Za-z0-9._\-]*$")
_TOKEN = re.compile(r"[\x21-\x7e]{1,4096}")  # printable ASCII, no spaces: what an HTTP header can carry
_SHARD = re.compile(r"[^\x00-\x1f\x7f\\]{1,512}")


class HubError(LlmsizerError):
    """The Hub could not be reached, refused access, or has no such file. ``str(e)`` is one line; exit code 2."""


class _NotFound(HubError):
    pass


def is_repo_id(text: str) -> bool:
    """``org/name`` as the Hub spells repository ids (a local path that exists should be tried first)."""
    return bool(_REPO_ID.match(text)) and ".." not in text


def _shown(value: str) -> str:
    return repr(value) if len(value) <= 60 else repr(value[:50] + "...")


def _endpoint(endpoint: str | None) -> str:
    """The endpoint URL without a trailing slash; a ``HubError`` naming ``HF_ENDPOINT`` (or the argument) when
    it is not an http(s) URL with a host."""
    name = "endpoint" if endpoint else "HF_ENDPOINT"
    value = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).strip().rstrip("/")
    try:
        parts = urllib.parse.urlsplit(value)
        ok = (parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.query and not parts.fragment
              and len(value) <= 2048 and not re.search(r"[\x00-\x20\x7f]", value))
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in 0..65535
    except ValueError:
        ok = False
    if not ok:
        raise HubError(f"{name} {_shown(value)} is not an http(s) URL with a host; set it to e.g. "
                       f"{DEFAULT_ENDPOINT} or a mirror such as https://hf-mirror.com")
    return value


def _token(token: str | None) -> str | None:
    """The token to send: ``token``, else ``HF_TOKEN``, else ``HUGGING_FACE_HUB_TOKEN``; a ``HubError`` naming
    where it came from when it cannot be sent in an HTTP header (it is never printed)."""
    for name, value in (("token", token), ("HF_TOKEN", os.environ.get("HF_TOKEN")),
                        ("HUGGING_FACE_HUB_TOKEN", os.environ.get("HUGGING_FACE_HUB_TOKEN"))):
        if value:
            if not _TOKEN.fullmatch(value):
                raise HubError(f"{name} is not a usable token: it must be printable ASCII without spaces or line "
                               "breaks (Hugging Face tokens look like hf_...); fix or unset it")
            return value
    return None


def lookup_seconds(deadline: float | None = None) -> float:
    """Seconds one lookup may take: ``deadline``, else ``$LLMSIZER_HUB_TIMEOUT``, else 30."""
    if deadline is not None:
        seconds, name = deadline, "deadline"
    else:
        text = os.environ.get(TIMEOUT_ENV, "").strip()
        if not text:
            return DEFAULT_LOOKUP_S
        name = TIMEOUT_ENV
        try:
            seconds = float(text) if len(text) <= 40 else math.nan
        except ValueError:
            seconds = math.nan
    if not 0 < seconds <= 86400:
        raise HubError(f"{name} must be a number of seconds between 0 and 86400 (a day), e.g. 30; "
                       f"got {_shown(str(seconds) if name == 'deadline' else text)}")
    return float(seconds)


def _url(endpoint: str, repo_id: str, revision: str, filename: str) -> str:
    quote = urllib.parse.quote
    return f"{endpoint}/{repo_id}/resolve/{quote(revision, safe='')}/{quote(filename)}"


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


# ---------------------------------------------------------------------------------------------- the files


class _Hub:
    """One lookup's settings, checked once: endpoint, token, per-request timeout and the lookup's deadline."""

    def __init__(self, endpoint: str | None, token: str | None, timeout: float, deadline: float | None) -> None:
        self.endpoint = _endpoint(endpoint)
        self.token = _token(token)
        self.timeout = timeout
        self.lookup = _Lookup(lookup_seconds(deadline))

    def get(self, repo_id: str, revision: str, name: str, *, limit: int,
            byte_range: tuple[int, int] | None = None) -> bytes:
        return _get(_url(self.endpoint, repo_id, revision, name), token=self.token, lookup=self.lookup,
                    timeout=self.timeout, limit=limit, byte_range=byte_range, what=f"{repo_id}/{name}")

    def config(self, repo_id: str, revision: str) -> dict[str, Any]:
        where = f"{repo_id}/config.json"
        raw = self.get(repo_id, revision, "config.json", limit=MAX_CONFIG_BYTES + 1)
        try:
            return parse_config_bytes(raw, where)
        except RecursionError:
            raise HubError(f"{where}: nested too deeply to be a config.json") from None

    def headers(self, repo_id: str, revision: str) -> tuple[list[SafetensorsHeader], int | None]:
        total: int | None = None
        index_name = "model.safetensors.index.json"
        try:
            raw = self.get(repo_id, revision, index_name, limit=_MAX_INDEX_BYTES + 1)
        except _NotFound:
            files = ["model.safetensors"]
        else:
            files, total = _index_files(raw, f"{repo_id}/{index_name}")
        budget = _Budget(_MAX_HEADER_BYTES_TOTAL)

        def header(name: str) -> SafetensorsHeader:
            where = f"{repo_id}/{name}"
            n = header_length(self.get(repo_id, revision, name, limit=8, byte_range=(0, 7)), where, None)
            budget.take(n, where)
            raw = self.get(repo_id, revision, name, limit=n, byte_range=(8, 8 + n - 1))
            if len(raw) < n:
                raise HubError(f"{where}: the header was cut short ({len(raw)} of {n} bytes)")
            return parse_header(raw, where)

        try:
            headers = _each(header, files)
        except _NotFound:
            if files == ["model.safetensors"]:
                return [], None
            raise
        return headers, total


def _index_files(raw: bytes, where: str) -> tuple[list[str], int | None]:
    """The shard names of a safetensors index (each a relative path inside the repo) and its ``total_size``."""
    if len(raw) > _MAX_INDEX_BYTES:
        raise HubError(f"{where}: over {_MAX_INDEX_BYTES // 1_000_000} MB: too large for a safetensors index")
    try:
        index = json.loads(raw.decode("utf-8"))
        names = set(index["weight_map"].values())
        total = index.get("metadata", {}).get("total_size")
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, AttributeError, TypeError, ValueError,
            RecursionError):
        raise HubError(f"{where}: not a safetensors index (no weight_map)") from None
    if len(names) > _MAX_SHARDS:
        raise HubError(f"{where}: names {len(names):,} shard files; more than the {_MAX_SHARDS:,} llmsizer reads")
    for name in names:
        if (not isinstance(name, str) or not _SHARD.fullmatch(name) or name.startswith("/")
                or ".." in name.split("/")):
            shown = _shown(name) if isinstance(name, str) else type(name).__name__
            raise HubError(f"{where}: weight_map names {shown}, which is not a file inside the repo")
    ok_total = isinstance(total, int) and not isinstance(total, bool) and 0 <= total < 2**63
    return sorted(names), total if ok_total else None


class _Budget:
    """Bytes the shard headers of one checkpoint may take together (a thread-safe countdown)."""

    def __init__(self, total: int) -> None:
        self.left = total
        self._lock = threading.Lock()

    def take(self, n: int, where: str) -> None:
        with self._lock:
            self.left -= n
            over = self.left < 0
        if over:
            raise HubError(f"{where}: the shard headers add up to over {_MAX_HEADER_BYTES_TOTAL // 1_000_000} MB; "
                           "more than llmsizer reads for one model")


def _each(fn: Callable[[str], T], items: list[str]) -> list[T]:
    """``[fn(x) for x in items]`` on up to 8 daemon threads (never waited for at exit); the first error in
    ``items``' order is raised once all are done (the requests' deadlines bound how long that takes)."""
    if len(items) == 1:
        return [fn(items[0])]
    results: list[Any] = [None] * len(items)
    errors: list[BaseException | None] = [None] * len(items)
    position = iter(range(len(items)))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                i = next(position, None)
            if i is None:
                return
            if any(errors):
                errors[i] = errors[next(j for j, e in enumerate(errors) if e is not None)]
                continue
            try:
                results[i] = fn(items[i])
            except BaseException as e:  # noqa: BLE001 - raised below, in order
                errors[i] = e

    threads = [threading.Thread(target=worker, name="llmsizer-hub-shard", daemon=True)
               for _ in range(min(_WORKERS, len(items)))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first = next((e for e in errors if e is not None), None)
    if first is not None:
        raise first
    return results


# ---------------------------------------------------------------------------------------------- the API


def fetch_config(
    repo_id: str,
    endpoint: str | None = None,
    token: str | None = None,
    timeout: float = 10.0,
    revision: str = "main",
    *,
    deadline: float | None = None,
) -> dict[str, Any]:
    """The parsed config.json of ``repo_id`` (``org/name``). ``timeout``: seconds for the request, ``deadline``:
    for the lookup (default ``$LLMSIZER_HUB_TIMEOUT`` or 30)."""
    if not is_repo_id(repo_id):
        raise HubError(f"{repo_id!r} is not a Hub repo id (expected org/name)")
    hub = _Hub(endpoint, token, timeout, deadline)
    return hub.lookup.run(lambda: hub.config(repo_id, revision), f"{repo_id}/config.json")


def fetch_safetensors_headers(
    repo_id: str,
    endpoint: str | None = None,
    token: str | None = None,
    timeout: float = 10.0,
    revision: str = "main",
    *,
    deadline: float | None = None,
) -> tuple[list[SafetensorsHeader], int | None]:
    """The safetensors headers of every shard (index first, else ``model.safetensors``), and the index's
    ``total_size``. Two Range requests per shard; ``([], None)`` when the repo has no safetensors weights."""
    hub = _Hub(endpoint, token, timeout, deadline)
    return hub.lookup.run(lambda: hub.headers(repo_id, revision), f"{repo_id} safetensors headers")


def load_hub_model(
    repo_id: str,
    endpoint: str | None = None,
    token: str | None = None,
    timeout: float = 10.0,
    revision: str = "main",
    read_headers: bool = True,
    *,
    deadline: float | None = None,
) -> LoadedModel:
    """A ``LoadedModel`` for ``org/name``: the config's architecture plus exact counts from the shard headers.

    A failure to read the headers (none published, a timeout) only costs the exact count, with a note; a failure
    to read config.json is a ``HubError``. ``timeout`` bounds each request, ``deadline`` the whole lookup
    (default ``$LLMSIZER_HUB_TIMEOUT`` or 30 s).
    """
    if not is_repo_id(repo_id):
        raise HubError(f"{repo_id!r} is not a Hub repo id (expected org/name)")
    hub = _Hub(endpoint, token, timeout, deadline)
    config = hub.lookup.run(lambda: hub.config(repo_id, revision), f"{repo_id}/config.json")
    notes: list[Message] = [message("file.hub_fetched", repo_id=repo_id, endpoint=hub.endpoint, revision=revision)]
    headers: list[SafetensorsHeader] = []
    total: int | None = None
    if read_headers:
        try:
            headers, total = hub.lookup.run(lambda: hub.headers(repo_id, revision),
                                            f"{repo_id} safetensors headers")
        except LlmsizerError as e:
            notes.append(message("file.hub_headers_failed", error=str(e)))
        else:
            if not headers:
                notes.append(message("file.hub_no_safetensors"))
    return model_from_config(config, f"{repo_id}/config.json", name=repo_id.split("/")[-1], source=repo_id,
                             headers=headers or None, weight_bytes=total if not headers else None, notes=notes)
