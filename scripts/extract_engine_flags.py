"""Extract the command-line flags (vLLM) or environment variables (Ollama) an engine defines, from its source at a
pinned tag, into the tables under ``tests/data/engine-flags/`` that the engine contract tests check rendered
flags against (issue 18: every rendered flag must exist, spelled exactly — argparse would otherwise accept a
prefix abbreviation such as ``--kv-cache-memory`` for ``--kv-cache-memory-bytes``).

Usage (the command each table's header records)::

    # vLLM: an unpacked source tree (the PyPI sdist vllm-X.Y.Z.tar.gz holds the same files as the git tag)
    python scripts/extract_engine_flags.py vllm SRC_DIR > tests/data/engine-flags/vllm-vX.Y.Z.txt
    # Ollama: envconfig/config.go at the tag, e.g. from a clone: git show vX.Y.Z:envconfig/config.go
    python scripts/extract_engine_flags.py ollama CONFIG_GO > tests/data/engine-flags/ollama-vX.Y.Z.txt
    # vLLM's environment variables: vllm/envs.py of the same tree (or of the release's wheel)
    python scripts/extract_engine_flags.py vllm-env ENVS_PY > tests/data/engine-flags/vllm-vX.Y.Z-env.txt

vLLM's OpenAI server builds its parser in ``vllm/entrypoints/openai/cli_args.py`` ``make_arg_parser``: its own
``add_argument`` calls, one ``--<field>`` per field of the ``FrontendArgs`` dataclass (``--{key.replace('_', '-')}``),
then ``AsyncEngineArgs.add_cli_args`` (``vllm/engine/arg_utils.py``), whose every flag is a literal
``add_argument("--…")``. Ollama reads its settings with ``Var("OLLAMA_…")``/``os.Getenv`` in
``envconfig/config.go``. vLLM reads its own variables only through ``vllm/envs.py``'s
``environment_variables`` dict (its module ``__getattr__`` looks a name up there), so that dict's keys are the
variables a release knows. All are read statically (no engine installed): string literals only.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

VLLM_FILES = ("vllm/engine/arg_utils.py", "vllm/entrypoints/openai/cli_args.py")


def _literal_flags(tree: ast.AST) -> set[str]:
    """Every ``"-x"``/``"--xy"`` string passed positionally to an ``add_argument`` call."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument":
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.startswith("-"):
                    out.add(arg.value)
    return out


def _dataclass_fields(tree: ast.AST, class_name: str) -> set[str]:
    """``--<field>`` for each annotated field of ``class_name`` (how ``FrontendArgs.add_cli_args`` names them)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            return {
                "--" + stmt.target.id.replace("_", "-")
                for stmt in node.body
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
            }
    raise SystemExit(f"no class {class_name} found")


def vllm_flags(src: Path) -> list[str]:
    flags: set[str] = set()
    for rel in VLLM_FILES:
        tree = ast.parse((src / rel).read_text())
        flags |= _literal_flags(tree)
        if rel.endswith("cli_args.py"):
            flags |= _dataclass_fields(tree, "FrontendArgs")
    return sorted(flags)


def ollama_env(config_go: Path) -> list[str]:
    return sorted(set(re.findall(r'"(OLLAMA_[A-Z0-9_]+)"', config_go.read_text())))


def vllm_env(envs_py: Path) -> list[str]:
    """The string keys of ``environment_variables`` in ``vllm/envs.py`` (assigned with or without annotation)."""
    for node in ast.walk(ast.parse(envs_py.read_text())):
        targets: list[ast.expr] = []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        elif isinstance(node, ast.Assign):
            targets = node.targets
        value = getattr(node, "value", None)
        named = any(isinstance(t, ast.Name) and t.id == "environment_variables" for t in targets)
        if named and isinstance(value, ast.Dict):
            return sorted(k.value for k in value.keys if isinstance(k, ast.Constant) and isinstance(k.value, str))
    raise SystemExit("no environment_variables dict found")


EXTRACTORS = {"vllm": vllm_flags, "ollama": ollama_env, "vllm-env": vllm_env}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in EXTRACTORS:
        print(__doc__, file=sys.stderr)
        return 2
    names = EXTRACTORS[argv[0]](Path(argv[1]))
    print("\n".join(names))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
