"""Mutation testing of everything that ships (`make mutate`; slow, outside CI) with Cosmic Ray and our own pass.

Each mutant is one small change to one shipped module — the library, and (issue 23) the stack program, the policy
pack, the provider, the container side (cache service, prompt cache, download) and the harness: Cosmic Ray's
operators (``*`` → ``/``, ``<`` → ``<=``, a constant changed, a ``not`` dropped, …) plus ours for what it lacks
(:data:`OWN_OPERATORS`: drop a keyword argument, drop a dict key, change a message literal, drop a returned
field). The module's tests then run against it and should fail ("kill" it).
A surviving mutant is a behaviour no test pins, unless it is *equivalent* (the program still
behaves the same): those are listed in :data:`EQUIVALENT` with the reason, and left out of the score.

Cosmic Ray mutates the file on disk, so this script never touches the working tree: it copies
the tracked and untracked (not ignored) files into ``mutants/work/`` and runs there, with
``PYTHONPATH`` pointing at the copy's ``components/`` (it wins over the editable install's ``.pth``).

    .venv/bin/python scripts/mutate.py                       # every priority module, 25 mutants each (seed 12)
    .venv/bin/python scripts/mutate.py --sample 0 netcalc    # every mutant of one module
    .venv/bin/python scripts/mutate.py --sample 30 --seed 23 stack/cli.py policy/cloudrun_gpu_policy/rules.py
    .venv/bin/python scripts/mutate.py --survivors           # also print each survivor's diff

The score table in ``docs/test-strength.md`` (between the ``mutate:`` markers) is rewritten;
the raw results (diffs, test output) go to ``mutants/results-<module>.json`` (git-ignored).
"""

from __future__ import annotations

import argparse
import ast
import datetime
import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from cosmic_ray.commands.init import _all_work_items  # type: ignore[import-untyped]
from cosmic_ray.mutating import mutate_and_test  # type: ignore[import-untyped]
from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkItem  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "mutants"
DOC = ROOT / "docs" / "test-strength.md"
BEGIN, END = "<!-- mutate:begin -->", "<!-- mutate:end -->"
FINDINGS_BEGIN, FINDINGS_END = "<!-- mutate:findings:begin -->", "<!-- mutate:findings:end -->"
LIB = "components/cloudrun_gpu"

SIZING_TESTS = [
    "tests/test_strength_sizing.py",
    "tests/test_strength_vllm.py",
    "tests/test_sizing.py",
    "tests/test_catalogue.py",
]
READER_TESTS = ["tests/test_strength_readers.py", "tests/test_readers.py"]
NETWORK_TESTS = ["tests/test_strength_network.py", "tests/test_network.py"]
SERVICE_TESTS = ["tests/test_strength_service.py", "tests/test_service.py", "tests/test_config.py"]
STORAGE_TESTS = ["tests/test_strength_storage.py", "tests/test_storage.py"]

MODULES: dict[str, list[str]] = {
    "sizing/engines.py": [
        "tests/test_strength_engines_s6.py",
        "tests/test_strength_ollama.py",
        *SIZING_TESTS,
        "tests/test_service.py",
        "tests/test_golden.py",
    ],
    "sizing/plan.py": [
        "tests/test_strength_plan_s6.py",
        "tests/test_strength_plan_s5.py",
        "tests/test_strength_plan.py",
        *SIZING_TESTS,
        "tests/test_properties.py",
        "tests/test_golden.py",
    ],
    "sizing/quant.py": ["tests/test_strength_quant_s5.py", *SIZING_TESTS, *READER_TESTS],
    "sizing/readers.py": [
        "tests/test_strength_readers_s6.py",
        "tests/test_strength_readers_s5.py",
        *READER_TESTS,
        "tests/test_sizing.py",
    ],
    "netcalc.py": ["tests/test_strength_network_s4.py", *NETWORK_TESTS, "tests/test_config.py"],
    "network/settings.py": [
        "tests/test_strength_network_s5.py",
        "tests/test_strength_network_s4.py",
        *NETWORK_TESTS,
        "tests/test_config.py",
    ],
    # test_startup.py pins method_for_model_path and the rendered --no-mmap per method (R7)
    "loading.py": [
        "tests/test_strength_storage_s4.py",
        *STORAGE_TESTS,
        "tests/test_startup.py",
        "tests/test_service.py",
    ],
    "service/settings.py": SERVICE_TESTS,
    "service/plan.py": ["tests/test_strength_service_2.py", *SERVICE_TESTS, "tests/test_golden.py"],
    "settings.py": [
        "tests/test_strength_settings_s4.py",
        "tests/test_strength_settings.py",
        "tests/test_config.py",
        "tests/test_stacks.py",
    ],
    "bucket/__init__.py": ["tests/test_strength_bucket_s4.py", *STORAGE_TESTS],
    "registry/__init__.py": ["tests/test_strength_registry_s4.py", *STORAGE_TESTS],
    "errors.py": ["tests/test_strength_errors.py", "tests/test_config.py", "tests/test_strength_settings.py"],
    "limits.py": [
        "tests/test_strength_limits_s5.py",
        "tests/test_strength_limits.py",
        *SIZING_TESTS,
        "tests/test_quota.py",
        "tests/test_service.py",
    ],
    "images.py": ["tests/test_strength_images.py", "tests/test_build.py", "tests/test_container.py"],
    "quota.py": ["tests/test_strength_quota.py", "tests/test_quota.py"],
    "apis/__init__.py": ["tests/test_strength_apis_s4.py", "tests/test_strength_apis.py", "tests/test_apis.py"],
    "identity/__init__.py": [
        "tests/test_strength_identity_s4.py",
        "tests/test_strength_identity.py",
        "tests/test_service.py",
        "tests/test_build.py",
    ],
    "build/__init__.py": ["tests/test_strength_build_s5.py", "tests/test_strength_build.py", "tests/test_build.py"],
    "network/__init__.py": ["tests/test_strength_network_component_s5.py", *NETWORK_TESTS],
    "service/__init__.py": ["tests/test_strength_service_s5.py", *SERVICE_TESTS, "tests/test_streamer.py"],
    "capacity.py": ["tests/test_strength_capacity.py", "tests/test_capacity.py"],
    "frontdoor/__init__.py": [
        "tests/test_strength_frontdoor_s5.py",
        "tests/test_strength_frontdoor.py",
        "tests/test_frontdoor.py",
    ],
    "frontdoor/settings.py": [
        "tests/test_strength_frontdoor_s5.py",
        "tests/test_strength_frontdoor.py",
        "tests/test_frontdoor.py",
    ],
    "sizing/catalogue.py": [
        "tests/test_strength_catalogue_s5.py",
        "tests/test_strength_catalogue.py",
        "tests/test_catalogue.py",
        *SIZING_TESTS,
        *READER_TESTS,
    ],
    "sizing/spec.py": [
        "tests/test_strength_spec_s5.py",
        "tests/test_strength_spec.py",
        *SIZING_TESTS,
        *READER_TESTS,
    ],
    "sizing/startup.py": ["tests/test_startup_evidence.py", "tests/test_sizing.py", "tests/test_strength_plan.py"],
    "sizing/settings.py": [
        "tests/test_strength_sizing_settings_s5.py",
        "tests/test_strength_sizing_settings.py",
        *SERVICE_TESTS,
        "tests/test_build.py",
        "tests/test_streamer.py",
    ],
    "sizing/data/__init__.py": [
        "tests/test_strength_evidence_s5.py",
        "tests/test_strength_evidence.py",
        "tests/test_vllm_evidence.py",
    ],
    "cache/__init__.py": [
        "tests/test_strength_cache_s5.py",
        "tests/test_strength_cache_settings_s4.py",
        "tests/test_strength_cache.py",
        "tests/test_cache_component.py",
    ],
    "cache/settings.py": [
        "tests/test_strength_cache_settings_s5.py",
        "tests/test_strength_cache_settings_s4.py",
        "tests/test_strength_cache.py",
        "tests/test_cache_component.py",
    ],
    "engines/__init__.py": ["tests/test_engine_contract.py", "tests/test_extra_engine.py"],
    "engines/base.py": [
        "tests/test_strength_engines_3.py",
        "tests/test_engine_contract.py",
        "tests/test_extra_engine.py",
        "tests/test_policy.py",
    ],
    # The profiles' start-up log parsers (moved out of stack/calibrate.py) are pinned by the log tests.
    "engines/llamacpp.py": [
        "tests/test_strength_engines_llamacpp_s4.py",
        "tests/test_engine_contract.py",
        "tests/test_sizing.py",
        "tests/test_container.py",
        "tests/test_engine_logs.py",
    ],
    "engines/ollama.py": [
        "tests/test_strength_ollama_2.py",
        "tests/test_engine_contract.py",
        "tests/test_sizing.py",
        "tests/test_container.py",
        "tests/test_engine_logs.py",
    ],
    "engines/logs.py": ["tests/test_strength_engines_3.py", "tests/test_engine_logs.py", "tests/test_startup.py"],
    "engines/vllm.py": [
        "tests/test_strength_vllm_s5.py",
        "tests/test_engine_contract.py",
        "tests/test_streamer.py",
        "tests/test_strength_vllm.py",
        "tests/test_vllm_evidence.py",
        "tests/test_engine_logs.py",
    ],
    "pricing.py": ["tests/test_strength_pricing.py", "tests/test_pricing.py"],
    "build/image.py": [
        "tests/test_strength_build_image.py",
        "tests/test_strength_compose_s6b.py",
        "tests/test_build.py",
        "tests/test_container.py",
        "tests/test_storage.py",
        "tests/test_stacks.py",
    ],
}
"""Module (under the library) → the test files run against its mutants, fastest killers first."""

CACHE_TESTS = [
    "tests/test_cache_safety.py",
    "tests/test_cache_support.py",
    "tests/test_cache.py",
    "tests/test_cache_auth.py",
    "tests/test_strength_cache.py",
]
STACK_TESTS = ["tests/test_strength_stack_config.py", "tests/test_config.py", "tests/test_stacks.py"]
SHIPPED: dict[str, list[str]] = {
    # the stack program (issue 23: never scored before; rules.py 54 %, cli.py 61 %, compose.py 74 %, config.py 78 %)
    "stack/config.py": [
        "tests/test_strength_config_s6.py",
        "tests/test_strength_config_s4.py",
        "tests/test_strength_config_3.py",
        *STACK_TESTS,
        "tests/test_validation_first.py",
        "tests/test_refused_settings.py",
        "tests/test_fuzz_config.py",
        "tests/test_multiregion.py",
    ],
    "stack/compose.py": [
        "tests/test_strength_compose_s6b.py",
        "tests/test_strength_compose_s6.py",
        "tests/test_strength_compose_s4.py",
        "tests/test_strength_compose_3.py",
        "tests/test_prepare_register.py",
        "tests/test_validation_first.py",
        "tests/test_strength_outputs.py",
        "tests/test_stacks.py",
        "tests/test_apis.py",
        "tests/test_multiregion.py",
        "tests/test_cache_stack.py",
        "tests/test_golden.py",
    ],
    "stack/cli.py": [
        "tests/test_strength_cli_s5.py",
        "tests/test_strength_cli_2.py",
        "tests/test_strength_cli_text.py",
        "tests/test_strength_cli.py",
        "tests/test_plan_cli.py",
        "tests/test_loadtest.py",
        "tests/test_quota.py",
        "tests/test_golden.py",
    ],
    "stack/cloudbuild.py": [
        "tests/test_strength_cloudbuild_s6.py",
        "tests/test_strength_cloudbuild_s4b.py",
        "tests/test_strength_compose_s6b.py",
        "tests/test_strength_cloudbuild_s4.py",
        "tests/test_build.py",
        "tests/test_container.py",
        "tests/test_storage.py",
    ],
    "stack/loadtest.py": [
        "tests/test_strength_loadtest_s6.py",
        "tests/test_strength_loadtest_s5c.py",
        "tests/test_strength_loadtest_s5b.py",
        "tests/test_strength_loadtest_s5.py",
        "tests/test_strength_loadtest_s4b.py",
        "tests/test_strength_loadtest_s4.py",
        "tests/test_loadtest_driver.py",
        "tests/test_loadtest.py",
    ],
    "stack/preflight.py": [
        "tests/test_strength_preflight_s5.py",
        "tests/test_cov_preflight.py",
        "tests/test_fresh_project.py",
        "tests/test_quota.py",
    ],
    "stack/render.py": [
        "tests/test_strength_render_s4b.py",
        "tests/test_strength_render_s4.py",
        "tests/test_render_isolation.py",
        "tests/test_strength_outputs.py",
        "tests/test_stacks.py",
    ],
    "stack/settings_doc.py": ["tests/test_strength_settings_doc_s4.py", "tests/test_settings_doc.py"],
    "stack/calibrate.py": [
        "tests/test_strength_calibrate_s4b.py",
        "tests/test_strength_calibrate_s4.py",
        "tests/test_cov_calibrate.py",
        "tests/test_engine_logs.py",
        "tests/test_startup.py",
        "tests/test_startup_evidence.py",
    ],
    "__main__.py": ["tests/test_stacks.py", "tests/test_strength_outputs.py"],
    # the policy pack
    "policy/cloudrun_gpu_policy/rules.py": [
        "tests/test_strength_policy_s5b.py",
        "tests/test_strength_policy_s5.py",
        "tests/test_strength_policy_2.py",
        "tests/test_strength_policy_units.py",
        "tests/test_strength_policy.py",
        "tests/test_policy.py",
    ],
    "policy/cloudrun_gpu_policy/offline.py": [
        "tests/test_strength_offline_s4b.py",
        "tests/test_strength_offline_s4.py",
        "tests/test_cov_offline.py",
        "tests/test_policy.py",
        "tests/test_strength_policy.py",
    ],
    # the component provider
    "provider/analysis.py": [
        "tests/test_strength_provider_s4.py",
        "tests/test_schema.py",
        "tests/test_provider_main.py",
    ],
    "provider/schema.py": [
        "tests/test_strength_provider_s4.py",
        "tests/test_cov_provider.py",
        "tests/test_schema.py",
        "tests/test_provider_main.py",
    ],
    "provider/__main__.py": ["tests/test_strength_provider_main_s4.py", "tests/test_provider_main.py"],
    # the container side: the response cache service, the prompt cache, the model download
    "container/cache/semcache/app.py": [
        "tests/test_strength_cache_3.py",
        "tests/test_strength_cache_2.py",
        "tests/test_cov_cache.py",
        *CACHE_TESTS,
    ],
    "container/cache/semcache/config.py": [
        "tests/test_strength_cache_config_s6.py",
        "tests/test_strength_cache_config_s4.py",
        *CACHE_TESTS,
        "tests/test_cache_component.py",
    ],
    "container/cache/semcache/embed.py": [
        "tests/test_strength_cache_embed_s6.py",
        "tests/test_strength_cache_embed_s4.py",
        *CACHE_TESTS,
    ],
    "container/cache/semcache/guard.py": [
        "tests/test_strength_cache_guard_s6.py",
        "tests/test_strength_cache_guard_s5.py",
        "tests/test_strength_cache_guard_s4.py",
        *CACHE_TESTS,
    ],
    "container/cache/semcache/iam.py": [
        "tests/test_strength_cache_iam_s5.py",
        "tests/test_strength_cache_iam_s4.py",
        "tests/test_cache_auth.py",
        *CACHE_TESTS,
    ],
    "container/cache/semcache/identity.py": [
        "tests/test_strength_cache_identity_s6.py",
        "tests/test_strength_cache_identity_s4.py",
        *CACHE_TESTS,
    ],
    "container/cache/semcache/keys.py": [
        "tests/test_strength_cache_keys_s5.py",
        "tests/test_strength_cache_keys_s4.py",
        "tests/test_cov_cache.py",
        *CACHE_TESTS,
    ],
    "container/cache/semcache/store.py": ["tests/test_cov_store.py", *CACHE_TESTS],
    "container/prompt_cache.py": [
        "tests/test_strength_prompt_cache_s5.py",
        "tests/test_strength_prompt_cache_s4b.py",
        "tests/test_strength_prompt_cache_s4.py",
        "tests/test_prompt_cache.py",
    ],
    "container/download_gcs.py": [
        "tests/test_strength_download_s5.py",
        "tests/test_cov_download.py",
        "tests/test_container.py",
    ],
    # the test harness other tools run (loadtest, startup evidence)
    "harness/llamacpp.py": [
        "tests/test_strength_harness_s4b.py",
        "tests/test_strength_harness_s4.py",
        "tests/test_cov_harness.py",
        "tests/test_engine_contract.py",
        "tests/test_prompt_cache.py",
        "tests/test_capacity.py",
    ],
}
"""Shipped files outside the library (paths from the repository root) → their tests: issue 23, "mutation scope =
everything that ships". A key is a repository path when it starts with one of :data:`SHIPPED_ROOTS`."""
MODULES.update(SHIPPED)
SHIPPED_ROOTS = ("stack/", "policy/", "provider/", "container/", "harness/", "__main__.py")
SHIPPED_GLOBS = (
    "stack/*.py",
    "policy/*.py",
    "policy/cloudrun_gpu_policy/*.py",
    "provider/*.py",
    "container/*.py",
    "container/cache/semcache/*.py",
    "harness/*.py",
    "__main__.py",
)


def source_path(module: str) -> str:
    """A MODULES key as a path from the repository root: shipped files outside the library are keyed by their own
    path, library modules by their path under ``components/cloudrun_gpu``."""
    return module if module.startswith(SHIPPED_ROOTS) else f"{LIB}/{module}"


NOT_MUTATED: dict[str, str] = {
    "__init__.py": "a docstring only: no statement to mutate (Cosmic Ray finds 0 mutants)",
    "sizing/__init__.py": "re-exports only (imports and `__all__`); Cosmic Ray finds 0 mutants, and every name it "
    "re-exports is scored in its own module",
    "stack/__init__.py": "empty",
    "stack/__main__.py": "`from stack.cli import main; sys.exit(main())`: the CLI it calls is scored in stack/cli.py",
    "policy/__main__.py": "the pack's entry point for the Pulumi CLI (PolicyPack(...) of rules.py's list): the "
    "rules it serves are scored in policy/cloudrun_gpu_policy/rules.py, the offline runner in offline.py",
    "policy/cloudrun_gpu_policy/__init__.py": "a docstring only",
    "provider/__init__.py": "a docstring only",
    "provider/components.py": "no mutants (Cosmic Ray finds 0, ours 0: three names, a version read and a list of "
    "classes); the list and the names are pinned by test_schema.py::test_every_component_under_the_package_tokens "
    "and test_provider_main.py::test_running_the_directory_serves_every_component_with_its_name_and_version",
    "container/cache/semcache/__init__.py": "a docstring only",
    "harness/__init__.py": "empty",
}
"""Library files deliberately left out of MODULES, each with the reason; every other ``.py`` must be listed."""


def unlisted_modules() -> list[str]:
    """Library ``.py`` files in neither MODULES nor NOT_MUTATED (a new module must be added to one)."""
    lib = ROOT / LIB
    found = sorted(p.relative_to(lib).as_posix() for p in lib.rglob("*.py") if "__pycache__" not in p.parts)
    found += sorted({p.relative_to(ROOT).as_posix() for g in SHIPPED_GLOBS for p in ROOT.glob(g)})
    return [m for m in found if m not in MODULES and m not in NOT_MUTATED]


@dataclass(frozen=True)
class Equivalent:
    code: str
    """The original source line, stripped (stable while other lines move)."""
    operator: str
    """A part of the operator's name, whole at ``/`` and ``_`` (e.g. ``ReplaceComparisonOperator_Lt_LtE``,
    ``NumberReplacer``, ``own/ChangeMessage``): :func:`operator_matches`."""
    reason: str


def dict_value_lines(module: str, name: str) -> list[str]:
    """The stripped source line on which each value of the module-level dict ``name`` in ``module`` starts: the line a
    mutant of that value is reported on (for :data:`EQUIVALENT` entries that cover every value of a table)."""
    source = (ROOT / source_path(module)).read_text()
    lines = source.splitlines()
    for node in ast.parse(source).body:
        if isinstance(node, ast.AnnAssign | ast.Assign):
            target = node.target if isinstance(node, ast.AnnAssign) else node.targets[0]
            if isinstance(target, ast.Name) and target.id == name and isinstance(node.value, ast.Dict):
                return [lines[v.lineno - 1].strip() for v in node.value.values]
    raise LookupError(f"{module} has no module-level dict {name}")


def keyword_lines(module: str, call: str, keyword: str) -> list[str]:
    """The stripped source line of each ``keyword=`` argument in a call to ``call`` in ``module``: the line a mutant
    that drops or changes it is reported on."""
    source = (ROOT / source_path(module)).read_text()
    lines = source.splitlines()
    return [
        lines[kw.lineno - 1].strip()
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == call
        for kw in node.keywords
        if kw.arg == keyword
    ]


PROMPT_CACHE_ONLY_LLAMA_CPP = (
    "only llama.cpp can have engine.prompt_cache: EngineSettings.problems refuses it for every other engine "
    "(sizing/settings.py, test_strength_sizing_settings.py::test_prompt_cache_only_for_llama_cpp), so the "
    "`and serving.engine.prompt_cache` half is False for any name the comparison lets through besides "
    "'llama.cpp', which `>=` and `<=` keep as `==` does (the strict `>`, `<` and `!=` are killed by "
    "test_strength_build_image.py::test_only_llama_cpps_prompt_cache_bakes_the_engine_flags_into_the_image)"
)
"""build/image.py's ``bakes_engine_flags``: why two of its comparison mutants are equivalent."""


EQUIVALENT: dict[str, list[Equivalent]] = {
    "stack/cli.py": [
        Equivalent(
            "if isinstance(d, list) and part.isdigit() and int(part) < len(d):",
            "ReplaceComparisonOperator_Lt_IsNot",
            "`_dig` walks KEY_SETTINGS' dotted paths only, and their one list index is `0` "
            "(`template.containers.0...`): `0 < len(d)` holds exactly when `len(d) != 0`, and `int('0')` and a "
            "`len()` of 0 are the same cached small-int object in CPython, so `0 is not len(d)` gives the same "
            "answer for every list (an index above 0 would differ: there is none)",
        ),
    ],
    "container/download_gcs.py": [
        Equivalent(
            code,
            operator,
            "`strict=True` is the line's only keyword and its only `True`, and `written` is built from `blobs` one "
            "for one (the list comprehension `[local_path(dest, ...) for b in blobs]` above, which raises rather "
            "than skip a name): the two lists always have the same length, so a zip without `strict` (or with "
            "`strict=False`) pairs them the same",
        )
        for code in (
            "for blob, target in zip(blobs, written, strict=True):",
            "for blob, path in zip(blobs, written, strict=True):  # a short file must not pass as a model",
        )
        for operator in ("own/DropKeyword", "ReplaceTrueWithFalse")
    ],
    "apis/__init__.py": [
        Equivalent(
            code,
            "own/ChangeMessage",
            "a STACK_SERVICES value is the reason an API is enabled, kept next to it for the reader: nothing reads the "
            "values (ProjectApisArgs.services defaults to `list(STACK_SERVICES)`, the keys; no other code, doc or "
            "output uses the dict), so a changed reason changes no resource, output or message",
        )
        for code in dict_value_lines("apis/__init__.py", "STACK_SERVICES")
    ],
    "build/image.py": [
        Equivalent(
            'return serving.engine.name == "llama.cpp" and serving.engine.prompt_cache',
            "Eq_GtE",
            PROMPT_CACHE_ONLY_LLAMA_CPP,
        ),
        Equivalent(
            'return serving.engine.name == "llama.cpp" and serving.engine.prompt_cache',
            "Eq_LtE",
            PROMPT_CACHE_ONLY_LLAMA_CPP,
        ),
    ],
    "engines/base.py": [
        Equivalent(
            "log_detect_order: ClassVar[int] = 50",
            "NumberReplacer",
            "the default only places a profile among the built-ins' orders, Ollama 10, vLLM 20 and llama.cpp 100 (the "
            "catch-all); 49 or 51 is still strictly between 20 and 100, so every log goes to the same profile "
            "(test_strength_engines_3.py::test_an_added_engine_asks_after_ollama_and_vllm_and_before_the_llama_cpp_"
            "fallback pins that place)",
        ),
    ],
    "stack/config.py": [
        Equivalent(
            code,
            "NumberReplacer",
            '`why.split(": ", 1)` → maxsplit 2: `why` is a literal two lines above with exactly one `": "` (the '
            "key's own colon has no space after it), so both splits give the same two parts; the other number "
            "mutants of this line (maxsplit 0, index 0 or 2) change the message or raise IndexError and are killed",
        )
        for code in (
            '[ConfigError(NS + "service.invokers", [], why.split(": ", 1)[1], f"add yourself: {SET_INVOKER}")]',
            'raise ConfigErrors([ConfigError(NS + "cache.invokers", [], why.split(": ", 1)[1], '
            'f"add yourself: {fix}")])',
        )
    ]
    + [
        Equivalent(
            "elif there != home or (regional and where != r.region):",
            "ReplaceComparisonOperator_NotEq_IsNot",
            "`there` and `home` are values of this module's own continent tables (`CONTINENTS`, `MULTI_REGIONS`; "
            "`continent()` returns nothing else but None, refused a branch earlier), and CPython stores equal "
            "string constants of one code object once, so two equal continents are the same object: `is not` "
            "answers exactly as `!=` for every pair of locations",
        )
    ],
    "stack/cloudbuild.py": [
        *(
            Equivalent(
                'for block in iter(lambda: f.read(1 << 20), b""):',
                f"ReplaceBinaryOperator_LShift_{op}",
                f"the block size `1 << 20` becomes {size}: `_file_sha256` feeds every block to one SHA-256 until "
                "`read` returns b'', and a hash over the same bytes in other blocks is the same digest (only the "
                "reading speed differs; the sizes that change it, 0 from `>>` or `//` and a float from `/`, are not "
                "excused)",
            )
            for op, size in (
                ("Mul", "20"),
                ("BitOr", "21"),
                ("Add", "21"),
                ("Mod", "1"),
                ("Pow", "1"),
                ("Sub", "-19, which reads to the end of the file in one block"),
            )
        ),
        Equivalent(
            """target = shlex.quote(model.file) if cfg.engine.name == "llama.cpp" else '"$(basename "$f")"'""",
            "ReplaceComparisonOperator_Eq_LtE",
            "the line runs only under `if cfg.engine.name in ('llama.cpp', 'ollama')`, and 'ollama' sorts after "
            "'llama.cpp' ('o' > 'l'), so `<= 'llama.cpp'` is true for 'llama.cpp' alone, exactly as `==` is",
        ),
        Equivalent(
            'assert src is not None, "staging_config needs model.source"',
            "own/ChangeMessage",
            "an invariant's message, never shown: `staging_config`'s one caller (compose.py `_prepare_builds`) calls "
            "it only under `staging_needed`, which is true only with a non-empty `model.source`, and "
            "`model_source()` returns a parsed source for every non-empty one (sizing/settings.py)",
        ),
        Equivalent(
            "def staging_config(vs: ValidatedStack, *, token: bool, trigger: str) -> dict[str, Any]:",
            "ReplaceBinaryOperator_Mul_Div",
            "the bare `*` → `/` only makes `vs` positional-only and lets `token` and `trigger` be passed by position "
            "too: every call (stack/compose.py, stack/cli.py, the tests) passes `vs` by position and the other two "
            "by keyword, so each call binds the same arguments",
        ),
        Equivalent(
            'if cfg.engine.name == "ollama" and cfg.loading.method == "gcs-fuse":',
            "ReplaceComparisonOperator_Eq_LtE",
            "`method <= 'gcs-fuse'` adds only 'gcs-download', the one loading method sorting before it "
            "(limits.LOADING_METHODS: 'gcs-stream', 'image' and 'internet' sort after), and the Ollama profile "
            "refuses gcs-download before any build config is made (`OllamaProfile.loading_methods = ('image', "
            "'gcs-fuse')`, engines/ollama.py), so with `engine.name == 'ollama'` both comparisons hold for the same "
            "stacks",
        ),
    ],
    "stack/compose.py": [
        Equivalent(
            "if vs.index == 0:",
            "Eq_LtE",
            "`ValidatedStack.index` is never negative: the only place that sets it is read_config's "
            "`for i in range(count)` (stack/config.py, `ValidatedStack(..., index=i)`), and its default is 0, so "
            "`<= 0` holds exactly when `== 0` does",
        ),
        Equivalent(
            'PENDING = "<wired at registration>"',
            "ChangeMessage",
            "PENDING is the prepared arguments' placeholder for another resource's output, and its text never reaches "
            "a user: every reader compares it with the constant itself (`_pending`/`_wire`: `value == PENDING`), "
            "`register` replaces every placeholder before a component is constructed (`_wire` asserts none is left), "
            "and the Args rules that see it in prepare read such fields only for their type (`args_types`: a str "
            "either way), emptiness (FrontDoorArgs's backend service_name) or None (service bucket_name, the "
            "internal front door's network), which the prefixed text `MUTATED <wired at registration>` passes "
            "alike; grep finds the text nowhere else (tests/test_prepare_register.py uses compose.PENDING)",
        ),
    ]
    + [
        Equivalent(
            code,
            op,
            "the staging and image-build configs use no user substitution but `${_MODEL_BUCKET}`: every text of the "
            "user's that reaches their steps or images is escaped (`$` -> `$$`, cloudrun_gpu.build.image.literal: "
            "the bash scripts via stack/cloudbuild.py `_sh`, model.object_prefix in the upload, marker and "
            "stage-model paths, model.file in the baked target, every docker --build-arg value) or is a name "
            "validated without `$` (project PROJECT_PATTERN, region REGION_PATTERN, registry.repository_id "
            "AR_REPOSITORY_ID, the image tag `tag_safe` + hex), the rest being constants (images, step ids, "
            "build-arg keys, the trigger's hex), so `substitutions_used` returns `{'_MODEL_BUCKET'}` or nothing "
            "(pinned for a `$_X` folder by tests/test_strength_compose_s6b.py). For that key `>=` and `<=` hold as "
            "`==` does, and `is not` holds too: `substitutions_used` returns a substring the regex cut from "
            "json.dumps' text, a new str object, never the module constant (checked: `k is MODEL_BUCKET` is False, "
            "`k == MODEL_BUCKET` True); the strict `<`, `>`, `!=` and `is` drop it and are not excused",
        )
        for code in (
            "substitutions={k: PENDING for k in substitutions_used(config) if k == MODEL_BUCKET},",
            "substitutions={k: PENDING for k in substitutions_used(build_config.to_dict()) if k == MODEL_BUCKET},",
        )
        for op in ("_Eq_IsNot", "_Eq_GtE", "_Eq_LtE")
    ]
    + [
        Equivalent(
            "@dataclass(frozen=True)",
            "own/DropKeyword",
            "the only `@dataclass(frozen=True)` in stack/compose.py is DerivedName's, and frozen changes two things "
            "no code exercises: assignment to a field (nothing assigns one: derived_names builds each, "
            "derived_name_problems and tests/test_prepare_register.py only read `rule`, `name`, `setting`, `what`, "
            "`region`) and hashing (eq=True without frozen sets `__hash__` to None, but no DerivedName is hashed: "
            "derived_name_problems keeps them as dict values under a (str, str, str) key, never in a set or as a "
            "key); equality and repr are the same; grep finds DerivedName and derived_names nowhere else",
        ),
        Equivalent(
            "for cache in rcfg.registry.remote_caches:",
            "ZeroIterationForLoop",
            "the remote caches' repository ids (`<repository_id>-<cache>`) can never fail derived_name_problems, so "
            "leaving them out of derived_names changes no error: their pattern and length are RegistrySettings' "
            "own rule, checked by read_config before prepare runs, for the stack's and each region's registry "
            "(registry/__init__.py `problems`: REPOSITORY_ID_PATTERN, 1-63 of [a-z0-9-], the same rule as "
            "limits.AR_REPOSITORY_ID, refused naming repository_id), a cache listed twice is refused there too, "
            "and within a region (the ids' scope; a region is listed once, stack/config.py) `<repo>-<cache>` "
            "differs from `<repo>` and from every other cache's id; no other Artifact Registry id is derived",
        ),
    ],
    "stack/loadtest.py": [
        Equivalent(
            code,
            "own/ChangeMessage",
            "a plotted line's `label` is shown only by a legend, and plot_levels draws none (each axis is named by its "
            "own coloured y label): with the label text changed the PNG is byte-identical and the SVG identical up to "
            "its random element ids (rendered and compared, session 6); the line's other strings are single words, "
            "which ChangeMessage does not touch",
        )
        for code in (
            'ax.plot(xs, [lv.tokens_per_s for lv in levels], "o-", color="tab:blue", label="output tokens/s")',
            'ax2.plot(xs, [lv.ttft_p95_s for lv in levels], "s--", color="tab:red", label="p95 TTFT")',
        )
    ]
    + [
        Equivalent(
            "last = 0.0",
            "NumberReplacer",
            "`last` is only read in `gaps.append(now - last)`, the branch taken once `ttft` is set, and the chunk that "
            "sets `ttft` also sets `last = now` in the same iteration: the initial value is never read",
        ),
        Equivalent(
            "if len(parts) not in (1, 2) or parts[0] < 1 or (len(parts) == 2 and parts[1] < 0):",
            "ReplaceComparisonOperator_Eq_GtE",
            "the `or` reaches `len(parts) == 2` only when `len(parts) not in (1, 2)` was false, so the length is 1 "
            "or 2 there, and `>= 2` is `== 2` for those",
        ),
        Equivalent(
            "itl_p50_ms=round(percentile(itls := [r.itl_s * 1000 for r in ok if r.itl_s == r.itl_s], 50), 2),",
            "ReplaceComparisonOperator_Eq_LtE",
            "`itl_s` is always a float (`statistics.fmean(gaps)` or `float('nan')` in `stream_chat`, the dataclass "
            "default NaN otherwise), and for IEEE floats `x <= x` is false exactly when `x == x` is: for NaN only, "
            "which is what the filter drops",
        ),
        Equivalent(
            "*,",
            "ReplaceBinaryOperator_Mul_Div",
            "run_level's keyword-only marker `*` → positional-only `/` before `requests`: every call "
            "(stack/loadtest.py main, scripts/engine_report.py, scripts/capacity_report.py, "
            "tests/test_loadtest_driver.py, tests/test_capacity.py) passes `url` and `concurrency` by position and "
            "every other argument by keyword, which both signatures bind to the same parameters; `/` only admits "
            "more call forms, none of them used",
        ),
    ],
    "stack/render.py": [
        Equivalent(
            'agent = str(out.get("service", "")).split(".", 1)[0]  # iap.googleapis.com → the gcp-sa-iap agent',
            "NumberReplacer",
            "only the first part `[0]` is read, and `str.split(sep, n)[0]` is the text before the first separator "
            "for every n ≥ 1 (maxsplit 2 only splits the rest further); the other number mutants of this line "
            "(maxsplit 0, index 1 or -1) change the agent's e-mail and are killed by test_strength_render_s4b.py::"
            "test_a_service_identity_is_rendered_as_its_google_managed_agent",
        ),
        Equivalent(
            'elif typ == "random:index/randomId:RandomId":',
            "Eq_GtE",
            "the mocks give the extra `hex` output only to types that sort at or above "
            "`random:index/randomId:RandomId` (every other branch of the chain names a type below it, so none is "
            "skipped): the stacks register just one such other type, `time:index/sleep:Sleep`, and a mock output "
            "no resource class declares is dropped by the SDK (pulumi/runtime/rpc.py resolve_outputs: a property "
            "with no resolver is skipped); of the installed providers only pulumi_random's "
            "RandomId and RandomBytes (which sorts below it) declare a `hex` output (random_id.py, random_bytes.py)",
        ),
    ],
    "stack/settings_doc.py": [
        Equivalent(
            "if typing.get_origin(annotation) is list:",
            "Is_Eq",
            "`typing.get_origin` returns the origin itself (`list` for `list[X]`; None, a class such as "
            "`types.UnionType`, or a typing special form such as `typing.Union`/`Literal` otherwise), and none of "
            "these overrides `__eq__` (classes and `_SpecialForm` compare by identity), so `==` and `is` agree",
        ),
    ],
    "stack/preflight.py": [
        Equivalent(
            "enable: bool = True,",
            "ReplaceTrueWithFalse",
            "check()'s one caller, main() (`python -m stack preflight`), always passes `enable=not args.no_enable`; "
            "nothing else in the repository calls check() (`grep -rn 'check(vs'`), so the default is never used",
        ),
        Equivalent(
            "if TYPE_CHECKING:",
            "AddNot",
            "the guarded imports (requests, stack.config) import at run time too and nothing depends on their absence",
        ),
        Equivalent(
            "break",
            "ReplaceBreakWithContinue",
            "the retry loop's break skips the rest of the body; continue skips it too, and the loop's remaining "
            "turns do nothing (resp is unchanged): same requests, same answer",
        ),
    ],
    "container/cache/semcache/store.py": [
        Equivalent(
            "stale = [k for k, v in zip(keys, vecs, strict=True) if v is None]",
            "own/DropKeyword",
            "the line before zips the same two lists with strict=True, so unequal lengths have already raised",
        ),
    ],
    "policy/cloudrun_gpu_policy/rules.py": [
        Equivalent(
            "elif accel is not UNKNOWN and accel not in limits.GPU_TYPES:",
            "IsNot_NotEq",
            "UNKNOWN is the only `_Unknown` instance and the class defines no `__eq__`, so `!=` falls back to identity",
        ),
        Equivalent(
            "for unit in sorted(_MEMORY_UNITS, key=len, reverse=True):",
            "own/DropKeyword",
            "without `key=len` the units sort reverse-alphabetically, which still puts each `Xi` before its `X` "
            "(the only suffix pairs), so the longest match is still tried first",
        ),
    ],
    "policy/cloudrun_gpu_policy/offline.py": [
        Equivalent(
            "default=None,",
            "own/DropKeyword",
            "`--production`'s `default=None` is `argparse.BooleanOptionalAction`'s own default (Python 3.11's "
            "signature: `default=None`), so without it an absent flag still reads None and the stack file decides",
        ),
        Equivalent(
            "parent=None,",
            "own/DropKeyword",
            "`PolicyResourceOptions(..., parent: Optional[str] = None)` (pulumi_policy 1.21.0, policy.py:526): the "
            "keyword passes the parameter's own default, so dropping it builds the same options",
        ),
        Equivalent(
            "if level == EnforcementLevel.DISABLED:",
            "ReplaceComparisonOperator_Eq_Is",
            "`EnforcementLevel` is a plain `Enum` (pulumi_policy 1.21.0, policy.py:146) that defines no `__eq__`, "
            "so `==` against a member is object identity, exactly `is`, for any value of `level`",
        ),
    ],
    "provider/analysis.py": [
        Equivalent(
            "self, typ: type, *, is_component_output: bool",
            "ReplaceBinaryOperator_Mul_Div",
            "the bare `*` → `/` only makes `self, typ` positional-only and lets `is_component_output` be passed by "
            "position too: every call passes `typ` by position and `is_component_output` by keyword (ours, and "
            "pulumi 3.272's analyzer.py:319, 358, 359 and 690), so each call binds the same arguments",
        ),
    ],
    "provider/schema.py": [
        Equivalent(
            'if __name__ == "__main__":',
            "ReplaceComparisonOperator_Eq_LtE",
            "the module's `__name__` is '__main__' when run (`python -m provider.schema`) and its import name "
            "otherwise ('provider.schema', or 'schema' with provider/ on sys.path): both start with a lower-case "
            "letter, which sorts after '_' (0x5F), so `<= '__main__'` holds exactly when `== '__main__'` does",
        ),
    ],
    "provider/__main__.py": [
        Equivalent(
            'if __name__ == "__main__":',
            "ReplaceComparisonOperator_Eq_LtE",
            "the entry point's `__name__` is '__main__' when the language host runs the directory and its import "
            "name otherwise ('provider.__main__'; tests run it as 'provider_entry'): those start with a lower-case "
            "letter, which sorts after '_' (0x5F), so `<= '__main__'` holds exactly when `== '__main__'` does",
        ),
    ],
    "container/cache/semcache/embed.py": [
        Equivalent(
            code,
            operator,
            "`_layer_norm` normalises over the last axis of a 2-D `x` only: its three callers are in "
            "`Embedder.embed`, where `x` is always (tokens, width) (the embedding rows of a 1-D id array plus "
            "the position and token-type rows, then each layer's `x + lin(...)` of the same shape), so axis "
            "`+1` or `1` is axis `-1`; the other mutants of these `-1`s (`-2`, `0`, `~1`) pick another axis and "
            "are not covered",
        )
        for code in ("mu = x.mean(-1, keepdims=True)", "var = ((x - mu) ** 2).mean(-1, keepdims=True)")
        for operator in ("ReplaceUnaryOperator_USub_UAdd", "ReplaceUnaryOperator_Delete_USub")
    ],
    "container/cache/semcache/iam.py": [
        Equivalent(
            "self.refresh_at = 0.0",
            "NumberReplacer",
            "the first value of `refresh_at` is never read: `get_credentials_async` checks `not self.token` first, "
            "the token is empty until `_fetch` succeeds, and the same successful `_fetch` sets `refresh_at` "
            "(a failed one empties the token or leaves the last good token with the `refresh_at` set with it)",
        ),
    ],
    "container/cache/semcache/identity.py": [
        Equivalent(
            'claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))',
            "ReplaceUnaryOperator_Delete_USub",
            "`len % 4` pads as `-len % 4` does for lengths ≡ 0 or 2 (mod 4); for ≡ 3 it writes '===' instead of "
            "'=', and Python's non-strict base64 decoding stops at the padding of the completed quantum, so the "
            "bytes are the same; for ≡ 1 the payload is not base64 either way (binascii.Error, a ValueError, "
            "→ no claims)",
        ),
    ],
    "container/cache/semcache/keys.py": [
        Equivalent(
            "if endpoint == CHAT:",
            "ReplaceComparisonOperator_Eq_LtE",
            "`endpoint` is always one of the two `ENDPOINTS` values, 'chat' and 'completions' (the app calls "
            "`key_request` with `ENDPOINTS[path]` only), and 'completions' sorts after 'chat', so `<= CHAT` is true "
            "for 'chat' alone, exactly as `== CHAT` is",
        ),
        Equivalent(
            "prompt = prompt[0]",
            "NumberReplacer",
            "the line runs only under `len(prompt) == 1` (the `if` above), and in a one-item list `prompt[-1]` is "
            "`prompt[0]`; the other number mutant, `prompt[1]`, raises IndexError and is killed by test_cov_cache.py::"
            "test_a_one_string_prompt_list_is_the_same_completion_as_the_string",
        ),
        Equivalent(
            'raise NotCacheable(f"{name} > 1" if name == "n" else f"{name} is not 1")',
            "ReplaceComparisonOperator_Eq_GtE",
            "`name` only takes the loop's two literals, 'n' and 'best_of': 'n' >= 'n' and 'best_of' < 'n' ('b' sorts "
            "before 'n'), so `name >= 'n'` is true for 'n' alone, exactly as `== 'n'` is",
        ),
    ],
    "container/cache/semcache/guard.py": [
        Equivalent(
            '"a an the is are was were be been being am do does did doing have has had having i me my we our you "',
            "own/ChangeMessage",
            "the one change of `_STOP`'s word string adds the word `MUTATED` (upper case) and keeps every listed "
            "word; `_STOP` is only looked up with lower-cased words (`proper_nouns`: `m.group(0).lower()`; "
            "`content_words`: only `not code` tokens, which are `part.lower()`), so no lookup ever equals `MUTATED` "
            "and every prompt's proper nouns and content words are the same",
        ),
        Equivalent(
            '"celsius fahrenheit kelvin centigrade km kilometer kilometers kilometre kilometres mile miles meter '
            'meters "',
            "own/ChangeMessage",
            "the one change of `_NAMED`'s word string adds the word `MUTATED` (upper case) to `_NAMED_SET` and keeps "
            "every listed word; `_NAMED_SET` is only looked up in `markers`, with words `re.findall(r'[a-z]…', low)` "
            "takes from the lower-cased text (and their `[:-1]`), so no lookup ever equals `MUTATED` and every "
            "prompt's markers are the same",
        ),
    ],
    "container/prompt_cache.py": [
        Equivalent(
            'if a.cmd == "build":',
            "ReplaceComparisonOperator_Eq_LtE",
            "`a.cmd` is the subcommand argparse chose: `_SubParsersAction.__call__` stores `values[0]` in `dest` and "
            "refuses (exit 2) any name not in its parser map (Lib/argparse.py, Python 3.11), which holds exactly "
            "'build' and 'restore' (no aliases), and `required=True` rules out None; 'restore' sorts after 'build', "
            "so `<= \"build\"` is true for 'build' alone, as `==` is",
        ),
    ],
    "container/cache/semcache/app.py": [
        Equivalent(
            "if endpoint == CHAT:",
            "ReplaceComparisonOperator_Eq_Is",
            "`endpoint` is always one of the `ENDPOINTS` values themselves (`cached` reads `ENDPOINTS[path]`, and "
            "`keyed.endpoint` is that same object), and `CHAT` is the value the chat path maps to, so `==` and `is` "
            "agree on every endpoint the app passes (they differ only for an equal string built elsewhere)",
        ),
        Equivalent(
            "latency_ms=round((time.perf_counter() - started) * 1000, 2), **fields,",
            "ReplaceBinaryOperator_Sub_Mod",
            "`now % started` is `now - started` whenever started <= now < 2 × started: `started` is an earlier "
            "reading of the same monotonic clock (seconds since boot on Linux), so a request would have to last as "
            "long as the machine had been up before it for the two to differ",
        ),
    ],
    "netcalc.py": [
        Equivalent(
            "need = ceil(need / limits.DIRECT_VPC_IP_BLOCK) * limits.DIRECT_VPC_IP_BLOCK + 4",
            op,
            f"`x + 4` → `x {sym} 4` where x is a multiple of the 16-address block: bit 2 of x is 0, so both give x + 4",
        )
        for op, sym in (("ReplaceBinaryOperator_Add_BitOr", "|"), ("ReplaceBinaryOperator_Add_BitXor", "^"))
    ]
    + [
        Equivalent(
            "net = ipaddress.ip_network(value, strict=True)",
            "own/DropKeyword",
            "`strict=True` is `ipaddress.ip_network`'s default (signature `ip_network(address, strict=True)`, "
            "https://docs.python.org/3/library/ipaddress.html#ipaddress.ip_network), so dropping it passes the same "
            "value; the host-bits refusal it keeps is pinned by test_strength_network_s4.py (10.8.0.1/26)",
        ),
    ],
    "loading.py": [
        Equivalent(
            'if model_path.startswith(mount.rstrip("/") + "/") '
            "and (best is None or len(mount) > len(MOUNT_PATHS[best])):",
            "ReplaceComparisonOperator_Gt_Lt",
            "the longest-mount rule only decides between two mounts one of which lies under the other, and the "
            "shipped MOUNT_PATHS (/models, /mnt/models, /models-mem) has none: a path matches a mount only as "
            "`mount + '/'`, so /models-mem/x is not under /models; the only two mounts a path can match together "
            "are the equal /models-mem of gcs-download and internet, where `<` keeps the first as `>` does "
            "(`>=`/`<=` make internet win and are killed by test_startup.py::test_method_for_model_path)",
        ),
    ],
    "network/settings.py": [
        Equivalent(
            "if (self.existing_network is None) != (self.existing_subnetwork is None):",
            "ReplaceComparisonOperator_NotEq_IsNot",
            "both sides are bools (`x is None`): `is not` and `!=` agree on the True/False singletons",
        ),
        Equivalent(
            "if v & (v - 1):",
            "NumberReplacer",
            "`v & (v - 1)` → `v & (v - 2)`: `v` is a port count the fields bound below (min_ports_per_vm ge=32, "
            "max_ports_per_vm ge=64, checked before `problems()` runs), and for every v ≥ 2 the two are zero together: "
            "a power of two 2^k shares no bit with 2^k - 1 or 2^k - 2; any other v ≥ 2^k + 2 shares its top bit with "
            "both, and v = 2^k + 1 shares bit 0 with v - 2 (checked for every v in 2..2^20); the other replacement, "
            "`v & (v - 0)`, refuses every value and is killed by test_strength_network_s5.py",
        ),
    ],
    "sizing/plan.py": [
        Equivalent(
            "timeout = min(PROBE_TIMEOUT_S, period - 1)",
            "ReplaceBinaryOperator_Sub_FloorDiv",
            "`period` is 10 or 30 (the line above) and PROBE_TIMEOUT_S is 5: min(5, period - 1) and "
            "min(5, period // 1) are both 5 (the `- 1` only matters for a period of 5 or less, which this code never "
            "picks)",
        ),
        Equivalent(
            'assert back["max_num_batched_tokens"] == vfit.batched_tokens',
            "ReplaceComparisonOperator_Eq_IsNot",
            "an invariant assert (R6 by construction): the two are equal ints, and `is not` between two equal "
            "ints above 256 is True too, so the assert still passes; it can only fail if the rendering breaks",
        ),
        Equivalent(
            "fit = room // per_seq if per_seq and room > 0 else (10**6 if room > 0 else 0)",
            "ReplaceComparisonOperator_Gt_NotEq",
            "differs only for room < 0, where the fit becomes negative instead of 0: both are below any "
            "sequence count in the search, and a room ≤ 0 is refused right after with the same error",
        ),
        Equivalent(
            "timeout = min(PROBE_TIMEOUT_S, period - 1)",
            "ReplaceBinaryOperator_Sub_Mul",
            "`period - 1` → `period * 1`: the period is 10 or 30 s and `PROBE_TIMEOUT_S` is 5, so the minimum is 5 "
            "either way (the `- 1` only matters for a period ≤ 5, which this code never picks)",
        ),
        Equivalent(
            'if swa and engine == "vllm" and not hybrid:',
            "ReplaceComparisonOperator_Eq_GtE",
            '`_kv_layers_note`\'s two callers pass the literal "vllm" (`_fit_vllm`) or `kv_engine`, which is '
            '"llama.cpp" or `req.engine`, checked against ENGINES (llama.cpp, ollama, vllm) at the top of `size`; '
            '"llama.cpp" and "ollama" sort before "vllm" (\'l\', \'o\' < \'v\'), so `engine >= "vllm"` holds for '
            '"vllm" alone, as `==` does',
        ),
        Equivalent(
            'if req.engine == "ollama" and not ollama_server:',
            "ReplaceComparisonOperator_Eq_GtE",
            "two lines have this text. The first (Ollama's scheduler check) is in the `else` of `if req.engine == "
            '"vllm"`, so the engine there is llama.cpp or ollama (ENGINES, checked at the top of `size`), and '
            "\"llama.cpp\" >= \"ollama\" is False ('l' < 'o'): `>=` is `==`. The second (each sequence's share of "
            'Ollama\'s caches) is not equivalent ("vllm" >= "ollama"): its `>=` mutant is killed, never judged '
            "here, by test_strength_plan_s6.py::test_a_vllm_plan_charges_no_share_of_ollamas_caches and "
            "test_strength_vllm.py::test_sliding_windows_need_the_hybrid_kv_cache_manager",
        ),
        Equivalent(
            "hybrid: bool = True,",
            "ReplaceTrueWithFalse",
            "the default of `_largest_context` (l.356) and of `_raise_context` (l.498), the two lines with this text. "
            "`_largest_context`'s one caller, `_raise_context`, always passes `hybrid`; `_raise_context`'s vLLM caller "
            'passes it, its other caller (size(), the `else` of `req.engine == "vllm"`) passes engine llama.cpp or '
            'ollama, and `hybrid` only reaches `kv_bytes_per_sequence`, which reads it under `engine == "vllm"` '
            "alone (sizing/engines.py)",
        ),
    ],
    "limits.py": [
        Equivalent(
            code,
            "own/ChangeMessage",
            "a `NameRule`'s `source` is where the rule was read, kept for the reader: no code reads the field "
            "(stack/compose.py's name check reads `what`, `pattern`, `min_len`, `max_len` and `unique_in`; no error, "
            "output or doc is built from `source`), so a changed text changes no check, message or resource",
        )
        for code in sorted(set(keyword_lines("limits.py", "NameRule", "source")))
    ],
    "images.py": [
        Equivalent(
            code,
            operator,
            "an `EngineImage`'s `source` is where its pin was read, kept for the reader: no code reads the field (the "
            "build reads `reference`, `build_args`, `cuda` and `archs`; only `GpuDriver.source` reaches an error), "
            "so dropping or changing it changes no image, build argument, check or message",
        )
        for code in sorted(set(keyword_lines("images.py", "EngineImage", "source")))
        for operator in ("own/DropKeyword", "own/ChangeMessage")
    ]
    + [
        Equivalent(
            '"ggml-org/llama.cpp .devops/cuda.Dockerfile (ARG CUDA_VERSION=12.8.1 upstream; we pass our own '
            'CUDA_VERSION "',
            "own/ChangeMessage",
            "`_LLAMA_SRC` is only the llama.cpp pins' `source`, a field no code reads",
        )
    ],
    "build/__init__.py": [
        Equivalent(
            "digest = last[0].strip()",
            "NumberReplacer",
            "`last` is `stdout.strip().splitlines()[-1:] or ['']` on the line above, a list of exactly one item, so "
            "`last[-1]` is `last[0]`; the other replacement, `last[1]`, raises IndexError for every output and is "
            "killed (seed 101 drew it too)",
        ),
    ],
    "registry/__init__.py": [
        Equivalent(
            'if upstream == "DOCKER_HUB"',
            "ReplaceComparisonOperator_Eq_LtE",
            "`upstream` is a value of REMOTE_UPSTREAMS, 'DOCKER_HUB' or 'https://ghcr.io' (the cache names are a "
            "two-member StrEnum): 'https://ghcr.io' sorts after 'DOCKER_HUB' ('h' > 'D'), so `<=` is true for "
            "'DOCKER_HUB' alone, as `==` is",
        ),
        Equivalent(
            'raise_if(args_types(self, "ModelRegistryArgs.", skip=["settings"]))',
            "own/DropKeyword",
            "the `args_settings` check on the line before raises unless `settings` is then a RegistrySettings "
            "(an instance is kept, a mapping parsed, anything else refused), which is exactly what its annotation "
            "admits, so `args_types` without the skip finds nothing more",
        ),
    ],
    "bucket/__init__.py": [
        Equivalent(
            'self.suffix = random.RandomId(f"{name}-suffix", byte_length=SUFFIX_HEX // 2, opts=child)',
            "ReplaceBinaryOperator_FloorDiv_Div",
            "`SUFFIX_HEX // 2` → `/ 2` gives 4.0 instead of 4: Pulumi sends every number as a protobuf double, "
            "so the provider receives the same byte_length",
        ),
        Equivalent(
            "SUFFIX_HEX = 8",
            "NumberReplacer",
            "`SUFFIX_HEX` is read once, as `byte_length=SUFFIX_HEX // 2`: 9 // 2 is 4 as 8 // 2 is, so the RandomId "
            "and the bucket name are the same (the other replacement, 7, gives 3 bytes and is killed by "
            "test_storage.py::test_bucket_is_private_uniform_and_soft_deleting's byteLength == 4)",
        ),
        Equivalent(
            "if 0 < self.soft_delete_days < 7:",
            "ReplaceComparisonOperator_Lt_NotEq",
            "`0 < d` and `0 != d` differ only for a negative d, and `soft_delete_days` is `Field(ge=0)`: a negative "
            "value raises at field validation, before `problems()` runs (settings.py's `settings` raises the "
            "ValidationError's errors and only then calls `problems_of`)",
        ),
    ],
    "settings.py": [
        Equivalent(
            'args = [a for a in getattr(ann, "__args__", ()) if a is not type(None)]',
            "ReplaceComparisonOperator_IsNot_NotEq",
            "`a is not NoneType` → `a != NoneType`: the union's members are classes (whose `==` is identity) or "
            "typing aliases such as `list[str]` (whose `==` is False against any class), so both keep exactly "
            "the non-None members",
        ),
        Equivalent(
            "if tp is type(None):",
            "ReplaceComparisonOperator_Is_Eq",
            "`tp is NoneType` → `tp == NoneType`: `tp` is a class (whose `==` is identity), a typing alias such as "
            "`list[str]` or `pulumi.Input[str]` (whose `==` is False against any class) or `Any`, so both are true "
            "for NoneType alone",
        ),
        Equivalent(
            "deferred = len(kept) < len([t for t in params if t is not type(None)])",
            "ReplaceComparisonOperator_Lt_IsNot",
            "`kept` is a sublist of the other list, so `<` is `!=`; both lengths count a union's members (a handful), "
            "and CPython keeps one object per int from -5 to 256, so `is not` is `!=` for them",
        ),
    ],
    "sizing/readers.py": [
        Equivalent(
            'n_layers = whole("block_count", 1, MAX_LAYERS, "transformer layers", required=True) or 0',
            "NumberReplacer",
            "the `or 0` fallback (→ `or -1`, `or 1`) is never taken: `_Source.whole` with `required=True` and low 1 "
            "returns an int in 1..4096 or raises (a missing key `has no …`, a non-int or out-of-range value "
            "refused), and such an int is truthy. The bound's own replacements (1 → 0, 1 → 2) are not excused in "
            "practice: test_strength_readers_s5.py::test_block_count_is_refused_below_one_by_its_own_key_and_one_"
            "layer_is_a_model kills both",
        ),
        Equivalent(
            '"expert_intermediate_size": pre + "moe_intermediate_size or intermediate_size",',
            "own/ChangeMessage",
            "an `origin` entry is printed only when ModelSpec refuses that field, and ModelSpec's check of "
            "`expert_intermediate_size` (a whole number 0..MAX_DIM) can never fail for read_hf's value: it is "
            "`moe_intermediate_size` or else `intermediate_size`, each already read by `_Source.whole` as a whole "
            "number 0..MAX_DIM (`_hf_mlp`), so a changed text here is never shown",
        ),
    ],
    "sizing/data/__init__.py": [
        Equivalent(
            "if version is not None and version >= (0, 21, 0):",
            "NumberReplacer",
            "only the patch 0 → -1 survives: `parse_vllm_version` builds the tuple from `\\d+` groups, so no version "
            "lies between (0, 21, -1) and (0, 21, 0) and both bounds split the releases alike; every other "
            "replacement on the line ((0, 21, 1), (0, 22, 0), (0, 20, 0), (1, 21, 0), (-1, 21, 0)) is killed by "
            "test_strength_evidence_s5.py::test_a_rows_version_band_changes_at_0_21_0_and_0_30_0",
        ),
    ],
    "sizing/spec.py": [
        Equivalent(
            "is_global = (i % pattern == 0) if full_first else (i % pattern == pattern - 1)",
            "ReplaceComparisonOperator_Eq_GtE",
            "`i % pattern >= pattern - 1` ⇔ `== pattern - 1`: `i % pattern` is at most `pattern - 1` (pattern ≥ 2 "
            "here, smaller patterns return earlier), so the larger values `>=` would add never occur",
        ),
    ],
    "capacity.py": [
        Equivalent(
            'if name == "max_instances" and value is None:',
            "ReplaceComparisonOperator_Eq_LtE",
            "`name` only takes the loop's three literals: 'quota' and 'min_instances' sort after 'max_instances' "
            "('q' > 'm', 'mi' > 'ma'), so `name <= 'max_instances'` is true for 'max_instances' alone, as `==` is",
        ),
        Equivalent(
            "default=0,",
            "NumberReplacer",
            "the `default` of `max(…)` over the target's metrics is never used: `Target` refuses a target with no "
            "metric (`names no load to serve`), so `wanted` always has one or two items",
        ),
    ],
    "frontdoor/__init__.py": [
        Equivalent(
            "assert args.network is not None and args.subnetwork is not None and s.certificate is not None",
            "ReplaceAndWithOr",
            "an invariant assert (for mypy): `FrontDoorArgs` and `FrontDoorSettings` refuse the internal scheme "
            "without a network, a subnetwork or a certificate, so all three hold whenever `_internal` runs and "
            "`a and b or c` is true exactly as `a and b and c` is",
        ),
        Equivalent(
            "if len(self.backends) > 1:",
            "ReplaceComparisonOperator_Gt_NotEq",
            "an empty `backends` is refused just before (`is empty: the front door needs at least one Cloud Run "
            "service`), so `len ≥ 1` here and `!= 1` is `> 1`",
        ),
        Equivalent(
            "ban = armor.action is ArmorAction.BAN",
            "ReplaceComparisonOperator_Is_LtE",
            "`armor` is a validated `ArmorSettings`, whose `action` pydantic stores as an `ArmorAction` member, a "
            "`StrEnum` with two members, 'ban' and 'throttle': `action <= 'ban'` holds for 'ban' alone ('throttle' "
            "sorts after it), exactly when `action is ArmorAction.BAN` does (the same proof as frontdoor/settings.py's "
            "entry)",
        ),
    ],
    "frontdoor/settings.py": [
        Equivalent(
            '+ (", or use action: throttle" if self.action is ArmorAction.BAN else ""),',
            "ReplaceComparisonOperator_Is_LtE",
            "`ArmorAction` is a `StrEnum` with two members, 'ban' and 'throttle': `action <= 'ban'` holds for 'ban' "
            "alone ('throttle' sorts after it), exactly when `action is ArmorAction.BAN` does",
        ),
    ],
    "cache/__init__.py": [
        Equivalent(
            'authorization_mode="IAM_AUTH" if cfg.valkey_auth == ValkeyAuth.IAM else "AUTH_DISABLED",',
            "ReplaceComparisonOperator_Eq_Is",
            "`CacheSettings` is a frozen, validating pydantic settings type whose `valkey_auth` is typed "
            "`ValkeyAuth`: any input ('iam', ValkeyAuth.IAM) is stored as the enum member itself, and an enum has "
            "exactly one object per member, so `is ValkeyAuth.IAM` holds exactly when `== ValkeyAuth.IAM` does",
        ),
        Equivalent(
            'else self.identity.email.apply(lambda e: e.split("@", 1)[1].split(".", 1)[0])',
            "NumberReplacer",
            "a maxsplit 1 → 2 of either split: the e-mail of a service account (`<id>@<project>.iam.gserviceaccount"
            ".com`) has one '@', so `split('@', 2)[1]` is the same domain, and `str.split(sep, n)[0]` is the text "
            "before the first separator for every n ≥ 1; the line's other number mutants (maxsplit 0, an index "
            "moved) change the binding's project or raise, and are killed by test_cache_component.py::"
            "test_valkey_is_iam_authenticated_and_encrypted_by_default (its project: test-project; hand-checked)",
        ),
    ],
    "cache/settings.py": [
        Equivalent(
            'if len(f"{self.service_name}-valkey") > 63 or not re.fullmatch(r"[a-z][-a-z0-9]*", self.service_name):',
            op,
            f"`> 63` → `{sym} 63`: `service_name` already matches the Cloud Run name pattern (at most 42 characters), "
            "so `<name>-valkey` has at most 49 and neither comparison can be true",
        )
        for op, sym in (("ReplaceComparisonOperator_Gt_Eq", "=="), ("ReplaceComparisonOperator_Gt_GtE", ">="))
    ]
    + [
        Equivalent(
            'ConfigError("service_name", self.service_name, "makes an invalid Valkey instance id", "shorten it")',
            "own/ChangeMessage",
            "this refusal is never raised, so its words are never read: `service_name`'s field pattern "
            "(`^SERVICE_NAME_PATTERN$`: a lowercase letter, then at most 41 of `[-a-z0-9]`) is checked by pydantic "
            "before `problems()` runs (settings.py: `settings`' `__init__` and `parse` raise the ValidationError "
            "first; the type is frozen), so `<name>-valkey` has at most 49 characters and the name matches "
            "`[a-z][-a-z0-9]*`: neither half of the condition above can hold (the pattern itself is pinned by "
            "test_strength_cache_settings_s5.py::test_a_service_name_cloud_run_refuses_is_refused_with_the_pattern)",
        )
    ],
    "sizing/engines.py": [
        Equivalent(
            'if engine == "llama.cpp":',
            "ReplaceComparisonOperator_Eq_LtE",
            "`engine <= 'llama.cpp'` differs only for names sorting before 'llama.cpp'; the engines are "
            "llama.cpp, ollama and vllm (both sort after), and size() refuses any other name first",
        ),
        Equivalent(
            "return 2 + 4 + 4 + 8 + 4 + 8",
            "ReplaceBinaryOperator_Add_BitOr",
            "the one-row sort's 30 B a logit: `|` binds looser than `+`, so each of the five replacements ORs two "
            "partial sums without a common bit (2|28, 6|24, 10|20, 18|12, 22|8), each 30; the line is unique",
        ),
        Equivalent(
            "*,",
            "ReplaceBinaryOperator_Mul_Div",
            "_vllm_band_overhead's keyword-only marker `*` -> positional-only `/` (l.772): the function is private and "
            "its one caller (vllm_overhead) passes `band` by position and every other argument by name, which both "
            "signatures bind alike. The text `*,` is on four more lines; their `/` mutants are killed, not excused: "
            "kv_bytes_per_sequence and render_engine_config by test_strength_engines_s6.py::"
            "test_the_kv_and_flag_functions_take_every_argument_by_name, runtime_overhead_bytes by "
            "test_strength_ollama.py::test_runtime_overhead_bytes_takes_its_options_by_keyword_only, and "
            "vllm_overhead's (its first parameter) is a syntax error",
        ),
    ],
}
"""Mutants that cannot change behaviour, per module: left out of the score, listed in the doc."""


@dataclass
class Outcome:
    module: str
    line: int
    operator: str
    occurrence: int
    outcome: str
    """killed, survived, equivalent, incompetent or no-test."""
    diff: str
    reason: str = ""


# The survivor classes issue 12 names, as hand-written mutants: (class, module, original text, mutated
# text, strength-test area). `--classes` applies each to the copy and runs tests/test_strength_<area>.py.
ISSUE_CLASSES: list[tuple[str, str, str, str, str]] = [
    (
        "OLLAMA_GPU_OVERHEAD / instead of *",
        "sizing/engines.py",
        "return int(vram_bytes * (1 - memory_fraction))",
        "return int(vram_bytes / (1 - memory_fraction))",
        "sizing",
    ),
    (
        "Ollama readiness path",
        "sizing/engines.py",
        'readiness_path="/api/version"',
        'readiness_path="/health"',
        "sizing",
    ),
    (
        "Ollama model path = mount path",
        "service/plan.py",
        "        return model.file\n",
        '        return f"{MOUNT_PATHS[loading.method]}/{model.file}"\n',
        "service",
    ),
    (
        "internet hub id ignored",
        "service/plan.py",
        '    if loading.method == "internet" and model.hub_id:\n        return model.hub_id\n',
        "",
        "service",
    ),
    (
        "in-memory volume weights / 1.05",
        "service/plan.py",
        "plan.weights_bytes * IN_MEMORY_HEADROOM",
        "plan.weights_bytes / IN_MEMORY_HEADROOM",
        "service",
    ),
    ("F16 at 0 bits per weight", "sizing/quant.py", 'WeightQuant("F16", 16.0', 'WeightQuant("F16", 0.0', "sizing"),
    (
        "NAT power-of-two check removed",
        "network/settings.py",
        "            if v & (v - 1):",
        "            if False:",
        "network",
    ),
    (
        "NAT max > min check removed",
        "network/settings.py",
        "if not errors and self.max_ports_per_vm <= self.min_ports_per_vm:",
        "if False:",
        "network",
    ),
    (
        "PSC private-range check removed",
        "netcalc.py",
        "if ip.version != 4 or not any(ip in r for r in ENDPOINT_RANGES):",
        "if ip.version != 4:",
        "network",
    ),
    (
        "private ranges swapped",
        "netcalc.py",
        '"100.64.0.0/10", "240.0.0.0/4"',
        '"240.0.0.0/4", "100.64.0.0/10"',
        "network",
    ),
    (
        "Gemma 2 HF read as full attention",
        "sizing/readers.py",
        'if model_type == "gemma2":',
        'if model_type == "gemma-2":',
        "readers",
    ),
    ("Gemma 2 GGUF default pattern lost", "sizing/readers.py", '"gemma2": 2, ', '"gemma2": 1, ', "readers"),
    ("param estimate: MLP 2x", "sizing/readers.py", "mlp = 3 * hidden * ffn", "mlp = 2 * hidden * ffn", "readers"),
    (
        "param estimate: ffn default",
        "sizing/readers.py",
        'ffn = mlp["intermediate_size"] or 4 * hidden',
        'ffn = mlp["intermediate_size"] or hidden',
        "readers",
    ),
    (
        "labels missing from service",
        "service/__init__.py",
        "            labels=args.labels or None,\n            template=template,",
        "            template=template,",
        "service",
    ),
    (
        "labels missing from revisions",
        "service/__init__.py",
        "            labels=args.labels or None,\n            vpc_access=vpc,",
        "            vpc_access=vpc,",
        "service",
    ),
    (
        "public-invoker warning gone",
        "service/__init__.py",
        "if any(m in PUBLIC_MEMBERS for m in svc.invokers):",
        "if False:",
        "service",
    ),
    ("subnet stack type", "network/__init__.py", 'stack_type="IPV4_ONLY"', 'stack_type="IPV4_IPV6"', "network"),
    (
        "ideal_batch_size ignored (sizing)",
        "sizing/plan.py",
        "batch = parallel if req.ideal_batch_size is None else req.ideal_batch_size",
        "batch = parallel",
        "sizing",
    ),
    (
        "ideal_batch_size ignored (service)",
        "service/plan.py",
        "        ideal_batch_size=engine.ideal_batch_size,\n",
        "",
        "service",
    ),
]


# --- our own operators (issue 23): what Cosmic Ray 8.7 has no operator for -------------------------------------

OWN_OPERATORS = ("DropKeyword", "DropDictKey", "ChangeMessage", "DropReturnedField")
"""``DropKeyword``: one ``name=value`` argument of a call removed (a resource input, a default the callee then
uses). ``DropDictKey``: one ``key: value`` entry of a dict display removed (a label, an env var, an output).
``ChangeMessage``: a string literal of two or more words (an error's problem or fix, a log line, a help text)
changed, docstrings excepted. ``DropReturnedField``: the two drops above inside a ``return`` (a field of what a
function hands back). Each is a text edit of the original source at the node's span; one that no longer parses
is not produced."""
MESSAGE_MUTATION = "MUTATED "


@dataclass
class OwnMutant:
    operator: str
    line: int
    occurrence: int
    source: str
    """The whole mutated module."""
    diff: str


def _offsets(source: str) -> list[int]:
    starts, total = [0], 0
    for line in source.splitlines(keepends=True):
        total += len(line)
        starts.append(total)
    return starts


def _at(source: str, starts: list[int], line: int, col: int) -> int:
    """The string index of an AST position (``col`` counts UTF-8 bytes)."""
    text = source[starts[line - 1] : starts[line]]
    return starts[line - 1] + len(text.encode()[:col].decode())


def _drop(source: str, starts: list[int], first: ast.expr | ast.keyword, last: ast.expr) -> str:
    """``source`` without the text from ``first``'s start to ``last``'s end and the comma after it."""
    begin = _at(source, starts, first.lineno, first.col_offset)
    end = _at(source, starts, last.end_lineno or last.lineno, last.end_col_offset or 0)
    rest = source[end:]
    stripped = rest.lstrip(" \t\n")
    if stripped.startswith(","):
        end += len(rest) - len(stripped) + 1
    return source[:begin] + source[end:]


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings or bare string statements (attribute docs)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            out.add(id(node.value))
    return out


def own_mutants(source: str) -> list[OwnMutant]:
    """Every mutant of :data:`OWN_OPERATORS` in ``source``, in source order per operator."""
    import difflib

    tree = ast.parse(source)
    starts = _offsets(source)
    returned: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Return) and node.value is not None:
            returned.add(id(node.value))
    docs = _docstrings(tree)
    edits: list[tuple[str, int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            op = "DropReturnedField" if id(node) in returned else "DropKeyword"
            for kw in node.keywords:
                if kw.arg is not None:
                    edits.append((op, kw.lineno, _drop(source, starts, kw, kw.value)))
        elif isinstance(node, ast.Dict):
            op = "DropReturnedField" if id(node) in returned else "DropDictKey"
            for key, value in zip(node.keys, node.values, strict=True):
                if key is not None:
                    edits.append((op, key.lineno, _drop(source, starts, key, value)))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docs
            and len(node.value.split()) >= 2
        ):
            begin = _at(source, starts, node.lineno, node.col_offset)
            quote = min((i for i in (source.find("'", begin), source.find('"', begin)) if i >= 0), default=-1)
            if quote < 0 or quote > begin + 3:  # an implicit concatenation's later part, or an f-string piece
                continue
            q = source[quote]
            width = 3 if source.startswith(q * 3, quote) else 1
            at = quote + width
            edits.append(("ChangeMessage", node.lineno, source[:at] + MESSAGE_MUTATION + source[at:]))
    mutants: list[OwnMutant] = []
    seen: dict[str, int] = {}
    for op, line, mutated in edits:
        if mutated == source:
            continue
        try:
            ast.parse(mutated)
        except SyntaxError:
            continue
        diff = "".join(difflib.unified_diff(source.splitlines(keepends=True), mutated.splitlines(keepends=True), n=0))
        mutants.append(OwnMutant(op, line, seen.get(op, 0), mutated, diff))
        seen[op] = seen.get(op, 0) + 1
    return mutants


def run_own_mutant(mutant: OwnMutant, path: Path, command: str, timeout: float) -> str:
    """Write ``mutant`` over ``path`` (in the work copy), run ``command``, restore: killed, survived or timeout."""
    original = path.read_text()
    path.write_text(mutant.source)
    try:
        run = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "killed"  # a mutant that hangs the tests is caught (Cosmic Ray counts a timeout as a kill too)
    finally:
        path.write_text(original)
    return "killed" if run.returncode else "survived"


def copy_tree(work: Path) -> Path:
    """Tracked + untracked (not ignored) files into ``work`` (under ``mutants/``): the mutated copy."""
    if work.exists():
        shutil.rmtree(work)
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        src = ROOT / rel
        if not src.is_file() or rel.startswith("mutants/"):
            continue
        dst = work / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    return work


def test_command(tests: list[str], work: Path) -> str:
    present = [t for t in dict.fromkeys(tests) if (work / t).exists()]
    return f"{sys.executable} -m pytest -x -q -p no:cacheprovider -p no:randomly -m 'not slow' " + " ".join(present)


ANNOTATION_REASON = (
    "changes only a type annotation of a function or variable in a module with `from __future__ import "
    "annotations`: the annotation stays a string that is never evaluated at run time"
)

Span = tuple[tuple[int, int], tuple[int, int]]


def unevaluated_annotations(source: str) -> list[Span]:
    """Spans of annotations Python never evaluates: with postponed evaluation (PEP 563), those of
    function parameters and returns and of variables outside class bodies. Class-body annotations are
    left out: pydantic (``@settings``) and dataclasses read them."""
    tree = ast.parse(source)
    future = any(
        isinstance(n, ast.ImportFrom) and n.module == "__future__" and any(a.name == "annotations" for a in n.names)
        for n in tree.body
    )
    if not future:
        return []
    found: list[ast.expr] = []
    class_fields = {id(n) for c in ast.walk(tree) if isinstance(c, ast.ClassDef) for n in c.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            a = node.args
            params = [*a.posonlyargs, *a.args, *a.kwonlyargs, *(x for x in (a.vararg, a.kwarg) if x)]
            found += [p.annotation for p in params if p.annotation is not None]
            if node.returns is not None:
                found.append(node.returns)
        elif isinstance(node, ast.AnnAssign) and id(node) not in class_fields:
            found.append(node.annotation)
    return [((n.lineno, n.col_offset), (n.end_lineno or n.lineno, n.end_col_offset or 0)) for n in found]


def operator_matches(entry: str, operator: str) -> bool:
    """Whether an :class:`Equivalent` entry's operator names ``operator``: a part of its name cut at ``/`` or ``_``
    on both sides, so ``Gt_Lt`` names ``…_Gt_Lt`` but not ``…_Gt_LtE`` and ``Eq_Is`` not ``…_Eq_IsNot`` (a plain
    substring did, and excused mutants the entry's proof does not cover)."""
    return re.search(rf"(?:^|[/_]){re.escape(entry)}(?:$|_)", operator) is not None


def equivalence(module: str, code: str, operator: str, span: Span, annotations: list[Span]) -> str:
    for eq in EQUIVALENT.get(module, []):
        if eq.code == code.strip() and operator_matches(eq.operator, operator):
            return eq.reason
    if any(lo <= span[0] and span[1] <= hi for lo, hi in annotations):
        return ANNOTATION_REASON
    return ""


def passing_command(command: str, work: Path, path: str) -> tuple[str, list[str], float, dict[int, set[str]]]:
    """``command`` with the tests that already fail unmutated deselected (work in progress elsewhere in
    the tree must not count as kills), the deselected ids, the run time, and :func:`coverage_map`'s map of
    ``path``. One clean run under coverage does both jobs (a failing test's lines are mapped too, and dropped
    with it); only when some test fails is the command run again, to check it passes once they are deselected."""
    start = time.monotonic()
    run, by_line = coverage_map(command, work, path)
    if run.returncode == 0:
        return command, [], time.monotonic() - start, by_line
    failing = [m.group(1) for m in re.finditer(r"^FAILED (\S+)", run.stdout, flags=re.M)]
    command += "".join(f" --deselect {shlex.quote(f)}" for f in failing)
    start = time.monotonic()
    check = subprocess.run(command, shell=True, capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"the tests fail without a mutant:\n{check.stdout[-3000:]}")
    return command, failing, time.monotonic() - start, by_line


def statement_lines(source: str) -> dict[int, int]:
    """Each source line → the first line of the innermost statement holding it: coverage records a statement
    at its first line only, so a mutant on a continuation line is looked up there."""
    first: dict[int, int] = {}
    for node in ast.walk(ast.parse(source)):  # breadth first: inner statements overwrite their parents' lines
        if isinstance(node, ast.stmt):
            for line in range(node.lineno, (node.end_lineno or node.lineno) + 1):
                first[line] = node.lineno
    return first


IMPORT_TIME = ""
"""The coverage context of lines run outside any test (collection, imports, module-level code)."""


def coverage_map(command: str, work: Path, path: str) -> tuple[subprocess.CompletedProcess[str], dict[int, set[str]]]:
    """The run of ``command`` (all of it, failures listed) under coverage, and which tests run each line of
    ``path``: pytest-cov records every line's tests as contexts (``--cov-context=test``; the technique mutmut 3
    uses to pick a mutant's tests). Lines run at import time carry the :data:`IMPORT_TIME` context."""
    import coverage

    rc, data_file = work / ".mutate-coveragerc", work / ".coverage.mutate"
    rc.write_text(f"[run]\ninclude =\n    {work / path}\n")
    data_file.unlink(missing_ok=True)
    measured = (
        command.replace(" -x ", " -rf ")
        + f" --cov --cov-config={shlex.quote(str(rc))} --cov-context=test --cov-report="
    )
    run = subprocess.run(
        measured, shell=True, capture_output=True, text=True, env={**os.environ, "COVERAGE_FILE": str(data_file)}
    )
    data = coverage.CoverageData(basename=str(data_file))
    data.read()
    by_line = data.contexts_by_lineno(str(work / path))
    return run, {line: {c.rsplit("|", 1)[0] for c in contexts} for line, contexts in by_line.items()}


@dataclass
class Selector:
    """Runs a mutant against the tests that execute its lines, and against every test only when those pass.

    A mutant changes behaviour only where its lines run, so a test that never runs them passes against it as it
    does against the original: running only the covering tests gives the same kills, much faster. The verdict
    never rests on the selection alone: a mutant the covering tests do not kill (or any run that ends other
    than "tests failed", exit status 1) is judged by the whole command, and a kill counts only if the same
    covering tests pass unmutated (no order dependence). Lines run at import time, or by no in-process test
    (a subprocess's lines are not measured), use the whole command."""

    work: Path
    full: str
    """The module's whole test command (tests failing unmutated deselected)."""
    by_line: dict[int, set[str]]
    first_line: dict[int, int]
    order: list[str]
    """The module's test files, fastest killers first: the selected tests run in this order."""
    deselected: set[str]
    clean: dict[tuple[str, ...], bool]
    whole: int = 0
    """Mutants judged by the whole command from the start (no covering tests, or import-time lines)."""

    def tests(self, lines: range) -> tuple[str, ...] | None:
        found: set[str] = set()
        for line in lines:
            contexts = self.by_line.get(self.first_line.get(line, line), set())
            if IMPORT_TIME in contexts:
                return None
            found |= contexts
        found -= self.deselected
        if not found:
            return None
        rank = {f: i for i, f in enumerate(self.order)}
        return tuple(sorted(found, key=lambda t: (rank.get(t.split("::", 1)[0], len(rank)), t)))

    def _subset(self, tests: tuple[str, ...]) -> str:
        args = self.work / "mutants-subsets" / f"{abs(hash(tests)):x}.txt"
        args.parent.mkdir(exist_ok=True)
        args.write_text("\n".join(tests) + "\n")
        # pytest reads arguments from a file named after "@" (pytest 8.2+): a long node-id list stays off the
        # shell's command line.
        return f"{sys.executable} -m pytest -x -q -p no:cacheprovider -m 'not slow' @{shlex.quote(str(args))}"

    def command(self, lines: range) -> str:
        """The shell command judging a mutant on ``lines`` (call with the module unmutated: it may run the
        covering tests once to check they pass clean)."""
        tests = self.tests(lines)
        if tests is None:
            self.whole += 1
            return self.full
        subset = self._subset(tests)
        if tests not in self.clean:
            self.clean[tests] = subprocess.run(subset, shell=True, capture_output=True).returncode == 0
        if not self.clean[tests]:
            self.whole += 1
            return self.full
        # Cosmic Ray runs its command without a shell (``shlex.split``; cosmic_ray/testing.py), so the sequence is
        # one ``sh -c`` argument: a bare ``;`` would reach pytest as an argument, fail it, and fake every kill.
        script = f"{subset}; rc=$?; if [ $rc -eq 1 ]; then exit 1; fi; {self.full}"
        return f"sh -c {shlex.quote(script)}"


def diff_lines(diff: str) -> range:
    """The original lines a unified diff (``n=0``) replaces."""
    m = re.search(r"^@@ -(\d+)(?:,(\d+))? ", diff, flags=re.M)
    if m is None:
        return range(0)
    start, count = int(m.group(1)), int(m.group(2) or 1)
    return range(start, start + max(count, 1))


def run_module(module: str, work: Path, sample: int, seed: int) -> list[Outcome]:
    """A sample of ``module``'s mutants, Cosmic Ray's and :func:`own_mutants`' drawn together (one population)."""
    path = source_path(module)
    os.chdir(work)
    command, deselected, elapsed, by_line = passing_command(test_command(MODULES[module], work), work, path)
    for f in deselected:
        print(f"  deselected (fails without a mutant): {f}", flush=True)
    items: list[WorkItem] = list(_all_work_items([Path(path)], {}))
    items.sort(key=lambda w: (w.mutations[0].operator_name, w.mutations[0].occurrence))
    source = (work / path).read_text()
    population: list[WorkItem | OwnMutant] = [*items, *own_mutants(source)]
    if sample and len(population) > sample:
        population = random.Random(f"{seed}:{module}").sample(population, sample)
    timeout = max(30.0, elapsed * 4)
    annotations = unevaluated_annotations(source)
    lines = source.splitlines()
    selector = Selector(work, command, by_line, statement_lines(source), MODULES[module], set(deselected), {})
    outcomes = []
    for n, item in enumerate(population, 1):
        if isinstance(item, OwnMutant):
            judge = selector.command(diff_lines(item.diff))
            verdict = run_own_mutant(item, work / path, judge, timeout if judge == command else 2 * timeout)
            code = lines[item.line - 1] if 0 < item.line <= len(lines) else ""
            reason = (
                equivalence(module, code, f"own/{item.operator}", ((0, 0), (0, 0)), []) if verdict == "survived" else ""
            )
            verdict = "equivalent" if reason else verdict
            outcomes.append(
                Outcome(module, item.line, f"own/{item.operator}", item.occurrence, verdict, item.diff, reason)
            )
            print(f"  [{n}/{len(population)}] {module}:{item.line} own/{item.operator} → {verdict}", flush=True)
            continue
        spec = item.mutations[0]
        line = spec.start_pos[0]
        judge = selector.command(range(line, spec.end_pos[0] + 1))
        result = mutate_and_test(item.mutations, judge, timeout if judge == command else 2 * timeout)
        if result.worker_outcome != WorkerOutcome.NORMAL:
            verdict = str(result.worker_outcome)
        elif result.test_outcome == TestOutcome.KILLED:
            verdict = "killed"
        elif result.test_outcome == TestOutcome.SURVIVED:
            verdict = "survived"
        else:
            verdict = "incompetent"
        span = (tuple(spec.start_pos), tuple(spec.end_pos))
        code = lines[line - 1] if 0 < line <= len(lines) else ""
        reason = equivalence(module, code, spec.operator_name, span, annotations) if verdict == "survived" else ""
        if reason:
            verdict = "equivalent"
        outcomes.append(Outcome(module, line, spec.operator_name, spec.occurrence, verdict, result.diff or "", reason))
        print(f"  [{n}/{len(population)}] {module}:{line} {spec.operator_name} → {verdict}", flush=True)
    print(f"  {len(population) - selector.whole} of {len(population)} mutants run first against their covering tests")
    os.chdir(ROOT)
    return outcomes


def score_line(module: str, outcomes: list[Outcome], population: int, run: str) -> str:
    count = {k: sum(o.outcome == k for o in outcomes) for k in ("killed", "survived", "equivalent")}
    scored = count["killed"] + count["survived"]
    # rounded down: the issue's bar is "at least 90 %", and 26 / 29 (89.7 %) must not print as 90 %
    pct = f"{100 * count['killed'] // scored} %" if scored else "n/a"
    other = len(outcomes) - scored - count["equivalent"]
    return (
        f"| `{module}` | {population} | {len(outcomes)} | {count['killed']} / {scored} | {pct} "
        f"| {count['equivalent']} | {other} | {run} |"
    )


def write_doc(rows: dict[str, str]) -> None:
    """Replace the rows of the modules just run in the table between the markers; keep the others."""
    text = DOC.read_text() if DOC.exists() else f"# Test strength\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text += f"\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    old, tail = rest.split(END, 1)
    kept = {m.group(1): line for line in old.splitlines() if (m := re.match(r"\| `([^`]+)` \|", line))}
    kept.update(rows)
    table = [
        "| module | mutants | run | killed / non-equivalent | score | equivalent | incompetent | sample, seed, date |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
        *(kept[m] for m in sorted(kept, key=lambda m: list(MODULES).index(m) if m in MODULES else 99)),
    ]
    text = head + BEGIN + "\n" + "\n".join(table) + "\n" + END + tail
    scored = [m for m in MODULES if m in kept]
    have_results = all((WORK / f"results-{m.replace('/', '.')}.json").exists() for m in scored)
    # The findings are rebuilt from every scored module's results; a checkout without some of them (another
    # machine's run) keeps the findings as they are rather than dropping those modules' entries.
    if FINDINGS_BEGIN in text and FINDINGS_END in text and have_results:
        before, rest = text.split(FINDINGS_BEGIN, 1)
        after = rest.split(FINDINGS_END, 1)[1]
        text = before + FINDINGS_BEGIN + "\n" + findings(scored) + FINDINGS_END + after
    DOC.write_text(text)


def _change(diff: str) -> str:
    """The mutated line, before → after, from a unified diff."""
    minus = [ln[1:].strip() for ln in diff.splitlines() if ln.startswith("-") and not ln.startswith("---")]
    plus = [ln[1:].strip() for ln in diff.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    return f"`{' '.join(minus)[:110]}` → `{' '.join(plus)[:110]}`"


def findings(modules: list[str]) -> str:
    """Equivalent and surviving mutants of the last run of each module (from ``mutants/results-*.json``)."""
    equivalent, survived = [], []
    annotations: dict[str, list[str]] = {}
    for module in modules:
        results = WORK / f"results-{module.replace('/', '.')}.json"
        if not results.exists():
            continue
        for o in json.loads(results.read_text()):
            operator = o["operator"].removeprefix("core/")
            where = f"- `{module}:{o['line']}` {operator}: {_change(o['diff'])}"
            if o["outcome"] == "equivalent" and o["reason"] == ANNOTATION_REASON:
                annotations.setdefault(f"`{module}:{o['line']}`", []).append(operator.rsplit("_", 1)[-1])
            elif o["outcome"] == "equivalent":
                equivalent.append(f"{where}. *Equivalent:* {o['reason']}")
            elif o["outcome"] == "survived":
                survived.append(where)
    if annotations:
        lines = ", ".join(f"{where} ({len(ops)}: {' '.join(ops)})" for where, ops in annotations.items())
        equivalent.insert(
            0, f"- *Annotation only* ({sum(map(len, annotations.values()))} mutants; {ANNOTATION_REASON}): {lines}"
        )
    return (
        "\n### Equivalent mutants in the samples\n\n"
        + ("\n".join(equivalent) or "None.")
        + "\n\n### Surviving mutants in the samples\n\n"
        + ("\n".join(survived) or "None.")
        + "\n"
    )


def check_classes(work: Path) -> int:
    """Each issue class must be killed by its strength tests; returns the number that are not."""
    os.chdir(work)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    areas = sorted({f"tests/test_strength_{area}.py" for *_, area in ISSUE_CLASSES})
    clean = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *areas], env=env, capture_output=True
    )
    if clean.returncode != 0:
        print(clean.stdout.decode()[-3000:])
        print("the strength tests fail without a mutant: fix them first (a kill would mean nothing)")
        os.chdir(ROOT)
        return len(ISSUE_CLASSES)
    failures = 0
    for name, module, old, new, area in ISSUE_CLASSES:
        path = work / LIB / module
        source = path.read_text()
        if source.count(old) != 1:
            print(f"STALE    {name}: the original text is no longer in {module} once; update ISSUE_CLASSES")
            failures += 1
            continue
        path.write_text(source.replace(old, new))
        try:
            command = [
                sys.executable,
                "-m",
                "pytest",
                "-x",
                "-q",
                "-p",
                "no:cacheprovider",
                f"tests/test_strength_{area}.py",
            ]
            run = subprocess.run(command, capture_output=True, text=True, env=env)
        finally:
            path.write_text(source)
        first = next((line for line in run.stdout.splitlines() if line.startswith("FAILED")), "")
        print(("KILLED   " if run.returncode else "SURVIVED ") + f"{name}: {first.removeprefix('FAILED ')[:110]}")
        failures += run.returncode == 0
    os.chdir(ROOT)
    return failures


def rescore(modules: list[str]) -> int:
    """Re-judge the last run's survivors of ``modules`` against :data:`EQUIVALENT` (after an entry was added)
    and rewrite their rows: no test runs, and ``mutants/work/`` is left alone (a sampling run may be using it)."""
    text = DOC.read_text()
    rows: dict[str, str] = {}
    for module in modules:
        results = WORK / f"results-{module.replace('/', '.')}.json"
        row = re.search(rf"^\| `{re.escape(module)}` \| (\d+) \|.*\| ([^|]+) \|$", text, flags=re.M)
        if not results.exists() or row is None:
            print(f"{module}: no earlier run to rescore")
            continue
        outcomes = [Outcome(**o) for o in json.loads(results.read_text())]
        for o in outcomes:
            minus = [ln[1:] for ln in o.diff.splitlines() if ln.startswith("-") and not ln.startswith("---")]
            if o.outcome == "survived" and minus:
                o.reason = equivalence(module, minus[0], o.operator, ((0, 0), (0, 0)), [])
                o.outcome = "equivalent" if o.reason else "survived"
        results.write_text(json.dumps([o.__dict__ for o in outcomes], indent=1))
        rows[module] = score_line(module, outcomes, int(row.group(1)), row.group(2).strip())
        print(rows[module])
    write_doc(rows)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "modules",
        nargs="*",
        help="modules under components/cloudrun_gpu, or shipped files by their path (stack/cli.py, policy/…, "
        "container/…; default: every one listed)",
    )
    parser.add_argument("--sample", type=int, default=25, help="mutants per module, drawn at random (0: all)")
    parser.add_argument("--seed", type=int, default=12, help="seed of the sample (same seed, same mutants)")
    parser.add_argument("--survivors", action="store_true", help="print each survivor's diff")
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite docs/test-strength.md")
    parser.add_argument("--classes", action="store_true", help="only check the issue's named survivor classes")
    parser.add_argument(
        "--rescore", action="store_true", help="re-judge the last run's survivors against EQUIVALENT (no test runs)"
    )
    args = parser.parse_args(argv)
    missing = unlisted_modules()
    if missing:
        parser.error(f"library module(s) {missing} are in neither MODULES nor NOT_MUTATED: add each with its tests")
    wanted = [m if m.endswith(".py") else f"{m}.py" for m in args.modules] or list(MODULES)
    unknown = [m for m in wanted if m not in MODULES]
    if unknown:
        parser.error(f"unknown module(s) {unknown}; known: {list(MODULES)}")
    if args.rescore:
        return rescore(wanted)
    work = WORK / ("classes" if args.classes else "work")  # a class check may run beside a sampling run
    os.environ["PYTHONPATH"] = os.pathsep.join([str(work / "components"), str(work)])
    copy_tree(work)
    if args.classes:
        return 1 if check_classes(work) else 0
    rows: dict[str, str] = {}
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    run = f"{args.sample or 'all'}, {args.seed}, {today}"
    for module in wanted:
        print(f"{module}:", flush=True)
        population = len(list(_all_work_items([ROOT / source_path(module)], {}))) + len(
            own_mutants((ROOT / source_path(module)).read_text())
        )
        try:
            outcomes = run_module(module, work, args.sample, args.seed)
        except RuntimeError as exc:
            os.chdir(ROOT)
            print(f"  skipped: {exc}", flush=True)
            continue
        (WORK / f"results-{module.replace('/', '.')}.json").write_text(
            json.dumps([o.__dict__ for o in outcomes], indent=1)
        )
        rows[module] = score_line(module, outcomes, population, run)
        print(rows[module], flush=True)
        if args.survivors:
            for o in outcomes:
                if o.outcome == "survived":
                    print(o.diff)
        if not args.no_doc:  # after each module: a long run stopped halfway keeps what it finished
            write_doc({module: rows[module]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
