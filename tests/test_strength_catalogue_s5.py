"""Session 5 (seed 101) mutation-strength tests for sizing/catalogue.py: the catalogue's mixtures of experts and its
notes, each as the published config.json gives it and as the sizing plan prints it."""

from __future__ import annotations

import pytest
from cloudrun_gpu.sizing import SizingRequest, catalogue_model, catalogue_names, size
from cloudrun_gpu.sizing.engines import intermediate_size_estimate

# (num_local_experts, num_experts_per_tok, intermediate_size) of each catalogue MoE, from its config.json:
# https://huggingface.co/mistralai/Mixtral-8x7B-Instruct-v0.1/blob/main/config.json (8, 2, 14336),
# https://huggingface.co/openai/gpt-oss-20b/blob/main/config.json (32, 4, 2880),
# https://huggingface.co/openai/gpt-oss-120b/blob/main/config.json (128, 4, 2880).
EXPERTS = {"mixtral-8x7b": (8, 2, 14336), "gpt-oss-20b": (32, 4, 2880), "gpt-oss-120b": (128, 4, 2880)}

NOTES = {
    "deepseek-v3": "MLA: one 576-element latent (kv_lora_rank 512 + rope 64) per layer per token",
    "gemma-3-4b": "multimodal: includes the ~0.4 B SigLIP vision tower",
    "gpt-oss-120b": "MoE, MXFP4 experts",
    "gpt-oss-20b": "MoE, MXFP4 experts; attention sinks",
    "mixtral-8x7b": "MoE: all 8 experts stay resident, so weights count all 46.7 B parameters",
    "qwen3-32b": "head_dim 128 != hidden/heads (80)",
}


@pytest.mark.parametrize("name", catalogue_names())
def test_every_catalogue_models_experts_are_its_config_jsons_and_a_token_runs_through_top_k(name: str) -> None:
    """A token runs through ``num_experts_per_tok`` experts of one expert's width: the activation the plan sizes.
    Dense rows have no experts."""
    spec = catalogue_model(name)
    routed, top_k, width = EXPERTS.get(name, (0, 0, 0))
    assert (spec.n_experts, spec.experts_per_token, spec.expert_intermediate_size) == (routed, top_k, width)
    if routed:
        assert intermediate_size_estimate(spec) == top_k * width


@pytest.mark.parametrize("name", catalogue_names())
def test_every_catalogue_models_notes_are_as_written(name: str) -> None:
    assert catalogue_model(name).notes == ((NOTES[name],) if name in NOTES else ())


@pytest.mark.parametrize("name", sorted(set(NOTES) - {"deepseek-v3"}))  # 382 GiB of weights fit no Cloud Run GPU
def test_a_catalogue_models_note_is_printed_in_its_plan(name: str) -> None:
    plan = size(SizingRequest(model=catalogue_model(name), context_length=2048, gpu="nvidia-rtx-pro-6000"))
    assert [n for n in plan.explain if n.startswith("note: ")] == [f"note: {NOTES[name]}"]
