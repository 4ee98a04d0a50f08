"""Numbers for people: the one place that turns bytes, seconds, FLOP/s and USD into text.

Conventions (STYLE.md rule 8): GB = 1e9 bytes, GiB = 2^30 bytes, and the text always says which.
GPU memory is shown in GiB (that is what ``nvidia-smi`` and frameworks report), system RAM in GiB too
(DIMMs come in binary sizes and ``server.py`` rounds RAM to 64 GiB), local storage in GB/TB (drives are sold in
decimal units), bandwidth in GB/s or TB/s (decimal, as datasheets print it).
"""

from __future__ import annotations

import math

from llmsizer.render.i18n import label

GIB = 2**30
TIB = 2**40


def sig(x: float, digits: int = 3) -> str:
    """``x`` with about ``digits`` significant digits, thousands separated, no trailing noise: 1,234 / 12.3 / 0.0123."""
    if x == 0:
        return "0"
    a = abs(x)
    if a >= 10 ** (digits - 1):
        return f"{x:,.0f}"
    decimals = digits - 1 - math.floor(math.log10(a))
    text = f"{x:.{decimals}f}"
    # rounding may carry to one more digit (9.996 -> "10.00"): drop the extra decimal
    if len(text.replace("-", "").replace(".", "").lstrip("0")) > digits and decimals > 0:
        text = f"{x:.{decimals - 1}f}"
    return text


def dash(x: object) -> str:
    return "—" if x is None else str(x)


def gib(n: float | None, digits: int = 1) -> str:
    """GPU memory: ``62.3 GiB`` (``512 MiB`` under 1 GiB, ``1.50 TiB`` past 1 TiB)."""
    if n is None or not math.isfinite(n):
        return "—"
    if n == 0:
        return "0 GiB"
    if abs(n) < GIB:
        return f"{n / 2**20:,.0f} MiB"
    if abs(n) >= TIB:
        return f"{n / TIB:,.2f} TiB"
    return f"{n / GIB:,.{digits}f} GiB"


def gib_number(n: float, digits: int = 1) -> str:
    """The GiB figure alone, for ``used / usable GiB`` pairs."""
    return f"{n / GIB:,.{digits}f}"


def ram(n: float | None) -> str:
    """System RAM in whole GiB, as DIMMs are sized: ``512 GiB``, ``2,048 GiB``."""
    if n is None or not math.isfinite(n):
        return "—"
    return f"{n / GIB:,.0f} GiB"


def storage(n: float | None) -> str:
    """Drives and files, decimal units: ``960 GB``, ``15 TB``, ``1.2 PB``."""
    if n is None or not math.isfinite(n):
        return "—"
    for unit, scale in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if abs(n) >= scale:
            return f"{sig(n / scale, 3)} {unit}"
    return f"{n:,.0f} B"


def bytes_both(n: float | None) -> str:
    """For --explain, where a reader checks the arithmetic: ``62.3 GiB (66.9 GB)``."""
    if n is None or not math.isfinite(n):
        return "—"
    if abs(n) < 1e6:
        return f"{n:,.0f} B"
    return f"{gib(n, 2)} ({storage(n)})"


def bandwidth(bytes_per_s: float | None) -> str:
    """``3.35 TB/s``, ``900 GB/s`` (decimal, as datasheets print it)."""
    if bytes_per_s is None or not math.isfinite(bytes_per_s):
        return "—"
    if bytes_per_s >= 1e12:
        return f"{sig(bytes_per_s / 1e12, 3)} TB/s"
    return f"{sig(bytes_per_s / 1e9, 3)} GB/s"


def flops(x: float | None) -> str:
    """``989 TFLOP/s``, ``1.98 PFLOP/s``."""
    if x is None or not math.isfinite(x):
        return "—"
    for unit, scale in (("PFLOP/s", 1e15), ("TFLOP/s", 1e12), ("GFLOP/s", 1e9)):
        if abs(x) >= scale:
            return f"{sig(x / scale, 3)} {unit}"
    return f"{sig(x, 3)} FLOP/s"


def scientific(x: float | None, unit: str = "") -> str:
    """``8.4e+23 FLOP``: counts too large for prefixes a reader knows."""
    if x is None or not math.isfinite(x):
        return "—"
    text = f"{x:.3g}" if abs(x) < 1e6 else f"{x:.2e}"
    return f"{text} {unit}".strip()


def si(x: float | None, digits: int = 3) -> str:
    """``1.2k``, ``850``, ``3.4M``, ``2.1B``, ``1.5T``."""
    if x is None or not math.isfinite(x):
        return "—"
    x = float(f"{x:.{digits}g}")  # rounded first: 999,885,952 is 1.00B, not 1,000M
    for suffix, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{sig(x / scale, digits)}{suffix}"
    return sig(x, digits)


def params(n: float | None) -> str:
    """Parameter counts: ``70.6B``, ``124M``."""
    return si(n, 3)


def rate(tokens_per_s: float | None) -> str:
    """``1.2k tok/s``."""
    if tokens_per_s is None or not math.isfinite(tokens_per_s):
        return "—"
    return f"{si(tokens_per_s, 2 if tokens_per_s >= 1000 else 3)} tok/s"


def count(n: float | None) -> str:
    if n is None or not math.isfinite(n):
        return "—"
    if float(n).is_integer():
        return f"{int(n):,}"
    return sig(float(n), 4)


def percent(fraction: float | None) -> str:
    if fraction is None or not math.isfinite(fraction):
        return "—"
    return f"{fraction * 100:.1f}%" if fraction < 0.1 else f"{fraction * 100:.0f}%"


def duration(seconds: float | None, lang: str = "en") -> str:
    """``850 µs``, ``12.5 ms``, ``34.2 s``, ``45 min``, ``12.5 hours``, ``34.2 days``, ``2.3 years``."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    s = float(seconds)
    if s < 1e-3:
        return f"{sig(s * 1e6, 3)} µs"
    if s < 1:
        return f"{sig(s * 1e3, 3)} ms"
    if s < 120:
        return f"{sig(s, 3)} s"
    if s < 2 * 3600:
        return f"{sig(s / 60, 3)} {label('minutes', lang)}"
    if s < 48 * 3600:
        return f"{sig(s / 3600, 3)} {label('hours', lang)}"
    if s < 730 * 86400:
        return f"{sig(s / 86400, 3)} {label('days', lang)}"
    return f"{sig(s / (365.25 * 86400), 3)} {label('years', lang)}"


def days(seconds: float, lang: str = "en") -> str:
    """A training time in a sentence: ``36.5 days``, ``2.4 years`` past two years."""
    d = seconds / 86400.0
    return f"{d:,.1f} {label('days', lang)}" if d < 730 else f"{d / 365.25:,.1f} {label('years', lang)}"


def usd(x: float | None) -> str:
    """``$1,234`` (whole dollars from $100), ``$12.34``, ``$0.0042``."""
    if x is None or not math.isfinite(x):
        return "—"
    if abs(x) >= 100:
        return f"${x:,.0f}"
    if abs(x) >= 0.01 or x == 0:
        return f"${x:,.2f}"
    return f"${sig(x, 2)}"


def usd_per_hour(x: float | None) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{usd(x)}/h"


def watts(w: float | None) -> str:
    """``850 W``, ``10.2 kW``."""
    if w is None or not math.isfinite(w):
        return "—"
    if w >= 1e6:
        return f"{sig(w / 1e6, 3)} MW"
    if w >= 1000:
        return f"{sig(w / 1000, 3)} kW"
    return f"{w:,.0f} W"


def energy_kwh(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "—"
    if x >= 1e3:
        return f"{sig(x / 1e3, 3)} MWh"
    return f"{sig(x, 3)} kWh"


# ----------------------------------------------------------------------------------------- explain values


def value(x: float | str | None, unit: str, lang: str = "en") -> str:
    """A ``Step`` value in its unit (``Step.unit``: bytes, s, FLOP, FLOP/s, tokens/s, USD, fraction, count, W...)."""
    if x is None:
        return "—"
    if isinstance(x, str):
        return x
    u = unit.strip()
    if u in ("bytes", "B", "byte"):
        return bytes_both(x)
    if u in ("bytes/s", "B/s"):
        return bandwidth(x)
    if u in ("s", "seconds"):
        return duration(x, lang)
    if u == "FLOP/s":
        return flops(x)
    if u in ("FLOP", "FLOPs"):
        return scientific(x, "FLOP")
    if u in ("tokens/s", "tok/s"):
        return rate(x)
    if u in ("USD", "$"):
        return usd(x)
    if u in ("USD/h", "USD/hour"):
        return usd_per_hour(x)
    if u == "fraction":
        return f"{sig(x, 3)} ({percent(x)})"
    if u in ("count", ""):
        return count(x)
    if u in ("W", "watts"):
        return watts(x)
    if u == "kWh":
        return energy_kwh(x)
    if u == "days":
        return f"{sig(x, 3)} {label('days', lang)}"
    if u in ("hours", "h"):
        return f"{sig(x, 3)} {label('hours', lang)}"
    if u in ("gpu_hours", "GPU-hours", "GPU-h"):
        return f"{si(x, 3)} {label('gpu_hours_unit', lang)}"
    if u in ("tokens", "params", "parameters"):
        return f"{count(x)} ({si(x)})" if abs(x) >= 1e4 else count(x)
    return f"{count(x)} {u}"


def input_value(name: str, x: float | str | bool | None, lang: str = "en") -> str:
    """An explain input, formatted from the unit its name carries (``*_bytes``, ``*_s``, ``*_flops``...)."""
    if x is None:
        return "—"
    if isinstance(x, (bool, str)):
        return str(x)
    n = name.lower()
    if n.endswith("_bytes_per_s"):
        return bandwidth(x)
    if n.endswith("_bytes") or n == "bytes":
        return bytes_both(x)
    if n.endswith(("_seconds", "_s")) and not n.endswith("_per_s"):
        return duration(x, lang)
    if n.endswith(("_flops", "flops_per_s")) or n == "flops":
        return flops(x) if not n.endswith("_per_token") else scientific(x, "FLOP")
    if n.endswith("_usd") or n.startswith("usd"):
        return usd(x)
    if n.endswith("_watts"):
        return watts(x)
    if isinstance(x, float) and not x.is_integer():
        return f"{x:.4g}"
    if abs(x) >= 1e5:
        return f"{x:.4g}" if abs(x) >= 1e15 else count(x)
    return count(x)


def inputs(d: dict, lang: str = "en") -> str:
    """``hidden=8,192, layers=80, ...`` in the order the estimator gave them."""
    return ", ".join(f"{k}={input_value(k, v, lang)}" for k, v in d.items())
