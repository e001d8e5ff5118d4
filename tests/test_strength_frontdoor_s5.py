"""Session-5 mutation-strength tests for the front door (seed 101's survivors): the whole fix a user reads for each
refused combination, and which domain a duplicate-domain error names."""

from __future__ import annotations

import pytest
from cloudrun_gpu.errors import ConfigErrors
from cloudrun_gpu.frontdoor.settings import FrontDoorSettings, IapSettings

CID = "1234-abc.apps.googleusercontent.com"
REF = "projects/p/secrets/iap-client"


def test_no_certificate_source_names_both_ways_to_get_one() -> None:
    """frontdoor/settings.py:267 (seed 101, ChangeMessage survived): the fix of an external front door with
    neither domains nor a certificate is read in full, not only its field."""
    with pytest.raises(ConfigErrors) as err:
        FrontDoorSettings()
    (e,) = err.value.errors
    assert e.fix == (
        "set FrontDoorSettings.domains to the DNS names clients use, e.g. [llm.example.com], or set certificate"
    )


def test_cdn_with_iap_says_to_turn_cdn_off() -> None:
    """frontdoor/settings.py:280 (seed 101, ChangeMessage survived): Cloud CDN with IAP is refused with the fix
    that turns CDN off, and why that costs nothing."""
    iap = IapSettings(enabled=True, oauth2_client_id=CID, oauth2_client_secret_secret=REF)
    with pytest.raises(ConfigErrors) as err:
        FrontDoorSettings(domains=["a.example.com"], iap=iap, enable_cdn=True)
    (e,) = err.value.errors
    assert (e.field, e.value, e.problem) == ("FrontDoorSettings.enable_cdn", True, "IAP is incompatible with Cloud CDN")
    assert e.fix == "set FrontDoorSettings.enable_cdn to false (LLM responses are per request anyway)"


def test_a_duplicate_domain_is_named_even_when_it_is_not_the_first() -> None:
    """frontdoor/settings.py:234 (seed 101, `count(d) > 1` → `> 0` survived): the error names the domain that is
    listed twice, not whichever domain comes first."""
    with pytest.raises(ConfigErrors) as err:
        FrontDoorSettings(domains=["a.example.com", "b.example.com", "c.example.com", "b.example.com"])
    (e,) = err.value.errors
    assert (e.field, e.problem, e.fix) == (
        "FrontDoorSettings.domains",
        "lists b.example.com twice",
        "keep one b.example.com",
    )
