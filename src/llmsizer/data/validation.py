"""Validate data against a frozen dataclass's annotations with pydantic, imported only when data is validated.

The catalog records (``specs.py``) and the data-file records (``memory.py``, ``compute.py``, ``server.py``) are
standard-library dataclasses, not pydantic models: a start-up served from the disk cache (``diskcache.py``) unpickles
them without importing pydantic, which alone costs about as much as the rest of a plan (docs/performance.md).
pydantic still does all the checking, through a ``TypeAdapter`` built on the first validation of each class.

Vocabulary. The records' annotations are strings (``from __future__ import annotations``) that name pydantic's
constrained types and this module's two house types:

- ``PositiveFloat``, ``PositiveInt``, ``NonNegativeFloat``, ``NonNegativeInt``: pydantic's, > 0 / >= 0;
- ``Annotated[float, Field(gt=0, le=1)]``: any other bound;
- ``Source``: a citation (at least 8 characters: a URL, a paper, a datasheet name);
- ``CatalogId``: a catalog id, lower case (``^[a-z0-9][a-z0-9.-]*$``).

pydantic resolves a name it does not find in the record's module in the namespace of the frame that builds the
adapter, so ``_adapter`` defines the vocabulary as its locals. Cross-field rules live in each record's
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


@lru_cache(maxsize=None)
def _adapter(cls: type) -> TypeAdapter[Any]:
    from typing import Annotated, Literal  # noqa: F401 - the vocabulary: see the module docstring

    from pydantic import (  # noqa: F401
        Field,
        NonNegativeFloat,
        NonNegativeInt,
        PositiveFloat,
        PositiveInt,
        TypeAdapter,
    )

    Source = Annotated[str, Field(min_length=8)]  # noqa: F841, N806
    CatalogId = Annotated[str, Field(pattern=CATALOG_ID_PATTERN)]  # noqa: F841, N806
    return TypeAdapter(cls)


def validate(cls: type[T], data: Any) -> T:
    """``data`` (a mapping, usually parsed YAML or JSON) checked and converted into a ``cls`` record.

    Raises ``pydantic.ValidationError`` listing every problem, each with its location.
    """
    return _adapter(cls).validate_python(data)


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
