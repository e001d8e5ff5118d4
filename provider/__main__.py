"""The plugin's entry point: the Pulumi CLI's Python language host runs this directory (``python provider/
<engine address> …``) for ``pulumi package add``/``get-schema`` and whenever a stack constructs a component.

It serves :data:`provider.components.COMPONENTS` through the SDK's component provider host, which infers the
schema from their type annotations and docstrings (``python -m provider.schema`` prints it offline).
"""

import sys
from pathlib import Path

if not __package__:
    # Run as a directory by the language host, so only provider/ is on sys.path: add the repository
    # root so the `provider` package (and a source checkout's other modules) import by their names.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi.provider import main as serve

from provider.analysis import CloudRunGpuProvider
from provider.components import COMPONENTS, NAME, NAMESPACE, VERSION


def main() -> None:
    """What ``component_provider_host`` does, with the defaults-aware analysis (provider/analysis.py)."""
    serve(CloudRunGpuProvider(COMPONENTS, NAME, NAMESPACE, VERSION), sys.argv[1:])


if __name__ == "__main__":
    main()
