// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";

/// @notice A 6-decimal ERC-20 with a transfer hook, as ERC-777 and ERC-1363 tokens have: after a
/// `transferFrom` has moved the balance, the token calls a configured `target` with configured calldata
/// (say, the plan's `charge`, `chargeMany`, `cancel`, `subscribe` or `chargeUsage`), as itself, and records
/// whether that re-entrant call reverted and with what. By default the hook swallows the re-entrant call's
/// failure (the worst case for the plan: the outer transfer still succeeds); with `bubble` it reverts the
/// outer transfer with the re-entrant call's revert data. `execute` makes the same kind of call outside any
/// transfer, so a test can show that the re-entrant call would succeed if it were not re-entrant (and can
/// make the token itself a subscriber: approve and subscribe as the token). Open to anyone. Tests only.
contract ReentrantToken is ERC20 {
    /// @notice Pulls from this account trigger the hook; address(0): every pull does.
    address public hookFrom;
    /// @notice What the hook calls; address(0): the hook is off.
    address public hookTarget;
    /// @notice The calldata the hook sends to `hookTarget`.
    bytes public hookData;
    /// @notice Whether a failed re-entrant call reverts the outer transfer (true) or is only recorded.
    bool public hookBubbles;

    /// @notice How many times the hook made its call.
    uint256 public reentries;
    /// @notice Whether the last re-entrant call succeeded, and what it returned (its revert data if not).
    bool public lastReentrySucceeded;
    bytes public lastReentryReturnData;

    /// @dev Set while the hook's call runs, so the hook does not fire again from inside itself.
    bool private _inHook;

    /// @notice The hook called `target` with a call whose selector is `selector`.
    event ReentryAttempted(address indexed target, bytes4 selector, bool succeeded, bytes returnData);

    error ExecuteFailed(bytes returnData);

    constructor() ERC20("Reentrant USD", "reUSD") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Arms the hook: after every `transferFrom` pulling from `from` (address(0): from anyone), call
    /// `target` with `data`; with `bubble`, a failure of that call reverts the transfer.
    function setHook(address from, address target, bytes calldata data, bool bubble) external {
        hookFrom = from;
        hookTarget = target;
        hookData = data;
        hookBubbles = bubble;
    }

    /// @notice Disarms the hook.
    function clearHook() external {
        hookTarget = address(0);
    }

    /// @notice Calls `target` with `data` as this token, outside any transfer; reverts `ExecuteFailed` with
    /// the call's revert data if it fails.
    function execute(address target, bytes calldata data) external returns (bytes memory) {
        (bool ok, bytes memory returnData) = target.call(data);
        if (!ok) revert ExecuteFailed(returnData);
        return returnData;
    }

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @dev The standard `transferFrom`, then the hook (the balance has already moved when it runs).
    function transferFrom(address from, address to, uint256 value) public override returns (bool) {
        bool moved = super.transferFrom(from, to, value);
        if (hookTarget != address(0) && !_inHook && (hookFrom == address(0) || hookFrom == from)) _callHook();
        return moved;
    }

    function _callHook() private {
        _inHook = true;
        bytes memory data = hookData;
        (bool ok, bytes memory returnData) = hookTarget.call(data);
        _inHook = false;
        ++reentries;
        lastReentrySucceeded = ok;
        lastReentryReturnData = returnData;
        emit ReentryAttempted(hookTarget, bytes4(data), ok, returnData);
        // With `bubble`, re-raise the re-entrant call's revert data as the transfer's own.
        if (!ok && hookBubbles) Address.verifyCallResult(ok, returnData);
    }
}
