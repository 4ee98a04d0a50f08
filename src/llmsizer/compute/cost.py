"""Cost and energy: ``GPUs x $/GPU-hour``, a training run's total, inference $ per million output tokens, GPU energy.

Excludes storage, networking and staff; energy is the GPU boards' at a fraction of TDP, without PUE
(``facility_energy_kwh`` multiplies by it). Constants: data/compute.yaml ``cost`` and ``training.power_fraction``.
"""

from __future__ import annotations

from llmsizer.compute.hardware import compute_data
from llmsizer.explain import Step
from llmsizer.record import record
from llmsizer.specs.gpu import GpuSpec
from llmsizer.units import HOUR_S


@record
class CostEstimate:
    usd_per_hour: float
    usd_total: float | None
    usd_per_million_output_tokens: float | None = None
    energy_kwh: float | None = None
    steps: tuple[Step, ...] = ()
    facility_energy_kwh: float | None = None  # energy_kwh x PUE
    price_usd_per_gpu_hour: float = 0.0
    # what the price is: "rent" (a catalog rental or cloud instance price), "amortized" (an ownership estimate:
    # purchase + power, data/compute.yaml ``cost``), "override" (the user's --price-per-gpu-hour) or "unknown"
    price_basis: str = "rent"
    kwh_per_million_output_tokens: float | None = None
    price_source: str | None = None  # where the price was read (rent) or the purchase price's source (amortized)
    price_as_of: str | None = None  # when it was read, as the catalog dates it ("2026-11")


BASIS = {"rental": "rent", "instance": "rent", "override": "override", "amortized": "amortized", "unknown": "unknown"}


def gpu_energy_kwh(gpu_count: int, tdp_watts: float, power_fraction: float, seconds: float) -> float:
    """GPU board energy: GPUs x TDP x the fraction of TDP drawn x time (no host, no cooling)."""
    return gpu_count * tdp_watts * power_fraction * seconds / HOUR_S / 1000.0


def amortized_price_usd_per_gpu_hour(gpu: GpuSpec) -> float | None:
    """Owning instead of renting: purchase / (years x 8760 h x utilization) + TDP x electricity price."""
    c = compute_data().cost
    if gpu.purchase_usd is None:
        return None
    hours = c.amortization_years * 8760.0 * c.amortization_utilization
    return gpu.purchase_usd / hours + gpu.tdp_watts / 1000.0 * c.electricity_usd_per_kwh


def estimate_cost(gpu: GpuSpec, gpu_count: int, *, seconds: float | None, price_usd_per_gpu_hour: float | None = None,
                  output_tokens_per_second: float | None = None, explain: bool = False,
                  price_basis: str | None = None, price_source: str | None = None,
                  price_as_of: str | None = None) -> CostEstimate:
    """Price of a plan. The price is the one given, else the catalog's rental price, else purchase amortization;
    with none of them every dollar figure is 0 and ``price_basis`` is "unknown". ``price_basis`` says where a given
    price came from ("override": the user's; "rental": the catalog's price for the GPU; "instance": the cheapest
    cloud instance's; "amortized": an ownership estimate) and ``price_source`` / ``price_as_of`` cite it; the
    estimate's ``price_basis`` folds rental and instance into "rent"."""
    d = compute_data()
    basis = price_basis or ("override" if price_usd_per_gpu_hour is not None else "rental")
    price = price_usd_per_gpu_hour if price_usd_per_gpu_hour is not None else gpu.price_usd_per_gpu_hour
    if price_usd_per_gpu_hour is None and price is not None:
        price_source, price_as_of = price_source or gpu.price_source, price_as_of or gpu.price_date
    if price is None:
        price = amortized_price_usd_per_gpu_hour(gpu)
        basis = "amortized"
    if basis == "amortized":
        price_source, price_as_of = price_source or gpu.purchase_source, None
    if price is None:
        price, basis = 0.0, "unknown"
    per_hour = price * gpu_count
    total = per_hour * seconds / HOUR_S if seconds is not None else None
    per_m = kwh_per_m = energy = facility = None
    if seconds is not None:
        energy = gpu_energy_kwh(gpu_count, gpu.tdp_watts, d.training.power_fraction, seconds)
        facility = energy * d.cost.pue
    if output_tokens_per_second:
        per_m = per_hour / (output_tokens_per_second * HOUR_S) * 1e6
        kw = gpu_count * gpu.tdp_watts * d.cost.inference_power_fraction / 1000.0
        kwh_per_m = kw / (output_tokens_per_second * HOUR_S) * 1e6
    steps: tuple[Step, ...] = ()
    if explain:
        from llmsizer.compute.explain import cost_steps

        steps = cost_steps(gpu, gpu_count, basis, price_source, price, per_hour, total, per_m, energy, seconds,
                           output_tokens_per_second)
    return CostEstimate(
        usd_per_hour=per_hour, usd_total=total, usd_per_million_output_tokens=per_m, energy_kwh=energy, steps=steps,
        facility_energy_kwh=facility, price_usd_per_gpu_hour=price,
        price_basis=BASIS.get(basis, "rent"), kwh_per_million_output_tokens=kwh_per_m,
        price_source=price_source or None, price_as_of=price_as_of if basis != "override" else None,
    )
