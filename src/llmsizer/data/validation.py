"""Validate data against a record's (or dataclass's) annotations with pydantic, imported only when data is validated.

The catalog specs (``specs/``) are records (``record.py``) and the data-file schemas (``data/schema.py``) stdlib
dataclasses, neither a pydantic model: a start-up served from the disk cache (``data/cache.py``) unpickles specs
and plain namespaces without importing pydantic, which alone costs about as much as the rest of a plan
(docs/performance.md). pydantic still does all the checking, through a ``TypeAdapter`` built on the first
validation of each class; a record is validated through a stdlib dataclass with the same fields (``_shadow``).

Vocabulary. The records' annotations are strings (``from __future__ import annotations``) that name pydantic's
constrained types and this module's two house types:

- ``PositiveFloat``, ``PositiveInt``, ``NonNegativeFloat``, ``NonNegativeInt``: pydantic's, > 0 / >= 0;
- ``Annotated[float, Field(gt=0, le=1)]``: any other bound;
- ``Source``: a citation (at least 8 characters: a URL, a paper, a datasheet name);
- ``CatalogId``: a catalog id, lower case (``^[a-z0-9][a-z0-9.-]*$``).

A record's annotations are evaluated with the vocabulary; a dataclass's are resolved by pydantic, which looks a
name up in the class's module and then in the frame that builds the adapter (``_adapter`` binds the vocabulary as
its locals). Cross-field rules live in each record's
``__post_init__``, which pydantic runs after the fields validate and reports like a field error; extra keys are
refused where a class sets ``__pydantic_config__ = {"extra": "forbid"}``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # for type checkers; at run time the names are _adapter's locals
    from typing import Annotated

    from pydantic import Field, TypeAdapter

    Source = Annotated[str, Field(min_length=8)]
    CatalogId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.\-]*$")]

T = TypeVar("T")

CATALOG_ID_PATTERN = r"^[a-z0-9][a-z0-9.\-]*$"


def _vocabulary() -> dict[str, Any]:
    """The names the records' annotations use (module docstring)."""
    from typing import Annotated, Literal

    from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt

    return {
        "Annotated": Annotated, "Literal": Literal, "Field": Field, "NonNegativeFloat": NonNegativeFloat,
        "NonNegativeInt": NonNegativeInt, "PositiveFloat": PositiveFloat, "PositiveInt": PositiveInt,
        "Source": Annotated[str, Field(min_length=8)], "CatalogId": Annotated[str, Field(pattern=CATALOG_ID_PATTERN)],
        "DType": Literal["fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp6", "fp4", "int4"],
    }


@lru_cache(maxsize=None)
def _shadow(cls: type) -> type:
    """A stdlib dataclass with ``cls``'s fields (annotations evaluated, nested records as their own shadows),
    ``__post_init__`` and pydantic config: what pydantic validates a record's data against."""
    import dataclasses
    import re
    import sys

    from llmsizer.record import fields, is_record

    module = vars(sys.modules[cls.__module__])
    names = {**module, **_vocabulary()}
    annotations: dict[str, str] = {}
    for base in reversed(cls.__mro__):
        annotations.update(base.__dict__.get("__annotations__", {}))
    used = {w for text in annotations.values() for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", str(text))}
    names.update({k: _shadow(module[k]) for k in used
                  if isinstance(module.get(k), type) and is_record(module[k]) and module[k] is not cls})
    spec = []
    for f in fields(cls):
        tp = eval(annotations[f.name], names)  # noqa: S307 - the record's own annotation text
        if f.factory is not None:
            spec.append((f.name, tp, dataclasses.field(default_factory=f.factory)))
        elif not f.required:
            spec.append((f.name, tp, dataclasses.field(default=f.default)))
        else:
            spec.append((f.name, tp))
    namespace = {"__pydantic_config__": getattr(cls, "__pydantic_config__", None), "__record__": cls}
    post_init = getattr(cls, "__post_init__", None)
    if post_init is not None:
        namespace["__post_init__"] = post_init
    return dataclasses.make_dataclass(cls.__name__, spec, namespace=namespace, kw_only=True, frozen=True)


def _to_record(value: Any) -> Any:
    record_cls = getattr(type(value), "__record__", None)
    if record_cls is not None:
        return record_cls(**{f.name: _to_record(getattr(value, f.name)) for f in record_cls.__record_fields__.values()})
    if isinstance(value, tuple):
        return tuple(_to_record(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_record(v) for k, v in value.items()}
    return value


@lru_cache(maxsize=None)
def _adapter(cls: type) -> TypeAdapter[Any]:
    from pydantic import TypeAdapter

    from llmsizer.record import is_record

    if is_record(cls):
        return TypeAdapter(_shadow(cls))
    # a stdlib dataclass (data/schema.py): pydantic resolves the annotation names it does not find in the class's
    # module in this frame, so the vocabulary is bound as locals
    ns = _vocabulary()
    Annotated, Literal, Field = ns["Annotated"], ns["Literal"], ns["Field"]  # noqa: F841, N806
    NonNegativeFloat, NonNegativeInt = ns["NonNegativeFloat"], ns["NonNegativeInt"]  # noqa: F841, N806
    PositiveFloat, PositiveInt = ns["PositiveFloat"], ns["PositiveInt"]  # noqa: F841, N806
    Source, CatalogId = ns["Source"], ns["CatalogId"]  # noqa: F841, N806
    return TypeAdapter(cls)


def validate(cls: type[T], data: Any) -> T:
    """``data`` (a mapping, usually parsed YAML or JSON) checked and converted into a ``cls`` record (or stdlib
    dataclass). Raises ``pydantic.ValidationError`` listing every problem, each with its location."""
    from llmsizer.record import is_record

    value = _adapter(cls).validate_python(data)
    return _to_record(value) if is_record(cls) else value


def message(err: dict[str, Any]) -> str:
    """One problem of a ``ValidationError.errors()`` list, worded for a catalog author."""
    if err.get("type") in ("unexpected_keyword_argument", "extra_forbidden"):
        return "unknown field (a typo? see the schema in data/*.yaml)"
    return str(err.get("msg", "invalid")).removeprefix("Value error, ")


def validation_error() -> type[Exception]:
    """``pydantic.ValidationError``, for ``except`` clauses that must not import pydantic before they need it."""
    from pydantic import ValidationError

    return ValidationError


__all__ = ["CATALOG_ID_PATTERN", "message", "validate", "validation_error"]
