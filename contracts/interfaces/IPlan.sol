// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IPlanCore} from "./IPlanCore.sol";
import {ChargeReason} from "./PlanTypes.sol";

/// @title A Recur fixed-price plan
/// @notice `IPlanCore` plus charging a fixed price per period, in token units or in USD through a price
/// feed: `charge` and `chargeMany`, callable by anyone unless the plan is keeper-restricted, optionally
/// paying the caller a keeper fee out of the price. Rules: see `IPlanCore`.
interface IPlan is IPlanCore {
    // ------------------------------------------------------------------------------------------------
    // Events
    // ------------------------------------------------------------------------------------------------

    /// @notice In `chargeMany`, a due charge could not be collected; nothing changed for `subscriber`.
    /// @param reason `MaxAmountExceeded`, `AllowanceTooLow`, `BalanceTooLow` or `TransferFailed`.
    event ChargeFailed(address indexed subscriber, ChargeReason reason);

    /// @notice The caller of a charge was paid its reward (`keeperFeeBps` of the charge).
    event KeeperFeePaid(address indexed keeper, address indexed subscriber, uint256 fee);

    /// @notice The owner authorized or revoked a keeper (matters for keeper-restricted plans).
    event KeeperAuthorized(address indexed keeper, bool authorized);

    // ------------------------------------------------------------------------------------------------
    // Errors
    // ------------------------------------------------------------------------------------------------

    /// @notice On a keeper-restricted plan, `caller` is neither the owner nor an authorized keeper.
    error NotAuthorizedKeeper(address caller);
    /// @notice A USD-priced plan's feed answer may not be used: `answer` not positive, `updatedAt` zero or in
    /// the future, or older than `maxPriceAge` seconds. Nothing is charged until the feed is fresh again.
    error PriceUnavailable(int256 answer, uint256 updatedAt, uint256 maxPriceAge);
    /// @notice On a plan with a keeper fee, the subscriber's allowance or balance does not cover the whole
    /// price (payee share + fee), so the charge is refused before any token moves.
    /// @param reason `AllowanceTooLow`, `BalanceTooLow` or `TransferFailed` (the token's views failed).
    error InsufficientFunds(address subscriber, ChargeReason reason);

    // ------------------------------------------------------------------------------------------------
    // Charging (anyone, or owner and keepers on keeper-restricted plans)
    // ------------------------------------------------------------------------------------------------

    /// @notice Collects one period from `subscriber`. Reverts with the reason when the rules forbid it
    /// (`NotDue`, `SubscriptionExpired`, `MaxAmountExceeded`, …) or the token transfer fails.
    /// @return amount Token base units pulled from the subscriber.
    function charge(address subscriber) external returns (uint256 amount);

    /// @notice Charges every due subscriber in `subscribers` and never reverts because one item fails:
    /// an item that is not chargeable by state (not due, paused, cancelled, expired, unknown, plan
    /// retired) is skipped; a due item whose pull fails (max amount, allowance, balance, blocklisted,
    /// token error) emits `ChargeFailed` and changes nothing. A subscriber listed twice is charged once.
    /// Reverts `BatchOutOfGas` rather than record a failure caused by too little gas.
    /// @return charged How many subscribers were charged.
    function chargeMany(address[] calldata subscribers) external returns (uint256 charged);

    // ------------------------------------------------------------------------------------------------
    // Owner actions
    // ------------------------------------------------------------------------------------------------

    /// @notice Authorizes or revokes `keeper` for keeper-restricted charging.
    function setKeeper(address keeper, bool authorized) external;

    // ------------------------------------------------------------------------------------------------
    // Views
    // ------------------------------------------------------------------------------------------------

    /// @notice Whether `account` may charge on this plan when it is keeper-restricted.
    function isKeeper(address account) external view returns (bool);
    /// @notice USD pricing: the feed (address(0) for a token-priced plan, whose `price` is in token units),
    /// the oldest answer a charge may use (seconds), and the margin `requiredAllowance` adds (basis points).
    function usdPricing() external view returns (address priceFeed, uint256 maxPriceAge, uint256 allowanceBufferBps);
    /// @notice Whether only the owner and authorized keepers may charge.
    function keeperRestricted() external view returns (bool);
    /// @notice The caller's reward out of each charge, basis points.
    function keeperFeeBps() external view returns (uint256);
}
