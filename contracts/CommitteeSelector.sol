// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {IRedundancyRegistry} from "./IRedundancyRegistry.sol";
import {RedundancyMath} from "./RedundancyMath.sol";
import {SelectorBase} from "./SelectorBase.sol";
import {SelectionReference} from "./SelectionReference.sol";
import {SelectorGeography} from "./SelectorGeography.sol";

/// @title CommitteeSelector
/// @notice Selects the validator committee under the owner's diversity policy, from validators
///         that are eligible by the registry's attested data alone, and exposes the current
///         committee's redundancy scores and configuration class ({SelectionReference} computes
///         them for any given validator set). Selection honours two physical
///         rules besides the per-dimension ones: a minimum separation between committee
///         facilities that landmark discs prove, and a latency budget between the leader's
///         facility and the members completing its quorum (see RedundancyMath.select).
/// @dev The geography (two-sided RTT reports, landmarks, discs, flags and their views) lives in
///      {SelectorGeography}, to which this contract delegates every call it does not implement,
///      on this contract's storage and address: one contract to its users, two bytecodes under
///      the EIP-170 size limit. Eligible: registered with stake; facility registered, active and
///      not stale; node freshly attested by that facility; facility's geography not flagged.
contract CommitteeSelector is SelectorBase {
    /// @notice The geography extension this selector delegates to.
    address public immutable geography;
    /// @notice The stateless contract with the pure views of this selector's arithmetic (scores,
    ///         selection and class of given inputs), for verifiers.
    SelectionReference public immutable selectionReference;

    /// @param registry_ the RedundancyRegistry whose attested data selection reads
    /// @param policy the initial diversity policy
    /// @param geoPolicy the initial geography policy
    /// @param geography_ the geography extension, made for the same registry
    /// @param reference_ the pure reference views
    constructor(
        IRedundancyRegistry registry_,
        RedundancyMath.DiversityPolicy memory policy,
        GeographyPolicy memory geoPolicy,
        SelectorGeography geography_,
        SelectionReference reference_
    ) SelectorBase(registry_) {
        if (address(geography_.registry()) != address(registry_)) {
            revert SelectorGeographyMismatch(address(registry_), address(geography_.registry()));
        }
        geography = address(geography_);
        selectionReference = reference_;
        _setDiversityPolicy(policy);
        _setGeographyPolicy(geoPolicy);
        _bonds.reserved = true; // selection overwrites a non-zero word (see _committees)
    }

    /// @notice Every function this contract does not implement runs in the geography extension,
    ///         on this contract's storage.
    // solhint-disable-next-line no-complex-fallback
    fallback() external {
        address target = geography;
        // Assembly: forwards the call to the geography extension (delegatecall proxy).
        // solhint-disable-next-line no-inline-assembly
        assembly {
            calldatacopy(0, 0, calldatasize())
            let ok := delegatecall(gas(), target, 0, calldatasize(), 0, 0)
            returndatacopy(0, 0, returndatasize())
            if iszero(ok) { revert(0, returndatasize()) }
            return(0, returndatasize())
        }
    }

    // ------------------------------------------------------------ candidates

    struct FacilityEntry {
        bool eligible;
        bytes32[7] domains;
    }

    /// @notice Every validator eligible now, with its stake and domain per dimension.
    function eligibleCandidates() public view returns (RedundancyMath.Member[] memory) {
        return _candidates(false, true);
    }

    /// @dev The eligible validators; with `byIndex`, each domain but the facility's own is the
    ///      registry's interned index of its id instead of the id (equal exactly when the ids are,
    ///      0 for none), read from fewer storage words. Selection compares domains only for
    ///      equality (caps, distinct counts, shares, tolerance), so it selects the same committee
    ///      from either; the transaction reads indices, the views return ids.
    function _candidates(bool byIndex, bool benchOut) private view returns (RedundancyMath.Member[] memory out) {
        address[] memory addrs = registry.validatorAddresses();
        IRedundancyRegistry.ValidatorRecord[] memory records =
            byIndex ? registry.validatorRecordsIndexed(addrs) : registry.validatorRecords(addrs);
        (FacilityEntry[] memory entries, uint256[] memory facilityOf) = _facilities(records, byIndex);
        out = new RedundancyMath.Member[](records.length);
        uint256[] memory bench = _bench;
        // The bonding rule, read once: before the first committee every bond counts; after it,
        // one at or below the first selection's count (founding), or bonded by `matured`.
        uint256 founding = _epoch == 0 ? type(uint64).max : _bonds.genesis;
        uint256 wait = _geo.minEpochSeconds;
        uint256 matured = block.timestamp > wait ? block.timestamp - wait : 0;
        uint256 count;
        for (uint256 i = 0; i < records.length; ++i) {
            IRedundancyRegistry.ValidatorRecord memory rec = records[i];
            FacilityEntry memory f = entries[facilityOf[i]];
            if (!_attested(rec, f) || (rec.bondSeq > founding && rec.bondedAt > matured)) continue;
            if (benchOut && bench.length != 0 && _benchedUntil(bench, rec.validator) > block.timestamp) continue;
            out[count] = _member(rec.validator, rec.stake, f, rec.hardwareDomainId);
            ++count;
        }
        // Assembly: shrinks the array's length to the entries filled (only ever lowers it).
        // solhint-disable-next-line no-inline-assembly
        assembly ("memory-safe") {
            mstore(out, count)
        }
    }

    /// @dev Attested: registered with stake, node attested at its facility and not expired, and
    ///      the facility fresh and not geography-flagged. A candidate must also be bonded long
    ///      enough and not be benched (see {_candidates}): before the first committee every
    ///      bond counts; after it, a validator bonded by the first selection, or for
    ///      minEpochSeconds; and one whose ineligibility allowed an emergency selection sits out
    ///      minEpochSeconds. So a member that makes itself ineligible to force a selection is
    ///      out of the selections it forces, however it did, and cannot come back at once under
    ///      a fresh address either (SECURITY.md, finding 18).
    function _attested(IRedundancyRegistry.ValidatorRecord memory rec, FacilityEntry memory f)
        private
        view
        returns (bool)
    {
        return rec.stake != 0 && rec.nodeFacilityId == rec.facilityId && rec.nodeValidUntil > block.timestamp
            && f.eligible;
    }


    /// @dev The distinct facilities of the records (found through a hash table on the id's low
    ///      bits), fetched from the registry in one call, and which of them each record is at.
    // Three lines over the limit: the hash table, the registry fetch and the flags share locals.
    // solhint-disable-next-line function-max-lines
    function _facilities(IRedundancyRegistry.ValidatorRecord[] memory records, bool byIndex)
        private
        view
        returns (FacilityEntry[] memory entries, uint256[] memory facilityOf)
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
                    facilityOf[i] = count;
                    ++count;
                    break;
                }
                if (ids[entry - 1] == id) {
                    facilityOf[i] = entry - 1;
                    break;
                }
                slot = (slot + 1) & (size - 1);
            }
        }
        // Assembly: shrinks the array's length to the entries filled (only ever lowers it).
        // solhint-disable-next-line no-inline-assembly
        assembly ("memory-safe") {
            mstore(ids, count)
        }
        IRedundancyRegistry.SelectionFacility[] memory fs;
        IRedundancyRegistry.IndexedFacility[] memory xs;
        if (byIndex) xs = registry.selectionFacilitiesIndexed(ids);
        else fs = registry.selectionFacilities(ids);
        entries = new FacilityEntry[](count);
        bool anyFlag = _geo.flagCount != 0;
        for (uint256 i = 0; i < count; ++i) {
            FacilityEntry memory e = entries[i];
            e.domains[0] = ids[i];
            bool fresh;
            int32 lat;
            int32 lon;
            if (byIndex) {
                IRedundancyRegistry.IndexedFacility memory x = xs[i];
                (fresh, lat, lon) = (x.fresh, x.latitudeE6, x.longitudeE6);
                uint256 packed = x.domainIndices;
                for (uint256 d = 1; d < 6; ++d) {
                    e.domains[d] = bytes32(uint256(uint32(packed >> (32 * d))));
                }
            } else {
                IRedundancyRegistry.SelectionFacility memory f = fs[i];
                (fresh, lat, lon) = (f.fresh, f.latitudeE6, f.longitudeE6);
                for (uint256 d = 1; d < 6; ++d) {
                    e.domains[d] = f.domains[d];
                }
            }
            bool flagged;
            if (anyFlag) {
                GeoFlag memory flag = _flags[ids[i]];
                flagged = flag.against != bytes32(0) && _holds(ids[i], flag, lat, lon);
            }
            e.eligible = fresh && !flagged;
            if (flagged) {
                e.domains[1] = bytes32(0); // flagged geography counts as unknown (one shared bucket)
                e.domains[2] = bytes32(0);
            }
        }
    }

    function _member(address addr, uint256 stake, FacilityEntry memory f, bytes32 hardware)
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

    // ------------------------------------------------------------ physical facts

    /// @dev The physical facts of the candidates' facilities as stored: fresh discs (when the
    ///      policy has a separation rule); pair RTTs are read per leader by {_storedRow}.
    function _storedGeo(RedundancyMath.Member[] memory candidates, RedundancyMath.DiversityPolicy memory policy)
        private
        view
        returns (RedundancyMath.Geo memory geo)
    {
        if (policy.minSeparationM == 0 && policy.maxLeaderRttMicros == 0) return geo;
        bytes32[] memory ids = new bytes32[](candidates.length);
        for (uint256 i = 0; i < candidates.length; ++i) {
            ids[i] = candidates[i].domains[0];
        }
        geo = RedundancyMath.newGeo(ids);
        if (policy.minSeparationM != 0) _loadDiscs(geo);
    }

    /// @dev Each facility's stored two-sided RTT to facility `leader` (0 for itself).
    function _storedRow(RedundancyMath.Geo memory geo, uint256 leader) private view returns (uint256[] memory row) {
        uint256 n = geo.ids.length;
        row = new uint256[](n + 1);
        bytes32 lead = geo.ids[leader];
        uint256 maxAge = _geo.maxMeasurementAge;
        for (uint256 j = 0; j < n; ++j) {
            row[j] = j == leader ? 0 : _pairRtt(lead, geo.ids[j], maxAge, 0);
        }
        row[n] = RedundancyMath.UNMEASURED;
    }



    // ------------------------------------------------------------- committee

    /// @notice Selects the committee for the next epoch from the eligible validators and stores
    ///         it; reverts with SelectorPolicyUnmet naming the failure and dimension if the policy
    ///         cannot be met. Before the current epoch is minEpochSeconds old, only an emergency
    ///         selection is allowed: one where a member of the current committee is no longer
    ///         eligible (facility stale, deactivated or geography-flagged, node proof expired,
    ///         validator deregistered); it also emits EmergencySelection naming that member.
    ///         Otherwise it reverts with SelectorEpochTooYoung.
    /// @return epoch the new epoch number
    function selectCommittee() external returns (uint64 epoch) {
        return _selectCommittee();
    }

    /// @notice selectCommittee, only if the current epoch is still `currentEpoch`: a keeper that
    ///         lost the race to another keeper's selection reverts cheaply with
    ///         SelectorEpochAdvanced instead of starting (or cutting short) a second epoch.
    /// @param currentEpoch the epoch the caller saw and wants replaced
    /// @return epoch the new epoch number
    function selectNextCommittee(uint64 currentEpoch) external returns (uint64 epoch) {
        if (_epoch != currentEpoch) revert SelectorEpochAdvanced(currentEpoch, _epoch);
        return _selectCommittee();
    }

    function _selectCommittee() private returns (uint64 epoch) {
        uint40 started = _epochStartedAt;
        address ineligible;
        if (_epoch != 0 && block.timestamp < uint256(started) + _geo.minEpochSeconds) {
            ineligible = firstIneligibleMember();
            if (ineligible == address(0)) {
                revert SelectorEpochTooYoung(_epoch, started, _geo.minEpochSeconds);
            }
        }
        (RedundancyMath.Member[] memory committee, uint8 failure, uint8 dimension) = _select(true);
        if (failure != RedundancyMath.FAIL_NONE) revert SelectorPolicyUnmet(failure, dimension);
        epoch = _epoch + 1;
        uint256 n = committee.length;
        _epoch = epoch;
        _epochStartedAt = uint40(block.timestamp);
        uint64 bonds = registry.bondCount();
        BondCounts memory counts = _bonds;
        _bonds = BondCounts(bonds, counts.current, epoch == 1 ? bonds : counts.genesis, true);
        if (ineligible != address(0) || _bench.length != 0) _updateBench(ineligible);
        if (epoch & 1 == 0) _committeeLengthEven = uint32(n);
        else _committeeLengthOdd = uint32(n);
        address[] memory members = new address[](n);
        uint256[] memory stakes = new uint256[](n);
        uint256 total;
        uint256[] storage stored = _committees[epoch & 1];
        for (uint256 i = 0; i < n; ++i) {
            members[i] = committee[i].addr;
            stakes[i] = committee[i].stake;
            total += stakes[i];
            uint256 packed = uint256(uint160(members[i])) | (uint256(uint96(stakes[i])) << 160);
            if (i < stored.length) stored[i] = packed;
            else stored.push(packed);
        }
        _committeeStake = total;
        RedundancyMath.Scores memory s = RedundancyMath.scores(committee);
        emit CommitteeSelected(epoch, members, stakes, total, s.score, s.weakest, uint40(block.timestamp));
        if (ineligible != address(0)) emit EmergencySelection(epoch, ineligible, started);
    }

    /// @dev Selection from the candidates off the bench; if the policy cannot be met without the
    ///      benched ones, from every candidate: the bench exists to stop a churn, and must not
    ///      keep a committee from healing (a site that failed briefly is benched, and may be the
    ///      one a second failure needs).
    function _select(bool byIndex)
        private
        view
        returns (RedundancyMath.Member[] memory committee, uint8 failure, uint8 dimension)
    {
        RedundancyMath.DiversityPolicy memory policy = _policy;
        bool benchOut = true;
        while (true) {
            RedundancyMath.Member[] memory candidates = _candidates(byIndex, benchOut);
            (committee, failure, dimension) =
                RedundancyMath.select(candidates, policy, _storedGeo(candidates, policy), _storedRow);
            // met, or already every candidate, or nobody benched: this is the selection
            if (failure == RedundancyMath.FAIL_NONE || !benchOut || _bench.length == 0) {
                return (committee, failure, dimension);
            }
            benchOut = false;
        }
    }

    /// @dev Drops the bench entries that have expired, and puts `member` (if any: the member
    ///      that allowed this emergency selection) on it for minEpochSeconds.
    function _updateBench(address member) private {
        uint256[] storage bench = _bench;
        uint256 kept;
        for (uint256 i = 0; i < bench.length; ++i) {
            uint256 entry = bench[i];
            if (entry >> 160 > block.timestamp) {
                bench[kept] = entry;
                ++kept;
            }
        }
        while (bench.length > kept) bench.pop();
        if (member != address(0)) {
            bench.push(uint256(uint160(member)) | ((block.timestamp + _geo.minEpochSeconds) << 160));
        }
    }

    /// @notice The first member of the current committee that is no longer eligible (zero if
    ///         every member still is, or there is no committee): what lets a selection cut the
    ///         epoch short, and benches that member for minEpochSeconds. A member is no longer
    ///         eligible when it is no longer attested, or when it has bonded again since its
    ///         committee was selected (it left: it signs with nothing).
    function firstIneligibleMember() public view returns (address) {
        (,, address[] memory members,) = currentCommittee();
        // eligibility reads no domain: the cheaper indexed records will do
        IRedundancyRegistry.ValidatorRecord[] memory records = registry.validatorRecordsIndexed(members);
        (FacilityEntry[] memory entries, uint256[] memory facilityOf) = _facilities(records, true);
        uint64 bonds = _bonds.current;
        for (uint256 i = 0; i < members.length; ++i) {
            if (!_attested(records[i], entries[facilityOf[i]]) || records[i].bondSeq > bonds) return members[i];
        }
        return address(0);
    }

    /// @notice The current epoch, when it started, and its committee (members and stakes at selection).
    function currentCommittee()
        public
        view
        returns (uint64 epoch, uint40 startedAt, address[] memory members, uint256[] memory stakes)
    {
        (members, stakes) = _committeeOf(_epoch);
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
        (FacilityEntry[] memory entries, uint256[] memory facilityOf) = _facilities(records, false);
        out = new RedundancyMath.Member[](members.length);
        for (uint256 i = 0; i < members.length; ++i) {
            out[i] = _member(members[i], stakes[i], entries[facilityOf[i]], records[i].hardwareDomainId);
        }
    }

    /// @notice Scores of the current committee (selected stakes, current attested domains).
    function currentScores() external view returns (RedundancyMath.Scores memory) {
        return RedundancyMath.scores(committeeMembers());
    }

    /// @notice Configuration class of the current committee given who is eligible now.
    function currentClass() external view returns (uint8) {
        RedundancyMath.DiversityPolicy memory policy = _policy;
        RedundancyMath.Member[] memory candidates = eligibleCandidates();
        return RedundancyMath.classify(
            committeeMembers(), candidates, policy, _storedGeo(candidates, policy), _storedRow
        );
    }

    /// @notice What selectCommittee would select now, and whether the policy is met.
    function previewSelection()
        external
        view
        returns (RedundancyMath.Member[] memory committee, uint8 failure, uint8 dimension)
    {
        return _select(false);
    }
}
