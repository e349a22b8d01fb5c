// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";

import {FixedPricePlan} from "../../contracts/FixedPricePlan.sol";
import {IPlan} from "../../contracts/interfaces/IPlan.sol";
import {IPlanCore} from "../../contracts/interfaces/IPlanCore.sol";
import {ITermsErrors} from "../../contracts/interfaces/ITermsErrors.sol";
import {ChargeReason, PlanTerms, Subscription, SubscriptionStatus} from "../../contracts/interfaces/PlanTypes.sol";
import {PlanTermsLib} from "../../contracts/libraries/PlanTermsLib.sol";
import {PlanFactory} from "../../contracts/PlanFactory.sol";
import {TestUSDC} from "../mocks/TestUSDC.sol";

import {PlanFixture} from "./utils/PlanFixture.sol";
import {Test} from "./utils/Test.sol";

/// @notice Rule 1 (frequency) and rule 5 (bounded late charges) against real plans made by PlanFactory, with
/// fuzzed terms and fuzzed sequences of time jumps and charge attempts; plus the factory's term bounds.
contract ChargeFrequencyTest is Test {
    /// @dev A realistic start time (the runner starts near 0), far from uint40 limits.
    uint256 internal constant T0 = 1_700_000_000;
    uint256 internal constant BPS = 10_000;
    /// @dev Steps (time jumps) per fuzzed sequence; each step makes one to three charge attempts.
    uint256 internal constant STEPS = 12;

    uint256 internal constant PRICE = 10e6; // 10 tUSDC
    uint256 internal constant PERIOD = 30 days;
    uint256 internal constant GRACE = 3 days;

    TestUSDC internal usdc;
    PlanFactory internal factory;

    address internal merchant = address(0xA11CE);
    address internal payee = address(0xFEE5);
    address internal subscriber = address(0xB0B);
    address internal subscriber2 = address(0xCA401);
    address internal keeper = address(0x4EE9E2);

    function setUp() public {
        vm.warp(T0);
        usdc = new TestUSDC();
        factory = new PlanFactory();
        vm.label(address(usdc), "tUSDC");
        vm.label(address(factory), "PlanFactory");
        vm.label(merchant, "merchant");
        vm.label(payee, "payee");
        vm.label(subscriber, "subscriber");
        vm.label(subscriber2, "subscriber2");
        vm.label(keeper, "keeper");
    }

    // ------------------------------------------------------------------------------------------------
    // Helpers
    // ------------------------------------------------------------------------------------------------

    function _createPlan(uint256 price, uint256 period, uint256 trial, uint256 grace, uint256 feeBps)
        internal
        returns (FixedPricePlan plan)
    {
        vm.prank(merchant);
        plan = FixedPricePlan(
            factory.createPlan(PlanFixture.fixedTerms(address(usdc), payee, price, period, trial, grace, feeBps))
        );
        vm.label(address(plan), "plan");
    }

    function _defaultPlan() internal returns (FixedPricePlan) {
        return _createPlan(PRICE, PERIOD, 0, GRACE, 0);
    }

    function _fundAndApprove(FixedPricePlan plan, address who, uint256 amount) internal {
        usdc.mint(who, amount);
        vm.prank(who);
        usdc.approve(address(plan), type(uint256).max);
    }

    function _subscribe(FixedPricePlan plan, address who, uint256 maxAmount) internal returns (uint256 nextChargeAt) {
        vm.prank(who);
        nextChargeAt = plan.subscribe(maxAmount);
    }

    /// @dev The revert data a charge at `now_` must fail with when it is outside [due, due + grace].
    function _outsideWindowError(address who, uint256 due, uint256 grace, uint256 now_)
        internal
        pure
        returns (bytes memory)
    {
        if (now_ < due) return abi.encodeWithSelector(IPlanCore.NotDue.selector, who, due, now_);
        return abi.encodeWithSelector(IPlanCore.SubscriptionExpired.selector, who, due + grace, now_);
    }

    // ------------------------------------------------------------------------------------------------
    // Unit cases (rule 1 and rule 5)
    // ------------------------------------------------------------------------------------------------

    /// A charge before nextChargeAt reverts NotDue, right after subscribing and one second before the due time.
    function test_charge_RevertWhen_NotDue() public {
        FixedPricePlan plan = _defaultPlan();
        _fundAndApprove(plan, subscriber, 10 * PRICE);
        uint256 due = _subscribe(plan, subscriber, PRICE);
        assertEq(due, T0 + PERIOD, "first period paid at subscribe");

        vm.expectRevert(abi.encodeWithSelector(IPlanCore.NotDue.selector, subscriber, due, T0));
        plan.charge(subscriber);

        vm.warp(due - 1);
        vm.expectRevert(abi.encodeWithSelector(IPlanCore.NotDue.selector, subscriber, due, due - 1));
        plan.charge(subscriber);
    }

    /// A second charge in the period just paid reverts NotDue, by the same or another caller.
    function test_charge_RevertWhen_AlreadyChargedThisPeriod() public {
        FixedPricePlan plan = _defaultPlan();
        _fundAndApprove(plan, subscriber, 10 * PRICE);
        uint256 due = _subscribe(plan, subscriber, PRICE);

        vm.warp(due);
        plan.charge(subscriber);

        vm.expectRevert(abi.encodeWithSelector(IPlanCore.NotDue.selector, subscriber, due + PERIOD, due));
        plan.charge(subscriber);
        vm.prank(keeper);
        vm.expectRevert(abi.encodeWithSelector(IPlanCore.NotDue.selector, subscriber, due + PERIOD, due));
        plan.charge(subscriber);
    }

    /// One second after nextChargeAt + grace the subscription has lapsed: the charge reverts SubscriptionExpired
    /// and nothing is pulled, now or later.
    function test_charge_RevertWhen_GraceWindowPassed() public {
        FixedPricePlan plan = _defaultPlan();
        _fundAndApprove(plan, subscriber, 10 * PRICE);
        uint256 due = _subscribe(plan, subscriber, PRICE);
        uint256 balance = usdc.balanceOf(subscriber);

        vm.warp(due + GRACE + 1);
        vm.expectRevert(
            abi.encodeWithSelector(IPlanCore.SubscriptionExpired.selector, subscriber, due + GRACE, due + GRACE + 1)
        );
        plan.charge(subscriber);
        assertEq(uint256(plan.statusOf(subscriber)), uint256(SubscriptionStatus.Expired), "Expired");

        vm.warp(due + 5 * PERIOD);
        vm.expectRevert(
            abi.encodeWithSelector(IPlanCore.SubscriptionExpired.selector, subscriber, due + GRACE, due + 5 * PERIOD)
        );
        plan.charge(subscriber);
        assertEq(usdc.balanceOf(subscriber), balance, "nothing pulled after the window");
    }

    /// The window is inclusive at both ends: a charge exactly at nextChargeAt and one exactly at
    /// nextChargeAt + grace both succeed.
    function test_charge_succeedsAtBothEdgesOfTheGraceWindow() public {
        FixedPricePlan plan = _defaultPlan();
        _fundAndApprove(plan, subscriber, 10 * PRICE);
        _fundAndApprove(plan, subscriber2, 10 * PRICE);
        uint256 due = _subscribe(plan, subscriber, PRICE);
        _subscribe(plan, subscriber2, PRICE);

        vm.warp(due);
        assertEq(plan.charge(subscriber), PRICE, "charged at nextChargeAt");
        vm.warp(due + GRACE);
        assertEq(plan.charge(subscriber2), PRICE, "charged at nextChargeAt + grace");
    }

    /// A late charge keeps the anchored schedule: nextChargeAt moves from the due time, not from the charge
    /// time, so the next period is due `period` after the previous due time (no drift).
    function test_charge_lateChargeKeepsTheAnchoredSchedule() public {
        FixedPricePlan plan = _defaultPlan();
        _fundAndApprove(plan, subscriber, 10 * PRICE);
        uint256 due = _subscribe(plan, subscriber, PRICE);

        vm.warp(due + GRACE);
        plan.charge(subscriber);
        assertEq(plan.nextChargeAt(subscriber), due + PERIOD, "anchored: due + period, not now + period");

        vm.warp(due + PERIOD);
        plan.charge(subscriber);
        assertEq(plan.nextChargeAt(subscriber), due + 2 * PERIOD, "still anchored");
    }

    /// chargeMany charges a subscriber listed several times once, and skips the ones not due.
    function testFuzz_chargeMany_chargesASubscriberListedManyTimesOnce(uint8 copies) public {
        uint256 n = bound(copies, 2, 20);
        FixedPricePlan plan = _defaultPlan();
        _fundAndApprove(plan, subscriber, 10 * PRICE);
        _fundAndApprove(plan, subscriber2, 10 * PRICE);
        uint256 due = _subscribe(plan, subscriber, PRICE);
        vm.warp(T0 + 1 days);
        _subscribe(plan, subscriber2, PRICE); // due a day later: not due in the batch

        address[] memory list = new address[](n + 1);
        for (uint256 i = 0; i < n; ++i) list[i] = subscriber;
        list[n] = subscriber2;
        uint256 before = usdc.balanceOf(subscriber);
        vm.warp(due);
        vm.prank(keeper);
        assertEq(plan.chargeMany(list), 1, "one charge");
        assertEq(before - usdc.balanceOf(subscriber), PRICE, "pulled one price");
        assertEq(plan.nextChargeAt(subscriber), due + PERIOD, "moved one period");
        assertEq(plan.nextChargeAt(subscriber2), T0 + 1 days + PERIOD, "the one not due is untouched");
    }

    // ------------------------------------------------------------------------------------------------
    // Fuzzed sequences (rule 1, rule 5)
    // ------------------------------------------------------------------------------------------------

    /// For any plan terms within bounds and any sequence of time jumps and repeated charge attempts (`charge`,
    /// or `chargeMany` with the subscriber listed twice): a charge succeeds iff now is in
    /// [nextChargeAt, nextChargeAt + grace]; otherwise it reverts NotDue / SubscriptionExpired (or is skipped)
    /// and pulls nothing. Each success pulls exactly the price and moves nextChargeAt by exactly one period;
    /// a second attempt at the same time always fails; successive charges are at least period - grace apart;
    /// and the total pulled is price x charges, all of it at the payee.
    function testFuzz_charge_neverMoreThanOncePerPeriod(uint256 price, uint256 period, uint256 grace, uint256 seed)
        public
    {
        price = bound(price, 1, PlanTermsLib.MAX_PRICE);
        period = bound(period, PlanTermsLib.MIN_PERIOD, PlanTermsLib.MAX_PERIOD);
        grace = bound(grace, PlanTermsLib.MIN_GRACE_PERIOD, period - 1);
        FixedPricePlan plan = _createPlan(price, period, 0, grace, 0);
        _fundAndApprove(plan, subscriber, price * (3 * STEPS + 1));

        uint256 next = _subscribe(plan, subscriber, price);
        assertEq(next, T0 + period, "subscribe pays the first period");
        uint256 t = T0;
        uint256 charges = 1; // the first period, paid by subscribe
        uint256 lastChargeAt = T0;

        for (uint256 i = 0; i < STEPS; ++i) {
            uint256 r = uint256(keccak256(abi.encode(seed, i)));
            t = _nextTime(r, t, next, period, grace);
            vm.warp(t);

            bool inWindow = t >= next && t <= next + grace;
            _checkViews(plan, t, next, grace, inWindow, true);

            uint256 attempts = 1 + (r >> 252) % 3;
            for (uint256 j = 0; j < attempts; ++j) {
                bool batch = (r >> (240 + j)) & 1 == 1;
                // After a success in this step, `next` has moved past t: the model expects NotDue.
                inWindow = t >= next && t <= next + grace;
                uint256 before = usdc.balanceOf(subscriber);
                bool charged = batch
                    ? _chargeManyTwice(plan)
                    : _chargeOnce(plan, price, inWindow, _outsideWindowError(subscriber, next, grace, t));
                assertEq(charged, inWindow, "charged iff now in [nextChargeAt, nextChargeAt + grace]");
                assertEq(before - usdc.balanceOf(subscriber), charged ? price : 0, "pulled price or nothing");
                if (charged) {
                    // Charge k (k = charges so far, the subscribe being charge 0) pays the period due at
                    // T0 + k * period, and happens inside that period's window.
                    assertEq(next, T0 + charges * period, "anchored due time");
                    assertGe(t, next, "not before its due time");
                    assertLe(t, next + grace, "not after its grace window");
                    assertGe(t - lastChargeAt, period - grace, "charges at least period - grace apart");
                    lastChargeAt = t;
                    next += period;
                    ++charges;
                }
                Subscription memory sub = plan.subscriptionOf(subscriber);
                assertEq(sub.nextChargeAt, next, "nextChargeAt moves one period per charge");
                assertEq(sub.periodsPaid, charges, "periodsPaid counts the charges");
                assertEq(sub.maxAmount, price, "maxAmount untouched");
                assertEq(sub.startedAt, T0, "startedAt untouched");
            }
        }

        uint256 totalPulled = price * (3 * STEPS + 1) - usdc.balanceOf(subscriber);
        assertEq(totalPulled, price * charges, "total pulled == price x charges");
        assertEq(usdc.balanceOf(payee), totalPulled, "all of it at the payee");
        assertEq(usdc.balanceOf(address(plan)), 0, "the plan holds nothing");
        // Never more than one charge per period: by the time of the last charge, at most
        // floor((lastChargeAt - T0) / period) + 1 periods had started.
        assertLe(charges, (lastChargeAt - T0) / period + 1, "at most one charge per started period");
    }

    /// For any terms (with or without a trial) and any time around the first due date, the charge succeeds
    /// exactly inside [nextChargeAt, nextChargeAt + grace], and the views (isDue, statusOf, chargeability,
    /// nextChargeAt) agree with what the charge does.
    function testFuzz_charge_onlyInsideTheGraceWindow(
        uint256 price,
        uint256 period,
        uint256 trial,
        uint256 grace,
        uint256 offset
    ) public {
        price = bound(price, 1, PlanTermsLib.MAX_PRICE);
        period = bound(period, PlanTermsLib.MIN_PERIOD, PlanTermsLib.MAX_PERIOD);
        trial = bound(trial, 0, PlanTermsLib.MAX_TRIAL);
        grace = bound(grace, PlanTermsLib.MIN_GRACE_PERIOD, period - 1);
        FixedPricePlan plan = _createPlan(price, period, trial, grace, 0);
        _fundAndApprove(plan, subscriber, 2 * price);

        uint256 due = _subscribe(plan, subscriber, type(uint256).max);
        assertEq(due, T0 + (trial != 0 ? trial : period), "first due: after the trial, or a period after paying");
        assertEq(usdc.balanceOf(payee), trial != 0 ? 0 : price, "no charge during a trial");

        uint256 before = due - T0 < grace + 1 ? due - T0 : grace + 1;
        uint256 t = bound(offset, due - before, due + 2 * grace + 1);
        vm.warp(t);
        bool inWindow = t >= due && t <= due + grace;
        _checkViews(plan, t, due, grace, inWindow, trial == 0);

        uint256 balance = usdc.balanceOf(subscriber);
        bool charged = _chargeOnce(plan, price, inWindow, _outsideWindowError(subscriber, due, grace, t));
        assertEq(charged, inWindow, "charged iff inside the window");
        assertEq(balance - usdc.balanceOf(subscriber), charged ? price : 0, "pulled price or nothing");
        assertEq(plan.subscriptionOf(subscriber).nextChargeAt, charged ? due + period : due, "schedule");
    }

    /// With a keeper fee, a charge pulls exactly the price: fee (rounded down) to the caller, the rest to the
    /// payee. The first period, paid by the subscriber's own subscribe, pays no fee.
    function testFuzz_charge_splitsThePriceBetweenPayeeAndKeeper(uint256 price, uint256 feeBps) public {
        price = bound(price, 1, PlanTermsLib.MAX_PRICE);
        feeBps = bound(feeBps, 0, PlanTermsLib.MAX_KEEPER_FEE_BPS);
        FixedPricePlan plan = _createPlan(price, PERIOD, 0, GRACE, feeBps);
        _fundAndApprove(plan, subscriber, 2 * price);

        uint256 due = _subscribe(plan, subscriber, price);
        assertEq(usdc.balanceOf(payee), price, "subscribe: whole price to the payee");

        vm.warp(due);
        vm.prank(keeper);
        assertEq(plan.charge(subscriber), price, "charge reports the price");
        uint256 fee = price * feeBps / BPS;
        assertEq(usdc.balanceOf(keeper), fee, "keeper gets the fee");
        assertEq(usdc.balanceOf(payee), 2 * price - fee, "payee gets price - fee");
        assertEq(usdc.balanceOf(subscriber), 0, "subscriber paid exactly two prices");
    }

    /// Rule 12: a due charge whose token pull fails (allowance below the price) reverts with the token's error and
    /// changes nothing; in a batch it is skipped, and the subscription stays chargeable once the allowance is
    /// raised, inside the same window.
    function testFuzz_charge_failedPullChangesNothing(uint256 allowance, uint256 lateBy) public {
        allowance = bound(allowance, 0, PRICE - 1);
        lateBy = bound(lateBy, 0, GRACE);
        FixedPricePlan plan = _defaultPlan();
        _fundAndApprove(plan, subscriber, 10 * PRICE);
        uint256 due = _subscribe(plan, subscriber, PRICE);
        vm.prank(subscriber);
        usdc.approve(address(plan), allowance);
        Subscription memory before = plan.subscriptionOf(subscriber);
        uint256 balance = usdc.balanceOf(subscriber);

        vm.warp(due + lateBy);
        vm.prank(keeper);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(plan), allowance, PRICE)
        );
        plan.charge(subscriber);
        address[] memory list = new address[](1);
        list[0] = subscriber;
        vm.prank(keeper);
        assertEq(plan.chargeMany(list), 0, "batch: not charged");

        Subscription memory after_ = plan.subscriptionOf(subscriber);
        assertEq(after_.nextChargeAt, before.nextChargeAt, "schedule unchanged");
        assertEq(after_.periodsPaid, before.periodsPaid, "periodsPaid unchanged");
        assertEq(after_.flags, before.flags, "flags unchanged");
        assertEq(usdc.balanceOf(subscriber), balance, "nothing pulled");

        vm.prank(subscriber);
        usdc.approve(address(plan), PRICE);
        assertEq(plan.charge(subscriber), PRICE, "chargeable again once approved");
        assertEq(plan.nextChargeAt(subscriber), due + PERIOD, "and it pays the same period");
    }

    /// On a keeper-fee plan the fee is part of the price: a wallet that covers only the payee share is refused
    /// with InsufficientFunds before any token moves, and chargeability says so (keepers get paid for their work).
    function test_charge_RevertWhen_WalletCoversOnlyThePayeeShare() public {
        uint256 feeBps = 250;
        FixedPricePlan plan = _createPlan(PRICE, PERIOD, 0, GRACE, feeBps);
        uint256 fee = PRICE * feeBps / BPS;
        _fundAndApprove(plan, subscriber, 10 * PRICE);
        uint256 due = _subscribe(plan, subscriber, PRICE);
        vm.prank(subscriber);
        usdc.approve(address(plan), PRICE - fee); // exactly the payee share
        uint256 payeeBefore = usdc.balanceOf(payee);

        vm.warp(due);
        vm.prank(keeper);
        vm.expectRevert(
            abi.encodeWithSelector(IPlan.InsufficientFunds.selector, subscriber, ChargeReason.AllowanceTooLow)
        );
        plan.charge(subscriber);
        assertEq(usdc.balanceOf(payee), payeeBefore, "payee unpaid");
        assertEq(usdc.balanceOf(keeper), 0, "no fee");
        assertEq(plan.nextChargeAt(subscriber), due, "the period is still due");
        (bool ok, ChargeReason why,) = plan.chargeability(subscriber);
        assertTrue(!ok && why == ChargeReason.AllowanceTooLow, "chargeability agrees");
    }

    // ------------------------------------------------------------------------------------------------
    // Plan terms (PlanTermsLib bounds)
    // ------------------------------------------------------------------------------------------------

    /// Every combination of terms within bounds creates a plan that reports exactly those terms.
    function testFuzz_createPlan_acceptsEveryTermWithinBounds(
        uint256 price,
        uint256 period,
        uint256 trial,
        uint256 grace,
        uint256 feeBps
    ) public {
        price = bound(price, 1, PlanTermsLib.MAX_PRICE);
        period = bound(period, PlanTermsLib.MIN_PERIOD, PlanTermsLib.MAX_PERIOD);
        trial = bound(trial, 0, PlanTermsLib.MAX_TRIAL);
        grace = bound(grace, PlanTermsLib.MIN_GRACE_PERIOD, period - 1);
        feeBps = bound(feeBps, 0, PlanTermsLib.MAX_KEEPER_FEE_BPS);
        FixedPricePlan plan = _createPlan(price, period, trial, grace, feeBps);

        assertTrue(factory.isPlan(address(plan)), "isPlan");
        assertEq(plan.owner(), merchant, "owner is the creator");
        assertEq(plan.token(), address(usdc), "token");
        assertEq(plan.payee(), payee, "payee");
        assertEq(plan.price(), price, "price");
        assertEq(plan.period(), period, "period");
        assertEq(plan.trialPeriod(), trial, "trial");
        assertEq(plan.gracePeriod(), grace, "grace");
        assertEq(plan.keeperFeeBps(), feeBps, "keeper fee");
        assertEq(plan.requiredAllowance(12), 12 * price, "requiredAllowance = price x periods");
    }

    /// A price of 0 or above MAX_PRICE (uint96.max) is refused with PriceOutOfRange.
    function testFuzz_createPlan_RevertWhen_PriceOutOfRange(uint256 price) public {
        if (price != 0) price = bound(price, PlanTermsLib.MAX_PRICE + 1, type(uint256).max);
        _expectCreateRevert(
            PlanFixture.fixedTerms(address(usdc), payee, price, PERIOD, 0, GRACE, 0),
            abi.encodeWithSelector(ITermsErrors.PriceOutOfRange.selector, price, PlanTermsLib.MAX_PRICE)
        );
    }

    /// A period under MIN_PERIOD (1 hour) or over MAX_PERIOD (3660 days) is refused with PeriodOutOfRange.
    function testFuzz_createPlan_RevertWhen_PeriodOutOfRange(uint32 period) public {
        vm.assume(period < PlanTermsLib.MIN_PERIOD || period > PlanTermsLib.MAX_PERIOD);
        _expectCreateRevert(
            PlanFixture.fixedTerms(address(usdc), payee, PRICE, period, 0, PlanTermsLib.MIN_GRACE_PERIOD, 0),
            abi.encodeWithSelector(
                ITermsErrors.PeriodOutOfRange.selector, period, PlanTermsLib.MIN_PERIOD, PlanTermsLib.MAX_PERIOD
            )
        );
    }

    /// A trial over MAX_TRIAL (366 days) is refused with TrialOutOfRange.
    function testFuzz_createPlan_RevertWhen_TrialTooLong(uint32 trial) public {
        trial = uint32(bound(trial, PlanTermsLib.MAX_TRIAL + 1, type(uint32).max));
        _expectCreateRevert(
            PlanFixture.fixedTerms(address(usdc), payee, PRICE, PERIOD, trial, GRACE, 0),
            abi.encodeWithSelector(ITermsErrors.TrialOutOfRange.selector, trial, PlanTermsLib.MAX_TRIAL)
        );
    }

    /// A grace period under MIN_GRACE_PERIOD (15 minutes) or not shorter than the period is refused with
    /// GracePeriodOutOfRange: grace < period is what makes "at most one charge per period" hold for late charges.
    function testFuzz_createPlan_RevertWhen_GraceOutOfRange(uint256 period, uint32 grace) public {
        period = bound(period, PlanTermsLib.MIN_PERIOD, PlanTermsLib.MAX_PERIOD);
        vm.assume(grace < PlanTermsLib.MIN_GRACE_PERIOD || grace >= period);
        _expectCreateRevert(
            PlanFixture.fixedTerms(address(usdc), payee, PRICE, period, 0, grace, 0),
            abi.encodeWithSelector(
                ITermsErrors.GracePeriodOutOfRange.selector, grace, PlanTermsLib.MIN_GRACE_PERIOD, period - 1
            )
        );
    }

    /// A keeper fee above MAX_KEEPER_FEE_BPS (10%) is refused with KeeperFeeOutOfRange.
    function testFuzz_createPlan_RevertWhen_KeeperFeeTooHigh(uint16 feeBps) public {
        feeBps = uint16(bound(feeBps, PlanTermsLib.MAX_KEEPER_FEE_BPS + 1, type(uint16).max));
        _expectCreateRevert(
            PlanFixture.fixedTerms(address(usdc), payee, PRICE, PERIOD, 0, GRACE, feeBps),
            abi.encodeWithSelector(
                ITermsErrors.KeeperFeeOutOfRange.selector, feeBps, PlanTermsLib.MAX_KEEPER_FEE_BPS
            )
        );
    }

    // ------------------------------------------------------------------------------------------------
    // Internal
    // ------------------------------------------------------------------------------------------------

    function _expectCreateRevert(PlanTerms memory terms, bytes memory expected) internal {
        uint256 count = factory.planCount();
        vm.prank(merchant);
        vm.expectRevert(expected);
        factory.createPlan(terms);
        assertEq(factory.planCount(), count, "no plan created");
    }

    /// @dev Picks the next time of a fuzzed sequence from the model's due time, so that most steps land in or
    /// at the edges of the window, some before it, and a few after it (which lapses the subscription for good).
    function _nextTime(uint256 r, uint256 t, uint256 next, uint256 period, uint256 grace)
        internal
        pure
        returns (uint256)
    {
        uint256 mode = r % 16;
        uint256 x = r >> 8;
        uint256 target;
        if (mode < 8) target = next + bound(x, 0, grace); // inside the window
        else if (mode < 10) target = x & 1 == 0 ? next : next + grace; // its edges
        else if (mode < 13) target = next > t ? bound(x, t, next - 1) : t; // before it
        else if (mode == 13) target = next - 1; // one second before
        else if (mode == 14) target = next + grace + 1 + bound(x, 0, period); // after it: lapses
        else target = t + bound(x, 0, 3 * period); // anywhere in the next three periods
        return target > t ? target : t;
    }

    /// @dev The views agree with the model: status, isDue, chargeability and nextChargeAt.
    function _checkViews(FixedPricePlan plan, uint256 t, uint256 due, uint256 grace, bool inWindow, bool paid)
        internal
        view
    {
        SubscriptionStatus expected = t < due
            ? (paid ? SubscriptionStatus.Active : SubscriptionStatus.Trialing)
            : (inWindow ? SubscriptionStatus.PastDue : SubscriptionStatus.Expired);
        assertEq(uint256(plan.statusOf(subscriber)), uint256(expected), "statusOf");
        assertEq(plan.isDue(subscriber), inWindow, "isDue iff inside the window");
        (bool ok, ChargeReason reason,) = plan.chargeability(subscriber);
        assertEq(ok, inWindow, "chargeability ok iff inside the window");
        if (!inWindow) {
            assertEq(uint256(reason), uint256(t < due ? ChargeReason.NotDue : ChargeReason.Expired), "reason");
        }
        assertEq(plan.nextChargeAt(subscriber), t <= due + grace ? due : 0, "nextChargeAt view");
    }

    /// @dev One `charge`; checks the amount on success and the exact revert data on failure.
    function _chargeOnce(FixedPricePlan plan, uint256 price, bool expectCharge, bytes memory expectedError)
        internal
        returns (bool)
    {
        vm.prank(keeper);
        try plan.charge(subscriber) returns (uint256 amount) {
            assertEq(amount, price, "charge pulls the price");
            return true;
        } catch (bytes memory err) {
            assertFalse(expectCharge, "charge reverted inside the window");
            assertEq(err, expectedError, "revert data");
            return false;
        }
    }

    /// @dev One `chargeMany` listing the subscriber twice: never more than one charge.
    function _chargeManyTwice(FixedPricePlan plan) internal returns (bool) {
        address[] memory list = new address[](2);
        list[0] = subscriber;
        list[1] = subscriber;
        vm.prank(keeper);
        uint256 charged = plan.chargeMany(list);
        assertLe(charged, 1, "a subscriber listed twice is charged at most once");
        return charged == 1;
    }
}
