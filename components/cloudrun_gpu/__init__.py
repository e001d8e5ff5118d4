"""Pulumi components and the sizing engine for serving LLMs on Cloud Run GPUs.

Importing this package is cheap: components that pull in ``pulumi_gcp`` are imported from
their own modules (``components.network``, ``components.service`` …) only when used.
"""
