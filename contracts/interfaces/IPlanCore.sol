// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC5267} from "@openzeppelin/contracts/interfaces/IERC5267.sol";

import {ITermsErrors} from "./ITermsErrors.sol";
import {
    BillingMode, ChargeReason, PlanStatus, Subscription, SubscriptionStatus
} from "./PlanTypes.sol";

/// @title What every Recur plan has, whatever its billing mode
/// @notice One contract per plan: `IPlan` (fixed price, `FixedPricePlan`) or `IMeteredPlan` (pay as you go,
/// `MeteredPlan`) adds the charging functions. Its terms (token, price or cap, period, trial or credits,
/// grace, billing mode, keeper rules) are immutable; only the payee, the plan status and the authorized
/// keepers or reporters change, by the owner (the merchant), each with an event.
///
/// The rules every plan enforces, whoever calls it (numbers as in docs/RULES.md):
///  1. Frequency: at most one charge per period; a charge moves `nextChargeAt` forward by exactly one
///     period (anchored: a late keeper causes no drift). A charge before `nextChargeAt` reverts `NotDue`.
///  2. Per-cycle cap: a fixed plan never pulls more than its price for one period; a metered plan never
///     bills more than its `perCycleCap` for one cycle.
///  3. Max amount: no charge above the subscriber's `maxAmount` (`MaxAmountExceeded`).
///  4. Cancellation: after `cancel`/`cancelFor` no charge can succeed for that subscription; access
///     lasts until the end of the period already paid.
///  5. Late charges are bounded: a due payment can be collected only in
///     [nextChargeAt, nextChargeAt + gracePeriod]; afterwards the subscription is `Expired` for good.
///  6. Allowance, not escrow: funds stay in the subscriber's wallet; each charge pulls with transferFrom.
///  7. Plan status: Active (new subscriptions), OnHold (no new ones, existing billed), Retired (terminal:
///     no new subscriptions, no further charges).
///  8. Pause: a paused subscription is never charged; resuming shifts the schedule by the paused time.
///  9. Trial: with a trial, the first charge is due at start + trial; without, `subscribe` collects the
///     first period at once or reverts.
/// 10. Only the subscriber subscribes: by their own transaction (`subscribe`, `subscribeWithPermit`) or
///     by their EIP-712 signature submitted by anyone (`subscribeBySig`: bound to this chain, this plan,
///     the subscriber's nonce and a deadline, so it works once, and never after the subscriber cancelled
///     or revoked it); an allowance alone is never enough. One trial per subscriber per plan, however they
///     subscribed. An address the owner blocked cannot subscribe or resume.
/// 11. Money goes only to the payee (and, if the plan was created with a keeper fee, that share of the
///     price to the caller); no caller-supplied recipient, and on fixed plans no caller-supplied amount
///     (a metered plan's amount comes from the owner or a reporter, within rules 2 and 3).
/// 12. Atomic: a charge whose token transfer fails changes nothing (no schedule move, no credit used).
///
/// Units: amounts are token base units; times are unix seconds; fees are basis points.
///
/// Signatures: `subscribeBySig` takes an EIP-712 (ERC-5267 readable) signature over
/// `Subscribe(address subscriber,uint256 maxAmount,uint256 nonce,uint256 deadline)`, and
/// `subscribeBySigWithRef` one over
/// `SubscribeWithRef(address subscriber,uint256 maxAmount,bytes32 ref,uint256 nonce,uint256 deadline)`,
/// in the domain {name: "Recur Plan", version: "1", chainId, verifyingContract: the plan}.
///
/// References: every sign-up can carry a `bytes32 ref` chosen by the merchant's checkout (an order or
/// customer id), emitted (indexed) in `Subscribed`. It comes from the subscriber's own transaction or
/// signature, so the merchant's backend can trust the mapping. The forms without a ref carry zero.
interface IPlanCore is ITermsErrors, IERC5267 {
    // ------------------------------------------------------------------------------------------------
    // Events
    // ------------------------------------------------------------------------------------------------

    /// @notice `subscriber` subscribed (or, while cancelled with paid time left, re-subscribed).
    /// @param maxAmount The cap on any single charge, as stored (token base units).
    /// @param startedAt When this subscription started.
    /// @param nextChargeAt When the next period is due (after the first charge, if `subscribe` made one).
    /// @param trial Whether this subscription started a free trial.
    /// @param ref The merchant's reference carried by the sign-up (zero for the forms without one).
    event Subscribed(
        address indexed subscriber,
        uint256 maxAmount,
        uint256 startedAt,
        uint256 nextChargeAt,
        bool trial,
        bytes32 indexed ref
    );

    /// @notice One period of a fixed plan was paid (a metered plan emits `IMeteredPlan.UsageCharged`).
    /// @param periodIndex 0-based count of the periods this subscriber paid on this plan before this one:
    /// (plan, subscriber, periodIndex) identifies a payment uniquely.
    /// @param amount Token base units pulled from the subscriber (payee share + keeper fee).
    /// @param nextChargeAt When the following period is due.
    event Charged(address indexed subscriber, uint256 periodIndex, uint256 amount, uint256 nextChargeAt);

    /// @notice The subscription was cancelled by `by` (the subscriber or the owner).
    /// @param paidThrough The end of the time already paid (or of the trial): access lasts until then. On a
    /// metered plan: the end of the cycle in progress, whose usage can then no longer be billed.
    event Cancelled(address indexed subscriber, address indexed by, uint256 paidThrough);

    /// @notice The subscriber paused at `pausedAt`.
    event Paused(address indexed subscriber, uint256 pausedAt);

    /// @notice The subscriber resumed after `pausedFor` seconds; the schedule moved by as much.
    event Resumed(address indexed subscriber, uint256 nextChargeAt, uint256 pausedFor);

    /// @notice The subscriber changed their cap on a single charge (token base units, as stored).
    event MaxAmountUpdated(address indexed subscriber, uint256 oldMaxAmount, uint256 newMaxAmount);

    /// @notice The owner changed the plan status.
    event PlanStatusChanged(PlanStatus oldStatus, PlanStatus newStatus);

    /// @notice The owner changed where charges are paid.
    event PayeeChanged(address indexed oldPayee, address indexed newPayee);

    /// @notice The owner blocked (`blocked` true) or unblocked `subscriber`. A blocked address cannot
    /// subscribe or resume; blocking moves no money and leaves a live subscription as it is.
    event SubscriberBlockUpdated(address indexed subscriber, bool blocked);

    /// @notice `subscriber` voided every `subscribeBySig` authorization they signed and nobody submitted:
    /// the next one must carry `nonce`.
    event AuthorizationsRevoked(address indexed subscriber, uint256 nonce);

    // ------------------------------------------------------------------------------------------------
    // Errors
    // ------------------------------------------------------------------------------------------------

    /// @notice `subscriber` has no subscription on this plan.
    error NotSubscribed(address subscriber);
    /// @notice The charge is not due: `nextChargeAt` is after `now`.
    error NotDue(address subscriber, uint256 nextChargeAt, uint256 now);
    /// @notice The charge `amount` is above the subscriber's `maxAmount`.
    error MaxAmountExceeded(uint256 amount, uint256 maxAmount);
    /// @notice The subscription is cancelled: it can never be charged again.
    error SubscriptionCancelled(address subscriber);
    /// @notice The subscription is paused since `pausedAt`.
    error SubscriptionPaused(address subscriber, uint256 pausedAt);
    /// @notice The grace window ended at `graceEndedAt`, before `now`: the subscription lapsed.
    error SubscriptionExpired(address subscriber, uint256 graceEndedAt, uint256 now);
    /// @notice The plan is retired: no charges, no new subscriptions.
    error PlanRetired();
    /// @notice New subscriptions need an `Active` plan.
    error PlanNotActive(PlanStatus status);
    /// @notice `subscriber` already has a live subscription with `status`.
    error AlreadySubscribed(address subscriber, SubscriptionStatus status);
    /// @notice The action is not possible for a subscription with `status`.
    error InvalidSubscriptionStatus(address subscriber, SubscriptionStatus status);
    /// @notice The token's `transferFrom` failed without an error of its own: it returned false, or ran
    /// out of its gas budget (`TokenCalls.PULL_GAS`) without a reason. (The error OpenZeppelin's SafeERC20
    /// raises, kept for the tools that know it; a token that reverts with its own error is reverted with.)
    error SafeERC20FailedOperation(address token);
    /// @notice The owner blocked `subscriber` from this plan (`setBlocked`): no sign-up, no resume.
    error SubscriberBlocked(address subscriber);
    /// @notice Plans cannot be left without an owner.
    error OwnershipCannotBeRenounced();
    /// @notice `status` is not a plan status.
    error InvalidPlanStatus(uint256 status);
    /// @notice The plan cannot go from `from` to `to` (Retired is terminal; no change is not a change).
    error InvalidStatusTransition(PlanStatus from, PlanStatus to);
    /// @notice The caller left too little gas for the token call for `subscriber` to have its whole fixed
    /// budget (`TokenCalls.PULL_GAS` for a pull, `VIEW_GAS` for each funds read): its outcome could then
    /// depend on the caller's gas, so the whole call reverts instead of recording a failure. Send more gas.
    error BatchOutOfGas(address subscriber);
    /// @notice A `subscribeBySig` authorization valid until `deadline` (unix seconds, inclusive) was
    /// submitted at `now`, after it.
    error SignatureExpired(uint256 deadline, uint256 now);
    /// @notice The signature given to `subscribeBySig` is not `subscriber`'s (ECDSA for an account without
    /// code, ERC-1271 for a contract) over a `Subscribe` with these values, this plan, this chain and the
    /// subscriber's current nonce: a wrong signer, wrong values, another plan or chain, or a replay.
    error InvalidSignature(address subscriber);

    // ------------------------------------------------------------------------------------------------
    // Subscriber actions
    // ------------------------------------------------------------------------------------------------

    /// @notice Subscribes the caller. Fixed plans: with an unused trial the first charge is due at now +
    /// trialPeriod; otherwise the first period is pulled now (reverts if it cannot be). Metered plans: the
    /// first usage cycle starts now and is billed after it ends, nothing moves now; a first-time subscriber
    /// is granted the plan's free credits. A cancelled subscription with paid (or trial) time left, or a
    /// metered one whose last cycle can still be billed (until the end of its grace window), is
    /// re-activated on its old schedule instead, without a charge.
    /// @param maxAmount Cap on any single charge, token base units; on a fixed plan at least the price.
    /// @return nextChargeAt When the next charge is due.
    function subscribe(uint256 maxAmount) external returns (uint256 nextChargeAt);

    /// @notice `subscribe`, carrying the merchant's `ref` into `Subscribed`.
    function subscribeWithRef(uint256 maxAmount, bytes32 ref) external returns (uint256 nextChargeAt);

    /// @notice `subscribe`, preceded in the same transaction by the token's ERC-2612
    /// `permit(caller, this plan, allowance, deadline, v, r, s)`. A permit that fails (front-run by
    /// someone who submitted it first, already used, expired, or a token without permit) is ignored: the
    /// subscription then goes through if the caller's allowance to this plan is already enough, and
    /// reverts with the token's error if the first period cannot be pulled. Like `subscribe`, it
    /// subscribes the caller and nobody else.
    /// @param maxAmount Cap on any single charge, token base units; must be at least the price.
    /// @param allowance The allowance the permit grants this plan, token base units (the total the caller
    /// authorizes over all charges: see `requiredAllowance`).
    /// @param deadline The permit's deadline, unix seconds (as the token defines it).
    /// @param v The permit signature's recovery byte.
    /// @param r The permit signature's `r`.
    /// @param s The permit signature's `s`.
    /// @return nextChargeAt When the next charge is due.
    function subscribeWithPermit(
        uint256 maxAmount,
        uint256 allowance,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external returns (uint256 nextChargeAt);

    /// @notice `subscribeWithPermit`, carrying the merchant's `ref` into `Subscribed`.
    function subscribeWithPermitAndRef(
        uint256 maxAmount,
        bytes32 ref,
        uint256 allowance,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external returns (uint256 nextChargeAt);

    /// @notice `subscribe` on behalf of `subscriber`, authorized by their EIP-712 signature and submitted by
    /// anyone (a relayer pays the gas). The signature covers `subscriber`, `maxAmount`, the subscriber's
    /// current `nonces(subscriber)` and `deadline`, in this plan's domain (this chain, this plan): it
    /// works once, on one chain, on one plan, and never again after a cancellation. The first period
    /// (when there is no trial) is pulled from `subscriber`, never from the caller, and the caller gets
    /// nothing. Trials, max amount and plan status apply exactly as for `subscribe`. A contract subscriber
    /// signs through ERC-1271; its answer is read when the authorization is submitted.
    /// @param subscriber The account subscribed, and the signer.
    /// @param maxAmount Cap on any single charge, token base units; must be at least the price.
    /// @param deadline Last moment the authorization may be submitted, unix seconds, inclusive
    /// (`SignatureExpired` after it).
    /// @param signature `subscriber`'s signature of the `Subscribe` typed data: 65 bytes (r, s, v; ERC-2098
    /// short signatures are refused) for an account without code, whatever its ERC-1271
    /// `isValidSignature` accepts for a contract. Reverts `InvalidSignature` otherwise.
    /// @return nextChargeAt When the next charge is due.
    function subscribeBySig(address subscriber, uint256 maxAmount, uint256 deadline, bytes calldata signature)
        external
        returns (uint256 nextChargeAt);

    /// @notice `subscribeBySig` for a `SubscribeWithRef` authorization, which also covers `ref`; the
    /// merchant's `ref` goes into `Subscribed`. Same nonce as `subscribeBySig`.
    function subscribeBySigWithRef(
        address subscriber,
        uint256 maxAmount,
        bytes32 ref,
        uint256 deadline,
        bytes calldata signature
    ) external returns (uint256 nextChargeAt);

    /// @notice Voids every `subscribeBySig` / `subscribeBySigWithRef` authorization the caller signed and
    /// nobody submitted yet, without touching their subscription: uses up their current nonce.
    function revokeAuthorizations() external;

    /// @notice Cancels the caller's subscription. No charge can succeed after this; access lasts until
    /// the end of the paid time (a paused subscription keeps its unused time). Also voids the caller's
    /// unsubmitted `subscribeBySig` authorizations (uses up their nonce).
    function cancel() external;

    /// @notice Pauses the caller's subscription (Trialing or Active only). Nothing is charged while
    /// paused; the time left of the paid period is kept for `resume`.
    function pause() external;

    /// @notice Resumes the caller's paused subscription; `nextChargeAt` moves by the paused time.
    function resume() external;

    /// @notice Sets the caller's cap on a single charge (token base units). Lowering it below the price
    /// stops charges (they fail with `MaxAmountExceeded`) until it is raised again. On a metered plan a
    /// raise applies at once, and a lowering from the next cycle that starts: a cycle running or ended and
    /// not yet billed keeps the highest max amount it has seen (`IMeteredPlan.billingLimit`).
    function setMaxAmount(uint256 maxAmount) external;

    // ------------------------------------------------------------------------------------------------
    // Owner actions
    // ------------------------------------------------------------------------------------------------

    /// @notice Cancels `subscriber`'s subscription (the merchant ends it); same effect as `cancel`. To keep
    /// them from subscribing again, `setBlocked` too.
    function cancelFor(address subscriber) external;

    /// @notice Blocks (or unblocks) `subscriber`: a blocked address cannot subscribe (by any path) or
    /// resume. Blocking moves no money and does not end a live subscription or its paid time (`cancelFor`
    /// does that).
    function setBlocked(address subscriber, bool blocked) external;

    /// @notice Changes the plan status (`PlanStatus` as uint8). Retired is terminal.
    function setStatus(uint8 newStatus) external;

    /// @notice Changes where future charges are paid. Refuses (`InvalidPayee`) an address that could
    /// never pass the tokens on: zero, this plan, or the token contract.
    function setPayee(address newPayee) external;

    // ------------------------------------------------------------------------------------------------
    // Views
    // ------------------------------------------------------------------------------------------------

    /// @notice The subscription's status now (derived from stored fields and `block.timestamp`).
    function statusOf(address subscriber) external view returns (SubscriptionStatus);

    /// @notice Whether the plan's rules allow charging `subscriber` now (allowance and balance aside; on a
    /// metered plan: whether a cycle has ended and may be billed now, whatever its usage).
    function isDue(address subscriber) external view returns (bool);

    /// @notice Token base units the next charge would pull; 0 when no further charge can happen
    /// (none, cancelled, expired, or the plan is retired). Always 0 on a metered plan, whose amount is
    /// only known when the usage is reported.
    function amountDue(address subscriber) external view returns (uint256);

    /// @notice When the next charge is due (unix seconds); 0 when no further charge is scheduled
    /// (none, cancelled, expired, paused, or the plan is retired: see `subscriptionOf` for the stored
    /// schedule).
    function nextChargeAt(address subscriber) external view returns (uint256);

    /// @notice Whether `subscriber` should have access now. Fixed plans: trialing, active (paid), or
    /// cancelled with paid time left; PastDue, paused, expired and unknown subscribers have no access (a
    /// merchant who grants access during the grace window can read `statusOf`). Metered plans: active
    /// only, that is inside a cycle with no ended cycle waiting for its bill; PastDue (an ended cycle not
    /// billed yet), paused, cancelled (nothing is paid in advance) and expired have no access.
    function hasAccess(address subscriber) external view returns (bool);

    /// @notice The stored subscription.
    function subscriptionOf(address subscriber) external view returns (Subscription memory);

    /// @notice Whether the owner blocked `subscriber` (`setBlocked`).
    function isBlocked(address subscriber) external view returns (bool);

    /// @notice Whether the next charge of `subscriber` would succeed, and if not why: the plan's rules
    /// first, then the subscriber's `maxAmount`, their allowance to this plan and their balance. Before the
    /// due time it reports what would stop the next charge if nothing changes (`MaxAmountExceeded`,
    /// `AllowanceTooLow`, `BalanceTooLow`), and `NotDue` only when nothing would; so a merchant can warn a
    /// customer before a charge fails and tell "approve more" from "top up your wallet". On a metered
    /// plan, whose amount is not known in advance, it reports the rules only (as for a zero usage, amount
    /// 0); `IMeteredPlan.usageChargeability` answers for a given usage.
    /// @return ok Whether a charge now would succeed.
    /// @return reason `Ok`, or the first reason it would not.
    /// @return amount Token base units the charge would pull.
    function chargeability(address subscriber)
        external
        view
        returns (bool ok, ChargeReason reason, uint256 amount);

    /// @notice `chargeability`'s reason for each of `subscribers`, read at one block: lets a keeper
    /// re-check a whole batch of candidates in one call before it pays gas for any of them.
    function chargeabilityMany(address[] calldata subscribers) external view returns (ChargeReason[] memory reasons);

    /// @notice Allowance a subscriber should give this plan to cover `periods` charges:
    /// price × periods × (1 + buffer), the buffer being 0 for token-priced plans; on a metered plan
    /// perCycleCap × periods, the most `periods` cycles can bill.
    function requiredAllowance(uint256 periods) external view returns (uint256);

    /// @notice The nonce the next `subscribeBySig` authorization of `subscriber` must carry; each
    /// successful `subscribeBySig`, each cancellation and each `revokeAuthorizations` uses it up (+1).
    function nonces(address subscriber) external view returns (uint256);

    /// @notice keccak256("Subscribe(address subscriber,uint256 maxAmount,uint256 nonce,uint256 deadline)"),
    /// the EIP-712 type hash of a `subscribeBySig` authorization.
    // solhint-disable-next-line func-name-mixedcase
    function SUBSCRIBE_TYPEHASH() external view returns (bytes32);

    /// @notice keccak256("SubscribeWithRef(address subscriber,uint256 maxAmount,bytes32 ref,uint256 nonce,uint256
    /// deadline)"), the EIP-712 type hash of a `subscribeBySigWithRef` authorization.
    // solhint-disable-next-line func-name-mixedcase
    function SUBSCRIBE_WITH_REF_TYPEHASH() external view returns (bytes32);

    /// @notice The ERC-20 pulled on each charge.
    function token() external view returns (address);
    /// @notice Where charges are paid now.
    function payee() external view returns (address);
    /// @notice The price per period: token base units, or USD with 8 decimals on a USD-priced plan; 0 on a
    /// metered plan.
    function price() external view returns (uint256);
    /// @notice Seconds per period.
    function period() external view returns (uint256);
    /// @notice Seconds of free trial for a first-time subscriber (0 on a metered plan).
    function trialPeriod() external view returns (uint256);
    /// @notice Seconds after a due time during which it can still be collected.
    function gracePeriod() external view returns (uint256);
    /// @notice The billing mode.
    function billingMode() external view returns (BillingMode);
    /// @notice Metered plans' per-cycle cap; 0 for fixed plans.
    function perCycleCap() external view returns (uint256);
    /// @notice The plan status.
    function status() external view returns (PlanStatus);
}
