"""Read the packaged YAML catalogs (and user catalogs), validate them, index by id/alias, suggest near misses.

Nothing is read at import time: every loader is called lazily and cached. Flow: YAML -> ``specs`` models.
A user catalog (``--catalog FILE``, or every ``*.yaml`` in the user config folder) has the same schema as
``data/gpus.yaml`` / ``data/models.yaml`` / ``data/instances.yaml`` (any of the keys ``gpus``, ``models``,
``instances``) and adds entries or overrides packaged ones with the same id.

A user catalog is untrusted input: ``read_yaml`` bounds its size and alias expansion, and every string in an
entry is checked against ``MAX_NAME_CHARS`` (ids, names, aliases...) or ``MAX_TEXT_CHARS`` (sources, notes)
before anything is validated, indexed or put into a message; messages quote an entry by its id only when that
is a short string (else by its position, ``models[3]``).
"""

from __future__ import annotations

import os
import re
import stat
import zlib
from pathlib import Path
from typing import Any

from llmsizer.data import data_dir, display_name, read_yaml
from llmsizer.data.cache import cached
from llmsizer.errors import CatalogError, UnknownNameError, printable
from llmsizer.explain import Message, message
from llmsizer.record import field, record
from llmsizer.specs import CloudInstance, GpuSpec, ModelSpec

#: Characters of an id, alias, name or other short label in a catalog (the packaged ones: under 100).
MAX_NAME_CHARS = 200
#: Characters of any other text in a catalog entry: a source, notes (the packaged ones: under 500).
MAX_TEXT_CHARS = 4_000
#: Fields whose values are labels (``MAX_NAME_CHARS``); every other string is text (``MAX_TEXT_CHARS``).
_NAME_FIELDS = frozenset({"id", "aliases", "name", "family", "instance", "provider", "gpu", "region", "form_factor",
                          "scaleup", "activation", "norm"})


def _long_strings(item: Any, path: str = "") -> list[tuple[str, int, int]]:
    """(field path, length, limit) of every string in ``item`` longer than its limit; iterative, bounded by the
    entry's size (``read_yaml`` already capped the file's nodes)."""
    found: list[tuple[str, int, int]] = []
    stack: list[tuple[str, str, Any]] = [(path, "", item)]
    while stack:
        where, name, v = stack.pop()
        if isinstance(v, str):
            limit = MAX_NAME_CHARS if name in _NAME_FIELDS else MAX_TEXT_CHARS
            if len(v) > limit:
                found.append((where, len(v), limit))
        elif isinstance(v, dict):
            for k, x in v.items():
                if isinstance(k, str) and len(k) > MAX_NAME_CHARS:
                    found.append((f"{where}.(a key)".lstrip("."), len(k), MAX_NAME_CHARS))
                    continue
                key = str(k) if isinstance(k, (str, int, float, bool)) else "(a key)"
                stack.append((f"{where}.{key}".lstrip("."), key, x))
        elif isinstance(v, (list, tuple)):
            stack.extend((f"{where}[{i}]", name, x) for i, x in enumerate(v))
    return found


def _label(item: Any, key: str, i: int) -> str:
    """How an entry is named in messages: its id (or instance) when that is a short string, else ``key[i]``."""
    if isinstance(item, dict):
        for k in ("id", "instance"):
            v = item.get(k)
            if isinstance(v, str) and v and len(v) <= MAX_NAME_CHARS:
                return printable(v)
    return f"{key}[{i}]"


def user_config_dir() -> Path:
    """``$LLMSIZER_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/llmsizer``, else ``~/.config/llmsizer``."""
    if os.environ.get("LLMSIZER_CONFIG_DIR"):
        return Path(os.environ["LLMSIZER_CONFIG_DIR"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "llmsizer"


def _validate_entries(path: Path, raw: Any, key: str, model: type) -> tuple[list[Any], list[str]]:
    """Validate every entry of ``raw[key]``; return the good ones and *every* problem as one line each."""
    from llmsizer.data.validation import message, validate, validation_error

    shown = display_name(path)
    items = raw.get(key) if isinstance(raw, dict) else None
    if items is None:
        return [], []
    if not isinstance(items, list):
        return [], [f"{shown}: '{key}' must be a list of entries"]
    good, problems = [], []
    for i, item in enumerate(items):
        label = _label(item, key, i)
        if not isinstance(item, dict):
            problems.append(f"{shown}: {label}: each entry must be a mapping")
            continue
        long = _long_strings(item)
        if long:
            problems += [f"{shown}: {label}.{printable(where)}: {n:,} characters is too long (at most {limit:,})"
                         for where, n, limit in long[:3]]
            continue
        try:
            good.append(validate(model, item))
        except validation_error() as e:
            for err in e.errors():
                loc = ".".join(str(p) for p in err["loc"])
                problems.append(f"{shown}: {label}{'.' + loc if loc else ''}: {message(err)}")
    return good, problems


@record(mutable=True)
class Catalog:
    """Validated GPUs, models and cloud instances, indexed by lower-cased id and alias."""

    gpus: dict[str, GpuSpec] = field(default_factory=dict)
    models: dict[str, ModelSpec] = field(default_factory=dict)
    instances: list[CloudInstance] = field(default_factory=list)
    size_references: dict[str, str] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._reindex()

    def _reindex(self) -> None:
        self._gpu_index = _index(self.gpus)
        self._model_index = _index(self.models)

    # --------------------------------------------------------------------------------------------- lookups
    def gpu(self, name: str) -> GpuSpec:
        key = _norm(name)
        if key in self._gpu_index:
            return self.gpus[self._gpu_index[key]]
        cpus = tuple(g.id for g in self.gpus.values() if g.kind == "cpu") if key in ("cpu", "cpus") else ()
        raise UnknownNameError(_unknown("GPU", name, self._gpu_index, "llmsizer gpus", cpus))

    def model(self, name: str) -> ModelSpec:
        key = _norm(name)
        if key in self._model_index:
            return self.models[self._model_index[key]]
        raise UnknownNameError(_unknown("model", name, self._model_index, "llmsizer models"))

    def has_model(self, name: str) -> bool:
        return _norm(name) in self._model_index

    def instances_for(self, gpu_id: str) -> list[CloudInstance]:
        return [i for i in self.instances if i.gpu == gpu_id]

    def reference_for_size(self, params: float) -> tuple[ModelSpec, Message]:
        """The reference architecture for a size shorthand (``70b``): the mapped model, else the nearest dense one;
        and a note saying which."""
        key = _size_key(params)
        if key in self.size_references and self.size_references[key] in self.models:
            m = self.models[self.size_references[key]]
            return m, message("size_reference", size=key, model_id=m.id, model_name=m.name)
        dense = [m for m in self.models.values() if m.moe is None] or list(self.models.values())
        if not dense:
            raise UnknownNameError("the model catalog is empty")
        m = min(dense, key=lambda x: abs(x.published_params / params - 1))
        return m, message("size_nearest", size=key, model_id=m.id, model_name=m.name)

    # ------------------------------------------------------------------------------------------- merging
    def merge(self, path: Path, raw: Any) -> list[str]:
        gpus, p1 = _validate_entries(path, raw, "gpus", GpuSpec)
        models, p2 = _validate_entries(path, raw, "models", ModelSpec)
        insts, p3 = _validate_entries(path, raw, "instances", CloudInstance)
        problems = p1 + p2 + p3
        if isinstance(raw, dict):
            unknown = set(raw) - {"schema_version", "gpus", "models", "instances", "size_references"}
            problems += [f"{display_name(path)}: unknown top-level key {_short(k)} (expected gpus, models, instances)"
                         for k in sorted(unknown, key=repr)[:6]]
            refs = raw.get("size_references") or {}
            if isinstance(refs, dict):
                bad = [k for k, v in refs.items() if not (isinstance(k, (str, int, float)) and not isinstance(k, bool)
                                                         and isinstance(v, str) and len(str(k)) <= MAX_NAME_CHARS
                                                         and len(v) <= MAX_NAME_CHARS)]
                if bad:
                    problems.append(f"{display_name(path)}: size_references: {_short(bad[0])} must map a size "
                                    f"(e.g. 7b) to a model id of at most {MAX_NAME_CHARS} characters")
                else:
                    self.size_references.update({str(k).lower(): v for k, v in refs.items()})
            elif refs:
                problems.append(f"{display_name(path)}: size_references must map sizes (e.g. 7b) to model ids")
        elif raw is not None:
            problems.append(f"{display_name(path)}: expected a mapping with 'gpus', 'models' or 'instances'")
        else:
            problems.append(f"{display_name(path)}: the file is empty")
        for g in gpus:
            self.gpus[g.id] = g
        for m in models:
            self.models[m.id] = m
        if insts:
            keep = {(i.provider, i.instance) for i in insts}
            self.instances = [i for i in self.instances if (i.provider, i.instance) not in keep] + insts
        self.sources.append(str(path))
        return problems

    def check_links(self) -> list[str]:
        problems = []
        for inst in self.instances:
            if inst.gpu not in self.gpus:
                problems.append(f"instance {inst.provider}/{inst.instance}: unknown gpu '{inst.gpu}'")
        seen: dict[str, str] = {}
        for kind, table in (("GPU", self.gpus), ("model", self.models)):
            seen = {}
            for e in table.values():
                for name in (e.id, *e.aliases):
                    k = _norm(name)
                    if k in seen and seen[k] != e.id:
                        problems.append(f"{kind} name '{name}' is used by both {seen[k]} and {e.id}")
                    seen[k] = e.id
        return problems


def _short(value: Any, limit: int = 40) -> str:
    """A value from a file as a short, bounded repr for a message (a huge key is never printed whole)."""
    import reprlib

    r = reprlib.Repr()
    r.maxlevel, r.maxstring, r.maxother, r.maxlist, r.maxdict = 2, limit, limit, 4, 4
    return printable(r.repr(value))


def _norm(name: str) -> str:
    return re.sub(r"[\s_]+", "-", str(name).strip().lower())


def _index(table: dict[str, Any]) -> dict[str, str]:
    idx: dict[str, str] = {}
    for e in table.values():
        for name in (*e.aliases, e.id):  # ids win over aliases
            idx[_norm(name)] = e.id
    return idx


def _unknown(kind: str, name: str, index: dict[str, str], listing: str, extra: tuple[str, ...] = ()) -> str:
    """"unknown GPU 'x'; did you mean ...?": close spellings, then ids containing it, then ids sharing its leading
    word, then ``extra`` (the CPUs for 'cpu'), else a pointer to the listing."""
    if not str(name).strip():
        return f"empty {kind} name; run '{listing}' to see the catalog"
    import difflib

    close = difflib.get_close_matches(_norm(name), list(index), n=6, cutoff=0.6)
    ids: list[str] = []
    for c in close:
        if index[c] not in ids:
            ids.append(index[c])
    if not ids:  # substring matches catch 'h100' -> h100-sxm, h100-pcie
        ids = sorted({v for k, v in index.items() if _norm(name) in k})[:4]
    if not ids:  # the leading word: 'm2-pro' -> m2-max, m2-ultra
        head = _norm(name).replace("_", "-").split("-")[0]
        ids = sorted({v for k, v in index.items() if len(head) >= 2 and k.startswith(head)})[:4]
    ids = ids or list(extra)[:4]
    hint = f"; did you mean {', '.join(ids[:4])}?" if ids else f"; run '{listing}' to see the catalog"
    return f"unknown {kind} '{name}'{hint}"


def _size_key(params: float) -> str:
    b = params / 1e9
    text = f"{b:.1f}".rstrip("0").rstrip(".") if b < 10 else f"{b:.0f}"
    return f"{text}b"


_MEMO: dict[tuple, Catalog] = {}


def _stamps(paths: list[Path]) -> tuple:
    out = []
    for p in paths:
        try:
            st = p.stat()
            out.append((str(p), st.st_size, st.st_mtime_ns))
        except OSError:
            out.append((str(p), -1, -1))
    return tuple(out)


def _load(extra: tuple[str, ...], use_user_dir: bool) -> Catalog:
    base = data_dir()
    packaged = [p for p in (base / n for n in ("gpus.yaml", "models.yaml", "instances.yaml")) if p.exists()]
    files: list[Path] = []
    if use_user_dir:
        d = user_config_dir()
        if _probe(d, dir_ok=True) is None:
            files += sorted(d.glob("*.yaml")) + sorted(d.glob("*.yml"))
    files += [Path(p) for p in extra]
    if not all(_probe(p) is None for p in files):
        return _build(packaged, files)  # reports the missing file
    # in-process memo keyed by every file's stamp: a user catalog added or edited is seen at once
    memo_key = _stamps(packaged + files)
    if memo_key in _MEMO:
        return _MEMO[memo_key]
    _MEMO[memo_key] = cat = _load_files(packaged, files)
    return cat


def _load_files(packaged: list[Path], files: list[Path]) -> Catalog:
    # the validated catalog is pickled per set of files (diskcache: rebuilt whenever one of them changes)
    name = f"catalog-{zlib.crc32(repr([str(p.resolve()) for p in packaged + files]).encode()):08x}"
    return cached(name, packaged + files, lambda: _build(packaged, files))


def _probe(path: Path, dir_ok: bool = False) -> str | None:
    """None when ``path`` is a regular file (a folder, with ``dir_ok``), else what is wrong with it, in words;
    never an exception (a name too long, a NUL byte, a symlink loop)."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return "catalog file not found"
    except OSError as e:
        return f"cannot read ({e.strerror or e})"
    except ValueError:
        return "invalid file name (a NUL byte)"
    if stat.S_ISREG(st.st_mode) or (dir_ok and stat.S_ISDIR(st.st_mode)):
        return None
    return "not a regular file"


def _build(packaged: list[Path], files: list[Path]) -> Catalog:
    cat = Catalog()
    problems: list[str] = []
    for path in packaged:
        problems += cat.merge(path, read_yaml(path))
    for path in files:
        problem = _probe(path)
        if problem is not None:
            raise CatalogError(f"{display_name(path)}: {problem}")
        problems += cat.merge(path, read_yaml(path))
    problems += cat.check_links()
    if problems:
        more = f" (and {len(problems) - 1} more: " + "; ".join(problems[1:6]) + ")" if len(problems) > 1 else ""
        raise CatalogError(problems[0] + more)
    cat._reindex()
    return cat


def load_catalog(extra_files: tuple[str | Path, ...] | list[str | Path] = (), *, user_dir: bool = True) -> Catalog:
    """The packaged catalogs plus the user config folder and ``extra_files``, validated and indexed (cached)."""
    return _load(tuple(str(p) for p in extra_files), user_dir)


def catalog_problems(path: str | Path) -> list[str]:
    """Every problem in one catalog file (for tests and ``--debug``); empty when the file is valid."""
    p = Path(path)
    return Catalog().merge(p, read_yaml(p))
