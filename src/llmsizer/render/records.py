"""``fit`` and ``validate`` output, rendered from the CONTRACT-shaped dicts the caller builds.

The JSON is the dict itself (made JSON-safe); the human formats pick the contract's columns first, then any other
scalar keys the rows carry, and format each value from the unit its key name carries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llmsizer.render import fmt as f
from llmsizer.render.i18n import label
from llmsizer.render.jsonout import clean, dumps


def fit_to_dict(r: Any) -> dict:
    """The CONTRACT's ``fit --format json`` object of a ``usecases.fit.FitResult``."""
    from llmsizer.specs.architecture import count_params

    return {
        "schema_version": 1,
        "gpu": {"id": r.gpu.id, "name": r.gpu.name, "memory_bytes": r.gpu.memory_bytes},
        "gpu_count": r.gpu_count,
        "mode": r.mode.value,
        "engine": r.engine.value if getattr(r, "engine", None) is not None else None,
        "models": [{
            "id": x.model.id, "name": x.model.name, "params": count_params(x.model).total, "fits": x.fits,
            "precision": x.precision or None, "quant": x.quant or None, "max_context": x.max_context,
            "max_concurrency": x.max_concurrency, "tokens_per_second": x.tokens_per_second,
            "memory_per_gpu_bytes": int(x.plan.memory.total_bytes) if x.plan else None,
            "layout": (f"tp{x.plan.layout.tp} pp{x.plan.layout.pp} dp{x.plan.layout.dp}" if x.plan else None),
            "needs_gpus": x.needs_gpus, "needs_memory_bytes": x.needs_bytes, "needs_quant": x.needs_quant or None,
        } for x in r.rows],
    }


def validate_to_dict(results: list[Any]) -> dict:
    """The CONTRACT's ``validate --format json`` object of a list of ``usecases.validate.CaseResult``."""
    from llmsizer.usecases.validate import summarize

    return {
        "schema_version": 1,
        "cases": [{
            "id": r.id, "category": r.category, "quantity": r.quantity, "source": r.source, "url": r.url,
            "unit": r.unit, "published": r.published, "predicted": r.predicted, "error": r.error,
            "comparison": r.comparison, "within_bound": r.within_bound, "skipped": r.skipped,
        } for r in results],
        "summary": summarize(results),
    }


FIT_COLUMNS = ("id", "fits", "precision", "quant", "max_context", "tokens_per_second", "needs")
#: the JSON keys the "needs" column says in words, not shown as columns of their own
_FIT_NEEDS = ("needs_gpus", "needs_memory_bytes", "needs_quant")
VALIDATE_COLUMNS = ("id", "quantity", "published", "predicted", "error", "source")
_SKIP = {"schema_version", "unit"}  # a case's unit is shown with its published and predicted values


def cell(key: str, value: Any, row: dict, lang: str) -> str:
    """One value as text, chosen by its key (``*_bytes``, ``*_seconds``, ``tokens_per_second``, ``error``...)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return label("yes", lang) if value else label("no", lang)
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={cell(k, v, value, lang)}" for k, v in value.items())
    if isinstance(value, str):
        return value
    k = key.lower()
    if "_abs_" in k or k.startswith("abs_"):
        return f"{abs(value) * 100:.1f}%"
    if k == "error" or k.endswith("_error"):
        return f"{value * 100:+.1f}%"
    if k.endswith(("mape", "_fraction")) or k.startswith(("mean_abs", "median_abs")):
        return f.percent(value)
    if k in ("published", "predicted") and row.get("unit"):
        return f.value(value, str(row["unit"]), lang)
    if k == "tokens_per_second" or k.endswith("_tokens_per_second"):
        return f.rate(value)
    if k.endswith("_bytes"):
        return f.gib(value)
    if k.endswith(("_seconds", "_s")):
        return f.duration(value, lang)
    if k.startswith("usd") or k.endswith("_usd"):
        return f.usd(value)
    if k in ("mfu", "hfu") or k.endswith("_fraction"):
        return f.percent(value)
    if k in ("max_context", "context") or k.endswith(("_tokens", "_count", "_context")):
        return f.count(value)
    return f.count(value) if float(value).is_integer() else f.sig(float(value), 3)


def _columns(rows: list[dict], first: Sequence[str]) -> list[str]:
    cols = [c for c in first if any(c in r for r in rows)]
    for r in rows:
        for k, v in r.items():
            if k not in cols and k not in _SKIP and not isinstance(v, (dict, list)):
                cols.append(k)
    return cols


def _header(key: str, lang: str) -> str:
    from llmsizer.render.common import cap
    from llmsizer.render.i18n import LABELS

    return cap(label(key, lang)) if key in LABELS["en"] else cap(key.replace("_", " "))


def _render(title: str, cols: list[str], first: Sequence[str], rows: list[dict], tail: list[tuple[str, str]],
            fmt: str, lang: str, width: int | None, color: bool | None,
            wraps: Sequence[str] = ("source", "quantity", "id")) -> str:
    headers = [_header(c, lang) for c in cols]
    body = [[cell(c, r.get(c), r, lang) for c in cols] for r in rows]
    if fmt == "markdown":
        from llmsizer.render.markdown import table

        out = f"# {title}\n\n" + table(headers, body)
        if tail:
            out += f"\n\n## {label('summary', lang)}\n\n" + table([label("item", lang), label("value", lang)], tail)
        return out + "\n"
    from llmsizer.render import table as t

    numeric = [i for i, c in enumerate(cols) if any(r.get(c) is not None for r in rows) and all(
        r.get(c) is None or (isinstance(r.get(c), (int, float)) and not isinstance(r.get(c), bool)) for r in rows)]
    wrap = [i for i, c in enumerate(cols) if c in wraps]
    extra = [i for i, c in enumerate(cols) if c not in first][::-1]  # the contract's columns are dropped last
    text = t._print_table(headers, body, numeric, title, width, color, wrap=wrap, drop=extra)
    if tail:
        text += "\n".join(f"{k}: {v}" for k, v in tail) + "\n"
    return text


def needs_text(row: dict, lang: str) -> str | None:
    """What a model that does not fit would need, in words: "2 GPUs (q3_k_m)", or the memory per GPU when more of
    these GPUs than the search goes to would not hold it ("88.8 GiB per GPU (q3_k_m)"); None for a row that fits."""
    if row.get("fits") or (row.get("needs_gpus") is None and row.get("needs_memory_bytes") is None):
        return None
    quant = f" ({row['needs_quant']})" if row.get("needs_quant") else ""
    if row.get("needs_gpus"):
        return label("needs_gpus", lang).format(n=f.count(row["needs_gpus"])) + quant
    return label("needs_memory", lang).format(memory=f.gib(row["needs_memory_bytes"])) + quant


def _fit_row(row: dict, lang: str) -> dict:
    """A row as a person reads it: a misfit says what it needs instead of a context and speed of 0."""
    out = {k: v for k, v in row.items() if k not in _FIT_NEEDS}
    if not row.get("fits"):
        out.update(max_context=None, tokens_per_second=None, max_concurrency=None)
    out["needs"] = needs_text(row, lang)
    return out


def fit_heading(doc: dict, lang: str) -> str:
    """"What fits on 1 × NVIDIA GeForce RTX 4090 24GB · 24.0 GiB · inference": the hardware asked about, once."""
    gpu = doc.get("gpu") or {}
    if not gpu:
        return label("fit_title", lang)
    memory = f.gib(gpu["memory_bytes"]) if gpu.get("memory_bytes") else "—"
    mode = doc.get("mode", "")
    if doc.get("engine"):
        mode = f"{mode} · {doc['engine']}"
    return label("fit_on", lang).format(n=doc.get("gpu_count", 1), gpu=gpu.get("name") or gpu.get("id"),
                                         memory=memory, mode=mode)


def render_fit(doc: dict, fmt: str, *, lang: str = "en", width: int | None = None, color: bool | None = None) -> str:
    if fmt == "json":
        return dumps(clean(doc))
    rows = [_fit_row(r, lang) for r in doc.get("models", [])]
    if not any(r["needs"] for r in rows):
        rows = [{k: v for k, v in r.items() if k != "needs"} for r in rows]
    return _render(fit_heading(doc, lang), _columns(rows, FIT_COLUMNS), FIT_COLUMNS, rows, [], fmt, lang, width,
                   color, wraps=("needs",))


def render_validate(doc: dict, fmt: str, *, lang: str = "en", width: int | None = None,
                    color: bool | None = None) -> str:
    if fmt == "json":
        return dumps(clean(doc))
    rows = list(doc.get("cases", []))
    summary = doc.get("summary") or {}
    text = _render(label("validate_title", lang), _columns(rows, VALIDATE_COLUMNS), VALIDATE_COLUMNS, rows, [], fmt,
                   lang, width, color)
    if summary and all(isinstance(v, dict) for v in summary.values()):
        srows = [{"category": k, **v} for k, v in summary.items()]
        cols = ["category"] + [c for c in srows[0] if c != "category"]
        title = label("summary", lang)
        if fmt == "markdown":
            from llmsizer.render.markdown import table

            body = [[cell(c, r.get(c), r, lang) for c in cols] for r in srows]
            return text + f"\n## {title}\n\n" + table([_header(c, lang) for c in cols], body) + "\n"
        lines = [f"{title}:"]
        for r in srows:
            parts = [f"{_header(c, lang).lower()} {cell(c, r.get(c), r, lang)}" for c in cols[1:]]
            lines.append(f"  {r['category']}: " + ", ".join(parts))
        return text + "\n".join(lines) + "\n"
    return text
