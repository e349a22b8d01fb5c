// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ChargeReason, Subscription, SubscriptionStatus} from "../interfaces/PlanTypes.sol";
import {PackedSubscription} from "./PackedSubscription.sol";

/// @title Billing maths
/// @notice Pure functions of a subscription, the plan's terms and the time. Every status and charge
/// decision of a plan goes through here, so the rules are read (and fuzzed) in one place.
/// Times are unix seconds; amounts are token base units.
library BillingMath {
    /// @notice `Subscription.flags` bit: the subscription was cancelled.
    uint8 internal constant FLAG_CANCELLED = 1;
    /// @notice `Subscription.flags` bit: this subscriber has had their one trial on this plan.
    uint8 internal constant FLAG_TRIAL_USED = 2;
    /// @notice `Subscription.flags` bit: the current subscription has paid at least one period.
    uint8 internal constant FLAG_PAID = 4;
    /// @notice `Subscription.flags` bit: the owner blocked this address (`setBlocked`): it cannot subscribe
    /// or resume. Kept in the subscription's word so that sign-up reads no other slot.
    uint8 internal constant FLAG_BLOCKED = 8;
    /// @notice `Subscription.flags` bit, metered plans: the owner wrote off the unbilled cycle this ended
    /// subscription left (`writeOff`), so the address may start a fresh subscription.
    uint8 internal constant FLAG_WRITTEN_OFF = 16;
    /// @notice `Subscription.flags` bit, metered plans: the subscriber lowered their max amount while a
    /// cycle was running or waiting for its bill, and that cycle's higher limit is kept in a second slot.
    uint8 internal constant FLAG_LIMITS = 32;
    /// @notice `Subscription.flags` bit, metered plans: the cycle waiting for its bill started before the plan
    /// was retired, though a pause across the retirement moved its start past it (set when the pause ends,
    /// cleared when the cycle is billed), so it stays billable.
    uint8 internal constant FLAG_BEFORE_RETIREMENT = 64;
    /// @notice Basis points in one whole.
    uint256 internal constant BPS = 10_000;

    /// @notice The status of `sub` at time `now_`.
    /// @param grace The plan's grace period (seconds).
    /// @param retired Whether the plan is retired (no charge can happen any more).
    function statusOf(Subscription memory sub, uint256 now_, uint256 grace, bool retired)
        internal
        pure
        returns (SubscriptionStatus)
    {
        if (sub.startedAt == 0) return SubscriptionStatus.None;
        if (sub.flags & FLAG_CANCELLED != 0) return SubscriptionStatus.Cancelled;
        if (sub.pausedAt != 0) return SubscriptionStatus.Paused;
        if (now_ >= sub.nextChargeAt) {
            // A retired plan never charges again: once the paid time is over, the subscription is over.
            if (retired || now_ > sub.nextChargeAt + grace) return SubscriptionStatus.Expired;
            return SubscriptionStatus.PastDue;
        }
        return sub.flags & FLAG_PAID == 0 ? SubscriptionStatus.Trialing : SubscriptionStatus.Active;
    }

    /// @notice Whether a charge of `amount` for `sub` at `now_` is allowed by the plan's rules (everything
    /// except the token allowance and balance), and if not, why.
    function chargeReason(Subscription memory sub, uint256 now_, uint256 grace, bool retired, uint256 amount)
        internal
        pure
        returns (ChargeReason)
    {
        return chargeReason(PackedSubscription.pack(sub), now_, grace, retired, amount);
    }

    /// @notice `chargeReason` on a packed subscription word (the charge path's form).
    /// Order: not subscribed, cancelled, paused, plan retired, not due, lapsed, over the subscriber's max.
    function chargeReason(uint256 word, uint256 now_, uint256 grace, bool retired, uint256 amount)
        internal
        pure
        returns (ChargeReason)
    {
        if (PackedSubscription.startedAt(word) == 0) return ChargeReason.NotSubscribed;
        if (PackedSubscription.flags(word) & FLAG_CANCELLED != 0) return ChargeReason.Cancelled;
        if (PackedSubscription.pausedAt(word) != 0) return ChargeReason.Paused;
        if (retired) return ChargeReason.PlanRetired;
        uint256 next = PackedSubscription.nextChargeAt(word);
        if (now_ < next) return ChargeReason.NotDue;
        // Cannot overflow: `next` is a uint40 and `grace` a uint32 term.
        unchecked {
            if (now_ > next + grace) return ChargeReason.Expired;
        }
        if (amount > PackedSubscription.maxAmount(word)) return ChargeReason.MaxAmountExceeded;
        return ChargeReason.Ok;
    }

    /// @notice The due time after a pause from `pausedAt` to `now_`: the schedule shifts by the paused
    /// time, so the unused part of the period paid before the pause is kept.
    function shiftedForPause(uint256 nextChargeAt, uint256 pausedAt, uint256 now_) internal pure returns (uint256) {
        return nextChargeAt + (now_ - pausedAt);
    }

    /// @notice Allowance a subscriber needs for `periods` charges of `price`, plus `bufferBps` basis
    /// points of margin, rounded up.
    function requiredAllowance(uint256 price, uint256 periods, uint256 bufferBps) internal pure returns (uint256) {
        uint256 base = price * periods;
        if (bufferBps == 0) return base;
        return base + (base * bufferBps + BPS - 1) / BPS;
    }

    /// @notice The caller's reward out of a charge of `amount`: `feeBps` basis points, rounded down, so
    /// the payee's share is never rounded against them.
    function keeperFee(uint256 amount, uint256 feeBps) internal pure returns (uint256) {
        return amount * feeBps / BPS;
    }

    /// @notice A requested max amount as stored: values above `type(uint96).max` mean "no limit" and are
    /// stored as `type(uint96).max`, which is above every chargeable amount (prices are at most that).
    function clampMaxAmount(uint256 maxAmount) internal pure returns (uint96) {
        return maxAmount > type(uint96).max ? type(uint96).max : uint96(maxAmount);
    }
}
