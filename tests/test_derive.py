"""--params: a Llama-style architecture derived from a bare count lands on the count and is parallelisable."""

from __future__ import annotations

import pytest

from llmsizer.catalog.derive import derive_from_params
from llmsizer.errors import InvalidInputError
from llmsizer.render.i18n import say
from llmsizer.specs.architecture import count_params


@pytest.mark.parametrize("n", [1.2e8, 1e9, 3e9, 7e9, 7.5e9, 13e9, 34e9, 72e9, 175e9, 405e9, 1e12])
def test_derived_count_and_shape(n):
    m, note = derive_from_params(n)
    total = count_params(m).total
    assert abs(total / n - 1) < 0.01, (n, total)
    assert m.published_params == total and "derived" in say(note)
    assert m.heads % m.kv_heads == 0
    if n >= 7e9:
        # GQA with 8 KV heads and heads divisible by 8: tensor parallelism of 8 works (Llama 3, Table 3)
        assert m.kv_heads == 8 and m.heads % 8 == 0
    if n >= 1e9:  # below that a 128k-token embedding dominates and the shape is squeezed
        assert 40 <= m.hidden_size / m.layers <= 200  # Kaplan et al. 2020 sec. 3.1: loss flat over this range


@pytest.mark.parametrize("n", [0, 1e5, 1e14])
def test_out_of_range(n):
    with pytest.raises(InvalidInputError):
        derive_from_params(n)
