"""The choices of CLI options that are not job concepts: output format and label language (the job's own choices,
ranking included, are ``workload/choices.py``). Kept apart from ``app.py`` so that the fast ``plan`` parser can
use them without importing Typer."""

from __future__ import annotations

from enum import Enum


class Format(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"
    html = "html"


class ListFormat(str, Enum):
    table = "table"
    json = "json"
    markdown = "markdown"


class Lang(str, Enum):
    en = "en"
    zh = "zh"
