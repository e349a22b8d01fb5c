// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {SubscriptionStatus} from "../../../contracts/interfaces/PlanTypes.sol";

/// @notice The subscription status transitions a plan allows, by what caused them (derived from `PlanCore`,
/// `FixedPricePlan`, `MeteredPlan` and `BillingMath.statusOf`; see docs/INVARIANTS.md). A handler reads
/// `statusOf` of every subscriber after each clock move and after each action, and asks `allowed` about every
/// change it sees. Staying in the same status is always allowed.
library StatusTransitions {
    /// @notice What happened between two readings.
    enum Cause {
        Time, // the clock moved (vm.warp), nothing was called
        Subscribe, // the subscriber's own `subscribe`
        Charge, // a keeper charge / a reporter bill (`charge`, `chargeMany`, `chargeUsage`, `chargeUsageMany`)
        Cancel, // `cancel` by the subscriber or `cancelFor` by the merchant
        Pause,
        Resume,
        Retire, // the merchant's `setStatus(Retired)`
        Other // calls that never move a subscription (setMaxAmount, setStatus(Active/OnHold), setPayee, approve, feed...)
    }

    /// @notice Whether a subscription may go from `from` to `to` because of `cause`, on a fixed plan (trials
    /// possible) or a metered one (never Trialing; a re-subscribe may land inside the last cycle's window).
    ///  - Time: Trialing/Active -> PastDue (due time reached) or Expired (grace also over, or the plan is retired
    ///    and the paid time ended), PastDue -> Expired. None, Paused, Cancelled and Expired ignore the clock.
    ///  - Subscribe: None -> Trialing (fixed, first time, plan has a trial) or Active (paid at once / metered);
    ///    Cancelled -> the old schedule (Trialing or Active; on a metered plan also PastDue when the last cycle
    ///    is still billable) or a fresh paid start (Active); Expired -> Active (a fresh start; the trial was
    ///    used by the first subscription, so never Trialing).
    ///    On a metered plan a fresh start after an ended subscription also needs the owner's `writeOff` (M6): the
    ///    metered handler checks that itself.
    ///  - Charge: PastDue -> Active (a charge needs a due, live subscription inside its window and moves the
    ///    due time one period on, past the window); on a retired metered plan also PastDue -> Expired (M8: the
    ///    cycle billed had started before the retirement, the one now waiting started after it).
    ///  - Cancel: Trialing/Active/PastDue/Paused -> Cancelled.
    ///  - Pause: Trialing/Active -> Paused.
    ///  - Resume: Paused -> Trialing/Active (the schedule moves by the paused time, so the paid time left is
    ///    kept: never PastDue or Expired right away; on a retired metered plan too, as the cycle running when
    ///    the subscriber paused had started before the retirement, M8).
    ///  - Retire: fixed plans, PastDue -> Expired (a retired plan never charges; Trialing/Active expire later, by
    ///    Time). Metered plans (M8): an ended cycle waiting for its bill had started before the retirement and
    ///    stays billable (PastDue stays PastDue); only a cycle starting at the very second of the retirement
    ///    makes Active -> Expired.
    function allowed(Cause cause, SubscriptionStatus from, SubscriptionStatus to, bool metered)
        internal
        pure
        returns (bool)
    {
        return allowed(cause, from, to, metered, false);
    }

    /// @notice `allowed`, knowing whether the plan is retired (`retired`: it was retired before the change).
    function allowed(Cause cause, SubscriptionStatus from, SubscriptionStatus to, bool metered, bool retired)
        internal
        pure
        returns (bool)
    {
        if (from == to) return true;
        if (metered && to == SubscriptionStatus.Trialing) return false;
        if (cause == Cause.Time) {
            if (from == SubscriptionStatus.Trialing || from == SubscriptionStatus.Active) {
                return to == SubscriptionStatus.PastDue || to == SubscriptionStatus.Expired;
            }
            return from == SubscriptionStatus.PastDue && to == SubscriptionStatus.Expired;
        }
        if (cause == Cause.Subscribe) {
            if (from == SubscriptionStatus.None) {
                return to == SubscriptionStatus.Trialing || to == SubscriptionStatus.Active;
            }
            if (from == SubscriptionStatus.Cancelled) {
                return to == SubscriptionStatus.Trialing || to == SubscriptionStatus.Active
                    || (metered && to == SubscriptionStatus.PastDue);
            }
            return from == SubscriptionStatus.Expired && to == SubscriptionStatus.Active;
        }
        if (cause == Cause.Charge) {
            return from == SubscriptionStatus.PastDue
                && (to == SubscriptionStatus.Active || (metered && retired && to == SubscriptionStatus.Expired));
        }
        if (cause == Cause.Cancel) {
            return to == SubscriptionStatus.Cancelled
                && (from == SubscriptionStatus.Trialing || from == SubscriptionStatus.Active
                    || from == SubscriptionStatus.PastDue || from == SubscriptionStatus.Paused);
        }
        if (cause == Cause.Pause) {
            return to == SubscriptionStatus.Paused
                && (from == SubscriptionStatus.Trialing || from == SubscriptionStatus.Active);
        }
        if (cause == Cause.Resume) {
            return from == SubscriptionStatus.Paused
                && (to == SubscriptionStatus.Trialing || to == SubscriptionStatus.Active);
        }
        if (cause == Cause.Retire) {
            if (metered) return from == SubscriptionStatus.Active && to == SubscriptionStatus.Expired;
            return from == SubscriptionStatus.PastDue && to == SubscriptionStatus.Expired;
        }
        return false;
    }
}

/// @notice Status bookkeeping for an invariant handler: the last status read for every subscriber, and the
/// changes it saw, counted by (cause, from, to). A change that `StatusTransitions.allowed` refuses, that moves a
/// subscriber other than the one acted on, or that enters Trialing after the subscriber was once seen Active (one
/// trial per subscriber per plan: a paid subscription never goes back to a trial) is counted in `badTransitions`.
abstract contract StatusTracker {
    mapping(address subscriber => SubscriptionStatus) internal _lastStatus;
    mapping(address subscriber => bool) internal _seenActive;

    /// @notice Changes `StatusTransitions.allowed` (or the rules above) refused; the invariant requires 0.
    uint256 public badTransitions;
    /// @notice Every status change seen, allowed or not.
    uint256 public statusChanges;
    /// @notice The first refused change, as "cause:from->to" (enum values), for the failure message.
    string public firstBadTransition;
    /// @notice How often each change was seen: key cause * 64 + from * 8 + to.
    mapping(uint256 key => uint256) public transitionsSeen;

    /// @dev `statusOf(subscriber)` on the handler's plan.
    function _statusNow(address subscriber) internal view virtual returns (SubscriptionStatus);

    /// @dev Whether the handler's plan was retired (some metered transitions depend on it); false unless overridden.
    function _planRetired() internal view virtual returns (bool) {
        return false;
    }

    /// @dev Reads every subscriber's status and books the changes since the last reading as caused by `cause`;
    /// `only`, if not 0, is the one subscriber the cause may move.
    function _observe(StatusTransitions.Cause cause, address[] storage subscribers, address only, bool metered)
        internal
    {
        for (uint256 i = 0; i < subscribers.length; ++i) {
            address a = subscribers[i];
            SubscriptionStatus s = _statusNow(a);
            SubscriptionStatus prev = _lastStatus[a];
            if (s != prev) {
                ++statusChanges;
                ++transitionsSeen[uint256(cause) * 64 + uint256(prev) * 8 + uint256(s)];
                bool ok = StatusTransitions.allowed(cause, prev, s, metered, _planRetired());
                if (only != address(0) && a != only) ok = false;
                if (s == SubscriptionStatus.Trialing && _seenActive[a]) ok = false;
                if (!ok) {
                    if (badTransitions == 0) {
                        firstBadTransition = string(
                            abi.encodePacked(
                                bytes1(uint8(48 + uint256(cause))),
                                ":",
                                bytes1(uint8(48 + uint256(prev))),
                                "->",
                                bytes1(uint8(48 + uint256(s)))
                            )
                        );
                    }
                    ++badTransitions;
                }
                _lastStatus[a] = s;
            }
            if (s == SubscriptionStatus.Active) _seenActive[a] = true;
        }
    }
}
