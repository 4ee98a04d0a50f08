"""What hardware *is*: frozen, validated descriptions of accelerators and the cloud instances that carry them.

Each record is a frozen standard-library dataclass whose annotations carry the constraints (``data/validation.py``):
``validate(GpuSpec, entry)`` checks a YAML/JSON entry with pydantic and returns the record, while a start-up served
from the disk cache unpickles records without importing pydantic. Constructing a record directly (tests, derived
models) runs only the cross-field checks of ``__post_init__``.

The YAML catalogs store figures in the units their datasheets print (GB/s, dense TFLOP/s, GiB or GB of memory);
each spec exposes the same figures in base units (bytes, bytes/s, FLOP/s) through properties whose names carry the
unit. Nothing outside ``specs/`` and ``render/`` should ever see a GB or a TFLOP.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from llmsizer.record import record
from llmsizer.units import GB, GIB, TERA

if TYPE_CHECKING:  # the annotations' vocabulary, resolved by data/validation.py when a record is validated
    from typing import Annotated

    from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt

    from llmsizer.data.validation import CatalogId, Source

DType = Literal["fp64", "fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp6", "fp4", "int4"]


class _Frozen:
    __pydantic_config__ = {"extra": "forbid"}  # an unknown key in a catalog entry is an error, not ignored


# --------------------------------------------------------------------------------------------------------- GPUs


@record(kw_only=True)
class GpuSpec(_Frozen):
    """One accelerator (or a CPU socket / Apple SoC used as one), as its datasheet describes it."""

    id: CatalogId
    aliases: tuple[str, ...] = ()
    name: str
    vendor: Literal["nvidia", "amd", "intel", "huawei", "apple", "cpu"]
    kind: Literal["gpu", "unified", "cpu"] = "gpu"
    form_factor: str
    memory_gib: PositiveFloat | None = None
    memory_gb: PositiveFloat | None = None
    usable_memory_fraction: Annotated[float, Field(gt=0, le=1)] = 1.0
    usable_memory_source: str | None = None
    memory_bandwidth_gb_s: PositiveFloat
    dense_tflops: dict[DType, PositiveFloat]
    flops_notes: str | None = None
    scaleup: str = "pcie"
    scaleup_bandwidth_gb_s: PositiveFloat
    scaleup_domain: PositiveInt = 1
    gpus_per_node: PositiveInt = 8
    scaleout_gbps: NonNegativeFloat = 0.0
    tdp_watts: PositiveFloat
    price_usd_per_gpu_hour: PositiveFloat | None = None
    price_source: str | None = None
    price_date: str | None = None
    purchase_usd: PositiveFloat | None = None
    purchase_source: str | None = None
    release_year: PositiveInt | None = None
    source: Source
    notes: str | None = None

    def __post_init__(self) -> None:
        if (self.memory_gib is None) == (self.memory_gb is None):
            raise ValueError("give exactly one of memory_gib (2^30 bytes) or memory_gb (1e9 bytes)")
        if "bf16" not in self.dense_tflops and "fp16" not in self.dense_tflops and "fp32" not in self.dense_tflops:
            raise ValueError("dense_tflops needs at least one of bf16, fp16, fp32")
        if self.price_usd_per_gpu_hour is not None and not self.price_source:
            raise ValueError("price_usd_per_gpu_hour needs a price_source")

    @property
    def memory_bytes(self) -> int:
        """Total device memory in bytes (for Apple SoCs: the whole unified memory)."""
        if self.memory_gib is not None:
            return int(round(self.memory_gib * GIB))
        return int(round(self.memory_gb * GB))  # type: ignore[operator]

    @property
    def usable_memory_bytes(self) -> int:
        """Memory a framework can allocate on this device (Apple: the GPU's share of unified memory)."""
        return int(self.memory_bytes * self.usable_memory_fraction)

    @property
    def memory_bandwidth_bytes_per_s(self) -> float:
        return self.memory_bandwidth_gb_s * GB

    @property
    def flops(self) -> dict[str, float]:
        """Dense peak FLOP/s (or OP/s for integer types) by dtype name."""
        return {k: v * TERA for k, v in self.dense_tflops.items()}

    def peak_flops(self, dtype: str) -> float:
        """Dense peak FLOP/s for compute in ``dtype``; falls back to the nearest wider type the chip has.

        A GPU without fp8 tensor cores runs fp8 weights through bf16/fp16 math, so fp8 falls back to bf16,
        bf16 to fp16 (V100, T4 have no bf16) and both to fp32.
        """
        chain = {
            "fp4": ["fp4", "fp8", "bf16", "fp16", "fp32"],
            "fp8": ["fp8", "bf16", "fp16", "fp32"],
            "int8": ["int8", "fp8", "bf16", "fp16", "fp32"],
            "bf16": ["bf16", "fp16", "fp32"],
            "fp16": ["fp16", "bf16", "fp32"],
            "tf32": ["tf32", "fp32"],
            "fp32": ["fp32", "tf32"],
        }.get(dtype, [dtype, "bf16", "fp16", "fp32"])
        for d in chain:
            if d in self.dense_tflops:
                return self.dense_tflops[d] * TERA  # type: ignore[index]
        return max(self.dense_tflops.values()) * TERA

    @property
    def scaleup_bandwidth_bytes_per_s(self) -> float:
        """Per-GPU scale-up bandwidth, *one direction* (vendors quote both directions summed)."""
        return self.scaleup_bandwidth_gb_s * GB / 2

    @property
    def scaleout_bandwidth_bytes_per_s(self) -> float:
        """Per-GPU scale-out network bandwidth (InfiniBand/RoCE), one direction, bytes/s."""
        return self.scaleout_gbps * 1e9 / 8

    @property
    def tdp_w(self) -> float:
        return self.tdp_watts


@record(kw_only=True)
class CloudInstance(_Frozen):
    """A rentable server: which GPUs, how many, at what on-demand price."""

    provider: str
    instance: str
    gpu: str
    gpus: PositiveInt
    vcpus: PositiveInt
    ram_gib: PositiveFloat
    local_nvme_tb: NonNegativeFloat = 0.0
    network_gbps: NonNegativeFloat = 0.0
    usd_per_hour: PositiveFloat
    region: str | None = None
    price_source: Source
    price_date: str
    notes: str | None = None

    @property
    def ram_bytes(self) -> int:
        return int(self.ram_gib * GIB)
