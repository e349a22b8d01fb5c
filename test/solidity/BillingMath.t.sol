// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ChargeReason, Subscription, SubscriptionStatus} from "../../contracts/interfaces/PlanTypes.sol";
import {BillingMath} from "../../contracts/libraries/BillingMath.sol";
import {PackedSubscription} from "../../contracts/libraries/PackedSubscription.sol";
import {PlanTermsLib} from "../../contracts/libraries/PlanTermsLib.sol";

import {Test} from "./utils/Test.sol";

/// @notice Exposes BillingMath's internal functions, so the tests call exactly the code the plans inline.
contract BillingMathHarness {
    function statusOf(Subscription memory sub, uint256 now_, uint256 grace, bool retired)
        external
        pure
        returns (SubscriptionStatus)
    {
        return BillingMath.statusOf(sub, now_, grace, retired);
    }

    function chargeReason(Subscription memory sub, uint256 now_, uint256 grace, bool retired, uint256 amount)
        external
        pure
        returns (ChargeReason)
    {
        return BillingMath.chargeReason(sub, now_, grace, retired, amount);
    }

    function shiftedForPause(uint256 nextChargeAt, uint256 pausedAt, uint256 now_) external pure returns (uint256) {
        return BillingMath.shiftedForPause(nextChargeAt, pausedAt, now_);
    }

    function requiredAllowance(uint256 price, uint256 periods, uint256 bufferBps) external pure returns (uint256) {
        return BillingMath.requiredAllowance(price, periods, bufferBps);
    }

    function keeperFee(uint256 amount, uint256 feeBps) external pure returns (uint256) {
        return BillingMath.keeperFee(amount, feeBps);
    }

    function clampMaxAmount(uint256 maxAmount) external pure returns (uint96) {
        return BillingMath.clampMaxAmount(maxAmount);
    }

    function pack(Subscription memory sub) external pure returns (uint256) {
        return PackedSubscription.pack(sub);
    }

    function unpack(uint256 word) external pure returns (Subscription memory) {
        return PackedSubscription.unpack(word);
    }

    /// @dev The fields as the charge path reads them from the word.
    function fields(uint256 word) external pure returns (uint256[6] memory f) {
        f[0] = PackedSubscription.maxAmount(word);
        f[1] = PackedSubscription.nextChargeAt(word);
        f[2] = PackedSubscription.startedAt(word);
        f[3] = PackedSubscription.pausedAt(word);
        f[4] = PackedSubscription.periodsPaid(word);
        f[5] = PackedSubscription.flags(word);
    }

    function chargeReasonPacked(uint256 word, uint256 now_, uint256 grace, bool retired, uint256 amount)
        external
        pure
        returns (ChargeReason)
    {
        return BillingMath.chargeReason(word, now_, grace, retired, amount);
    }
}

/// @notice Fuzzes the pure billing maths every plan decision goes through (SPEC §1 rules 1, 3, 4, 5, 6, 7, 8).
contract BillingMathTest is Test {
    uint256 internal constant BPS = 10_000;

    BillingMathHarness internal math;

    function setUp() public {
        math = new BillingMathHarness();
    }

    // ------------------------------------------------------------------------------------------------
    // Helpers
    // ------------------------------------------------------------------------------------------------

    /// @dev A subscription that is live (started, neither cancelled nor paused), paid or trialing.
    function _live(uint96 maxAmount, uint40 nextChargeAt, bool paid) internal pure returns (Subscription memory sub) {
        sub.maxAmount = maxAmount;
        sub.nextChargeAt = nextChargeAt;
        sub.startedAt = 1;
        sub.flags = paid ? BillingMath.FLAG_PAID : 0;
    }

    /// @dev Makes most fuzzed subscriptions live (started, not cancelled, not paused), so the time-dependent
    /// branches are reached as often as the flag-dependent ones.
    function _mostlyLive(Subscription memory sub, uint256 seed) internal pure {
        uint256 r = uint256(keccak256(abi.encode(seed))) % 8;
        if (r < 6) {
            sub.flags &= ~BillingMath.FLAG_CANCELLED;
            sub.pausedAt = 0;
            if (sub.startedAt == 0) sub.startedAt = 1;
        }
    }

    /// @dev A time near `nextChargeAt` (within two grace windows either side), where every status boundary lies.
    function _timeNear(uint256 seed, uint256 nextChargeAt, uint256 grace) internal pure returns (uint256) {
        uint256 span = 2 * grace + 2;
        uint256 lo = nextChargeAt > span ? nextChargeAt - span : 0;
        return bound(seed, lo, nextChargeAt + span);
    }

    // ------------------------------------------------------------------------------------------------
    // statusOf / chargeReason consistency
    // ------------------------------------------------------------------------------------------------

    /// The rules allow a charge exactly when the subscription is PastDue (due, inside grace, not cancelled, not
    /// paused), the plan is not retired and the amount is within the subscriber's max.
    function testFuzz_chargeReason_okIffPastDueWithinMaxAndNotRetired(
        Subscription memory sub,
        uint256 nowSeed,
        uint256 grace,
        bool retired,
        uint256 amount
    ) public view {
        _mostlyLive(sub, nowSeed);
        grace = bound(grace, 0, PlanTermsLib.MAX_PERIOD - 1);
        uint256 now_ = _timeNear(nowSeed, sub.nextChargeAt, grace);
        amount = bound(amount, 0, uint256(sub.maxAmount) * 2 + 1);

        ChargeReason reason = math.chargeReason(sub, now_, grace, retired, amount);
        SubscriptionStatus status = math.statusOf(sub, now_, grace, retired);

        bool expectedOk = status == SubscriptionStatus.PastDue && amount <= sub.maxAmount && !retired;
        assertEq(reason == ChargeReason.Ok, expectedOk, "chargeReason Ok <=> PastDue && amount <= max && !retired");
    }

    /// Every rule reason names the status it comes from: NotSubscribed <=> None, Cancelled <=> Cancelled,
    /// Paused <=> Paused; on a live plan NotDue <=> Trialing/Active, Expired <=> Expired, Ok/MaxAmountExceeded
    /// <=> PastDue; on a retired plan a live subscription is refused PlanRetired, and Expired once its paid time
    /// is over.
    function testFuzz_statusOf_agreesWithChargeReason(
        Subscription memory sub,
        uint256 nowSeed,
        uint256 grace,
        bool retired,
        uint256 amount
    ) public view {
        _mostlyLive(sub, nowSeed);
        grace = bound(grace, 0, PlanTermsLib.MAX_PERIOD - 1);
        uint256 now_ = _timeNear(nowSeed, sub.nextChargeAt, grace);

        ChargeReason reason = math.chargeReason(sub, now_, grace, retired, amount);
        SubscriptionStatus status = math.statusOf(sub, now_, grace, retired);

        assertEq(reason == ChargeReason.NotSubscribed, status == SubscriptionStatus.None, "NotSubscribed <=> None");
        assertEq(reason == ChargeReason.Cancelled, status == SubscriptionStatus.Cancelled, "Cancelled <=> Cancelled");
        assertEq(reason == ChargeReason.Paused, status == SubscriptionStatus.Paused, "Paused <=> Paused");

        bool live = status != SubscriptionStatus.None && status != SubscriptionStatus.Cancelled
            && status != SubscriptionStatus.Paused;
        if (!live) return;

        bool notYetDue = status == SubscriptionStatus.Trialing || status == SubscriptionStatus.Active;
        assertEq(notYetDue, now_ < sub.nextChargeAt, "Trialing/Active <=> before nextChargeAt");
        if (retired) {
            assertEq(uint256(reason), uint256(ChargeReason.PlanRetired), "retired plan refuses every live charge");
            assertEq(status == SubscriptionStatus.Expired, !notYetDue, "retired: Expired once the paid time is over");
            return;
        }
        assertEq(reason == ChargeReason.NotDue, notYetDue, "NotDue <=> Trialing/Active");
        assertEq(reason == ChargeReason.Expired, status == SubscriptionStatus.Expired, "Expired <=> Expired");
        assertEq(
            reason == ChargeReason.Ok || reason == ChargeReason.MaxAmountExceeded,
            status == SubscriptionStatus.PastDue,
            "Ok/MaxAmountExceeded <=> PastDue"
        );
        assertEq(
            reason == ChargeReason.MaxAmountExceeded,
            status == SubscriptionStatus.PastDue && amount > sub.maxAmount,
            "MaxAmountExceeded <=> PastDue && amount > max"
        );
    }

    /// Cancelled beats paused beats the clock: a cancelled subscription is Cancelled and a paused one Paused at
    /// any time, whatever the plan status, and neither can be charged.
    function testFuzz_statusOf_cancelledAndPausedIgnoreTheClock(
        uint40 nextChargeAt,
        uint40 pausedAt,
        uint256 now_,
        uint256 grace,
        bool cancelled,
        bool retired
    ) public view {
        pausedAt = uint40(bound(pausedAt, 1, type(uint40).max));
        grace = bound(grace, 0, PlanTermsLib.MAX_PERIOD - 1);
        Subscription memory sub = _live(type(uint96).max, nextChargeAt, true);
        sub.pausedAt = pausedAt;
        if (cancelled) sub.flags |= BillingMath.FLAG_CANCELLED;

        SubscriptionStatus status = math.statusOf(sub, now_, grace, retired);
        ChargeReason reason = math.chargeReason(sub, now_, grace, retired, 1);
        if (cancelled) {
            assertEq(uint256(status), uint256(SubscriptionStatus.Cancelled), "cancelled status");
            assertEq(uint256(reason), uint256(ChargeReason.Cancelled), "cancelled reason");
        } else {
            assertEq(uint256(status), uint256(SubscriptionStatus.Paused), "paused status");
            assertEq(uint256(reason), uint256(ChargeReason.Paused), "paused reason");
        }
    }

    /// A subscriber who never subscribed (startedAt == 0) is None and NotSubscribed, whatever the other fields.
    function testFuzz_statusOf_noneWhenNeverStarted(Subscription memory sub, uint256 now_, uint256 grace, bool retired)
        public
        view
    {
        sub.startedAt = 0;
        grace = bound(grace, 0, PlanTermsLib.MAX_PERIOD - 1);
        assertEq(uint256(math.statusOf(sub, now_, grace, retired)), uint256(SubscriptionStatus.None), "status None");
        assertEq(
            uint256(math.chargeReason(sub, now_, grace, retired, 0)),
            uint256(ChargeReason.NotSubscribed),
            "reason NotSubscribed"
        );
    }

    // ------------------------------------------------------------------------------------------------
    // Grace window boundaries (rule 5)
    // ------------------------------------------------------------------------------------------------

    /// One second before nextChargeAt: not due (Active, or Trialing before the first payment). At nextChargeAt
    /// and at nextChargeAt + grace: PastDue and chargeable. At nextChargeAt + grace + 1: Expired for good.
    function testFuzz_statusOf_graceWindowBoundaries(uint40 nextChargeAt, uint256 grace, uint96 maxAmount, bool paid)
        public
        view
    {
        nextChargeAt = uint40(bound(nextChargeAt, 1, type(uint40).max));
        grace = bound(grace, 0, PlanTermsLib.MAX_PERIOD - 1);
        Subscription memory sub = _live(maxAmount, nextChargeAt, paid);
        uint256 due = nextChargeAt;
        SubscriptionStatus notDue = paid ? SubscriptionStatus.Active : SubscriptionStatus.Trialing;

        assertEq(uint256(math.statusOf(sub, due - 1, grace, false)), uint256(notDue), "status at due - 1");
        assertEq(uint256(math.chargeReason(sub, due - 1, grace, false, maxAmount)), uint256(ChargeReason.NotDue),
            "reason at due - 1");

        assertEq(uint256(math.statusOf(sub, due, grace, false)), uint256(SubscriptionStatus.PastDue), "status at due");
        assertEq(uint256(math.chargeReason(sub, due, grace, false, maxAmount)), uint256(ChargeReason.Ok),
            "reason at due");

        assertEq(uint256(math.statusOf(sub, due + grace, grace, false)), uint256(SubscriptionStatus.PastDue),
            "status at due + grace");
        assertEq(uint256(math.chargeReason(sub, due + grace, grace, false, maxAmount)), uint256(ChargeReason.Ok),
            "reason at due + grace");

        assertEq(uint256(math.statusOf(sub, due + grace + 1, grace, false)), uint256(SubscriptionStatus.Expired),
            "status at due + grace + 1");
        assertEq(uint256(math.chargeReason(sub, due + grace + 1, grace, false, maxAmount)),
            uint256(ChargeReason.Expired), "reason at due + grace + 1");

        // Over the subscriber's max inside the window: PastDue, but the charge is refused.
        if (maxAmount < type(uint96).max) {
            assertEq(uint256(math.chargeReason(sub, due, grace, false, uint256(maxAmount) + 1)),
                uint256(ChargeReason.MaxAmountExceeded), "reason above max");
        }
    }

    /// A retired plan never charges: a live subscription is refused PlanRetired, and once its paid time is over it
    /// is Expired at once (no grace), while before that it keeps its paid time.
    function testFuzz_statusOf_retiredPlanExpiresAtTheEndOfPaidTime(uint40 nextChargeAt, uint256 grace, bool paid)
        public
        view
    {
        nextChargeAt = uint40(bound(nextChargeAt, 1, type(uint40).max));
        grace = bound(grace, 0, PlanTermsLib.MAX_PERIOD - 1);
        Subscription memory sub = _live(type(uint96).max, nextChargeAt, paid);
        uint256 due = nextChargeAt;
        SubscriptionStatus notDue = paid ? SubscriptionStatus.Active : SubscriptionStatus.Trialing;

        assertEq(uint256(math.statusOf(sub, due - 1, grace, true)), uint256(notDue), "retired, before due");
        assertEq(uint256(math.statusOf(sub, due, grace, true)), uint256(SubscriptionStatus.Expired), "retired, at due");
        assertEq(uint256(math.chargeReason(sub, due - 1, grace, true, 1)), uint256(ChargeReason.PlanRetired),
            "retired reason before due");
        assertEq(uint256(math.chargeReason(sub, due, grace, true, 1)), uint256(ChargeReason.PlanRetired),
            "retired reason at due");
    }

    // ------------------------------------------------------------------------------------------------
    // Pause (rule 8)
    // ------------------------------------------------------------------------------------------------

    /// Resuming shifts the due time by exactly the paused time, so the part of the period left when the
    /// subscriber paused is kept to the second.
    function testFuzz_shiftedForPause_addsExactlyThePausedTime(uint40 nextChargeAt, uint40 pausedAt, uint256 pausedFor)
        public
        view
    {
        pausedFor = bound(pausedFor, 0, type(uint40).max);
        uint256 now_ = uint256(pausedAt) + pausedFor;
        uint256 shifted = math.shiftedForPause(nextChargeAt, pausedAt, now_);

        assertEq(shifted - nextChargeAt, pausedFor, "shift == paused time");
        if (pausedAt <= nextChargeAt) {
            assertEq(shifted - now_, uint256(nextChargeAt) - pausedAt, "time left at pause is kept");
        }
    }

    // ------------------------------------------------------------------------------------------------
    // Allowance (rule 6)
    // ------------------------------------------------------------------------------------------------

    /// With no buffer (token-priced plans) the allowance for n periods is exactly price * n.
    function testFuzz_requiredAllowance_zeroBufferIsPriceTimesPeriods(uint256 price, uint256 periods) public view {
        price = bound(price, 0, PlanTermsLib.MAX_PRICE);
        periods = bound(periods, 0, type(uint64).max);
        assertEq(math.requiredAllowance(price, periods, 0), price * periods, "price * periods");
    }

    /// With a buffer the margin is rounded up: the result is the smallest whole amount at least
    /// price * periods * (1 + bufferBps / 10_000).
    function testFuzz_requiredAllowance_roundsTheBufferUp(uint256 price, uint256 periods, uint256 bufferBps)
        public
        view
    {
        price = bound(price, 0, PlanTermsLib.MAX_PRICE);
        periods = bound(periods, 0, type(uint64).max);
        bufferBps = bound(bufferBps, 0, type(uint16).max);
        uint256 base = price * periods;
        uint256 exactTimesBps = base * (BPS + bufferBps); // the exact amount, scaled by BPS
        uint256 required = math.requiredAllowance(price, periods, bufferBps);

        assertGe(required * BPS, exactTimesBps, "never below the exact amount");
        if (required > 0) assertLt((required - 1) * BPS, exactTimesBps, "the smallest such whole amount");
        assertGe(required, base, "at least price * periods");
    }

    /// One more period needs at least one more price of allowance (exactly one with no buffer).
    function testFuzz_requiredAllowance_growsByAtLeastOnePricePerPeriod(
        uint256 price,
        uint256 periods,
        uint256 bufferBps
    ) public view {
        price = bound(price, 1, PlanTermsLib.MAX_PRICE);
        periods = bound(periods, 0, type(uint64).max - 1);
        bufferBps = bound(bufferBps, 0, type(uint16).max);
        uint256 step =
            math.requiredAllowance(price, periods + 1, bufferBps) - math.requiredAllowance(price, periods, bufferBps);
        assertGe(step, price, "one more period, at least one more price");
        assertEq(math.requiredAllowance(price, periods + 1, 0) - math.requiredAllowance(price, periods, 0), price,
            "no buffer: exactly one more price");
    }

    // ------------------------------------------------------------------------------------------------
    // Keeper fee (rule 11)
    // ------------------------------------------------------------------------------------------------

    /// The keeper's reward never exceeds the charge, payee share + fee == amount, and the fee is rounded down
    /// (the payee's share is never rounded against them). Within the plan bound (10%) it is at most a tenth.
    function testFuzz_keeperFee_neverExceedsTheAmountAndSplitsItExactly(uint256 amount, uint256 feeBps) public view {
        amount = bound(amount, 0, PlanTermsLib.MAX_PRICE);
        feeBps = bound(feeBps, 0, BPS);
        uint256 fee = math.keeperFee(amount, feeBps);
        uint256 payeeShare = amount - fee; // reverts (fails the test) if fee > amount

        assertLe(fee, amount, "fee <= amount");
        assertEq(payeeShare + fee, amount, "payee share + fee == amount");
        assertLe(fee * BPS, amount * feeBps, "fee rounded down");
        assertLt(amount * feeBps, (fee + 1) * BPS, "fee is the floor, not less");
        assertGe(payeeShare * BPS, amount * (BPS - feeBps), "payee gets at least its exact share");
        if (feeBps <= PlanTermsLib.MAX_KEEPER_FEE_BPS) assertLe(fee * 10, amount, "plan-bounded fee <= 10%");
    }

    // ------------------------------------------------------------------------------------------------
    // Packed subscription (the one storage word the charge path reads and writes)
    // ------------------------------------------------------------------------------------------------

    /// Packing loses nothing: unpack(pack(s)) == s, every accessor reads back its own field, and a word is
    /// exactly its six fields (pack(unpack(w)) == w).
    function testFuzz_packedSubscription_roundTripsEveryField(Subscription memory sub, uint256 word) public view {
        uint256 packed = math.pack(sub);
        Subscription memory back = math.unpack(packed);
        assertEq(back.maxAmount, sub.maxAmount, "maxAmount");
        assertEq(back.nextChargeAt, sub.nextChargeAt, "nextChargeAt");
        assertEq(back.startedAt, sub.startedAt, "startedAt");
        assertEq(back.pausedAt, sub.pausedAt, "pausedAt");
        assertEq(back.periodsPaid, sub.periodsPaid, "periodsPaid");
        assertEq(back.flags, sub.flags, "flags");

        uint256[6] memory f = math.fields(packed);
        assertEq(f[0], sub.maxAmount, "maxAmount(word)");
        assertEq(f[1], sub.nextChargeAt, "nextChargeAt(word)");
        assertEq(f[2], sub.startedAt, "startedAt(word)");
        assertEq(f[3], sub.pausedAt, "pausedAt(word)");
        assertEq(f[4], sub.periodsPaid, "periodsPaid(word)");
        assertEq(f[5], sub.flags, "flags(word)");

        assertEq(math.pack(math.unpack(word)), word, "a word is exactly its fields");
    }

    /// The charge path's decision on the packed word is the same as on the struct.
    function testFuzz_chargeReason_packedWordAgreesWithStruct(
        Subscription memory sub,
        uint256 nowSeed,
        uint256 grace,
        bool retired,
        uint256 amount
    ) public view {
        _mostlyLive(sub, nowSeed);
        grace = bound(grace, 0, PlanTermsLib.MAX_PERIOD - 1);
        uint256 now_ = _timeNear(nowSeed, sub.nextChargeAt, grace);
        assertEq(
            uint256(math.chargeReasonPacked(math.pack(sub), now_, grace, retired, amount)),
            uint256(math.chargeReason(sub, now_, grace, retired, amount)),
            "packed == struct"
        );
    }

    // ------------------------------------------------------------------------------------------------
    // Max amount (rule 3)
    // ------------------------------------------------------------------------------------------------

    /// A max amount is stored as given up to uint96.max, and as uint96.max ("no limit") above it, which is
    /// still at least every price a plan can have.
    function testFuzz_clampMaxAmount_keepsValuesThatFitAndCapsTheRest(uint256 maxAmount) public view {
        uint96 stored = math.clampMaxAmount(maxAmount);
        if (maxAmount <= type(uint96).max) {
            assertEq(stored, maxAmount, "kept as given");
        } else {
            assertEq(stored, type(uint96).max, "capped to uint96.max");
            assertGe(stored, PlanTermsLib.MAX_PRICE, "no-limit covers every price");
        }
    }
}
