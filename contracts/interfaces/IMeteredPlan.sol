// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IPlanCore} from "./IPlanCore.sol";
import {ChargeReason, SubscriptionStatus} from "./PlanTypes.sol";

/// @title A Recur metered (pay-as-you-go) plan
/// @notice `IPlanCore` plus usage billing in arrears. A subscription runs in cycles of `period` seconds
/// from the moment it starts; once a cycle has ended the owner or an authorized reporter bills its usage
/// with `chargeUsage`, exactly once, inside the grace window after the cycle's end (rule 5: afterwards the
/// subscription lapses and that cycle can never be billed). The usage amount is in token base units.
///
/// Metered rules (numbers as in docs/RULES.md):
///  M1. Only the owner and reporters the owner authorized (`setReporter`) bill usage: they supply the
///      amount, so nobody else may.
///  M2. A cycle is billed at most once and never before it ends (`NotDue`); billing it, even for zero
///      usage, moves `nextChargeAt` forward by exactly one period (anchored).
///  M3. Usage above `perCycleCap` is refused (`UsageAboveCap`), never clamped: the reporter's figure is
///      either billed in full or not at all.
///  M4. Free credits, granted once per subscriber per plan at their first subscription, pay for usage
///      before any token moves; only the rest is pulled from the subscriber, and that rest must not exceed
///      their `maxAmount` (`MaxAmountExceeded`).
///  M5. A failed pull changes nothing: the cycle stays unbilled and no credit is used (rule 12).
///  M6. No service on credit beyond one cycle: `hasAccess` is true only while no ended cycle waits for
///      its bill. An ended subscription (cancelled, or lapsed) always leaves its last cycle unbilled;
///      the address cannot start a fresh subscription on the plan until the owner writes that cycle off
///      (`writeOff`). Subscribing again while that cycle can still be billed resumes it instead.
///  M7. A cycle is billed under the max amount in force when it started: a raise applies at once, a
///      lowering only from the next cycle that starts (`billingLimit`).
///  M8. Retirement stops new cycles, not the bills of cycles that had started: those can still be
///      billed inside their grace window (a cycle paused across the retirement too, once it ends).
interface IMeteredPlan is IPlanCore {
    // ------------------------------------------------------------------------------------------------
    // Events
    // ------------------------------------------------------------------------------------------------

    /// @notice One cycle's usage was billed.
    /// @param cycleIndex 0-based count of the cycles billed to this subscriber on this plan before this one:
    /// (plan, subscriber, cycleIndex) identifies a bill uniquely.
    /// @param usage The usage billed, token base units (0 closes the cycle with nothing to pay).
    /// @param fromCredits The part paid with free credits.
    /// @param pulled The part pulled from the subscriber to the payee (usage - fromCredits).
    /// @param nextChargeAt When the following cycle ends.
    /// @param usageRef The reporter's reference for reconciliation (an invoice or usage-record id).
    event UsageCharged(
        address indexed subscriber,
        uint256 cycleIndex,
        uint256 usage,
        uint256 fromCredits,
        uint256 pulled,
        uint256 nextChargeAt,
        bytes32 indexed usageRef
    );

    /// @notice In `chargeUsageMany`, an item was not billed; nothing changed for `subscriber`.
    /// @param reason Why: a rule (`NotSubscribed`, `NotDue`, `Paused`, `Cancelled`, `Expired`, `PlanRetired`,
    /// `UsageAboveCap`, `MaxAmountExceeded`) or the pull (`AllowanceTooLow`, `BalanceTooLow`,
    /// `TransferFailed`).
    event UsageChargeFailed(address indexed subscriber, ChargeReason reason, uint256 usage, bytes32 indexed usageRef);

    /// @notice `subscriber` was granted `credits` token base units of free usage (at their first
    /// subscription).
    event CreditsGranted(address indexed subscriber, uint256 credits);

    /// @notice The owner authorized or revoked a usage reporter.
    event ReporterAuthorized(address indexed reporter, bool authorized);
    /// @notice The owner wrote off the unbilled cycle `cycleIndex` (ended at `cycleEnd`) that
    /// `subscriber`'s ended subscription left: the address may subscribe afresh.
    event CycleWrittenOff(address indexed subscriber, uint256 cycleIndex, uint256 cycleEnd);

    // ------------------------------------------------------------------------------------------------
    // Errors
    // ------------------------------------------------------------------------------------------------

    /// @notice `caller` is neither the owner nor an authorized reporter.
    error NotAuthorizedReporter(address caller);
    /// @notice `usage` for `subscriber` is above the plan's `perCycleCap`.
    error UsageAboveCap(address subscriber, uint256 usage, uint256 perCycleCap);
    /// @notice `subscriber`'s last subscription ended leaving cycle `cycleIndex` (ending at `cycleEnd`)
    /// unbilled: they cannot start a fresh subscription until the owner writes it off (`writeOff`).
    error UnbilledCycle(address subscriber, uint256 cycleIndex, uint256 cycleEnd);
    /// @notice `writeOff` needs a subscription that is over (expired, or cancelled and no longer
    /// resumable) and not written off already; `subscriber`'s is `status`.
    error NothingToWriteOff(address subscriber, SubscriptionStatus status);
    /// @notice The arrays given to `chargeUsageMany` differ in length.
    error LengthMismatch(uint256 subscribers, uint256 usages, uint256 usageRefs);

    // ------------------------------------------------------------------------------------------------
    // Billing (owner and reporters)
    // ------------------------------------------------------------------------------------------------

    /// @notice Bills `subscriber`'s usage for their ended cycle: credits first, the rest pulled to the
    /// payee, and the schedule moved one period on. Reverts with the reason when the rules forbid it
    /// (`NotAuthorizedReporter`, `NotDue`, `SubscriptionExpired`, `UsageAboveCap`, `MaxAmountExceeded`, …) or
    /// the token transfer fails.
    /// @param usage Token base units of usage in the cycle, at most `perCycleCap`; 0 closes the cycle.
    /// @param usageRef Any reference the merchant wants in `UsageCharged` (not checked, not stored).
    /// @return pulled Token base units pulled from the subscriber.
    function chargeUsage(address subscriber, uint256 usage, bytes32 usageRef) external returns (uint256 pulled);

    /// @notice `chargeUsage` for many subscribers, never reverting because one item fails: an item that
    /// cannot be billed emits `UsageChargeFailed` with the reason and changes nothing. A subscriber listed
    /// twice is billed once (the second item fails with `NotDue`). Reverts `BatchOutOfGas` rather than record
    /// a failure caused by too little gas, and `LengthMismatch` unless the three arrays have one length.
    /// @return charged How many items were billed.
    function chargeUsageMany(address[] calldata subscribers, uint256[] calldata usages, bytes32[] calldata usageRefs)
        external
        returns (uint256 charged);

    // ------------------------------------------------------------------------------------------------
    // Owner actions
    // ------------------------------------------------------------------------------------------------

    /// @notice Authorizes or revokes `reporter` to bill usage.
    function setReporter(address reporter, bool authorized) external;

    /// @notice Writes off the unbilled cycle that `subscriber`'s ended subscription left (it can never be
    /// billed: rule 4 after a cancel, rule 5 after the grace window), so that the address may subscribe
    /// afresh. Moves no money. Reverts `NothingToWriteOff` unless the subscription is over and not
    /// written off yet.
    function writeOff(address subscriber) external;

    // ------------------------------------------------------------------------------------------------
    // Views
    // ------------------------------------------------------------------------------------------------

    /// @notice Whether `chargeUsage(subscriber, usage, …)` would succeed now, and if not why (rules first,
    /// then the cap, the max amount, the allowance and the balance), with the split it would make. Lets a
    /// merchant check a whole usage file before sending anything.
    /// @return ok Whether it would succeed.
    /// @return reason `Ok`, or the first reason it would not.
    /// @return fromCredits The part free credits would pay.
    /// @return pulled The part that would be pulled from the subscriber.
    function usageChargeability(address subscriber, uint256 usage)
        external
        view
        returns (bool ok, ChargeReason reason, uint256 fromCredits, uint256 pulled);

    /// @notice The most the bill of `subscriber`'s waiting cycle (the one ending at `nextChargeAt`) may pull
    /// after credits: their max amount, or the higher one in force when that cycle started if they lowered
    /// it since (rule M7).
    function billingLimit(address subscriber) external view returns (uint256);

    /// @notice Free credits `subscriber` has left, token base units.
    function creditsOf(address subscriber) external view returns (uint256);

    /// @notice Free credits granted to each subscriber at their first subscription, token base units.
    function freeCredits() external view returns (uint256);

    /// @notice Whether `account` may bill usage (the owner or an authorized reporter).
    function isReporter(address account) external view returns (bool);
}
