"""Issue 23, session 6 on ``stack/compose.py`` (seed 181's open survivors, helper compose2).

The survivors on the ``k == MODEL_BUCKET`` filters of the staging and image-build substitutions (compose.py:354,
:372) showed a real bug: ``model.object_prefix`` reached both Cloud Build configs unescaped, so a ``$_NAME`` in it
was a user substitution the build was never given. Cloud Build then used the config's default (``set-me``): the
model was staged to ``models/set-me``, the marker written where the stack never looks, and the image baked from
there. Fixed in ``cloudrun_gpu.build.image.literal`` (used by ``stack/cloudbuild.py``); the test runs the real
program under the project's recording mocks and plays Cloud Build's substitution on what the commands receive.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from tests.test_build import deploy, flat_config

# Cloud Build's rule (https://cloud.google.com/build/docs/configuring-builds/substitute-variable-values): `$$` is a
# literal `$`; `$_NAME` / `${_NAME}` take the build's value, else the config's `substitutions` default.
_SUBST = re.compile(r"\$\$|\$\{(_[A-Z0-9_]+)\}|\$(_[A-Z0-9_]+)")


def _cloud_build(text: str, values: dict[str, str]) -> str:
    return _SUBST.sub(lambda m: "$" if m.group(0) == "$$" else values[m.group(1) or m.group(2)], text)


def _as_run(env: dict[str, Any]) -> list[list[str]]:
    """Each step's args as Cloud Build runs them: the config's defaults overridden by the ``--substitutions`` the
    build command passes (``CB<name>`` in its environment, ``cloudrun_gpu.build.submit_script``)."""
    config = json.loads(env["CLOUDBUILD_CONFIG"])
    given = {k.removeprefix("CB"): v for k, v in env.items() if k.startswith("CB_")}
    values = {**config.get("substitutions", {}), **given}
    return [[_cloud_build(a, values) for a in step["args"]] for step in config["steps"]]


def test_a_dollar_in_the_bucket_folder_is_where_the_model_is_staged_marked_and_baked_from() -> None:
    """``model.object_prefix: models/$_X`` (a `$` and a space are allowed in a Cloud Storage folder): the staging
    build uploads to ``gs://<bucket>/models/$_X``, writes its marker to exactly the object the stack checks
    (``MARKER``, so an unchanged staging is skipped), and the image build reads the model from that folder; each
    build is given exactly ``_MODEL_BUCKET``, the only substitution its config uses."""
    prefix = "models/$_X b"
    rs = deploy("dev", flat_config("dev", model={"object_prefix": prefix}))
    submits = {r.name: r.inputs["environment"] for r in rs if r.name.endswith("-submit")}
    staging, image = submits["llm-dev-model-submit"], submits["llm-dev-image-submit"]
    bucket = staging["CB_MODEL_BUCKET"]
    for env in (staging, image):
        assert json.loads(env["CLOUDBUILD_CONFIG"])["substitutions"] == {"_MODEL_BUCKET": "set-me"}
        assert sorted(k for k in env if k.startswith("CB_")) == ["CB_MODEL_BUCKET"]
    steps = _as_run(staging)
    assert steps[-2][-1] == f"gs://{bucket}/{prefix}"  # the upload's destination
    assert shlex.split(steps[-1][-1])[-1] == staging["MARKER"] == f"gs://{bucket}/.cloudrun-gpu/staged/{prefix}"
    (stage_model, *_) = _as_run(image)
    assert stage_model[:4] == ["storage", "rsync", "--recursive", f"gs://{bucket}/{prefix}"]


def test_a_dollar_in_a_baked_model_directorys_name_is_the_folder_the_image_build_fills() -> None:
    """vLLM's image method bakes the model directory as ``container/model/<model.file>/`` (the engine's ``--model``
    path): a ``$_Y`` in ``model.file`` is that folder's literal name, not a substitution the build is not given.
    Written after seed 191 (it does not count for that row)."""
    rs = deploy("prod", flat_config("prod", model={"file": "gemma$_Y"}, loading={"method": "image"}))
    (image,) = [r.inputs["environment"] for r in rs if r.name == "llm-image-submit"]
    assert json.loads(image["CLOUDBUILD_CONFIG"])["substitutions"] == {"_MODEL_BUCKET": "set-me"}
    stage_model = _as_run(image)[0]
    assert stage_model[-1] == "container/model/gemma$_Y/"
