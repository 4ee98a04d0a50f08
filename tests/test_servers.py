"""Servers as they are sold (data/server.yaml ``chassis``), whole machines for CPU and Apple targets (``machines``),
and CPU prompt processing at the rates llama.cpp measures rather than the AMX datasheet peak."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from llmsizer import load_catalog
from llmsizer.cli.app import app
from llmsizer.compute import estimate_inference
from llmsizer.compute.server import chassis_for, server_rules
from llmsizer.units import GIB
from llmsizer.workload import Engine, Layout, Mode, Quant, Workload


def _plan(*args: str) -> dict:
    r = CliRunner().invoke(app, ["plan", *args, "--top", "1", "--format", "json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)["plans"][0]


def test_every_catalog_accelerator_has_a_chassis_and_every_machine_a_spec():
    cat = load_catalog()
    for g in cat.gpus.values():
        assert chassis_for(g) is not None, g.id
        if g.kind != "gpu":
            assert g.id in server_rules().machines, f"{g.id}: cores and power of the whole machine"
    assert set(server_rules().machines) <= set(cat.gpus)


@pytest.mark.parametrize("gpu, chassis", [("mi300x", 8), ("gaudi3", 8), ("b200", 8), ("h100-sxm", 4), ("l40s", 1),
                                          ("rtx-4090", 1), ("m2-max", 1), ("epyc-9654-2s", 1)])
def test_a_one_gpu_plan_names_the_server_it_is_sold_in(gpu, chassis):
    # MI300X and Gaudi ship on 8-OAM UBB boards (AMD MI300X Platform; Intel's 8-accelerator kits), B200 on the
    # 8-GPU HGX B200 board, H100 SXM on HGX boards of 4 or 8 (the 4-GPU one is the smallest that holds 1); PCIe
    # cards, GeForce cards, Macs and CPU servers come one to a machine
    s = _plan("--model", "7b", "--mode", "inference", "--quant", "int4", "--concurrency", "1", "--gpu", gpu,
              "--gpus", "1")["server"]
    assert s["gpus"] == 1
    assert s["chassis_gpus"] == chassis
    assert s["sold_as"]


def test_the_table_says_how_many_gpus_of_the_board_are_used_and_offers_a_slice():
    r = CliRunner().invoke(app, ["plan", "--model", "7b", "--mode", "inference", "--gpu", "mi300x", "--gpus", "1",
                                 "--top", "1"], terminal_width=200)
    assert "1 of 8 GPUs in use in an 8-GPU OAM universal baseboard (UBB) server" in r.stdout
    assert "digitalocean gpu-mi300x1-192gb" in r.stdout


def test_cpu_server_is_a_whole_machine():
    # 2x EPYC 9654 = 2 x 96 cores (AMD product page); the catalog entry's 768 GB of DDR5 is its RAM
    s = _plan("--model", "7b", "--mode", "inference", "--gpu", "epyc-9654-2s")["server"]
    assert s["machine"] is True and s["cpu_cores"] == 192
    assert s["ram_bytes"] == 768 * GIB
    assert s["power_watts"] >= 720  # at least the two 360 W CPUs
    assert "single GPU" not in s["network"]


def test_mac_reports_unified_memory_and_the_gpu_share():
    # M2 Max: 12-core CPU (Apple newsroom 2023-01); 96 GB unified memory, of which Metal's default working set is
    # about 75% on machines above 36 GB (gpustack issue #1375)
    s = _plan("--model", "7b", "--mode", "inference", "--gpu", "m2-max")["server"]
    assert s["cpu_cores"] == 12 and s["ram_bytes"] == 96 * GIB
    assert s["gpu_memory_limit_bytes"] == pytest.approx(0.75 * 96 * GIB, rel=1e-6)
    r = CliRunner().invoke(app, ["plan", "--model", "7b", "--mode", "inference", "--gpu", "m2-max", "--top", "1"],
                           terminal_width=200)
    assert "0 GiB RAM" not in r.stdout and "single GPU" not in r.stdout
    assert "unified memory" in r.stdout


def test_xeon_prompt_processing_matches_llama_cpp_measurements():
    # llama.cpp PR #7487: Llama-2-7B Q4_0 pp512 = 84.09 t/s on 16 Sapphire Rapids cores at 2.2 GHz. Scaled to the
    # 112 cores at 2.0 GHz of 2x Xeon 8480+: 84.09 x 112/16 x 2.0/2.2 = 535 t/s, i.e. 0.96 s for 512 tokens
    # (linear scaling across two sockets is optimistic, hence the tolerance).
    cat = load_catalog()
    w = Workload(mode=Mode.inference, quant=Quant.q4_0, engine=Engine.llama_cpp, prompt_tokens=512,
                 output_tokens=128, concurrency=1)
    e = estimate_inference(cat.model("llama-2-7b"), cat.gpu("xeon-8480-2s"), w, Layout())
    assert e.prefill_seconds == pytest.approx(512 / 535, rel=0.4)
    # and never the 100+ TFLOP/s the AMX datasheet peak would give (a 1,024-token bf16 prefill in ~20 ms)
    w = Workload(mode=Mode.inference, prompt_tokens=1024, output_tokens=128, concurrency=1)
    assert estimate_inference(cat.model("llama-2-7b"), cat.gpu("xeon-8480-2s"), w, Layout()).prefill_seconds > 0.5
