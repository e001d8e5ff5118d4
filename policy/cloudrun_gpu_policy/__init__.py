"""Policies for Cloud Run GPU stacks, as plain ``pulumi_policy`` objects.

Importing this package (or ``.rules`` / ``.offline``) never starts the analyzer's gRPC server:
only ``policy/__main__.py`` builds the ``PolicyPack``, because constructing one serves and blocks.
"""
