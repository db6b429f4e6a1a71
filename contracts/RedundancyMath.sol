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

    /// @dev Stake per distinct domain of one dimension; domains ascending.
    function domainSums(Member[] memory members, uint256 dim)
        internal
        pure
        returns (bytes32[] memory doms, uint256[] memory sums, uint256 count)
    {
        uint256 n = members.length;
        uint256[] memory idx = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) idx[i] = i;
        if (n > 1) _sortByDomain(members, dim, idx, 0, int256(n - 1));
        doms = new bytes32[](n);
        sums = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            Member memory m = members[idx[i]];
            bytes32 d = m.domains[dim];
            if (count == 0 || doms[count - 1] != d) {
                doms[count] = d;
                ++count;
            }
            sums[count - 1] += m.stake;
        }
    }

    function dimensionScore(Member[] memory members, uint256 dim) internal pure returns (DimensionScore memory s) {
        (bytes32[] memory doms, uint256[] memory sums, uint256 count) = domainSums(members, dim);
        uint256 total;
        uint256 top;
        bytes32 largest;
        for (uint256 i = 0; i < count; ++i) {
            total += sums[i];
            if (sums[i] > top) {
                top = sums[i];
                largest = doms[i];
            }
        }
        if (total == 0) return s;
        uint256[] memory ordered = new uint256[](count);
        uint256 squares;
        for (uint256 i = 0; i < count; ++i) {
            ordered[i] = sums[i];
            squares += sums[i] * sums[i];
        }
        if (count > 1) _sortDesc(ordered, 0, int256(count - 1));
        uint256 running;
        uint256 k;
        while (3 * running < total) {
            running += ordered[k];
            ++k;
        }
        s.nakamoto = uint32(k);
        s.tolerance = uint32(k - 1);
        s.hhiBps = uint32((10_000 * squares) / (total * total));
        s.largestDomain = largest;
        s.largestShareBps = uint32((10_000 * top) / total);
        s.domainCount = uint32(count);
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
        uint256[] memory idx = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) idx[i] = i;
        if (n > 1) _sortCandidates(candidates, idx, 0, int256(n - 1));
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

    function _sortByDomain(Member[] memory m, uint256 dim, uint256[] memory idx, int256 lo, int256 hi) private pure {
        while (lo < hi) {
            uint256 pivot = uint256(m[idx[uint256(lo + (hi - lo) / 2)]].domains[dim]);
            int256 i = lo;
            int256 j = hi;
            while (i <= j) {
                while (uint256(m[idx[uint256(i)]].domains[dim]) < pivot) ++i;
                while (uint256(m[idx[uint256(j)]].domains[dim]) > pivot) --j;
                if (i <= j) {
                    (idx[uint256(i)], idx[uint256(j)]) = (idx[uint256(j)], idx[uint256(i)]);
                    ++i;
                    --j;
                }
            }
            if (j - lo < hi - i) {
                _sortByDomain(m, dim, idx, lo, j);
                lo = i;
            } else {
                _sortByDomain(m, dim, idx, i, hi);
                hi = j;
            }
        }
    }

    function _sortDesc(uint256[] memory a, int256 lo, int256 hi) private pure {
        while (lo < hi) {
            uint256 pivot = a[uint256(lo + (hi - lo) / 2)];
            int256 i = lo;
            int256 j = hi;
            while (i <= j) {
                while (a[uint256(i)] > pivot) ++i;
                while (a[uint256(j)] < pivot) --j;
                if (i <= j) {
                    (a[uint256(i)], a[uint256(j)]) = (a[uint256(j)], a[uint256(i)]);
                    ++i;
                    --j;
                }
            }
            if (j - lo < hi - i) {
                _sortDesc(a, lo, j);
                lo = i;
            } else {
                _sortDesc(a, i, hi);
                hi = j;
            }
        }
    }

    /// @dev Stake descending, then address ascending.
    function _before(Member memory a, Member memory b) private pure returns (bool) {
        return a.stake > b.stake || (a.stake == b.stake && a.addr < b.addr);
    }

    function _sortCandidates(Member[] memory m, uint256[] memory idx, int256 lo, int256 hi) private pure {
        while (lo < hi) {
            Member memory pivot = m[idx[uint256(lo + (hi - lo) / 2)]];
            int256 i = lo;
            int256 j = hi;
            while (i <= j) {
                while (_before(m[idx[uint256(i)]], pivot)) ++i;
                while (_before(pivot, m[idx[uint256(j)]])) --j;
                if (i <= j) {
                    (idx[uint256(i)], idx[uint256(j)]) = (idx[uint256(j)], idx[uint256(i)]);
                    ++i;
                    --j;
                }
            }
            if (j - lo < hi - i) {
                _sortCandidates(m, idx, lo, j);
                lo = i;
            } else {
                _sortCandidates(m, idx, i, hi);
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
