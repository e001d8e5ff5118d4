"""Published vLLM start-up logs as data, and the sizing model checked against each of them.

``vllm_evidence.csv`` holds one row per start-up log (a source URL on every row): the engine version, GPU,
model geometry, the flags the memory depends on, and the numbers vLLM printed (weights, non-torch,
activation peak, CUDA graphs, KV GiB / blocks / tokens). :func:`check_row` predicts the KV pool the way
:func:`cloudrun_gpu.sizing.plan.size` does — weights from parameters × bits, the overhead from
:func:`cloudrun_gpu.sizing.engines.vllm_overhead` — and compares it with the printed one. The bar: a
prediction never exceeds what vLLM found (no over-commit). ``docs/sizing-evidence.md`` is this table.
"""

from __future__ import annotations

import csv
import io
import statistics
from dataclasses import dataclass
from importlib import resources

from cloudrun_gpu.limits import GIB
from cloudrun_gpu.sizing.engines import (
    VLLM_V1_SINCE,
    MlpShape,
    VllmOverhead,
    VllmProfile,
    parse_vllm_version,
    vllm_overhead,
)
from cloudrun_gpu.sizing.plan import weights_from_quant
from cloudrun_gpu.sizing.quant import WEIGHT_QUANTS, mxfp4_backends
from cloudrun_gpu.sizing.spec import ModelSpec

EVIDENCE_FILE = "vllm_evidence.csv"

_BANDS = {"v0": "V0"}
_COMPUTE_CAPABILITY = {"H100": (9, 0), "A100": (8, 0), "L4": (8, 9), "RTX 4090": (8, 9), "RTX 3090": (8, 6)}


@dataclass(frozen=True)
class VllmEvidence:
    """One published vLLM start-up log."""

    id: str
    source_url: str
    engine_version: str
    profile_band: str
    gpu: str
    cuda_total_gib: float
    gpu_memory_utilization: float
    model: str
    weights_quant: str
    params_b: float | None
    max_model_len: int
    max_num_seqs: int
    max_num_batched_tokens: int
    compile_cache: str
    n_layers: int
    hidden_size: int
    intermediate_size: int
    vocab_size: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    tied_embeddings: bool
    kv_bytes_per_token: int
    printed_weights_gib: float
    printed_non_torch_gib: float | None
    printed_activation_gib: float | None
    printed_cudagraph_gib: float | None
    printed_kv_gib: float | None
    printed_kv_tokens: int | None
    note: str
    n_experts: int = 0
    """Routed experts of a mixture of experts (0: dense); ``intermediate_size`` is then one expert's width."""
    experts_per_token: int = 0
    moe_kernel: str = ""
    """The MXFP4 MoE kernel the run used where its log does not name it but its load does (``triton``: the printed
    weights are Triton's layout, not Marlin's); empty: the kernels vLLM may pick on the row's GPU and version
    (:func:`~cloudrun_gpu.sizing.quant.mxfp4_backends`)."""
    sampler: str = ""
    """``flashinfer`` where the log prints ``Using FlashInfer for top-p & top-k sampling.``, else empty (unknown:
    checked with the PyTorch-native sampler's larger warm-up, as the plan sizes it)."""

    @property
    def band(self) -> str:
        """The :func:`~cloudrun_gpu.sizing.engines.vllm_band` this log belongs to."""
        if self.profile_band == "v0":
            return "V0"
        version = parse_vllm_version(self.engine_version)
        if version is not None and version < VLLM_V1_SINCE:
            return "V1<0.8"  # V1 forced (VLLM_USE_V1=1) before it became the default
        if version is not None and version >= (0, 30, 0):
            return ">=0.30"
        if version is not None and version >= (0, 21, 0):
            return "0.21-0.29"
        return "0.8-0.20"

    @property
    def compute_capability(self) -> tuple[int, int] | None:
        """The row's GPU generation (NVIDIA's CUDA GPU list, developer.nvidia.com/cuda-gpus); None if not listed."""
        return next((cc for name, cc in _COMPUTE_CAPABILITY.items() if name in self.gpu), None)

    def mxfp4_kernels(self) -> tuple[str, ...]:
        """The MXFP4 kernels this run may have used (its own if :attr:`moe_kernel` names it)."""
        if self.moe_kernel:
            return (self.moe_kernel,)
        return mxfp4_backends(self.compute_capability, parse_vllm_version(self.engine_version))

    def mlp(self) -> MlpShape:
        """What a token's MLP runs through: the dense width, or its routed experts' (MoE rows)."""
        if self.n_experts > 1:
            return MlpShape(0, self.experts_per_token, self.intermediate_size)
        return MlpShape(self.intermediate_size)

    @property
    def kv_gib(self) -> float:
        """The KV pool vLLM printed, in GiB (from its token count where it printed only that)."""
        if self.printed_kv_gib is not None:
            return self.printed_kv_gib
        assert self.printed_kv_tokens is not None
        return self.printed_kv_tokens * self.kv_bytes_per_token / GIB

    @property
    def budget_gib(self) -> float:
        return self.gpu_memory_utilization * self.cuda_total_gib

    def spec(self) -> ModelSpec:
        """The geometry as a ModelSpec (enough for the weights formula)."""
        return ModelSpec(
            name=self.model,
            architecture=self.model.split("/")[-1],
            n_layers=self.n_layers,
            hidden_size=self.hidden_size,
            n_heads=self.n_heads,
            kv_heads=(self.n_kv_heads,) * self.n_layers,
            head_dim_k=self.head_dim,
            head_dim_v=self.head_dim,
            vocab_size=self.vocab_size,
            max_context=0,
            n_params=round((self.params_b or 1e-9) * 1e9),
            layer_windows=(None,) * self.n_layers,
            tied_embeddings=self.tied_embeddings,
            source=self.source_url,
            n_experts=self.n_experts,
            experts_per_token=self.experts_per_token,
            expert_intermediate_size=self.intermediate_size if self.n_experts > 1 else 0,
        )


def _opt_float(text: str) -> float | None:
    return float(text) if text.strip() else None


def _opt_int(text: str) -> int | None:
    return int(text) if text.strip() else None


def load_vllm_evidence() -> list[VllmEvidence]:
    """Every row of ``vllm_evidence.csv`` (shipped as package data)."""
    text = resources.files(__package__).joinpath(EVIDENCE_FILE).read_text(encoding="utf-8")
    rows: list[VllmEvidence] = []
    for r in csv.DictReader(io.StringIO(text)):
        rows.append(
            VllmEvidence(
                id=r["id"],
                source_url=r["source_url"],
                engine_version=r["engine_version"],
                profile_band=r["profile_band"],
                gpu=r["gpu"],
                cuda_total_gib=float(r["cuda_total_gib"]),
                gpu_memory_utilization=float(r["gpu_memory_utilization"]),
                model=r["model"],
                weights_quant=r["weights_quant"],
                params_b=_opt_float(r["params_b"]),
                max_model_len=int(r["max_model_len"]),
                max_num_seqs=int(r["max_num_seqs"]),
                max_num_batched_tokens=int(r["max_num_batched_tokens"]),
                compile_cache=r["compile_cache"],
                n_layers=int(r["n_layers"]),
                hidden_size=int(r["hidden_size"]),
                intermediate_size=int(r["intermediate_size"]),
                vocab_size=int(r["vocab_size"]),
                n_heads=int(r["n_heads"]),
                n_kv_heads=int(r["n_kv_heads"]),
                head_dim=int(r["head_dim"]),
                tied_embeddings=r["tied_embeddings"] == "true",
                kv_bytes_per_token=int(r["kv_bytes_per_token"]),
                printed_weights_gib=float(r["printed_weights_gib"]),
                printed_non_torch_gib=_opt_float(r["printed_non_torch_gib"]),
                printed_activation_gib=_opt_float(r["printed_activation_gib"]),
                printed_cudagraph_gib=_opt_float(r["printed_cudagraph_gib"]),
                printed_kv_gib=_opt_float(r["printed_kv_gib"]),
                printed_kv_tokens=_opt_int(r["printed_kv_tokens"]),
                note=r["note"],
                n_experts=_opt_int(r.get("n_experts") or "") or 0,
                experts_per_token=_opt_int(r.get("experts_per_token") or "") or 0,
                sampler=(r.get("sampler") or "").strip(),
                moe_kernel=(r.get("moe_kernel") or "").strip(),
            )
        )
    return rows


@dataclass(frozen=True)
class EvidenceCheck:
    """One row predicted the way the plan predicts it, against what vLLM printed."""

    row: VllmEvidence
    weights_predicted: bool
    weights_gib: float
    overhead: VllmOverhead
    kv_predicted_gib: float

    @property
    def overhead_gib(self) -> float:
        return self.overhead.total / GIB

    @property
    def printed_overhead_gib(self) -> float:
        """Everything vLLM kept outside weights and KV: budget − printed weights − printed KV."""
        return self.row.budget_gib - self.row.printed_weights_gib - self.row.kv_gib

    @property
    def error(self) -> float:
        """(predicted − printed) / printed KV pool; negative = the plan promises less than vLLM finds."""
        return (self.kv_predicted_gib - self.row.kv_gib) / self.row.kv_gib

    @property
    def over_commit(self) -> bool:
        return self.kv_predicted_gib > self.row.kv_gib


def check_row(row: VllmEvidence, *, predict_weights: bool = True) -> EvidenceCheck:
    """Predict ``row``'s KV pool: weights from parameters × bits when the format is modelled (else the
    printed weights), the overhead from the row's flags, version band and compile-cache state."""
    quant = WEIGHT_QUANTS.get(row.weights_quant)
    predicted = predict_weights and quant is not None and row.params_b is not None
    if predicted:
        assert quant is not None
        weights = weights_from_quant(row.spec(), quant, mxfp4_kernels=row.mxfp4_kernels())[0]
    else:
        weights = int(row.printed_weights_gib * GIB)
    budget = int(row.budget_gib * GIB)
    overhead = vllm_overhead(
        hidden=row.hidden_size,
        intermediate=row.mlp().active_intermediate,
        mlp=row.mlp(),
        vocab=row.vocab_size,
        weights_bytes=weights,
        budget_bytes=budget,
        profile=VllmProfile(
            max_num_seqs=row.max_num_seqs,
            max_num_batched_tokens=row.max_num_batched_tokens,
            version=parse_vllm_version(row.engine_version),
            cold_compile=row.compile_cache in ("cold", "unknown"),
            sampler=row.sampler or None,
            mxfp4_triton=row.weights_quant == "mxfp4" and row.mxfp4_kernels() == ("triton",),
        ),
        band=row.band,
    )
    kv = (budget - weights - overhead.total) / GIB
    return EvidenceCheck(
        row=row, weights_predicted=predicted, weights_gib=weights / GIB, overhead=overhead, kv_predicted_gib=kv
    )


def evidence_summary(checks: list[EvidenceCheck]) -> dict[str, float]:
    """Median and worst KV errors, and the number of over-commits."""
    errors = [c.error for c in checks]
    return {
        "rows": len(checks),
        "over_commits": sum(c.over_commit for c in checks),
        "median_abs_error": statistics.median(abs(e) for e in errors),
        "worst_under": min(errors),
        "worst_over": max(errors),
    }


def _opt(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def evidence_table(checks: list[EvidenceCheck]) -> str:
    """The error table of docs/sizing-evidence.md, one line per row, as :func:`check_row` predicts it today.

    The doc holds this text between ``<!-- evidence-table -->`` markers and ``tests/test_vllm_evidence.py``
    regenerates and compares it, so the published numbers cannot drift from the model."""
    head = (
        "| # | row (source) | vLLM | GPU (CUDA total) | model, weights | len / seqs / batched | "
        "printed W · non-torch · act · graphs | printed KV | plan W | plan overhead | plan KV | error |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for i, c in enumerate(checks, 1):
        r = c.row
        cache = f", {r.compile_cache}" if r.compile_cache in ("cold", "warm") else ""
        cache += f", {r.sampler} sampler" if r.sampler else ""
        moe = f", MoE {r.experts_per_token}/{r.n_experts}" if r.n_experts > 1 else ""
        printed = " · ".join(
            _opt(v)
            for v in (r.printed_weights_gib, r.printed_non_torch_gib, r.printed_activation_gib, r.printed_cudagraph_gib)
        )
        tokens = f" ({r.printed_kv_tokens:,} tok)" if r.printed_kv_tokens else ""
        lines.append(
            f"| {i} | [{r.id}]({r.source_url}) | {r.engine_version or 'unprinted'} ({r.band}{cache}) | "
            f"{r.gpu} ({r.cuda_total_gib:.2f} GiB) × {r.gpu_memory_utilization:g} | "
            f"{r.model.split('/')[-1]}, {r.weights_quant or 'printed weights'}{moe} | "
            f"{r.max_model_len} / {r.max_num_seqs} / {r.max_num_batched_tokens} | {printed} | "
            f"{r.kv_gib:.2f} GiB{tokens} | {c.weights_gib:.2f} | {c.overhead_gib:.2f} | {c.kv_predicted_gib:.2f} | "
            f"{c.error * 100:+.1f} % |"
        )
    return "\n".join(lines)


__all__ = [
    "EvidenceCheck",
    "VllmEvidence",
    "check_row",
    "evidence_summary",
    "evidence_table",
    "load_vllm_evidence",
]
