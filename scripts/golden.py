"""Re-record golden plans only on purpose: which stacks, why, and every difference named (#23).

The golden plans (``tests/golden/plan-<stack>.json``) are the only oracle for several component inputs, so
re-recording them from the code under test must be a reviewed act, not a reflex. This command refuses unless
told which stacks and why, prints each difference as a line a reviewer can read (a resource added or removed, an
input path with its old and new value), writes the files, and writes a commit message for a commit of its own::

    .venv/bin/python scripts/golden.py --stacks prod --why "vLLM serves the name the call output sends"
    git add tests/golden && git commit -F .golden-commit-msg

``--check`` prints the differences and writes nothing (exit 1 when there are any).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
MESSAGE = ROOT / ".golden-commit-msg"
SHOWN = 160
"""Characters of a changed value shown in a difference line (long command scripts are cut, never hidden)."""


def committed_stacks(root: Path = ROOT) -> list[str]:
    return sorted(p.name.split(".")[1] for p in root.glob("Pulumi.*.yaml"))


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"


def _walk(path: str, old: Any, new: Any) -> Iterator[str]:
    """One line per leaf that differs; dicts key by key, lists of equal length item by item, everything else
    as a whole."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            sub = f"{path}.{key}" if path else str(key)
            if key not in old:
                yield f"{sub}: added {_short(new[key])}"
            elif key not in new:
                yield f"{sub}: removed (was {_short(old[key])})"
            else:
                yield from _walk(sub, old[key], new[key])
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            yield from _walk(f"{path}[{i}]", a, b)
    elif isinstance(old, list) and isinstance(new, list) and all(isinstance(x, str) for x in [*old, *new]):
        # Lines of text (explain, args) that grew or shrank: name the lines that went and came.
        yield from (f"{path}: removed {_short(line)}" for line in old if line not in new)
        yield from (f"{path}: added {_short(line)}" for line in new if line not in old)
    elif old != new:
        yield f"{path}: {_short(old)} → {_short(new)}"


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Every difference between two plans, resources matched by (type, name) rather than list position."""
    lines: list[str] = []
    lines.extend(
        _walk(
            "", {k: v for k, v in old.items() if k != "resources"}, {k: v for k, v in new.items() if k != "resources"}
        )
    )
    before = {(r["type"], r["name"]): r for r in old.get("resources", [])}
    after = {(r["type"], r["name"]): r for r in new.get("resources", [])}
    for key in sorted(set(before) | set(after)):
        typ, name = key
        if key not in before:
            lines.append(f"resource {name} ({typ}): added")
        elif key not in after:
            lines.append(f"resource {name} ({typ}): removed")
        else:
            lines.extend(f"resource {name}: {line}" for line in _walk("", before[key], after[key]))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--stacks", default="", help="the stacks to re-record, comma- or space-separated")
    parser.add_argument("--why", default="", help="why their plans change (goes into the commit message)")
    parser.add_argument("--check", action="store_true", help="print the differences only; write nothing")
    args = parser.parse_args(argv)
    known = committed_stacks()
    stacks = [s for s in args.stacks.replace(",", " ").split() if s]
    if not stacks:
        print(f"golden: name the stacks to re-record: --stacks (one or more of {', '.join(known)})", file=sys.stderr)
        return 2
    unknown = [s for s in stacks if s not in known]
    if unknown:
        print(f"golden: no committed stack {', '.join(unknown)} (known: {', '.join(known)})", file=sys.stderr)
        return 2
    if not args.why.strip() and not args.check:
        print("golden: say why the plans change: --why '…' (it opens the commit message)", file=sys.stderr)
        return 2

    sys.path.insert(0, str(ROOT))
    from stack.cli import plan_json

    body: list[str] = []
    changed = False
    for stack in stacks:
        path = GOLDEN / f"plan-{stack}.json"
        old = json.loads(path.read_text()) if path.is_file() else {}
        new = json.loads(json.dumps(plan_json(stack, ROOT), sort_keys=False, default=str))
        lines = differences(old, new)
        print(f"{stack}: {len(lines)} difference(s)")
        for line in lines:
            print(f"  {line}")
        if lines:
            changed = True
            body += [f"{stack}:", *(f"- {line}" for line in lines), ""]
            if not args.check:
                path.write_text(json.dumps(new, indent=2, default=str) + "\n")
    if args.check:
        return 1 if changed else 0
    if changed:
        MESSAGE.write_text(f"Golden plans ({', '.join(stacks)}): {args.why.strip()}\n\n" + "\n".join(body))
        print(f"golden: written; commit them on their own: git add tests/golden && git commit -F {MESSAGE.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
