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

import json
import math
import os
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

from llmsizer.catalog.hub_http import (
    TIMEOUT_ENV,
    HubError,
    _get,
    _Lookup,
    _NotFound,
)
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
#: safetensors index files are a few MB at most (DeepSeek-V3: ~9 MB with 91k tensors; Kimi K2: ~14 MB).
_MAX_INDEX_BYTES = 24_000_000
#: shards of one checkpoint (the largest published ones have a few hundred) and their headers' bytes in all
_MAX_SHARDS = 10_000
_MAX_HEADER_BYTES_TOTAL = 128_000_000
_WORKERS = 8
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*/[A-Za-z0-9][A-Za-z0-9._\-]*$")
_TOKEN = re.compile(r"[\x21-\x7e]{1,4096}")  # printable ASCII, no spaces: what an HTTP header can carry
_SHARD = re.compile(r"[^\x00-\x1f\x7f\\]{1,512}")


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
