"""docs/settings.md is generated from the settings' docstrings and must match them; every field has one."""

from __future__ import annotations

from stack.config import SECTIONS
from stack.settings_doc import render

from .conftest import ROOT


def test_settings_page_is_current() -> None:
    committed = (ROOT / "docs" / "settings.md").read_text()
    assert committed == render(), (
        "docs/settings.md is stale: run `.venv/bin/python -m stack.settings_doc > docs/settings.md`"
    )


def test_every_setting_is_documented() -> None:
    todo = list(SECTIONS.values())
    seen = set()
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        assert (cls.__doc__ or "").strip(), cls
        for name, field in cls.__pydantic_fields__.items():
            assert (field.description or "").strip(), f"{cls.__name__}.{name} has no docstring"
            todo += [
                a
                for a in (field.annotation, *getattr(field.annotation, "__args__", ()))
                if hasattr(a, "__pydantic_fields__")
            ]
    assert len(seen) >= len(SECTIONS) + 2  # the sections plus nested PSC and NAT settings
