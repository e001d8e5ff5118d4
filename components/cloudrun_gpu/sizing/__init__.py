"""Pure-Python sizing engine (no Pulumi imports): model spec → memory → concurrency → probe."""

from cloudrun_gpu.sizing.catalogue import catalogue_model, catalogue_names
from cloudrun_gpu.sizing.plan import SizingPlan, SizingRequest, StartupProbe, size
from cloudrun_gpu.sizing.readers import read_gguf, read_hf, refuse_pickle
from cloudrun_gpu.sizing.spec import ModelSpec

__all__ = [
    "ModelSpec",
    "SizingPlan",
    "SizingRequest",
    "StartupProbe",
    "catalogue_model",
    "catalogue_names",
    "read_gguf",
    "read_hf",
    "refuse_pickle",
    "size",
]
