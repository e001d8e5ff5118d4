"""``make golden`` re-records on purpose only (#23): stacks and a reason required, every difference named."""

from __future__ import annotations

import pytest

from .conftest import load_script

golden = load_script("golden")


def test_it_refuses_without_stacks(capsys: pytest.CaptureFixture[str]) -> None:
    assert golden.main(["--why", "because"]) == 2
    assert "name the stacks to re-record" in capsys.readouterr().err


def test_it_refuses_without_a_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert golden.main(["--stacks", "dev"]) == 2
    assert "say why the plans change" in capsys.readouterr().err


def test_it_refuses_an_unknown_stack(capsys: pytest.CaptureFixture[str]) -> None:
    assert golden.main(["--stacks", "dev,nope", "--why", "x"]) == 2
    assert "no committed stack nope" in capsys.readouterr().err


def test_check_on_a_committed_stack_finds_no_difference(capsys: pytest.CaptureFixture[str]) -> None:
    """The committed golden is what the code renders now (the same oracle as tests/test_golden.py)."""
    assert golden.main(["--stacks", "dev", "--check"]) == 0
    assert capsys.readouterr().out.startswith("dev: 0 difference(s)")


def test_differences_name_each_resource_and_input_path() -> None:
    old = {
        "sizing": {"max_parallel_sequences": 16, "engine_args": ["--a"]},
        "resources": [
            {"type": "t:a", "name": "svc", "inputs": {"x": 1, "gone": True}, "dependencies": []},
            {"type": "t:b", "name": "old", "inputs": {}, "dependencies": []},
        ],
    }
    new = {
        "sizing": {"max_parallel_sequences": 14, "engine_args": ["--a", "--b"]},
        "cost": {"idle_per_hour": 0},
        "resources": [
            {"type": "t:a", "name": "svc", "inputs": {"x": 2}, "dependencies": ["net"]},
            {"type": "t:c", "name": "new", "inputs": {}, "dependencies": []},
        ],
    }
    assert golden.differences(old, new) == [
        'cost: added {"idle_per_hour": 0}',
        'sizing.engine_args: added "--b"',
        "sizing.max_parallel_sequences: 16 → 14",
        'resource svc: dependencies: added "net"',
        "resource svc: inputs.gone: removed (was true)",
        "resource svc: inputs.x: 1 → 2",
        "resource old (t:b): removed",
        "resource new (t:c): added",
    ]


def test_long_values_are_cut_not_hidden() -> None:
    [line] = golden.differences({"a": "x" * 500}, {"a": "y" * 500})
    assert line.startswith('a: "xxx') and "…" in line and len(line) < 2 * golden.SHOWN + 10
