"""The map stays true (issue 18): README's Layout block names what is in the tree and nothing that is not, the
package docstring names real modules, and CONTRIBUTING.md points at places that exist."""

from __future__ import annotations

import importlib.util
import re
import subprocess

import cloudrun_gpu

from .conftest import ROOT

LIB = ROOT / "components" / "cloudrun_gpu"
PATH_TOKEN = re.compile(r"(?<![\w/.])([A-Za-z_][\w.-]*(?:/[\w.-]+)*(?:/|\.py|\.yaml|\.md|\.sh|\.toml))")


def layout_block() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Layout") :]
    start = section.index("```") + 3
    return section[start : section.index("```", start)]


def _sections(block: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """(top-level entry, [(folder named earlier on the same line or "", path token)]): an unindented line starts an
    entry; its indented lines name paths inside it (``engines/`` … ``llamacpp.py`` inside the library)."""
    out: list[tuple[str, list[tuple[str, str]]]] = []
    for line in block.splitlines():
        tokens = PATH_TOKEN.findall(line)
        if not tokens:
            continue
        if not line.startswith(" "):
            out.append((tokens[0], []))
            tokens = tokens[1:]
        folder = ""
        for t in tokens:
            out[-1][1].append((folder, t))
            if t.endswith("/"):
                folder = t
    return out


def _tracked_top_level() -> set[str]:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return {f.split("/")[0] + ("/" if "/" in f else "") for f in files}


def test_every_path_in_the_layout_block_exists() -> None:
    missing = []
    for top, names in _sections(layout_block()):
        base = ROOT / top if top.endswith("/") else ROOT
        for folder, name in names:
            candidates = [base / name, base / folder / name, ROOT / name, LIB / name, LIB / folder / name]
            if not any(c.exists() for c in candidates):
                missing.append(f"{top} … {folder}{name}")
    assert not missing, missing


def test_the_layout_block_names_every_top_level_folder_and_library_module() -> None:
    block = layout_block()
    named = set(PATH_TOKEN.findall(block))
    dirs = {t for t in _tracked_top_level() if t.endswith("/") and not t.startswith(".")}
    assert dirs - {"components/"} <= named, dirs - named
    assert "components/cloudrun_gpu/" in named
    lib = {p.name + "/" for p in LIB.iterdir() if (p / "__init__.py").is_file()}
    lib |= {p.name for p in LIB.glob("*.py") if p.name != "__init__.py"}
    assert lib <= named, lib - named
    stack = {p.name for p in (ROOT / "stack").glob("*.py") if not p.name.startswith("__")}
    assert stack <= named, stack - named
    scripts = {p.name for p in (ROOT / "scripts").iterdir() if p.is_file()}
    assert scripts <= named, scripts - named
    docs = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert docs <= named, docs - named


def test_the_package_docstring_names_real_modules_and_every_one() -> None:
    doc = cloudrun_gpu.__doc__ or ""
    names = set(re.findall(r"``(cloudrun_gpu(?:\.\w+)+)``", doc))
    assert names and all(importlib.util.find_spec(n) is not None for n in names), names
    top = {
        p.stem if p.suffix == ".py" else p.name
        for p in LIB.iterdir()
        if p.suffix == ".py" or (p / "__init__.py").is_file()
    }
    assert {f"cloudrun_gpu.{t}" for t in top - {"__init__"}} <= names


def test_contributing_points_at_places_that_exist() -> None:
    text = (ROOT / "CONTRIBUTING.md").read_text()
    paths = set(re.findall(r"`((?:components|stack|container|tests|scripts|docs)/[\w./<>-]*)`", text))
    assert paths
    for p in paths:
        if "<" in p:  # a pattern such as engines/<engine>.py: its folder exists
            p = p[: p.index("<")]
        assert (ROOT / p).exists(), p
    for section in ("## Adding a GPU type", "## Adding an engine", "## Adding a loading method"):
        assert section in text
