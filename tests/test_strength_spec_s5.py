"""Session 5 (seed 101) mutation-strength tests for sizing/spec.py: the survivors of its blind sample, each asserted
as the sizing engine's result a user reads."""

from __future__ import annotations

from typing import Any

from cloudrun_gpu.sizing.engines import MlpShape, intermediate_size_estimate, mlp_shape
from cloudrun_gpu.sizing.spec import ModelSpec

from .test_strength_spec import base


def _spec(**kw: Any) -> ModelSpec:
    """test_strength_spec's model, as a mixture-of-experts architecture with full attention on every layer."""
    fields: dict[str, Any] = {
        "architecture": "mixtral",
        "head_dim_k": 8,
        "n_params": 10_000_000,
        "layer_windows": (None, None, None, None),
    }
    return base(**{**fields, **kw})


def test_a_two_expert_model_is_a_mixture_and_a_token_runs_through_its_routed_expert_only() -> None:
    """Two experts is the smallest mixture (a "2x7B" merge routes each token to one of them): the activation is the
    routed expert's width, not a dense MLP as wide as the declared ``intermediate_size`` (``is_moe`` is
    ``n_experts > 1``; seed 101's ``> 2`` sized this model as dense)."""
    two = _spec(n_experts=2, experts_per_token=1, expert_intermediate_size=96, intermediate_size=512)
    assert two.is_moe
    assert mlp_shape(two) == MlpShape(dense_intermediate=0, experts_per_token=1, expert_intermediate=96)
    assert intermediate_size_estimate(two) == 96
    # One "expert" is a dense MLP: its declared width is the activation.
    one = _spec(n_experts=1, experts_per_token=1, intermediate_size=512)
    assert not one.is_moe
    assert intermediate_size_estimate(one) == 512
