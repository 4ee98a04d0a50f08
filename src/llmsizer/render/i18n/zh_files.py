"""Chinese words of the model-file readers' notes (see ``en_files.py``)."""

# ruff: noqa: E501 - one entry per line reads best

MESSAGES: dict = {}
