"""The packaged GPU and cloud-instance catalogs (data/gpus.yaml, data/instances.yaml) against their schemas and
against published datasheet figures.

Each figure test names the datasheet it checks and the tolerance it allows.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from llmsizer.data.validation import validate
from llmsizer.specs import CloudInstance, GpuSpec

DATA = Path(__file__).resolve().parents[1] / "data"


def _load(name: str) -> dict:
    with (DATA / name).open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def _norm(name: str) -> str:
    """How the catalog matches names: case-insensitive, spaces and underscores read as hyphens."""
    return re.sub(r"[\s_]+", "-", name.strip().lower())


@pytest.fixture(scope="module")
def gpus() -> dict[str, GpuSpec]:
    raw = _load("gpus.yaml")
    return {g.id: g for g in (validate(GpuSpec, item) for item in raw["gpus"])}


@pytest.fixture(scope="module")
def instances() -> list[CloudInstance]:
    raw = _load("instances.yaml")
    return [validate(CloudInstance, item) for item in raw["instances"]]


# ------------------------------------------------------------------------------------------------ schema, links


def test_files_have_only_known_top_level_keys() -> None:
    assert set(_load("gpus.yaml")) <= {"schema_version", "gpus"}
    assert set(_load("instances.yaml")) <= {"schema_version", "instances"}


def test_every_gpu_entry_validates() -> None:
    """Each entry on its own, so a failure names the entry (extra keys are forbidden by the schema)."""
    for item in _load("gpus.yaml")["gpus"]:
        validate(GpuSpec, item)


def test_every_instance_entry_validates() -> None:
    for item in _load("instances.yaml")["instances"]:
        validate(CloudInstance, item)


def test_catalog_covers_at_least_30_gpus(gpus: dict[str, GpuSpec]) -> None:
    assert len(gpus) >= 30


def test_ids_and_aliases_are_unique_case_insensitively() -> None:
    seen: dict[str, str] = {}
    clashes = []
    for item in _load("gpus.yaml")["gpus"]:
        for name in (item["id"], *item.get("aliases", [])):
            key = _norm(str(name))
            if key in seen:
                clashes.append(f"{name!r} ({item['id']}) clashes with {seen[key]}")
            seen[key] = item["id"]
    assert not clashes, clashes


def test_every_instance_names_a_catalog_gpu(gpus: dict[str, GpuSpec], instances: list[CloudInstance]) -> None:
    missing = [f"{i.provider}/{i.instance}: {i.gpu}" for i in instances if i.gpu not in gpus]
    assert not missing, missing


def test_instances_are_unique(instances: list[CloudInstance]) -> None:
    keys = [(i.provider, i.instance) for i in instances]
    assert len(keys) == len(set(keys))


def test_instance_gpu_count_fits_one_node(gpus: dict[str, GpuSpec], instances: list[CloudInstance]) -> None:
    """An instance is one server: it cannot hold more GPUs than the usual node of that GPU (8 for HGX)."""
    too_many = [i.instance for i in instances if i.gpus > gpus[i.gpu].gpus_per_node]
    assert not too_many, too_many


def test_every_price_has_a_source_and_a_month(gpus: dict[str, GpuSpec], instances: list[CloudInstance]) -> None:
    month = re.compile(r"^20\d\d-(0[1-9]|1[0-2])$")
    for g in gpus.values():
        if g.price_usd_per_gpu_hour is not None:
            assert g.price_source and "http" in g.price_source, g.id
            assert g.price_date and month.match(g.price_date), g.id
        if g.purchase_usd is not None:
            assert g.purchase_source, g.id
    for i in instances:
        assert i.price_source.startswith("https://"), i.instance
        assert month.match(i.price_date), i.instance


def test_every_gpu_cites_a_checkable_source(gpus: dict[str, GpuSpec]) -> None:
    assert all(g.source.startswith("https://") for g in gpus.values())


# ------------------------------------------------------------------------------------------ dense, not sparse


_NVIDIA_DATACENTER_PCIE = {
    "t4", "a10", "a100-40gb-pcie", "a100-80gb-pcie", "l4", "l40s", "l20", "h100-pcie", "h100-nvl",
}


def _nvidia_datacenter(g: GpuSpec) -> bool:
    """NVLink (SXM/HGX/NVL72) parts plus the datacenter PCIe cards; not GeForce or workstation cards."""
    return g.vendor == "nvidia" and (g.scaleup == "nvlink" or g.id in _NVIDIA_DATACENTER_PCIE)


def test_nvidia_datacenter_fp8_is_dense(gpus: dict[str, GpuSpec]) -> None:
    """Hopper/Ada/Blackwell run FP8 at exactly 2x BF16 (dense); 4x would mean a 2:4-sparse FP8 figure was entered.

    NVIDIA datasheets print sparse figures with an asterisk, e.g. H100 SXM "FP8 3,958 TFLOPS*" next to BF16 1,979*
    (https://resources.nvidia.com/en-us-tensor-core/nvidia-tensor-core-gpu-datasheet). Tolerance: 2.05x.
    """
    checked = 0
    for g in gpus.values():
        if _nvidia_datacenter(g) and "fp8" in g.dense_tflops:
            assert g.dense_tflops["fp8"] <= 2.05 * g.dense_tflops["bf16"], g.id
            checked += 1
    assert checked >= 10


def test_bf16_and_fp16_share_one_rate(gpus: dict[str, GpuSpec]) -> None:
    """bf16 and fp16 run at the same Tensor Core rate on every listed chip, so a pair that differs means one of
    them was copied from the sparse column. Sources: A100 datasheet (BF16 = FP16 = 312 dense), H100 datasheet
    (989.4), AMD MI300X datasheet (1307.4). Tolerance 1%."""
    for g in gpus.values():
        t = g.dense_tflops
        if "bf16" in t and "fp16" in t:
            assert t["bf16"] == pytest.approx(t["fp16"], rel=0.01), g.id


# ------------------------------------------------------------------------------------- published datasheet figures


def test_h100_sxm_bf16_dense_matches_datasheet(gpus: dict[str, GpuSpec]) -> None:
    """NVIDIA H100 Tensor Core GPU datasheet: H100 SXM BF16 Tensor Core 1,979 TFLOPS *with sparsity*, so dense =
    989.4 TFLOPS. https://resources.nvidia.com/en-us-tensor-core/nvidia-tensor-core-gpu-datasheet. Tolerance 1%."""
    assert gpus["h100-sxm"].flops["bf16"] == pytest.approx(989.4e12, rel=0.01)
    assert gpus["h100-sxm"].flops["fp8"] == pytest.approx(1978.9e12, rel=0.01)


def test_h100_sxm_memory_is_80_gib(gpus: dict[str, GpuSpec]) -> None:
    """H100 SXM5 "80GB" HBM3 = 5 stacks x 16 GiB; the JSON contract's example (CONTRACT.md, plan --format
    json) prints memory_bytes 85899345920 = 80 x 2^30. Exact."""
    assert gpus["h100-sxm"].memory_bytes == 85899345920
    assert gpus["h100-sxm"].memory_bandwidth_bytes_per_s == pytest.approx(3.35e12, rel=0.01)


def test_a100_bf16_dense_matches_datasheet(gpus: dict[str, GpuSpec]) -> None:
    """NVIDIA A100 datasheet: BF16 Tensor Core 312 TFLOPS (624* with sparsity), same for 40 GB, 80 GB, SXM and PCIe.
    https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf
    Tolerance 1%."""
    for gid in ("a100-40gb-sxm", "a100-80gb-sxm", "a100-80gb-pcie", "a100-40gb-pcie"):
        assert gpus[gid].flops["bf16"] == pytest.approx(312e12, rel=0.01), gid
    assert gpus["a100-80gb-sxm"].memory_bandwidth_bytes_per_s == pytest.approx(2.039e12, rel=0.01)


def test_h100_nvlink_bandwidth_is_900_both_directions(gpus: dict[str, GpuSpec]) -> None:
    """H100 datasheet: NVLink 900 GB/s per GPU (both directions summed); specs halves it to 450 GB/s per direction.
    Tolerance 1%."""
    assert gpus["h100-sxm"].scaleup_bandwidth_gb_s == 900
    assert gpus["h100-sxm"].scaleup_bandwidth_bytes_per_s == pytest.approx(450e9, rel=0.01)


def test_b200_dense_is_half_the_hgx_sparse_figures(gpus: dict[str, GpuSpec]) -> None:
    """HGX B200 spec (per GPU, with sparsity): FP4 18 PF, FP8 9 PF, BF16 4.5 PF, so dense 9 / 4.5 / 2.25 PF.
    https://www.nvidia.com/en-us/data-center/hgx/. Tolerance 1%."""
    b = gpus["b200"].flops
    assert b["bf16"] == pytest.approx(2.25e15, rel=0.01)
    assert b["fp8"] == pytest.approx(4.5e15, rel=0.01)
    assert b["fp4"] == pytest.approx(9.0e15, rel=0.01)


def test_mi300x_dense_matches_amd_datasheet(gpus: dict[str, GpuSpec]) -> None:
    """AMD Instinct MI300X datasheet: peak FP16/BF16 1307.4 TFLOPS, FP8 2614.9 TFLOPS (dense; 2x with sparsity),
    5.3 TB/s. https://www.amd.com/content/dam/amd/en/documents/instinct-tech-docs/data-sheets/amd-instinct-mi300x-data-sheet.pdf
    Tolerance 1%."""
    m = gpus["mi300x"]
    assert m.flops["bf16"] == pytest.approx(1307.4e12, rel=0.01)
    assert m.flops["fp8"] == pytest.approx(2614.9e12, rel=0.01)
    assert m.memory_bandwidth_bytes_per_s == pytest.approx(5.3e12, rel=0.01)


def test_rtx_4090_uses_fp32_accumulate_rate(gpus: dict[str, GpuSpec]) -> None:
    """Ada whitepaper, Appendix A: RTX 4090 FP16 Tensor 165.2 TFLOPS with FP32 accumulate (330.3 with FP16
    accumulate; 330.4/660.6 with sparsity). Frameworks accumulate in FP32, so the catalog carries 165.2. 1%."""
    assert gpus["rtx-4090"].flops["bf16"] == pytest.approx(165.2e12, rel=0.01)


def test_apple_entries_are_unified_with_the_gpu_share(gpus: dict[str, GpuSpec]) -> None:
    """Metal's recommendedMaxWorkingSetSize is about 75% of RAM on Macs with more than 36 GB
    (https://developer.apple.com/documentation/metal/mtldevice/2369280-recommendedmaxworkingsetsize) and about 2/3
    at 36 GB or less (10.67 GB measured on a 16 GB M4, exo-explore/exo PR #1672). M2 Ultra: 192 GB at 800 GB/s
    (https://www.apple.com/newsroom/2023/06/apple-introduces-m2-ultra/)."""
    apple = [g for g in gpus.values() if g.vendor == "apple"]
    assert len(apple) >= 13
    for g in apple:
        assert g.kind == "unified"
        share = 0.75 if g.memory_bytes > 36 * 2**30 else 0.667
        assert g.usable_memory_fraction == pytest.approx(share)
        assert g.usable_memory_source
        assert g.gpus_per_node == 1 and g.scaleup_domain == 1
    m2u = gpus["m2-ultra"]
    assert m2u.memory_bytes == 192 * 2**30
    assert m2u.usable_memory_bytes == int(192 * 2**30 * 0.75)
    assert m2u.memory_bandwidth_gb_s == 800


def test_apple_base_and_pro_chips_carry_apples_bandwidth(gpus: dict[str, GpuSpec]) -> None:
    """Apple's unified memory bandwidth (newsroom releases and MacBook Pro technical specifications): M2 100, M2 Pro
    200 (2023-01 release: "200GB/s ... twice that of M2"), M3 100, M3 Pro 150, M4 120, M4 Pro 273, M1 Pro 200 GB/s;
    M1's LPDDR4X-4266 x 128 bit = 68.25 GB/s. The seed articles' "Mac M2 Pro 16GB" is m2-pro. Exact."""
    want = {"m1": 68.25, "m1-pro": 200, "m2": 100, "m2-pro": 200, "m3": 100, "m3-pro": 150, "m4": 120, "m4-pro": 273}
    for gid, bw in want.items():
        assert gpus[gid].memory_bandwidth_gb_s == bw, gid
    assert gpus["m2-pro"].memory_bytes == 16 * 2**30
    # Apple's own GPU figures: M1 2.6 TFLOPS (8 cores), M2 Max 13.6 TFLOPS (38 cores) -> M2 Pro 19 cores = 6.8
    assert gpus["m1"].flops["fp32"] == pytest.approx(2.6e12)
    assert gpus["m2-pro"].flops["fp32"] == pytest.approx(13.6e12 * 19 / 38)


def test_cpu_bandwidth_is_channels_times_transfer_rate(gpus: dict[str, GpuSpec]) -> None:
    """DDR5 bandwidth = sockets x channels x MT/s x 8 bytes: 2 x 12 x 4800 x 8 = 921.6 GB/s for dual EPYC 9654
    (AMD: 12 channels DDR5-4800 per socket), 2 x 8 x 4800 x 8 = 614.4 GB/s for dual Xeon 8480+ (Intel ARK: 8
    channels DDR5-4800). Exact."""
    assert gpus["epyc-9654-2s"].memory_bandwidth_gb_s == pytest.approx(2 * 12 * 4800e6 * 8 / 1e9)
    assert gpus["xeon-8480-2s"].memory_bandwidth_gb_s == pytest.approx(2 * 8 * 4800e6 * 8 / 1e9)
    assert all(g.kind == "cpu" for g in gpus.values() if g.vendor == "cpu")


def test_pcie_cards_keep_their_scaleup_domain_within_a_node(gpus: dict[str, GpuSpec]) -> None:
    """A PCIe card reaches only the GPUs of its own server, so its scale-up domain is the node."""
    for g in gpus.values():
        if g.scaleup == "pcie":
            assert g.scaleup_domain == g.gpus_per_node, g.id
        assert g.scaleup_domain >= 1 and g.gpus_per_node >= 1


# ---------------------------------------------------------------------------------------- published cloud prices


def test_aws_p5_price_matches_the_2025_cut(instances: list[CloudInstance]) -> None:
    """AWS cut P5 on-demand prices by up to 45% in June 2025: p5.48xlarge went from $98.32/h to $55.04/h
    (us-east-1, https://aws.amazon.com/ec2/pricing/on-demand/). Exact to the cent."""
    p5 = next(i for i in instances if i.instance == "p5.48xlarge")
    assert p5.gpu == "h100-sxm" and p5.gpus == 8
    assert p5.usd_per_hour == pytest.approx(55.04, abs=0.01)
