// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

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

    struct DiversityPolicy {
        uint32 committeeSize;
        uint32 minTolerance;
        DimensionRule[7] rules;
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
            if (count > 1) _sortDesc(sums, 0, count - 1);
            uint256 running;
            uint256 k;
            while (3 * running < total) {
                running += sums[k];
                ++k;
            }
            s.nakamoto = uint32(k);
            s.tolerance = uint32(k - 1);
            s.hhiBps = uint32((10_000 * squares) / (total * total));
            s.largestDomain = largest;
            s.largestShareBps = uint32((10_000 * top) / total);
            s.domainCount = uint32(count);
        }
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

    /// @dev Greedy selection by stake (ties by address) under per-domain member caps, then the
    ///      policy check; returns the committee, the failure code and the failing dimension.
    function select(Member[] memory candidates, DiversityPolicy memory policy)
        internal
        pure
        returns (Member[] memory committee, uint8 failure, uint8 dimension)
    {
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
        for (uint256 i = 0; i < n && count < size; ++i) {
            Member memory c = candidates[idx[i]];
            if (_breaksCap(chosen, count, c, policy)) continue;
            chosen[count] = c;
            ++count;
        }
        assembly ("memory-safe") {
            mstore(chosen, count)
        }
        (failure, dimension) = checkPolicy(chosen, policy);
        committee = chosen;
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
    function classify(Member[] memory committee, Member[] memory candidates, DiversityPolicy memory policy)
        internal
        pure
        returns (uint8)
    {
        (bytes32[] memory facilities, uint256[] memory sums, uint256 count) = domainSums(committee, DIM_FACILITY);
        uint256 total;
        for (uint256 i = 0; i < count; ++i) total += sums[i];
        if (total == 0) return CLASS_EMPTY;
        if (count == 1) return CLASS_SINGLE_SITE;
        if (dimensionScore(committee, DIM_FACILITY).tolerance >= 1) return CLASS_ACTIVE_ACTIVE;
        for (uint256 i = 0; i < count; ++i) {
            if (3 * sums[i] < total) continue;
            (, uint8 failure,) = select(_without(candidates, facilities[i]), policy);
            if (failure != FAIL_NONE) return CLASS_UNPROTECTED;
        }
        return CLASS_ACTIVE_PASSIVE;
    }

    function _without(Member[] memory candidates, bytes32 facility) private pure returns (Member[] memory out) {
        out = new Member[](candidates.length);
        uint256 count;
        for (uint256 i = 0; i < candidates.length; ++i) {
            if (candidates[i].domains[DIM_FACILITY] != facility) out[count++] = candidates[i];
        }
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

    /// @dev Sorts a[lo..hi] descending (same scheme as _sortPairs).
    function _sortDesc(uint256[] memory a, uint256 lo, uint256 hi) private pure {
        while (lo < hi) {
            uint256 j;
            assembly ("memory-safe") {
                let k := add(a, 0x20)
                let pivot := mload(add(k, shl(5, add(lo, shr(1, sub(hi, lo))))))
                let i := lo
                j := hi
                for {} 1 {} {
                    for {} gt(mload(add(k, shl(5, i))), pivot) {} { i := add(i, 1) }
                    for {} lt(mload(add(k, shl(5, j))), pivot) {} { j := sub(j, 1) }
                    if iszero(lt(i, j)) { break }
                    let pi := add(k, shl(5, i))
                    let pj := add(k, shl(5, j))
                    let t := mload(pi)
                    mstore(pi, mload(pj))
                    mstore(pj, t)
                    i := add(i, 1)
                    j := sub(j, 1)
                }
            }
            if (j - lo < hi - j) {
                _sortDesc(a, lo, j);
                lo = j + 1;
            } else {
                _sortDesc(a, j + 1, hi);
                hi = j;
            }
        }
    }

    // ----------------------------------------------------------------- geodesy

    int256 internal constant SCALE = 1e18;
    int256 internal constant PI_E18 = 3_141_592_653_589_793_238;
    uint256 internal constant POLAR_RADIUS_M = 6_356_752;
    uint256 internal constant METRES_PER_RTT_MICROSECOND = 100;
    uint256 private constant _TAYLOR_TERMS = 15;

    function _radians(int32 degreesE6) private pure returns (int256) {
        return (int256(degreesE6) * PI_E18) / 180_000_000;
    }

    function _sin(int256 x) private pure returns (int256 total) {
        int256 term = x;
        total = x;
        for (uint256 i = 1; i < _TAYLOR_TERMS; ++i) {
            term = -(((term * x) / SCALE) * x / (SCALE * int256(2 * i) * int256(2 * i + 1)));
            total += term;
        }
    }

    function _cos(int256 x) private pure returns (int256 total) {
        int256 term = SCALE;
        total = SCALE;
        for (uint256 i = 1; i < _TAYLOR_TERMS; ++i) {
            term = -(((term * x) / SCALE) * x / (SCALE * int256(2 * i - 1) * int256(2 * i)));
            total += term;
        }
    }

    function _unit(int32 latE6, int32 lonE6) private pure returns (int256 x, int256 y, int256 z) {
        int256 lat = _radians(latE6);
        int256 lon = _radians(lonE6);
        int256 cl = _cos(lat);
        x = (cl * _cos(lon)) / SCALE;
        y = (cl * _sin(lon)) / SCALE;
        z = _sin(lat);
    }

    /// @notice A lower bound in metres on the surface distance between two claimed positions.
    function distanceLowerBoundM(int32 latA, int32 lonA, int32 latB, int32 lonB) internal pure returns (uint256) {
        (int256 ax, int256 ay, int256 az) = _unit(latA, lonA);
        (int256 bx, int256 by, int256 bz) = _unit(latB, lonB);
        uint256 sq = uint256((ax - bx) * (ax - bx) + (ay - by) * (ay - by) + (az - bz) * (az - bz));
        return (_sqrt(sq) * POLAR_RADIUS_M) / uint256(SCALE);
    }

    /// @dev floor(sqrt(x)).
    function _sqrt(uint256 x) private pure returns (uint256 y) {
        if (x == 0) return 0;
        uint256 z = (x + 1) / 2;
        y = x;
        while (z < y) {
            y = z;
            z = (x / z + z) / 2;
        }
    }
}
