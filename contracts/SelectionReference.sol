// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {RedundancyMath} from "./RedundancyMath.sol";

/// @title SelectionReference
/// @notice The selector's arithmetic as pure views over given inputs: scores of any validator
///         set, the committee selection makes of any candidates under any policy and physical
///         facts, the configuration class, proven separation and distance bounds. No storage:
///         verifiers and the parity tests hold the Python reference to exactly this code, which
///         the CommitteeSelector (that names this contract's address) runs on stored data.
contract SelectionReference {
    /// @notice Scores of any validator set.
    /// @param members stakes and domains per dimension
    function scoresOf(RedundancyMath.Member[] calldata members) external pure returns (RedundancyMath.Scores memory) {
        return RedundancyMath.scores(members);
    }

    /// @notice The committee deterministic selection makes of candidates under a policy, given
    ///         the facilities' fresh landmark discs and the pairs' two-sided RTTs.
    /// @param candidates eligible validators
    /// @param policy the diversity policy
    /// @param facts each facility's discs (facilities left out have none)
    /// @param pairs measured pairs (pairs left out are not measured)
    function selectFrom(
        RedundancyMath.Member[] calldata candidates,
        RedundancyMath.DiversityPolicy calldata policy,
        RedundancyMath.FacilityGeo[] calldata facts,
        RedundancyMath.PairRtt[] calldata pairs
    ) external view returns (RedundancyMath.Member[] memory committee, uint8 failure, uint8 dimension) {
        RedundancyMath.Member[] memory c = candidates;
        return RedundancyMath.select(c, policy, _givenGeo(c, facts, pairs), _givenRow);
    }

    /// @notice Configuration class of a committee given the eligible candidates, policy and facts.
    /// @param committee the committee
    /// @param candidates the eligible validators
    /// @param policy the diversity policy
    /// @param facts each facility's discs
    /// @param pairs measured pairs
    function classOf(
        RedundancyMath.Member[] calldata committee,
        RedundancyMath.Member[] calldata candidates,
        RedundancyMath.DiversityPolicy calldata policy,
        RedundancyMath.FacilityGeo[] calldata facts,
        RedundancyMath.PairRtt[] calldata pairs
    ) external view returns (uint8) {
        RedundancyMath.Member[] memory c = candidates;
        return RedundancyMath.classify(committee, c, policy, _givenGeo(c, facts, pairs), _givenRow);
    }

    /// @notice The separation two lists of landmark discs prove (the pure form of provenSeparationM).
    function provenSeparationFrom(RedundancyMath.DiscInput[] calldata a, RedundancyMath.DiscInput[] calldata b)
        external
        pure
        returns (uint256 best)
    {
        for (uint256 i = 0; i < a.length; ++i) {
            for (uint256 j = 0; j < b.length; ++j) {
                uint256 d =
                    RedundancyMath.distanceLowerBoundM(a[i].latitudeE6, a[i].longitudeE6, b[j].latitudeE6, b[j].longitudeE6);
                uint256 reach = a[i].radiusM + b[j].radiusM;
                if (d > reach && d - reach > best) best = d - reach;
            }
        }
    }

    /// @notice The lower bound in metres on the distance between two claimed positions.
    function distanceLowerBoundM(int32 latA, int32 lonA, int32 latB, int32 lonB) external pure returns (uint256) {
        return RedundancyMath.distanceLowerBoundM(latA, lonA, latB, lonB);
    }

    // ------------------------------------------------------------ given facts

    /// @dev The physical facts given to the pure views: discs per facility (landmark positions
    ///      are deduplicated into landmark indices) and the pair RTTs.
    function _givenGeo(
        RedundancyMath.Member[] memory candidates,
        RedundancyMath.FacilityGeo[] memory facts,
        RedundancyMath.PairRtt[] memory pairs
    ) private pure returns (RedundancyMath.Geo memory geo) {
        bytes32[] memory ids = new bytes32[](candidates.length);
        for (uint256 i = 0; i < candidates.length; ++i) {
            ids[i] = candidates[i].domains[0];
        }
        geo = RedundancyMath.newGeo(ids);
        geo.pairs = pairs;
        uint256 total;
        for (uint256 i = 0; i < facts.length; ++i) {
            total += facts[i].discs.length;
        }
        geo.landmarkLat = new int32[](total);
        geo.landmarkLon = new int32[](total);
        uint256 landmarks;
        for (uint256 f = 0; f <= geo.ids.length; ++f) {
            geo.discs[f] = new uint256[](0);
        }
        for (uint256 i = 0; i < facts.length; ++i) {
            uint256 f = RedundancyMath.indexOf(geo, facts[i].facilityId);
            if (f == geo.ids.length) continue;
            RedundancyMath.DiscInput[] memory given = facts[i].discs;
            uint256[] memory discs = new uint256[](given.length);
            for (uint256 k = 0; k < given.length; ++k) {
                uint256 li;
                while (
                    li < landmarks
                        && (geo.landmarkLat[li] != given[k].latitudeE6 || geo.landmarkLon[li] != given[k].longitudeE6)
                ) ++li;
                if (li == landmarks) {
                    (geo.landmarkLat[li], geo.landmarkLon[li]) = (given[k].latitudeE6, given[k].longitudeE6);
                    ++landmarks;
                }
                discs[k] = (li << 128) | SafeCast.toUint128(given[k].radiusM);
            }
            geo.discs[f] = discs;
        }
        int32[] memory lat = geo.landmarkLat;
        int32[] memory lon = geo.landmarkLon;
        // Assembly: shrinks the array's length to the entries filled (only ever lowers it).
        // solhint-disable-next-line no-inline-assembly
        assembly ("memory-safe") {
            mstore(lat, landmarks)
            mstore(lon, landmarks)
        }
        geo.landmarkDistance = new uint256[](landmarks * landmarks);
    }

    /// @dev Each facility's given two-sided RTT to facility `leader` (0 for itself).
    function _givenRow(RedundancyMath.Geo memory geo, uint256 leader) private pure returns (uint256[] memory row) {
        uint256 n = geo.ids.length;
        row = new uint256[](n + 1);
        bytes32 lead = geo.ids[leader];
        for (uint256 j = 0; j <= n; ++j) {
            row[j] = RedundancyMath.UNMEASURED;
            if (j == leader) row[j] = 0;
            if (j == leader || j == n) continue;
            for (uint256 k = 0; k < geo.pairs.length; ++k) {
                RedundancyMath.PairRtt memory p = geo.pairs[k];
                if ((p.a == lead && p.b == geo.ids[j]) || (p.b == lead && p.a == geo.ids[j])) {
                    row[j] = p.rttMicros;
                    break;
                }
            }
        }
    }
}
