// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IMeteredPlan} from "./interfaces/IMeteredPlan.sol";
import {IPlanCore} from "./interfaces/IPlanCore.sol";
import {BillingMode, ChargeReason, PlanStatus, PlanTerms, Subscription, SubscriptionStatus} from "./interfaces/PlanTypes.sol";
import {BillingMath} from "./libraries/BillingMath.sol";
import {PackedSubscription} from "./libraries/PackedSubscription.sol";
import {PlanTermsLib} from "./libraries/PlanTermsLib.sol";
import {TokenCalls} from "./libraries/TokenCalls.sol";
import {PlanCore} from "./PlanCore.sol";

/// @title A metered (pay-as-you-go) subscription plan
/// @notice One contract per plan, created by `PlanFactory` for `BillingMode.Metered`. Usage is billed in
/// arrears: a subscription runs in cycles of `period` seconds from its start, and once a cycle has ended
/// the owner or an authorized reporter bills its usage with `chargeUsage`. Rules: see `IPlanCore` and
/// `IMeteredPlan`; the lifecycle shared with fixed plans is in `PlanCore`.
///
/// Trust model (the lifecycle's, shared with fixed plans: `PlanCore`)
/// - Owner and reporters: they alone bill usage, because they supply the amount. They choose the amount,
///   but never above `perCycleCap`, never above what the subscriber's `maxAmount` lets the plan pull after
///   credits, at most once per cycle, never before the cycle ends, only inside the grace window after it,
///   and never after cancel; the tokens go only to the payee. A reporter that lies about usage can
///   overcharge by at most the cap per cycle: the customer's protection is the cap, their `maxAmount`,
///   their allowance, and cancelling.
/// - Customer: nothing moves at sign-up; their free credits (granted once per subscriber per plan) are
///   spent before their tokens. Cancelling ends billing at once: the usage of the cycle in progress (or
///   of an ended cycle not billed yet) is never billed (rule 4). Subscribing again before that cycle's
///   grace window closes resumes the old schedule, so that cycle can be billed.
/// - Merchant's exposure (docs/SECURITY.md): at most one cycle, at most `perCycleCap`, per address.
///   Access (`hasAccess`) lasts only while no ended cycle waits for its bill; an address whose
///   subscription ended (cancelled or lapsed) with a cycle unbilled cannot start a fresh one until the
///   owner writes that cycle off (`writeOff`); and lowering the max amount never applies to a cycle
///   already running or waiting for its bill (`billingLimit`).
/// - Tokens: as for fixed plans, standard ERC-20s including ones that return nothing from
///   `transferFrom`; fee-on-transfer and rebasing tokens are NOT supported.
contract MeteredPlan is IMeteredPlan, PlanCore {
    using PackedSubscription for uint256;

    // ------------------------------------------------------------------------------------------------
    // Immutables (the terms)
    // ------------------------------------------------------------------------------------------------

    uint256 private immutable PER_CYCLE_CAP;
    uint256 private immutable FREE_CREDITS;

    // ------------------------------------------------------------------------------------------------
    // Storage
    // ------------------------------------------------------------------------------------------------

    /// @dev Authorized reporters per owner epoch (`_roleEpoch`): a new owner starts with none.
    mapping(uint256 epoch => mapping(address reporter => bool authorized)) private _reporters;
    /// @dev Free credits left per subscriber (token base units); a second slot, read only when billing.
    mapping(address subscriber => uint256 credits) private _credits;
    /// @dev Kept limits of the subscriber's unbilled cycles, read only when their word has `FLAG_LIMITS`:
    /// bits [0, 96) the limit of cycle `index`, [96, 192) of cycle `index + 1` (0: none kept), and
    /// [192, 224) `index`. See `_limitOf`.
    mapping(address subscriber => uint256 packed) private _cycleLimits;

    // ------------------------------------------------------------------------------------------------
    // Modifiers
    // ------------------------------------------------------------------------------------------------

    /// @dev Reporters first: they make most bills, and the short circuit then skips the owner's slot (a
    /// cold read, 2,100 gas; `npm run bench:gas`).
    modifier onlyReporter() {
        if (!_reporters[_roleEpoch][msg.sender] && msg.sender != owner()) revert NotAuthorizedReporter(msg.sender);
        _;
    }

    // ------------------------------------------------------------------------------------------------
    // Constructor
    // ------------------------------------------------------------------------------------------------

    /// @param owner_ The merchant: may change the payee, status and reporters, bill usage, and cancel
    /// subscriptions.
    /// @param terms The plan's terms; reverts with an `ITermsErrors` error if one is out of bounds or does
    /// not apply to a metered plan.
    constructor(address owner_, PlanTerms memory terms) PlanCore(owner_, terms) {
        PlanTermsLib.validateMetered(terms);
        PER_CYCLE_CAP = terms.perCycleCap;
        FREE_CREDITS = terms.freeCredits;
    }

    // ------------------------------------------------------------------------------------------------
    // Billing
    // ------------------------------------------------------------------------------------------------

    /// @inheritdoc IMeteredPlan
    function chargeUsage(address subscriber, uint256 usage, bytes32 usageRef)
        external
        nonReentrant
        onlyReporter
        returns (uint256)
    {
        // Checks
        uint256 word = _subscriptions[subscriber];
        uint256 credits = _creditsOf(subscriber);
        (ChargeReason reason, uint256 fromCredits, uint256 pulled) = _usageReason(subscriber, word, credits, usage);
        if (reason == ChargeReason.UsageAboveCap) revert UsageAboveCap(subscriber, usage, PER_CYCLE_CAP);
        if (reason == ChargeReason.MaxAmountExceeded) revert MaxAmountExceeded(pulled, _limitOf(subscriber, word));
        if (reason != ChargeReason.Ok) _revertWith(reason, subscriber, word, pulled);

        // Effects
        uint256 billed = _afterBill(subscriber, word);
        _subscriptions[subscriber] = billed;
        if (fromCredits != 0) _credits[subscriber] = credits - fromCredits;

        // Interaction
        if (pulled != 0) _pullOrRevert(subscriber, _payee, pulled);
        emit UsageCharged(subscriber, word.periodsPaid(), usage, fromCredits, pulled, billed.nextChargeAt(), usageRef);
        return pulled;
    }

    /// @inheritdoc IMeteredPlan
    function chargeUsageMany(address[] calldata subscribers, uint256[] calldata usages, bytes32[] calldata usageRefs)
        external
        nonReentrant
        onlyReporter
        returns (uint256 charged)
    {
        uint256 count = subscribers.length;
        if (usages.length != count || usageRefs.length != count) {
            revert LengthMismatch(count, usages.length, usageRefs.length);
        }
        address payee_ = _payee;
        for (uint256 i = 0; i < count; ++i) {
            address subscriber = subscribers[i];
            uint256 usage = usages[i];

            // Checks: every item the reporter sent is either billed or reported, never skipped silently.
            uint256 word = _subscriptions[subscriber];
            uint256 credits = _creditsOf(subscriber);
            (ChargeReason reason, uint256 fromCredits, uint256 pulled) =
                _usageReason(subscriber, word, credits, usage);
            if (reason != ChargeReason.Ok) {
                emit UsageChargeFailed(subscriber, reason, usage, usageRefs[i]);
                continue;
            }

            // Effects
            uint256 billed = _afterBill(subscriber, word);
            _subscriptions[subscriber] = billed;
            if (fromCredits != 0) _credits[subscriber] = credits - fromCredits;

            // Interaction: the pull always has its whole gas budget (or the batch reverts), so a failure
            // is the subscriber's or the token's, never the caller's gas: restore the word and the credits
            // (rule 12) and record why.
            if (pulled != 0) {
                if (!TokenCalls.hasGasFor(TokenCalls.PULL_GAS_NEEDED)) revert BatchOutOfGas(subscriber);
                if (!TokenCalls.transferFrom(address(TOKEN), subscriber, payee_, pulled, false)) {
                    _subscriptions[subscriber] = word;
                    if (fromCredits != 0) _credits[subscriber] = credits;
                    emit UsageChargeFailed(subscriber, _transferFailureReason(subscriber, pulled), usage, usageRefs[i]);
                    continue;
                }
            }
            emit UsageCharged(
                subscriber, word.periodsPaid(), usage, fromCredits, pulled, billed.nextChargeAt(), usageRefs[i]
            );
            // Cannot overflow: at most `count` increments.
            unchecked {
                ++charged;
            }
        }
    }

    // ------------------------------------------------------------------------------------------------
    // Owner actions
    // ------------------------------------------------------------------------------------------------

    /// @inheritdoc IMeteredPlan
    function setReporter(address reporter, bool authorized) external onlyOwner {
        _reporters[_roleEpoch][reporter] = authorized;
        emit ReporterAuthorized(reporter, authorized);
    }

    /// @inheritdoc IMeteredPlan
    function writeOff(address subscriber) external onlyOwner {
        Subscription memory sub = _load(subscriber);
        SubscriptionStatus current = _statusOf(sub);
        bool over = current == SubscriptionStatus.Expired
            || (current == SubscriptionStatus.Cancelled && !_resumable(sub));
        if (!over || sub.flags & BillingMath.FLAG_WRITTEN_OFF != 0) revert NothingToWriteOff(subscriber, current);
        sub.flags |= BillingMath.FLAG_WRITTEN_OFF;
        _store(subscriber, sub);
        emit CycleWrittenOff(subscriber, sub.periodsPaid, sub.nextChargeAt);
    }

    // ------------------------------------------------------------------------------------------------
    // Views
    // ------------------------------------------------------------------------------------------------

    /// @inheritdoc IMeteredPlan
    function usageChargeability(address subscriber, uint256 usage)
        public
        view
        returns (bool, ChargeReason, uint256, uint256)
    {
        (ChargeReason reason, uint256 fromCredits, uint256 pulled) =
            _usageReason(subscriber, _subscriptions[subscriber], _creditsOf(subscriber), usage);
        if (reason == ChargeReason.Ok && pulled != 0) reason = _fundsReason(subscriber, pulled);
        return (reason == ChargeReason.Ok, reason, fromCredits, pulled);
    }

    /// @inheritdoc IPlanCore
    function chargeability(address subscriber)
        public
        view
        override(IPlanCore, PlanCore)
        returns (bool, ChargeReason, uint256)
    {
        (bool ok, ChargeReason reason,,) = usageChargeability(subscriber, 0);
        return (ok, reason, 0);
    }

    /// @inheritdoc IPlanCore
    function isDue(address subscriber) external view returns (bool) {
        (bool ok,,) = chargeability(subscriber);
        return ok;
    }

    /// @inheritdoc IPlanCore
    function amountDue(address) external pure returns (uint256) {
        return 0;
    }

    /// @inheritdoc IPlanCore
    function hasAccess(address subscriber) external view returns (bool) {
        // Not while an ended cycle waits for its bill (PastDue): access is never given on credit beyond
        // the one cycle running.
        return _statusOf(_load(subscriber)) == SubscriptionStatus.Active;
    }

    /// @inheritdoc IMeteredPlan
    function billingLimit(address subscriber) external view returns (uint256) {
        return _limitOf(subscriber, _subscriptions[subscriber]);
    }

    /// @inheritdoc IPlanCore
    function requiredAllowance(uint256 periods) external view returns (uint256) {
        return BillingMath.requiredAllowance(PER_CYCLE_CAP, periods, 0);
    }

    /// @inheritdoc IMeteredPlan
    function creditsOf(address subscriber) external view returns (uint256) {
        return _creditsOf(subscriber);
    }

    /// @inheritdoc IMeteredPlan
    function freeCredits() external view returns (uint256) {
        return FREE_CREDITS;
    }

    /// @inheritdoc IMeteredPlan
    function isReporter(address account) external view returns (bool) {
        return account == owner() || _reporters[_roleEpoch][account];
    }

    /// @inheritdoc IPlanCore
    function nonces(address subscriber) public view override(IPlanCore, PlanCore) returns (uint256) {
        return super.nonces(subscriber);
    }

    /// @inheritdoc IPlanCore
    function price() external pure returns (uint256) {
        return 0;
    }

    /// @inheritdoc IPlanCore
    function trialPeriod() external pure returns (uint256) {
        return 0;
    }

    /// @inheritdoc IPlanCore
    function billingMode() external pure returns (BillingMode) {
        return BillingMode.Metered;
    }

    /// @inheritdoc IPlanCore
    function perCycleCap() external view returns (uint256) {
        return PER_CYCLE_CAP;
    }

    // ------------------------------------------------------------------------------------------------
    // Internal
    // ------------------------------------------------------------------------------------------------

    /// @dev Nothing is charged at sign-up, whatever the max amount: usage is billed after each cycle.
    function _checkSubscribe(uint96, uint256) internal pure override returns (uint256) {
        return 0;
    }

    /// @dev The first cycle starts now and is billable when it ends; a first-time subscriber gets the free
    /// credits (the trial-used flag marks them as granted, so cancelling and subscribing again grants
    /// nothing more). An ended subscription always leaves its last cycle unbilled (billing a cycle starts
    /// the next one), so an address that had one may start afresh only once the owner wrote it off.
    function _start(address subscriber, Subscription memory sub, SubscriptionStatus previous)
        internal
        override
        returns (bool, bool)
    {
        if (previous != SubscriptionStatus.None && sub.flags & BillingMath.FLAG_WRITTEN_OFF == 0) {
            revert UnbilledCycle(subscriber, sub.periodsPaid, sub.nextChargeAt);
        }
        if (sub.flags & BillingMath.FLAG_TRIAL_USED == 0 && FREE_CREDITS != 0) {
            _credits[subscriber] = FREE_CREDITS;
            emit CreditsGranted(subscriber, FREE_CREDITS);
        }
        sub.flags = BillingMath.FLAG_TRIAL_USED | BillingMath.FLAG_PAID;
        sub.nextChargeAt = uint40(block.timestamp + PERIOD);
        return (false, false);
    }

    /// @dev `subscriber`'s credits left; a plan without free credits never reads the slot (always 0 there:
    /// a cold read saved on every bill, 2,100 gas).
    function _creditsOf(address subscriber) internal view returns (uint256) {
        return FREE_CREDITS == 0 ? 0 : _credits[subscriber];
    }

    /// @dev On a metered plan the cancelled schedule resumes until the ended cycle's grace window closes:
    /// a customer who cancels after a cycle ends and subscribes again at once gets that cycle back to be
    /// billed, not a fresh one in its place (otherwise cancel-and-resubscribe would skip every bill).
    function _resumable(Subscription memory sub) internal view override returns (bool) {
        return block.timestamp <= uint256(sub.nextChargeAt) + GRACE_PERIOD;
    }

    /// @dev Why billing `usage` for `subscriber`'s packed subscription `word`, with `credits` left, is
    /// refused now, or `Ok`; and how it splits into credits and the amount pulled. Order: the rules of the
    /// schedule and status, then the plan's cap, then the cycle's limit (on the part pulled).
    function _usageReason(address subscriber, uint256 word, uint256 credits, uint256 usage)
        internal
        view
        returns (ChargeReason reason, uint256 fromCredits, uint256 pulled)
    {
        fromCredits = usage < credits ? usage : credits;
        pulled = usage - fromCredits;
        bool retired = _retiredFor(word.nextChargeAt(), word.flags());
        reason = BillingMath.chargeReason(word, block.timestamp, GRACE_PERIOD, retired, 0);
        if (reason != ChargeReason.Ok) return (reason, fromCredits, pulled);
        if (usage > PER_CYCLE_CAP) return (ChargeReason.UsageAboveCap, fromCredits, pulled);
        if (pulled > _limitOf(subscriber, word)) reason = ChargeReason.MaxAmountExceeded;
    }

    /// @dev The most the cycle waiting for its bill in `word` may pull: the subscriber's max amount, or the
    /// higher limit kept for that cycle when they lowered it since the cycle started.
    function _limitOf(address subscriber, uint256 word) internal view returns (uint256 limit) {
        limit = word.maxAmount();
        if (word.flags() & BillingMath.FLAG_LIMITS != 0) {
            uint256 kept = _keptLimit(_cycleLimits[subscriber], word.periodsPaid());
            if (kept > limit) limit = kept;
        }
    }

    /// @dev The limit kept in `packed` (see `_cycleLimits`) for cycle `cycle`, 0 if none.
    function _keptLimit(uint256 packed, uint256 cycle) internal pure returns (uint256) {
        uint256 index = packed >> 192;
        if (cycle == index) return uint96(packed);
        if (cycle == index + 1) return uint96(packed >> 96);
        return 0;
    }

    /// @dev The word after billing the cycle in `word`: one period on (anchored), the before-retirement mark
    /// cleared, and the kept-limits flag cleared once no limit is kept for the cycle that is now waiting.
    function _afterBill(address subscriber, uint256 word) internal view returns (uint256 billed) {
        // The cycle billed is over: the next one started at its end, after any retirement.
        billed = _afterCharge(word) & ~(uint256(BillingMath.FLAG_BEFORE_RETIREMENT) << PackedSubscription.FLAGS_SHIFT);
        if (word.flags() & BillingMath.FLAG_LIMITS != 0
            && _keptLimit(_cycleLimits[subscriber], billed.periodsPaid()) == 0) {
            billed &= ~(uint256(BillingMath.FLAG_LIMITS) << PackedSubscription.FLAGS_SHIFT);
        }
    }

    /// @dev A raise applies at once; a lowering only to cycles that start after it. Each cycle that has
    /// started and is not billed (the one at `nextChargeAt`, and the next one once the first has ended)
    /// keeps the highest max amount it has seen since it started, so a customer cannot lower their max
    /// amount (to zero, say) just before a bill for usage they already had.
    function _setMaxAmount(address subscriber, Subscription memory sub, uint96 newMax) internal override {
        uint256 word = PackedSubscription.pack(sub);
        uint256 cycle = sub.periodsPaid;
        uint256 kept = _limitOf(subscriber, word);
        kept = kept > newMax ? kept : 0;
        uint256 keptNext = 0;
        if (sub.pausedAt == 0 && block.timestamp >= sub.nextChargeAt) {
            // The next cycle is running too: its limit is the max amount in force when it started.
            keptNext = sub.maxAmount;
            if (sub.flags & BillingMath.FLAG_LIMITS != 0) {
                uint256 k = _keptLimit(_cycleLimits[subscriber], cycle + 1);
                if (k > keptNext) keptNext = k;
            }
            keptNext = keptNext > newMax ? keptNext : 0;
        }
        if (kept | keptNext != 0) {
            _cycleLimits[subscriber] = kept | (keptNext << 96) | (cycle << 192);
            sub.flags |= BillingMath.FLAG_LIMITS;
        } else {
            sub.flags &= ~BillingMath.FLAG_LIMITS;
        }
        sub.maxAmount = newMax;
    }

    /// @dev Retirement stops new cycles: a cycle that had started by then (its end less one period is
    /// before the retirement, or it is marked `FLAG_BEFORE_RETIREMENT`) can still be billed inside its grace
    /// window; the ones after cannot.
    function _retiredFor(uint256 dueAt, uint256 flags) internal view override returns (bool) {
        return _status == PlanStatus.Retired && dueAt >= uint256(_retiredAt) + PERIOD
            && flags & BillingMath.FLAG_BEFORE_RETIREMENT == 0;
    }

    /// @dev A pause freezes the running cycle, and its end moves by the paused time: when the plan was
    /// retired during the pause, the cycle (which had started before the retirement) is marked so that the
    /// move does not make it look like a cycle started after the retirement.
    function _unpause(Subscription memory sub) internal view override {
        if (_status == PlanStatus.Retired && !_retiredFor(sub.nextChargeAt, sub.flags)) {
            sub.flags |= BillingMath.FLAG_BEFORE_RETIREMENT;
        }
        super._unpause(sub);
    }

    /// @dev As for every plan, except that on a retired plan a subscription whose waiting cycle started
    /// after the retirement is over (`Expired`) at once: no cycle of it will ever be billed.
    function _statusOf(Subscription memory sub) internal view override returns (SubscriptionStatus current) {
        current = super._statusOf(sub);
        if (current == SubscriptionStatus.Active && _retiredFor(sub.nextChargeAt, sub.flags)) {
            current = SubscriptionStatus.Expired;
        }
    }
}
