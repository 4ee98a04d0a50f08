"""English words of the notes the model-file readers make (``catalog/modelfiles``, ``catalog/hub.py``); same
conventions as ``en.MESSAGES``: each entry is a function of (params, name, fmt)."""

# ruff: noqa: E501 - one entry per line reads best

MESSAGES: dict = {}
