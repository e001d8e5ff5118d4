"""The ``cloudrun-gpu`` component package for other Pulumi languages (a source-based component plugin).

``PulumiPlugin.yaml`` + ``__main__.py`` here are what the Pulumi CLI runs after ``pulumi package add``;
``python -m provider.schema`` prints the package schema the SDK infers from the components, offline.
See README.md.
"""
