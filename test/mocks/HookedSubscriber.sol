// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

/// @notice The plan calls this contract uses (the same selectors on fixed and metered plans).
interface ISubscribablePlan {
    function subscribe(uint256 maxAmount) external returns (uint256);
}

/// @notice The registration `SenderHookToken` offers.
interface ISenderHookRegistry {
    function setSenderHook(bool registered) external;
}

/// @notice A contract subscriber on a `SenderHookToken` whose hook (called by the token before each pull
/// from it) lets the transfer through (`Pass`), reverts with a payload sized to the gas it was given
/// (`RevertHuge`: three quarters of it spent on memory, several hundred KB at a 200,000 budget and a few MB
/// at a 10M-gas batch, so that the token, which copies the payload before bubbling it, always runs out of
/// gas), or burns every unit of gas it was given (`BurnGas`). It approves and subscribes itself. Open to
/// anyone. Tests only.
contract HookedSubscriber {
    enum Hook {
        Pass,
        RevertHuge,
        BurnGas
    }

    /// @notice What the hook does from now on.
    Hook public hook;

    function setHook(Hook hook_) external {
        hook = hook_;
    }

    /// @notice Registers (or removes) this contract's hook on `token`.
    function registerHook(ISenderHookRegistry token, bool registered) external {
        token.setSenderHook(registered);
    }

    /// @notice Approves `spender` for `amount` of `token`, as this contract.
    function approve(IERC20 token, address spender, uint256 amount) external {
        // The test tokens revert on failure; the returned bool carries nothing more.
        token.approve(spender, amount);
    }

    /// @notice Subscribes this contract to `plan` with `maxAmount`.
    function subscribe(ISubscribablePlan plan, uint256 maxAmount) external {
        plan.subscribe(maxAmount);
    }

    /// @notice The token's call before a pull from this contract.
    function tokensToSend(address, address, address, uint256) external view {
        Hook h = hook;
        if (h == Hook.Pass) return;
        if (h == Hook.BurnGas) {
            assembly ("memory-safe") {
                for {} 1 {} {}
            }
        }
        // Memory for n words costs 3n + n^2/512 gas: spend three quarters of what is left on it.
        uint256 budget = (gasleft() * 3) / 4;
        uint256 words = 256 * (Math.sqrt(9 + (budget * 4) / 512) - 3);
        uint256 length = words * 32;
        assembly ("memory-safe") {
            revert(0, length)
        }
    }
}
