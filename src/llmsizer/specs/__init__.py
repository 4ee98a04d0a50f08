"""What things *are*: accelerators, cloud instances and model architectures (the second floor of the house).

``gpu.py`` and ``model.py`` hold the catalog records; ``architecture.py`` reads a ``ModelSpec`` into its ledger (the records in ``ledger.py``) of
weight matrices and saved tensors, the one place parameters, FLOPs and activation sizes are counted from.
"""

from llmsizer.specs.gpu import CloudInstance, GpuSpec
from llmsizer.specs.model import MlaSpec, ModelSpec, MoeSpec

__all__ = ["CloudInstance", "GpuSpec", "MlaSpec", "ModelSpec", "MoeSpec"]
