"""Each component folder has a README whose Python example runs, under mocks, and registers what it says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .conftest import ROOT, render

COMPONENTS = ROOT / "components" / "cloudrun_gpu"
EXPECT = {
    "network": "cloudrun-gpu:index:InferenceNetwork",
    "service": "cloudrun-gpu:index:GpuInferenceService",
    "registry": "cloudrun-gpu:index:ModelRegistry",
    "bucket": "cloudrun-gpu:index:ModelBucket",
    "identity": "cloudrun-gpu:index:RuntimeIdentity",
    "apis": "cloudrun-gpu:index:ProjectApis",
    "build": "cloudrun-gpu:index:ImageBuild",
    "frontdoor": "cloudrun-gpu:index:FrontDoor",
    "cache": "cloudrun-gpu:index:ResponseCache",
}


def _example(readme: Path) -> str:
    blocks = re.findall(r"```python\n(.*?)```", readme.read_text(), re.DOTALL)
    assert len(blocks) == 1, f"{readme} must hold exactly one Python example"
    return str(blocks[0])


@pytest.mark.parametrize("folder", sorted(EXPECT))
def test_component_readme_example_runs(folder: str) -> None:
    code = _example(COMPONENTS / folder / "README.md")
    r = render(lambda: exec(compile(code, f"{folder}/README.md", "exec"), {}))
    types = {x.type for x in r.resources}
    assert EXPECT[folder] in types
    assert any(x.custom for x in r.resources), "the example registered no cloud resource"
