"""Issue 23, session 4 on ``stack/render.py``: what the seed-71 mutation sample showed no listed test read."""

from __future__ import annotations

from pathlib import Path

from stack.render import render_program

GUARDED_PROGRAM = """\
import pulumi
import pulumi_gcp as gcp

if __name__ == "__main__":
    gcp.storage.Bucket("guarded", location="EU")
"""


def test_a_program_runs_as_the_main_module_as_pulumis_python_host_runs_it(tmp_path: Path) -> None:
    """Pulumi's Python language host runs the program as the ``__main__`` module
    (``runpy.run_path(args.PROGRAM, run_name='__main__')``, pulumi/pulumi sdk/python/cmd/pulumi-language-python-exec),
    so a program whose resources sit under ``if __name__ == "__main__":`` deploys them. ``plan`` (render_program)
    must run it the same way, or it shows such a program (a consumer's, e.g. one that also defines helpers other
    modules import) as registering nothing."""
    program = tmp_path / "__main__.py"
    program.write_text(GUARDED_PROGRAM)
    resources = render_program(program, "dev", {"gcp:project": "my-project-123"})
    assert [(r.type, r.name, r.inputs.get("location")) for r in resources] == [
        ("gcp:storage/bucket:Bucket", "guarded", "EU")
    ]
