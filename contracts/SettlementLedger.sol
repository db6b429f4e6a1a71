// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {EIP712Verifier} from "./EIP712Verifier.sol";
import {IRedundancyRegistry} from "./IRedundancyRegistry.sol";

/// @notice What the ledger needs of the committee selector.
interface ICommitteeSource {
    /// @notice The current epoch, when it started, and its members with their selected stakes.
    function currentCommittee()
        external
        view
        returns (uint64 epoch, uint40 startedAt, address[] memory members, uint256[] memory stakes);

    /// @notice The committee of `epoch` as selected and the registry's bondCount at its selection
    ///         (empty and 0 unless `epoch` is the current or the previous one), and the current
    ///         epoch.
    function committeeAt(uint64 epoch)
        external
        view
        returns (uint64 current, uint64 bonds, address[] memory members, uint256[] memory stakes);

    /// @notice The registry the committee was selected from.
    function registry() external view returns (IRedundancyRegistry);
}

/// @title SettlementLedger
/// @notice Commits the venue's settlement batches: each batch names a contiguous range of the
///         replicated input log and the state root every validator reached after it. A batch is
///         accepted only with EIP-712 signatures of more than 2/3 of the stake of its own
///         epoch's committee (the committee the CommitteeSelector stored for that epoch), signed
///         by each member's node key as bound in the registry. Anyone holding a quorum may submit.
///         A signer counts the smaller of its stake at selection and the stake it has kept
///         bonded in the registry since its committee was selected (zero once it has withdrawn,
///         even if it bonded again since: its bondSeq is then above the selection's), against the committee's total stake at selection: a member that
///         withdraws mid-epoch cannot keep its selected signing weight, nor win it back by
///         bonding again for the commit (unbonding rule, SECURITY.md findings 7 and 20).
/// @dev Batches chain across epochs: the first sequence must follow the last committed one (no
///      gap, no overlap), and epochs never go back: a batch of an epoch older than the last
///      committed batch's is stale (once the new committee has committed, the old one cannot),
///      while the previous epoch's batches are still accepted after a new committee is selected,
///      until the new committee's first batch lands (the venue switches at one log sequence); an
///      epoch older than the previous one cannot commit (only two committees are kept). Signatures are
///      passed sorted by signer address, strictly ascending, so a duplicate is caught in one pass.
///      Batches are EIP-712 typed data under the domain (NAME, VERSION, chain id, this ledger).
contract SettlementLedger is EIP712Verifier {
    /// @notice EIP-712 type hash of {Batch}.
    bytes32 public constant BATCH_TYPEHASH =
        keccak256("SettlementBatch(uint64 epoch,uint64 firstSequence,uint64 lastSequence,bytes32 stateRoot)");
    /// @notice EIP-712 domain name of settlement batches.
    string public constant NAME = "SettlementLedger";
    /// @notice EIP-712 domain version of settlement batches.
    string public constant VERSION = "1";

    /// @notice A settlement batch: inputs firstSequence..lastSequence, and the state root after them.
    struct Batch {
        uint64 epoch;
        uint64 firstSequence;
        uint64 lastSequence;
        bytes32 stateRoot;
    }

    /// @notice A committee member's node signature over a batch.
    struct NodeSignature {
        uint8 v;
        bytes32 r;
        bytes32 s;
    }

    /// @notice The CommitteeSelector whose current committee signs batches.
    ICommitteeSource public immutable committee;

    uint64 private _lastSequence;
    uint64 private _batchCount;
    uint64 private _lastEpoch;
    bytes32 private _lastStateRoot;

    /// @notice Emitted for every committed batch.
    event BatchCommitted(
        uint64 indexed batchNumber,
        uint64 indexed epoch,
        uint64 firstSequence,
        uint64 lastSequence,
        bytes32 stateRoot,
        address[] signers,
        uint256 signedStake,
        uint256 totalStake
    );

    /// @notice The batch's epoch is older than the last committed batch's: its committee was
    ///         superseded on the ledger.
    error SettlementStaleCommittee(uint64 epoch, uint64 lastEpoch);
    /// @notice The batch names epoch 0 or an epoch not selected yet.
    error SettlementUnknownEpoch(uint64 epoch, uint64 currentEpoch);
    /// @notice The batch's epoch is neither the current nor the previous one: only those two
    ///         committees are kept, and an older one can no longer commit.
    error SettlementEpochExpired(uint64 epoch, uint64 currentEpoch);
    /// @notice No committee has been selected yet.
    error SettlementNoCommittee();
    /// @notice The batch does not start right after the last committed sequence, or is empty.
    error SettlementWrongRange(uint64 firstSequence, uint64 lastSequence, uint64 expectedFirst);
    /// @notice A signature is malformed (bad v, high s, or unrecoverable).
    error SettlementInvalidSignature(uint256 index);
    /// @notice A signer is not the node key of any current committee member.
    error SettlementNotMember(address signer);
    /// @notice Signers are not strictly ascending: the same signer appears twice.
    error SettlementDuplicateSigner(address signer);
    /// @notice Signers are not sorted ascending.
    error SettlementSignersUnsorted(address previous, address signer);
    /// @notice The signers' weight (each min(selected, bonded since the selection)) is no more
    ///         than 2/3 of the committee's stake at selection.
    error SettlementInsufficientStake(uint256 signedStake, uint256 totalStake);

    /// @param committee_ the CommitteeSelector whose current committee signs batches
    constructor(ICommitteeSource committee_) EIP712Verifier(NAME, VERSION) {
        committee = committee_;
    }

    /// @notice Commits a batch signed by more than 2/3 of its epoch's committee's stake, each
    ///         signer weighed min(stake at selection, stake bonded without a break since the
    ///         committee was selected).
    /// @param batch the batch
    /// @param signatures node signatures, sorted by recovered signer address ascending
    function commitBatch(Batch calldata batch, NodeSignature[] calldata signatures) external {
        uint64 epoch = batch.epoch;
        (uint64 current, uint64 bonds, address[] memory members, uint256[] memory stakes) =
            committee.committeeAt(epoch);
        if (current == 0) revert SettlementNoCommittee();
        if (epoch == 0 || epoch > current) revert SettlementUnknownEpoch(epoch, current);
        if (epoch < _lastEpoch) revert SettlementStaleCommittee(epoch, _lastEpoch);
        if (epoch + 1 < current) revert SettlementEpochExpired(epoch, current);
        uint64 expectedFirst = _lastSequence + 1;
        if (batch.firstSequence != expectedFirst || batch.lastSequence < batch.firstSequence) {
            revert SettlementWrongRange(batch.firstSequence, batch.lastSequence, expectedFirst);
        }
        IRedundancyRegistry.ValidatorRecord[] memory records = committee.registry().validatorRecords(members);
        bytes32 digest = batchDigest(batch);
        uint256 total;
        for (uint256 i = 0; i < stakes.length; ++i) {
            total += stakes[i];
        }
        uint256 signed;
        address previous;
        address[] memory signers = new address[](signatures.length);
        for (uint256 i = 0; i < signatures.length; ++i) {
            NodeSignature calldata sig = signatures[i];
            address signer = _recoverSigner(digest, sig.v, sig.r, sig.s);
            if (signer == address(0)) revert SettlementInvalidSignature(i);
            if (signer == previous) revert SettlementDuplicateSigner(signer);
            if (signer < previous) revert SettlementSignersUnsorted(previous, signer);
            previous = signer;
            uint256 j = 0;
            while (j < records.length && records[j].node != signer) ++j;
            if (j == records.length) revert SettlementNotMember(signer);
            // bonded again since its committee was selected: it left, and signs with nothing
            uint256 bonded = records[j].bondSeq > bonds ? 0 : records[j].stake;
            signed += bonded < stakes[j] ? bonded : stakes[j];
            signers[i] = members[j];
        }
        if (3 * signed <= 2 * total) revert SettlementInsufficientStake(signed, total);
        _lastSequence = batch.lastSequence;
        _lastEpoch = epoch;
        _lastStateRoot = batch.stateRoot;
        uint64 number = ++_batchCount;
        emit BatchCommitted(
            number, epoch, batch.firstSequence, batch.lastSequence, batch.stateRoot, signers, signed, total
        );
    }

    /// @notice The last committed log sequence, its state root, and how many batches there are.
    function lastCommitted() external view returns (uint64 sequence, bytes32 stateRoot, uint64 batches) {
        return (_lastSequence, _lastStateRoot, _batchCount);
    }

    /// @notice The epoch of the last committed batch (0 before the first).
    function lastEpoch() external view returns (uint64) {
        return _lastEpoch;
    }

    /// @notice The EIP-712 digest committee nodes sign for a batch.
    /// @param batch the batch
    function batchDigest(Batch calldata batch) public view returns (bytes32) {
        bytes32 structHash =
            keccak256(abi.encode(BATCH_TYPEHASH, batch.epoch, batch.firstSequence, batch.lastSequence, batch.stateRoot));
        return _hashTypedDataV4(structHash);
    }
}
