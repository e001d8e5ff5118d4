"""The team's own components package: the name clash the library's ``cloudrun_gpu`` import name avoids.

A stack that already has a ``components`` package (a common Pulumi layout) installs the library and
imports it as ``cloudrun_gpu``; both live side by side.
"""

TEAM = "search-ranking"


def team_labels(environment: str) -> dict[str, str]:
    """Labels every team resource carries (cost reports group by them)."""
    return {"team": TEAM, "environment": environment, "app": "llm-inference"}
