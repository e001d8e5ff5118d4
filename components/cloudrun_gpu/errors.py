"""The one error type users see: it names the field, the value, what is allowed and the fix."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration that cannot work, explained so that a user can fix it without a traceback."""

    def __init__(self, field: str, value: Any, problem: str, fix: str, allowed: str = "") -> None:
        self.field = field
        self.value = value.value if isinstance(value, enum.Enum) else value  # as the user wrote it
        self.problem = problem
        self.fix = fix
        self.allowed = allowed
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"{self.field} = {self.value!r}: {self.problem}"]
        if self.allowed:
            lines.append(f"  allowed: {self.allowed}")
        lines.append(f"  fix: {self.fix}")
        return "\n".join(lines)


class ConfigErrors(ValueError):
    """Several field errors reported together, so one run shows every mistake."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        super().__init__(self.render())

    def render(self) -> str:
        head = f"{len(self.errors)} configuration error(s):"
        return "\n".join([head, *(f"- {e.render()}" for e in self.errors)])


def collect(errors: list[ConfigError], check: Callable[[], T]) -> T | None:
    """Run ``check``; record its ConfigError(s) in ``errors`` instead of raising, so one run reports
    every mistake. Returns the check's result, or None when it failed."""
    try:
        return check()
    except ConfigErrors as e:
        errors.extend(e.errors)
    except ConfigError as e:
        errors.append(e)
    return None
