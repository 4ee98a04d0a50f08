"""``data/serving.yaml``: how each inference engine schedules requests (continuous or static batching, its
sequence limit and step token budget), which runtime the llama.cpp-based apps (Ollama, LM Studio) run on, and the
SLA defaults."""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def serving_data() -> Any:
    """``data/serving.yaml``, validated, once per process (from the disk cache when unchanged)."""
    from llmsizer.data import load

    return load("serving")


def engine_serving(engine: str) -> Any:
    """The scheduling profile of ``engine`` (an ``Engine`` value)."""
    return serving_data().engines[engine]


def runtime_of(engine: str) -> str:
    """The runtime whose kernels and memory rules ``engine`` uses: ``llama.cpp`` for Ollama and LM Studio, the
    engine itself otherwise."""
    return serving_data().engines[engine].runs_on or engine


__all__ = ["engine_serving", "runtime_of", "serving_data"]
