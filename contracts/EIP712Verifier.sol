// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureRecovery} from "./SignatureRecovery.sol";

/// @title EIP712Verifier
/// @notice Signing base of every contract that checks signatures made under its own EIP-712
///         domain (name, version, chain id, this contract's address): OpenZeppelin's EIP712,
///         with its EIP-5267 `eip712Domain()`, and the recovery of {SignatureRecovery}.
/// @dev Modelled on EAS's EIP712Verifier. The separator is cached for the deployment chain and
///      rebuilt on any other (a fork), so signatures never replay across chains.
abstract contract EIP712Verifier is EIP712, SignatureRecovery {
    /// @param name the EIP-712 domain name
    /// @param version the EIP-712 domain version
    constructor(string memory name, string memory version) EIP712(name, version) {}

    /// @notice The EIP-712 domain separator of this contract on the current chain.
    function domainSeparator() public view virtual returns (bytes32) {
        return _domainSeparatorV4();
    }
}
