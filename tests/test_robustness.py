"""Robustness: bad input never yields a traceback, work stays bounded, and properties hold for random inputs.

Property tests use hypothesis with a bounded number of examples (CI runs them every time, in seconds).
"""

from __future__ import annotations

import json
import math
import string
import struct

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from llmsizer.specs.architecture import count_params
from llmsizer.catalog import catalog_problems, load_catalog
from llmsizer.cli.app import app
from llmsizer.compute import estimate_training
from llmsizer.data.frameworks import frameworks_for, layout_problem, profile
from llmsizer.errors import LlmsizerError
from llmsizer.memory import estimate_memory
from llmsizer.specs import ModelSpec, MoeSpec
from llmsizer.workload import Layout, Mode, Recompute, Workload

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMSIZER_CONFIG_DIR", str(tmp_path / "none"))
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture(scope="module")
def cat():
    return load_catalog(user_dir=False)


def run(*args: str):
    return CliRunner().invoke(app, list(args))


# --------------------------------------------------------------------------------------------- random models

@st.composite
def models(draw):
    kv = draw(st.sampled_from([1, 2, 4, 8]))
    heads = kv * draw(st.sampled_from([1, 2, 4, 8]))
    head_dim = draw(st.sampled_from([32, 64, 128]))
    moe = None
    if draw(st.booleans()):
        e = draw(st.sampled_from([4, 8, 16]))
        moe = MoeSpec(experts=e, experts_per_token=draw(st.integers(1, min(4, e))),
                      expert_ffn_size=draw(st.sampled_from([256, 512, 1024])))
    return ModelSpec(
        id="random", name="random", family="llama", published_params=1e8,
        layers=draw(st.integers(1, 48)), hidden_size=heads * head_dim, heads=heads, kv_heads=kv,
        head_dim=head_dim, ffn_size=draw(st.sampled_from([512, 1024, 4096, 11008])),
        vocab_size=draw(st.sampled_from([1000, 32000, 128256])), max_context=131072, moe=moe,
        source="hypothesis-generated architecture")


training_modes = st.sampled_from([Mode.finetune, Mode.lora, Mode.qlora, Mode.pretrain])


def _w(mode: Mode, **kw) -> Workload:
    return Workload(mode=mode, quant="nf4" if mode is Mode.qlora else "none", **kw)


@FAST
@given(m=models(), mode=training_modes, b=st.integers(1, 8), s=st.sampled_from([256, 1024, 4096]),
       rc=st.sampled_from(list(Recompute)), zero=st.integers(0, 3), dp=st.sampled_from([1, 2, 8]))
def test_parts_sum_and_memory_grows_with_batch_and_sequence(cat, m, mode, b, s, rc, zero, dp):
    gpu = cat.gpu("h100-sxm")
    lay = Layout(dp=dp, zero=zero, recompute=rc, micro_batch=b)
    stacks = [f for f in frameworks_for(mode)
              if layout_problem(profile(f), 1, 1, dp, 1, zero, lay.offload, 1, dp) is None]
    assume(stacks)
    f = stacks[0]  # the first stack that runs the layout
    mem = estimate_memory(m, gpu, _w(mode, seq_len=s, framework=f), lay)
    parts = (mem.weights_bytes + mem.gradients_bytes + mem.optimizer_bytes + mem.activations_bytes
             + mem.kv_cache_bytes + mem.overhead_bytes)
    assert math.isclose(mem.total_bytes, parts, rel_tol=1e-12)
    assert all(x >= 0 for x in (mem.weights_bytes, mem.activations_bytes, mem.overhead_bytes))
    # micro-batches double, as the search's list does (with fewer micro-batches per step than pipeline stages,
    # memory is a sawtooth in b: tests/test_memory.py)
    bigger_b = estimate_memory(m, gpu, _w(mode, seq_len=s, framework=f),
                               Layout(dp=dp, zero=zero, recompute=rc, micro_batch=2 * b))
    bigger_s = estimate_memory(m, gpu, _w(mode, seq_len=2 * s, framework=f), lay)
    assert bigger_b.total_bytes >= mem.total_bytes
    assert bigger_s.total_bytes >= mem.total_bytes


@FAST
@given(m=models(), ctx=st.integers(1, 65536), conc=st.integers(1, 64))
def test_inference_memory_grows_with_context_and_concurrency(cat, m, ctx, conc):
    gpu = cat.gpu("a100-80gb-sxm")
    base = estimate_memory(m, gpu, Workload(mode=Mode.inference, context=ctx, concurrency=conc), Layout())
    more_ctx = estimate_memory(m, gpu, Workload(mode=Mode.inference, context=ctx * 2, concurrency=conc), Layout())
    more_seq = estimate_memory(m, gpu, Workload(mode=Mode.inference, context=ctx, concurrency=conc + 1), Layout())
    assert more_ctx.total_bytes >= base.total_bytes and more_seq.total_bytes >= base.total_bytes
    assert base.kv_cache_bytes > 0


@FAST
@given(m=models(), dp=st.sampled_from([4, 8, 16, 64]))
def test_zero_stages_never_raise_model_states(cat, m, dp):
    # ZeRO (Rajbhandari et al. 2020, Table 1): per-GPU model states fall with each stage and with more dp
    gpu = cat.gpu("h100-sxm")
    w = _w(Mode.finetune, seq_len=1024)
    states = [estimate_memory(m, gpu, w, Layout(dp=dp, zero=z)).model_states_bytes for z in (0, 1, 2)]
    assert states[0] >= states[1] >= states[2]
    assert (estimate_memory(m, gpu, w, Layout(dp=2 * dp, zero=2)).model_states_bytes
            <= estimate_memory(m, gpu, w, Layout(dp=dp, zero=2)).model_states_bytes)


@FAST
@given(m=models(), tokens=st.floats(1e6, 1e13), n=st.sampled_from([1, 2, 4, 8]))
def test_time_grows_with_tokens_and_falls_with_data_parallelism(cat, m, tokens, n):
    gpu = cat.gpu("h100-sxm")
    w = _w(Mode.pretrain, seq_len=1024, tokens=tokens)
    t1 = estimate_training(m, gpu, w, Layout(dp=n, zero=1)).seconds
    t2 = estimate_training(m, gpu, w.with_(tokens=tokens * 2), Layout(dp=n, zero=1)).seconds
    t3 = estimate_training(m, gpu, w, Layout(dp=2 * n, zero=1)).seconds
    assert t2 > t1 > 0
    assert t3 <= t1


# ------------------------------------------------------------------------------------------------ the CLI

ARGS = st.lists(st.sampled_from([
    "--model", "llama-3.1-8b", "7b", "--mode", "lora", "pretrain", "inference", "--gpus", "3", "0", "-1", "--tp",
    "2", "--pp", "4", "--tokens", "1T", "1e15", "nan", "inf", "--batch", "4", "--format", "json", "--gpu", "h100",
    "l4", "--context", "999999999", "--zero", "3", "--offload", "cpu", "--quant", "int4", "--max-gpus", "1000000",
    "--concurrency", "100000", "--seq-len", "65536", "--deadline", "1d", "--budget", "1", "--", "=", "",
    "--params", "1e20", "--export", "vllm", "deepspeed",
]), max_size=10)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(args=ARGS)
def test_cli_fuzz_never_tracebacks(args):
    r = run("plan", *args)
    assert r.exit_code in (0, 1, 2), (args, r.exit_code, r.stderr)
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, (args, r.stderr)
    if r.exit_code == 2:
        assert r.stdout == "" and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)


def test_json_output_validates_against_schema_for_every_mode():
    jsonschema = pytest.importorskip("jsonschema")
    from llmsizer.render import load_schema

    schema = load_schema("plan")
    for mode in ("inference", "finetune", "lora", "qlora", "pretrain"):
        r = run("plan", "--model", "qwen2.5-7b", "--mode", mode, "--format", "json", "--all", "--top", "3")
        assert r.exit_code == 0, r.stderr
        jsonschema.validate(json.loads(r.stdout), schema)


def test_search_stays_bounded_for_huge_inputs():
    r = run("plan", "--model", "llama-3.1-8b", "--mode", "pretrain", "--max-gpus", "1000000", "--tokens", "1e15",
            "--gpu", "h100-sxm", "--format", "json")
    assert r.exit_code in (0, 1)
    assert json.loads(r.stdout)["plans"]


# ------------------------------------------------------------------------------------------------ the readers

@settings(max_examples=80, deadline=None)
@given(doc=st.dictionaries(st.sampled_from([
    "model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
    "intermediate_size", "vocab_size", "max_position_embeddings", "tie_word_embeddings", "num_local_experts",
    "num_experts_per_tok", "head_dim", "sliding_window", "text_config"]),
    st.one_of(st.integers(-5, 70000), st.text(max_size=5), st.none(), st.booleans(), st.floats(allow_nan=True))))
def test_config_reader_fuzz(tmp_path_factory, doc):
    from llmsizer.catalog.modelfiles import load_model_file

    path = tmp_path_factory.mktemp("cfg") / "config.json"
    path.write_text(json.dumps(doc))
    try:
        loaded = load_model_file(path)
    except LlmsizerError as e:
        assert "\n" not in str(e)
    else:
        assert count_params(loaded.spec).total > 0


@settings(max_examples=60, deadline=None)
@given(blob=st.binary(max_size=300))
def test_safetensors_and_gguf_readers_fuzz(tmp_path_factory, blob):
    from llmsizer.catalog.modelfiles import load_model_file

    d = tmp_path_factory.mktemp("bin")
    for name, data in (("model.safetensors", struct.pack("<Q", len(blob)) + blob), ("model.gguf", b"GGUF" + blob)):
        p = d / name
        p.write_bytes(data)
        try:
            load_model_file(p)
        except LlmsizerError as e:
            assert "\n" not in str(e)


@settings(max_examples=80, deadline=None)
@given(text=st.text(alphabet=string.printable, max_size=300))
def test_catalog_yaml_fuzz(tmp_path_factory, text):
    p = tmp_path_factory.mktemp("yaml") / "mine.yaml"
    p.write_text(text)
    try:
        problems = catalog_problems(p)
    except LlmsizerError as e:
        assert "\n" not in str(e) and "mine.yaml" in str(e)
    else:
        assert all("\n" not in x for x in problems)


def test_unknown_gpus_get_suggestions_too(cat):
    # issue 18: --gpu m2-pro and --gpu cpu said "unknown GPU" without the suggestions model names get
    assert cat.gpu("m2-pro").id == "m2-pro"  # now in the catalog (the seed articles' Mac M2 Pro 16GB)
    with pytest.raises(LlmsizerError, match="m2-pro"):
        cat.gpu("m2pro")
    with pytest.raises(LlmsizerError, match="xeon|epyc"):
        cat.gpu("cpu")
