"""Records: value classes declared like dataclasses, cheap to define.

A stdlib ``@dataclass`` compiles its generated methods with ``exec`` when the class is defined (about 0.5 ms a class,
and importing ``dataclasses`` pulls in ``inspect``): llmsizer's warm start-up defines some forty typed results and
specs, which cost more than the plan itself (docs/performance.md). ``@record`` gives the same declaration and the
same behaviour from closures, with nothing compiled:

    @record
    class MemoryBreakdown:
        weights_bytes: float
        steps: tuple[Step, ...] = ()
        extras: dict = field(default_factory=dict, compare=False)

- fields are the class's annotations, in order (a record's fields come after its record bases'); defaults are the
  class attributes, ``field(default_factory=..., compare=...)`` as in dataclasses;
- ``__init__`` takes fields positionally or by name (``kw_only=True``: by name only), fills defaults, then calls
  ``__post_init__`` if the class has one;
- frozen by default (assignment raises ``FrozenError``; ``__post_init__`` may use ``object.__setattr__``), with
  ``__eq__`` and ``__hash__`` over the compared fields; ``mutable=True`` records compare but do not hash;
- ``replace(obj, **changes)`` and ``fields(cls)`` as in dataclasses; records pickle like any object with a
  ``__dict__``.
pydantic does not know records: ``data/validation.py`` validates one through a stdlib dataclass built from its
fields, only when data is validated (a cache miss).
"""

from __future__ import annotations

from typing import Any

_MISSING: Any = object()


class FrozenError(AttributeError):
    """Assignment to a field of a frozen record."""


class Field:
    """A field of a record: its name, its default (or factory), and whether it takes part in ``==`` and ``hash``."""

    __slots__ = ("compare", "default", "factory", "name")

    def __init__(self, name: str, default: Any = _MISSING, factory: Any = None, compare: bool = True) -> None:
        self.name, self.default, self.factory, self.compare = name, default, factory, compare

    @property
    def required(self) -> bool:
        return self.default is _MISSING and self.factory is None


class _Spec:
    __slots__ = ("compare", "default", "factory")

    def __init__(self, default: Any, factory: Any, compare: bool) -> None:
        self.default, self.factory, self.compare = default, factory, compare


def field(*, default: Any = _MISSING, default_factory: Any = None, compare: bool = True) -> Any:
    """A field with a default factory or left out of comparisons (``dataclasses.field``'s two uses here)."""
    return _Spec(default, default_factory, compare)


def _fields_of(cls: type) -> dict[str, Field]:
    out: dict[str, Field] = {}
    for base in reversed(cls.__mro__[1:]):
        out.update(base.__dict__.get("__record_fields__", {}))
    for name in cls.__dict__.get("__annotations__", {}):
        value = cls.__dict__.get(name, _MISSING)
        if isinstance(value, _Spec):
            out[name] = Field(name, value.default, value.factory, value.compare)
            if value.default is _MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, value.default)
        else:
            out[name] = Field(name, value)
    return out


def record(cls: type | None = None, *, mutable: bool = False, kw_only: bool = False) -> Any:
    """Make ``cls`` a record (module docstring); ``@record`` or ``@record(mutable=True, kw_only=True)``."""

    def wrap(cls: type) -> type:
        spec = _fields_of(cls)
        names = tuple(spec)
        known = frozenset(names)
        count = len(names)
        defaults = tuple((f.name, f.default, f.factory) for f in spec.values() if not f.required)
        compared = tuple(f.name for f in spec.values() if f.compare)
        post_init = cls.__dict__.get("__post_init__") or next(
            (b.__dict__["__post_init__"] for b in cls.__mro__[1:] if "__post_init__" in b.__dict__), None)
        qualname = cls.__qualname__

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            d = self.__dict__
            if args:
                if kw_only or len(args) > count:
                    raise TypeError(f"{qualname}() takes {0 if kw_only else count} positional arguments, "
                                    f"{len(args)} given")
                d.update(zip(names, args))
            if kwargs:
                unknown = kwargs.keys() - known
                if unknown:
                    raise TypeError(f"{qualname}() got an unexpected keyword argument {sorted(unknown)[0]!r}")
                if args and not kwargs.keys().isdisjoint(names[:len(args)]):
                    raise TypeError(f"{qualname}() got multiple values for an argument")
                d.update(kwargs)
            if len(d) < count:
                for name, default, factory in defaults:
                    if name not in d:
                        d[name] = factory() if factory is not None else default
                if len(d) < count:
                    missing = [n for n in names if n not in d]
                    raise TypeError(f"{qualname}() missing required argument {missing[0]!r}")
            if post_init is not None:
                post_init(self)

        def __repr__(self: Any) -> str:
            d = self.__dict__
            return f"{qualname}({', '.join(f'{n}={d[n]!r}' for n in names)})"

        def __eq__(self: Any, other: Any) -> Any:
            if other.__class__ is not self.__class__:
                return NotImplemented
            a, b = self.__dict__, other.__dict__
            return all(a[n] == b[n] for n in compared)

        cls.__init__ = __init__  # type: ignore[misc]
        cls.__repr__ = __repr__  # type: ignore[method-assign]
        cls.__eq__ = __eq__  # type: ignore[method-assign]
        cls.__record_fields__ = spec  # type: ignore[attr-defined]
        if mutable:
            cls.__hash__ = None  # type: ignore[assignment]
        else:
            def __hash__(self: Any) -> int:
                d = self.__dict__
                return hash(tuple(d[n] for n in compared))

            def __setattr__(self: Any, name: str, value: Any) -> None:
                raise FrozenError(f"cannot assign to field {name!r} of a frozen {qualname}")

            def __delattr__(self: Any, name: str) -> None:
                raise FrozenError(f"cannot delete field {name!r} of a frozen {qualname}")

            cls.__hash__ = __hash__  # type: ignore[method-assign]
            cls.__setattr__ = __setattr__  # type: ignore[method-assign]
            cls.__delattr__ = __delattr__  # type: ignore[method-assign]
        return cls

    return wrap(cls) if cls is not None else wrap


def is_record(obj: Any) -> bool:
    return hasattr(obj if isinstance(obj, type) else type(obj), "__record_fields__")


def fields(cls_or_obj: Any) -> tuple[Field, ...]:
    """The fields of a record class or instance, in order."""
    cls = cls_or_obj if isinstance(cls_or_obj, type) else type(cls_or_obj)
    return tuple(cls.__record_fields__.values())


def replace(obj: Any, **changes: Any) -> Any:
    """A copy of record ``obj`` with ``changes`` (``__post_init__`` runs on the copy, as in dataclasses)."""
    cls = type(obj)
    d = obj.__dict__
    unknown = changes.keys() - cls.__record_fields__.keys()
    if unknown:
        raise TypeError(f"{cls.__qualname__} has no field {sorted(unknown)[0]!r}")
    return cls(**{n: changes[n] if n in changes else d[n] for n in cls.__record_fields__})


def asdict_shallow(obj: Any) -> dict[str, Any]:
    """The record's fields as a dict (values not converted)."""
    d = obj.__dict__
    return {n: d[n] for n in type(obj).__record_fields__}
