// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IRedundancyRegistry} from "./IRedundancyRegistry.sol";
import {RedundancyMath} from "./RedundancyMath.sol";
import {SignatureRecovery} from "./SignatureRecovery.sol";

/// @title SelectorBase
/// @notice What the committee selector and its geography extension share: the types, storage,
///         events and errors of the selector, and the reads both need. {CommitteeSelector}
///         delegates the geography functions it does not implement to {SelectorGeography}, which
///         runs on the selector's storage; so both inherit exactly this storage and declare none
///         of their own (one layout: Ownable's owner, Ownable2Step's pending owner, then this).
abstract contract SelectorBase is SignatureRecovery, Ownable2Step {
    /// @notice EIP-712 type hash of {LatencyMeasurement}.
    bytes32 public constant LATENCY_TYPEHASH = keccak256(
        "LatencyMeasurement(bytes32 facilityId,bytes32 peerFacilityId,uint32 rttMicros,uint40 measuredAt,uint64 anchorBlock,bytes32 anchorHash,bytes32 exchangeId)"
    );

    /// @notice At most this many landmarks (each facility keeps one disc slot per landmark).
    uint256 public constant MAX_LANDMARKS = 8;
    /// @notice How far in the future a measurement's `measuredAt` may be (seconds of clock skew).
    uint256 public constant MAX_FUTURE_SKEW = 60;

    /// @notice reportLatency outcome: recorded; the other direction has no fresh report yet.
    uint8 public constant OUTCOME_RECORDED = 0;
    /// @notice reportLatency outcome: the pair is measured both ways and consistent.
    uint8 public constant OUTCOME_CONSISTENT = 1;
    /// @notice reportLatency outcome: the pair's bound contradicts a claim; nothing is flagged yet:
    ///         anyone may now call flagContradiction with the pair (GeographyContradicted says so).
    uint8 public constant OUTCOME_CONTRADICTED = 2;

    /// @notice One end's RTT measurement, signed (EIP-712, registry domain) by that facility's
    ///         attestor: the RTT it measured to the peer in exchange `exchangeId` (keccak256 of the
    ///         two ends' nonces), when, and a recent block (number and hash) it saw.
    struct LatencyMeasurement {
        bytes32 facilityId;
        bytes32 peerFacilityId;
        uint32 rttMicros;
        uint40 measuredAt;
        uint64 anchorBlock;
        bytes32 anchorHash;
        bytes32 exchangeId;
    }

    /// @notice How strictly geography is checked, and how often a new committee may be selected.
    /// @dev toleranceM: slack on claimed coordinates; maxMeasurementAge: how long a report counts
    ///      as fresh (seconds); minEpochSeconds: the shortest epoch; maxAnchorAgeBlocks: how many
    ///      blocks old a measurement's anchor may be (1..256); minRttMicros / maxRttMicros: the
    ///      RTTs a report may carry.
    struct GeographyPolicy {
        uint32 toleranceM;
        uint32 maxMeasurementAge;
        uint32 minEpochSeconds;
        uint32 maxAnchorAgeBlocks;
        uint32 minRttMicros;
        uint32 maxRttMicros;
    }

    /// @notice A landmark: a facility whose true position the owner fixed (index: 1-based slot;
    ///         setAt: when the position was last fixed: a pair with it proves a disc only with both
    ///         reports measured since, when the landmark truly stood there).
    struct Landmark {
        int32 latitudeE6;
        int32 longitudeE6;
        bool set;
        uint8 index;
        uint40 setAt;
    }

    /// @notice A fresh landmark disc: the facility lies within radiusM of the landmark.
    struct Disc {
        bytes32 landmarkId;
        uint32 rttMicros;
        uint40 validUntil;
        uint256 radiusM;
    }

    /// @notice A geography flag: the facility's claim was contradicted by `against` (a landmark,
    ///         or a peer facility) with a two-sided RTT of `rttMicros`.
    struct GeoFlag {
        bytes32 against;
        uint32 rttMicros;
        uint40 raisedAt;
    }

    /// @notice Committee slots reserved in advance (per buffer) at most: a larger committee
    ///         creates its further slots when first selected.
    uint256 public constant MAX_RESERVED_MEMBERS = 256;
    /// @dev The placeholder of a reserved committee slot (any non-zero word).
    uint256 private constant RESERVED_SLOT = 1;
    /// @notice The RedundancyRegistry whose attested data selection reads.
    IRedundancyRegistry public immutable registry;
    bytes32 internal immutable _registryDomain;
    uint256 internal immutable _chainId;

    /// @dev The geography policy's fields and, in the same word, how many facilities are
    ///      flagged: every report reads the policy first, so the count it checks next is a warm
    ///      read (100 gas) instead of a cold one (2,100).
    struct GeographyState {
        uint32 toleranceM;
        uint32 maxMeasurementAge;
        uint32 minEpochSeconds;
        uint32 maxAnchorAgeBlocks;
        uint32 minRttMicros;
        uint32 maxRttMicros;
        uint64 flagCount;
    }

    RedundancyMath.DiversityPolicy internal _policy;
    GeographyState internal _geo;
    uint64 internal _epoch;
    uint40 internal _epochStartedAt;
    /// @dev How many members the committee at `_committees[0]` / `_committees[1]` holds (the
    ///      arrays' own lengths are their reserved capacity); in the slot selection writes anyway.
    uint32 internal _committeeLengthEven;
    uint32 internal _committeeLengthOdd;
    uint256 internal _committeeStake;
    /// @dev The registry's bondCount when the current, the previous and the first committee
    ///      were selected (one word, written by every selection): a validator whose bondSeq is
    ///      above an epoch's count bonded after its committee was selected (the ledger weighs it
    ///      nothing for that epoch); one at or below the first count is a founding candidate,
    ///      any later one waits minEpochSeconds (CommitteeSelector's bonding rule).
    struct BondCounts {
        uint64 current;
        uint64 previous;
        uint64 genesis;
        bool reserved; // set at deployment, so that no selection writes the word from zero
    }

    BondCounts internal _bonds;
    /// @dev The committees of the current and the previous epoch as selected (address | stake
    ///      << 160), at key `epoch & 1`: the ledger checks the previous epoch's tail against its own
    ///      committee. Slots are never cleared: a selection overwrites a non-zero slot (5,000 gas
    ///      cold) instead of filling a fresh one (22,100), and setting the diversity policy fills
    ///      both buffers up to the committee size in advance (see CommitteeSelector).
    mapping(uint64 parity => uint256[]) internal _committees;
    /// @dev Unordered pair -> both directions: rtt lo->hi (32 bits), measuredAt lo->hi (40),
    ///      rtt hi->lo (32), measuredAt hi->lo (40), lo/hi ordering the ids as numbers.
    mapping(bytes32 pairKey => uint256) internal _pairs;
    mapping(bytes32 facilityId => Landmark) internal _landmarks;
    bytes32[] internal _landmarkIds; // index - 1 -> facility
    mapping(bytes32 facilityId => GeoFlag) internal _flags;
    /// @dev The bench: validators whose ineligibility allowed an emergency selection, each
    ///      (address | until << 160), no candidate until `until` (minEpochSeconds after that
    ///      selection): forcing a selection costs its trigger a minimum epoch out, however it made
    ///      itself ineligible. Selection reads the whole list once (usually empty: one word);
    ///      expired entries are dropped at the next emergency.
    uint256[] internal _bench;

    /// @notice Emitted when a committee is selected for a new epoch.
    event CommitteeSelected(
        uint64 indexed epoch,
        address[] members,
        uint256[] stakes,
        uint256 totalStake,
        uint32 score,
        uint8 weakest,
        uint40 startedAt
    );
    /// @notice Emitted, after CommitteeSelected, when a selection cut the previous epoch short
    ///         because `ineligibleMember` of its committee was no longer eligible (the emergency
    ///         rule: the minimum epoch age gives way only to that).
    event EmergencySelection(uint64 indexed epoch, address indexed ineligibleMember, uint40 previousStartedAt);
    /// @notice Emitted when the owner changes the diversity policy.
    event DiversityPolicyUpdated(RedundancyMath.DiversityPolicy policy);
    /// @notice Emitted when the owner changes the geography policy.
    event GeographyPolicyUpdated(GeographyPolicy policy);
    /// @notice Emitted when the owner fixes (or moves) a landmark facility's true position.
    event LandmarkSet(bytes32 indexed facilityId, uint8 index, int32 latitudeE6, int32 longitudeE6, uint40 setAt);
    /// @notice Emitted when the owner removes a landmark.
    event LandmarkRemoved(bytes32 indexed facilityId);
    /// @notice Emitted for every accepted RTT measurement (one direction of a pair).
    event LatencyReported(
        bytes32 indexed facilityId, bytes32 indexed peerFacilityId, uint32 rttMicros, uint40 measuredAt, bytes32 exchangeId
    );
    /// @notice Emitted when a fresh two-sided measurement with a landmark proves a disc (the pair's
    ///         bound; it counts while the pair is fresh: through validUntil).
    event LandmarkDisc(bytes32 indexed facilityId, bytes32 indexed landmarkId, uint32 rttMicros, uint40 validUntil);
    /// @notice Emitted by reportLatency when the pair's fresh two-sided bound contradicts the
    ///         claimed coordinates (facilityId: the site whose claim a landmark's disc excludes, or
    ///         the lower id of two sites): flagContradiction(facilityId, peerFacilityId) weighs it.
    event GeographyContradicted(
        bytes32 indexed facilityId, bytes32 indexed peerFacilityId, uint32 rttMicros, uint256 distanceLowerBoundM
    );
    /// @notice Emitted when a two-sided measurement contradicts a facility's claimed coordinates.
    event GeographyFlagged(
        bytes32 indexed facilityId,
        bytes32 indexed against,
        uint32 rttMicros,
        uint256 distanceLowerBoundM,
        uint40 raisedAt
    );
    /// @notice Emitted when a flag is cleared: by a fresh consistent measurement of the same pair
    ///         (`by` is the peer), or by the facility's landmark disc (`by` is the landmark).
    event GeographyFlagCleared(bytes32 indexed facilityId, bytes32 indexed against, bytes32 by);

    /// @notice Ownership cannot be renounced: a selector without an owner could never change its
    ///         diversity or geography policy again.
    error SelectorRenounceForbidden();
    /// @notice The policy cannot be met by the eligible validators (failure code, dimension).
    error SelectorPolicyUnmet(uint8 failure, uint8 dimension);
    /// @notice The epoch is too young to select a new committee.
    error SelectorEpochTooYoung(uint64 epoch, uint40 startedAt, uint32 minEpochSeconds);
    /// @notice The caller asked to replace epoch `expected`'s committee, but the epoch is already
    ///         `current` (another selection landed first: nothing to do).
    error SelectorEpochAdvanced(uint64 expected, uint64 current);
    /// @notice A policy field is out of range.
    error SelectorInvalidPolicy(string field);
    /// @notice The measurement was signed under another EIP-712 domain.
    error SelectorWrongDomain(bytes32 expected, bytes32 given);
    /// @notice The signature is malformed (high s, or unrecoverable).
    error SelectorInvalidSignature();
    /// @notice The measurement's signer is not the measuring facility's attestor.
    error SelectorSignerNotAttestor(bytes32 facilityId, address signer, address attestor);
    /// @notice The measurement is older than the policy allows, or from the future.
    error SelectorStaleMeasurement(uint40 measuredAt, uint256 blockTimestamp, uint32 maxMeasurementAge);
    /// @notice The measurement's anchor block is not one of the last maxAnchorAgeBlocks blocks.
    error SelectorStaleAnchor(uint64 anchorBlock, uint256 blockNumber, uint32 maxAnchorAgeBlocks);
    /// @notice The measurement's anchor hash is not the hash of its anchor block.
    error SelectorAnchorMismatch(uint64 anchorBlock, bytes32 blockHash, bytes32 anchorHash);
    /// @notice The direction already has a report at least as recent (a replay, or out of order).
    error SelectorMeasurementReplayed(
        bytes32 facilityId, bytes32 peerFacilityId, uint40 measuredAt, uint40 lastMeasuredAt
    );
    /// @notice The RTT is outside the policy's range.
    error SelectorRttOutOfRange(uint32 rttMicros, uint32 minRttMicros, uint32 maxRttMicros);
    /// @notice The measuring facility is deactivated: its attestor may not report.
    error SelectorFacilityInactive(bytes32 facilityId);
    /// @notice A facility in the measurement has no claimed coordinates (and is no landmark).
    error SelectorNoCoordinates(bytes32 facilityId);
    /// @notice A measurement must be between two different facilities.
    error SelectorSameFacility(bytes32 facilityId);
    /// @notice Coordinates are out of range.
    error SelectorInvalidCoordinates(int32 latitudeE6, int32 longitudeE6);
    /// @notice The facility is not registered in the registry.
    error SelectorUnknownFacility(bytes32 facilityId);
    /// @notice All MAX_LANDMARKS landmark slots are taken.
    error SelectorTooManyLandmarks(uint256 maxLandmarks);
    /// @notice The facility is not a landmark.
    error SelectorNotLandmark(bytes32 facilityId);
    /// @notice The facility's geography is not flagged.
    error SelectorNotFlagged(bytes32 facilityId);
    /// @notice The flag was raised by a landmark: it is a proof, and only a consistent claim or
    ///         a consistent fresh measurement with that landmark clears it.
    error SelectorFlagByLandmark(bytes32 facilityId, bytes32 landmarkId);
    /// @notice No fresh landmark disc of the facility holds its claim and proves the peer's claim false.
    error SelectorNotExonerated(bytes32 facilityId, bytes32 against);
    /// @notice The pair has no fresh report in one direction or both: nothing to weigh.
    error SelectorPairNotMeasured(bytes32 a, bytes32 b);
    /// @notice The pair's fresh two-sided bound is consistent with the claims (or both ends are
    ///         landmarks): it contradicts nothing.
    error SelectorNoContradiction(bytes32 a, bytes32 b, uint32 rttMicros, uint256 distanceLowerBoundM);
    /// @notice The contradiction is already recorded: every facility it would flag is flagged by
    ///         it, or by earlier evidence that still holds.
    error SelectorAlreadyFlagged(bytes32 a, bytes32 b);
    /// @notice The geography extension was called directly: it only runs on the selector's storage.
    error SelectorNotDelegated();
    /// @notice The geography extension given to the selector reads another registry.
    error SelectorGeographyMismatch(address registry, address geographyRegistry);

    /// @param registry_ the RedundancyRegistry whose attested data selection reads
    constructor(IRedundancyRegistry registry_) Ownable(msg.sender) {
        registry = registry_;
        _registryDomain = registry_.domainSeparator();
        _chainId = block.chainid;
    }

    /// @notice Always reverts: the selector keeps an owner (ownership moves by two-step transfer).
    function renounceOwnership() public view override onlyOwner {
        revert SelectorRenounceForbidden();
    }

    // ---------------------------------------------------------------- shared

    /// @dev The registry's EIP-712 domain separator (cached for the chain the selector was made on).
    function _domain() internal view returns (bytes32) {
        return block.chainid == _chainId ? _registryDomain : registry.domainSeparator();
    }

    function _setDiversityPolicy(RedundancyMath.DiversityPolicy memory policy) internal {
        if (policy.committeeSize == 0) revert SelectorInvalidPolicy("committeeSize");
        for (uint256 d = 0; d < RedundancyMath.DIMENSIONS; ++d) {
            if (policy.rules[d].maxShareBps > 10_000) revert SelectorInvalidPolicy("maxShareBps");
        }
        _policy = policy;
        emit DiversityPolicyUpdated(policy);
        uint256 reserve = policy.committeeSize < MAX_RESERVED_MEMBERS ? policy.committeeSize : MAX_RESERVED_MEMBERS;
        _reserveCommitteeSlots(_committees[0], reserve);
        _reserveCommitteeSlots(_committees[1], reserve);
    }

    /// @dev Grows a committee buffer to `count` slots holding a placeholder (never read: the
    ///      committee's length is kept apart), so that selection, which a keeper pays for and which
    ///      may be an emergency, overwrites slots instead of creating them. The owner pays the
    ///      creation once, when the committee size is set (the way Uniswap v3 pre-fills oracle
    ///      observation slots).
    function _reserveCommitteeSlots(uint256[] storage buffer, uint256 count) private {
        for (uint256 i = buffer.length; i < count; ++i) {
            buffer.push(RESERVED_SLOT);
        }
    }

    function _setGeographyPolicy(GeographyPolicy memory policy) internal {
        if (policy.maxMeasurementAge == 0) revert SelectorInvalidPolicy("maxMeasurementAge");
        if (policy.maxAnchorAgeBlocks == 0 || policy.maxAnchorAgeBlocks > 256) {
            revert SelectorInvalidPolicy("maxAnchorAgeBlocks");
        }
        if (policy.minRttMicros == 0 || policy.minRttMicros > policy.maxRttMicros) {
            revert SelectorInvalidPolicy("minRttMicros");
        }
        GeographyState storage g = _geo;
        (g.toleranceM, g.maxMeasurementAge, g.minEpochSeconds) =
            (policy.toleranceM, policy.maxMeasurementAge, policy.minEpochSeconds);
        (g.maxAnchorAgeBlocks, g.minRttMicros, g.maxRttMicros) =
            (policy.maxAnchorAgeBlocks, policy.minRttMicros, policy.maxRttMicros);
        emit GeographyPolicyUpdated(policy);
    }

    /// @dev The geography policy in force (one storage read).
    function _geographyPolicy() internal view returns (GeographyPolicy memory) {
        GeographyState memory g = _geo;
        return GeographyPolicy(
            g.toleranceM, g.maxMeasurementAge, g.minEpochSeconds, g.maxAnchorAgeBlocks, g.minRttMicros, g.maxRttMicros
        );
    }

    /// @dev The committee of `epoch` as selected (empty unless it is the current or the previous).
    function _committeeOf(uint64 epoch) internal view returns (address[] memory members, uint256[] memory stakes) {
        if (epoch == 0 || epoch > _epoch || epoch + 1 < _epoch) return (members, stakes);
        uint256[] storage stored = _committees[epoch & 1];
        uint256 n = epoch & 1 == 0 ? _committeeLengthEven : _committeeLengthOdd;
        members = new address[](n);
        stakes = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            uint256 packed = stored[i];
            members[i] = address(uint160(packed));
            stakes[i] = packed >> 160;
        }
    }

    /// @dev Until when `validator` is benched in `bench` (0 if it is not on it).
    function _benchedUntil(uint256[] memory bench, address validator) internal pure returns (uint256) {
        for (uint256 i = 0; i < bench.length; ++i) {
            if (address(uint160(bench[i])) == validator) return bench[i] >> 160;
        }
        return 0;
    }

    function _pairKey(bytes32 lo, bytes32 hi) internal pure returns (bytes32 key) {
        // Assembly: hashes the ordered pair in scratch space, without allocating.
        // solhint-disable-next-line no-inline-assembly
        assembly ("memory-safe") {
            mstore(0x00, lo)
            mstore(0x20, hi)
            key := keccak256(0x00, 0x40)
        }
    }

    /// @dev The pair's two-sided bound (the larger RTT) if both directions are fresh and were
    ///      measured at or after `notBefore`, else UNMEASURED.
    function _pairRtt(bytes32 a, bytes32 b, uint256 maxAge, uint256 notBefore) internal view returns (uint256) {
        uint256 word = a < b ? _pairs[_pairKey(a, b)] : _pairs[_pairKey(b, a)];
        uint256 oldest = uint40(word >> 32);
        uint256 other = uint40(word >> 104);
        if (other < oldest) oldest = other;
        if (oldest == 0 || oldest < notBefore || oldest + maxAge < block.timestamp) return RedundancyMath.UNMEASURED;
        uint256 x = uint32(word);
        uint256 y = uint32(word >> 72);
        return x > y ? x : y;
    }

    /// @dev Whether a flag still holds for the claim (lat, lon): the facility is no landmark, and
    ///      the claim is further from `against`'s position (a landmark's, else its current claim)
    ///      than the flag's RTT allows plus tolerance. A flag a landmark raised before its position
    ///      was last fixed was measured where it no longer stands: it holds until answered (a
    ///      fresh consistent measurement of the pair clears it).
    function _holds(bytes32 id, GeoFlag memory flag, int32 lat, int32 lon) internal view returns (bool) {
        if (_landmarks[id].set) return false;
        Landmark memory lm = _landmarks[flag.against];
        int32 plat = lm.latitudeE6;
        int32 plon = lm.longitudeE6;
        if (lm.set) {
            if (flag.raisedAt < lm.setAt) return true;
        } else {
            IRedundancyRegistry.GeoFacility memory p = registry.geoFacility(flag.against);
            if (!p.located) return false;
            (plat, plon) = (p.latitudeE6, p.longitudeE6);
        }
        uint256 lower = RedundancyMath.distanceLowerBoundM(lat, lon, plat, plon);
        return lower > RedundancyMath.rttDistanceBoundM(flag.rttMicros) + _geo.toleranceM;
    }

    /// @dev Fills geo's discs from storage. A facility's disc around a set landmark is the pair's
    ///      fresh two-sided bound (its pair word: nothing else is stored for a disc), both reports
    ///      measured since the landmark's position was fixed; a landmark has its own disc of
    ///      radius 0 and no other.
    function _loadDiscs(RedundancyMath.Geo memory geo) internal view {
        uint256 count = _landmarkIds.length;
        geo.landmarkLat = new int32[](count);
        geo.landmarkLon = new int32[](count);
        geo.landmarkDistance = new uint256[](count * count);
        bool[] memory set = new bool[](count);
        uint256[] memory setAt = new uint256[](count);
        for (uint256 i = 0; i < count; ++i) {
            Landmark memory lm = _landmarks[_landmarkIds[i]];
            (geo.landmarkLat[i], geo.landmarkLon[i], set[i], setAt[i]) =
                (lm.latitudeE6, lm.longitudeE6, lm.set, lm.setAt);
        }
        uint256[] memory scratch = new uint256[](count);
        uint256 maxAge = _geo.maxMeasurementAge;
        for (uint256 f = 0; f < geo.ids.length; ++f) {
            bytes32 id = geo.ids[f];
            uint256 found;
            uint256 own = _landmarks[id].index;
            if (own != 0 && set[own - 1]) {
                scratch[0] = (own - 1) << 128; // a landmark: its own disc of radius 0, no other
                found = 1;
            } else {
                for (uint256 i = 0; i < count; ++i) {
                    if (!set[i]) continue;
                    uint256 rtt = _pairRtt(id, _landmarkIds[i], maxAge, setAt[i]);
                    if (rtt == RedundancyMath.UNMEASURED) continue;
                    scratch[found] = (i << 128) | RedundancyMath.rttDistanceBoundM(rtt);
                    ++found;
                }
            }
            uint256[] memory discs = new uint256[](found);
            for (uint256 k = 0; k < found; ++k) {
                discs[k] = scratch[k];
            }
            geo.discs[f] = discs;
        }
        geo.discs[geo.ids.length] = new uint256[](0);
    }
}
