"""scripts/evidence_plot.py (#24): the sizing evidence as a picture, drawn from whatever the evidence data holds."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from cloudrun_gpu.sizing.data import load_vllm_evidence

from .conftest import ROOT


def test_the_kv_plot_draws_every_evidence_row_and_its_svg_is_in_docs(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("evidence_plot", ROOT / "scripts" / "evidence_plot.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "kv.svg"
    summary = module.plot(out)
    assert summary["rows"] == len(load_vllm_evidence())
    svg = out.read_text()
    assert f"{int(summary['rows'])} published start-up logs" in svg and "over-commit" in svg
    assert svg.count('<path d="M ') > 0 and "<dc:date>" not in svg  # deterministic: no timestamp
    assert (ROOT / "docs" / "sizing-kv-predicted-vs-printed.svg").is_file()
