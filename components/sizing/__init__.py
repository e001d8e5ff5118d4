"""Pure-Python sizing engine (no Pulumi imports): model spec → memory → concurrency → probe."""

from components.sizing.catalogue import catalogue_model, catalogue_names
from components.sizing.plan import SizingPlan, SizingRequest, StartupProbe, size
from components.sizing.readers import read_gguf, read_hf, refuse_pickle
from components.sizing.spec import ModelSpec

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
