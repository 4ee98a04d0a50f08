"""Errors a user can act on, and the exit codes the CLI maps them to (CONTRACT.md).

The library raises; ``cli/edge.py`` turns an ``LlmsizerError`` into one line on stderr and its exit code, once.
Errors about an input name the *field* (``micro_batch``, ``gpu_count``), never a command-line flag: a message
refers to fields as ``{field_name}`` placeholders, and ``render(name)`` fills them with whatever the caller calls
them (``cli/options.py`` maps fields to flags; ``str(e)`` uses the field names themselves).
"""

from __future__ import annotations

import re

EXIT_OK = 0
EXIT_NO_FIT = 1
EXIT_USAGE = 2


class LlmsizerError(Exception):
    """Base class: a problem with the user's input, files or catalogs.

    ``LlmsizerError("{tokens} must be positive", fields=("tokens",))``: ``str(e)`` is "tokens must be positive",
    ``e.render(flag)`` is "--tokens must be positive" for ``flag("tokens") == "--tokens"``. A message without
    fields is printed as it is.
    """

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, fields: tuple[str, ...] = ()) -> None:
        self.template = message
        self.fields = tuple(fields)
        super().__init__(self.render())

    def render(self, name=None) -> str:  # noqa: ANN001 - a callable field -> display name
        """The one-line message with every ``{field}`` placeholder named by ``name(field)`` (default: the field)."""
        if not self.fields:
            return self.template
        names = {f: (name(f) if name is not None else f) for f in self.fields}
        return self.template.format(**names)

    def __str__(self) -> str:
        return self.render()


class UnknownNameError(LlmsizerError):
    """An id or alias that is in no catalog; the message carries the closest matches."""


class CatalogError(LlmsizerError):
    """A catalog file that cannot be read or does not validate; the message names file, entry and field."""


class ModelFileError(LlmsizerError):
    """A model file (config.json, safetensors, GGUF) that cannot be read or lacks a required field."""


class InvalidInputError(LlmsizerError):
    """A number or combination of inputs that makes no sense (negative size, a TP that does not divide the GPUs...)."""


class NoFitError(LlmsizerError):
    """Valid input, but no configuration fits; exit code 1."""

    exit_code = EXIT_NO_FIT


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str) -> str:
    """``text`` (a path, a name read from a file) with control characters written as ``\\xNN``: a message stays
    one line, and a terminal escape sequence in it is shown, not obeyed."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def literal(text: str) -> str:
    """``text`` (a user's value, a path, an OS message) safe inside a message template: braces doubled."""
    return text.replace("{", "{{").replace("}", "}}")


def invalid(field: str, problem: str) -> InvalidInputError:
    """``InvalidInputError`` about one field: "<field> <problem>", e.g. ``invalid("tokens", "must be positive")``."""
    return InvalidInputError("{" + field + "} " + literal(problem), fields=(field,))
