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


#: the longest text a count or a duration may be: "1_000_000_000_000_000.5" is 23 characters; thousands of digits
#: are a mistake (or an attack on int() and float()), refused before they are converted
MAX_NUMBER_CHARS = 40


def _shown(text: object) -> str:
    """A value as messages quote it: ``repr``, cut to 40 characters (an int of thousands of digits cannot even be
    turned into text: it is described instead)."""
    if isinstance(text, int) and not isinstance(text, bool) and abs(text) >= 10**40:
        return f"an integer of about {int(abs(text).bit_length() * 0.30103) + 1:,} digits"
    s = repr(text)
    return s if len(s) <= 40 else f"{s[:30]}... ({len(text) if isinstance(text, str) else len(s):,} characters)"


def parse_count(text: str | float | int) -> float:
    """Parse ``7B``, ``1.5b``, ``300B``, ``1T``, ``2e12``, ``4096``, ``128k`` into a float (>0 not checked here).

    Raises ``ValueError`` whose message, "'lots': use a plain number ...", follows the name of what was parsed;
    text longer than ``MAX_NUMBER_CHARS`` and an int too large for a float are refused the same way.
    """
    if isinstance(text, (int, float)):
        try:
            value = float(text)
        except OverflowError:
            raise ValueError(f"{_shown(text)}: too large; a count is at most about 1e308") from None
    else:
        if len(text) > MAX_NUMBER_CHARS:
            raise ValueError(f"{_shown(text)}: too long for a number (at most {MAX_NUMBER_CHARS} characters); "
                             "use a plain number or a suffix k, M, B, T (e.g. 7B, 1T, 2e12)")
        s = str(text).strip().replace("_", "").replace(",", "").lower()
        suffix = s[-1:] if s[-1:] in _SUFFIX and s[-1:] != "" else ""
        if suffix and s[-2:-1] == "i":  # 'ki', 'mi' (binary multiples) are not counts
            raise ValueError(f"{_shown(text)}: use a plain number or a suffix k, M, B, T (e.g. 7B, 1T, 2e12)")
        body = s[: -1] if suffix else s
        try:
            value = float(body) * _SUFFIX[suffix]
        except ValueError:
            raise ValueError(f"{_shown(text)}: use a plain number or a suffix k, M, B, T (e.g. 7B, 1T, 2e12)") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{_shown(text)}: must be a finite number")
    return value


def parse_duration_s(text: str | float) -> float:
    """Parse ``30d``, ``12h``, ``90m``, ``3600s`` or a bare number of seconds into seconds."""
    if isinstance(text, (int, float)):
        try:
            value = float(text)
        except OverflowError:
            raise ValueError(f"invalid duration {_shown(text)}: must be positive and finite") from None
    else:
        if len(text) > MAX_NUMBER_CHARS:
            raise ValueError(f"invalid duration {_shown(text)}: too long (at most {MAX_NUMBER_CHARS} characters); "
                             "use e.g. 30d, 12h, 90m or seconds")
        s = str(text).strip().lower()
        mult = {"s": 1.0, "m": 60.0, "h": HOUR_S, "d": DAY_S, "w": 7 * DAY_S}
        unit = s[-1:] if s[-1:] in mult else "s"
        body = s[:-1] if s[-1:] in mult else s
        try:
            value = float(body) * mult[unit]
        except ValueError:
            raise ValueError(f"invalid duration {_shown(text)}: use e.g. 30d, 12h, 90m or seconds") from None
    if not value > 0 or value == float("inf"):
        raise ValueError(f"invalid duration {_shown(text)}: must be positive and finite")
    return value


def parse_latency_s(text: str | float) -> float:
    """A latency target: ``500ms``, ``0.5s``, ``1.2`` (seconds) or ``800us``. A bare number of 10 or more is refused:
    it is almost always milliseconds written without the unit (``--ttft-target 500``)."""
    if isinstance(text, (int, float)):
        value, unit, bare = float(text), 1.0, True
    else:
        if len(text) > MAX_NUMBER_CHARS:
            raise ValueError(f"invalid latency {_shown(text)}: too long; use e.g. 500ms or 1.5s")
        s = str(text).strip().lower()
        for suffix, mult in (("ms", 1e-3), ("us", 1e-6), ("s", 1.0)):
            if s.endswith(suffix):
                body, unit, bare = s[: -len(suffix)].strip(), mult, False
                break
        else:
            body, unit, bare = s, 1.0, True
        try:
            value = float(body)
        except ValueError:
            raise ValueError(f"invalid latency {_shown(text)}: use e.g. 500ms, 1.5s or 0.05") from None
    if not value > 0 or value == float("inf"):
        raise ValueError(f"invalid latency {_shown(text)}: must be positive and finite")
    if bare and value >= 10:
        raise ValueError(f"latency {_shown(text)} would be {value:g} seconds; write {value:g}ms for milliseconds, "
                         f"or {value:g}s if you mean seconds")
    return value * unit

