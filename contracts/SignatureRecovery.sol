// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";

/// @title SignatureRecovery
/// @notice The one place the project's contracts recover EIP-712 signers: OpenZeppelin's ECDSA,
///         which refuses malleable signatures (s above secp256k1n / 2) and unrecoverable ones.
/// @dev Recovery never reverts: a malformed signature yields the zero address, so each contract
///      maps it to its own custom error (or, in the registry's batch path, skips the proof).
///      Contracts with an EIP-712 domain of their own inherit this through {EIP712Verifier};
///      a contract that checks signatures made under another contract's domain inherits it
///      directly and passes that domain's separator to {_typedDataDigest}.
abstract contract SignatureRecovery {
    /// @dev The EIP-712 digest of `structHash` under the domain with separator `domainSeparator`.
    function _typedDataDigest(bytes32 domainSeparator, bytes32 structHash) internal pure returns (bytes32) {
        return MessageHashUtils.toTypedDataHash(domainSeparator, structHash);
    }

    /// @dev The signer of `digest` from an EIP-2098 compact signature (`vs` is s with the
    ///      recovery bit on top), or zero if the signature is malformed or unrecoverable.
    function _recoverSigner(bytes32 digest, bytes32 r, bytes32 vs) internal pure returns (address) {
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, r, vs);
        return err == ECDSA.RecoverError.NoError ? signer : address(0);
    }

    /// @dev The signer of `digest` from a (v, r, s) signature, or zero if the signature is
    ///      malformed (v not 27/28, high s) or unrecoverable.
    function _recoverSigner(bytes32 digest, uint8 v, bytes32 r, bytes32 s) internal pure returns (address) {
        (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, v, r, s);
        return err == ECDSA.RecoverError.NoError ? signer : address(0);
    }
}
