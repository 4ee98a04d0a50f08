"""``--model org/name``: read a model's config.json and safetensors headers from a Hugging Face endpoint.

Only the standard library's ``urllib`` is used (no dependency on ``huggingface_hub``). Files are fetched from
``{endpoint}/{repo}/resolve/{revision}/{file}``, the endpoint being ``HF_ENDPOINT`` or https://huggingface.co and
the token ``HF_TOKEN`` when not given. Weights are never downloaded: for each safetensors shard two HTTP Range
requests fetch the 8-byte header length and then the JSON header, and nothing else is read from the response.
``HF_HUB_OFFLINE=1`` refuses the network outright.
"""

from __future__ import annotations

import json
import os
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from llmsizer import __version__
from llmsizer.errors import LlmsizerError
from llmsizer.catalog.modelfiles import LoadedModel, model_from_config, parse_config_bytes
from llmsizer.catalog.modelfiles._common import MAX_CONFIG_BYTES
from llmsizer.catalog.modelfiles.safetensors_header import SafetensorsHeader, header_length, parse_header
from llmsizer.explain import Message, message

DEFAULT_ENDPOINT = "https://huggingface.co"
#: safetensors index files are a few MB at most (DeepSeek-V3: ~9 MB with 91k tensors).
_MAX_INDEX_BYTES = 64_000_000
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*/[A-Za-z0-9][A-Za-z0-9._\-]*$")


class HubError(LlmsizerError):
    """The Hub could not be reached, refused access, or has no such file. ``str(e)`` is one line; exit code 2."""


class _NotFound(HubError):
    pass


def is_repo_id(text: str) -> bool:
    """``org/name`` as the Hub spells repository ids (a local path that exists should be tried first)."""
    return bool(_REPO_ID.match(text)) and ".." not in text


def _endpoint(endpoint: str | None) -> str:
    return (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def _token(token: str | None) -> str | None:
    return token or os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN") or None


def _url(endpoint: str, repo_id: str, revision: str, filename: str) -> str:
    quote = urllib.parse.quote
    return f"{endpoint}/{repo_id}/resolve/{quote(revision, safe='')}/{quote(filename)}"


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follow redirects (the Hub sends weight files to a CDN) keeping Range, but never forward the token to
    another host: a presigned CDN URL carries its own credentials and may reject a second one."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc:
            new.remove_header("Authorization")
        return new


_OPENER = urllib.request.build_opener(_RedirectHandler)


def _get(url: str, *, token: str | None, timeout: float, limit: int, byte_range: tuple[int, int] | None = None,
         what: str) -> bytes:
    """GET ``url`` and return at most ``limit`` bytes of the body (a Range request when ``byte_range``)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        raise HubError(f"{what}: HF_HUB_OFFLINE is set, so the Hub is not contacted; use a local file with --model")
    headers = {"User-Agent": f"llmsizer/{__version__}", "Accept-Encoding": "identity"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if byte_range is not None:
        headers["Range"] = f"bytes={byte_range[0]}-{byte_range[1]}"
    request = urllib.request.Request(url, headers=headers)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            if byte_range is not None and response.status == 200 and byte_range[0] > 0:
                # a server that ignores Range sends the file from byte 0: skip to the range, reading no further
                response.read(byte_range[0])
            return response.read(limit)
    except urllib.error.HTTPError as e:
        if e.code == 404:
            raise _NotFound(f"{what}: not found (HTTP 404 from {url}); check the repo id and revision") from None
        if e.code in (401, 403):
            raise HubError(f"{what}: access denied (HTTP {e.code}); a gated or private repo needs a token: "
                           "accept its licence on the Hub and set HF_TOKEN") from None
        raise HubError(f"{what}: HTTP {e.code} {e.reason} from {url}") from None
    except urllib.error.URLError as e:
        reason = e.reason if not isinstance(e.reason, OSError) else (e.reason.strerror or e.reason)
        if isinstance(e.reason, (TimeoutError, socket.timeout)):
            reason = f"timed out after {timeout:g} s"
        raise HubError(f"{what}: cannot reach {url.split('/')[2]} ({reason}); offline? pass a local config.json "
                       "to --model, or set HF_ENDPOINT to a mirror") from None
    except TimeoutError:
        raise HubError(f"{what}: no answer from {url.split('/')[2]} within {timeout:g} s; offline? pass a local "
                       "config.json to --model") from None
    except OSError as e:
        raise HubError(f"{what}: network error ({e.strerror or e})") from None


def fetch_config(
    repo_id: str,
    endpoint: str | None = None,
    token: str | None = None,
    timeout: float = 10.0,
    revision: str = "main",
) -> dict[str, Any]:
    """The parsed config.json of ``repo_id`` (``org/name``)."""
    if not is_repo_id(repo_id):
        raise HubError(f"{repo_id!r} is not a Hub repo id (expected org/name)")
    ep = _endpoint(endpoint)
    where = f"{repo_id}/config.json"
    raw = _get(_url(ep, repo_id, revision, "config.json"), token=_token(token), timeout=timeout,
               limit=MAX_CONFIG_BYTES + 1, what=where)
    return parse_config_bytes(raw, where)


def fetch_safetensors_headers(
    repo_id: str,
    endpoint: str | None = None,
    token: str | None = None,
    timeout: float = 10.0,
    revision: str = "main",
) -> tuple[list[SafetensorsHeader], int | None]:
    """The safetensors headers of every shard (index first, else ``model.safetensors``), and the index's
    ``total_size``. Two Range requests per shard; ``([], None)`` when the repo has no safetensors weights."""
    ep, tok = _endpoint(endpoint), _token(token)
    files: list[str]
    total: int | None = None
    index_name = "model.safetensors.index.json"
    try:
        raw = _get(_url(ep, repo_id, revision, index_name), token=tok, timeout=timeout, limit=_MAX_INDEX_BYTES,
                   what=f"{repo_id}/{index_name}")
    except _NotFound:
        files = ["model.safetensors"]
    else:
        try:
            index = json.loads(raw.decode("utf-8"))
            files = sorted(set(index["weight_map"].values()))
            total = index.get("metadata", {}).get("total_size")
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, AttributeError, TypeError):
            raise HubError(f"{repo_id}/{index_name}: not a safetensors index (no weight_map)") from None

    def header(name: str) -> SafetensorsHeader:
        url, where = _url(ep, repo_id, revision, name), f"{repo_id}/{name}"
        n = header_length(_get(url, token=tok, timeout=timeout, limit=8, byte_range=(0, 7), what=where), where, None)
        raw = _get(url, token=tok, timeout=timeout, limit=n, byte_range=(8, 8 + n - 1), what=where)
        if len(raw) < n:
            raise HubError(f"{where}: the header was cut short ({len(raw)} of {n} bytes)")
        return parse_header(raw, where)

    try:
        with ThreadPoolExecutor(max_workers=min(8, len(files))) as pool:
            headers = list(pool.map(header, files))
    except _NotFound:
        if files == ["model.safetensors"]:
            return [], None
        raise
    return headers, total if isinstance(total, int) else None


def load_hub_model(
    repo_id: str,
    endpoint: str | None = None,
    token: str | None = None,
    timeout: float = 10.0,
    revision: str = "main",
    read_headers: bool = True,
) -> LoadedModel:
    """A ``LoadedModel`` for ``org/name``: the config's architecture plus exact counts from the shard headers.

    A failure to read the headers (none published, a timeout) only costs the exact count, with a note; a failure
    to read config.json is a ``HubError``.
    """
    config = fetch_config(repo_id, endpoint, token, timeout, revision)
    notes: list[Message] = [message("file.hub_fetched", repo_id=repo_id, endpoint=_endpoint(endpoint),
                                    revision=revision)]
    headers: list[SafetensorsHeader] = []
    total: int | None = None
    if read_headers:
        try:
            headers, total = fetch_safetensors_headers(repo_id, endpoint, token, timeout, revision)
        except LlmsizerError as e:
            notes.append(message("file.hub_headers_failed", error=str(e)))
        else:
            if not headers:
                notes.append(message("file.hub_no_safetensors"))
    return model_from_config(config, f"{repo_id}/config.json", name=repo_id.split("/")[-1], source=repo_id,
                             headers=headers or None, weight_bytes=total if not headers else None, notes=notes)
