"""Draw the sizing evidence: the KV pool the plan predicts against the one vLLM printed, one point per log.

    .venv/bin/python scripts/evidence_plot.py                 # writes docs/sizing-kv-predicted-vs-printed.svg
    .venv/bin/python scripts/evidence_plot.py --out FILE.png

Reads whatever ``components/cloudrun_gpu/sizing/data/vllm_evidence.csv`` holds (through
``cloudrun_gpu.sizing.data.load_vllm_evidence`` and ``check_row``, the same check tests/test_vllm_evidence.py
runs), so the picture follows the data: re-run it after a row is added. Points below the diagonal are rows where
the plan promises less KV than vLLM found (safe); a point above it is an over-commit, the failure the plan must
never make. Deterministic SVG (no date, fixed hash salt) so a re-run without data changes leaves no diff.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "components"))

from cloudrun_gpu.sizing.data import check_row, evidence_summary, load_vllm_evidence  # noqa: E402

OUT = ROOT / "docs" / "sizing-kv-predicted-vs-printed.svg"


def plot(out: Path) -> dict[str, float]:
    """Write the plot to ``out`` (.svg or .png); returns the evidence summary it shows."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "cloudrun-gpu-llm"
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    checks = [check_row(r) for r in load_vllm_evidence()]
    summary = evidence_summary(checks)
    printed = [c.row.kv_gib for c in checks]
    predicted = [c.kv_predicted_gib for c in checks]
    over = [c.over_commit for c in checks]
    fig, ax = plt.subplots(figsize=(6.4, 5.2), dpi=110)
    top = max(printed + predicted) * 1.25
    low = min(x for x in printed + predicted if x > 0) / 1.25
    ax.plot([low, top], [low, top], color="grey", lw=1, label="plan = printed")
    ax.fill_between([low, top], [low, top], [top, top], color="tab:red", alpha=0.07, label="over-commit side")
    ax.scatter(
        [p for p, o in zip(printed, over, strict=True) if not o],
        [q for q, o in zip(predicted, over, strict=True) if not o],
        color="tab:blue",
        s=28,
        label="rows (plan ≤ printed)",
    )
    if any(over):
        ax.scatter(
            [p for p, o in zip(printed, over, strict=True) if o],
            [q for q, o in zip(predicted, over, strict=True) if o],
            color="tab:red",
            marker="x",
            s=40,
            label="over-commit",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_formatter(NullFormatter())
    ax.set_xlim(low, top)
    ax.set_ylim(low, top)
    ax.set_xlabel("KV pool vLLM printed at start-up (GiB)")
    ax.set_ylabel("KV pool the plan predicts (GiB)")
    ax.set_title(
        f"vLLM KV pool: plan vs printed, {int(summary['rows'])} published start-up logs\n"
        f"{int(summary['over_commits'])} over-commits, median |error| {summary['median_abs_error']:.1%}",
        fontsize=9,
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, metadata={"Date": None} if out.suffix == ".svg" else {})
    plt.close(fig)
    return summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    summary = plot(Path(args.out))
    print(f"{args.out}: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
