// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {IPlan} from "../../contracts/interfaces/IPlan.sol";

/// @notice A contract customer that tries, in one transaction, to get a plan to pull more than one period:
/// it subscribes and then charges itself over and over, or loops cancel, subscribe and charge. Every plan
/// call it tries is recorded (`CallTried`, with the revert data when it failed) and none of their failures
/// reverts the transaction, so a test sees everything that was attempted and everything that moved. `run`
/// tries any list of calls on one target (a reporter contract billing in a loop, for example). Open to
/// anyone. Tests only.
contract Attacker {
    /// @notice One call to `target` whose selector is `selector` was tried.
    event CallTried(address indexed target, bytes4 indexed selector, bool succeeded, bytes returnData);

    /// @notice Approves `spender` for `amount` of `token`, as this contract.
    function approve(IERC20 token, address spender, uint256 amount) external {
        // The test tokens revert on failure; the returned bool carries nothing more.
        token.approve(spender, amount);
    }

    /// @notice `subscribe(maxAmount)` once, then `charge(this)` `charges` times, then
    /// `chargeMany([this, this])`. Returns how many of these calls succeeded.
    function subscribeThenCharge(IPlan plan, uint256 maxAmount, uint256 charges) external returns (uint256 succeeded) {
        address self = address(this);
        address[] memory twice = new address[](2);
        twice[0] = self;
        twice[1] = self;
        if (_try(address(plan), abi.encodeCall(plan.subscribe, (maxAmount)))) ++succeeded;
        for (uint256 i = 0; i < charges; ++i) {
            if (_try(address(plan), abi.encodeCall(plan.charge, (self)))) ++succeeded;
        }
        if (_try(address(plan), abi.encodeCall(plan.chargeMany, (twice)))) ++succeeded;
    }

    /// @notice `rounds` times: `cancel()`, `subscribe(maxAmount)`, `charge(this)`. Returns how many of these
    /// calls succeeded.
    function churn(IPlan plan, uint256 maxAmount, uint256 rounds) external returns (uint256 succeeded) {
        for (uint256 i = 0; i < rounds; ++i) {
            if (_try(address(plan), abi.encodeCall(plan.cancel, ()))) ++succeeded;
            if (_try(address(plan), abi.encodeCall(plan.subscribe, (maxAmount)))) ++succeeded;
            if (_try(address(plan), abi.encodeCall(plan.charge, (address(this))))) ++succeeded;
        }
    }

    /// @notice Tries each of `calls` on `target`, in order. Returns how many succeeded.
    function run(address target, bytes[] calldata calls) external returns (uint256 succeeded) {
        for (uint256 i = 0; i < calls.length; ++i) {
            if (_try(target, calls[i])) ++succeeded;
        }
    }

    function _try(address target, bytes memory data) private returns (bool ok) {
        bytes memory returnData;
        (ok, returnData) = target.call(data);
        emit CallTried(target, bytes4(data), ok, returnData);
    }
}
