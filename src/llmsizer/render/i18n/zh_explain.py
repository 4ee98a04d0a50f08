"""Chinese words of every ``plan --explain`` step (see ``en_explain.py``)."""

EXPLAIN: dict = {}
