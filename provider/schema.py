"""Print the package schema the Pulumi SDK infers for the served components, offline (no CLI, no cloud).

    python -m provider.schema > schema.json

The schema is built exactly as our provider builds it (the SDK's ``Analyzer``, taught defaults, and
``generate_schema`` over :data:`provider.components.COMPONENTS`), so it is what ``pulumi package
get-schema provider`` returns and what ``pulumi package add`` generates SDKs from.
"""

import json
import sys
from typing import Any

from pulumi.provider.experimental.schema import generate_schema

from provider.analysis import DefaultsAwareAnalyzer
from provider.components import COMPONENTS, NAME, NAMESPACE, VERSION


def build_schema() -> dict[str, Any]:
    """The package schema as JSON-ready data (what the host serves from ``GetSchema``)."""
    result = DefaultsAwareAnalyzer(NAME).analyze(COMPONENTS)
    dependencies = sorted(result["dependencies"], key=lambda d: f"{d.name}{d.version}")
    spec = generate_schema(
        NAME,
        VERSION,
        NAMESPACE,
        result["component_definitions"],
        result["type_definitions"],
        dependencies,
    )
    return spec.to_json()


def main() -> None:
    json.dump(build_schema(), sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
