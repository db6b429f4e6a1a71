// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {EIP712Verifier} from "./EIP712Verifier.sol";
import {IRedundancyRegistry} from "./IRedundancyRegistry.sol";

/// @title RedundancyRegistry
/// @notice Accepts only correctly signed, fresh, non-replayed site proofs from each
///         facility's attestor; keeps every facility's and node's failure domains and
///         freshness; binds staked validators to the facility that attests their node.
/// @dev Batch policy: `submitAttestations` skips a bad proof and emits
///      `AttestationRejected(index, facilityId, sequence, reason)` with the custom error's
///      selector as the reason, so one stale or forged proof cannot hold back a relayer's
///      other proofs; a skipped proof changes no state. Only a batch-level fault (the proofs
///      declare another EIP-712 domain) reverts the whole batch. `submitAttestation`
///      reverts with the full custom error. Proofs are EIP-712 typed data under the domain
///      (NAME, VERSION, chain id, this registry), see {EIP712Verifier}.
contract RedundancyRegistry is IRedundancyRegistry, EIP712Verifier, Ownable2Step {
    /// @notice EIP-712 type hash of {IRedundancyRegistry.Attestation}.
    bytes32 public constant ATTESTATION_TYPEHASH = keccak256(
        "Attestation(bytes32 facilityId,uint8 kind,bytes32 subject,bytes32 domainId,bytes32 secondaryDomainId,int32 latitudeE6,int32 longitudeE6,bytes32 evidenceHash,uint40 issuedAt,uint40 expiresAt,uint64 sequence)"
    );
    /// @notice EIP-712 type hash of {IRedundancyRegistry.ValidatorBinding}.
    bytes32 public constant VALIDATOR_BINDING_TYPEHASH =
        keccak256("ValidatorBinding(address validator,address node,bytes32 facilityId,uint64 nonce,uint40 deadline)");
    /// @notice EIP-712 domain name of the proofs.
    string public constant NAME = "RedundancyRegistry";
    /// @notice EIP-712 domain version of the proofs.
    string public constant VERSION = "1";

    /// @notice Proof kind: a node's hardware (per node; subject = node address).
    uint8 public constant KIND_HARDWARE = 0;
    /// @notice Proof kind: the facility's power grid.
    uint8 public constant KIND_POWER = 1;
    /// @notice Proof kind: the facility's metro, country and claimed coordinates.
    uint8 public constant KIND_GEOGRAPHY = 2;
    /// @notice Proof kind: the facility's upstream network (ASN).
    uint8 public constant KIND_NETWORK = 3;
    /// @notice Proof kind: the facility's hosting provider.
    uint8 public constant KIND_PROVIDER = 4;
    /// @notice Proof kind: a health heartbeat (no domain).
    uint8 public constant KIND_HEALTH = 5;

    /// @notice Failure-domain dimension: the facility itself.
    uint8 public constant DIM_FACILITY = 0;
    /// @notice Failure-domain dimension: metro area.
    uint8 public constant DIM_METRO = 1;
    /// @notice Failure-domain dimension: country.
    uint8 public constant DIM_COUNTRY = 2;
    /// @notice Failure-domain dimension: power grid.
    uint8 public constant DIM_POWER = 3;
    /// @notice Failure-domain dimension: upstream network.
    uint8 public constant DIM_NETWORK = 4;
    /// @notice Failure-domain dimension: hosting provider.
    uint8 public constant DIM_PROVIDER = 5;
    /// @notice Failure-domain dimension: node hardware.
    uint8 public constant DIM_HARDWARE = 6;

    /// @notice The largest stake a validator may hold (2^96 - 1 wei, 79 billion ether): selection
    ///         packs stakes into 96 bits, so a larger one is refused where it is deposited.
    uint256 public constant MAX_STAKE = type(uint96).max;
    /// @notice The most validators one facility may run. Committee selection reads every listed
    ///         validator, and a facility's attestor can attest any number of node keys: without a
    ///         bound, one attestor registering throwaway validators (1 wei each) put selection past
    ///         the block gas limit for good. With it, one facility adds at most this many (about
    ///         0.4M gas of selection), and the list is bounded by the facilities the owner lists.
    uint256 public constant MAX_VALIDATORS_PER_FACILITY = 16;

    uint256 private constant _KIND_COUNT = 6;
    uint256 private constant _INDICES_RESERVED = 1; // see registerFacility
    uint8 private constant _FACILITY_KINDS_MASK = 0x3e; // kinds 1..5; hardware is per node

    struct Facility {
        address attestor;
        bool active;
        int32 latitudeE6;
        int32 longitudeE6;
        bool located; // a geography proof has been accepted (same slot as the coordinates)
        uint16 validators; // registered validators running here (same slot)
        uint256 validUntil; // 6 x uint40, bit offset 40 * kind
        bytes32 caFingerprint;
        bytes32[6] domains; // by dimension; index 0 unused (the facility id is its own domain)
        bytes32 tpmAkCertificate; // sha256 of the bound TPM AK certificate; zero: file identity
        uint256 domainIndices; // domains[d] interned (see _intern), 32 bits at bit offset 32 * d, d >= 1
    }

    struct Node {
        bytes32 facilityId;
        bytes32 hardwareDomainId;
        uint40 validUntil;
        uint64 bindingNonce; // validators registered on the node so far: a binding's nonce
        uint32 hardwareIndex; // hardwareDomainId interned (see _intern): in validUntil's slot
        uint40 bondedAt; // when the node's current validator registered (same slot)
        uint64 bondSeq; // which registration that was (same slot; see bondCount)
    }

    struct Validator {
        bytes32 facilityId;
        address node;
        uint96 stake; // at most MAX_STAKE (checked on every deposit): one slot with the node
    }

    FreshnessPolicy private _policy;

    mapping(bytes32 facilityId => Facility) private _facilities;
    bytes32[] private _facilityIds;
    mapping(address attestor => bytes32 facilityId) private _attestorFacility;
    mapping(address attestor => uint64) private _lastSequence;
    mapping(address node => Node) private _nodes;
    mapping(address node => address validator) private _nodeValidator;
    mapping(address validator => Validator) private _validators;
    address[] private _validatorList;
    mapping(address validator => uint256 indexPlusOne) private _validatorIndex;
    /// @dev Validator registrations so far: each one's bondSeq.
    uint64 private _bondCount;
    /// @dev Domain id -> its interned index (1, 2, ... in order of first use; 0 is the zero id,
    ///      "no domain"): one index per distinct id, never reused, so indices are equal exactly
    ///      when ids are. Selection compares domains only for equality, so it reads a facility's
    ///      five domains as one word of indices instead of five words of ids (see
    ///      selectionFacilitiesIndexed): four cold reads fewer per facility.
    mapping(bytes32 domainId => uint32) private _domainIndex;
    uint32 private _domainCount;
    /// @dev TPM manufacturer root CAs pinned per facility; facility id zero holds the policy-wide list
    mapping(bytes32 facilityId => mapping(bytes32 fingerprint => bool)) private _tpmManufacturerCa;

    /// @param policy the initial freshness policy
    constructor(FreshnessPolicy memory policy) EIP712Verifier(NAME, VERSION) Ownable(msg.sender) {
        _setFreshnessPolicy(policy);
    }

    /// @notice Always reverts: the registry keeps an owner (ownership moves by two-step transfer).
    function renounceOwnership() public view override onlyOwner {
        revert RegistryRenounceForbidden();
    }

    // --------------------------------------------------------------- policy

    /// @notice The freshness policy in force.
    function freshnessPolicy() external view returns (FreshnessPolicy memory) {
        return _policy;
    }

    /// @notice Replaces the freshness policy. Proofs already accepted keep their validity.
    /// @param policy the new policy; every lifetime must be non-zero, required kinds facility-level
    function setFreshnessPolicy(FreshnessPolicy calldata policy) external onlyOwner {
        _setFreshnessPolicy(policy);
    }

    function _setFreshnessPolicy(FreshnessPolicy memory policy) private {
        for (uint256 k = 0; k < _KIND_COUNT; ++k) {
            if (policy.maxLifetime[k] == 0) revert RegistryInvalidPolicy("maxLifetime");
        }
        if (policy.requiredKinds & ~_FACILITY_KINDS_MASK != 0) revert RegistryInvalidPolicy("requiredKinds");
        if (policy.requireTpm >> _KIND_COUNT != 0) revert RegistryInvalidPolicy("requireTpm");
        _policy = policy;
        emit FreshnessPolicyUpdated(policy);
    }

    // ----------------------------------------------------------- facilities

    /// @notice Registers a facility with its attestor key and pinned device CA fingerprint.
    /// @param facilityId keccak256 of the facility's canonical name
    /// @param attestor the facility's attestor signing key
    /// @param caFingerprint sha256 of the facility operator's device CA certificate (DER)
    function registerFacility(bytes32 facilityId, address attestor, bytes32 caFingerprint) external onlyOwner {
        if (facilityId == bytes32(0)) revert RegistryZeroFacilityId();
        if (attestor == address(0)) revert RegistryZeroAddress();
        Facility storage f = _facilities[facilityId];
        if (f.attestor != address(0)) revert RegistryFacilityExists(facilityId);
        _claimAttestor(attestor);
        f.attestor = attestor;
        f.active = true;
        f.caFingerprint = caFingerprint;
        // bits 0-31 (dimension 0, the facility itself) are never read: set, they make the word
        // non-zero, so the facility's first domain proof overwrites it (5,000 gas) instead of
        // creating it (22,100); registration pays the difference
        f.domainIndices = _INDICES_RESERVED;
        _attestorFacility[attestor] = facilityId;
        _facilityIds.push(facilityId);
        emit FacilityRegistered(facilityId, attestor, caFingerprint);
    }

    /// @notice Replaces a facility's attestor key; the owner or the current attestor may call.
    /// @dev Sequences are per key and never reset, so re-admitting an old key cannot replay its proofs.
    /// @param facilityId the facility
    /// @param newAttestor the new attestor key
    function rotateAttestor(bytes32 facilityId, address newAttestor) external {
        Facility storage f = _registered(facilityId);
        address previous = f.attestor;
        if (msg.sender != owner() && msg.sender != previous) revert RegistryNotOwnerOrAttestor(msg.sender, facilityId);
        if (newAttestor == address(0)) revert RegistryZeroAddress();
        _claimAttestor(newAttestor);
        delete _attestorFacility[previous];
        _attestorFacility[newAttestor] = facilityId;
        f.attestor = newAttestor;
        emit AttestorRotated(facilityId, previous, newAttestor);
    }

    /// @notice Replaces the pinned device CA fingerprint of a facility.
    /// @param facilityId the facility
    /// @param caFingerprint sha256 of the new CA certificate (DER)
    function setCaFingerprint(bytes32 facilityId, bytes32 caFingerprint) external onlyOwner {
        _registered(facilityId).caFingerprint = caFingerprint;
        emit CaFingerprintUpdated(facilityId, caFingerprint);
    }

    /// @notice Pins (or unpins) a TPM manufacturer root CA for a facility, or policy-wide with
    ///         facilityId zero; the TPM chain itself is checked by verifiers from published
    ///         certificates, as the device certificate chain is.
    /// @param facilityId a registered facility, or zero for every facility
    /// @param fingerprint sha256 of the manufacturer root CA certificate (DER)
    /// @param accepted whether quotes chaining to it are accepted
    function setTpmManufacturerCa(bytes32 facilityId, bytes32 fingerprint, bool accepted) external onlyOwner {
        if (fingerprint == bytes32(0)) revert RegistryZeroFingerprint();
        if (facilityId != bytes32(0)) _registered(facilityId);
        _tpmManufacturerCa[facilityId][fingerprint] = accepted;
        emit TpmManufacturerCaSet(facilityId, fingerprint, accepted);
    }

    /// @notice Binds a facility's proofs to a TPM attestation key, or unbinds it with zero (the
    ///         owner or the facility's attestor may call). Kinds the policy lists in `requireTpm`
    ///         are accepted only from a bound facility; verifiers refuse a bound facility's
    ///         evidence unless that AK quoted it (check `tpm.identity`), so binding is a promise
    ///         the facility's every later proof is checked against.
    /// @param facilityId the facility
    /// @param akCertificate sha256 of the AK certificate (DER), published with `publishCertificate`
    function setTpmIdentity(bytes32 facilityId, bytes32 akCertificate) external {
        Facility storage f = _registered(facilityId);
        if (msg.sender != owner() && msg.sender != f.attestor) revert RegistryNotOwnerOrAttestor(msg.sender, facilityId);
        f.tpmAkCertificate = akCertificate;
        emit TpmIdentitySet(facilityId, akCertificate);
    }

    /// @inheritdoc IRedundancyRegistry
    function tpmManufacturerCaAccepted(bytes32 facilityId, bytes32 fingerprint) external view returns (bool) {
        return _tpmManufacturerCa[facilityId][fingerprint] || _tpmManufacturerCa[bytes32(0)][fingerprint];
    }

    /// @notice Publishes a CA or device certificate (DER) for a facility, as an event only; the
    ///         owner or the facility's current attestor may call.
    /// @param facilityId the facility
    /// @param certificate the DER-encoded X.509 certificate
    function publishCertificate(bytes32 facilityId, bytes calldata certificate) external {
        Facility storage f = _registered(facilityId);
        if (msg.sender != owner() && msg.sender != f.attestor) revert RegistryNotOwnerOrAttestor(msg.sender, facilityId);
        if (certificate.length == 0) revert RegistryEmptyCertificate();
        emit CertificatePublished(facilityId, sha256(certificate), certificate);
    }

    /// @notice Deactivates a facility: its proofs are refused and its validators ineligible.
    /// @param facilityId the facility
    function deactivateFacility(bytes32 facilityId) external onlyOwner {
        Facility storage f = _registered(facilityId);
        if (!f.active) revert RegistryFacilityInactive(facilityId);
        f.active = false;
        emit FacilityDeactivated(facilityId);
    }

    /// @notice Reactivates a deactivated facility.
    /// @param facilityId the facility
    function reactivateFacility(bytes32 facilityId) external onlyOwner {
        Facility storage f = _registered(facilityId);
        if (f.active) revert RegistryFacilityActive(facilityId);
        f.active = true;
        emit FacilityReactivated(facilityId);
    }

    function _claimAttestor(address attestor) private view {
        bytes32 holder = _attestorFacility[attestor];
        if (holder != bytes32(0)) revert RegistryAttestorInUse(attestor, holder);
    }

    function _registered(bytes32 facilityId) private view returns (Facility storage f) {
        f = _facilities[facilityId];
        if (f.attestor == address(0)) revert RegistryUnknownFacility(facilityId);
    }

    // --------------------------------------------------------- attestations

    /// @notice Submits one signed proof; reverts with the specific error if it is not acceptable.
    /// @param domainSeparator the EIP-712 domain separator the proof was signed under
    /// @param proof the signed proof with its evidence document
    function submitAttestation(bytes32 domainSeparator, SignedAttestation calldata proof) external {
        _requireDomain(domainSeparator);
        _accept(proof, domainSeparator, true);
    }

    /// @notice Submits many signed proofs in one transaction. A bad proof is skipped with an
    ///         `AttestationRejected` event naming the reason; the others are accepted.
    /// @param domainSeparator the EIP-712 domain separator the proofs were signed under
    /// @param proofs the signed proofs, in the order they are to be applied
    /// @return accepted how many proofs were accepted
    function submitAttestations(bytes32 domainSeparator, SignedAttestation[] calldata proofs)
        external
        returns (uint256 accepted)
    {
        _requireDomain(domainSeparator);
        uint256 n = proofs.length;
        for (uint256 i = 0; i < n; ++i) {
            bytes4 reason = _accept(proofs[i], domainSeparator, false);
            if (reason == bytes4(0)) {
                ++accepted;
            } else {
                emit AttestationRejected(i, proofs[i].facilityId, uint64(proofs[i].packed), reason);
            }
        }
    }

    /// @notice The EIP-712 digest a proof's signature must cover on this chain and registry.
    /// @param a the attestation
    function attestationDigest(Attestation calldata a) external view returns (bytes32) {
        return _digest(domainSeparator(), a);
    }

    /// @notice The attestation a submitted proof carries, with its packed fields spread out.
    /// @param proof the proof as submitted
    function unpackAttestation(SignedAttestation calldata proof) external pure returns (Attestation memory) {
        return _unpack(proof);
    }

    function _requireDomain(bytes32 given) private view {
        bytes32 expected = domainSeparator();
        if (given != expected) revert RegistryWrongDomain(expected, given);
    }

    /// @dev Checks a proof and, if it passes, applies it. Returns zero on acceptance. On a
    ///      failed check it reverts with the full custom error when `strict`, and otherwise
    ///      returns that error's selector having changed nothing.
    function _accept(SignedAttestation calldata p, bytes32 ds, bool strict) private returns (bytes4) {
        Attestation memory a = _unpack(p);
        Facility storage f = _facilities[a.facilityId];
        (bytes memory err, address attestor) = _check(p, a, f, ds);
        if (err.length != 0) return _fail(strict, err);
        _apply(a, f, attestor);
        return bytes4(0);
    }

    /// @dev Every check of a proof, in the order that decides which error wins when several
    ///      apply: packing, kind, facility (registered, active, TPM-bound where the policy
    ///      requires it), shape (subject, domains,
    ///      coordinates), timing (future, expired, lifetime), evidence hash, signature, signer,
    ///      sequence, and for hardware the node's other facility. Returns the first failure as
    ///      an ABI-encoded custom error (empty if the proof is acceptable) and the facility's
    ///      attestor. Changes nothing.
    /// @param p the proof as submitted
    /// @param a the attestation it carries (`_unpack(p)`)
    /// @param f the record of the facility it names (registered or not)
    /// @param ds the domain separator the proof was signed under, already checked to be ours
    function _check(SignedAttestation calldata p, Attestation memory a, Facility storage f, bytes32 ds)
        private
        view
        returns (bytes memory err, address attestor)
    {
        uint256 packed = p.packed;
        if (packed >> 216 != 0) return (abi.encodeWithSelector(RegistryMalformedPacking.selector, packed), attestor);
        bytes32 facilityId = a.facilityId;
        uint8 kind = a.kind;
        if (kind >= _KIND_COUNT) return (abi.encodeWithSelector(RegistryUnknownKind.selector, kind), attestor);
        attestor = f.attestor;
        if (attestor == address(0)) {
            return (abi.encodeWithSelector(RegistryUnknownFacility.selector, facilityId), attestor);
        }
        if (!f.active) return (abi.encodeWithSelector(RegistryFacilityInactive.selector, facilityId), attestor);
        if ((_policy.requireTpm >> kind) & 1 != 0 && f.tpmAkCertificate == bytes32(0)) {
            return (abi.encodeWithSelector(RegistryTpmRequired.selector, facilityId, kind), attestor);
        }
        err = _checkShape(a);
        if (err.length != 0) return (err, attestor);
        err = _checkTiming(a);
        if (err.length != 0) return (err, attestor);

        bytes32 computed = keccak256(p.evidence);
        if (computed != a.evidenceHash) {
            return (abi.encodeWithSelector(RegistryEvidenceHashMismatch.selector, a.evidenceHash, computed), attestor);
        }
        address signer = _recoverSigner(_digest(ds, a), p.r, p.yParityAndS);
        if (signer == address(0)) return (abi.encodeWithSelector(RegistryInvalidSignature.selector), attestor);
        if (signer != attestor) {
            return (
                abi.encodeWithSelector(RegistrySignerNotAttestor.selector, facilityId, signer, attestor), attestor
            );
        }
        uint64 last = _lastSequence[attestor];
        if (a.sequence <= last) {
            return (
                abi.encodeWithSelector(RegistrySequenceNotIncreasing.selector, attestor, last, a.sequence), attestor
            );
        }
        if (kind == KIND_HARDWARE) {
            address nodeAddr = address(uint160(uint256(a.subject)));
            Node storage n = _nodes[nodeAddr];
            bytes32 holder = n.facilityId;
            if (holder != facilityId && holder != bytes32(0) && n.validUntil > block.timestamp) {
                return (abi.encodeWithSelector(RegistryNodeAtOtherFacility.selector, nodeAddr, holder), attestor);
            }
        }
    }

    /// @dev Applies a proof that passed `_check`: the attestor's sequence, then the node's
    ///      hardware record or the facility's freshness, domains and coordinates, each change
    ///      with its event, and finally AttestationAccepted.
    /// @param a the attestation
    /// @param f the record of the facility it names
    /// @param attestor the facility's attestor, who signed it
    function _apply(Attestation memory a, Facility storage f, address attestor) private {
        bytes32 facilityId = a.facilityId;
        uint8 kind = a.kind;
        uint40 validUntil = a.expiresAt;
        _lastSequence[attestor] = a.sequence;
        if (kind == KIND_HARDWARE) {
            address nodeAddr = address(uint160(uint256(a.subject)));
            Node storage n = _nodes[nodeAddr];
            n.validUntil = validUntil;
            if (n.facilityId != facilityId || n.hardwareDomainId != a.domainId) {
                n.facilityId = facilityId;
                n.hardwareDomainId = a.domainId;
                n.hardwareIndex = _intern(a.domainId);
                emit NodeHardwareUpdated(nodeAddr, facilityId, a.domainId);
            }
        } else {
            uint256 shift = 40 * uint256(kind);
            f.validUntil = (f.validUntil & ~(uint256(type(uint40).max) << shift)) | (uint256(validUntil) << shift);
            if (kind == KIND_POWER) {
                _setDomain(f, facilityId, DIM_POWER, a.domainId);
            } else if (kind == KIND_GEOGRAPHY) {
                _setDomain(f, facilityId, DIM_METRO, a.domainId);
                _setDomain(f, facilityId, DIM_COUNTRY, a.secondaryDomainId);
                if (!f.located || f.latitudeE6 != a.latitudeE6 || f.longitudeE6 != a.longitudeE6) {
                    f.latitudeE6 = a.latitudeE6;
                    f.longitudeE6 = a.longitudeE6;
                    f.located = true;
                    emit FacilityLocationUpdated(facilityId, a.latitudeE6, a.longitudeE6);
                }
            } else if (kind == KIND_NETWORK) {
                _setDomain(f, facilityId, DIM_NETWORK, a.domainId);
            } else if (kind == KIND_PROVIDER) {
                _setDomain(f, facilityId, DIM_PROVIDER, a.domainId);
            }
        }
        emit AttestationAccepted(facilityId, attestor, a.sequence, kind, a.subject, validUntil);
    }

    /// @dev Spreads the packed word out (layout in IRedundancyRegistry.SignedAttestation).
    function _unpack(SignedAttestation calldata p) private pure returns (Attestation memory a) {
        uint256 packed = p.packed;
        a.facilityId = p.facilityId;
        a.kind = uint8(packed >> 208);
        a.subject = p.subject;
        a.domainId = p.domainId;
        a.secondaryDomainId = p.secondaryDomainId;
        a.latitudeE6 = int32(uint32(packed >> 176));
        a.longitudeE6 = int32(uint32(packed >> 144));
        a.evidenceHash = p.evidenceHash;
        a.issuedAt = uint40(packed >> 104);
        a.expiresAt = uint40(packed >> 64);
        a.sequence = uint64(packed);
    }

    /// @dev The subject, domain and coordinate checks, in that order; the encoded error or empty.
    function _checkShape(Attestation memory a) private pure returns (bytes memory err) {
        uint8 kind = a.kind;
        bytes32 subject = a.subject;
        if (kind == KIND_HARDWARE ? (subject == 0 || uint256(subject) >> 160 != 0) : subject != a.facilityId) {
            return abi.encodeWithSelector(RegistryInvalidSubject.selector, kind, subject);
        }
        bytes32 d1 = a.domainId;
        bytes32 d2 = a.secondaryDomainId;
        bool domainsOk = kind == KIND_HEALTH
            ? (d1 == 0 && d2 == 0)
            : (kind == KIND_GEOGRAPHY ? (d1 != 0 && d2 != 0) : (d1 != 0 && d2 == 0));
        if (!domainsOk) return abi.encodeWithSelector(RegistryInvalidDomain.selector, kind, d1, d2);
        int32 lat = a.latitudeE6;
        int32 lon = a.longitudeE6;
        bool coordsOk = kind == KIND_GEOGRAPHY
            ? (lat >= -90_000_000 && lat <= 90_000_000 && lon >= -180_000_000 && lon <= 180_000_000)
            : (lat == 0 && lon == 0);
        if (!coordsOk) return abi.encodeWithSelector(RegistryInvalidCoordinates.selector, kind, lat, lon);
    }

    /// @dev The future-skew, expiry and lifetime checks, in that order; the encoded error or empty.
    function _checkTiming(Attestation memory a) private view returns (bytes memory err) {
        uint32 skew = _policy.maxFutureSkew;
        if (a.issuedAt > block.timestamp + skew) {
            return abi.encodeWithSelector(RegistryAttestationFromFuture.selector, a.issuedAt, block.timestamp, skew);
        }
        if (a.expiresAt <= block.timestamp) {
            return abi.encodeWithSelector(RegistryAttestationExpired.selector, a.expiresAt, block.timestamp);
        }
        uint32 maxLifetime = _policy.maxLifetime[a.kind];
        if (a.expiresAt <= a.issuedAt || a.expiresAt - a.issuedAt > maxLifetime) {
            return abi.encodeWithSelector(RegistryInvalidLifetime.selector, a.kind, a.issuedAt, a.expiresAt, maxLifetime);
        }
    }

    function _setDomain(Facility storage f, bytes32 facilityId, uint8 dimension, bytes32 domainId) private {
        if (f.domains[dimension] != domainId) {
            f.domains[dimension] = domainId;
            uint256 shift = 32 * uint256(dimension);
            f.domainIndices =
                (f.domainIndices & ~(uint256(type(uint32).max) << shift)) | (uint256(_intern(domainId)) << shift);
            emit FacilityDomainUpdated(facilityId, dimension, domainId);
        }
    }

    /// @dev The interned index of a domain id, assigned on first use (0 for the zero id).
    function _intern(bytes32 domainId) private returns (uint32 index) {
        if (domainId == bytes32(0)) return 0;
        index = _domainIndex[domainId];
        if (index == 0) {
            index = ++_domainCount;
            _domainIndex[domainId] = index;
        }
    }

    /// @dev Reverts with `err` when strict; otherwise returns its selector.
    function _fail(bool strict, bytes memory err) private pure returns (bytes4 selector) {
        if (strict) {
            // Assembly: re-raises the inner call's revert data unchanged.
            // solhint-disable-next-line no-inline-assembly
            assembly ("memory-safe") {
                revert(add(err, 0x20), mload(err))
            }
        }
        selector = bytes4(err);
    }

    /// @dev The EIP-712 digest of an attestation under the domain separator `ds`.
    function _digest(bytes32 ds, Attestation memory a) private pure returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                ATTESTATION_TYPEHASH,
                a.facilityId,
                a.kind,
                a.subject,
                a.domainId,
                a.secondaryDomainId,
                a.latitudeE6,
                a.longitudeE6,
                a.evidenceHash,
                a.issuedAt,
                a.expiresAt,
                a.sequence
            )
        );
        return _typedDataDigest(ds, structHash);
    }

    // ----------------------------------------------------------- validators

    /// @notice Registers the caller as a validator bonded with `msg.value` (at most MAX_STAKE),
    ///         running `node` at `facilityId`. The facility's attestor must already have attested
    ///         the node, and the node's key must have signed a {IRedundancyRegistry.ValidatorBinding}
    ///         naming the caller, the node, the facility, the node's current binding nonce and
    ///         `deadline` under this registry's EIP-712 domain: nobody can register on a node
    ///         whose key it does not control. Each registration on a node bumps its nonce, so a
    ///         binding is used at most once.
    /// @param facilityId the facility the node runs in
    /// @param node the node's identity (its signing address)
    /// @param deadline the binding is refused from this timestamp on
    /// @param r the node key's EIP-2098 compact signature over the binding: r
    /// @param yParityAndS s with the recovery bit in its top bit
    function registerValidator(bytes32 facilityId, address node, uint40 deadline, bytes32 r, bytes32 yParityAndS)
        external
        payable
    {
        Facility storage f = _registered(facilityId);
        if (!f.active) revert RegistryFacilityInactive(facilityId);
        if (node == address(0)) revert RegistryZeroAddress();
        if (msg.value == 0) revert RegistryZeroStake();
        if (msg.value > MAX_STAKE) revert RegistryStakeTooLarge(msg.value, MAX_STAKE);
        if (deadline <= block.timestamp) revert RegistryBindingExpired(deadline, block.timestamp);
        if (_validators[msg.sender].node != address(0)) revert RegistryValidatorExists(msg.sender);
        if (f.validators >= MAX_VALIDATORS_PER_FACILITY) {
            revert RegistryFacilityFull(facilityId, MAX_VALIDATORS_PER_FACILITY);
        }
        address holder = _nodeValidator[node];
        if (holder != address(0)) revert RegistryNodeInUse(node, holder);
        Node storage n = _nodes[node];
        if (n.facilityId != facilityId || n.validUntil <= block.timestamp) {
            revert RegistryNodeNotAttested(node, facilityId);
        }
        uint64 nonce = n.bindingNonce;
        bytes32 digest = _bindingDigest(ValidatorBinding(msg.sender, node, facilityId, nonce, deadline));
        address signer = _recoverSigner(digest, r, yParityAndS);
        if (signer != node) revert RegistryBindingNotSignedByNode(node, signer);
        uint64 bondSeq = ++_bondCount;
        n.bindingNonce = nonce + 1;
        n.bondedAt = uint40(block.timestamp);
        n.bondSeq = bondSeq;
        ++f.validators;
        _validators[msg.sender] = Validator({facilityId: facilityId, node: node, stake: uint96(msg.value)});
        _nodeValidator[node] = msg.sender;
        _validatorList.push(msg.sender);
        _validatorIndex[msg.sender] = _validatorList.length;
        emit ValidatorRegistered(msg.sender, facilityId, node, msg.value, uint40(block.timestamp), bondSeq);
    }

    /// @notice The EIP-712 digest a node's key signs to let `binding.validator` register on it.
    /// @param binding the binding
    function validatorBindingDigest(ValidatorBinding calldata binding) external view returns (bytes32) {
        return _bindingDigest(binding);
    }

    /// @notice The nonce the next binding of a node must carry (registrations on it so far).
    /// @param node_ the node address
    function nodeBindingNonce(address node_) external view returns (uint64) {
        return _nodes[node_].bindingNonce;
    }

    function _bindingDigest(ValidatorBinding memory b) private view returns (bytes32) {
        return _typedDataDigest(
            domainSeparator(),
            keccak256(abi.encode(VALIDATOR_BINDING_TYPEHASH, b.validator, b.node, b.facilityId, b.nonce, b.deadline))
        );
    }

    /// @notice Adds `msg.value` to the caller's bonded stake (refused past MAX_STAKE in total).
    function increaseStake() external payable {
        Validator storage v = _validators[msg.sender];
        if (v.node == address(0)) revert RegistryUnknownValidator(msg.sender);
        if (msg.value == 0) revert RegistryZeroStake();
        uint256 total = v.stake + msg.value;
        if (total > MAX_STAKE) revert RegistryStakeTooLarge(total, MAX_STAKE);
        v.stake = uint96(total);
        emit ValidatorStakeIncreased(msg.sender, msg.value, total);
    }

    /// @notice Removes the caller as a validator and returns its stake.
    function deregisterValidator() external {
        Validator storage v = _validators[msg.sender];
        address node = v.node;
        if (node == address(0)) revert RegistryUnknownValidator(msg.sender);
        uint256 stake = v.stake;
        --_facilities[v.facilityId].validators;
        delete _nodeValidator[node];
        delete _validators[msg.sender];
        uint256 index = _validatorIndex[msg.sender] - 1;
        address moved = _validatorList[_validatorList.length - 1];
        _validatorList[index] = moved;
        _validatorIndex[moved] = index + 1;
        _validatorList.pop();
        delete _validatorIndex[msg.sender];
        emit ValidatorDeregistered(msg.sender, stake);
        (bool ok,) = msg.sender.call{value: stake}("");
        if (!ok) revert RegistryStakeTransferFailed(msg.sender, stake);
    }

    // ---------------------------------------------------------------- views

    /// @notice The EIP-712 domain separator of this registry on the current chain.
    function domainSeparator() public view override(IRedundancyRegistry, EIP712Verifier) returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @notice A facility as stored (zero attestor if unknown).
    /// @param facilityId the facility
    function facility(bytes32 facilityId) external view returns (FacilityView memory out) {
        Facility storage f = _facilities[facilityId];
        out.attestor = f.attestor;
        out.active = f.active;
        out.latitudeE6 = f.latitudeE6;
        out.longitudeE6 = f.longitudeE6;
        out.caFingerprint = f.caFingerprint;
        out.tpmAkCertificate = f.tpmAkCertificate;
        out.domains = f.domains;
        if (f.attestor != address(0)) out.domains[DIM_FACILITY] = facilityId;
        uint256 packed = f.validUntil;
        for (uint256 k = 0; k < _KIND_COUNT; ++k) {
            out.validUntil[k] = uint40(packed >> (40 * k));
        }
    }

    /// @notice A facility's attestor, activity and claimed coordinates, in one storage read:
    ///         what the selector's geography checks need (zero attestor if unknown).
    /// @param facilityId the facility
    function geoFacility(bytes32 facilityId) public view returns (GeoFacility memory out) {
        Facility storage f = _facilities[facilityId];
        out.attestor = f.attestor;
        out.active = f.active;
        out.located = f.located;
        out.latitudeE6 = f.latitudeE6;
        out.longitudeE6 = f.longitudeE6;
    }

    /// @notice geoFacility of two facilities in one call (the two ends of an RTT measurement).
    /// @param a one facility
    /// @param b the other
    function geoPair(bytes32 a, bytes32 b) external view returns (GeoFacility memory, GeoFacility memory) {
        return (geoFacility(a), geoFacility(b));
    }

    /// @notice Whether a facility is stale at this block, and why.
    /// @param facilityId the facility
    function facilityStatus(bytes32 facilityId) external view returns (FacilityStatus memory) {
        return _status(_facilities[facilityId], _policy.requiredKinds);
    }

    /// @notice What committee selection needs of each facility, in one call: fresh (registered,
    ///         active, not stale), claimed coordinates, and the domain per dimension (index 0 unused).
    /// @param ids the facilities
    function selectionFacilities(bytes32[] calldata ids) external view returns (SelectionFacility[] memory out) {
        out = new SelectionFacility[](ids.length);
        uint8 required = _policy.requiredKinds;
        for (uint256 i = 0; i < ids.length; ++i) {
            Facility storage f = _facilities[ids[i]];
            SelectionFacility memory e = out[i];
            e.fresh = !_status(f, required).stale;
            e.latitudeE6 = f.latitudeE6;
            e.longitudeE6 = f.longitudeE6;
            for (uint256 d = 1; d < 6; ++d) {
                e.domains[d] = f.domains[d];
            }
        }
    }

    /// @notice selectionFacilities with the domains as interned indices in one word (a number
    ///         equal for two facilities exactly when their domain ids are; 0 for none; layout in
    ///         IRedundancyRegistry.IndexedFacility): what selection compares, read from one
    ///         storage word instead of five.
    /// @param ids the facilities
    function selectionFacilitiesIndexed(bytes32[] calldata ids) external view returns (IndexedFacility[] memory out) {
        out = new IndexedFacility[](ids.length);
        uint8 required = _policy.requiredKinds;
        for (uint256 i = 0; i < ids.length; ++i) {
            Facility storage f = _facilities[ids[i]];
            out[i] = IndexedFacility({
                fresh: !_status(f, required).stale,
                latitudeE6: f.latitudeE6,
                longitudeE6: f.longitudeE6,
                domainIndices: f.domainIndices
            });
        }
    }

    /// @notice The interned index of a domain id (0: never used, or the zero id).
    /// @param domainId the domain id
    function domainIndex(bytes32 domainId) external view returns (uint32) {
        return _domainIndex[domainId];
    }

    function _status(Facility storage f, uint8 required) private view returns (FacilityStatus memory s) {
        s.registered = f.attestor != address(0);
        s.active = f.active;
        uint256 packed = f.validUntil;
        for (uint256 k = 1; k < _KIND_COUNT; ++k) {
            if (required & (1 << k) == 0) continue;
            uint40 until = uint40(packed >> (40 * k));
            if (until == 0) s.missingKinds |= uint8(1 << k);
            else if (until <= block.timestamp) s.expiredKinds |= uint8(1 << k);
        }
        s.stale = !s.registered || !s.active || s.missingKinds != 0 || s.expiredKinds != 0;
    }

    /// @notice Every registered facility id, in registration order.
    function facilityIds() external view returns (bytes32[] memory) {
        return _facilityIds;
    }

    /// @notice The facility an attestor key serves (zero if none).
    /// @param attestor the key
    function attestorFacility(address attestor) external view returns (bytes32) {
        return _attestorFacility[attestor];
    }

    /// @notice The last accepted sequence of an attestor key.
    /// @param attestor the key
    function lastSequence(address attestor) external view returns (uint64) {
        return _lastSequence[attestor];
    }

    /// @notice A node's hardware attestation as stored.
    /// @param node_ the node address
    function nodeInfo(address node_) external view returns (NodeView memory) {
        Node storage n = _nodes[node_];
        return NodeView({facilityId: n.facilityId, hardwareDomainId: n.hardwareDomainId, validUntil: n.validUntil});
    }

    /// @notice A validator as stored (zero node if unknown).
    /// @param validator_ the validator address
    function validatorInfo(address validator_) external view returns (ValidatorView memory) {
        Validator storage v = _validators[validator_];
        Node storage n = _nodes[v.node];
        return ValidatorView({
            facilityId: v.facilityId,
            node: v.node,
            stake: v.stake,
            bondedAt: n.bondedAt,
            bondSeq: n.bondSeq
        });
    }

    /// @notice Validator and node records for the given addresses (zero records for unknown ones).
    /// @param validators the validator addresses
    function validatorRecords(address[] calldata validators) external view returns (ValidatorRecord[] memory out) {
        out = new ValidatorRecord[](validators.length);
        for (uint256 i = 0; i < validators.length; ++i) {
            Validator memory v = _validators[validators[i]];
            Node storage n = _nodes[v.node];
            out[i] = ValidatorRecord({
                validator: validators[i],
                stake: v.stake,
                facilityId: v.facilityId,
                node: v.node,
                nodeFacilityId: n.facilityId,
                hardwareDomainId: n.hardwareDomainId,
                nodeValidUntil: n.validUntil,
                bondedAt: n.bondedAt,
                bondSeq: n.bondSeq
            });
        }
    }

    /// @notice validatorRecords with the node's hardware domain given as its interned index (see
    ///         selectionFacilitiesIndexed) in `hardwareDomainId`: one storage word fewer per node.
    /// @param validators the validator addresses
    function validatorRecordsIndexed(address[] calldata validators)
        external
        view
        returns (ValidatorRecord[] memory out)
    {
        out = new ValidatorRecord[](validators.length);
        for (uint256 i = 0; i < validators.length; ++i) {
            Validator memory v = _validators[validators[i]];
            Node storage n = _nodes[v.node];
            out[i] = ValidatorRecord({
                validator: validators[i],
                stake: v.stake,
                facilityId: v.facilityId,
                node: v.node,
                nodeFacilityId: n.facilityId,
                hardwareDomainId: bytes32(uint256(n.hardwareIndex)),
                nodeValidUntil: n.validUntil,
                bondedAt: n.bondedAt,
                bondSeq: n.bondSeq
            });
        }
    }

    /// @notice How many validator registrations there have been (the last one's bondSeq).
    function bondCount() external view returns (uint64) {
        return _bondCount;
    }

    /// @notice Every registered validator address.
    function validatorAddresses() external view returns (address[] memory) {
        return _validatorList;
    }
}
