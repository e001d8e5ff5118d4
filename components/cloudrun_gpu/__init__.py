"""Pulumi components and the sizing engine for serving LLMs on Cloud Run GPUs.

Importing this package is cheap: components that pull in ``pulumi_gcp`` are imported from their own modules
(``cloudrun_gpu.network``, ``cloudrun_gpu.service`` …) only when used. The map (a test checks every name exists):

- components: ``cloudrun_gpu.service`` (GpuInferenceService), ``cloudrun_gpu.network``, ``cloudrun_gpu.registry``,
  ``cloudrun_gpu.bucket``, ``cloudrun_gpu.identity``, ``cloudrun_gpu.apis``, ``cloudrun_gpu.frontdoor``,
  ``cloudrun_gpu.cache``, ``cloudrun_gpu.build`` (and ``cloudrun_gpu.build.image``: the serving image's config);
- engines: ``cloudrun_gpu.engines`` (one profile per engine, ``cloudrun_gpu.engines.base``: the type and registry);
- sizing: ``cloudrun_gpu.sizing`` (pure Python: ``cloudrun_gpu.sizing.plan``, ``cloudrun_gpu.sizing.engines``);
- facts and shared rules: ``cloudrun_gpu.limits``, ``cloudrun_gpu.images``, ``cloudrun_gpu.loading``,
  ``cloudrun_gpu.quota``, ``cloudrun_gpu.capacity``, ``cloudrun_gpu.pricing``, ``cloudrun_gpu.netcalc``,
  ``cloudrun_gpu.errors``, ``cloudrun_gpu.settings``.
"""
