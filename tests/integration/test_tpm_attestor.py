"""End to end on real software TPMs: two attestor processes with the ``tpm`` identity backend
publish TPM-quoted proofs that land on a real anvil and pass every check of the independent
verifier (the verify command too); their hardware proofs share one domain because their TPMs
measured the same firmware image, though their configurations name different firmware; the
``file`` backend keeps working beside them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from eth_account import Account

from devnet.attestors import fund
from devnet.swtpm import ProvisionedTpm
from redundancy.attestation_verifier import Verifier
from redundancy.cli.verify_attestation import main as verify_main
from redundancy.deployment import Deployment
from redundancy.devicecert import fingerprint
from redundancy.domains import Kind, facility_id
from redundancy.errors import ContractRevertError
from redundancy.tpmquote import tpm_hardware_domain
from tests.attestor_sites import (
    AttestorProcess,
    Deployed,
    Site,
    landed_proofs,
    make_site,
    register,
    wait_until,
)

NODES = {  # one validator node per site (a node belongs to one facility)
    "fra1": "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955",
    "ams1": "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f",
    "par1": "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720",
    "lon1": "0xBcd4042DE499D14e55001CcbB24a551F3b954096",
}


def tpm_site(
    root: Path, name: str, deployed: Deployed, tpm: ProvisionedTpm | None, firmware: str
) -> Site:
    tweaks = {"hardware": "interval = 3\nlifetime = 600"}
    if tpm is not None:
        tweaks["identity"] = f'backend = "tpm"\ntcti = "{tpm.tpm.tcti}"'
    site = make_site(root, name, deployed, tweaks=tweaks)
    if tpm is not None:
        tpm.write(site.root / "keys")
    with site.config.open("a") as fh:
        fh.write(
            f'\n[[hardware.nodes]]\naddress = "{NODES[name]}"\nvendor = "dell"\nmodel = "r650"\n'
            f'firmware = "{firmware}"\n'
        )
    return site


def test_tpm_backed_attestors_publish_proofs_that_verify_and_share_a_firmware_domain(
    deployed: Deployed,
    soft_tpms: dict[str, ProvisionedTpm],
    tpm_manufacturer: object,
    tmp_path: Path,
) -> None:
    fra1 = tpm_site(tmp_path, "fra1", deployed, soft_tpms["fra1"], "2.19.1")
    ams1 = tpm_site(tmp_path, "ams1", deployed, soft_tpms["ams1"], "9.9.9-says-the-config")
    par1 = tpm_site(tmp_path, "par1", deployed, None, "2.19.1")  # the file backend
    for site in (fra1, ams1, par1):
        register(deployed, site)
    pin = fingerprint(soft_tpms["fra1"].ca_chain[-1])
    for site in (fra1, ams1):  # the registry pins the manufacturer for these two facilities
        deployed.registry.set_tpm_manufacturer_ca(site.facility_id, pin)
    procs = [AttestorProcess(s) for s in (fra1, ams1, par1)]
    registry = deployed.registry
    try:

        def hardware_landed(site: Site) -> bool:
            proofs = landed_proofs(registry, site.address)
            return any(p.proof.attestation.kind == Kind.HARDWARE for p in proofs)

        wait_until(lambda: all(hardware_landed(s) for s in (fra1, ams1, par1)), 90, "hardware")
        # the owner binds par1 to a TPM while its file-key attestor keeps running: the proofs
        # it signs from then on fail tpm.identity (the daemon refuses to start so bound)
        new_ak = hashlib.sha256(b"par1's new AK").digest()
        bound_at = registry.set_tpm_identity(par1.facility_id, new_ak)["blockNumber"]
        wait_until(
            lambda: any(p.block > bound_at for p in landed_proofs(registry, par1.address)),
            60,
            "a par1 proof after the binding",
        )
    finally:
        for proc in procs:
            proc.terminate()

    # each TPM attestor bound its facility to its own AK at start-up
    for site in (fra1, ams1):
        ak_der = soft_tpms[site.name].ak_cert.public_bytes(Encoding.DER)
        bound = registry.facility(site.facility_id).tpm_ak_certificate
        assert bound == hashlib.sha256(ak_der).digest()
    dep = Deployment.read(deployed.deployment)
    verifier = Verifier(deployed.w3, dep)  # the pins come from the registry
    domains = {}
    for site in (fra1, ams1, par1):
        reports = verifier.verify_facility(site.facility_id)
        if site is par1:
            blocks = {e.tx: e.block for e in registry.accepted_proofs(0, attestor=par1.address)}
            late = [r for r in reports if blocks[r.tx] > bound_at]
            assert late and all(
                {c.id for c in r.checks if not c.ok} == {"tpm.identity"} for r in late
            ), [(r.kind, [c for c in r.checks if not c.ok]) for r in late]
            reports = [r for r in reports if blocks[r.tx] <= bound_at]
        assert reports and all(r.ok for r in reports), [
            (r.kind, [c for c in r.checks if not c.ok]) for r in reports if not r.ok
        ]
        ids = {c.id for r in reports for c in r.checks}
        assert ("tpm.quote.signature" in ids) == (site is not par1)
        assert ("tpm.identity" in ids) == (site is not par1)
        assert ("evidence.device_signature" in ids) == (site is par1)
        hardware = [
            p.proof for p in landed_proofs(registry, site.address)
            if p.proof.attestation.kind == Kind.HARDWARE
        ]  # fmt: skip
        domains[site.name] = {p.attestation.domain_id for p in hardware}
    pcr0 = soft_tpms["fra1"].tpm.pcr(0)
    assert domains["fra1"] == domains["ams1"] == {tpm_hardware_domain(pcr0)}
    assert domains["par1"] != domains["fra1"]

    # the verify command reads the same pins
    rpc = deployed.chain.rpc_url
    args = ["--deployment", str(deployed.deployment), "--rpc-url", rpc, "--facility", "ams1"]
    assert verify_main(args) == 0


def test_verify_command_reports_the_unpinned_manufacturer_by_its_check_id(
    deployed: Deployed,
    soft_tpms: dict[str, ProvisionedTpm],
    tmp_path: Path,
    capsys: object,
) -> None:
    site = tpm_site(tmp_path, "lon1", deployed, soft_tpms["lon1"], "2.20.0")
    register(deployed, site)
    proc = AttestorProcess(site)
    try:
        wait_until(lambda: bool(landed_proofs(deployed.registry, site.address)), 60, "a proof")
    finally:
        proc.terminate()
    rpc = deployed.chain.rpc_url
    args = ["--deployment", str(deployed.deployment), "--rpc-url", rpc, "--facility", "lon1"]
    assert verify_main([*args, "--json"]) == 1
    out = json.loads(capsys.readouterr().out)  # type: ignore[attr-defined]
    failed = {c["id"] for p in out["proofs"] for c in p["checks"] if not c["ok"]}
    assert failed == {"tpm.ca.pinned"}
    pin = fingerprint(soft_tpms["lon1"].ca_chain[-1])
    assert verify_main([*args, "--manufacturer-ca", pin.hex()]) == 0


def test_registry_pins_manufacturers_per_facility_or_policy_wide(deployed: Deployed) -> None:
    registry, owner = deployed.registry, deployed.owner
    fid, other = facility_id("fra1"), facility_id("ams1")
    for name in ("fra1", "ams1"):
        registry.register_facility(facility_id(name), Account.create().address, bytes(32))
    root, zero = hashlib.sha256(b"manufacturer root").digest(), bytes(32)
    assert not registry.tpm_manufacturer_ca_accepted(fid, root)
    receipt = registry.set_tpm_manufacturer_ca(fid, root)
    event = registry.contract.events.TpmManufacturerCaSet().process_receipt(receipt)[0]["args"]
    assert (event["facilityId"], event["fingerprint"], event["accepted"]) == (fid, root, True)
    assert registry.tpm_manufacturer_ca_accepted(fid, root)
    assert not registry.tpm_manufacturer_ca_accepted(other, root)
    registry.set_tpm_manufacturer_ca(zero, root)  # policy-wide
    assert registry.tpm_manufacturer_ca_accepted(other, root)
    registry.set_tpm_manufacturer_ca(zero, root, accepted=False)
    registry.set_tpm_manufacturer_ca(fid, root, accepted=False)
    assert not registry.tpm_manufacturer_ca_accepted(fid, root)
    with pytest.raises(ContractRevertError) as err:
        registry.set_tpm_manufacturer_ca(fid, zero)
    assert err.value.error_name == "RegistryZeroFingerprint"
    with pytest.raises(ContractRevertError) as err:
        registry.set_tpm_manufacturer_ca(facility_id("nowhere"), root)
    assert err.value.error_name == "RegistryUnknownFacility"
    outsider = Account.create()
    fund(deployed.w3, owner, [outsider.address], 10**17)
    with pytest.raises(ContractRevertError) as err:
        registry.set_tpm_manufacturer_ca(fid, root, sender=outsider)
    assert err.value.error_name == "OwnableUnauthorizedAccount"
    assert not registry.tpm_manufacturer_ca_accepted(fid, root)
