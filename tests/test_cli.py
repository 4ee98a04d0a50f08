"""CLI smoke tests through Typer's CliRunner: exit codes, JSON on stdout, one-line errors on stderr."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from llmsizer.cli.app import app


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMSIZER_CONFIG_DIR", str(tmp_path / "no-user-config"))
    monkeypatch.setenv("NO_COLOR", "1")


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def assert_one_line_error(r, code: int = 2, *fragments: str):
    assert r.exit_code == code, (r.exit_code, r.stdout, r.stderr)
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


def test_plan_json_contract():
    r = invoke("plan", "--model", "70b", "--mode", "finetune", "--format", "json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["schema_version"] == 1
    assert doc["model"]["id"] == "llama-3.1-70b"
    top = doc["plans"][0]
    assert top["fits"] is True
    mem = top["memory_per_gpu"]
    parts = ["weights_bytes", "gradients_bytes", "optimizer_bytes", "activations_bytes", "kv_cache_bytes",
             "overhead_bytes"]
    assert mem["total_bytes"] == sum(mem[k] for k in parts)
    assert mem["total_bytes"] <= top["gpu"]["memory_bytes"]
    assert top["training"]["tokens_per_second"] > 0 and top["inference"] is None
    assert top["gpu_count"] == top["parallelism"]["dp"] * top["parallelism"]["tp"] * top["parallelism"]["pp"]
    assert "70b" in r.stderr  # the size shorthand says which architecture it resolved to


def test_plan_inference_json():
    r = invoke("plan", "--model", "llama-3.1-8b", "--format", "json", "--gpu", "l4,a10")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    for p in doc["plans"]:
        assert p["gpu"]["id"] in ("l4", "a10")
        inf = p["inference"]
        assert inf["ttft_seconds"] > 0 and inf["tpot_seconds"] > 0 and inf["max_concurrency"] >= 1
        assert p["training"] is None


def test_nothing_fits_exits_1():
    r = invoke("plan", "--model", "llama-3.1-405b", "--mode", "finetune", "--gpu", "rtx-3060", "--gpus", "1",
               "--format", "json")
    assert r.exit_code == 1
    doc = json.loads(r.stdout)
    assert doc["plans"] and not any(p["fits"] for p in doc["plans"])


@pytest.mark.parametrize("args,fragment", [
    (("plan", "--model", "llama-9000"), "unknown model 'llama-9000'"),
    (("plan", "--model", "llama-3.1-8b", "--gpu", "h10"), "did you mean"),
    (("plan", "--model", "llama-3.1-8b", "--tokens", "-5"), "--tokens"),
    (("plan", "--model", "llama-3.1-8b", "--tokens", "lots"), "invalid --tokens"),
    (("plan", "--model", "llama-3.1-8b", "--concurrency", "0"), "--concurrency"),
    (("plan", "--model", "llama-3.1-8b", "--mode", "dance"), "--mode"),
    (("plan", "--model", "llama-3.1-8b", "--gpus", "8", "--tp", "3"), "--gpus 8"),
    (("plan",), "missing --model"),
    (("plan", "--model", "8b", "--params", "8e9"), "either --model or --params"),
    (("plan", "--model", "llama-3.1-8b", "--deadline", "soon"), "--deadline"),
    (("plan", "--model", "./does-not-exist/config.json"), "does-not-exist"),
    (("gpus", "h10"), "did you mean"),
    (("models", "--family", "nope"), "no model of family"),
])
def test_bad_input_is_one_line_exit_2(args, fragment):
    assert_one_line_error(invoke(*args), 2, fragment)


def test_broken_user_catalog_names_file_and_entry(tmp_path):
    bad = tmp_path / "mine.yaml"
    bad.write_text("gpus:\n  - id: my-gpu\n    name: Mine\n    vendor: nvidia\n")
    r = invoke("gpus", "--catalog", str(bad))
    assert_one_line_error(r, 2, "mine.yaml", "my-gpu")


def test_user_catalog_adds_a_gpu(tmp_path):
    extra = tmp_path / "cluster.yaml"
    extra.write_text(
        "gpus:\n"
        "  - id: inhouse-h100\n    name: In-house H100\n    vendor: nvidia\n    form_factor: sxm\n"
        "    memory_gib: 80\n    memory_bandwidth_gb_s: 3350\n    dense_tflops: {bf16: 989.4, fp8: 1978.9}\n"
        "    scaleup: nvlink\n    scaleup_bandwidth_gb_s: 900\n    scaleup_domain: 8\n    gpus_per_node: 8\n"
        "    scaleout_gbps: 400\n    tdp_watts: 700\n    price_usd_per_gpu_hour: 1.10\n"
        "    price_source: negotiated contract, 2026\n    source: NVIDIA H100 datasheet (our cluster)\n")
    r = invoke("plan", "--model", "llama-3.1-8b", "--gpu", "inhouse-h100", "--format", "json", "--catalog", str(extra))
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["plans"][0]["gpu"]["id"] == "inhouse-h100"


@pytest.mark.parametrize("fmt", ["table", "markdown", "html", "json"])
def test_every_format_renders(fmt):
    r = invoke("plan", "--model", "llama-3.1-8b", "--mode", "lora", "--format", fmt, "--top", "2")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip()
    assert "\x1b[" not in r.stdout  # NO_COLOR


def test_models_and_gpus_json():
    m = json.loads(invoke("models", "--format", "json").stdout)
    g = json.loads(invoke("gpus", "--format", "json").stdout)
    assert m["schema_version"] == 1 and len(m["models"]) >= 40
    assert g["schema_version"] == 1 and len(g["gpus"]) >= 30
    for key in ("id", "name", "params", "active_params", "layers", "hidden_size", "heads", "kv_heads",
                "vocab_size", "source"):
        assert key in m["models"][0]
    for key in ("id", "name", "vendor", "memory_bytes", "memory_bandwidth_bytes_per_s", "flops", "tdp_watts",
                "source"):
        assert key in g["gpus"][0]
    h100 = next(x for x in g["gpus"] if x["id"] == "h100-sxm")
    assert h100["memory_bytes"] == 85899345920


def test_params_derives_an_architecture():
    r = invoke("plan", "--params", "7e9", "--mode", "inference", "--format", "json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert abs(doc["model"]["params"] / 7e9 - 1) < 0.05
    assert "derived" in r.stderr


def test_version():
    r = invoke("--version")
    assert r.exit_code == 0 and r.stdout.startswith("llmsizer ")


def test_user_config_folder_overrides_a_price(tmp_path, monkeypatch):
    # ~/.config/llmsizer/*.yaml (here $LLMSIZER_CONFIG_DIR) adds or overrides entries: a negotiated H100 price
    d = tmp_path / "cfg"
    d.mkdir()
    monkeypatch.setenv("LLMSIZER_CONFIG_DIR", str(d))
    base = json.loads(invoke("gpus", "h100-sxm", "--format", "json").stdout)["gpus"][0]
    entry = {k: v for k, v in base.items() if k in (
        "id", "name", "vendor", "form_factor", "source")}
    (d / "prices.yaml").write_text(
        "gpus:\n  - id: h100-sxm\n    name: NVIDIA H100 SXM5 80GB\n    vendor: nvidia\n    form_factor: SXM5\n"
        "    memory_gib: 80\n    memory_bandwidth_gb_s: 3350\n    dense_tflops: {bf16: 989.4, fp8: 1978.9}\n"
        "    scaleup: nvlink\n    scaleup_bandwidth_gb_s: 900\n    scaleup_domain: 8\n    gpus_per_node: 8\n"
        "    scaleout_gbps: 400\n    tdp_watts: 700\n    price_usd_per_gpu_hour: 0.99\n"
        "    price_source: our negotiated contract\n    source: " + entry["source"] + "\n")
    r = invoke("plan", "--model", "llama-3.1-8b", "--gpu", "h100-sxm", "--gpus", "1", "--format", "json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["plans"][0]["cost"]["usd_per_hour"] == pytest.approx(0.99)
