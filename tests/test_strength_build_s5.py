"""Session-5 mutation-strength tests for ``cloudrun_gpu/build/__init__.py`` (seed 101's survivors): the build
identity's resources are its children (under Pulumi mocks)."""

from __future__ import annotations

from typing import Any

from cloudrun_gpu import build as B

from .test_strength_build import render_with_stdout


def test_every_resource_of_the_build_identity_is_its_child() -> None:
    """build/__init__.py:203 and :253 (seed 101, `parent=self` of the identity's child options and a read
    binding's `opts=child` dropped survived): the account, every grant and the IAM pause belong to the component
    (a stack's `pulumi destroy` of it, or an alias of it, takes them with it)."""

    def build() -> Any:
        return B.BuildIdentity(
            "bi",
            B.BuildIdentityArgs(
                account_id="llm-build",
                project="p",
                location="europe-west4",
                repository="repo",
                pull_repositories={"hub": "hub-cache"},
                bucket="models",
                write_bucket=True,
                read_buckets={"src": "src-bucket"},
                secrets={"hf": "hf-token"},
            ),
        ).email

    r = render_with_stdout(build, None)
    children = [x for x in r.resources if x.custom]
    assert sorted(x.name for x in children) == [
        "bi-bucket",
        "bi-iam-propagation",
        "bi-logs",
        "bi-pull-hub",
        "bi-push",
        "bi-read-src",
        "bi-sa",
        "bi-secret-hf",
    ]
    for x in children:
        assert x.registration is not None and x.registration.parent.endswith(f"{B.IDENTITY_TOKEN}::bi"), x.name
