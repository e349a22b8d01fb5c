// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Vm} from "./Vm.sol";

/// @notice The cheatcode handle, shared by tests and invariant handlers.
abstract contract CheatCodes {
    /// @dev The standard cheatcode address: uint160(uint256(keccak256("hevm cheat code"))).
    Vm internal constant vm = Vm(0x7109709ECfa91a80626fF3989D68f67F5b1DD12D);

    /// @dev Maps `x` into [min, max]: values already inside are kept (so fuzzer dictionary values survive), the
    /// first and last few uint256 values map to the edges of the range (so the edges are tried), anything else
    /// wraps around.
    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        require(min <= max, "bound: max < min");
        if (x >= min && x <= max) return x;
        unchecked {
            uint256 size = max - min + 1; // 0 only for the full uint256 range, where every x is inside
            if (x < 4 && x < size) return min + x;
            uint256 fromTop = type(uint256).max - x;
            if (fromTop < 4 && fromTop < size) return max - fromTop;
            return min + (x % size);
        }
    }
}

/// @notice A tiny assertion base for Recur's Solidity tests (forge-std is not available here). Assertions go
/// through the runner's assertion cheatcodes, which revert with a message showing both values.
abstract contract Test is CheatCodes {
    /// @notice Lets the runner tell test contracts apart (as forge-std's `IS_TEST`).
    bool public constant IS_TEST = true;

    function assertEq(uint256 left, uint256 right, string memory err) internal pure {
        vm.assertEq(left, right, err);
    }

    function assertEq(address left, address right, string memory err) internal pure {
        vm.assertEq(left, right, err);
    }

    function assertEq(bool left, bool right, string memory err) internal pure {
        vm.assertEq(left, right, err);
    }

    function assertEq(bytes memory left, bytes memory right, string memory err) internal pure {
        vm.assertEq(left, right, err);
    }

    function assertLe(uint256 left, uint256 right, string memory err) internal pure {
        vm.assertLe(left, right, err);
    }

    function assertGe(uint256 left, uint256 right, string memory err) internal pure {
        vm.assertGe(left, right, err);
    }

    function assertLt(uint256 left, uint256 right, string memory err) internal pure {
        vm.assertLt(left, right, err);
    }

    function assertTrue(bool condition, string memory err) internal pure {
        vm.assertTrue(condition, err);
    }

    function assertFalse(bool condition, string memory err) internal pure {
        vm.assertFalse(condition, err);
    }
}

/// @notice Invariant-test base: the runner calls these views after `setUp` to learn which contracts and
/// functions to fuzz and which senders to use, with the same names and ABI as forge-std's `StdInvariant`.
abstract contract InvariantTest is Test {
    /// @notice A target contract and the functions of it the fuzzer may call.
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    address[] private _targetedContracts;
    FuzzSelector[] private _targetedSelectors;
    address[] private _targetedSenders;
    address[] private _excludedContracts;
    address[] private _excludedSenders;

    function targetContract(address target) internal {
        _targetedContracts.push(target);
    }

    function targetSelector(FuzzSelector memory selector) internal {
        _targetedSelectors.push(selector);
    }

    function targetSender(address sender) internal {
        _targetedSenders.push(sender);
    }

    function excludeContract(address target) internal {
        _excludedContracts.push(target);
    }

    function excludeSender(address sender) internal {
        _excludedSenders.push(sender);
    }

    function targetContracts() public view returns (address[] memory) {
        return _targetedContracts;
    }

    function targetSelectors() public view returns (FuzzSelector[] memory) {
        return _targetedSelectors;
    }

    function targetSenders() public view returns (address[] memory) {
        return _targetedSenders;
    }

    function excludeContracts() public view returns (address[] memory) {
        return _excludedContracts;
    }

    function excludeSenders() public view returns (address[] memory) {
        return _excludedSenders;
    }
}
