"""Certificates published on-chain, found by sha256, by the owner or the facility's attestor."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eth_account.signers.local import LocalAccount

from redundancy.devicecert import make_ca, to_der
from redundancy.errors import ContractRevertError
from redundancy.registry import RegistryClient
from tests.integration.conftest import Site


def test_attestor_publishes_certificate_and_verifier_finds_it(
    registry: RegistryClient, site: Site
) -> None:
    der = to_der(make_ca("fra1", Ed25519PrivateKey.generate()))
    digest = hashlib.sha256(der).digest()
    receipt = registry.publish_certificate(site.facility_id, der, sender=site.account)
    assert registry.events_in(receipt, "CertificatePublished") == [
        {"facilityId": site.facility_id, "sha256Hash": digest, "certificate": der}
    ]
    assert registry.find_certificate(digest) == (site.facility_id, der)
    assert registry.find_certificate(hashlib.sha256(b"other").digest()) is None


def test_outsider_cannot_publish_and_empty_is_refused(
    registry: RegistryClient, site: Site, owner: LocalAccount, outsider: LocalAccount
) -> None:
    with pytest.raises(ContractRevertError) as caught:
        registry.publish_certificate(site.facility_id, b"\x30\x00", sender=outsider)
    assert (caught.value.error_name, caught.value.args_by_name) == (
        "RegistryNotOwnerOrAttestor",
        {"caller": outsider.address.lower(), "facilityId": site.facility_id},
    )
    with pytest.raises(ContractRevertError) as empty:
        registry.publish_certificate(site.facility_id, b"", sender=owner)
    assert empty.value.error_name == "RegistryEmptyCertificate"
