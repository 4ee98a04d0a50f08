"""Unit constants and bytes per element. Formatting for people lives in ``render/``, never here.

GB = 1e9 bytes and GiB = 2^30 bytes; llmsizer computes in bytes, seconds, FLOP/s and USD.
"""

from __future__ import annotations

KB = 1e3
MB = 1e6
GB = 1e9
TB = 1e12
KIB = 2**10
MIB = 2**20
GIB = 2**30
TIB = 2**40
TERA = 1e12
HOUR_S = 3600.0
DAY_S = 86400.0

#: Bytes per element of a dense tensor stored in each dtype.
DTYPE_BYTES: dict[str, float] = {
    "fp64": 8.0,
    "fp32": 4.0,
    "tf32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "fp6": 0.75,
    "fp4": 0.5,
    "int4": 0.5,
}


def dtype_bytes(dtype: str) -> float:
    """Bytes per element for ``dtype`` (a KeyError for an unknown dtype is a programming error)."""
    return DTYPE_BYTES[dtype]


_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12, "p": 1e15}


def parse_count(text: str | float | int) -> float:
    """Parse ``7B``, ``1.5b``, ``300B``, ``1T``, ``2e12``, ``4096``, ``128k`` into a float (>0 not checked here).

    Raises ``ValueError`` whose message, "'lots': use a plain number ...", follows the name of what was parsed.
    """
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        s = str(text).strip().replace("_", "").replace(",", "").lower()
        suffix = s[-1:] if s[-1:] in _SUFFIX and s[-1:] != "" else ""
        if suffix and s[-2:-1] == "i":  # 'ki', 'mi' (binary multiples) are not counts
            raise ValueError(f"{text!r}: use a plain number or a suffix k, M, B, T (e.g. 7B, 1T, 2e12)")
        body = s[: -1] if suffix else s
        try:
            value = float(body) * _SUFFIX[suffix]
        except ValueError:
            raise ValueError(f"{text!r}: use a plain number or a suffix k, M, B, T (e.g. 7B, 1T, 2e12)") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{text!r}: must be a finite number")
    return value


def parse_duration_s(text: str | float) -> float:
    """Parse ``30d``, ``12h``, ``90m``, ``3600s`` or a bare number of seconds into seconds."""
    s = str(text).strip().lower()
    mult = {"s": 1.0, "m": 60.0, "h": HOUR_S, "d": DAY_S, "w": 7 * DAY_S}
    unit = s[-1:] if s[-1:] in mult else "s"
    body = s[:-1] if s[-1:] in mult else s
    try:
        value = float(body) * mult[unit]
    except ValueError:
        raise ValueError(f"invalid duration {text!r}: use e.g. 30d, 12h, 90m or seconds") from None
    if not value > 0 or value == float("inf"):
        raise ValueError(f"invalid duration {text!r}: must be positive and finite")
    return value
