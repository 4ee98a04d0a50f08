"""The record schema of ``data/server.yaml``: the rules that size the server around the GPUs, how each kind of
accelerator ships (``Chassis``) and the whole machines (CPU servers, Macs) that are their own catalog "GPU"
(``Machine``). Imported only on a cache miss, like ``data/schema.py``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # the records' annotation vocabulary, resolved by data/validation.py
    from typing import Annotated

    from pydantic import Field, PositiveFloat, PositiveInt

    from llmsizer.data.validation import Source


class _Strict:
    """Base of the records: an unknown key in a data file is an error."""

    __pydantic_config__ = {"extra": "forbid"}



@dataclass(frozen=True, kw_only=True)
class Chassis(_Strict):
    """How a class of accelerators ships: the server sizes sold (GPUs per board or chassis, ascending) and the rack
    height of each; matched by ``ids``, else by ``kind`` / ``vendor`` / ``form_factor_contains``."""

    id: str
    ids: tuple[str, ...] = ()
    kind: Literal["gpu", "unified", "cpu"] | None = None
    vendor: str | None = None
    form_factor_contains: str | None = None
    gpus_per_server: Annotated[tuple[PositiveInt, ...], Field(min_length=1)]
    rack_units: Annotated[tuple[PositiveInt, ...], Field(min_length=1)]
    sold_as: str
    source: Source

    def __post_init__(self) -> None:
        if len(self.rack_units) != len(self.gpus_per_server):
            raise ValueError("rack_units needs one height per entry of gpus_per_server")
        if list(self.gpus_per_server) != sorted(set(self.gpus_per_server)):
            raise ValueError("gpus_per_server must be ascending, without repeats")


@dataclass(frozen=True, kw_only=True)
class Machine(_Strict):
    """A CPU server or a Mac that is its own catalog "GPU": what data/gpus.yaml does not say about the machine."""

    cpu_cores: PositiveInt
    power_watts: PositiveFloat
    source: Source


@dataclass(frozen=True, kw_only=True)
class ServerRules:
    """The validated content of ``data/server.yaml`` (other keys are ignored)."""

    cpu_cores_per_gpu: dict[str, float | str]
    cpu_cores_per_gpu_offload_extra: float
    min_cpu_cores: int
    ram_per_gpu_memory_ratio: float
    ram_source: str
    min_ram_gib: float
    checkpoints_kept: int
    checkpoint_bytes_per_param: dict[str, float]
    checkpoint_source: str
    dataset_bytes_per_token: float
    dataset_source: str
    storage_headroom: float
    system_power_overhead: float
    power_source: str
    psu_headroom: float
    psu_source: str
    rack_units_per_8_gpu_node: int
    chassis: tuple[Chassis, ...] = ()
    machines: dict[str, Machine] = field(default_factory=dict)
