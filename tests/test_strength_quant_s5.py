"""Session 5 (seed 101) mutation-strength tests for sizing/quant.py: which MXFP4 kernels vLLM may pick, at the edges
of compute capability and release the quant module cites (the plan charges the largest of their layouts)."""

from __future__ import annotations

import pytest
from cloudrun_gpu.sizing.quant import VLLM_MXFP4_TRITON_BELOW_SM110_SINCE, mxfp4_backends


@pytest.mark.parametrize(
    ("capability", "version", "kernels"),
    [
        # below SM90: always Marlin (mxfp4.py:123-135 of v0.10.1.1)
        ((8, 9), (0, 19, 0), ("marlin",)),
        ((8, 0), None, ("marlin",)),
        # SM90 (H100): Triton where it imports and accepts the configuration, else Marlin — at every release
        ((9, 0), (0, 10, 1), ("triton", "marlin")),
        ((9, 0), (0, 19, 0), ("triton", "marlin")),
        # SM100: FlashInfer where installed, so any layout
        ((10, 0), (0, 19, 0), ("marlin", "triton", "flashinfer")),
        # SM110 and SM120 (RTX PRO 6000): Triton before v0.14.1, Marlin from it (quantization/mxfp4.py:153-166)
        ((12, 0), (0, 14, 0), ("triton", "marlin")),
        ((12, 0), (0, 14, 1), ("marlin",)),
        ((12, 0), (0, 19, 0), ("marlin",)),
        ((11, 0), (0, 14, 1), ("marlin",)),
        ((11, 0), (0, 11, 0), ("triton", "marlin")),
        # an unknown release on SM120 may still be one that ran Triton
        ((12, 0), None, ("triton", "marlin")),
        (None, (0, 19, 0), ("marlin", "triton", "flashinfer")),
    ],
)
def test_the_mxfp4_kernels_vllm_may_pick_by_capability_and_release(
    capability: tuple[int, int] | None, version: tuple[int, int, int] | None, kernels: tuple[str, ...]
) -> None:
    assert VLLM_MXFP4_TRITON_BELOW_SM110_SINCE == (0, 14, 1)
    assert mxfp4_backends(capability, version) == kernels
