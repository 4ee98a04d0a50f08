"""Errors a user can act on, and the exit codes the CLI maps them to (see CONTRACT.md).

The library raises; ``cli.py`` turns an ``LlmsizerError`` into one line on stderr and its exit code, once.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_NO_FIT = 1
EXIT_USAGE = 2


class LlmsizerError(Exception):
    """Base class: a problem with the user's input, files or catalogs. ``str(e)`` is the one-line message."""

    exit_code = EXIT_USAGE


class UnknownNameError(LlmsizerError):
    """An id or alias that is in no catalog; the message carries the closest matches."""


class CatalogError(LlmsizerError):
    """A catalog file that cannot be read or does not validate; the message names file, entry and field."""


class ModelFileError(LlmsizerError):
    """A model file (config.json, safetensors, GGUF) that cannot be read or lacks a required field."""


class InvalidInputError(LlmsizerError):
    """A number or combination of options that makes no sense (negative size, TP that does not divide GPUs...)."""


class NoFitError(LlmsizerError):
    """Valid input, but no configuration fits; exit code 1."""

    exit_code = EXIT_NO_FIT
