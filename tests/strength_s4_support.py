"""Shared by the session-4 component strength tests (``tests/test_strength_*_s4.py``): render one component under
the mocks and read what it passed to ``register_outputs``, resolved.

A component's registered outputs are what ``pulumi stack output`` and every consumer of the component see; the mocks'
RegisterResourceOutputs drops them, so they are recorded with ``test_strength_outputs``'s patch (one place).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pulumi

from stack.render import RecordingMonitor

from .conftest import Rendered, render
from .test_strength_outputs import _recording_outputs


def render_with_outputs(build: Callable[[], Any]) -> tuple[Rendered, dict[str, dict[str, Any]]]:
    """Render ``build``; return the resources and each component's registered outputs (resolved), keyed by the
    component's name."""
    captured: list[tuple[str, str, Any]] = []

    def program() -> Any:
        value = build()
        comps = {n: pulumi.Output.from_input(o) for t, n, o in captured if t.startswith("cloudrun-gpu:")}
        return {"value": value, "components": comps}

    with _recording_outputs(captured):
        r = render(program)
    components = r.value["components"]
    r.value = r.value["value"]
    return r, components


@contextmanager
def recording_aliases(into: dict[str, list[str]]) -> Iterator[None]:
    """Record each resource's aliases as the SDK sends them to the engine (``RegisterResourceRequest.aliases``, an
    alias spec's name, or ``aliasURNs``): an alias is how a renamed resource is adopted instead of replaced, and the
    mocks' ``new_resource`` never sees it."""
    original = RecordingMonitor.RegisterResource

    def record(self: RecordingMonitor, request: Any) -> Any:
        names = [a.spec.name if a.HasField("spec") else a.urn for a in request.aliases]
        into[request.name] = names + list(request.aliasURNs)
        return original(self, request)

    RecordingMonitor.RegisterResource = record  # type: ignore[method-assign]
    try:
        yield
    finally:
        RecordingMonitor.RegisterResource = original  # type: ignore[method-assign]
