// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

/// @title RedundancyMath
/// @notice Scores, deterministic committee selection and distance bounds, in integer arithmetic
///         that the Python reference (redundancy/scores.py, selection.py, geodesy.py) matches bit
///         for bit. Read those modules' docstrings for the definitions.
library RedundancyMath {
    uint256 internal constant DIMENSIONS = 7;
    uint8 internal constant DIM_FACILITY = 0;

    uint8 internal constant FAIL_NONE = 0;
    uint8 internal constant FAIL_EMPTY = 1;
    uint8 internal constant FAIL_DISTINCT = 2;
    uint8 internal constant FAIL_SHARE = 3;
    uint8 internal constant FAIL_TOLERANCE = 4;
    /// @dev A rule failed after candidates were left out for the minimum proven separation.
    uint8 internal constant FAIL_SEPARATION = 5;
    /// @dev A rule failed after candidates were left out for the latency budget.
    uint8 internal constant FAIL_LATENCY = 6;

    /// @notice A pair RTT that is not known (no fresh two-sided measurement).
    uint256 internal constant UNMEASURED = type(uint256).max;

    /// @notice Stakes must be below 2^96 wei (79 billion ether): selection packs them into keys.
    uint256 internal constant MAX_STAKE = type(uint96).max;

    /// @notice A stake is too large for selection (at most MAX_STAKE).
    error RedundancyMathStakeTooLarge(address validator, uint256 stake);

    uint8 internal constant CLASS_EMPTY = 0;
    uint8 internal constant CLASS_SINGLE_SITE = 1;
    uint8 internal constant CLASS_UNPROTECTED = 2;
    uint8 internal constant CLASS_ACTIVE_PASSIVE = 3;
    uint8 internal constant CLASS_ACTIVE_ACTIVE = 4;

    /// @notice A validator as the scores see it.
    struct Member {
        address addr;
        uint256 stake;
        bytes32[7] domains;
    }

    struct DimensionScore {
        uint32 nakamoto;
        uint32 tolerance;
        uint32 hhiBps;
        bytes32 largestDomain;
        uint32 largestShareBps;
        uint32 domainCount;
    }

    struct Scores {
        uint256 totalStake;
        DimensionScore[7] dimensions;
        uint32 score;
        uint8 weakest;
    }

    struct DimensionRule {
        uint32 maxMembers;
        uint32 minDistinct;
        uint32 maxShareBps;
    }

    /// @notice The diversity policy. Besides the per-dimension rules: a minimum separation (metres)
    ///         that landmark discs must prove between any two committee facilities (0: no rule),
    ///         and a latency budget: the largest two-sided RTT (microseconds) allowed between the
    ///         leader's facility and the members completing its quorum (0: no rule).
    struct DiversityPolicy {
        uint32 committeeSize;
        uint32 minTolerance;
        DimensionRule[7] rules;
        uint32 minSeparationM;
        uint32 maxLeaderRttMicros;
    }

    /// @notice A landmark disc as the pure views take it: the landmark's position and the radius
    ///         (below 2^128 metres).
    struct DiscInput {
        int32 latitudeE6;
        int32 longitudeE6;
        uint256 radiusM;
    }

    /// @notice The fresh landmark discs of one facility (pure views).
    struct FacilityGeo {
        bytes32 facilityId;
        DiscInput[] discs;
    }

    /// @notice The two-sided RTT of a pair of facilities (pure views).
    struct PairRtt {
        bytes32 a;
        bytes32 b;
        uint32 rttMicros;
    }

    /// @notice What selection knows of the candidates' physical geography: the distinct
    ///         facilities, each one's fresh landmark discs (landmark index << 128 | radius in
    ///         metres), the landmarks' positions, a memo of landmark distances, and (pure views)
    ///         the measured pair RTTs. Built by the selector from storage, or from arguments.
    struct Geo {
        bytes32[] ids;
        uint256[] table;
        uint256[][] discs;
        int32[] landmarkLat;
        int32[] landmarkLon;
        uint256[] landmarkDistance;
        PairRtt[] pairs;
    }

    // ------------------------------------------------------------------ scores

    /// @dev Stake per distinct domain of one dimension, in order of first appearance. An
    ///      open-addressing table indexed by the domain id's low bits (ids are keccak hashes)
    ///      maps each domain to its slot in doms/sums. The checked total rules out overflow.
    function domainSums(Member[] memory members, uint256 dim)
        internal
        pure
        returns (bytes32[] memory doms, uint256[] memory sums, uint256 count)
    {
        uint256 n = members.length;
        uint256 total;
        for (uint256 i = 0; i < n; ++i) {
            total += members[i].stake;
        }
        uint256 size = 2;
        while (size < 2 * n) size <<= 1;
        uint256[] memory table = new uint256[](size); // slot -> index + 1 into doms/sums
        doms = new bytes32[](n);
        sums = new uint256[](n);
        // Assembly: open-addressed hash table summing stake per domain, without bounds checks the loop makes unnecessary.
        // solhint-disable-next-line no-inline-assembly
        assembly ("memory-safe") {
            let mask := sub(size, 1)
            let t := add(table, 0x20)
            let d := add(doms, 0x20)
            let w := add(sums, 0x20)
            let mp := add(members, 0x20)
            for { let i := 0 } lt(i, n) { i := add(i, 1) } {
                let m := mload(add(mp, shl(5, i)))
                let stake := mload(add(m, 0x20))
                let key := mload(add(mload(add(m, 0x40)), shl(5, dim)))
                let slot := and(key, mask)
                for {} 1 {} {
                    let entry := mload(add(t, shl(5, slot)))
                    if iszero(entry) {
                        mstore(add(t, shl(5, slot)), add(count, 1))
                        mstore(add(d, shl(5, count)), key)
                        mstore(add(w, shl(5, count)), stake)
                        count := add(count, 1)
                        break
                    }
                    if eq(mload(add(d, shl(5, sub(entry, 1)))), key) {
                        let p := add(w, shl(5, sub(entry, 1)))
                        mstore(p, add(mload(p), stake))
                        break
                    }
                    slot := and(add(slot, 1), mask)
                }
            }
        }
    }

    function dimensionScore(Member[] memory members, uint256 dim) internal pure returns (DimensionScore memory s) {
        uint256 mark;
        // Assembly: remembers the free-memory pointer so the scratch arrays below are released on return.
        // solhint-disable-next-line no-inline-assembly
        assembly ("memory-safe") {
            mark := mload(0x40) // scratch below is dropped on return; s was allocated before it
        }
        (bytes32[] memory doms, uint256[] memory sums, uint256 count) = domainSums(members, dim);
        uint256 total;
        uint256 top;
        bytes32 largest;
        uint256 squares;
        for (uint256 i = 0; i < count; ++i) {
            uint256 w = sums[i];
            total += w;
            squares += w * w;
            if (w > top || (w == top && top != 0 && doms[i] < largest)) {
                top = w;
                largest = doms[i];
            }
        }
        if (total != 0) {
            uint256 k = _nakamoto(sums, count, total);
            s.nakamoto = uint32(k);
            s.tolerance = uint32(k - 1);
            s.hhiBps = uint32((10_000 * squares) / (total * total));
            s.largestDomain = largest;
            s.largestShareBps = uint32((10_000 * top) / total);
            s.domainCount = uint32(count);
        }
        // Assembly: releases the scratch arrays (the pointer remembered above).
        // solhint-disable-next-line no-inline-assembly
        assembly ("memory-safe") {
            mstore(0x40, mark)
        }
    }

    function scores(Member[] memory members) internal pure returns (Scores memory out) {
        uint32 best = type(uint32).max;
        for (uint256 d = 0; d < DIMENSIONS; ++d) {
            DimensionScore memory s = dimensionScore(members, d);
            out.dimensions[d] = s;
            if (s.tolerance < best) {
                best = s.tolerance;
                out.weakest = uint8(d);
            }
        }
        out.score = best;
        for (uint256 i = 0; i < members.length; ++i) {
            out.totalStake += members[i].stake;
        }
    }

    // --------------------------------------------------------------- selection

    /// @dev Greedy selection by stake (ties by address) under per-domain member caps, the
    ///      minimum proven separation and the latency budget, then the policy check; returns the
    ///      committee, the failure code and the failing dimension. `leaderRow(geo, leader)` gives
    ///      each facility's two-sided RTT to facility `leader` (0 for itself, UNMEASURED if not
    ///      known); it is called only when the policy has a latency budget.
    function select(
        Member[] memory candidates,
        DiversityPolicy memory policy,
        Geo memory geo,
        function (Geo memory, uint256) view returns (uint256[] memory) leaderRow
    ) internal view returns (Member[] memory committee, uint8 failure, uint8 dimension) {
        uint256 n = candidates.length;
        // Order key: stake descending, then address ascending, in one word.
        uint256[] memory keys = new uint256[](n);
        uint256[] memory idx = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            uint256 stake = candidates[i].stake;
            if (stake > MAX_STAKE) revert RedundancyMathStakeTooLarge(candidates[i].addr, stake);
            keys[i] = ((MAX_STAKE - stake) << 160) | uint256(uint160(candidates[i].addr));
            idx[i] = i;
        }
        if (n > 1) _sortPairs(keys, idx, 0, n - 1);
        uint256 size = policy.committeeSize < n ? policy.committeeSize : n;
        Member[] memory chosen = new Member[](size);
        uint256 count;
        Physics memory p;
        if (n != 0 && (policy.minSeparationM != 0 || policy.maxLeaderRttMicros != 0)) {
            p = _physics(candidates, idx, policy, geo, leaderRow);
        }
        for (uint256 i = 0; i < n && count < size; ++i) {
            Member memory c = candidates[idx[i]];
            if (_breaksCap(chosen, count, c, policy)) continue;
            if (p.on && !_admit(p, geo, idx[i], c.stake, policy)) continue;
            chosen[count] = c;
            ++count;
        }
        // Assembly: shrinks the array's length to the entries filled (only ever lowers it).
        // solhint-disable-next-line no-inline-assembly
        assembly ("memory-safe") {
            mstore(chosen, count)
        }
        (failure, dimension) = checkPolicy(chosen, policy);
        if (failure != FAIL_NONE) {
            if (p.separationSkipped) failure = FAIL_SEPARATION;
            else if (p.latencySkipped) failure = FAIL_LATENCY;
        }
        committee = chosen;
    }

    /// @dev Selection's state for the two physical rules.
    struct Physics {
        bool on;
        uint256[] facilityOf; // candidate index -> facility index in geo
        uint256[] row; // facility index -> two-sided RTT to the leader's facility
        bool[] inCommittee; // facility index -> a member is there
        uint256[] facilities; // the committee's distinct facilities so far
        uint256 facilityCount;
        uint256 nearStake; // committee stake within the latency budget of the leader
        uint256 totalStake;
        bool separationSkipped;
        bool latencySkipped;
    }

    function _physics(
        Member[] memory candidates,
        uint256[] memory idx,
        DiversityPolicy memory policy,
        Geo memory geo,
        function (Geo memory, uint256) view returns (uint256[] memory) leaderRow
    ) private view returns (Physics memory p) {
        uint256 n = candidates.length;
        p.on = true;
        p.facilityOf = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            p.facilityOf[i] = indexOf(geo, candidates[i].domains[DIM_FACILITY]);
        }
        uint256 f = geo.ids.length + 1; // the last index: a facility the builder did not know
        p.inCommittee = new bool[](f);
        p.facilities = new uint256[](f);
        if (policy.maxLeaderRttMicros != 0) p.row = leaderRow(geo, p.facilityOf[idx[0]]);
    }

    /// @dev Whether a candidate (that breaks no cap) may join: a facility new to the committee
    ///      must be proven separated from every committee facility, and a member beyond the
    ///      leader's latency budget may join only while the stake within it stays above two
    ///      thirds. Records which rule left a candidate out.
    function _admit(Physics memory p, Geo memory geo, uint256 candidate, uint256 stake, DiversityPolicy memory policy)
        private
        pure
        returns (bool)
    {
        uint256 f = p.facilityOf[candidate];
        bool isNew = !p.inCommittee[f];
        if (policy.minSeparationM != 0 && isNew) {
            for (uint256 j = 0; j < p.facilityCount; ++j) {
                if (!separatedBy(geo, f, p.facilities[j], policy.minSeparationM)) {
                    p.separationSkipped = true;
                    return false;
                }
            }
        }
        bool near = true;
        if (policy.maxLeaderRttMicros != 0) {
            near = p.row[f] <= policy.maxLeaderRttMicros;
            if (!near && 3 * p.nearStake <= 2 * (p.totalStake + stake)) {
                p.latencySkipped = true;
                return false;
            }
        }
        if (isNew) {
            p.inCommittee[f] = true;
            p.facilities[p.facilityCount] = f;
            ++p.facilityCount;
        }
        if (near) p.nearStake += stake;
        p.totalStake += stake;
        return true;
    }

    /// @dev The index of a facility in geo (geo.ids.length if absent: no discs, no RTTs).
    function indexOf(Geo memory geo, bytes32 id) internal pure returns (uint256) {
        uint256[] memory table = geo.table;
        uint256 mask = table.length - 1;
        uint256 slot = uint256(id) & mask;
        while (true) {
            uint256 entry = table[slot];
            if (entry == 0) return geo.ids.length;
            if (geo.ids[entry - 1] == id) return entry - 1;
            slot = (slot + 1) & mask;
        }
        return geo.ids.length; // unreachable
    }

    /// @dev A Geo over the distinct facilities of `ids` (duplicates allowed), with an empty disc
    ///      list each and no landmarks; the builder fills in what it knows.
    function newGeo(bytes32[] memory ids) internal pure returns (Geo memory geo) {
        uint256 n = ids.length;
        uint256 size = 2;
        while (size < 2 * n) size <<= 1;
        geo.table = new uint256[](size);
        geo.ids = new bytes32[](n);
        uint256 count;
        for (uint256 i = 0; i < n; ++i) {
            bytes32 id = ids[i];
            uint256 slot = uint256(id) & (size - 1);
            while (true) {
                uint256 entry = geo.table[slot];
                if (entry == 0) {
                    geo.table[slot] = count + 1;
                    geo.ids[count] = id;
                    ++count;
                    break;
                }
                if (geo.ids[entry - 1] == id) break;
                slot = (slot + 1) & (size - 1);
            }
        }
        bytes32[] memory distinct = geo.ids;
        // Assembly: shrinks the array's length to the entries filled (only ever lowers it).
        // solhint-disable-next-line no-inline-assembly
        assembly ("memory-safe") {
            mstore(distinct, count)
        }
        geo.discs = new uint256[][](count + 1); // the last: facilities the builder did not know
    }

    /// @dev Whether the landmark discs of facilities f and g prove them at least `min` metres
    ///      apart: some pair of discs with dist(L1, L2) - r1 - r2 >= min (see geodesy.py).
    function separatedBy(Geo memory geo, uint256 f, uint256 g, uint256 min) internal pure returns (bool) {
        uint256[] memory a = geo.discs[f];
        uint256[] memory b = geo.discs[g];
        for (uint256 i = 0; i < a.length; ++i) {
            uint256 la = a[i] >> 128;
            uint256 ra = uint128(a[i]);
            for (uint256 j = 0; j < b.length; ++j) {
                uint256 d = landmarkDistance(geo, la, b[j] >> 128);
                uint256 reach = ra + uint128(b[j]);
                if (d > reach && d - reach >= min) return true;
            }
        }
        return false;
    }

    /// @dev The lower bound on the distance between two landmarks, memoised in geo.
    function landmarkDistance(Geo memory geo, uint256 i, uint256 j) internal pure returns (uint256 d) {
        uint256 count = geo.landmarkLat.length;
        uint256 k = i * count + j;
        d = geo.landmarkDistance[k];
        if (d != 0) return d - 1;
        d = distanceLowerBoundM(geo.landmarkLat[i], geo.landmarkLon[i], geo.landmarkLat[j], geo.landmarkLon[j]);
        geo.landmarkDistance[k] = d + 1;
        geo.landmarkDistance[j * count + i] = d + 1;
    }

    /// @dev The proven separation of two disc lists: max(0, dist(L1, L2) - r1 - r2) over pairs.
    function provenSeparation(Geo memory geo, uint256 f, uint256 g) internal pure returns (uint256 best) {
        uint256[] memory a = geo.discs[f];
        uint256[] memory b = geo.discs[g];
        for (uint256 i = 0; i < a.length; ++i) {
            for (uint256 j = 0; j < b.length; ++j) {
                uint256 d = landmarkDistance(geo, a[i] >> 128, b[j] >> 128);
                uint256 reach = uint128(a[i]) + uint128(b[j]);
                if (d > reach && d - reach > best) best = d - reach;
            }
        }
    }

    function _breaksCap(Member[] memory chosen, uint256 count, Member memory c, DiversityPolicy memory policy)
        private
        pure
        returns (bool)
    {
        for (uint256 d = 0; d < DIMENSIONS; ++d) {
            uint32 cap = policy.rules[d].maxMembers;
            if (cap == 0) continue;
            bytes32 dom = c.domains[d];
            uint256 same;
            for (uint256 j = 0; j < count; ++j) {
                if (chosen[j].domains[d] == dom) ++same;
            }
            if (same >= cap) return true;
        }
        return false;
    }

    function checkPolicy(Member[] memory members, DiversityPolicy memory policy)
        internal
        pure
        returns (uint8 failure, uint8 dimension)
    {
        if (members.length == 0) return (FAIL_EMPTY, DIM_FACILITY);
        uint256 total;
        for (uint256 i = 0; i < members.length; ++i) {
            total += members[i].stake;
        }
        for (uint256 d = 0; d < DIMENSIONS; ++d) {
            DimensionRule memory rule = policy.rules[d];
            if (rule.minDistinct == 0 && rule.maxShareBps == 0) continue;
            (, uint256[] memory sums, uint256 count) = domainSums(members, d);
            if (count < rule.minDistinct) return (FAIL_DISTINCT, uint8(d));
            if (rule.maxShareBps != 0) {
                uint256 top;
                for (uint256 i = 0; i < count; ++i) {
                    if (sums[i] > top) top = sums[i];
                }
                if (10_000 * top > uint256(rule.maxShareBps) * total) return (FAIL_SHARE, uint8(d));
            }
        }
        if (policy.minTolerance != 0) {
            Scores memory s = scores(members);
            if (s.score < policy.minTolerance) return (FAIL_TOLERANCE, s.weakest);
        }
        return (FAIL_NONE, DIM_FACILITY);
    }

    /// @dev Configuration class of a committee given the eligible candidates (see selection.py).
    function classify(
        Member[] memory committee,
        Member[] memory candidates,
        DiversityPolicy memory policy,
        Geo memory geo,
        function (Geo memory, uint256) view returns (uint256[] memory) leaderRow
    ) internal view returns (uint8) {
        (bytes32[] memory facilities, uint256[] memory sums, uint256 count) = domainSums(committee, DIM_FACILITY);
        uint256 total;
        for (uint256 i = 0; i < count; ++i) total += sums[i];
        if (total == 0) return CLASS_EMPTY;
        if (count == 1) return CLASS_SINGLE_SITE;
        if (dimensionScore(committee, DIM_FACILITY).tolerance >= 1) return CLASS_ACTIVE_ACTIVE;
        for (uint256 i = 0; i < count; ++i) {
            if (3 * sums[i] < total) continue;
            (, uint8 failure,) = select(_without(candidates, facilities[i]), policy, geo, leaderRow);
            if (failure != FAIL_NONE) return CLASS_UNPROTECTED;
        }
        return CLASS_ACTIVE_PASSIVE;
    }

    function _without(Member[] memory candidates, bytes32 facility) private pure returns (Member[] memory out) {
        out = new Member[](candidates.length);
        uint256 count;
        for (uint256 i = 0; i < candidates.length; ++i) {
            if (candidates[i].domains[DIM_FACILITY] != facility) {
                out[count] = candidates[i];
                ++count;
            }
        }
        // Assembly: shrinks the array's length to the entries filled (only ever lowers it).
        // solhint-disable-next-line no-inline-assembly
        assembly ("memory-safe") {
            mstore(out, count)
        }
    }

    // ----------------------------------------------------------------- sorting

    /// @dev Sorts keys[lo..hi] ascending, moving vals alongside: quicksort with Hoare's partition
    ///      around the lower-middle element, which keeps lo <= j < hi, so both sides shrink and no
    ///      index leaves [lo, hi]. Callers pass hi < length; the assembly skips bounds checks.
    function _sortPairs(uint256[] memory keys, uint256[] memory vals, uint256 lo, uint256 hi) private pure {
        while (lo < hi) {
            uint256 j;
            // Assembly: in-place quicksort without bounds checks (callers pass hi < length).
            // solhint-disable-next-line no-inline-assembly
            assembly ("memory-safe") {
                let k := add(keys, 0x20)
                let v := add(vals, 0x20)
                let pivot := mload(add(k, shl(5, add(lo, shr(1, sub(hi, lo))))))
                let i := lo
                j := hi
                for {} 1 {} {
                    for {} lt(mload(add(k, shl(5, i))), pivot) {} { i := add(i, 1) }
                    for {} gt(mload(add(k, shl(5, j))), pivot) {} { j := sub(j, 1) }
                    if iszero(lt(i, j)) { break }
                    let pi := add(k, shl(5, i))
                    let pj := add(k, shl(5, j))
                    let t := mload(pi)
                    mstore(pi, mload(pj))
                    mstore(pj, t)
                    pi := add(v, shl(5, i))
                    pj := add(v, shl(5, j))
                    t := mload(pi)
                    mstore(pi, mload(pj))
                    mstore(pj, t)
                    i := add(i, 1)
                    j := sub(j, 1)
                }
            }
            if (j - lo < hi - j) {
                _sortPairs(keys, vals, lo, j);
                lo = j + 1;
            } else {
                _sortPairs(keys, vals, j + 1, hi);
                hi = j;
            }
        }
    }

    /// @dev The fewest domains whose summed stake reaches a third of `total` (the sum of
    ///      `a[0..count)`, non-zero): the largest first, as sorting descending and counting would
    ///      give, found by quickselect instead of a sort. Each round partitions the range still
    ///      undecided three ways around its middle value: the part above it, if it reaches the
    ///      third with what is taken, holds the answer; else it is all taken, then as many equal
    ///      values as are needed (they are interchangeable), then the part below. Expected linear
    ///      time, against a sort's n log n (a quarter of scores() for 100 members). Reorders `a`.
    // Six lines over the limit: the partition loop and the decision after it share their locals.
    // solhint-disable-next-line function-max-lines
    function _nakamoto(uint256[] memory a, uint256 count, uint256 total) private pure returns (uint256 k) {
        // Assembly: in-place three-way partitions without bounds checks (all indices < count).
        // solhint-disable-next-line no-inline-assembly
        assembly ("memory-safe") {
            let base := add(a, 0x20)
            let lo := 0
            let hi := count // the undecided range is [lo, hi)
            let acc := 0 // stake taken so far (3 * acc < total throughout)
            for {} lt(lo, hi) {} {
                let p := mload(add(base, shl(5, add(lo, shr(1, sub(hi, lo))))))
                let l := lo // [lo, l) above p, [l, i) equal, [g, hi) below
                let i := lo
                let g := hi
                let above := 0
                for {} lt(i, g) {} {
                    let pi := add(base, shl(5, i))
                    let v := mload(pi)
                    switch gt(v, p)
                    case 1 {
                        let pl := add(base, shl(5, l))
                        mstore(pi, mload(pl))
                        mstore(pl, v)
                        above := add(above, v)
                        l := add(l, 1)
                        i := add(i, 1)
                    }
                    default {
                        switch lt(v, p)
                        case 1 {
                            g := sub(g, 1)
                            let pg := add(base, shl(5, g))
                            mstore(pi, mload(pg))
                            mstore(pg, v)
                        }
                        default { i := add(i, 1) }
                    }
                }
                switch iszero(lt(mul(3, add(acc, above)), total))
                case 1 { hi := l } // the answer lies among the values above p
                default {
                    acc := add(acc, above)
                    k := add(k, sub(l, lo))
                    let equal := mul(sub(g, l), p)
                    if iszero(lt(mul(3, add(acc, equal)), total)) {
                        // the fewest copies of p that reach the third (p > 0 here)
                        let p3 := mul(3, p)
                        k := add(k, div(add(sub(total, mul(3, acc)), sub(p3, 1)), p3))
                        lo := hi
                    }
                    if lt(lo, hi) {
                        acc := add(acc, equal)
                        k := add(k, sub(g, l))
                        lo := g
                    }
                }
            }
        }
    }

    // ----------------------------------------------------------------- geodesy

    int256 internal constant SCALE = 1e18;
    int256 internal constant PI_E18 = 3_141_592_653_589_793_238;
    uint256 internal constant POLAR_RADIUS_M = 6_356_752;
    uint256 internal constant METRES_PER_RTT_MICROSECOND = 100;

    function _radians(int32 degreesE6) private pure returns (int256) {
        return (int256(degreesE6) * PI_E18) / 180_000_000;
    }

    // The series below are the 15-term Taylor series of geodesy.py, unrolled, each term
    // -(((term * x) / 1e18) * x) / (1e18 * k * (k + 1)) with every division truncating toward
    // zero (sdiv, as Solidity's `/` on int256). |x| <= pi * 1e18, so no product exceeds 2^130
    // and nothing can overflow: the assembly only skips checks that could never fire.

    function _sin(int256 x) private pure returns (int256 total) {
        // Assembly: Taylor series whose terms cannot overflow (see the comment above); checks skipped.
        // solhint-disable-next-line no-inline-assembly
        assembly ("memory-safe") {
            let term := x
            total := x
            term := sub(0, sdiv(mul(sdiv(mul(term, x), 1000000000000000000), x), 6000000000000000000))
            total := add(total, term)
            term := sub(0, sdiv(mul(sdiv(mul(term, x), 1000000000000000000), x), 20000000000000000000))
            total := add(total, term)
            term := sub(0, sdiv(mul(sdiv(mul(term, x), 1000000000000000000), x), 42000000000000000000))
            total := add(total, term)
            term := sub(0, sdiv(mul(sdiv(mul(term, x), 1000000000000000000), x), 72000000000000000000))
            total := add(total, term)
            term := sub(0, sdiv(mul(sdiv(mul(term, x), 1000000000000000000), x), 110000000000000000000))
            total := add(total, term)
            term := sub(0, sdiv(mul(sdiv(mul(term, x), 1000000000000000000), x), 156000000000000000000))
            total := add(total, term)
            term := sub(0, sdiv(mul(sdiv(mul(term, x), 1000000000000000000), x), 210000000000000000000))
            total := add(total, term)
            term := sub(0, sdiv(mul(sdiv(mul(term, x), 1000000000000000000), x), 272000000000000000000))
            total := add(total, term)
            term := sub(0, sdiv(mul(sdiv(mul(term, x), 1000000000000000000), x), 342000000000000000000))
            total := add(total, term)
            term := sub(0, sdiv(mul(sdiv(mul(term, x), 1000000000000000000), x), 420000000000000000000))
            total := add(total, term)
            term := sub(0, sdiv(mul(sdiv(mul(term, x), 1000000000000000000), x), 506000000000000000000))
            total := add(total, term)
            term := sub(0, sdiv(mul(sdiv(mul(term, x), 1000000000000000000), x), 600000000000000000000))
            total := add(total, term)
            term := sub(0, sdiv(mul(sdiv(mul(term, x), 1000000000000000000), x), 702000000000000000000))
            total := add(total, term)
            term := sub(0, sdiv(mul(sdiv(mul(term, x), 1000000000000000000), x), 812000000000000000000))
            total := add(total, term)
        }
    }

    function _cos(int256 x) private pure returns (int256 total) {
        // Assembly: Taylor series whose terms cannot overflow (see the comment above); checks skipped.
        // solhint-disable-next-line no-inline-assembly
        assembly ("memory-safe") {
            let term := 1000000000000000000
            total := term
            term := sub(0, sdiv(mul(sdiv(mul(term, x), 1000000000000000000), x), 2000000000000000000))
            total := add(total, term)
            term := sub(0, sdiv(mul(sdiv(mul(term, x), 1000000000000000000), x), 12000000000000000000))
            total := add(total, term)
            term := sub(0, sdiv(mul(sdiv(mul(term, x), 1000000000000000000), x), 30000000000000000000))
            total := add(total, term)
            term := sub(0, sdiv(mul(sdiv(mul(term, x), 1000000000000000000), x), 56000000000000000000))
            total := add(total, term)
            term := sub(0, sdiv(mul(sdiv(mul(term, x), 1000000000000000000), x), 90000000000000000000))
            total := add(total, term)
            term := sub(0, sdiv(mul(sdiv(mul(term, x), 1000000000000000000), x), 132000000000000000000))
            total := add(total, term)
            term := sub(0, sdiv(mul(sdiv(mul(term, x), 1000000000000000000), x), 182000000000000000000))
            total := add(total, term)
            term := sub(0, sdiv(mul(sdiv(mul(term, x), 1000000000000000000), x), 240000000000000000000))
            total := add(total, term)
            term := sub(0, sdiv(mul(sdiv(mul(term, x), 1000000000000000000), x), 306000000000000000000))
            total := add(total, term)
            term := sub(0, sdiv(mul(sdiv(mul(term, x), 1000000000000000000), x), 380000000000000000000))
            total := add(total, term)
            term := sub(0, sdiv(mul(sdiv(mul(term, x), 1000000000000000000), x), 462000000000000000000))
            total := add(total, term)
            term := sub(0, sdiv(mul(sdiv(mul(term, x), 1000000000000000000), x), 552000000000000000000))
            total := add(total, term)
            term := sub(0, sdiv(mul(sdiv(mul(term, x), 1000000000000000000), x), 650000000000000000000))
            total := add(total, term)
            term := sub(0, sdiv(mul(sdiv(mul(term, x), 1000000000000000000), x), 756000000000000000000))
            total := add(total, term)
        }
    }

    /// @dev The unit vector of a position, scaled by 1e18.
    function unitVector(int32 latE6, int32 lonE6) internal pure returns (int256 x, int256 y, int256 z) {
        int256 lat = _radians(latE6);
        int256 lon = _radians(lonE6);
        int256 cl = _cos(lat);
        x = (cl * _cos(lon)) / SCALE;
        y = (cl * _sin(lon)) / SCALE;
        z = _sin(lat);
    }

    /// @notice A lower bound in metres on the surface distance between two claimed positions.
    function distanceLowerBoundM(int32 latA, int32 lonA, int32 latB, int32 lonB) internal pure returns (uint256) {
        (int256 ax, int256 ay, int256 az) = unitVector(latA, lonA);
        (int256 bx, int256 by, int256 bz) = unitVector(latB, lonB);
        uint256 sq = uint256((ax - bx) * (ax - bx) + (ay - by) * (ay - by) + (az - bz) * (az - bz));
        return (Math.sqrt(sq) * POLAR_RADIUS_M) / uint256(SCALE);
    }

    /// @notice The furthest apart two sites can be given a round trip (light in fibre: 200 km/ms).
    function rttDistanceBoundM(uint256 rttMicros) internal pure returns (uint256) {
        return rttMicros * METRES_PER_RTT_MICROSECOND;
    }
}
