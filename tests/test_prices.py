"""Prices with their basis (rent, amortized purchase, the user's) in JSON, table and explain; every GPU the catalog
can price is priced, from consistent sources; cloud offers say how many of their GPUs a plan leaves idle."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from llmsizer import load_catalog
from llmsizer.cli.app import app


def _run(*args: str):
    r = CliRunner().invoke(app, list(args))
    return r


def _plans(*args: str) -> list[dict]:
    r = _run("plan", *args, "--format", "json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)["plans"]


def test_a100_40gb_is_not_priced_above_the_80gb():
    # Lambda's on-demand list (lambda.ai/pricing, via SkyPilot's catalog 2025-09): A100 SXM 40GB $1.29 per GPU-hour,
    # 8x A100 SXM 80GB $14.32/h = $1.79 per GPU-hour. One provider, one date.
    cat = load_catalog()
    small, big = cat.gpu("a100-40gb-sxm"), cat.gpu("a100-80gb-sxm")
    assert small.price_usd_per_gpu_hour == pytest.approx(1.29, abs=0.005)
    assert small.price_usd_per_gpu_hour < big.price_usd_per_gpu_hour


def test_rented_gpu_cost_names_its_basis_source_and_date():
    p = _plans("--model", "7b", "--mode", "inference", "--gpu", "h100-sxm", "--top", "1")[0]
    c = p["cost"]
    assert c["basis"] == "rent"
    assert c["source"] and c["as_of"]
    assert c["usd_per_hour"] == pytest.approx(c["usd_per_gpu_hour"] * p["gpu_count"])
    assert c["amortization"] is None


def test_gaudi3_is_costed_as_owned_from_intels_list_price():
    # Intel's Computex 2024 list price: 8 Gaudi 3 on a UBB for $125,000 = $15,625 each (The Next Platform,
    # 2024-06-13); no public per-accelerator rental, so the plan is an ownership estimate and says so.
    p = _plans("--model", "13b", "--mode", "inference", "--gpu", "gaudi3", "--top", "1")[0]
    c = p["cost"]
    assert c["basis"] == "amortized"
    assert c["usd_per_hour"] is not None and c["usd_per_hour"] > 0
    assert "nextplatform" in c["source"]
    assert c["gpu_purchase_usd"] == pytest.approx(15_625 * p["gpu_count"])
    assert set(c["amortization"]) == {"years", "utilization", "electricity_usd_per_kwh", "source"}


def test_override_price_is_the_users():
    p = _plans("--model", "7b", "--mode", "inference", "--gpu", "h100-sxm", "--price-per-gpu-hour", "2.5",
               "--top", "1")[0]
    assert p["cost"]["basis"] == "override"
    assert p["cost"]["usd_per_gpu_hour"] == 2.5
    assert p["cost"]["as_of"] is None


def test_table_marks_an_amortized_price_as_owned():
    r = _run("plan", "--model", "13b", "--mode", "inference", "--quant", "int4", "--gpu", "rtx-3090", "--top", "1")
    assert r.exit_code == 0
    assert "/h owned" in r.stdout
    assert "'owned' prices are not rents" in r.stdout  # the footnote says what it is
    r = _run("plan", "--model", "7b", "--mode", "inference", "--gpu", "h100-sxm", "--top", "1")
    assert "owned" not in r.stdout


def test_explain_says_where_the_price_comes_from():
    r = _run("plan", "--model", "13b", "--mode", "inference", "--quant", "int4", "--gpu", "rtx-3090", "--top", "1",
             "--explain")
    assert r.exit_code == 0
    assert "purchase / (years x 8760 x utilization) + power" in r.stdout
    assert "the price given" not in r.stdout
    r = _run("plan", "--model", "7b", "--mode", "inference", "--gpu", "h100-sxm", "--top", "1", "--explain")
    assert "the price given" not in r.stdout


def test_cloud_offers_fit_the_plan_or_say_what_is_idle():
    # Lambda rents A100 40GB in 1, 2, 4 and 8-GPU instances: a 2-GPU plan gets the 2-GPU instance first
    p = _plans("--model", "7b", "--mode", "lora", "--gpu", "a100-40gb-sxm", "--gpus", "2", "--tokens", "1e8",
               "--top", "1")[0]
    assert p["cloud"][0]["instance"] == "gpu_2x_a100" and p["cloud"][0]["idle_gpus"] == 0
    assert all(a["idle_gpus"] <= b["idle_gpus"] or a["idle_gpus"] == 0 for a, b in zip(p["cloud"], p["cloud"][1:]))
    # the 80 GB card is rented only in 8-GPU instances: 6 of 8 idle, and the table says so
    p = _plans("--model", "13b", "--mode", "lora", "--gpu", "a100-80gb-sxm", "--gpus", "2", "--tokens", "1e8",
               "--top", "1")[0]
    assert p["cloud"] and {o["idle_gpus"] for o in p["cloud"]} == {6}
    r = _run("plan", "--model", "13b", "--mode", "lora", "--gpu", "a100-80gb-sxm", "--gpus", "2", "--tokens", "1e8",
             "--top", "1")
    assert "1 (6 GPUs idle)" in r.stdout
