// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title TwoStepOwnable
/// @notice Ownership handed over in two steps: the owner proposes, the new owner accepts.
abstract contract TwoStepOwnable {
    address private _owner;
    address private _pendingOwner;

    /// @notice Emitted when the owner starts a two-step ownership transfer.
    event OwnershipTransferStarted(address indexed previousOwner, address indexed newOwner);
    /// @notice Emitted when ownership changes hands.
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    /// @notice The caller is not the owner.
    error OwnableNotOwner(address caller);
    /// @notice The caller is not the pending owner.
    error OwnableNotPendingOwner(address caller);

    modifier onlyOwner() {
        if (msg.sender != _owner) revert OwnableNotOwner(msg.sender);
        _;
    }

    constructor(address initialOwner) {
        _owner = initialOwner;
        emit OwnershipTransferred(address(0), initialOwner);
    }

    /// @notice The current owner.
    function owner() public view returns (address) {
        return _owner;
    }

    /// @notice The address that may accept ownership, or zero.
    function pendingOwner() external view returns (address) {
        return _pendingOwner;
    }

    /// @notice Starts a two-step ownership transfer; `newOwner` must accept it.
    /// @param newOwner the proposed owner (zero cancels a pending transfer)
    function transferOwnership(address newOwner) external onlyOwner {
        _pendingOwner = newOwner;
        emit OwnershipTransferStarted(_owner, newOwner);
    }

    /// @notice Completes a two-step ownership transfer; only the pending owner may call.
    function acceptOwnership() external {
        if (msg.sender != _pendingOwner) revert OwnableNotPendingOwner(msg.sender);
        address previous = _owner;
        _owner = msg.sender;
        delete _pendingOwner;
        emit OwnershipTransferred(previous, msg.sender);
    }
}
