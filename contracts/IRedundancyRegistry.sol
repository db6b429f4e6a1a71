// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title IRedundancyRegistry
/// @notice Types, events and errors of the registry that accepts signed site proofs,
///         keeps each facility's failure domains and freshness, and binds validators
///         to the facilities whose attestors vouch for their nodes.
interface IRedundancyRegistry {
    // ------------------------------------------------------------------ types

    /// @notice A site proof: the EIP-712 type the facility's attestor signs.
    /// @dev Kinds (uint8): 0 hardware (per node; subject = node address, domainId = hardware
    ///      vendor/model/firmware), 1 power (domainId = grid), 2 geography (domainId = metro,
    ///      secondaryDomainId = country, latitudeE6/longitudeE6 = claimed coordinates in
    ///      micro-degrees), 3 network (domainId = upstream ASN), 4 provider (domainId = hosting
    ///      provider), 5 health heartbeat (no domain). For every kind but hardware the subject is
    ///      the facility id itself. Fields a kind does not use must be zero.
    struct Attestation {
        bytes32 facilityId;
        uint8 kind;
        bytes32 subject;
        bytes32 domainId;
        bytes32 secondaryDomainId;
        int32 latitudeE6;
        int32 longitudeE6;
        bytes32 evidenceHash;
        uint40 issuedAt;
        uint40 expiresAt;
        uint64 sequence;
    }

    /// @notice A signed proof as submitted: the attestation's fields with the six small ones
    ///         packed into one word, its evidence document, and an EIP-2098 compact signature.
    /// @dev Packing keeps calldata (the main cost of a batched proof) small. `packed` holds,
    ///      from the least significant bit: sequence (64 bits), expiresAt (40), issuedAt (40),
    ///      longitudeE6 (32, two's complement), latitudeE6 (32, two's complement), kind (8); the
    ///      top 40 bits must be zero. The evidence travels in calldata and keccak256(evidence)
    ///      must equal evidenceHash. `yParityAndS` is s with the recovery bit in its top bit.
    struct SignedAttestation {
        bytes32 facilityId;
        bytes32 subject;
        bytes32 domainId;
        bytes32 secondaryDomainId;
        bytes32 evidenceHash;
        uint256 packed;
        bytes evidence;
        bytes32 r;
        bytes32 yParityAndS;
    }

    /// @notice What a node's key signs to let one validator register on it: the validator, the
    ///         node, the facility, the node's binding nonce (registrations on it so far, see
    ///         `nodeBindingNonce`) and a deadline (unix seconds; refused from then on).
    struct ValidatorBinding {
        address validator;
        address node;
        bytes32 facilityId;
        uint64 nonce;
        uint40 deadline;
    }

    /// @notice Freshness rules: maximum lifetime per kind, allowed clock skew, the
    ///         facility-level kinds a facility must hold fresh to count as not stale, and the
    ///         kinds whose proofs must come from a facility bound to a TPM identity.
    /// @dev requiredKinds and requireTpm are bit masks (bit k = kind k). A kind in requireTpm is
    ///      accepted only from a facility whose attestor has bound a TPM attestation key
    ///      (`setTpmIdentity`); the quote itself is checked by verifiers (check `tpm.identity`
    ///      and the `tpm.*` chain), as the device certificate chain is.
    struct FreshnessPolicy {
        uint32[6] maxLifetime;
        uint32 maxFutureSkew;
        uint8 requiredKinds;
        uint8 requireTpm;
    }

    /// @notice Why a facility is or is not stale, as of the current block.
    /// @dev missingKinds / expiredKinds are bit masks over required kinds (bit k = kind k).
    struct FacilityStatus {
        bool registered;
        bool active;
        bool stale;
        uint8 missingKinds;
        uint8 expiredKinds;
    }

    /// @notice A facility as stored: its current attestor and pinned device CA.
    struct FacilityView {
        address attestor;
        bool active;
        int32 latitudeE6;
        int32 longitudeE6;
        bytes32 caFingerprint;
        bytes32[6] domains;
        uint40[6] validUntil;
        bytes32 tpmAkCertificate;
    }

    /// @notice A validator as stored; bondedAt: when it registered (its stake has been bonded
    ///         without a break since then: there is no partial withdrawal); bondSeq: which
    ///         registration it was (1, 2, ... across the registry: {bondCount} orders bonds exactly,
    ///         also within one block or one second).
    struct ValidatorView {
        bytes32 facilityId;
        address node;
        uint256 stake;
        uint40 bondedAt;
        uint64 bondSeq;
    }

    /// @notice Everything selection needs about one validator and its node, in one record.
    struct ValidatorRecord {
        address validator;
        uint256 stake;
        bytes32 facilityId;
        address node;
        bytes32 nodeFacilityId;
        bytes32 hardwareDomainId;
        uint40 nodeValidUntil;
        uint40 bondedAt;
        uint64 bondSeq;
    }

    /// @notice What committee selection needs of a facility.
    struct SelectionFacility {
        bool fresh;
        int32 latitudeE6;
        int32 longitudeE6;
        bytes32[6] domains;
    }

    /// @notice SelectionFacility with the domains as interned indices in one word: dimension d's
    ///         index in bits 32 * d .. 32 * d + 31 (d = 1..5; bits 0-31 are not an index). An
    ///         index is equal for two facilities exactly when their domain ids are, 0 for none.
    struct IndexedFacility {
        bool fresh;
        int32 latitudeE6;
        int32 longitudeE6;
        uint256 domainIndices;
    }

    /// @notice What the geography checks need of a facility: its attestor, whether it is active,
    ///         whether it has ever proven its geography, and its claimed coordinates.
    struct GeoFacility {
        address attestor;
        bool active;
        bool located;
        int32 latitudeE6;
        int32 longitudeE6;
    }

    /// @notice A node's hardware attestation as stored.
    struct NodeView {
        bytes32 facilityId;
        bytes32 hardwareDomainId;
        uint40 validUntil;
    }

    // ----------------------------------------------------------------- events

    /// @notice Emitted when the owner registers a facility.
    event FacilityRegistered(bytes32 indexed facilityId, address indexed attestor, bytes32 caFingerprint);
    /// @notice Emitted when a facility's attestor key is replaced.
    event AttestorRotated(bytes32 indexed facilityId, address indexed previousAttestor, address indexed newAttestor);
    /// @notice Emitted when a CA or device certificate (DER) is published for a facility; verifiers
    ///         find certificates by their sha256 and check them against the pinned CA fingerprint.
    event CertificatePublished(bytes32 indexed facilityId, bytes32 indexed sha256Hash, bytes certificate);
    /// @notice Emitted when a facility's pinned device CA fingerprint changes.
    event CaFingerprintUpdated(bytes32 indexed facilityId, bytes32 caFingerprint);
    /// @notice Emitted when a TPM manufacturer root CA is pinned or unpinned, for one facility or
    ///         (facilityId zero) policy-wide; verifiers accept TPM quotes whose EK chains to it.
    event TpmManufacturerCaSet(bytes32 indexed facilityId, bytes32 indexed fingerprint, bool accepted);
    /// @notice Emitted when a facility binds its proofs to a TPM attestation key (sha256 of the
    ///         AK certificate's DER), or unbinds with zero.
    event TpmIdentitySet(bytes32 indexed facilityId, bytes32 akCertificate);
    /// @notice Emitted when the owner deactivates a facility.
    event FacilityDeactivated(bytes32 indexed facilityId);
    /// @notice Emitted when the owner reactivates a facility.
    event FacilityReactivated(bytes32 indexed facilityId);
    /// @notice Emitted for every accepted proof; validUntil is when it stops counting as fresh.
    event AttestationAccepted(
        bytes32 indexed facilityId, address indexed attestor, uint64 indexed sequence, uint8 kind, bytes32 subject, uint40 validUntil
    );
    /// @notice Emitted in a batch for a proof that was skipped; reason is the custom error selector.
    event AttestationRejected(uint256 indexed index, bytes32 indexed facilityId, uint64 sequence, bytes4 reason);
    /// @notice Emitted when an accepted proof changes a facility's domain id in a dimension.
    event FacilityDomainUpdated(bytes32 indexed facilityId, uint8 indexed dimension, bytes32 domainId);
    /// @notice Emitted when an accepted geography proof changes a facility's claimed coordinates.
    event FacilityLocationUpdated(bytes32 indexed facilityId, int32 latitudeE6, int32 longitudeE6);
    /// @notice Emitted when an accepted hardware proof changes a node's facility or hardware domain.
    event NodeHardwareUpdated(address indexed node, bytes32 indexed facilityId, bytes32 hardwareDomainId);
    /// @notice Emitted when a validator registers and bonds stake; bondedAt is the block's time,
    ///         bondSeq the registration's number (see {ValidatorView}).
    event ValidatorRegistered(
        address indexed validator,
        bytes32 indexed facilityId,
        address indexed node,
        uint256 stake,
        uint40 bondedAt,
        uint64 bondSeq
    );
    /// @notice Emitted when a validator adds stake.
    event ValidatorStakeIncreased(address indexed validator, uint256 added, uint256 total);
    /// @notice Emitted when a validator leaves and its stake is returned.
    event ValidatorDeregistered(address indexed validator, uint256 stakeReturned);
    /// @notice Emitted when the owner changes the freshness policy.
    event FreshnessPolicyUpdated(FreshnessPolicy policy);

    // ----------------------------------------------------------------- errors

    /// @notice Ownership cannot be renounced: a registry without an owner could never change its
    ///         freshness policy, deactivate a facility or rotate an attestor again.
    error RegistryRenounceForbidden();
    /// @notice The caller is neither the owner nor the facility's current attestor.
    error RegistryNotOwnerOrAttestor(address caller, bytes32 facilityId);
    /// @notice An empty certificate was published.
    error RegistryEmptyCertificate();
    /// @notice A TPM manufacturer CA fingerprint of zero was given.
    error RegistryZeroFingerprint();
    /// @notice A zero address was given where one is required.
    error RegistryZeroAddress();
    /// @notice A facility id of zero was given.
    error RegistryZeroFacilityId();
    /// @notice The facility id is already registered.
    error RegistryFacilityExists(bytes32 facilityId);
    /// @notice The facility id is not registered.
    error RegistryUnknownFacility(bytes32 facilityId);
    /// @notice The facility is deactivated.
    error RegistryFacilityInactive(bytes32 facilityId);
    /// @notice The facility is already active.
    error RegistryFacilityActive(bytes32 facilityId);
    /// @notice The attestor key already serves a facility (one key, one site).
    error RegistryAttestorInUse(address attestor, bytes32 facilityId);
    /// @notice The proofs were signed under another EIP-712 domain (chain or registry).
    error RegistryWrongDomain(bytes32 expected, bytes32 given);
    /// @notice The signature is malformed (bad v, high s, or unrecoverable).
    error RegistryInvalidSignature();
    /// @notice The recovered signer is not the facility's current attestor.
    error RegistrySignerNotAttestor(bytes32 facilityId, address signer, address attestor);
    /// @notice The proof's sequence is not above the attestor's last accepted one (replay).
    error RegistrySequenceNotIncreasing(address attestor, uint64 lastSequence, uint64 sequence);
    /// @notice The proof has expired.
    error RegistryAttestationExpired(uint40 expiresAt, uint256 blockTimestamp);
    /// @notice The proof is issued further in the future than the allowed skew.
    error RegistryAttestationFromFuture(uint40 issuedAt, uint256 blockTimestamp, uint32 maxFutureSkew);
    /// @notice The proof's lifetime is empty or longer than the policy allows for its kind.
    error RegistryInvalidLifetime(uint8 kind, uint40 issuedAt, uint40 expiresAt, uint32 maxLifetime);
    /// @notice The packed field word has bits set above the kind.
    error RegistryMalformedPacking(uint256 packed);
    /// @notice keccak256 of the evidence document differs from the signed evidenceHash.
    error RegistryEvidenceHashMismatch(bytes32 declared, bytes32 computed);
    /// @notice The kind is not one of the six known kinds.
    error RegistryUnknownKind(uint8 kind);
    /// @notice The subject does not fit the kind (facility id, or a node address for hardware).
    error RegistryInvalidSubject(uint8 kind, bytes32 subject);
    /// @notice A domain field is missing for the kind, or set where the kind uses none.
    error RegistryInvalidDomain(uint8 kind, bytes32 domainId, bytes32 secondaryDomainId);
    /// @notice Coordinates are out of range, or set on a kind other than geography.
    error RegistryInvalidCoordinates(uint8 kind, int32 latitudeE6, int32 longitudeE6);
    /// @notice A hardware proof names a node still freshly attested by another facility.
    error RegistryNodeAtOtherFacility(address node, bytes32 facilityId);
    /// @notice The validator is already registered.
    error RegistryValidatorExists(address validator);
    /// @notice The validator is not registered.
    error RegistryUnknownValidator(address validator);
    /// @notice The node already backs another validator.
    error RegistryNodeInUse(address node, address validator);
    /// @notice The node has no fresh hardware proof from the claimed facility's attestor.
    error RegistryNodeNotAttested(address node, bytes32 facilityId);
    /// @notice The validator binding's deadline has passed.
    error RegistryBindingExpired(uint40 deadline, uint256 blockTimestamp);
    /// @notice The validator binding was not signed by the node's key (another signer, another
    ///         validator, facility, nonce or deadline than signed, or a malformed signature: zero).
    error RegistryBindingNotSignedByNode(address node, address signer);
    /// @notice The stake (the deposit, or the total after an increase) is above MAX_STAKE, the
    ///         most committee selection can weigh.
    error RegistryStakeTooLarge(uint256 stake, uint256 maxStake);
    /// @notice The facility already runs the most validators one facility may (selection reads
    ///         every listed validator, so the list is bounded by the facilities the owner lists).
    error RegistryFacilityFull(bytes32 facilityId, uint256 maxValidators);
    /// @notice No stake was sent.
    error RegistryZeroStake();
    /// @notice Returning stake to the validator failed.
    error RegistryStakeTransferFailed(address validator, uint256 amount);
    /// @notice A proof of a kind the policy requires from a TPM came from a facility that has
    ///         bound no TPM attestation key.
    error RegistryTpmRequired(bytes32 facilityId, uint8 kind);
    /// @notice A policy field is out of range.
    error RegistryInvalidPolicy(string field);

    // ------------------------------------------------------------------ views

    /// @notice The EIP-712 domain separator of this registry on the current chain.
    function domainSeparator() external view returns (bytes32);

    /// @notice Whether a TPM manufacturer root CA (sha256 of its DER) is pinned for a facility,
    ///         either for it or policy-wide.
    function tpmManufacturerCaAccepted(bytes32 facilityId, bytes32 fingerprint) external view returns (bool);

    /// @notice A facility as stored (zero attestor if unknown).
    function facility(bytes32 facilityId) external view returns (FacilityView memory);

    /// @notice A facility's attestor, activity and claimed coordinates (zero attestor if unknown).
    function geoFacility(bytes32 facilityId) external view returns (GeoFacility memory);

    /// @notice geoFacility of two facilities in one call (the two ends of an RTT measurement).
    function geoPair(bytes32 a, bytes32 b) external view returns (GeoFacility memory, GeoFacility memory);

    /// @notice Whether a facility is stale at this block, and why.
    function facilityStatus(bytes32 facilityId) external view returns (FacilityStatus memory);

    /// @notice Freshness, coordinates and domains of each facility, in one call.
    function selectionFacilities(bytes32[] calldata ids) external view returns (SelectionFacility[] memory);

    /// @notice selectionFacilities with the domains as interned indices (IndexedFacility): what
    ///         selection's transaction reads.
    function selectionFacilitiesIndexed(bytes32[] calldata ids) external view returns (IndexedFacility[] memory);

    /// @notice Every registered validator address.
    function validatorAddresses() external view returns (address[] memory);

    /// @notice How many validator registrations there have been (the last one's bondSeq).
    function bondCount() external view returns (uint64);

    /// @notice Validator and node records for the given addresses.
    function validatorRecords(address[] calldata validators) external view returns (ValidatorRecord[] memory);

    /// @notice validatorRecords with the hardware domain's interned index in `hardwareDomainId`.
    function validatorRecordsIndexed(address[] calldata validators) external view returns (ValidatorRecord[] memory);
}
