"""The choices of CLI options that are not workload concepts: output format, ranking, label language.

Kept apart from cli.py so that the fast ``plan`` parser (entry.py) can use them without importing Typer.
"""

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


class Sort(str, Enum):
    cost = "cost"
    time = "time"
    gpus = "gpus"


class Lang(str, Enum):
    en = "en"
    zh = "zh"
