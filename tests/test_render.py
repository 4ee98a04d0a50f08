"""render/: JSON contract and schema, the markdown golden file, NO_COLOR, --lang zh, the standalone HTML page.

The PlanResults here are built by hand from fixed numbers, so these tests check the renderers only, not the
estimators (which have their own tests).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

import llmsizer
from llmsizer.compute import CostEstimate, InferenceEstimate, TrainingEstimate
from llmsizer.compute.server import Network, ServerSpec
from llmsizer.explain import Step
from llmsizer.memory import MemoryBreakdown
from llmsizer.render import (
    fmt,
    load_schema,
    plan_to_dict,
    render_fit,
    render_gpu,
    render_gpus,
    render_model,
    render_models,
    render_plan,
    render_validate,
)
from llmsizer.render.common import bar_cells
from llmsizer.search import CloudOffer, Constraints, Plan, PlanResult
from llmsizer.specs import CloudInstance, GpuSpec, ModelSpec
from llmsizer.specs.architecture import count_params
from llmsizer.workload import Layout, Mode, Offload, Recompute, Workload

GOLDEN = Path(__file__).parent / "golden"
GIB = 2**30
ANSI = re.compile(r"\x1b\[")


# ------------------------------------------------------------------------------------------------ fixtures


def _model() -> ModelSpec:
    return ModelSpec(
        id="llama-3.1-8b", name="Llama 3.1 8B", family="llama", published_params=8.03e9, layers=32,
        hidden_size=4096, heads=32, kv_heads=8, ffn_size=14336, vocab_size=128256, max_context=131072,
        source="https://huggingface.co/meta-llama/Llama-3.1-8B/blob/main/config.json",
    )


def _gpu(id_: str = "h100-sxm", name: str = "NVIDIA H100 SXM5 80GB", price: float | None = 2.99) -> GpuSpec:
    return GpuSpec(
        id=id_, name=name, vendor="nvidia", form_factor="SXM5", memory_gib=80, usable_memory_fraction=0.95,
        memory_bandwidth_gb_s=3350, dense_tflops={"bf16": 989, "fp8": 1979, "fp32": 67}, scaleup="nvlink",
        scaleup_bandwidth_gb_s=900, scaleup_domain=8, gpus_per_node=8, scaleout_gbps=400, tdp_watts=700,
        price_usd_per_gpu_hour=price, price_source="https://example.org/prices (on-demand list price)" if price else None,
        price_date="2025-01" if price else None, source="https://www.nvidia.com/en-us/data-center/h100/",
    )


def _steps() -> tuple[Step, ...]:
    return (
        Step("memory.weights", 16.06e9 / 8, "bytes", {"params": 8_030_261_248, "dp": 8},
             "Rajbhandari et al. 2020 (ZeRO), sec. 5"),
        Step("memory.activations", 6.2 * GIB, "bytes", {"seq_len": 4096, "micro_batch": 2, "hidden": 4096},
             "Korthikanti et al. 2022, sec. 4"),
    )


def train_result(*, explain_steps: bool = True, unfit: bool = False) -> PlanResult:
    """A full fine-tune of an 8B model on 8 and 16 H100s, numbers fixed by hand."""
    model, gpu = _model(), _gpu()
    w = Workload(mode=Mode.finetune, seq_len=4096, tokens=2e9)
    layout = Layout(tp=1, pp=1, dp=8, zero=3, recompute=Recompute.selective, micro_batch=2)
    mem = MemoryBreakdown(
        weights_bytes=2_007_565_312.4, gradients_bytes=2_007_565_312.4, optimizer_bytes=12_045_391_872.6,
        activations_bytes=6.2 * GIB, kv_cache_bytes=0.0, overhead_bytes=2.5 * GIB,
        steps=_steps() if explain_steps else (),
    )
    training = TrainingEstimate(tokens_per_second=71_500.0, mfu=0.41, hfu=0.47, flops_per_token=4.82e10,
                                seconds=2e9 / 71_500.0, gpu_hours=8 * 2e9 / 71_500.0 / 3600, energy_kwh=98.4,
                                steps=(Step("compute.training_time", 2e9 / 71_500.0, "s",
                                            {"tokens": 2e9, "tokens_per_s": 71_500.0}),))
    cost = CostEstimate(usd_per_hour=8 * 2.99, usd_total=8 * 2.99 * 2e9 / 71_500.0 / 3600, energy_kwh=98.4,
                        steps=(Step("cost.total", 185.85, "USD", {"gpus": 8}),))
    server = ServerSpec(gpus=8, cpu_cores=96, ram_bytes=1280 * GIB, storage_bytes=1_300_000_000_000,
                        network=Network("node", "nvlink"), power_watts=10080, psu_watts=12600, rack_units=8,
                        steps=(Step("server.power", 10080, "W", {"tdp_watts": 700, "overhead": 0.8},
                                    "NVIDIA DGX H100 user guide"),))
    cloud = (
        CloudOffer("lambda", "gpu_8x_h100_sxm5", 1, 23.92, "us-east-1", "2025-01", "https://lambdalabs.com/pricing"),
        CloudOffer("aws", "p5.48xlarge", 1, 98.32, "us-east-1", "2025-01", "https://aws.amazon.com/ec2/pricing/"),
    )
    best = Plan(gpu, layout, True, (), mem, 0.95 * 80 * GIB, training, None, cost, server, cloud)
    layout2 = Layout(tp=1, pp=1, dp=16, zero=3, offload=Offload.none, recompute=Recompute.none, micro_batch=4)
    mem2 = MemoryBreakdown(1.0e9, 1.0e9, 6.0e9, 30.0 * GIB, 0.0, 2.5 * GIB)
    second = Plan(gpu, layout2, True, (), mem2, 0.95 * 80 * GIB,
                  TrainingEstimate(140_000.0, 0.40, 0.40, 4.82e10, 2e9 / 140_000.0, 16 * 2e9 / 140_000 / 3600, None),
                  None, CostEstimate(16 * 2.99, 16 * 2.99 * 2e9 / 140_000 / 3600),
                  ServerSpec(8, 96, 1280 * GIB, 1_300_000_000_000, Network("node", "nvlink"), 10080, 12600, 8),
                  cloud[:1])
    plans = [best, second]
    if unfit:
        l40 = _gpu("l40s", "NVIDIA L40S", price=None)
        mem3 = MemoryBreakdown(16.06e9, 16.06e9, 96.4e9, 3.0 * GIB, 0.0, 1.0 * GIB)
        plans.append(Plan(l40, Layout(dp=1), False, ("needs 125.4 GiB per GPU, 76.0 GiB usable",), mem3,
                          0.95 * 80 * GIB, TrainingEstimate(5000.0, 0.3, 0.3, 4.82e10, None, None, None), None, None))
    return PlanResult(model, w, Constraints(), plans, notes=["8B fine-tune: ZeRO-3 shards the optimizer state"],
                      suggestions=["add --tokens to get a total cost"], evaluated=1234, search_seconds=0.4321)


def infer_result() -> PlanResult:
    model, gpu = _model(), _gpu()
    w = Workload(mode=Mode.inference, prompt_tokens=1000, output_tokens=500, concurrency=32)
    mem = MemoryBreakdown(16.06e9, 0.0, 0.0, 0.5 * GIB, 4.19e9, 1.5 * GIB)
    inf = InferenceEstimate(ttft_seconds=0.0912, tpot_seconds=0.0125, tokens_per_second=2560.0, max_concurrency=412,
                            saturation_concurrency=160)
    cost = CostEstimate(2.99, None, usd_per_million_output_tokens=0.3244)
    plan = Plan(gpu, Layout(), True, (), mem, 0.95 * 80 * GIB, None, inf, cost,
                ServerSpec(1, 8, 64 * GIB, 100_000_000_000, Network("single"), 1260, 1600, 1))
    return PlanResult(model, w, Constraints(), [plan], evaluated=42, search_seconds=0.01)


# ------------------------------------------------------------------------------------------------ JSON


def test_plan_json_has_the_contract_keys():
    doc = json.loads(render_plan(train_result(), "json"))
    assert doc["schema_version"] == 1
    assert doc["llmsizer_version"] == llmsizer.__version__
    m = doc["model"]
    for k in ("id", "name", "params", "active_params", "layers", "hidden_size", "heads", "kv_heads", "vocab_size",
              "source"):
        assert k in m, k
    assert m["params"] == count_params(_model()).total == 8_030_261_248
    assert doc["workload"]["mode"] == "finetune" and doc["workload"]["precision"] == "bf16"
    p = doc["plans"][0]
    assert p["gpu"] == {"id": "h100-sxm", "name": "NVIDIA H100 SXM5 80GB", "vendor": "nvidia",
                        "memory_bytes": 80 * GIB}
    assert (p["gpu_count"], p["nodes"], p["fits"]) == (8, 1, True)
    assert set(p["parallelism"]) >= {"dp", "tp", "pp", "ep", "zero", "offload", "recompute", "micro_batch"}
    assert p["parallelism"]["zero"] == 3 and p["parallelism"]["recompute"] == "selective"
    assert set(p["training"]) >= {"tokens_per_second", "mfu", "seconds", "gpu_hours"}
    assert p["inference"] is None
    assert set(p["cost"]) >= {"usd_per_hour", "usd_total"}
    assert set(p["server"]) >= {"cpu_cores", "ram_bytes", "storage_bytes", "network", "power_watts"}
    assert p["cloud"][0] == {"provider": "lambda", "instance": "gpu_8x_h100_sxm5", "instances": 1,
                             "usd_per_hour": 23.92, "region": "us-east-1", "price_date": "2025-01",
                             "price_source": "https://lambdalabs.com/pricing", "idle_gpus": 0}
    assert doc["search"] == {"evaluated": 1234}  # no timing: the output is deterministic
    assert "explain" not in p


@pytest.mark.parametrize("make", [train_result, infer_result])
def test_memory_total_is_the_sum_of_rounded_parts(make):
    for p in json.loads(render_plan(make(), "json"))["plans"]:
        mem = p["memory_per_gpu"]
        parts = [mem[k] for k in ("weights_bytes", "gradients_bytes", "optimizer_bytes", "activations_bytes",
                                  "kv_cache_bytes", "overhead_bytes")]
        assert all(isinstance(x, int) for x in parts + [mem["total_bytes"]])
        assert mem["total_bytes"] == sum(parts)


def test_inference_json_and_unpriced_cost():
    doc = json.loads(render_plan(infer_result(), "json"))
    p = doc["plans"][0]
    assert p["training"] is None
    assert p["inference"]["max_concurrency"] == 412 and p["inference"]["ttft_seconds"] == 0.0912
    assert p["cost"]["usd_total"] is None and p["cost"]["usd_per_million_output_tokens"] == 0.3244
    assert doc["workload"]["context"] == 1500 and doc["workload"]["seq_len"] is None
    unfit = json.loads(render_plan(train_result(unfit=True), "json"))["plans"][-1]
    assert unfit["fits"] is False and unfit["reasons"]
    assert unfit["cost"]["usd_per_hour"] is None and unfit["cost"]["usd_total"] is None
    assert unfit["training"]["seconds"] is None


@pytest.mark.parametrize("make", [train_result, infer_result, lambda: train_result(unfit=True)])
def test_plan_json_validates_against_the_packaged_schema(make):
    schema = load_schema("plan")
    jsonschema.Draft202012Validator.check_schema(schema)
    for explain in (False, True):
        jsonschema.validate(json.loads(render_plan(make(), "json", explain=explain)), schema)


def test_json_is_deterministic_and_explain_is_additive():
    a, b = render_plan(train_result(), "json"), render_plan(train_result(), "json")
    assert a == b
    doc = plan_to_dict(train_result(), explain=True)
    steps = doc["plans"][0]["explain"]
    assert [s["stage"] for s in steps] == ["memory", "memory", "training", "cost", "server"]
    assert steps[0]["inputs"] == {"params": 8_030_261_248, "dp": 8}
    assert "explain" not in doc["plans"][1]
    assert plan_to_dict(train_result(), timing=True)["search"]["seconds"] == pytest.approx(0.4321)


def test_non_finite_numbers_become_null():
    r = train_result()
    p = r.plans[0]
    r.plans[0] = Plan(p.gpu, p.layout, p.fits, p.reasons, p.memory, p.usable_memory_bytes,
                      TrainingEstimate(0.0, 0.0, 0.0, 1.0, float("inf"), float("nan"), None), None, p.cost, p.server)
    doc = json.loads(render_plan(r, "json"))  # allow_nan=False would raise on NaN
    assert doc["plans"][0]["training"]["seconds"] is None and doc["plans"][0]["training"]["gpu_hours"] is None


def test_catalog_json_and_schemas():
    models = json.loads(render_models([_model()], "json"))
    jsonschema.validate(models, load_schema("models"))
    assert models["models"][0]["params"] == 8_030_261_248 and models["models"][0]["moe"] is None
    assert json.loads(render_model(_model(), "json"))["models"][0]["head_dim"] == 128
    gpus = json.loads(render_gpus([_gpu()], "json"))
    jsonschema.validate(gpus, load_schema("gpus"))
    g = gpus["gpus"][0]
    assert g["memory_bytes"] == 80 * GIB and g["flops"]["bf16"] == 989e12
    assert g["memory_bandwidth_bytes_per_s"] == 3350e9 and g["usable_memory_bytes"] == int(0.95 * 80 * GIB)
    inst = CloudInstance(provider="aws", instance="p5.48xlarge", gpu="h100-sxm", gpus=8, vcpus=192, ram_gib=2048,
                         local_nvme_tb=30.4, network_gbps=3200, usd_per_hour=98.32, price_date="2025-01",
                         price_source="https://aws.amazon.com/ec2/pricing/")
    one = json.loads(render_gpu(_gpu(), [inst], "json"))
    jsonschema.validate(one, load_schema("gpus"))
    assert one["gpus"][0]["instances"][0]["ram_bytes"] == 2048 * GIB


def test_fit_and_validate_docs_render():
    fit = {"schema_version": 1, "models": [{"id": "llama-3.1-8b", "fits": True, "precision": "bf16", "quant": "none",
                                            "max_context": 131072, "tokens_per_second": 2560.0}]}
    jsonschema.validate(json.loads(render_fit(fit, "json")), load_schema("fit"))
    assert "131,072" in render_fit(fit, "markdown") and "2.6k tok/s" in render_fit(fit, "table", color=False)
    val = {"schema_version": 1, "cases": [{"id": "llama2-7b-gpu-hours", "source": "Touvron 2023, table 2",
                                           "quantity": "GPU-hours", "published": 184320, "predicted": 170000,
                                           "error": 170000 / 184320 - 1}], "summary": {"cases": 1, "mape": 0.078}}
    jsonschema.validate(json.loads(render_validate(val, "json")), load_schema("validate"))
    assert "-7.8%" in render_validate(val, "markdown")
    val["cases"][0]["unit"] = "gpu_hours"
    assert "184k GPU-hours" in render_validate(val, "table", color=False, width=160)
    assert fmt.value(2.5 * GIB, "bytes") == "2.50 GiB (2.68 GB)" and fmt.value(21.3, "days") == "21.3 days"
    assert fmt.value(0.41, "fraction") == "0.410 (41%)" and fmt.value(1500.0, "tokens/s") == "1.5k tok/s"


# ------------------------------------------------------------------------------------------------ markdown


def test_markdown_matches_the_golden_file():
    # the version is the one thing allowed to change: the golden file says VERSION
    got = render_plan(train_result(), "markdown", explain=True).replace(llmsizer.__version__, "VERSION")
    if os.environ.get("LLMSIZER_UPDATE_GOLDEN"):  # LLMSIZER_UPDATE_GOLDEN=1 pytest ...; then review the diff by eye
        (GOLDEN / "plan.md").write_text(got, encoding="utf-8")
    want = (GOLDEN / "plan.md").read_text(encoding="utf-8")
    assert got == want, "regenerate tests/golden/plan.md only after reviewing the new output by eye"


def test_markdown_tables_are_well_formed():
    text = render_plan(train_result(unfit=True), "markdown", explain=True)
    for block in text.split("\n\n"):
        lines = block.splitlines()
        if lines and lines[0].startswith("|"):
            widths = {len(re.split(r"(?<!\\)\|", line)) for line in lines}
            assert len(widths) == 1, block
    assert "| 3 | l40s |" in text and "- #3 1 × NVIDIA L40S: needs 125.4 GiB per GPU" in text


# ------------------------------------------------------------------------------------------------ table


def test_table_without_colour_has_no_ansi(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    out = render_plan(train_result(), "table", width=120, color=True, explain=True)  # NO_COLOR wins
    assert not ANSI.search(out)
    assert "NVIDIA H100 SXM5 80GB" in out and "GiB" in out
    monkeypatch.delenv("NO_COLOR")
    assert not ANSI.search(render_plan(train_result(), "table", width=120, color=False))
    assert ANSI.search(render_plan(train_result(), "table", width=120, color=True))


def test_table_is_width_aware():
    for width in (60, 100, 200):
        out = render_plan(train_result(unfit=True), "table", width=width, color=False, explain=True)
        assert max(len(line) for line in out.splitlines()) <= width
    wide = render_plan(train_result(), "table", width=160, color=False)
    assert "23.7 / 76.0 GiB" in wide  # used / usable memory per GPU
    assert "7.77 hours" in wide and "$186" in wide and "1.30 TB NVMe" in wide and "1,280 GiB RAM" in wide


def test_table_inference_and_catalog_views():
    out = render_plan(infer_result(), "table", width=140, color=False)  # a table with a column per figure
    assert "TTFT" in out and "91.2 ms" in out and "12.5 ms" in out and "2.6k tok/s" in out and "$0.32" in out
    narrow = render_plan(infer_result(), "table", width=80, color=False)  # one block per plan
    assert "TTFT 91.2 ms" in narrow and "TPOT 12.5 ms" in narrow and "$0.32/M tok" in narrow
    assert "Llama 3.1 8B" in render_models([_model()], "table", color=False)
    assert "3.35 TB/s" in render_gpus([_gpu()], "table", color=False, width=150)
    assert "8,030,261,248" in render_model(_model(), "markdown")
    assert "989 TFLOP/s" in render_gpu(_gpu(), [], "markdown")


def test_json_does_not_import_rich():
    code = ("import sys; from tests.test_render import train_result; from llmsizer.render import render_plan; "
            "render_plan(train_result(), 'json'); print(any(m == 'rich' or m.startswith('rich.') "
            "for m in sys.modules))")
    root = Path(__file__).parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=False,
                         env={"PYTHONPATH": f"{root / 'src'}:{root}", "PATH": ""})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------------------------------------ labels


def test_zh_labels_and_unchanged_json_keys():
    for f in ("table", "markdown", "html"):
        out = render_plan(train_result(), f, lang="zh", explain=True, color=False, width=140)
        assert "候选方案" in out and "权重" in out and "服务器" in out, f
    assert "7.77 小时" in render_plan(train_result(), "markdown", lang="zh")
    assert render_plan(train_result(), "json", lang="zh") == render_plan(train_result(), "json")
    with pytest.raises(ValueError, match="unknown language"):
        render_plan(train_result(), "markdown", lang="fr")
    with pytest.raises(ValueError, match="unknown format"):
        render_plan(train_result(), "yaml")


# ------------------------------------------------------------------------------------------------ html


def test_html_is_a_standalone_page():
    page = render_plan(train_result(unfit=True), "html", explain=True)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<style>" in page and "<svg" in page and "<script" not in page.lower()
    assert not re.search(r"<(link|img|iframe|object|embed)\b", page, re.IGNORECASE)
    # the only URLs are citations inside <a href>, never resources
    for m in re.finditer(r"https?://", page):
        before = page[max(0, m.start() - 9): m.start()]
        assert before.endswith('<a href="') or page[: m.start()].rfind("<a href") > page[: m.start()].rfind("</a>")
    assert '<a href="https://lambdalabs.com/pricing">' in page
    assert "url(" not in page and "@import" not in page


def test_html_escapes_catalog_text():
    r = train_result()
    r.notes = ["<b>bold</b> & <script>alert(1)</script>"]
    page = render_plan(r, "html")
    assert "<script>alert" not in page and "&lt;script&gt;" in page


# ------------------------------------------------------------------------------------------------ units


@pytest.mark.parametrize("value,text", [
    (62.3 * GIB, "62.3 GiB"), (512 * 2**20, "512 MiB"), (0, "0 GiB"), (1.5 * 2**40, "1.50 TiB"),
])
def test_gib(value, text):
    assert fmt.gib(value) == text


@pytest.mark.parametrize("value,text", [
    (34.2 * 86400, "34.2 days"), (0.0125, "12.5 ms"), (42.0, "42.0 s"), (3 * 3600, "3.00 hours"),
    (3 * 365.25 * 86400, "3.00 years"), (90 * 60, "90.0 min"), (5e-4, "500 µs"), (None, "—"),
])
def test_duration(value, text):
    assert fmt.duration(value) == text


@pytest.mark.parametrize("value,text", [(1234.4, "$1,234"), (12.345, "$12.35"), (0.0042, "$0.0042"),
                                        (None, "—")])
def test_usd(value, text):
    assert fmt.usd(value) == text


def test_other_units():
    assert fmt.rate(1234) == "1.2k tok/s" and fmt.rate(850) == "850 tok/s"
    assert fmt.storage(15e12) == "15.0 TB" and fmt.storage(960e9) == "960 GB"
    assert fmt.ram(2048 * GIB) == "2,048 GiB" and fmt.ram(512 * GIB) == "512 GiB"
    assert fmt.params(70_553_706_496) == "70.6B" and fmt.params(124e6) == "124M"
    assert fmt.watts(10080) == "10.1 kW" and fmt.percent(0.41) == "41%"
    assert fmt.bandwidth(3.35e12) == "3.35 TB/s" and fmt.flops(989e12) == "989 TFLOP/s"
    assert fmt.sig(9.996, 3) == "10.0"


def test_memory_bar_cells_add_up():
    p = train_result().plans[0]
    for width in (10, 37, 50):
        cells = bar_cells(p, width)
        assert sum(n for _, n in cells) == width
        assert all(n >= 1 for _, n in cells)
    over = train_result(unfit=True).plans[-1]
    assert all(part is not None for part, _ in bar_cells(over, 40))  # over capacity: no free space


def test_si_rounds_before_choosing_the_unit():
    # issue 18: Gemma 3 1B (999,885,952 parameters) showed as "1,000M"
    from llmsizer.render import fmt

    assert fmt.params(999_885_952) == "1.00B"
    assert fmt.si(999_600) == "1.00M" and fmt.si(1234) == "1.23k" and fmt.si(70.6e9) == "70.6B"
