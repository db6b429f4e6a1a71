// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IRedundancyRegistry} from "./IRedundancyRegistry.sol";
import {RedundancyMath} from "./RedundancyMath.sol";
import {SignatureRecovery} from "./SignatureRecovery.sol";

/// @title CommitteeSelector
/// @notice Selects the validator committee under the owner's diversity policy, from validators
///         that are eligible by the registry's attested data alone, and exposes the redundancy
///         scores and configuration class of any validator set. Also holds the physical
///         geography check: signed RTT measurements that contradict two facilities' claimed
///         coordinates flag both, and flagged geography makes a facility's validators ineligible.
/// @dev Eligible: registered with stake; facility registered, active and not stale; node freshly
///      attested by that facility; facility's geography not flagged. A flag holds while the
///      facility's claimed coordinates are the ones it was raised against: a geography proof
///      with new coordinates clears it (and a fresh measurement may flag it again). Latency
///      measurements are signed under the registry's EIP-712 domain, not one of the selector's
///      own, so the selector inherits only the signature recovery of the signing base.
contract CommitteeSelector is SignatureRecovery, Ownable2Step {
    using RedundancyMath for RedundancyMath.Member[];

    /// @notice EIP-712 type hash of {LatencyMeasurement}.
    bytes32 public constant LATENCY_TYPEHASH =
        keccak256("LatencyMeasurement(bytes32 facilityId,bytes32 peerFacilityId,uint32 rttMicros,uint40 measuredAt)");

    /// @notice An RTT measurement signed (EIP-712, registry domain) by the measuring facility's attestor.
    struct LatencyMeasurement {
        bytes32 facilityId;
        bytes32 peerFacilityId;
        uint32 rttMicros;
        uint40 measuredAt;
    }

    /// @notice How strictly geography is checked, and how often a new committee may be selected.
    struct GeographyPolicy {
        uint32 toleranceM;
        uint32 maxMeasurementAge;
        uint32 minEpochSeconds;
    }

    struct Landmark {
        int32 latitudeE6;
        int32 longitudeE6;
        bool set;
    }

    /// @notice The RedundancyRegistry whose attested data selection reads.
    IRedundancyRegistry public immutable registry;

    RedundancyMath.DiversityPolicy private _policy;
    GeographyPolicy private _geoPolicy;
    uint64 private _epoch;
    uint40 private _epochStartedAt;
    uint256 private _committeeStake;
    uint256[] private _committee; // address | stake << 160
    mapping(bytes32 facilityId => bytes32 coordinatesHash) private _geoFlags;
    mapping(bytes32 facilityId => Landmark) private _landmarks;

    /// @notice Emitted when a committee is selected for a new epoch.
    event CommitteeSelected(
        uint64 indexed epoch, address[] members, uint256[] stakes, uint256 totalStake, uint32 score, uint8 weakest
    );
    /// @notice Emitted when the owner changes the diversity policy.
    event DiversityPolicyUpdated(RedundancyMath.DiversityPolicy policy);
    /// @notice Emitted when the owner changes the geography policy.
    event GeographyPolicyUpdated(GeographyPolicy policy);
    /// @notice Emitted when the owner fixes (or moves) a landmark facility's true position.
    event LandmarkSet(bytes32 indexed facilityId, int32 latitudeE6, int32 longitudeE6);
    /// @notice Emitted when the owner removes a landmark.
    event LandmarkRemoved(bytes32 indexed facilityId);
    /// @notice Emitted for every accepted RTT measurement.
    event LatencyReported(
        bytes32 indexed facilityId, bytes32 indexed peerFacilityId, uint32 rttMicros, uint40 measuredAt
    );
    /// @notice Emitted when a measurement contradicts two facilities' claimed coordinates.
    event GeographyFlagged(
        bytes32 indexed facilityId, bytes32 indexed peerFacilityId, uint32 rttMicros, uint256 distanceLowerBoundM
    );

    /// @notice Ownership cannot be renounced: a selector without an owner could never change its
    ///         diversity or geography policy again.
    error SelectorRenounceForbidden();
    /// @notice The policy cannot be met by the eligible validators (failure code, dimension).
    error SelectorPolicyUnmet(uint8 failure, uint8 dimension);
    /// @notice The epoch is too young to select a new committee.
    error SelectorEpochTooYoung(uint64 epoch, uint40 startedAt, uint32 minEpochSeconds);
    /// @notice A policy field is out of range.
    error SelectorInvalidPolicy(string field);
    /// @notice The measurement was signed under another EIP-712 domain.
    error SelectorWrongDomain(bytes32 expected, bytes32 given);
    /// @notice The signature is malformed (high s, bad v, or unrecoverable).
    error SelectorInvalidSignature();
    /// @notice The measurement's signer is not the measuring facility's attestor.
    error SelectorSignerNotAttestor(bytes32 facilityId, address signer, address attestor);
    /// @notice The measurement is older than the policy allows, or from the future.
    error SelectorStaleMeasurement(uint40 measuredAt, uint256 blockTimestamp, uint32 maxMeasurementAge);
    /// @notice A facility in the measurement has no claimed coordinates (and is no landmark).
    error SelectorNoCoordinates(bytes32 facilityId);
    /// @notice A measurement must be between two different facilities.
    error SelectorSameFacility(bytes32 facilityId);
    /// @notice Coordinates are out of range.
    error SelectorInvalidCoordinates(int32 latitudeE6, int32 longitudeE6);
    /// @notice The facility is not registered in the registry.
    error SelectorUnknownFacility(bytes32 facilityId);

    /// @param registry_ the RedundancyRegistry whose attested data selection reads
    /// @param policy the initial diversity policy
    /// @param geoPolicy the initial geography policy
    constructor(
        IRedundancyRegistry registry_,
        RedundancyMath.DiversityPolicy memory policy,
        GeographyPolicy memory geoPolicy
    ) Ownable(msg.sender) {
        registry = registry_;
        _setDiversityPolicy(policy);
        _geoPolicy = geoPolicy;
        emit GeographyPolicyUpdated(geoPolicy);
    }

    /// @notice Always reverts: the selector keeps an owner (ownership moves by two-step transfer).
    function renounceOwnership() public view override onlyOwner {
        revert SelectorRenounceForbidden();
    }

    // ---------------------------------------------------------------- policy

    /// @notice The diversity policy in force.
    function diversityPolicy() external view returns (RedundancyMath.DiversityPolicy memory) {
        return _policy;
    }

    /// @notice The geography policy in force.
    function geographyPolicy() external view returns (GeographyPolicy memory) {
        return _geoPolicy;
    }

    /// @notice Replaces the diversity policy (applies from the next selection).
    /// @param policy committee size > 0; shares in basis points <= 10,000
    function setDiversityPolicy(RedundancyMath.DiversityPolicy calldata policy) external onlyOwner {
        _setDiversityPolicy(policy);
    }

    /// @notice Replaces the geography policy.
    /// @param policy tolerance in metres, maximum measurement age and minimum epoch length in seconds
    function setGeographyPolicy(GeographyPolicy calldata policy) external onlyOwner {
        _geoPolicy = policy;
        emit GeographyPolicyUpdated(policy);
    }

    function _setDiversityPolicy(RedundancyMath.DiversityPolicy memory policy) private {
        if (policy.committeeSize == 0) revert SelectorInvalidPolicy("committeeSize");
        for (uint256 d = 0; d < RedundancyMath.DIMENSIONS; ++d) {
            if (policy.rules[d].maxShareBps > 10_000) revert SelectorInvalidPolicy("maxShareBps");
        }
        _policy = policy;
        emit DiversityPolicyUpdated(policy);
    }

    /// @notice Fixes a landmark facility's true position (known to the owner, not claimed).
    /// @param facilityId a registered facility
    /// @param latitudeE6 latitude in micro-degrees
    /// @param longitudeE6 longitude in micro-degrees
    function setLandmark(bytes32 facilityId, int32 latitudeE6, int32 longitudeE6) external onlyOwner {
        if (registry.facility(facilityId).attestor == address(0)) revert SelectorUnknownFacility(facilityId);
        if (latitudeE6 < -90_000_000 || latitudeE6 > 90_000_000 || longitudeE6 < -180_000_000 || longitudeE6 > 180_000_000)
        {
            revert SelectorInvalidCoordinates(latitudeE6, longitudeE6);
        }
        _landmarks[facilityId] = Landmark(latitudeE6, longitudeE6, true);
        emit LandmarkSet(facilityId, latitudeE6, longitudeE6);
    }

    /// @notice Removes a landmark.
    /// @param facilityId the landmark facility
    function removeLandmark(bytes32 facilityId) external onlyOwner {
        delete _landmarks[facilityId];
        emit LandmarkRemoved(facilityId);
    }

    /// @notice A landmark's fixed position (set = false if the facility is no landmark).
    /// @param facilityId the facility
    function landmark(bytes32 facilityId) external view returns (Landmark memory) {
        return _landmarks[facilityId];
    }

    // ------------------------------------------------------------- geography

    /// @notice Records a signed RTT measurement; flags both facilities if their claimed
    ///         coordinates are further apart than the RTT physically allows. Anyone may relay.
    /// @param domainSeparator the registry's EIP-712 domain separator the measurement was signed under
    /// @param m the measurement
    /// @param v recovery id (27/28)
    /// @param r signature r
    /// @param s signature s
    /// @return flagged whether the measurement flagged the pair
    function reportLatency(bytes32 domainSeparator, LatencyMeasurement calldata m, uint8 v, bytes32 r, bytes32 s)
        external
        returns (bool flagged)
    {
        bytes32 expected = registry.domainSeparator();
        if (domainSeparator != expected) revert SelectorWrongDomain(expected, domainSeparator);
        if (m.facilityId == m.peerFacilityId) revert SelectorSameFacility(m.facilityId);
        uint32 maxAge = _geoPolicy.maxMeasurementAge;
        if (m.measuredAt > block.timestamp + 60 || m.measuredAt + uint256(maxAge) < block.timestamp) {
            revert SelectorStaleMeasurement(m.measuredAt, block.timestamp, maxAge);
        }
        IRedundancyRegistry.FacilityView memory a = registry.facility(m.facilityId);
        if (a.attestor == address(0)) revert SelectorUnknownFacility(m.facilityId);
        bytes32 digest = _typedDataDigest(
            expected, keccak256(abi.encode(LATENCY_TYPEHASH, m.facilityId, m.peerFacilityId, m.rttMicros, m.measuredAt))
        );
        address signer = _recoverSigner(digest, v, r, s);
        if (signer == address(0)) revert SelectorInvalidSignature();
        if (signer != a.attestor) revert SelectorSignerNotAttestor(m.facilityId, signer, a.attestor);
        IRedundancyRegistry.FacilityView memory b = registry.facility(m.peerFacilityId);
        if (b.attestor == address(0)) revert SelectorUnknownFacility(m.peerFacilityId);
        (int32 latA, int32 lonA, bool landmarkA) = _position(m.facilityId, a);
        (int32 latB, int32 lonB, bool landmarkB) = _position(m.peerFacilityId, b);
        emit LatencyReported(m.facilityId, m.peerFacilityId, m.rttMicros, m.measuredAt);
        uint256 lower = RedundancyMath.distanceLowerBoundM(latA, lonA, latB, lonB);
        uint256 bound = uint256(m.rttMicros) * RedundancyMath.METRES_PER_RTT_MICROSECOND + _geoPolicy.toleranceM;
        if (lower <= bound) return false;
        if (!landmarkA) _geoFlags[m.facilityId] = keccak256(abi.encode(latA, lonA));
        if (!landmarkB) _geoFlags[m.peerFacilityId] = keccak256(abi.encode(latB, lonB));
        emit GeographyFlagged(m.facilityId, m.peerFacilityId, m.rttMicros, lower);
        return true;
    }

    /// @dev A landmark's fixed position, else the facility's claimed coordinates.
    function _position(bytes32 id, IRedundancyRegistry.FacilityView memory f)
        private
        view
        returns (int32 lat, int32 lon, bool isLandmark)
    {
        Landmark storage l = _landmarks[id];
        if (l.set) return (l.latitudeE6, l.longitudeE6, true);
        if (f.domains[1] == bytes32(0)) revert SelectorNoCoordinates(id); // no geography proof yet
        return (f.latitudeE6, f.longitudeE6, false);
    }

    /// @notice Whether a facility's geography is flagged (its current claim was contradicted).
    /// @param facilityId the facility
    function isGeographyFlagged(bytes32 facilityId) public view returns (bool) {
        bytes32 flag = _geoFlags[facilityId];
        if (flag == bytes32(0)) return false;
        IRedundancyRegistry.FacilityView memory f = registry.facility(facilityId);
        return flag == keccak256(abi.encode(f.latitudeE6, f.longitudeE6));
    }

    /// @notice The lower bound in metres on the distance between two claimed positions.
    function distanceLowerBoundM(int32 latA, int32 lonA, int32 latB, int32 lonB) external pure returns (uint256) {
        return RedundancyMath.distanceLowerBoundM(latA, lonA, latB, lonB);
    }

    // ------------------------------------------------------------ candidates

    struct _FacilityEntry {
        bool eligible;
        bytes32[7] domains;
    }

    /// @notice Every validator eligible now, with its stake and domain per dimension.
    function eligibleCandidates() public view returns (RedundancyMath.Member[] memory out) {
        IRedundancyRegistry.ValidatorRecord[] memory records =
            registry.validatorRecords(registry.validatorAddresses());
        (_FacilityEntry[] memory entries, uint256[] memory facilityOf) = _facilities(records);
        out = new RedundancyMath.Member[](records.length);
        uint256 count;
        for (uint256 i = 0; i < records.length; ++i) {
            IRedundancyRegistry.ValidatorRecord memory rec = records[i];
            if (rec.stake == 0 || rec.nodeFacilityId != rec.facilityId || rec.nodeValidUntil <= block.timestamp) {
                continue;
            }
            _FacilityEntry memory f = entries[facilityOf[i]];
            if (!f.eligible) continue;
            out[count++] = _member(rec.validator, rec.stake, f, rec.hardwareDomainId);
        }
        assembly ("memory-safe") {
            mstore(out, count)
        }
    }

    /// @dev The distinct facilities of the records (found through a hash table on the id's low
    ///      bits), fetched from the registry in one call, and which of them each record is at.
    function _facilities(IRedundancyRegistry.ValidatorRecord[] memory records)
        private
        view
        returns (_FacilityEntry[] memory entries, uint256[] memory facilityOf)
    {
        uint256 n = records.length;
        uint256 size = 2;
        while (size < 2 * n) size <<= 1;
        uint256[] memory table = new uint256[](size);
        bytes32[] memory ids = new bytes32[](n);
        facilityOf = new uint256[](n);
        uint256 count;
        for (uint256 i = 0; i < n; ++i) {
            bytes32 id = records[i].facilityId;
            uint256 slot = uint256(id) & (size - 1);
            while (true) {
                uint256 entry = table[slot];
                if (entry == 0) {
                    table[slot] = count + 1;
                    ids[count] = id;
                    facilityOf[i] = count++;
                    break;
                }
                if (ids[entry - 1] == id) {
                    facilityOf[i] = entry - 1;
                    break;
                }
                slot = (slot + 1) & (size - 1);
            }
        }
        assembly ("memory-safe") {
            mstore(ids, count)
        }
        IRedundancyRegistry.SelectionFacility[] memory fs = registry.selectionFacilities(ids);
        entries = new _FacilityEntry[](count);
        for (uint256 i = 0; i < count; ++i) {
            IRedundancyRegistry.SelectionFacility memory f = fs[i];
            bytes32 flag = _geoFlags[ids[i]];
            bool flagged = flag != bytes32(0) && flag == keccak256(abi.encode(f.latitudeE6, f.longitudeE6));
            _FacilityEntry memory e = entries[i];
            e.eligible = f.fresh && !flagged;
            e.domains[0] = ids[i];
            for (uint256 d = 1; d < 6; ++d) {
                e.domains[d] = f.domains[d];
            }
            if (flagged) {
                e.domains[1] = bytes32(0); // flagged geography counts as unknown (one shared bucket)
                e.domains[2] = bytes32(0);
            }
        }
    }

    function _member(address addr, uint256 stake, _FacilityEntry memory f, bytes32 hardware)
        private
        pure
        returns (RedundancyMath.Member memory m)
    {
        m.addr = addr;
        m.stake = stake;
        // Copy element by element: `m.domains = f.domains` would alias the facility entry's array
        // (memory to memory assigns a reference), so every member at a facility would end up
        // with the hardware domain of the last one built.
        for (uint256 d = 0; d < 6; ++d) {
            m.domains[d] = f.domains[d];
        }
        m.domains[6] = hardware;
    }

    // ------------------------------------------------------------- committee

    /// @notice Selects the committee for the next epoch from the eligible validators and stores
    ///         it; reverts with SelectorPolicyUnmet naming the dimension if the policy cannot be met.
    /// @return epoch the new epoch number
    function selectCommittee() external returns (uint64 epoch) {
        uint40 started = _epochStartedAt;
        uint32 minSeconds = _geoPolicy.minEpochSeconds;
        if (_epoch != 0 && block.timestamp < uint256(started) + minSeconds) {
            revert SelectorEpochTooYoung(_epoch, started, minSeconds);
        }
        RedundancyMath.Member[] memory candidates = eligibleCandidates();
        (RedundancyMath.Member[] memory committee, uint8 failure, uint8 dimension) =
            RedundancyMath.select(candidates, _policy);
        if (failure != RedundancyMath.FAIL_NONE) revert SelectorPolicyUnmet(failure, dimension);
        epoch = _epoch + 1;
        _epoch = epoch;
        _epochStartedAt = uint40(block.timestamp);
        uint256 n = committee.length;
        address[] memory members = new address[](n);
        uint256[] memory stakes = new uint256[](n);
        uint256 total;
        for (uint256 i = 0; i < n; ++i) {
            members[i] = committee[i].addr;
            stakes[i] = committee[i].stake;
            total += stakes[i];
            uint256 packed = uint256(uint160(members[i])) | (uint256(uint96(stakes[i])) << 160);
            if (i < _committee.length) _committee[i] = packed;
            else _committee.push(packed);
        }
        while (_committee.length > n) _committee.pop();
        _committeeStake = total;
        RedundancyMath.Scores memory s = committee.scores();
        emit CommitteeSelected(epoch, members, stakes, total, s.score, s.weakest);
    }

    /// @notice The current epoch, when it started, and its committee (members and stakes at selection).
    function currentCommittee()
        public
        view
        returns (uint64 epoch, uint40 startedAt, address[] memory members, uint256[] memory stakes)
    {
        uint256 n = _committee.length;
        members = new address[](n);
        stakes = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            uint256 packed = _committee[i];
            members[i] = address(uint160(packed));
            stakes[i] = packed >> 160;
        }
        return (_epoch, _epochStartedAt, members, stakes);
    }

    /// @notice Total stake of the current committee, as selected.
    function committeeStake() external view returns (uint256) {
        return _committeeStake;
    }

    /// @notice The current committee's members with their selected stake and current domains.
    function committeeMembers() public view returns (RedundancyMath.Member[] memory out) {
        (,, address[] memory members, uint256[] memory stakes) = currentCommittee();
        IRedundancyRegistry.ValidatorRecord[] memory records = registry.validatorRecords(members);
        (_FacilityEntry[] memory entries, uint256[] memory facilityOf) = _facilities(records);
        out = new RedundancyMath.Member[](members.length);
        for (uint256 i = 0; i < members.length; ++i) {
            out[i] = _member(members[i], stakes[i], entries[facilityOf[i]], records[i].hardwareDomainId);
        }
    }

    /// @notice Scores of the current committee (selected stakes, current attested domains).
    function currentScores() external view returns (RedundancyMath.Scores memory) {
        return committeeMembers().scores();
    }

    /// @notice Configuration class of the current committee given who is eligible now.
    function currentClass() external view returns (uint8) {
        return RedundancyMath.classify(committeeMembers(), eligibleCandidates(), _policy);
    }

    /// @notice What selectCommittee would select now, and whether the policy is met.
    function previewSelection()
        external
        view
        returns (RedundancyMath.Member[] memory committee, uint8 failure, uint8 dimension)
    {
        return RedundancyMath.select(eligibleCandidates(), _policy);
    }

    // ------------------------------------------------------------ pure views

    /// @notice Scores of any validator set.
    /// @param members stakes and domains per dimension
    function scoresOf(RedundancyMath.Member[] calldata members) external pure returns (RedundancyMath.Scores memory) {
        return RedundancyMath.scores(members);
    }

    /// @notice The committee deterministic selection makes of candidates under a policy.
    /// @param candidates eligible validators
    /// @param policy the diversity policy
    function selectFrom(RedundancyMath.Member[] calldata candidates, RedundancyMath.DiversityPolicy calldata policy)
        external
        pure
        returns (RedundancyMath.Member[] memory committee, uint8 failure, uint8 dimension)
    {
        return RedundancyMath.select(candidates, policy);
    }

    /// @notice Configuration class of a committee given the eligible candidates and policy.
    /// @param committee the committee
    /// @param candidates the eligible validators
    /// @param policy the diversity policy
    function classOf(
        RedundancyMath.Member[] calldata committee,
        RedundancyMath.Member[] calldata candidates,
        RedundancyMath.DiversityPolicy calldata policy
    ) external pure returns (uint8) {
        return RedundancyMath.classify(committee, candidates, policy);
    }
}
