"""Render ``docs/settings.md``: every stack-file setting with the docstring its owning component wrote.

The settings are declared and documented once, in the component that owns them (attribute docstrings on
the settings types); this page is generated from them, and ``tests/test_settings_doc.py`` fails when the
committed page is out of date (``python -m stack.settings_doc > docs/settings.md`` refreshes it).
"""

from __future__ import annotations

import enum
import sys
import typing
from typing import Any

from stack.config import OPTIONAL_SECTIONS, SECTIONS

HEADER = """# Stack settings

Generated from the settings types' docstrings by `python -m stack.settings_doc` (do not edit by hand).
Each section is written in `Pulumi.<stack>.yaml` under the `cloudrun-gpu:` namespace, e.g.

```yaml
config:
  gcp:project: my-project
  gcp:region: europe-west1
  cloudrun-gpu:environment: dev      # dev, staging or prod
  cloudrun-gpu:engine:
    name: vllm
    context_length: 16384
```

and the same class is the matching field of the component's `…Args` for Python importers (and, through
`provider/`, for other Pulumi languages).
"""


def _type_name(annotation: Any) -> str:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    optional = len(args) < len(typing.get_args(annotation))
    if typing.get_origin(annotation) is list:
        text = f"list of {_type_name(args[0])}"
    elif typing.get_origin(annotation) is dict:
        text = f"mapping of {_type_name(args[0])} to {_type_name(args[1])}"
    elif args and typing.get_origin(annotation) is not None and optional:
        text = _type_name(args[0])
    elif isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        text = " \\| ".join(f"`{m.value}`" for m in annotation)
    elif isinstance(annotation, type) and hasattr(annotation, "__pydantic_fields__"):
        text = f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    else:
        text = getattr(annotation, "__name__", str(annotation))
    return text + (" (optional)" if optional else "")


def _default(field: Any) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        value = field.default_factory()
        if hasattr(value, "__pydantic_fields__"):
            return "defaults"
    else:
        value = field.default
    if isinstance(value, enum.Enum):
        value = value.value
    if value is None:
        return "—"
    return f"`{value!r}`".replace("|", "\\|")


def _table(cls: Any, key: str, seen: list[Any]) -> list[str]:
    lines = [f"### {cls.__name__}", "", f"`{key}` — {' '.join((cls.__doc__ or '').split())}", ""]
    lines += ["| key | type | default | what it does |", "|---|---|---|---|"]
    for name, field in cls.__pydantic_fields__.items():
        doc = " ".join((field.description or "").split()).replace("|", "\\|")
        lines.append(f"| `{name}` | {_type_name(field.annotation)} | {_default(field)} | {doc} |")
        for arg in (field.annotation, *typing.get_args(field.annotation)):
            if hasattr(arg, "__pydantic_fields__") and arg not in [c for c, _ in seen]:
                seen.append((arg, f"{key}.{name}"))
    return [*lines, ""]


OPTIONAL_NOTE = {
    "regions": "Optional, a **list** of these (one entry per region, nearest your users first); see README "
    '"Multi-region".',
    "frontdoor": "Optional: present = a load balancer in front of the service(s); required with several regions.",
    "capacity": "Optional: present = `plan` shows the capacity table and refuses a target the quotas cannot meet.",
}


def render() -> str:
    out = [HEADER]
    sections = [*SECTIONS.items(), *OPTIONAL_SECTIONS.items()]
    documented: set[Any] = set()
    for section, cls in sections:
        out.append(f"## `cloudrun-gpu:{section}`\n")
        if section in OPTIONAL_NOTE:
            out.append(OPTIONAL_NOTE[section] + "\n")
        nested: list[Any] = []
        out += _table(cls, f"cloudrun-gpu:{section}", nested)
        documented.add(cls)
        for sub, key in nested:
            if sub in documented:  # e.g. a region entry's gpu: the same type as the cloudrun-gpu:gpu section
                continue
            documented.add(sub)
            out += _table(sub, key, [])
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
