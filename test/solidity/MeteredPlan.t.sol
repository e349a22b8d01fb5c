// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {IMeteredPlan} from "../../contracts/interfaces/IMeteredPlan.sol";
import {IPlanCore} from "../../contracts/interfaces/IPlanCore.sol";
import {
    BillingMode,
    ChargeReason,
    PlanStatus,
    Subscription,
    SubscriptionStatus
} from "../../contracts/interfaces/PlanTypes.sol";
import {PlanTermsLib} from "../../contracts/libraries/PlanTermsLib.sol";
import {MeteredPlan} from "../../contracts/MeteredPlan.sol";
import {PlanFactory} from "../../contracts/PlanFactory.sol";
import {BlocklistToken} from "../mocks/BlocklistToken.sol";
import {TestUSDC} from "../mocks/TestUSDC.sol";

import {PlanFixture} from "./utils/PlanFixture.sol";
import {Test} from "./utils/Test.sol";
import {Vm} from "./utils/Vm.sol";

/// @notice The metered rules (IMeteredPlan M1–M8, and IPlanCore rules 1, 3, 4, 5, 7, 8, 12 as a metered plan
/// applies them) against real `MeteredPlan`s made by PlanFactory, with fuzzed caps, credits, usages, max amounts
/// and times. Each test fails if the rule it names is broken: it checks the exact revert data, and that a refused
/// bill changes nothing (the stored word, the credits, both balances).
contract MeteredPlanTest is Test {
    /// @dev A realistic start time (the runner starts near 0), far from uint40 limits.
    uint256 internal constant T0 = 1_700_000_000;

    uint256 internal constant CAP = 100e6; // 100 tUSDC a cycle at most
    uint256 internal constant CREDITS = 25e6; // 25 tUSDC of free usage per subscriber
    uint256 internal constant PERIOD = 30 days;
    uint256 internal constant GRACE = 3 days;
    /// @dev Cycles billed by the fuzzed multi-cycle sequence.
    uint256 internal constant CYCLES = 8;
    bytes32 internal constant REF = keccak256("invoice-1");

    /// @dev One `UsageCharged` (billed) or `UsageChargeFailed` (not billed) log of a plan, decoded.
    struct Outcome {
        bool billed;
        address subscriber;
        bytes32 usageRef;
        uint256 usage;
        ChargeReason reason; // failures only
        uint256 cycleIndex; // bills only, and the four below
        uint256 fromCredits;
        uint256 pulled;
        uint256 nextChargeAt;
    }

    /// @dev What a bill may change: the stored subscription, the credits, and the two balances.
    struct State {
        Subscription sub;
        uint256 credits;
        uint256 balance;
        uint256 payeeBalance;
    }

    TestUSDC internal usdc;
    PlanFactory internal factory;

    address internal merchant = address(0xA11CE);
    address internal payee = address(0xFEE5);
    address internal reporter = address(0x4E904E7);
    address internal subscriber = address(0xB0B);
    address internal subscriber2 = address(0xCA401);
    address internal stranger = address(0x57A4E);

    function setUp() public {
        vm.warp(T0);
        usdc = new TestUSDC();
        factory = new PlanFactory();
        vm.label(address(usdc), "tUSDC");
        vm.label(address(factory), "PlanFactory");
        vm.label(merchant, "merchant");
        vm.label(payee, "payee");
        vm.label(reporter, "reporter");
        vm.label(subscriber, "subscriber");
        vm.label(subscriber2, "subscriber2");
        vm.label(stranger, "stranger");
    }

    // ------------------------------------------------------------------------------------------------
    // Unit cases
    // ------------------------------------------------------------------------------------------------

    /// The factory deploys a MeteredPlan for metered terms; it reports them, with the fixed-plan terms at 0.
    function test_createPlan_meteredTermsAreReadable() public {
        MeteredPlan plan = _defaultPlan();
        assertTrue(factory.isPlan(address(plan)), "isPlan");
        assertEq(plan.owner(), merchant, "owner is the creator");
        assertEq(uint256(plan.billingMode()), uint256(BillingMode.Metered), "billing mode");
        assertEq(plan.perCycleCap(), CAP, "perCycleCap");
        assertEq(plan.freeCredits(), CREDITS, "freeCredits");
        assertEq(plan.period(), PERIOD, "period");
        assertEq(plan.gracePeriod(), GRACE, "grace");
        assertEq(plan.price(), 0, "no price");
        assertEq(plan.trialPeriod(), 0, "no trial");
        assertEq(plan.requiredAllowance(12), 12 * CAP, "requiredAllowance = cap x cycles");
        assertTrue(plan.isReporter(merchant), "the owner reports");
        assertTrue(plan.isReporter(reporter), "the authorized reporter reports");
        assertFalse(plan.isReporter(stranger), "nobody else does");
    }

    /// Subscribing moves no token, whatever the max amount and allowance; the first cycle ends one period later,
    /// and a first-time subscriber is granted the free credits (CreditsGranted).
    function test_subscribe_pullsNothingAndGrantsTheFreeCredits() public {
        MeteredPlan plan = _defaultPlan();
        usdc.mint(subscriber, CAP); // no approval at all
        vm.recordLogs();
        uint256 due = _subscribe(plan, subscriber, 0);
        assertEq(due, T0 + PERIOD, "first cycle ends a period after the start");
        assertEq(usdc.balanceOf(subscriber), CAP, "nothing pulled");
        assertEq(plan.creditsOf(subscriber), CREDITS, "credits granted");
        assertEq(_creditsGranted(plan, subscriber), 1, "one CreditsGranted");
        assertEq(uint256(plan.statusOf(subscriber)), uint256(SubscriptionStatus.Active), "Active");
        assertEq(plan.amountDue(subscriber), 0, "amountDue is always 0 on a metered plan");
        assertFalse(plan.isDue(subscriber), "not due before the cycle ends");
    }

    /// A zero usage closes the cycle with nothing to pay: no allowance, no balance and a max amount of 0 are all
    /// enough; the schedule moves one period and a second zero bill in the same cycle reverts NotDue.
    function test_chargeUsage_zeroUsageClosesTheCycle() public {
        MeteredPlan plan = _createPlan(CAP, PERIOD, GRACE, 0);
        uint256 due = _subscribe(plan, subscriber, 0);
        vm.warp(due);
        vm.recordLogs();
        vm.prank(reporter);
        assertEq(plan.chargeUsage(subscriber, 0, REF), 0, "nothing pulled");
        Outcome[] memory o = _outcomes(plan);
        assertEq(o.length, 1, "one log");
        assertTrue(o[0].billed, "UsageCharged");
        assertEq(o[0].usage + o[0].fromCredits + o[0].pulled, 0, "zero bill");
        assertEq(plan.subscriptionOf(subscriber).nextChargeAt, due + PERIOD, "one period on");

        vm.prank(reporter);
        vm.expectRevert(abi.encodeWithSelector(IPlanCore.NotDue.selector, subscriber, due + PERIOD, due));
        plan.chargeUsage(subscriber, 0, REF);
    }

    /// The window is inclusive at both ends: a bill exactly at the cycle's end and one exactly at end + grace both
    /// succeed; one second later the subscription has lapsed.
    function test_chargeUsage_succeedsAtBothEdgesOfTheGraceWindow() public {
        MeteredPlan plan = _defaultPlan();
        _fundAndApprove(plan, subscriber, CAP);
        _fundAndApprove(plan, subscriber2, CAP);
        uint256 due = _subscribe(plan, subscriber, CAP);
        _subscribe(plan, subscriber2, CAP);

        vm.warp(due);
        vm.prank(reporter);
        assertEq(plan.chargeUsage(subscriber, CAP, REF), CAP - CREDITS, "billed at the cycle's end");
        vm.warp(due + GRACE);
        vm.prank(merchant);
        assertEq(plan.chargeUsage(subscriber2, CAP, REF), CAP - CREDITS, "billed at end + grace");
        vm.warp(due + PERIOD + GRACE + 1);
        vm.prank(reporter);
        vm.expectRevert(
            abi.encodeWithSelector(
                IPlanCore.SubscriptionExpired.selector, subscriber, due + PERIOD + GRACE, due + PERIOD + GRACE + 1
            )
        );
        plan.chargeUsage(subscriber, 0, REF);
    }

    /// M1: a reporter the owner revoked can no longer bill (NotAuthorizedReporter), singly or in a batch.
    function test_chargeUsage_RevertWhen_ReporterRevoked() public {
        MeteredPlan plan = _defaultPlan();
        _fundAndApprove(plan, subscriber, CAP);
        uint256 due = _subscribe(plan, subscriber, CAP);
        vm.prank(merchant);
        plan.setReporter(reporter, false);
        assertFalse(plan.isReporter(reporter), "revoked");

        vm.warp(due);
        State memory before = _state(plan, subscriber);
        vm.prank(reporter);
        vm.expectRevert(abi.encodeWithSelector(IMeteredPlan.NotAuthorizedReporter.selector, reporter));
        plan.chargeUsage(subscriber, CAP, REF);
        (address[] memory list, uint256[] memory usages, bytes32[] memory refs) = _one(subscriber, CAP);
        vm.prank(reporter);
        vm.expectRevert(abi.encodeWithSelector(IMeteredPlan.NotAuthorizedReporter.selector, reporter));
        plan.chargeUsageMany(list, usages, refs);
        _assertUnchanged(plan, subscriber, before, "revoked reporter");
    }

    /// chargeUsageMany reverts LengthMismatch unless its three arrays have one length.
    function test_chargeUsageMany_RevertWhen_LengthMismatch() public {
        MeteredPlan plan = _defaultPlan();
        address[] memory list = new address[](2);
        uint256[] memory usages = new uint256[](1);
        bytes32[] memory refs = new bytes32[](2);
        vm.prank(reporter);
        vm.expectRevert(abi.encodeWithSelector(IMeteredPlan.LengthMismatch.selector, 2, 1, 2));
        plan.chargeUsageMany(list, usages, refs);
        usages = new uint256[](2);
        refs = new bytes32[](3);
        vm.prank(reporter);
        vm.expectRevert(abi.encodeWithSelector(IMeteredPlan.LengthMismatch.selector, 2, 2, 3));
        plan.chargeUsageMany(list, usages, refs);
    }

    /// M5 / rule 12 with a token that refuses the transfer itself (a blocklisted subscriber): chargeUsage reverts
    /// with the token's error; in a batch the item fails with TransferFailed and the word and the credits it had
    /// already spent in memory are restored. Once unblocked, the same cycle bills with the same credits.
    function test_chargeUsageMany_restoresWordAndCreditsWhenTheTokenRefuses() public {
        BlocklistToken token = new BlocklistToken();
        vm.prank(merchant);
        MeteredPlan plan = MeteredPlan(
            factory.createPlan(PlanFixture.meteredTerms(address(token), payee, CAP, PERIOD, GRACE, CREDITS))
        );
        vm.prank(merchant);
        plan.setReporter(reporter, true);
        token.mint(subscriber, 10 * CAP);
        vm.prank(subscriber);
        token.approve(address(plan), type(uint256).max);
        uint256 due = _subscribe(plan, subscriber, type(uint256).max);

        // Cycle 0 uses 10 of the 25 credits and pulls nothing.
        vm.warp(due);
        vm.prank(reporter);
        assertEq(plan.chargeUsage(subscriber, 10e6, REF), 0, "paid by credits");
        assertEq(plan.creditsOf(subscriber), 15e6, "15 credits left");

        // Cycle 1: 40 of usage = 15 from credits + 25 pulled; the token refuses the pull.
        vm.warp(due + PERIOD + 1 hours);
        token.setBlocked(subscriber, true);
        State memory before = _state(plan, subscriber);
        vm.prank(reporter);
        vm.expectRevert(abi.encodeWithSelector(BlocklistToken.AddressBlocked.selector, subscriber));
        plan.chargeUsage(subscriber, 40e6, REF);
        _assertUnchanged(plan, subscriber, before, "chargeUsage refused by the token");

        (address[] memory list, uint256[] memory usages, bytes32[] memory refs) = _one(subscriber, 40e6);
        vm.recordLogs();
        vm.prank(reporter);
        assertEq(plan.chargeUsageMany(list, usages, refs), 0, "not billed");
        Outcome[] memory o = _outcomes(plan);
        assertEq(o.length, 1, "one log");
        assertFalse(o[0].billed, "UsageChargeFailed");
        assertEq(uint256(o[0].reason), uint256(ChargeReason.TransferFailed), "reason TransferFailed");
        _assertUnchanged(plan, subscriber, before, "batch item refused by the token");

        token.setBlocked(subscriber, false);
        vm.prank(reporter);
        assertEq(plan.chargeUsageMany(list, usages, refs), 1, "billed once unblocked");
        assertEq(plan.creditsOf(subscriber), 0, "the 15 credits paid first");
        assertEq(token.balanceOf(payee), 25e6, "the rest pulled to the payee");
        assertEq(plan.subscriptionOf(subscriber).nextChargeAt, due + 2 * PERIOD, "anchored");
    }

    // ------------------------------------------------------------------------------------------------
    // Fuzz: the split, the cap, the max amount (M3, M4, rules 2, 3, 11)
    // ------------------------------------------------------------------------------------------------

    /// For any cap, credits, usage within the cap, max amount and lateness inside the window: credits pay first
    /// (fromCredits = min(usage, credits)) and fromCredits + pulled == usage. If pulled <= maxAmount the bill
    /// returns pulled, the payee gains exactly pulled, the subscriber loses exactly pulled, the credits drop by
    /// exactly fromCredits, and nextChargeAt moves by exactly one period from the cycle's end (anchored, however
    /// late); otherwise it reverts MaxAmountExceeded(pulled, maxAmount) and changes nothing. usageChargeability
    /// predicts the split and the outcome.
    function testFuzz_chargeUsage_creditsFirstThenPullWithinMaxAmount(
        uint256 cap,
        uint256 credits,
        uint256 usage,
        uint256 maxAmount,
        uint256 lateBy
    ) public {
        cap = bound(cap, 1, PlanTermsLib.MAX_PRICE);
        credits = bound(credits, 0, 2 * cap < PlanTermsLib.MAX_PRICE ? 2 * cap : PlanTermsLib.MAX_PRICE);
        usage = bound(usage, 0, cap);
        maxAmount = bound(maxAmount, 0, 2 * cap); // above uint96 max it is stored as uint96 max ("no limit")
        lateBy = bound(lateBy, 0, GRACE);
        MeteredPlan plan = _createPlan(cap, PERIOD, GRACE, credits);
        _fundAndApprove(plan, subscriber, cap);
        uint256 due = _subscribe(plan, subscriber, maxAmount);
        assertEq(plan.creditsOf(subscriber), credits, "credits granted at subscribe");

        uint256 storedMax = maxAmount > type(uint96).max ? type(uint96).max : maxAmount;
        uint256 fromCredits = usage < credits ? usage : credits;
        uint256 pulled = usage - fromCredits;

        vm.warp(due + lateBy);
        (bool ok, ChargeReason reason, uint256 viewCredits, uint256 viewPulled) =
            plan.usageChargeability(subscriber, usage);
        assertEq(viewCredits, fromCredits, "usageChargeability: fromCredits");
        assertEq(viewPulled, pulled, "usageChargeability: pulled");
        State memory before = _state(plan, subscriber);

        if (pulled > storedMax) {
            assertFalse(ok, "usageChargeability refuses");
            assertEq(uint256(reason), uint256(ChargeReason.MaxAmountExceeded), "reason MaxAmountExceeded");
            vm.prank(reporter);
            vm.expectRevert(abi.encodeWithSelector(IPlanCore.MaxAmountExceeded.selector, pulled, storedMax));
            plan.chargeUsage(subscriber, usage, REF);
            _assertUnchanged(plan, subscriber, before, "MaxAmountExceeded");
            return;
        }

        assertTrue(ok, "usageChargeability accepts");
        vm.recordLogs();
        vm.prank(reporter);
        assertEq(plan.chargeUsage(subscriber, usage, REF), pulled, "returns pulled");
        Outcome[] memory o = _outcomes(plan);
        assertEq(o.length, 1, "one log");
        assertTrue(o[0].billed, "UsageCharged");
        assertEq(o[0].subscriber, subscriber, "event: subscriber");
        assertTrue(o[0].usageRef == REF, "event: usageRef");
        assertEq(o[0].cycleIndex, 0, "event: first cycle");
        assertEq(o[0].usage, usage, "event: usage");
        assertEq(o[0].fromCredits, fromCredits, "event: credits pay first");
        assertEq(o[0].pulled, pulled, "event: pulled");
        assertEq(o[0].fromCredits + o[0].pulled, usage, "fromCredits + pulled == usage");
        assertLe(o[0].pulled, storedMax, "pulled <= maxAmount");
        assertEq(o[0].nextChargeAt, due + PERIOD, "event: next cycle end");

        State memory after_ = _state(plan, subscriber);
        assertEq(before.balance - after_.balance, pulled, "subscriber paid exactly pulled");
        assertEq(after_.payeeBalance - before.payeeBalance, pulled, "payee received exactly pulled");
        assertEq(before.credits - after_.credits, fromCredits, "credits dropped by exactly fromCredits");
        assertEq(usdc.balanceOf(address(plan)), 0, "the plan holds nothing");
        _assertBilledOnce(before.sub, after_.sub, "bill");
    }

    /// M3: usage above perCycleCap reverts UsageAboveCap(subscriber, usage, cap), whatever the credits and max
    /// amount, by the owner or a reporter, and changes nothing; in a batch the item fails with UsageAboveCap.
    function testFuzz_chargeUsage_RevertWhen_UsageAboveCap(
        uint256 cap,
        uint256 credits,
        uint256 usage,
        uint256 maxAmount,
        uint256 lateBy
    ) public {
        cap = bound(cap, 1, PlanTermsLib.MAX_PRICE);
        credits = bound(credits, 0, PlanTermsLib.MAX_PRICE);
        usage = bound(usage, cap + 1, type(uint256).max);
        lateBy = bound(lateBy, 0, GRACE);
        MeteredPlan plan = _createPlan(cap, PERIOD, GRACE, credits);
        _fundAndApprove(plan, subscriber, cap);
        uint256 due = _subscribe(plan, subscriber, maxAmount);

        vm.warp(due + lateBy);
        (bool ok, ChargeReason reason,,) = plan.usageChargeability(subscriber, usage);
        assertFalse(ok, "usageChargeability refuses");
        assertEq(uint256(reason), uint256(ChargeReason.UsageAboveCap), "reason UsageAboveCap");
        State memory before = _state(plan, subscriber);

        bytes memory expected = abi.encodeWithSelector(IMeteredPlan.UsageAboveCap.selector, subscriber, usage, cap);
        vm.prank(reporter);
        vm.expectRevert(expected);
        plan.chargeUsage(subscriber, usage, REF);
        vm.prank(merchant);
        vm.expectRevert(expected);
        plan.chargeUsage(subscriber, usage, REF);
        _assertUnchanged(plan, subscriber, before, "UsageAboveCap");

        _assertBatchFails(plan, subscriber, usage, ChargeReason.UsageAboveCap);
        _assertUnchanged(plan, subscriber, before, "batch UsageAboveCap");
    }

    /// Rule 12 / M5: a due bill whose pull fails (allowance below the part after credits) reverts with the token's
    /// error and changes nothing; in a batch it fails with AllowanceTooLow and the word and the credits are
    /// restored; once approved, the same cycle bills with the same split.
    function testFuzz_chargeUsage_failedPullChangesNothing(
        uint256 credits,
        uint256 usage,
        uint256 allowance,
        uint256 lateBy
    ) public {
        credits = bound(credits, 0, CAP - 1);
        usage = bound(usage, credits + 1, CAP);
        uint256 pulled = usage - credits;
        allowance = bound(allowance, 0, pulled - 1);
        lateBy = bound(lateBy, 0, GRACE);
        MeteredPlan plan = _createPlan(CAP, PERIOD, GRACE, credits);
        _fundAndApprove(plan, subscriber, CAP);
        uint256 due = _subscribe(plan, subscriber, type(uint256).max);
        vm.prank(subscriber);
        usdc.approve(address(plan), allowance);

        vm.warp(due + lateBy);
        (bool ok, ChargeReason reason,,) = plan.usageChargeability(subscriber, usage);
        assertFalse(ok, "usageChargeability refuses");
        assertEq(uint256(reason), uint256(ChargeReason.AllowanceTooLow), "reason AllowanceTooLow");
        State memory before = _state(plan, subscriber);

        vm.prank(reporter);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(plan), allowance, pulled)
        );
        plan.chargeUsage(subscriber, usage, REF);
        _assertUnchanged(plan, subscriber, before, "failed pull");

        _assertBatchFails(plan, subscriber, usage, ChargeReason.AllowanceTooLow);
        _assertUnchanged(plan, subscriber, before, "failed pull in a batch");

        vm.prank(subscriber);
        usdc.approve(address(plan), pulled);
        vm.prank(reporter);
        assertEq(plan.chargeUsage(subscriber, usage, REF), pulled, "billed once approved");
        assertEq(plan.creditsOf(subscriber), 0, "the credits paid first");
        _assertBilledOnce(before.sub, plan.subscriptionOf(subscriber), "bill after approve");
    }

    // ------------------------------------------------------------------------------------------------
    // Fuzz: the schedule (M2, rules 1 and 5)
    // ------------------------------------------------------------------------------------------------

    /// M2: before the cycle ends a bill reverts NotDue(subscriber, nextChargeAt, now), for any period, grace, time
    /// and usage, and changes nothing.
    function testFuzz_chargeUsage_RevertWhen_NotDue(uint256 period, uint256 grace, uint256 offset, uint256 usage)
        public
    {
        period = bound(period, PlanTermsLib.MIN_PERIOD, PlanTermsLib.MAX_PERIOD);
        grace = bound(grace, PlanTermsLib.MIN_GRACE_PERIOD, period - 1);
        usage = bound(usage, 0, CAP);
        MeteredPlan plan = _createPlan(CAP, period, grace, CREDITS);
        _fundAndApprove(plan, subscriber, CAP);
        uint256 due = _subscribe(plan, subscriber, type(uint256).max);
        assertEq(due, T0 + period, "cycle ends a period after the start");

        uint256 t = bound(offset, T0, due - 1);
        vm.warp(t);
        State memory before = _state(plan, subscriber);
        vm.prank(reporter);
        vm.expectRevert(abi.encodeWithSelector(IPlanCore.NotDue.selector, subscriber, due, t));
        plan.chargeUsage(subscriber, usage, REF);
        _assertUnchanged(plan, subscriber, before, "NotDue");
        assertFalse(plan.isDue(subscriber), "isDue false");
    }

    /// Rule 5: after cycle end + grace a bill reverts SubscriptionExpired(subscriber, end + grace, now) and changes
    /// nothing, now or later; the subscription is Expired.
    function testFuzz_chargeUsage_RevertWhen_GraceWindowPassed(
        uint256 period,
        uint256 grace,
        uint256 lateBy,
        uint256 usage
    ) public {
        period = bound(period, PlanTermsLib.MIN_PERIOD, PlanTermsLib.MAX_PERIOD);
        grace = bound(grace, PlanTermsLib.MIN_GRACE_PERIOD, period - 1);
        usage = bound(usage, 0, CAP);
        MeteredPlan plan = _createPlan(CAP, period, grace, CREDITS);
        _fundAndApprove(plan, subscriber, CAP);
        uint256 due = _subscribe(plan, subscriber, type(uint256).max);

        uint256 t = due + grace + 1 + bound(lateBy, 0, 3 * period);
        vm.warp(t);
        State memory before = _state(plan, subscriber);
        vm.prank(reporter);
        vm.expectRevert(abi.encodeWithSelector(IPlanCore.SubscriptionExpired.selector, subscriber, due + grace, t));
        plan.chargeUsage(subscriber, usage, REF);
        _assertUnchanged(plan, subscriber, before, "SubscriptionExpired");
        assertEq(uint256(plan.statusOf(subscriber)), uint256(SubscriptionStatus.Expired), "Expired");
        _assertBatchFails(plan, subscriber, usage, ChargeReason.Expired);
        _assertUnchanged(plan, subscriber, before, "batch Expired");
    }

    /// M2 over many cycles, for any period and grace: each cycle k bills only inside [end_k, end_k + grace], at a
    /// fuzzed lateness (edges included); an attempt before end_k reverts NotDue; each bill carries cycleIndex k and
    /// moves nextChargeAt to exactly T0 + (k + 2) * period (anchored, never drifting with late bills); a second
    /// bill right after it, by the owner or the reporter, reverts NotDue. Totals: credits + pulled == usage.
    function testFuzz_chargeUsage_anchoredScheduleOverManyCycles(uint256 period, uint256 grace, uint256 seed)
        public
    {
        period = bound(period, PlanTermsLib.MIN_PERIOD, PlanTermsLib.MAX_PERIOD);
        grace = bound(grace, PlanTermsLib.MIN_GRACE_PERIOD, period - 1);
        MeteredPlan plan = _createPlan(CAP, period, grace, CREDITS);
        _fundAndApprove(plan, subscriber, CYCLES * CAP);
        _subscribe(plan, subscriber, type(uint256).max);

        uint256 t = T0;
        uint256 totalUsage;
        uint256 totalPulled;
        for (uint256 k = 0; k < CYCLES; ++k) {
            uint256 r = uint256(keccak256(abi.encode(seed, k)));
            uint256 end = T0 + (k + 1) * period;
            address caller = r & 1 == 0 ? reporter : merchant;

            // An attempt before the cycle ends (after the previous bill).
            if ((r >> 1) % 3 == 0 && t < end) {
                t = bound(r >> 8, t, end - 1);
                vm.warp(t);
                vm.prank(caller);
                vm.expectRevert(abi.encodeWithSelector(IPlanCore.NotDue.selector, subscriber, end, t));
                plan.chargeUsage(subscriber, 0, REF);
            }

            // The bill, somewhere in the window: often at an edge.
            uint256 mode = (r >> 2) % 4;
            t = mode == 0 ? end : mode == 1 ? end + grace : end + bound(r >> 64, 0, grace);
            vm.warp(t);
            uint256 usage = bound(r >> 128, 0, CAP);
            vm.recordLogs();
            vm.prank(caller);
            uint256 pulled = plan.chargeUsage(subscriber, usage, bytes32(k));
            Outcome[] memory o = _outcomes(plan);
            assertEq(o.length, 1, "one log");
            assertEq(o[0].cycleIndex, k, "cycleIndex counts the cycles billed before");
            assertEq(o[0].nextChargeAt, end + period, "anchored: next end = this end + period");
            assertEq(o[0].fromCredits + pulled, usage, "fromCredits + pulled == usage");
            Subscription memory sub = plan.subscriptionOf(subscriber);
            assertEq(sub.nextChargeAt, T0 + (k + 2) * period, "nextChargeAt = T0 + (k + 2) * period");
            assertEq(sub.periodsPaid, k + 1, "periodsPaid counts the bills");
            assertEq(sub.startedAt, T0, "startedAt untouched");
            totalUsage += usage;
            totalPulled += pulled;

            // A second bill in the cycle just billed.
            vm.prank(r & 2 == 0 ? merchant : reporter);
            vm.expectRevert(abi.encodeWithSelector(IPlanCore.NotDue.selector, subscriber, end + period, t));
            plan.chargeUsage(subscriber, 0, REF);
        }
        assertEq(usdc.balanceOf(payee), totalPulled, "payee received every pull");
        assertEq(CYCLES * CAP - usdc.balanceOf(subscriber), totalPulled, "subscriber paid every pull");
        assertEq(totalPulled + (CREDITS - plan.creditsOf(subscriber)), totalUsage, "credits + pulls == usage");
    }

    /// M2: once a cycle is billed, any further chargeUsage until the next cycle ends reverts NotDue (whoever calls,
    /// whatever the usage), and a batch listing the subscriber again reports NotDue; the next cycle bills once it
    /// has ended.
    function testFuzz_chargeUsage_RevertWhen_CycleAlreadyBilled(
        uint256 usage1,
        uint256 usage2,
        uint256 lateBy,
        uint256 secondAt
    ) public {
        usage1 = bound(usage1, 0, CAP);
        usage2 = bound(usage2, 0, CAP);
        lateBy = bound(lateBy, 0, GRACE);
        MeteredPlan plan = _defaultPlan();
        _fundAndApprove(plan, subscriber, 2 * CAP);
        uint256 due = _subscribe(plan, subscriber, type(uint256).max);

        vm.warp(due + lateBy);
        vm.prank(reporter);
        plan.chargeUsage(subscriber, usage1, REF);
        State memory before = _state(plan, subscriber);

        uint256 t = bound(secondAt, due + lateBy, due + PERIOD - 1);
        vm.warp(t);
        bytes memory expected = abi.encodeWithSelector(IPlanCore.NotDue.selector, subscriber, due + PERIOD, t);
        vm.prank(reporter);
        vm.expectRevert(expected);
        plan.chargeUsage(subscriber, usage2, REF);
        vm.prank(merchant);
        vm.expectRevert(expected);
        plan.chargeUsage(subscriber, usage2, REF);
        _assertUnchanged(plan, subscriber, before, "second bill in the cycle");
        _assertBatchFails(plan, subscriber, usage2, ChargeReason.NotDue);
        _assertUnchanged(plan, subscriber, before, "second bill in a batch");

        vm.warp(due + PERIOD);
        vm.prank(reporter);
        plan.chargeUsage(subscriber, usage2, REF);
        assertEq(plan.subscriptionOf(subscriber).periodsPaid, 2, "the next cycle bills once ended");
    }

    // ------------------------------------------------------------------------------------------------
    // Fuzz: who may bill, and when nobody may (M1, rules 4, 7, 8)
    // ------------------------------------------------------------------------------------------------

    /// M1: anyone but the owner and an authorized reporter (the subscriber, the payee, anyone) reverts
    /// NotAuthorizedReporter(caller) with chargeUsage and chargeUsageMany, for any usage, and changes nothing.
    function testFuzz_chargeUsage_RevertWhen_NotAuthorizedReporter(address caller, uint256 usage) public {
        vm.assume(caller != merchant && caller != reporter && caller != address(vm));
        MeteredPlan plan = _defaultPlan();
        _fundAndApprove(plan, subscriber, CAP);
        uint256 due = _subscribe(plan, subscriber, type(uint256).max);
        vm.warp(due);
        State memory before = _state(plan, subscriber);
        assertFalse(plan.isReporter(caller), "isReporter false");

        bytes memory expected = abi.encodeWithSelector(IMeteredPlan.NotAuthorizedReporter.selector, caller);
        vm.prank(caller);
        vm.expectRevert(expected);
        plan.chargeUsage(subscriber, usage, REF);
        (address[] memory list, uint256[] memory usages, bytes32[] memory refs) = _one(subscriber, usage);
        vm.prank(caller);
        vm.expectRevert(expected);
        plan.chargeUsageMany(list, usages, refs);
        _assertUnchanged(plan, subscriber, before, "unauthorized caller");
    }

    /// Rules 4, 7, 8: a cancelled (by the subscriber or the merchant), paused, or retired-plan subscription is
    /// never billed, inside the window or later: SubscriptionCancelled / SubscriptionPaused(pausedAt) / PlanRetired,
    /// nothing changes, and a batch reports the same reason. On a retired plan (M8) that is every cycle after the one
    /// running at the retirement, which is billed first.
    function testFuzz_chargeUsage_RevertWhen_CancelledPausedOrRetired(
        uint256 which,
        uint256 actionAt,
        uint256 lateBy,
        uint256 usage
    ) public {
        which = which % 4;
        usage = bound(usage, 0, CAP);
        MeteredPlan plan = _defaultPlan();
        _fundAndApprove(plan, subscriber, CAP);
        uint256 due = _subscribe(plan, subscriber, type(uint256).max);

        uint256 at = bound(actionAt, T0, due - 1); // while Active: pause needs it
        vm.warp(at);
        bytes memory expected;
        ChargeReason reason;
        if (which == 0) {
            vm.prank(subscriber);
            plan.cancel();
            expected = abi.encodeWithSelector(IPlanCore.SubscriptionCancelled.selector, subscriber);
            reason = ChargeReason.Cancelled;
        } else if (which == 1) {
            vm.prank(merchant);
            plan.cancelFor(subscriber);
            expected = abi.encodeWithSelector(IPlanCore.SubscriptionCancelled.selector, subscriber);
            reason = ChargeReason.Cancelled;
        } else if (which == 2) {
            vm.prank(subscriber);
            plan.pause();
            expected = abi.encodeWithSelector(IPlanCore.SubscriptionPaused.selector, subscriber, at);
            reason = ChargeReason.Paused;
        } else {
            vm.prank(merchant);
            plan.setStatus(uint8(PlanStatus.Retired));
            // M8: the cycle running at the retirement (started before it) is still billed inside its window; the
            // next one, which starts after the retirement, never is. (A cycle starting at the very second of the
            // retirement counts as started after it: nothing is billable then.)
            if (at > T0) {
                vm.warp(due);
                vm.prank(reporter);
                plan.chargeUsage(subscriber, 0, REF);
            }
            assertEq(uint256(plan.statusOf(subscriber)), uint256(SubscriptionStatus.Expired), "Expired once retired");
            expected = abi.encodeWithSelector(IPlanCore.PlanRetired.selector);
            reason = ChargeReason.PlanRetired;
        }

        uint256 t = due + bound(lateBy, 0, 2 * PERIOD);
        vm.warp(t);
        State memory before = _state(plan, subscriber);
        vm.prank(reporter);
        vm.expectRevert(expected);
        plan.chargeUsage(subscriber, usage, REF);
        _assertUnchanged(plan, subscriber, before, "cancelled, paused or retired");
        _assertBatchFails(plan, subscriber, usage, reason);
        _assertUnchanged(plan, subscriber, before, "batch: cancelled, paused or retired");
    }

    // ------------------------------------------------------------------------------------------------
    // Fuzz: credits granted once (M4)
    // ------------------------------------------------------------------------------------------------

    /// M4: free credits are granted once per subscriber per plan. After the subscriber's first cycle (billed or
    /// not), cancel (or let it lapse) and subscribe again after the cycle ended: a fresh subscription starts, but
    /// no CreditsGranted and no new credits; only what was left is spent, and another subscriber still gets the
    /// full grant.
    function testFuzz_credits_grantedOncePerSubscriber(
        uint256 credits,
        uint256 usage,
        uint256 gap,
        uint256 usage2,
        uint8 path
    ) public {
        credits = bound(credits, 1, CAP);
        usage = bound(usage, 0, CAP);
        usage2 = bound(usage2, 0, CAP);
        gap = bound(gap, 0, 3 * PERIOD);
        bool billFirst = path & 1 == 1;
        bool lapse = path & 2 == 2; // let it expire instead of cancelling
        MeteredPlan plan = _createPlan(CAP, PERIOD, GRACE, credits);
        _fundAndApprove(plan, subscriber, 3 * CAP);

        vm.recordLogs();
        uint256 due = _subscribe(plan, subscriber, type(uint256).max);
        assertEq(_creditsGranted(plan, subscriber), 1, "granted at the first subscription");
        uint256 left = credits;
        if (billFirst) {
            vm.warp(due);
            vm.prank(reporter);
            plan.chargeUsage(subscriber, usage, REF);
            left -= usage < credits ? usage : credits;
            due += PERIOD;
        }
        assertEq(plan.creditsOf(subscriber), left, "credits left");

        uint256 t;
        if (lapse) {
            t = due + GRACE + 1 + gap; // the unbilled cycle lapsed
        } else {
            vm.prank(subscriber);
            plan.cancel();
            // Once the ended cycle's grace window has closed (before that, re-subscribing resumes the old
            // schedule so the ended cycle can still be billed: see metered.test.ts).
            t = due + GRACE + 1 + gap;
        }
        vm.warp(t);
        // M6: the ended subscription left its last cycle unbilled: a fresh start needs the owner's write-off.
        vm.prank(subscriber);
        vm.expectRevert(
            abi.encodeWithSelector(IMeteredPlan.UnbilledCycle.selector, subscriber, billFirst ? 1 : 0, due)
        );
        plan.subscribe(type(uint256).max);
        vm.prank(merchant);
        plan.writeOff(subscriber);
        vm.recordLogs();
        uint256 next = _subscribe(plan, subscriber, type(uint256).max);
        assertEq(_creditsGranted(plan, subscriber), 0, "no second CreditsGranted");
        assertEq(plan.creditsOf(subscriber), left, "no new credits");
        assertEq(next, t + PERIOD, "a fresh subscription started");
        assertEq(plan.subscriptionOf(subscriber).startedAt, t, "startedAt now");

        vm.warp(next);
        vm.recordLogs();
        vm.prank(reporter);
        uint256 pulled = plan.chargeUsage(subscriber, usage2, REF);
        uint256 fromCredits = usage2 < left ? usage2 : left;
        assertEq(pulled, usage2 - fromCredits, "only the credits left pay");
        assertEq(plan.creditsOf(subscriber), left - fromCredits, "credits after");

        _fundAndApprove(plan, subscriber2, CAP);
        _subscribe(plan, subscriber2, type(uint256).max);
        assertEq(plan.creditsOf(subscriber2), credits, "another subscriber gets the full grant");
    }

    // ------------------------------------------------------------------------------------------------
    // Fuzz: the merchant's exposure (M6–M8)
    // ------------------------------------------------------------------------------------------------

    /// M7: a lowering of the max amount while a cycle runs applies only from the next cycle. The running cycle keeps
    /// its limit (billingLimit), and its bill may pull anything up to it; the next cycle, which starts after the
    /// lowering, is billed under the new max amount (MaxAmountExceeded(pulled, newMax) above it).
    function testFuzz_setMaxAmount_loweringDuringARunningCycleAppliesFromTheNextCycle(
        uint256 oldMax,
        uint256 newMax,
        uint256 at,
        uint256 usage,
        uint256 lateBy
    ) public {
        oldMax = bound(oldMax, 1, CAP);
        newMax = bound(newMax, 0, oldMax - 1);
        MeteredPlan plan = _createPlan(CAP, PERIOD, GRACE, 0);
        _fundAndApprove(plan, subscriber, 2 * CAP);
        uint256 due = _subscribe(plan, subscriber, oldMax);

        vm.warp(bound(at, T0, due - 1));
        vm.prank(subscriber);
        plan.setMaxAmount(newMax);
        assertEq(plan.subscriptionOf(subscriber).maxAmount, newMax, "the new max amount is stored");
        assertEq(plan.billingLimit(subscriber), oldMax, "the running cycle keeps its limit");

        usage = bound(usage, newMax + 1, oldMax);
        vm.warp(due + bound(lateBy, 0, GRACE));
        (bool ok,,,) = plan.usageChargeability(subscriber, usage);
        assertTrue(ok, "usageChargeability: within the cycle's limit");
        vm.prank(reporter);
        assertEq(plan.chargeUsage(subscriber, usage, REF), usage, "the used cycle is billed under its limit");
        assertEq(plan.billingLimit(subscriber), newMax, "the next cycle started under the new max amount");

        vm.warp(due + PERIOD);
        vm.prank(reporter);
        vm.expectRevert(abi.encodeWithSelector(IPlanCore.MaxAmountExceeded.selector, usage, newMax));
        plan.chargeUsage(subscriber, usage, REF);
        vm.prank(reporter);
        assertEq(plan.chargeUsage(subscriber, newMax, REF), newMax, "billed up to the new max amount");
    }

    /// M7, the front-run: once a cycle has ended and waits for its bill, the next one is running too. A lowering then
    /// (to 0, say, just before the bill) applies to neither: the ended cycle is billed up to its limit, and so is the
    /// one that was running at the lowering; only the cycle after those gets the new max amount.
    function testFuzz_setMaxAmount_loweringWhileAnEndedCycleWaitsKeepsBothStartedCycles(
        uint256 oldMax,
        uint256 newMax,
        uint256 lateBy,
        uint256 usage1,
        uint256 usage2
    ) public {
        oldMax = bound(oldMax, 1, CAP);
        newMax = bound(newMax, 0, oldMax - 1);
        lateBy = bound(lateBy, 0, GRACE);
        MeteredPlan plan = _createPlan(CAP, PERIOD, GRACE, 0);
        _fundAndApprove(plan, subscriber, 3 * CAP);
        uint256 due = _subscribe(plan, subscriber, oldMax);

        vm.warp(due + lateBy);
        vm.prank(subscriber);
        plan.setMaxAmount(newMax);
        assertEq(plan.billingLimit(subscriber), oldMax, "the ended cycle keeps its limit");
        usage1 = bound(usage1, 0, oldMax);
        vm.prank(reporter);
        assertEq(plan.chargeUsage(subscriber, usage1, REF), usage1, "the ended cycle is billed");
        assertEq(plan.billingLimit(subscriber), oldMax, "the cycle running at the lowering keeps its limit too");

        usage2 = bound(usage2, newMax + 1, oldMax);
        vm.warp(due + PERIOD + lateBy);
        vm.prank(reporter);
        assertEq(plan.chargeUsage(subscriber, usage2, REF), usage2, "and is billed up to it");
        assertEq(plan.billingLimit(subscriber), newMax, "the next cycle started under the new max amount");
        vm.warp(due + 2 * PERIOD);
        vm.prank(reporter);
        vm.expectRevert(abi.encodeWithSelector(IPlanCore.MaxAmountExceeded.selector, usage2, newMax));
        plan.chargeUsage(subscriber, usage2, REF);
    }

    /// M7: a raise applies at once, to the cycle running; a lowering after it keeps the highest max amount the cycle
    /// has seen (the raise), and the cycle's bill may pull exactly that, not a unit more; the next cycle, which starts
    /// after the lowering, gets the lowered one.
    function testFuzz_setMaxAmount_raiseAppliesAtOnceThenLoweringKeepsTheHighest(
        uint256 m0,
        uint256 m1,
        uint256 m2,
        uint256 at1,
        uint256 at2
    ) public {
        m0 = bound(m0, 0, CAP - 1);
        m1 = bound(m1, m0 + 1, CAP);
        m2 = bound(m2, 0, m1 - 1);
        MeteredPlan plan = _createPlan(CAP, PERIOD, GRACE, 0);
        _fundAndApprove(plan, subscriber, 2 * CAP);
        uint256 due = _subscribe(plan, subscriber, m0);
        assertEq(plan.billingLimit(subscriber), m0, "the limit at the start");

        at1 = bound(at1, T0, due - 2);
        vm.warp(at1);
        vm.prank(subscriber);
        plan.setMaxAmount(m1);
        assertEq(plan.billingLimit(subscriber), m1, "a raise applies at once");
        vm.warp(bound(at2, at1, due - 1));
        vm.prank(subscriber);
        plan.setMaxAmount(m2);
        assertEq(plan.billingLimit(subscriber), m1, "the highest max amount since the cycle started");

        vm.warp(due);
        if (m1 < CAP) {
            vm.prank(reporter);
            vm.expectRevert(abi.encodeWithSelector(IPlanCore.MaxAmountExceeded.selector, m1 + 1, m1));
            plan.chargeUsage(subscriber, m1 + 1, REF);
        }
        vm.prank(reporter);
        assertEq(plan.chargeUsage(subscriber, m1, REF), m1, "billed exactly up to the highest");
        assertEq(plan.billingLimit(subscriber), m2, "the next cycle started under the lowered max amount");
    }

    /// M7 through a re-subscription: cancelling after a cycle ended and subscribing again with a lower max amount
    /// resumes the old schedule; the lower max amount is set as setMaxAmount would set it, so the ended cycle (and the
    /// one running) keep their limit and the ended cycle is billed up to it.
    function testFuzz_subscribe_resumingWithALowerMaxKeepsTheCycleLimit(
        uint256 oldMax,
        uint256 newMax,
        uint256 cancelAt,
        uint256 usage
    ) public {
        oldMax = bound(oldMax, 1, CAP);
        newMax = bound(newMax, 0, oldMax - 1);
        MeteredPlan plan = _createPlan(CAP, PERIOD, GRACE, 0);
        _fundAndApprove(plan, subscriber, 2 * CAP);
        uint256 due = _subscribe(plan, subscriber, oldMax);

        uint256 t = bound(cancelAt, due, due + GRACE);
        vm.warp(t);
        vm.prank(subscriber);
        plan.cancel();
        assertEq(_subscribe(plan, subscriber, newMax), due, "the old schedule resumes");
        assertEq(uint256(plan.statusOf(subscriber)), uint256(SubscriptionStatus.PastDue), "the ended cycle waits");
        assertFalse(plan.hasAccess(subscriber), "no access while it waits");
        assertEq(plan.billingLimit(subscriber), oldMax, "the ended cycle keeps its limit");
        usage = bound(usage, 0, oldMax);
        vm.prank(reporter);
        assertEq(plan.chargeUsage(subscriber, usage, REF), usage, "billed up to it");
        assertEq(plan.billingLimit(subscriber), oldMax, "the cycle running at the re-subscription keeps it too");
        assertTrue(plan.hasAccess(subscriber), "access again once billed");
    }

    /// M6: an ended subscription (lapsed, cancelled by the subscriber, or by the merchant) leaves its last cycle
    /// unbilled. While it can still be billed the owner cannot write it off (NothingToWriteOff(subscriber, Cancelled));
    /// after its window a fresh subscribe reverts UnbilledCycle(subscriber, periodsPaid, nextChargeAt) until the owner
    /// (nobody else) calls writeOff, which emits CycleWrittenOff(subscriber, periodsPaid, nextChargeAt), moves no token
    /// and works once (then NothingToWriteOff(subscriber, status)). The fresh subscription starts now; writeOff refuses
    /// it while it is live (NothingToWriteOff(subscriber, Active)); and once it ends in its turn, the write-off is used
    /// up: UnbilledCycle again.
    function testFuzz_subscribe_RevertWhen_UnbilledCycle(uint8 path, uint256 endAt, uint256 gap, uint256 usage)
        public
    {
        uint256 how = path % 3; // 0: lapse, 1: cancel, 2: cancelFor
        bool billFirst = path & 4 == 4;
        usage = bound(usage, 0, CAP);
        MeteredPlan plan = _defaultPlan();
        _fundAndApprove(plan, subscriber, 3 * CAP);
        uint256 due = _subscribe(plan, subscriber, type(uint256).max);
        uint256 cycles;
        if (billFirst) {
            vm.warp(due);
            vm.prank(reporter);
            plan.chargeUsage(subscriber, usage, REF);
            due += PERIOD;
            cycles = 1;
        }
        SubscriptionStatus over = SubscriptionStatus.Expired;
        if (how != 0) {
            vm.warp(bound(endAt, vm.getBlockTimestamp(), due + GRACE));
            vm.prank(how == 1 ? subscriber : merchant);
            if (how == 1) plan.cancel();
            else plan.cancelFor(subscriber);
            over = SubscriptionStatus.Cancelled;
            vm.prank(merchant);
            bytes memory notOver = abi.encodeWithSelector(
                IMeteredPlan.NothingToWriteOff.selector, subscriber, SubscriptionStatus.Cancelled
            );
            vm.expectRevert(notOver);
            plan.writeOff(subscriber);
        }

        uint256 t = due + GRACE + 1 + bound(gap, 0, 3 * PERIOD);
        vm.warp(t);
        assertEq(uint256(plan.statusOf(subscriber)), uint256(over), "over");
        bytes memory unbilled = abi.encodeWithSelector(IMeteredPlan.UnbilledCycle.selector, subscriber, cycles, due);
        vm.prank(subscriber);
        vm.expectRevert(unbilled);
        plan.subscribe(type(uint256).max);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, stranger));
        plan.writeOff(subscriber);

        State memory before = _state(plan, subscriber);
        vm.recordLogs();
        vm.prank(merchant);
        plan.writeOff(subscriber);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(logs.length, 1, "one event");
        assertTrue(logs[0].topics[0] == IMeteredPlan.CycleWrittenOff.selector, "CycleWrittenOff");
        assertEq(address(uint160(uint256(logs[0].topics[1]))), subscriber, "CycleWrittenOff: subscriber");
        assertEq(logs[0].data, abi.encode(cycles, due), "CycleWrittenOff: cycleIndex, cycleEnd");
        State memory after_ = _state(plan, subscriber);
        assertEq(after_.balance, before.balance, "no token moved");
        assertEq(after_.payeeBalance, before.payeeBalance, "no token moved to the payee");
        assertEq(uint256(plan.statusOf(subscriber)), uint256(over), "the status stays");
        vm.prank(merchant);
        vm.expectRevert(abi.encodeWithSelector(IMeteredPlan.NothingToWriteOff.selector, subscriber, over));
        plan.writeOff(subscriber);

        assertEq(_subscribe(plan, subscriber, type(uint256).max), t + PERIOD, "a fresh subscription starts now");
        assertEq(plan.subscriptionOf(subscriber).startedAt, t, "startedAt now");
        assertTrue(plan.hasAccess(subscriber), "with access");
        vm.prank(merchant);
        vm.expectRevert(
            abi.encodeWithSelector(IMeteredPlan.NothingToWriteOff.selector, subscriber, SubscriptionStatus.Active)
        );
        plan.writeOff(subscriber);

        vm.warp(t + PERIOD + GRACE + 1);
        vm.prank(subscriber);
        vm.expectRevert(
            abi.encodeWithSelector(IMeteredPlan.UnbilledCycle.selector, subscriber, cycles, t + PERIOD)
        );
        plan.subscribe(type(uint256).max);
    }

    /// M8: retiring the plan while a cycle runs or waits for its bill (that cycle started before the retirement)
    /// leaves it billable inside its grace window; a cycle that was running at the retirement is billable too once it
    /// ends; after the last such bill the subscription is Expired at once and every further bill is PlanRetired.
    function testFuzz_retire_billsTheCyclesThatHadStartedThenExpires(uint256 retireAt, uint256 lateBy, uint256 usage)
        public
    {
        usage = bound(usage, 0, CAP);
        lateBy = bound(lateBy, 0, GRACE);
        MeteredPlan plan = _defaultPlan();
        _fundAndApprove(plan, subscriber, 3 * CAP);
        uint256 due = _subscribe(plan, subscriber, type(uint256).max);
        retireAt = bound(retireAt, T0 + 1, due + lateBy);
        vm.warp(retireAt);
        vm.prank(merchant);
        plan.setStatus(uint8(PlanStatus.Retired));
        assertEq(
            uint256(plan.statusOf(subscriber)),
            uint256(retireAt < due ? SubscriptionStatus.Active : SubscriptionStatus.PastDue),
            "the started cycle is not over"
        );

        vm.warp(due + lateBy);
        vm.prank(reporter);
        plan.chargeUsage(subscriber, usage, REF);
        uint256 end = due;
        if (due < retireAt) {
            // The cycle that began when the first one ended had started before the retirement too.
            assertEq(uint256(plan.statusOf(subscriber)), uint256(SubscriptionStatus.Active), "the next cycle runs");
            end = due + PERIOD;
            vm.warp(end + lateBy);
            vm.prank(reporter);
            plan.chargeUsage(subscriber, usage, REF);
        }
        assertEq(uint256(plan.statusOf(subscriber)), uint256(SubscriptionStatus.Expired), "Expired at once");
        assertFalse(plan.hasAccess(subscriber), "no access");
        assertEq(plan.nextChargeAt(subscriber), 0, "nothing scheduled");
        vm.warp(end + PERIOD);
        vm.prank(reporter);
        vm.expectRevert(abi.encodeWithSelector(IPlanCore.PlanRetired.selector));
        plan.chargeUsage(subscriber, usage, REF);
    }

    /// M8 with a pause: a subscriber who paused before the retirement and resumes after it gets the cycle they
    /// had started back, however long the pause: it runs for the time it had left, is billable inside its grace
    /// window, and only after its bill is the subscription Expired. (The pause moves the cycle's end more than a period past the retirement: the
    /// cycle must not be taken for one started after it.)
    function testFuzz_retire_aPausedCycleThatStartedBeforeTheRetirementIsStillBilled(
        uint256 pauseAfter,
        uint256 retireAfter,
        uint256 endPauseAfter,
        uint256 usage
    ) public {
        usage = bound(usage, 1, CAP);
        MeteredPlan plan = _defaultPlan();
        _fundAndApprove(plan, subscriber, 3 * CAP);
        uint256 due = _subscribe(plan, subscriber, type(uint256).max);
        uint256 pausedAt = T0 + bound(pauseAfter, 1, PERIOD - 1);
        vm.warp(pausedAt);
        vm.prank(subscriber);
        plan.pause();
        uint256 retiredAt = pausedAt + bound(retireAfter, 0, 5 * PERIOD);
        vm.warp(retiredAt);
        vm.prank(merchant);
        plan.setStatus(uint8(PlanStatus.Retired));
        assertEq(uint256(plan.statusOf(subscriber)), uint256(SubscriptionStatus.Paused), "still paused");

        uint256 endedAt = retiredAt + bound(endPauseAfter, 1, 5 * PERIOD);
        vm.warp(endedAt);
        vm.prank(subscriber);
        plan.resume();
        uint256 end = due + (endedAt - pausedAt);
        assertEq(plan.subscriptionOf(subscriber).nextChargeAt, end, "the cycle keeps the time it had left");
        assertEq(uint256(plan.statusOf(subscriber)), uint256(SubscriptionStatus.Active), "the cycle runs on");
        assertTrue(plan.hasAccess(subscriber), "with access");
        assertEq(plan.nextChargeAt(subscriber), end, "its bill is scheduled");

        vm.warp(end);
        assertEq(uint256(plan.statusOf(subscriber)), uint256(SubscriptionStatus.PastDue), "waiting for its bill");
        (bool ok, ChargeReason reason,) = plan.chargeability(subscriber);
        assertTrue(ok, "billable");
        assertEq(uint256(reason), uint256(ChargeReason.Ok), "Ok");
        vm.prank(reporter);
        assertEq(plan.chargeUsage(subscriber, usage, REF), usage > CREDITS ? usage - CREDITS : 0, "billed");
        assertEq(uint256(plan.statusOf(subscriber)), uint256(SubscriptionStatus.Expired), "then Expired");
        assertEq(plan.nextChargeAt(subscriber), 0, "nothing scheduled");
        vm.warp(end + PERIOD);
        vm.prank(reporter);
        vm.expectRevert(abi.encodeWithSelector(IPlanCore.PlanRetired.selector));
        plan.chargeUsage(subscriber, usage, REF);
    }

    // ------------------------------------------------------------------------------------------------
    // Fuzz: chargeUsageMany (M2–M5, rule 12)
    // ------------------------------------------------------------------------------------------------

    uint256 internal constant K_GOOD_A = 0;
    uint256 internal constant K_GOOD_B = 1;
    uint256 internal constant K_OVER_CAP = 2;
    uint256 internal constant K_NOT_DUE = 3;
    uint256 internal constant K_LOW_ALLOWANCE = 4;
    uint256 internal constant K_LOW_BALANCE = 5;
    uint256 internal constant K_MAX_TOO_LOW = 6;
    uint256 internal constant K_PAUSED = 7;
    uint256 internal constant K_CANCELLED = 8;
    uint256 internal constant K_EXPIRED = 9;
    uint256 internal constant K_STRANGER = 10;
    uint256 internal constant KINDS = 11;
    uint256 internal constant DUPLICATES = 3;

    /// A batch of subscribers of every kind (two good ones, over the cap, not due, allowance too low, balance too
    /// low, max amount too low, paused, cancelled, expired, never subscribed) plus three duplicates, shuffled, with
    /// fuzzed cap, credits, usages, limits and lateness. Every item is either billed (UsageCharged) or reported
    /// (UsageChargeFailed with its reason), in order; a subscriber listed twice is billed at most once (the later
    /// item fails NotDue); a failed subscriber's word, credits and balance are unchanged (the allowance and balance
    /// failures are undone after the effects); each billed one moved one period and paid exactly its pull; the
    /// payee gained the sum of the pulls; the return value is the number billed.
    function testFuzz_chargeUsageMany_billsTheGoodAndChangesNothingForTheRest(
        uint256 cap,
        uint256 credits,
        uint256 limit,
        uint256 lateBy,
        uint256 seed
    ) public {
        cap = bound(cap, 1, PlanTermsLib.MAX_PRICE);
        credits = bound(credits, 0, cap - 1);
        limit = bound(limit, 0, cap - credits - 1); // the allowance, balance or max amount that is too low
        lateBy = bound(lateBy, 0, 1 days - 1); // K_NOT_DUE's cycle ends a day after the others'
        MeteredPlan plan = _createPlan(cap, PERIOD, GRACE, credits);

        address[] memory subs = new address[](KINDS);
        for (uint256 k = 0; k < KINDS; ++k) {
            subs[k] = address(uint160(0x5B5B00 + k));
        }
        uint256 due = _setUpBatchSubscribers(plan, subs, cap, limit);

        // Each kind's usage: anything up to the cap, above it for K_OVER_CAP, and more than credits + limit for the
        // three "too low" kinds (so their pull exceeds the limit).
        uint256[] memory kindUsage = new uint256[](KINDS);
        for (uint256 k = 0; k < KINDS; ++k) {
            uint256 r = uint256(keccak256(abi.encode(seed, "usage", k)));
            if (k == K_OVER_CAP) kindUsage[k] = bound(r, cap + 1, type(uint256).max);
            else if (k == K_LOW_ALLOWANCE || k == K_LOW_BALANCE || k == K_MAX_TOO_LOW) {
                kindUsage[k] = bound(r, credits + limit + 1, cap);
            } else {
                kindUsage[k] = bound(r, 0, cap);
            }
        }

        // The items: every kind once, then duplicates (a good kind's duplicate reports a new usage, any other
        // kind's repeats its usage, so it fails for the same reason), then shuffled.
        uint256 n = KINDS + DUPLICATES;
        uint256[] memory kinds = new uint256[](n);
        uint256[] memory usages = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            uint256 r = uint256(keccak256(abi.encode(seed, "item", i)));
            uint256 k = i < KINDS ? i : r % KINDS;
            kinds[i] = k;
            usages[i] = i >= KINDS && (k == K_GOOD_A || k == K_GOOD_B) ? bound(r >> 8, 0, cap) : kindUsage[k];
        }
        for (uint256 i = n - 1; i > 0; --i) {
            uint256 j = uint256(keccak256(abi.encode(seed, "shuffle", i))) % (i + 1);
            (kinds[i], kinds[j]) = (kinds[j], kinds[i]);
            (usages[i], usages[j]) = (usages[j], usages[i]);
        }
        address[] memory list = new address[](n);
        bytes32[] memory refs = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) {
            list[i] = subs[kinds[i]];
            refs[i] = bytes32(i + 1);
        }

        State[] memory before = new State[](KINDS);
        for (uint256 k = 0; k < KINDS; ++k) {
            before[k] = _state(plan, subs[k]);
        }

        uint256 t = due + lateBy;
        vm.warp(t);
        vm.recordLogs();
        vm.prank(reporter);
        uint256 charged = plan.chargeUsageMany(list, usages, refs);
        Outcome[] memory o = _outcomes(plan);

        // Every item, in order, against the model.
        assertEq(o.length, n, "one UsageCharged or UsageChargeFailed per item");
        uint256[] memory billedPull = new uint256[](KINDS);
        uint256[] memory billedCredits = new uint256[](KINDS);
        bool[] memory billed = new bool[](KINDS);
        uint256 billedCount;
        uint256 pulledSum;
        for (uint256 i = 0; i < n; ++i) {
            uint256 k = kinds[i];
            assertEq(o[i].subscriber, list[i], "item order: subscriber");
            assertTrue(o[i].usageRef == refs[i], "item order: usageRef");
            assertEq(o[i].usage, usages[i], "item: usage");
            ChargeReason expected = _expectedReason(k, billed[k]);
            if (expected == ChargeReason.Ok) {
                assertTrue(o[i].billed, "a good item is billed");
                uint256 fromCredits = usages[i] < credits ? usages[i] : credits;
                assertEq(o[i].fromCredits, fromCredits, "credits pay first");
                assertEq(o[i].pulled, usages[i] - fromCredits, "pulled = usage - fromCredits");
                assertEq(o[i].cycleIndex, 0, "first cycle");
                assertEq(o[i].nextChargeAt, due + PERIOD, "anchored next end");
                billed[k] = true;
                billedPull[k] = o[i].pulled;
                billedCredits[k] = o[i].fromCredits;
                pulledSum += o[i].pulled;
                ++billedCount;
            } else {
                assertFalse(o[i].billed, "a bad item is not billed");
                assertEq(uint256(o[i].reason), uint256(expected), "failure reason");
            }
        }
        assertEq(charged, billedCount, "returns the number billed");
        assertTrue(billed[K_GOOD_A] && billed[K_GOOD_B], "both good subscribers billed");

        // Every subscriber's state, against its outcome.
        for (uint256 k = 0; k < KINDS; ++k) {
            if (!billed[k]) {
                _assertSubscriberUnchanged(plan, subs[k], before[k], "failed item");
                continue;
            }
            State memory after_ = _state(plan, subs[k]);
            _assertBilledOnce(before[k].sub, after_.sub, "billed item");
            assertEq(before[k].balance - after_.balance, billedPull[k], "billed item: paid exactly its pull");
            assertEq(before[k].credits - after_.credits, billedCredits[k], "billed item: credits drop by fromCredits");
        }
        assertEq(usdc.balanceOf(payee) - before[0].payeeBalance, pulledSum, "payee gained the sum of the pulls");
        assertEq(usdc.balanceOf(address(plan)), 0, "the plan holds nothing");
    }

    // ------------------------------------------------------------------------------------------------
    // Internal
    // ------------------------------------------------------------------------------------------------

    /// @dev Subscribes one account of each kind (see the K_ constants) and sets it up to fail (or not) as its kind
    /// says; returns the end of the good subscribers' first cycle.
    function _setUpBatchSubscribers(MeteredPlan plan, address[] memory subs, uint256 cap, uint256 limit)
        internal
        returns (uint256 due)
    {
        // K_EXPIRED started 10 days before the others: its grace window has passed when they are billed.
        vm.warp(T0 - 10 days);
        _fundAndApprove(plan, subs[K_EXPIRED], cap);
        _subscribe(plan, subs[K_EXPIRED], type(uint256).max);

        vm.warp(T0);
        uint256[8] memory atT0 = [
            K_GOOD_A, K_GOOD_B, K_OVER_CAP, K_LOW_ALLOWANCE, K_LOW_BALANCE, K_MAX_TOO_LOW, K_PAUSED, K_CANCELLED
        ];
        for (uint256 i = 0; i < atT0.length; ++i) {
            uint256 k = atT0[i];
            address who = subs[k];
            usdc.mint(who, k == K_LOW_BALANCE ? limit : cap);
            vm.prank(who);
            usdc.approve(address(plan), k == K_LOW_ALLOWANCE ? limit : type(uint256).max);
            due = _subscribe(plan, who, k == K_MAX_TOO_LOW ? limit : type(uint256).max);
        }

        // A day later: one pauses, the merchant cancels another, and K_NOT_DUE starts (its cycle ends a day after).
        vm.warp(T0 + 1 days);
        vm.prank(subs[K_PAUSED]);
        plan.pause();
        vm.prank(merchant);
        plan.cancelFor(subs[K_CANCELLED]);
        _fundAndApprove(plan, subs[K_NOT_DUE], cap);
        _subscribe(plan, subs[K_NOT_DUE], type(uint256).max);
        // K_STRANGER never subscribes.
    }

    /// @dev Why an item of kind `k` fails in the batch (`Ok` if it is billed), given whether that subscriber was
    /// already billed by an earlier item of the batch.
    function _expectedReason(uint256 k, bool alreadyBilled) internal pure returns (ChargeReason) {
        if (k == K_GOOD_A || k == K_GOOD_B) return alreadyBilled ? ChargeReason.NotDue : ChargeReason.Ok;
        if (k == K_OVER_CAP) return ChargeReason.UsageAboveCap;
        if (k == K_NOT_DUE) return ChargeReason.NotDue;
        if (k == K_LOW_ALLOWANCE) return ChargeReason.AllowanceTooLow;
        if (k == K_LOW_BALANCE) return ChargeReason.BalanceTooLow;
        if (k == K_MAX_TOO_LOW) return ChargeReason.MaxAmountExceeded;
        if (k == K_PAUSED) return ChargeReason.Paused;
        if (k == K_CANCELLED) return ChargeReason.Cancelled;
        if (k == K_EXPIRED) return ChargeReason.Expired;
        return ChargeReason.NotSubscribed;
    }

    function _createPlan(uint256 cap, uint256 period, uint256 grace, uint256 credits)
        internal
        returns (MeteredPlan plan)
    {
        vm.prank(merchant);
        plan = MeteredPlan(
            factory.createPlan(PlanFixture.meteredTerms(address(usdc), payee, cap, period, grace, credits))
        );
        vm.prank(merchant);
        plan.setReporter(reporter, true);
        vm.label(address(plan), "meteredPlan");
    }

    function _defaultPlan() internal returns (MeteredPlan) {
        return _createPlan(CAP, PERIOD, GRACE, CREDITS);
    }

    function _fundAndApprove(MeteredPlan plan, address who, uint256 amount) internal {
        usdc.mint(who, amount);
        vm.prank(who);
        usdc.approve(address(plan), type(uint256).max);
    }

    function _subscribe(MeteredPlan plan, address who, uint256 maxAmount) internal returns (uint256 nextChargeAt) {
        vm.prank(who);
        nextChargeAt = plan.subscribe(maxAmount);
    }

    /// @dev One-item arrays for `chargeUsageMany`.
    function _one(address who, uint256 usage)
        internal
        pure
        returns (address[] memory list, uint256[] memory usages, bytes32[] memory refs)
    {
        list = new address[](1);
        usages = new uint256[](1);
        refs = new bytes32[](1);
        list[0] = who;
        usages[0] = usage;
        refs[0] = REF;
    }

    /// @dev A one-item batch for `who` bills nothing and reports exactly `reason`.
    function _assertBatchFails(MeteredPlan plan, address who, uint256 usage, ChargeReason reason) internal {
        (address[] memory list, uint256[] memory usages, bytes32[] memory refs) = _one(who, usage);
        vm.recordLogs();
        vm.prank(reporter);
        assertEq(plan.chargeUsageMany(list, usages, refs), 0, "batch: nothing billed");
        Outcome[] memory o = _outcomes(plan);
        assertEq(o.length, 1, "batch: one log");
        assertFalse(o[0].billed, "batch: UsageChargeFailed");
        assertEq(o[0].subscriber, who, "batch: subscriber");
        assertEq(uint256(o[0].reason), uint256(reason), "batch: reason");
        assertEq(o[0].usage, usage, "batch: usage");
    }

    /// @dev The plan's `UsageCharged` and `UsageChargeFailed` logs since `recordLogs`, in order.
    function _outcomes(MeteredPlan plan) internal returns (Outcome[] memory out) {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        uint256 count;
        for (uint256 i = 0; i < logs.length; ++i) {
            if (_isOutcome(plan, logs[i])) ++count;
        }
        out = new Outcome[](count);
        uint256 j;
        for (uint256 i = 0; i < logs.length; ++i) {
            if (!_isOutcome(plan, logs[i])) continue;
            Outcome memory e = out[j++];
            e.subscriber = address(uint160(uint256(logs[i].topics[1])));
            e.usageRef = logs[i].topics[2];
            if (logs[i].topics[0] == IMeteredPlan.UsageCharged.selector) {
                e.billed = true;
                (e.cycleIndex, e.usage, e.fromCredits, e.pulled, e.nextChargeAt) =
                    abi.decode(logs[i].data, (uint256, uint256, uint256, uint256, uint256));
            } else {
                (e.reason, e.usage) = abi.decode(logs[i].data, (ChargeReason, uint256));
            }
        }
    }

    function _isOutcome(MeteredPlan plan, Vm.Log memory log) internal pure returns (bool) {
        return log.emitter == address(plan)
            && (log.topics[0] == IMeteredPlan.UsageCharged.selector
                || log.topics[0] == IMeteredPlan.UsageChargeFailed.selector);
    }

    /// @dev How many `CreditsGranted` the plan emitted for `who` since `recordLogs`.
    function _creditsGranted(MeteredPlan plan, address who) internal returns (uint256 count) {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 i = 0; i < logs.length; ++i) {
            if (
                logs[i].emitter == address(plan) && logs[i].topics[0] == IMeteredPlan.CreditsGranted.selector
                    && address(uint160(uint256(logs[i].topics[1]))) == who
            ) {
                assertEq(abi.decode(logs[i].data, (uint256)), plan.freeCredits(), "grant = freeCredits");
                ++count;
            }
        }
    }

    function _state(MeteredPlan plan, address who) internal view returns (State memory s) {
        IERC20 token = IERC20(plan.token());
        s.sub = plan.subscriptionOf(who);
        s.credits = plan.creditsOf(who);
        s.balance = token.balanceOf(who);
        s.payeeBalance = token.balanceOf(plan.payee());
    }

    /// @dev Nothing a bill may change has changed for `who`: every field of the stored word, the credits, the
    /// subscriber's and the payee's balances.
    function _assertUnchanged(MeteredPlan plan, address who, State memory before, string memory what) internal view {
        _assertSubscriberUnchanged(plan, who, before, what);
        assertEq(
            IERC20(plan.token()).balanceOf(plan.payee()), before.payeeBalance, string.concat(what, ": payee balance")
        );
    }

    function _assertSubscriberUnchanged(MeteredPlan plan, address who, State memory before, string memory what)
        internal
        view
    {
        State memory now_ = _state(plan, who);
        assertEq(now_.sub.maxAmount, before.sub.maxAmount, string.concat(what, ": maxAmount"));
        assertEq(now_.sub.nextChargeAt, before.sub.nextChargeAt, string.concat(what, ": nextChargeAt"));
        assertEq(now_.sub.startedAt, before.sub.startedAt, string.concat(what, ": startedAt"));
        assertEq(now_.sub.pausedAt, before.sub.pausedAt, string.concat(what, ": pausedAt"));
        assertEq(now_.sub.periodsPaid, before.sub.periodsPaid, string.concat(what, ": periodsPaid"));
        assertEq(now_.sub.flags, before.sub.flags, string.concat(what, ": flags"));
        assertEq(now_.credits, before.credits, string.concat(what, ": credits"));
        assertEq(now_.balance, before.balance, string.concat(what, ": subscriber balance"));
    }

    /// @dev One bill moved the word exactly: nextChargeAt + one period, periodsPaid + 1, nothing else.
    function _assertBilledOnce(Subscription memory before, Subscription memory after_, string memory what)
        internal
        pure
    {
        assertEq(after_.nextChargeAt, before.nextChargeAt + PERIOD, string.concat(what, ": one period on"));
        assertEq(after_.periodsPaid, before.periodsPaid + 1, string.concat(what, ": periodsPaid + 1"));
        assertEq(after_.maxAmount, before.maxAmount, string.concat(what, ": maxAmount"));
        assertEq(after_.startedAt, before.startedAt, string.concat(what, ": startedAt"));
        assertEq(after_.pausedAt, before.pausedAt, string.concat(what, ": pausedAt"));
        assertEq(after_.flags, before.flags, string.concat(what, ": flags"));
    }
}
