// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IRedundancyRegistry} from "./IRedundancyRegistry.sol";
import {RedundancyMath} from "./RedundancyMath.sol";
import {SelectorBase} from "./SelectorBase.sol";

/// @title SelectorGeography
/// @notice The committee selector's geography, run on the selector's storage: the selector
///         delegates every call it does not implement here. Two-sided signed RTT measurements,
///         the landmark discs they prove, the flags raised when they contradict claimed
///         coordinates, and their views.
/// @dev Every RTT is measured from both ends of one exchange and each end signs what it
///      measured (EIP-712, the registry's domain). A measurement binds a recent block hash
///      (within the policy's anchor age) and a per-direction strictly increasing `measuredAt`,
///      so it cannot be replayed. A pair's bound is the larger of the two directions' fresh
///      reports: one lying end can neither shrink it nor get an honest peer flagged. With one end
///      a landmark (an owner-fixed true position) the bound is a disc around the landmark that the
///      other end lies in. A flag records what contradicted the facility's claim (a landmark, or a
///      peer and the pair's RTT) and holds while the facility's current claim is still
///      contradicted by it. A pair contradiction flags only the end whose claim one of its own
///      fresh landmark discs already proves false, when exactly one is so proven. A flag is
///      cleared by a fresh consistent measurement of the same pair, or, for a flag a peer raised,
///      by a fresh landmark disc proving the peer's claim false: the facility's own, or the
///      peer's own while none of the facility's refutes its claim ({clearGeographyFlag}).
///      Called directly (not through the selector), the state-changing functions revert: this
///      contract's own storage is never used.
contract SelectorGeography is SelectorBase {
    address private immutable _self = address(this);

    /// @param registry_ the registry the selector reads (the selector checks it is the same)
    constructor(IRedundancyRegistry registry_) SelectorBase(registry_) {}

    modifier delegated() {
        if (address(this) == _self) revert SelectorNotDelegated();
        _;
    }

    // ---------------------------------------------------------------- policy

    /// @notice The diversity policy in force.
    function diversityPolicy() external view returns (RedundancyMath.DiversityPolicy memory) {
        return _policy;
    }

    /// @notice Replaces the diversity policy (applies from the next selection).
    /// @param policy committee size > 0; shares in basis points <= 10,000
    function setDiversityPolicy(RedundancyMath.DiversityPolicy calldata policy) external onlyOwner delegated {
        _setDiversityPolicy(policy);
    }

    /// @notice Replaces the geography policy.
    /// @param policy see {GeographyPolicy}
    function setGeographyPolicy(GeographyPolicy calldata policy) external onlyOwner delegated {
        _setGeographyPolicy(policy);
    }

    /// @notice The geography policy in force.
    function geographyPolicy() external view returns (GeographyPolicy memory) {
        return _geographyPolicy();
    }

    /// @notice The committee of `epoch` as it was selected and the registry's bondCount then,
    ///         if `epoch` is the current or the previous one (empty and 0 otherwise: epoch 0, not
    ///         yet selected, or older than the previous), and the current epoch: what the ledger
    ///         checks a batch by (a signer whose bondSeq is above `bonds` bonded after the
    ///         selection and weighs nothing).
    /// @param epoch the epoch
    function committeeAt(uint64 epoch)
        external
        view
        returns (uint64 current, uint64 bonds, address[] memory members, uint256[] memory stakes)
    {
        (members, stakes) = _committeeOf(epoch);
        current = _epoch;
        if (members.length != 0) bonds = epoch == current ? _bonds.current : _bonds.previous;
    }

    /// @notice The registry's bondCount when the first committee was selected (0 before): a
    ///         validator with a bondSeq at or below it is a candidate from the start; one bonded
    ///         later becomes one minEpochSeconds after it bonded (the bonding rule).
    function genesisBonds() external view returns (uint64) {
        return _bonds.genesis;
    }

    /// @notice Until when each validator is benched (0: never, or not now if in the past): a
    ///         validator whose ineligibility allowed an emergency selection is no candidate for
    ///         minEpochSeconds after it.
    /// @param validators the validator addresses
    function benchedUntil(address[] calldata validators) external view returns (uint256[] memory until) {
        uint256[] memory bench = _bench;
        until = new uint256[](validators.length);
        for (uint256 i = 0; i < validators.length; ++i) {
            until[i] = _benchedUntil(bench, validators[i]);
        }
    }

    /// @notice Fixes a landmark facility's true position (known to the owner, not claimed). A pair
    ///         with it proves a disc (and can flag) only with both ends' reports measured from
    ///         now on: a measurement taken before says nothing about where it stands now. Fixing
    ///         the same position again changes nothing of that.
    /// @param facilityId a registered facility
    /// @param latitudeE6 latitude in micro-degrees
    /// @param longitudeE6 longitude in micro-degrees
    function setLandmark(bytes32 facilityId, int32 latitudeE6, int32 longitudeE6) external onlyOwner delegated {
        if (registry.geoFacility(facilityId).attestor == address(0)) revert SelectorUnknownFacility(facilityId);
        if (latitudeE6 < -90_000_000 || latitudeE6 > 90_000_000 || longitudeE6 < -180_000_000 || longitudeE6 > 180_000_000)
        {
            revert SelectorInvalidCoordinates(latitudeE6, longitudeE6);
        }
        Landmark storage lm = _landmarks[facilityId];
        uint8 index = lm.index;
        if (index == 0) {
            if (_landmarkIds.length == MAX_LANDMARKS) revert SelectorTooManyLandmarks(MAX_LANDMARKS);
            _landmarkIds.push(facilityId);
            index = uint8(_landmarkIds.length);
        }
        // its own disc: radius 0; a pair with it proves a disc from reports measured since setAt,
        // which a new position resets (the same position again keeps it: nothing moved)
        uint40 setAt = lm.setAt;
        if (index != lm.index || lm.latitudeE6 != latitudeE6 || lm.longitudeE6 != longitudeE6) {
            setAt = uint40(block.timestamp);
        }
        _landmarks[facilityId] = Landmark(latitudeE6, longitudeE6, true, index, setAt);
        emit LandmarkSet(facilityId, index, latitudeE6, longitudeE6, setAt);
    }

    /// @notice Removes a landmark (its index stays reserved for it; discs around it stop counting).
    /// @param facilityId the landmark facility
    function removeLandmark(bytes32 facilityId) external onlyOwner delegated {
        Landmark storage lm = _landmarks[facilityId];
        if (!lm.set) revert SelectorNotLandmark(facilityId);
        lm.set = false;
        emit LandmarkRemoved(facilityId);
    }

    /// @notice A landmark's fixed position (set = false if the facility is no landmark).
    /// @param facilityId the facility
    function landmark(bytes32 facilityId) external view returns (Landmark memory) {
        return _landmarks[facilityId];
    }

    /// @notice Every facility that has been a landmark, by index - 1.
    function landmarkIds() external view returns (bytes32[] memory) {
        return _landmarkIds;
    }

    /// @notice Records one end's signed RTT measurement. Once both directions of the pair have a
    ///         fresh report, checks the pair's bound (the larger RTT) against the claimed
    ///         coordinates, or with a landmark records the disc it proves; clears a flag that a
    ///         fresh consistent measurement of the pair answers. A contradiction is announced
    ///         (GeographyContradicted) and left for {flagContradiction} to weigh and record, so that
    ///         relaying a measurement costs the same bounded gas whatever the peer claims: whoever
    ///         wants a liar flagged pays for the flags. Anyone may relay.
    /// @param domainSeparator the registry's EIP-712 domain separator the measurement was signed under
    /// @param m the measurement
    /// @param r signature r
    /// @param yParityAndS EIP-2098 compact s with the recovery bit on top
    /// @return outcome OUTCOME_RECORDED, OUTCOME_CONSISTENT or OUTCOME_CONTRADICTED
    function reportLatency(bytes32 domainSeparator, LatencyMeasurement calldata m, bytes32 r, bytes32 yParityAndS)
        external
        delegated
        returns (uint8 outcome)
    {
        bytes32 expected = _domain();
        if (domainSeparator != expected) revert SelectorWrongDomain(expected, domainSeparator);
        if (m.facilityId == m.peerFacilityId) revert SelectorSameFacility(m.facilityId);
        GeographyState memory geo = _geo;
        _checkShape(m, geo);
        (IRedundancyRegistry.GeoFacility memory a, IRedundancyRegistry.GeoFacility memory b) =
            registry.geoPair(m.facilityId, m.peerFacilityId);
        if (a.attestor == address(0)) revert SelectorUnknownFacility(m.facilityId);
        if (!a.active) revert SelectorFacilityInactive(m.facilityId);
        bytes32 digest = _typedDataDigest(expected, keccak256(abi.encode(LATENCY_TYPEHASH, m)));
        address signer = _recoverSigner(digest, r, yParityAndS);
        if (signer == address(0)) revert SelectorInvalidSignature();
        if (signer != a.attestor) revert SelectorSignerNotAttestor(m.facilityId, signer, a.attestor);
        if (b.attestor == address(0)) revert SelectorUnknownFacility(m.peerFacilityId);
        Landmark memory la = _landmarks[m.facilityId];
        Landmark memory lb = _landmarks[m.peerFacilityId];
        if (!la.set && !a.located) revert SelectorNoCoordinates(m.facilityId);
        if (!lb.set && !b.located) revert SelectorNoCoordinates(m.peerFacilityId);
        (uint32 otherRtt, uint40 otherAt) = _record(m);
        emit LatencyReported(m.facilityId, m.peerFacilityId, m.rttMicros, m.measuredAt, m.exchangeId);
        if (otherAt == 0 || uint256(otherAt) + geo.maxMeasurementAge < block.timestamp) return OUTCOME_RECORDED;
        uint32 bound = otherRtt > m.rttMicros ? otherRtt : m.rttMicros;
        if (la.set && lb.set) return OUTCOME_CONSISTENT; // two landmarks: both positions are facts
        uint40 since = otherAt < m.measuredAt ? otherAt : m.measuredAt;
        if (la.set || lb.set) {
            return la.set
                ? _landmarkPair(m.peerFacilityId, b, m.facilityId, la, bound, since, geo)
                : _landmarkPair(m.facilityId, a, m.peerFacilityId, lb, bound, since, geo);
        }
        uint256 lower = RedundancyMath.distanceLowerBoundM(a.latitudeE6, a.longitudeE6, b.latitudeE6, b.longitudeE6);
        if (lower <= RedundancyMath.rttDistanceBoundM(bound) + geo.toleranceM) {
            _clearAnswered(m.facilityId, m.peerFacilityId, geo);
            _clearAnswered(m.peerFacilityId, m.facilityId, geo);
            return OUTCOME_CONSISTENT;
        }
        if (m.facilityId < m.peerFacilityId) emit GeographyContradicted(m.facilityId, m.peerFacilityId, bound, lower);
        else emit GeographyContradicted(m.peerFacilityId, m.facilityId, bound, lower);
        return OUTCOME_CONTRADICTED;
    }

    /// @notice Records what a pair's fresh two-sided bound contradicts: a site whose claim lies
    ///         outside a landmark's disc is flagged; of two sites further apart than the bound
    ///         allows, only the one whose claim its own fresh landmark disc already proves false
    ///         is flagged when exactly one is so proven, otherwise each one that its own landmark
    ///         disc does not exonerate. A facility already flagged by other evidence that still
    ///         holds keeps that flag. Anyone may call (reportLatency announces each contradiction).
    /// @param a one facility of the pair
    /// @param b the other
    /// @return flagged how many facilities were flagged (1 or 2)
    function flagContradiction(bytes32 a, bytes32 b) external delegated returns (uint256 flagged) {
        if (a == b) revert SelectorSameFacility(a);
        GeographyState memory geo = _geo;
        Landmark memory la = _landmarks[a];
        Landmark memory lb = _landmarks[b];
        uint256 notBefore = la.set ? la.setAt : 0;
        if (lb.set && lb.setAt > notBefore) notBefore = lb.setAt;
        uint256 rtt = _pairRtt(a, b, geo.maxMeasurementAge, notBefore);
        if (rtt == RedundancyMath.UNMEASURED) revert SelectorPairNotMeasured(a, b);
        uint32 bound = uint32(rtt);
        (IRedundancyRegistry.GeoFacility memory fa, IRedundancyRegistry.GeoFacility memory fb) = registry.geoPair(a, b);
        if (la.set) (fa.latitudeE6, fa.longitudeE6) = (la.latitudeE6, la.longitudeE6);
        else if (!fa.located) revert SelectorNoCoordinates(a);
        if (lb.set) (fb.latitudeE6, fb.longitudeE6) = (lb.latitudeE6, lb.longitudeE6);
        else if (!fb.located) revert SelectorNoCoordinates(b);
        uint256 lower = RedundancyMath.distanceLowerBoundM(fa.latitudeE6, fa.longitudeE6, fb.latitudeE6, fb.longitudeE6);
        if ((la.set && lb.set) || lower <= RedundancyMath.rttDistanceBoundM(bound) + geo.toleranceM) {
            revert SelectorNoContradiction(a, b, bound, lower);
        }
        if (la.set) flagged = _flag(b, a, bound, lower);
        else if (lb.set) flagged = _flag(a, b, bound, lower);
        else flagged = _sitePair(a, fa, b, fb, bound, lower, geo);
        if (flagged == 0) revert SelectorAlreadyFlagged(a, b);
    }

    /// @dev The checks of a measurement that need no storage: RTT range, time, anchor.
    function _checkShape(LatencyMeasurement calldata m, GeographyState memory geo) private view {
        if (m.rttMicros < geo.minRttMicros || m.rttMicros > geo.maxRttMicros) {
            revert SelectorRttOutOfRange(m.rttMicros, geo.minRttMicros, geo.maxRttMicros);
        }
        if (m.measuredAt > block.timestamp + MAX_FUTURE_SKEW || uint256(m.measuredAt) + geo.maxMeasurementAge < block.timestamp)
        {
            revert SelectorStaleMeasurement(m.measuredAt, block.timestamp, geo.maxMeasurementAge);
        }
        if (m.anchorBlock >= block.number || block.number - m.anchorBlock > geo.maxAnchorAgeBlocks) {
            revert SelectorStaleAnchor(m.anchorBlock, block.number, geo.maxAnchorAgeBlocks);
        }
        bytes32 h = blockhash(m.anchorBlock);
        if (h != m.anchorHash) revert SelectorAnchorMismatch(m.anchorBlock, h, m.anchorHash);
    }

    /// @dev Stores this direction of the pair (refusing a report not newer than the stored one)
    ///      and returns the other direction's RTT and time.
    function _record(LatencyMeasurement calldata m) private returns (uint32 otherRtt, uint40 otherAt) {
        bool low = m.facilityId < m.peerFacilityId;
        bytes32 key = low ? _pairKey(m.facilityId, m.peerFacilityId) : _pairKey(m.peerFacilityId, m.facilityId);
        uint256 word = _pairs[key];
        uint256 mine = low ? word : word >> 72;
        uint256 other = low ? word >> 72 : word;
        uint40 last = uint40(mine >> 32);
        if (m.measuredAt <= last) {
            revert SelectorMeasurementReplayed(m.facilityId, m.peerFacilityId, m.measuredAt, last);
        }
        uint256 half = uint256(m.rttMicros) | (uint256(m.measuredAt) << 32);
        _pairs[key] = low ? (word & ~uint256(type(uint72).max)) | half : (word & type(uint72).max) | (half << 72);
        return (uint32(other), uint40(other >> 32));
    }

    /// @dev A site measured both ways with a landmark, both reports since its position was fixed
    ///      (else the pair proves nothing yet: recorded): the pair's word is the disc (nothing
    ///      more to store); announce it, then announce the contradiction if the site's claim lies
    ///      outside it, or clear a flag the landmark raised if it now lies inside.
    function _landmarkPair(
        bytes32 site,
        IRedundancyRegistry.GeoFacility memory s,
        bytes32 landmarkId,
        Landmark memory lm,
        uint32 bound,
        uint40 since,
        GeographyState memory geo
    ) private returns (uint8) {
        if (since < lm.setAt) return OUTCOME_RECORDED; // measured before the landmark stood there
        emit LandmarkDisc(site, landmarkId, bound, uint40(uint256(since) + geo.maxMeasurementAge));
        uint256 lower = RedundancyMath.distanceLowerBoundM(s.latitudeE6, s.longitudeE6, lm.latitudeE6, lm.longitudeE6);
        if (lower > RedundancyMath.rttDistanceBoundM(bound) + geo.toleranceM) {
            emit GeographyContradicted(site, landmarkId, bound, lower);
            return OUTCOME_CONTRADICTED;
        }
        _clearAnswered(site, landmarkId, geo);
        return OUTCOME_CONSISTENT;
    }

    /// @dev Two sites whose claims are further apart than the bound allows: flag only the one
    ///      whose claim its own fresh landmark disc already proves false when exactly one is so
    ///      proven; otherwise flag each one that its own landmark disc does not exonerate.
    function _sitePair(
        bytes32 idA,
        IRedundancyRegistry.GeoFacility memory a,
        bytes32 idB,
        IRedundancyRegistry.GeoFacility memory b,
        uint32 bound,
        uint256 lower,
        GeographyState memory geo
    ) private returns (uint256 flagged) {
        (bytes32 refutedA, bytes32 exoneratedA) = _ownDiscs(idA, a, b, bound, geo);
        (bytes32 refutedB, bytes32 exoneratedB) = _ownDiscs(idB, b, a, bound, geo);
        if ((refutedA == bytes32(0)) != (refutedB == bytes32(0))) {
            // one claim is already proven false by its own disc: the contradiction is its doing
            return refutedA != bytes32(0) ? _flag(idA, idB, bound, lower) : _flag(idB, idA, bound, lower);
        }
        if (exoneratedA == bytes32(0)) flagged = _flag(idA, idB, bound, lower);
        if (exoneratedB == bytes32(0)) flagged += _flag(idB, idA, bound, lower);
    }

    /// @dev Flags a facility (1) unless it is already flagged by this evidence with this bound,
    ///      or by other evidence that still holds (the first contradiction stands until it is
    ///      answered) (0).
    function _flag(bytes32 facilityId, bytes32 against, uint32 bound, uint256 lower) private returns (uint256) {
        GeoFlag storage f = _flags[facilityId];
        if (f.against == bytes32(0)) {
            ++_geo.flagCount;
        } else if (f.against == against) {
            if (f.rttMicros == bound) return 0;
        } else {
            IRedundancyRegistry.GeoFacility memory s = registry.geoFacility(facilityId);
            if (_holds(facilityId, f, s.latitudeE6, s.longitudeE6)) return 0;
        }
        f.against = against;
        f.rttMicros = bound;
        f.raisedAt = uint40(block.timestamp);
        emit GeographyFlagged(facilityId, against, bound, lower, uint40(block.timestamp));
        return 1;
    }

    /// @dev A consistent fresh measurement of the pair answers a flag the same counterpart raised.
    ///      `geo` is the state read at the call's start: reportLatency raises no flag, so its count
    ///      of flags can only have dropped since (a stale non-zero count costs one read, no more).
    function _clearAnswered(bytes32 facilityId, bytes32 counterpart, GeographyState memory geo) private {
        if (geo.flagCount == 0 || _flags[facilityId].against != counterpart) return;
        _deleteFlag(facilityId, counterpart, counterpart);
    }

    function _deleteFlag(bytes32 facilityId, bytes32 against, bytes32 by) private {
        delete _flags[facilityId];
        --_geo.flagCount;
        emit GeographyFlagCleared(facilityId, against, by);
    }

    /// @dev Facility s's fresh landmark discs against its own claim and a peer's, in landmark
    ///      order. refuting: the first disc s's claim lies outside of (plus tolerance): s's claim
    ///      is proven false. exonerating: the first disc that holds s's claim and proves the
    ///      peer's claim false: the peer lies within bound of s, so within (radius + bound) of
    ///      the landmark, and its claim is further than that (plus tolerance). Zero if none.
    function _ownDiscs(
        bytes32 id,
        IRedundancyRegistry.GeoFacility memory s,
        IRedundancyRegistry.GeoFacility memory peer,
        uint32 bound,
        GeographyState memory geo
    ) private view returns (bytes32 refuting, bytes32 exonerating) {
        uint256 count = _landmarkIds.length;
        uint256 reach = RedundancyMath.rttDistanceBoundM(bound) + geo.toleranceM;
        for (uint256 i = 0; i < count; ++i) {
            bytes32 lid = _landmarkIds[i];
            if (lid == id) continue;
            Landmark memory lm = _landmarks[lid];
            if (!lm.set) continue;
            uint256 rtt = _pairRtt(id, lid, geo.maxMeasurementAge, lm.setAt);
            if (rtt == RedundancyMath.UNMEASURED) continue; // no fresh disc
            uint256 radius = RedundancyMath.rttDistanceBoundM(rtt);
            uint256 own = RedundancyMath.distanceLowerBoundM(s.latitudeE6, s.longitudeE6, lm.latitudeE6, lm.longitudeE6);
            if (own > radius + geo.toleranceM) {
                if (refuting == bytes32(0)) refuting = lid;
                continue;
            }
            if (exonerating != bytes32(0)) continue;
            uint256 theirs =
                RedundancyMath.distanceLowerBoundM(peer.latitudeE6, peer.longitudeE6, lm.latitudeE6, lm.longitudeE6);
            if (theirs > radius + reach) exonerating = lid;
        }
    }

    /// @notice Clears a flag a peer raised, when the facility's own fresh landmark disc holds its
    ///         current claim and proves the peer's current claim false, or when the peer's own
    ///         fresh landmark disc proves the peer's current claim false while none of the
    ///         facility's proves its claim false. Anyone may call.
    /// @param facilityId the flagged facility
    function clearGeographyFlag(bytes32 facilityId) external delegated {
        GeoFlag memory f = _flags[facilityId];
        if (f.against == bytes32(0)) revert SelectorNotFlagged(facilityId);
        if (_landmarks[f.against].set) revert SelectorFlagByLandmark(facilityId, f.against);
        IRedundancyRegistry.GeoFacility memory s = registry.geoFacility(facilityId);
        IRedundancyRegistry.GeoFacility memory peer = registry.geoFacility(f.against);
        GeographyState memory geo = _geo;
        (bytes32 refuted, bytes32 lid) = _ownDiscs(facilityId, s, peer, f.rttMicros, geo);
        if (lid == bytes32(0) && refuted == bytes32(0)) (lid,) = _ownDiscs(f.against, peer, s, f.rttMicros, geo);
        if (lid == bytes32(0)) revert SelectorNotExonerated(facilityId, f.against);
        _deleteFlag(facilityId, f.against, lid);
    }

    /// @notice Both directions of a pair as stored: each end's latest RTT and when it measured it.
    /// @param a one facility
    /// @param b the other
    function latencyLink(bytes32 a, bytes32 b)
        public
        view
        returns (uint32 rttAB, uint40 measuredAtAB, uint32 rttBA, uint40 measuredAtBA)
    {
        uint256 word = a < b ? _pairs[_pairKey(a, b)] : _pairs[_pairKey(b, a)];
        uint256 ab = a < b ? word : word >> 72;
        uint256 ba = a < b ? word >> 72 : word;
        return (uint32(ab), uint40(ab >> 32), uint32(ba), uint40(ba >> 32));
    }

    /// @notice The pair's two-sided RTT: the larger of both directions when both are fresh.
    /// @return measured whether both directions have a fresh report
    /// @return rttMicros the larger of the two (0 if not measured)
    function pairRtt(bytes32 a, bytes32 b) public view returns (bool measured, uint32 rttMicros) {
        uint256 rtt = _pairRtt(a, b, _geo.maxMeasurementAge, 0);
        if (rtt == RedundancyMath.UNMEASURED) return (false, 0);
        return (true, uint32(rtt));
    }

    /// @notice A facility's fresh landmark discs: the fresh two-sided bound of its pair with each
    ///         set landmark, counted through validUntil (a landmark has its own, of radius 0, and
    ///         no other).
    /// @param facilityId the facility
    function discsOf(bytes32 facilityId) public view returns (Disc[] memory out) {
        uint256 count = _landmarkIds.length;
        out = new Disc[](count);
        uint256 found;
        uint256 maxAge = _geo.maxMeasurementAge;
        Landmark memory self = _landmarks[facilityId];
        for (uint256 i = 0; i < count; ++i) {
            bytes32 lid = _landmarkIds[i];
            Landmark memory lm = _landmarks[lid];
            if (!lm.set) continue;
            if (self.set) {
                if (lid != facilityId) continue;
                out[0] = Disc(lid, 0, type(uint32).max, 0);
                found = 1;
                break;
            }
            (uint32 ab, uint40 atAB, uint32 ba, uint40 atBA) = latencyLink(facilityId, lid);
            uint256 oldest = atAB < atBA ? atAB : atBA;
            if (oldest == 0 || oldest < lm.setAt || oldest + maxAge < block.timestamp) continue;
            uint32 rtt = ab > ba ? ab : ba;
            out[found] = Disc(lid, rtt, uint40(oldest + maxAge), RedundancyMath.rttDistanceBoundM(rtt));
            ++found;
        }
        // Assembly: shrinks the array's length to the entries filled (only ever lowers it).
        // solhint-disable-next-line no-inline-assembly
        assembly ("memory-safe") {
            mstore(out, found)
        }
    }

    /// @notice The separation that the two facilities' fresh landmark discs prove, in metres:
    ///         the largest dist(L1, L2) - r1 - r2 over their discs (0 when they prove none).
    function provenSeparationM(bytes32 a, bytes32 b) external view returns (uint256) {
        bytes32[] memory ids = new bytes32[](2);
        ids[0] = a;
        ids[1] = b;
        RedundancyMath.Geo memory geo = RedundancyMath.newGeo(ids);
        _loadDiscs(geo);
        return a == b ? 0 : RedundancyMath.provenSeparation(geo, 0, 1);
    }


    /// @notice A facility's flag record, and whether it holds now (its current claim is still
    ///         contradicted by what raised it).
    /// @param facilityId the facility
    function geographyFlag(bytes32 facilityId) external view returns (GeoFlag memory flag, bool holds) {
        flag = _flags[facilityId];
        if (flag.against != bytes32(0)) {
            IRedundancyRegistry.GeoFacility memory f = registry.geoFacility(facilityId);
            holds = _holds(facilityId, flag, f.latitudeE6, f.longitudeE6);
        }
    }

    /// @notice Whether a facility's geography is flagged (its current claim is contradicted).
    /// @param facilityId the facility
    function isGeographyFlagged(bytes32 facilityId) public view returns (bool) {
        GeoFlag memory flag = _flags[facilityId];
        if (flag.against == bytes32(0)) return false;
        IRedundancyRegistry.GeoFacility memory f = registry.geoFacility(facilityId);
        return _holds(facilityId, flag, f.latitudeE6, f.longitudeE6);
    }




}
