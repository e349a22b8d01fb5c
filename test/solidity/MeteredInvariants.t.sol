// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IMeteredPlan} from "../../contracts/interfaces/IMeteredPlan.sol";
import {IPlanCore} from "../../contracts/interfaces/IPlanCore.sol";
import {ChargeReason, PlanStatus, Subscription, SubscriptionStatus} from "../../contracts/interfaces/PlanTypes.sol";
import {BillingMath} from "../../contracts/libraries/BillingMath.sol";
import {MeteredPlan} from "../../contracts/MeteredPlan.sol";
import {PlanFactory} from "../../contracts/PlanFactory.sol";
import {TestUSDC} from "../mocks/TestUSDC.sol";

import {PlanFixture} from "./utils/PlanFixture.sol";
import {StatusTracker, StatusTransitions} from "./utils/StatusTransitions.sol";
import {CheatCodes, InvariantTest} from "./utils/Test.sol";
import {Vm} from "./utils/Vm.sol";

/// @notice Drives one metered plan through random sequences of everything its users can do, and keeps ghost totals
/// of what every call actually moved (token balance deltas) and announced (`UsageCharged`, `UsageChargeFailed`,
/// `CreditsGranted`).
///
/// As in `PlanHandler` (PlanInvariants.t.sol), every action is wrapped in `try`/`catch`: actions the rules refuse
/// are expected and swallowed, so a run goes deep (the runner's `failOnRevert` is off). Rule breaks are not asserted
/// here (a revert in a handler is discarded) but counted in ghost variables that the invariants require to be 0.
///
/// Actors: three, who subscribe at the start with different limits (max amount: none, the cap, half the cap;
/// allowance: unlimited, two caps, a third of a cap), so that bills succeed, pull from credits, and fail on the max
/// amount or the pull from the first cycle on; later actions change all of it.
///
/// Billing: the owner, the reporter (whose authorization the owner toggles) or a stranger calls `chargeUsage` or
/// `chargeUsageMany` with random usage: zero, within the cap, exactly the cap, the free credits, just above the cap,
/// far above it; `billingRound` is the merchant's job, with plausible figures and a retry of what failed. Each bill
/// is checked against a snapshot of the plan taken just before the call, and the ghost history of that subscriber.
///
/// Time: most actions first move the clock by 0 or up to half a grace period; `warp` jumps up to three periods
/// (lapsing cycles); `warpToNextDue` and `billingRound` land around the earliest upcoming cycle end, so that grace
/// windows are hit, not just crossed. Time is read once per call, before any `vm.warp`, and kept in `currentTime`:
/// with `viaIR` the optimizer may reuse an earlier `block.timestamp` after a warp in the same function.
///
/// Statuses: after every clock move and every action, every subscriber's `statusOf` is read and each change is
/// checked against `StatusTransitions.allowed` for what caused it (see `StatusTracker`; metered: never Trialing).
///
/// Exposure (M6): every clock move first books, per subscriber, the time `hasAccess` was true (to the second: a
/// metered subscription with access keeps it until its cycle ends, and the handler looks at the end of the cycle to
/// see whether access went on on credit). Access not yet covered by a bill or the owner's `writeOff` must never add
/// up to more than one period, nor span more than one cycle. A fresh `subscribe` after an ended subscription is
/// expected to revert `UnbilledCycle` unless the owner wrote that cycle off; `writeOff` succeeds exactly when the
/// subscription is over and not written off yet.
///
/// Max amounts (M7): the handler keeps every max amount a subscriber set (at `subscribe`, in a resumed schedule, and
/// with `setMaxAmount`, often to 0 or a low value just before a bill: `frontRunBill`) with its time, and the real start
/// of the cycle waiting for its bill. A bill may pull at most the highest max amount in force since that start, must
/// not be refused `MaxAmountExceeded` when its pull is within it, and `billingLimit` must say exactly that amount.
///
/// Retirement (M8): a bill after the plan was retired is for a cycle that started before the retirement.
contract MeteredHandler is CheatCodes, StatusTracker {
    uint256 internal constant ACTORS = 3;

    /// @notice Per-subscriber ghost state, all of it measured by the handler, none of it read from the plan.
    struct Ghost {
        uint256 bills; // `UsageCharged` events
        uint256 firstBillAt; // time of the first bill, 0 if none
        uint256 lastBillAt; // time of the latest bill
        uint256 lastCycleEnd; // the end of the latest cycle billed (nextChargeAt just before that bill)
        uint256 usage; // sum of the usage billed
        uint256 fromCredits; // sum of the part paid with credits
        uint256 pulled; // sum of the part pulled (as `UsageCharged` announced it)
        uint256 paid; // what left the wallet during plan calls (balance deltas)
        uint256 grants; // `CreditsGranted` events
        bool cancelled; // cancelled (by themself or the merchant) and not subscribed again since
        bool paused; // paused and not resumed (or cancelled, or subscribed again) since
        uint256 billsWhileCancelled;
        uint256 billsWhilePaused;
        uint256 cycleStart; // when the cycle waiting for its bill started: the fresh start, or the last bill's cycle end
        bool writtenOff; // the owner wrote off the cycle the ended subscription left (no fresh start since)
        uint256 writeOffs; // successful `writeOff`s
        uint256 unbilledAccess; // seconds with access since the last bill or write-off (or since the first start)
        uint256 maxUnbilledAccess; // the most `unbilledAccess` ever reached
        uint256 exposedCycles; // cycles with access since the last bill or write-off
        uint256 maxExposedCycles; // the most `exposedCycles` ever reached
        bytes32 lastAccessCycle; // (startedAt, cycle index) of the last cycle that had access, 0 after a cover
    }

    /// @dev What the plan looked like before a call.
    struct Snapshot {
        uint256[] balances;
        Subscription[] subs;
        uint256[] credits;
        uint256 payees;
    }

    MeteredPlan public plan;
    TestUSDC public usdc;
    address public merchant;
    address public reporter;
    address public stranger; // never authorized: any bill it makes is a violation
    uint256 public cap;
    uint256 public freeCredits;
    uint256 public period;
    uint256 public grace;

    address[] public actors;
    address[2] public payees;
    mapping(address actor => uint256 indexPlusOne) internal _actorIndex;
    mapping(address actor => Ghost) internal _ghosts;

    /// @notice The time every action of the current call uses (see the contract notice).
    uint256 public currentTime;
    bool public reporterAuthorized;
    bool public retired;
    uint256 public retiredAt; // when the plan was retired (0 while it is not)
    PlanStatus public planStatus; // as the handler set it

    // Plan-wide ghost totals.
    uint256 public billsTotal; // `UsageCharged` events
    uint256 public failuresTotal; // `UsageChargeFailed` events
    uint256 public pullFailures; // of which the pull failed (allowance, balance, token): word and credits restored
    uint256 public pullFailuresWithCredits; // of which the subscriber had credits left (they must be restored too)
    uint256 public pulledTotal; // sum of `UsageCharged.pulled`
    uint256 public paidTotal; // sum of subscriber balance decreases
    uint256 public payeesReceived; // increase of the payees' balances
    uint256 public overCapBills; // usage above perCycleCap billed
    uint256 public overLimitBills; // pulled above the highest max amount the subscriber had since the cycle started
    uint256 public limitRefusals; // refused MaxAmountExceeded although the pull was within that highest max amount
    uint256 public limitViewMismatches; // `billingLimit` other than that highest max amount
    uint256 public splitViolations; // fromCredits + pulled != usage, credits not first, or not reduced by fromCredits
    uint256 public cycleViolations; // wrong cycleIndex, outside the window, not one period on, a cycle billed twice
    uint256 public grantViolations; // a `CreditsGranted` of other than freeCredits, or for a non-actor
    uint256 public cancelledFlagBills; // bills of a subscription whose stored word said cancelled
    uint256 public retiredBills; // bills, after the plan was retired, of a cycle that started after the retirement
    uint256 public freshStartsWithoutWriteOff; // a fresh start after an ended subscription whose cycle nobody wrote off
    uint256 public subscribeViolations; // a subscribe whose outcome (revert data, resumed or fresh) was not the rules'
    uint256 public writeOffViolations; // a writeOff that succeeded or failed against the rules, or changed more

    // Coverage of the M6–M8 paths (not asserted: they show that runs reach the states the rules are about).
    uint256 public unbilledCycleRefusals; // fresh subscribes refused UnbilledCycle, as expected
    uint256 public writeOffsDone; // successful writeOffs
    uint256 public freshStartsAfterWriteOff; // fresh subscriptions of an address whose last one was written off
    uint256 public resumedSubscribes; // subscribes that resumed a cancelled schedule
    uint256 public billsOnAKeptLimit; // bills that pulled more than the max amount of the moment (M7 at work)
    uint256 public billsAfterRetirement; // bills of a cycle that started before the retirement, made after it
    uint256 public unauthorizedBills; // bills by a caller that is neither the owner nor an authorized reporter
    uint256 public strangerBills; // bills of an account that never subscribed
    uint256 public unannouncedPulls; // a wallet delta other than its `UsageCharged` pulls, or a subscriber paid
    uint256 public failureChangedState; // a subscriber not billed by a charge call whose word or credits moved
    uint256 public batchCountMismatch; // chargeUsageMany's return != the `UsageCharged` it emitted
    uint256 public viewSaidOkButFailed; // usageChargeability said ok, chargeUsage by a reporter reverted
    uint256 public viewSaidNoButCharged; // usageChargeability said no, chargeUsage went through

    mapping(string action => uint256) public calls;

    /// @dev Every max amount each subscriber set in their current subscription (as stored), and when.
    mapping(address actor => uint256[]) internal _maxTimes;
    mapping(address actor => uint256[]) internal _maxValues;

    // ------------------------------------------------------------------------------------------------
    // Modifiers
    // ------------------------------------------------------------------------------------------------

    /// @dev Moves the clock by 0 (one call in two) or up to half a grace period, before the action.
    modifier step(string memory action, uint256 jumpSeed) {
        uint256 t = block.timestamp;
        if (jumpSeed % 2 != 0) {
            t += bound(jumpSeed >> 1, 1, grace / 2);
            _advanceTo(t);
        }
        currentTime = t;
        ++calls[action];
        _observe(StatusTransitions.Cause.Time, actors, address(0), true);
        _;
    }

    constructor(
        MeteredPlan plan_,
        TestUSDC usdc_,
        address merchant_,
        address reporter_,
        address[2] memory payees_,
        uint256 actorSeed
    ) {
        plan = plan_;
        usdc = usdc_;
        merchant = merchant_;
        reporter = reporter_;
        stranger = address(uint160(uint256(keccak256(abi.encode("stranger", actorSeed)))));
        payees = payees_;
        cap = plan_.perCycleCap();
        freeCredits = plan_.freeCredits();
        period = plan_.period();
        grace = plan_.gracePeriod();
        for (uint256 i = 0; i < ACTORS; ++i) {
            address actor = address(uint160(uint256(keccak256(abi.encode("metered actor", actorSeed, i)))));
            actors.push(actor);
            _actorIndex[actor] = i + 1;
            usdc_.mint(actor, 20 * cap);
            // Allowances from the start: unlimited, two caps (used up by a few bills), a third of a cap (most bills
            // that pull more fail): failed pulls, in batches too, happen from the first cycles on.
            uint256 allowance = i == 0 ? type(uint256).max : i == 1 ? 2 * cap : cap / 3;
            vm.prank(actor);
            usdc_.approve(address(plan_), allowance);
        }
        vm.prank(merchant_);
        plan_.setReporter(reporter_, true);
        reporterAuthorized = true;
        currentTime = block.timestamp;

        // Everyone subscribes at the start (max amount: no limit, the cap, half the cap), so the first cycles end
        // together and a billing round bills them all; later re-subscriptions spread the schedules out.
        for (uint256 i = 0; i < ACTORS; ++i) {
            Snapshot memory snap = _snapshot();
            uint256 maxAmount = i == 0 ? type(uint256).max : i == 1 ? cap : cap / 2;
            vm.prank(actors[i]);
            plan_.subscribe(maxAmount);
            _settle(snap, address(0), false);
            _freshStart(actors[i], maxAmount);
            _observe(StatusTransitions.Cause.Subscribe, actors, actors[i], true);
        }
    }

    // ------------------------------------------------------------------------------------------------
    // Actions (the fuzzer's targets)
    // ------------------------------------------------------------------------------------------------

    /// @notice Jumps up to three periods ahead.
    function warp(uint256 seed) external {
        uint256 t = block.timestamp + bound(seed, 1, 3 * period);
        _advanceTo(t);
        currentTime = t;
        ++calls["warp"];
        _observe(StatusTransitions.Cause.Time, actors, address(0), true);
    }

    /// @notice Jumps to around the earliest upcoming cycle end among the subscribers: into its grace window (most
    /// often), exactly to its edges, or just past it (that cycle lapses).
    function warpToNextDue(uint256 offsetSeed) external {
        ++calls["warpToNextDue"];
        _warpToNextDue(offsetSeed);
    }

    /// @notice What a merchant's billing job does: wakes up around the next cycle end and bills every subscriber (as
    /// the reporter or the owner), in one `chargeUsageMany` batch or (one time in two) with one `chargeUsage` each;
    /// then the owner re-sends, with a corrected figure, each bill that failed while its cycle can still be billed.
    /// Its usage figures are mostly plausible (one in ten above the cap), so that subscriptions live for several
    /// cycles; `chargeUsage` and `chargeUsageMany` try the wilder figures and callers.
    function billingRound(uint256 offsetSeed, uint256 seed) external {
        ++calls["billingRound"];
        _warpToNextDue(offsetSeed);
        address caller = (seed >> 1) % 2 == 0 ? reporter : merchant;
        if (seed % 2 == 0) {
            _chargeMany(seed >> 2, caller, true);
        } else {
            for (uint256 i = 0; i < ACTORS; ++i) {
                _chargeOne(actors[i], _plausibleUsage(uint256(keccak256(abi.encode(seed, i)))), caller);
            }
        }
        for (uint256 i = 0; i < ACTORS; ++i) {
            if (!plan.isDue(actors[i])) continue; // billed, or not billable now
            _chargeOne(actors[i], _plausibleUsage(uint256(keccak256(abi.encode(seed, "retry", i)))), merchant);
        }
    }

    function chargeUsage(uint256 actorSeed, uint256 usageSeed, uint256 callerSeed, uint256 jumpSeed)
        external
        step("chargeUsage", jumpSeed)
    {
        _chargeOne(_actor(actorSeed), _usage(usageSeed), _caller(callerSeed));
    }

    function chargeUsageMany(uint256 seed, uint256 jumpSeed) external step("chargeUsageMany", jumpSeed) {
        _chargeMany(seed, _caller(seed >> 64), false);
    }

    /// @notice Subscribing again: while live (refused), into the resumed schedule of a cancelled one, or afresh after
    /// an ended one (lapsed, or cancelled and past its window), which needs the owner's write-off first (M6).
    function subscribe(uint256 actorSeed, uint256 maxSeed, uint256 jumpSeed) external step("subscribe", jumpSeed) {
        address actor = _actor(actorSeed);
        uint256 maxAmount = _maxAmount(maxSeed);
        Ghost storage g = _ghosts[actor];
        Subscription memory before = plan.subscriptionOf(actor);
        SubscriptionStatus status = plan.statusOf(actor);
        bool resumes = status == SubscriptionStatus.Cancelled && currentTime <= before.nextChargeAt + grace;
        bytes memory expected; // empty: the rules let it through
        if (planStatus != PlanStatus.Active) {
            expected = abi.encodeWithSelector(IPlanCore.PlanNotActive.selector, planStatus);
        } else if (
            status == SubscriptionStatus.Active || status == SubscriptionStatus.PastDue
                || status == SubscriptionStatus.Paused
        ) {
            expected = abi.encodeWithSelector(IPlanCore.AlreadySubscribed.selector, actor, status);
        } else if (!resumes && status != SubscriptionStatus.None && !g.writtenOff) {
            expected = abi.encodeWithSelector(
                IMeteredPlan.UnbilledCycle.selector, actor, before.periodsPaid, before.nextChargeAt
            );
        }

        Snapshot memory snap = _snapshot();
        vm.prank(actor);
        bool ok;
        bytes memory err;
        try plan.subscribe(maxAmount) {
            ok = true;
        } catch (bytes memory reason) {
            err = reason;
        }
        _settle(snap, address(0), false);
        if (ok) {
            if (expected.length != 0) {
                ++subscribeViolations;
                if (bytes4(expected) == IMeteredPlan.UnbilledCycle.selector) ++freshStartsWithoutWriteOff;
            }
            Subscription memory after_ = plan.subscriptionOf(actor);
            if (resumes) {
                ++resumedSubscribes;
                // The old schedule, billable as before; the max amount given applies as setMaxAmount's would.
                if (after_.startedAt != before.startedAt || after_.nextChargeAt != before.nextChargeAt) {
                    ++subscribeViolations;
                }
                _recordMax(actor, maxAmount);
            } else {
                if (after_.startedAt != currentTime || after_.nextChargeAt != currentTime + period) {
                    ++subscribeViolations;
                }
                if (g.writtenOff) ++freshStartsAfterWriteOff;
                _freshStart(actor, maxAmount);
            }
            g.cancelled = false;
            g.paused = false;
        } else if (keccak256(err) != keccak256(expected)) {
            ++subscribeViolations;
        } else if (bytes4(expected) == IMeteredPlan.UnbilledCycle.selector) {
            ++unbilledCycleRefusals;
        }
        _observe(StatusTransitions.Cause.Subscribe, actors, actor, true);
    }

    /// @notice The owner writes off the unbilled cycle an ended subscription left (one time in eight: for an address
    /// that never subscribed). It must succeed exactly when the subscription is over (Expired, or Cancelled past its
    /// window) and not written off yet, emit `CycleWrittenOff(subscriber, periodsPaid, nextChargeAt)`, set only the
    /// written-off flag, move no token and change no status; otherwise revert `NothingToWriteOff(subscriber, status)`.
    function writeOff(uint256 seed, uint256 jumpSeed) external step("writeOff", jumpSeed) {
        address who = seed % 8 == 7 ? stranger : _actor(seed);
        bool isActor = _actorIndex[who] != 0;
        Subscription memory before = plan.subscriptionOf(who);
        SubscriptionStatus status = plan.statusOf(who);
        bool over = status == SubscriptionStatus.Expired
            || (status == SubscriptionStatus.Cancelled && currentTime > before.nextChargeAt + grace);
        bool expectOk = over && !(isActor && _ghosts[who].writtenOff);

        uint256 moneyBefore = _allBalances();
        vm.recordLogs();
        vm.prank(merchant);
        bool ok;
        bytes memory err;
        try plan.writeOff(who) {
            ok = true;
        } catch (bytes memory reason) {
            err = reason;
        }
        Vm.Log[] memory logs = vm.getRecordedLogs();
        if (ok != expectOk || _allBalances() != moneyBefore) ++writeOffViolations;
        if (ok) {
            uint256 events;
            for (uint256 i = 0; i < logs.length; ++i) {
                if (logs[i].emitter != address(plan)) continue;
                ++events;
                if (
                    logs[i].topics[0] != IMeteredPlan.CycleWrittenOff.selector
                        || address(uint160(uint256(logs[i].topics[1]))) != who
                        || keccak256(logs[i].data) != keccak256(abi.encode(before.periodsPaid, before.nextChargeAt))
                ) ++writeOffViolations;
            }
            Subscription memory after_ = plan.subscriptionOf(who);
            before.flags |= BillingMath.FLAG_WRITTEN_OFF;
            if (events != 1 || !_same(after_, before)) ++writeOffViolations;
            if (isActor) {
                Ghost storage g = _ghosts[who];
                g.writtenOff = true;
                ++g.writeOffs;
                ++writeOffsDone;
                _cover(g);
            }
        } else {
            bytes memory expected = abi.encodeWithSelector(IMeteredPlan.NothingToWriteOff.selector, who, status);
            if (keccak256(err) != keccak256(expected)) ++writeOffViolations;
        }
        _observe(StatusTransitions.Cause.Other, actors, address(0), true);
    }

    function cancel(uint256 actorSeed, uint256 jumpSeed) external step("cancel", jumpSeed) {
        address actor = _actor(actorSeed);
        Snapshot memory snap = _snapshot();
        vm.prank(actor);
        bool ok;
        try plan.cancel() {
            ok = true;
        } catch {}
        _settle(snap, address(0), false);
        if (ok) _markCancelled(actor);
        _observe(StatusTransitions.Cause.Cancel, actors, actor, true);
    }

    function cancelFor(uint256 actorSeed, uint256 jumpSeed) external step("cancelFor", jumpSeed) {
        address actor = _actor(actorSeed);
        Snapshot memory snap = _snapshot();
        vm.prank(merchant);
        bool ok;
        try plan.cancelFor(actor) {
            ok = true;
        } catch {}
        _settle(snap, address(0), false);
        if (ok) _markCancelled(actor);
        _observe(StatusTransitions.Cause.Cancel, actors, actor, true);
    }

    function pause(uint256 actorSeed, uint256 jumpSeed) external step("pause", jumpSeed) {
        address actor = _actor(actorSeed);
        Snapshot memory snap = _snapshot();
        vm.prank(actor);
        bool ok;
        try plan.pause() {
            ok = true;
        } catch {}
        _settle(snap, address(0), false);
        if (ok) _ghosts[actor].paused = true;
        _observe(StatusTransitions.Cause.Pause, actors, actor, true);
    }

    function resume(uint256 actorSeed, uint256 jumpSeed) external step("resume", jumpSeed) {
        address actor = _actor(actorSeed);
        Snapshot memory snap = _snapshot();
        vm.prank(actor);
        try plan.resume() {
            _ghosts[actor].paused = false;
        } catch {}
        _settle(snap, address(0), false);
        _observe(StatusTransitions.Cause.Resume, actors, actor, true);
    }

    function setMaxAmount(uint256 actorSeed, uint256 maxSeed, uint256 jumpSeed)
        external
        step("setMaxAmount", jumpSeed)
    {
        _setMax(_actor(actorSeed), _maxAmount(maxSeed));
    }

    /// @notice A subscriber tries to dodge the bill of a cycle they already used: just before it (at the cycle's end,
    /// or inside its window) they lower their max amount to 0 or to a little, withdraw their allowance, or both; then
    /// the reporter (or the owner) bills them. The lowering must not apply to that cycle (M7); a withdrawn allowance
    /// does stop the pull, and then the cycle stays unbilled and access stops (M6).
    function frontRunBill(uint256 actorSeed, uint256 modeSeed, uint256 offsetSeed, uint256 usageSeed) external {
        ++calls["frontRunBill"];
        address actor = _actor(actorSeed);
        _observe(StatusTransitions.Cause.Time, actors, address(0), true);
        uint256 now_ = block.timestamp;
        currentTime = now_;
        uint256 due = plan.subscriptionOf(actor).nextChargeAt;
        if (due > now_) {
            uint256 target = offsetSeed % 3 == 0 ? due : due + bound(offsetSeed >> 2, 0, grace);
            _advanceTo(target);
            currentTime = target;
            _observe(StatusTransitions.Cause.Time, actors, address(0), true);
        }
        uint256 mode = modeSeed % 5;
        if (mode == 0 || mode == 3) _setMax(actor, 0);
        if (mode == 1) _setMax(actor, 1);
        if (mode == 4) _setMax(actor, cap / 10);
        if (mode == 2 || mode == 3) {
            vm.prank(actor);
            usdc.approve(address(plan), 0);
            _observe(StatusTransitions.Cause.Other, actors, address(0), true);
        }
        _chargeOne(actor, _plausibleUsage(usageSeed), (modeSeed >> 8) % 2 == 0 ? reporter : merchant);
    }

    /// @notice The subscriber changes their allowance to the plan: none, a third of the cap, the cap, a few caps,
    /// or (two times in six) unlimited.
    function approve(uint256 actorSeed, uint256 amountSeed, uint256 jumpSeed) external step("approve", jumpSeed) {
        address actor = _actor(actorSeed);
        uint256 r = amountSeed % 6;
        uint256 amount = r == 0
            ? 0
            : r == 1 ? cap / 3 : r == 2 ? cap : r == 3 ? cap * (1 + (amountSeed >> 8) % 5) : type(uint256).max;
        vm.prank(actor);
        usdc.approve(address(plan), amount);
        _observe(StatusTransitions.Cause.Other, actors, address(0), true);
    }

    /// @notice The subscriber empties their wallet, keeps half a cap, or (one time in two) tops up five caps.
    function fund(uint256 actorSeed, uint256 amountSeed, uint256 jumpSeed) external step("fund", jumpSeed) {
        address actor = _actor(actorSeed);
        uint256 r = amountSeed % 4;
        if (r >= 2) {
            usdc.mint(actor, 5 * cap);
        } else {
            uint256 balance = usdc.balanceOf(actor);
            uint256 keep = r == 0 ? 0 : cap / 2;
            if (balance > keep) {
                vm.prank(actor);
                usdc.transfer(address(0xB1AC4401E), balance - keep);
            }
        }
        _observe(StatusTransitions.Cause.Other, actors, address(0), true);
    }

    /// @notice The merchant toggles Active / OnHold, and one time in four retires the plan (terminal: about one run
    /// in three retires a plan, usually after some bills, so that billing after retirement is tried).
    function setStatus(uint256 seed, uint256 jumpSeed) external step("setStatus", jumpSeed) {
        uint8 to = seed % 4 == 0 ? uint8(PlanStatus.Retired) : uint8(seed % 2);
        vm.prank(merchant);
        try plan.setStatus(to) {
            planStatus = PlanStatus(to);
            if (to == uint8(PlanStatus.Retired)) {
                retired = true;
                retiredAt = currentTime;
            }
        } catch {}
        _observe(
            to == uint8(PlanStatus.Retired) ? StatusTransitions.Cause.Retire : StatusTransitions.Cause.Other,
            actors,
            address(0),
            true
        );
    }

    /// @notice The merchant retires the plan (terminal), then bills what it still may (M8): at once, every ended cycle
    /// waiting for its bill, as the owner; then, around the next cycle end, every subscriber, as the reporter (the
    /// cycles running at the retirement). Later billing rounds go on trying.
    function retire(uint256 offsetSeed, uint256 seed, uint256 jumpSeed) external step("retire", jumpSeed) {
        vm.prank(merchant);
        try plan.setStatus(uint8(PlanStatus.Retired)) {
            planStatus = PlanStatus.Retired;
            retired = true;
            retiredAt = currentTime;
        } catch {}
        _observe(StatusTransitions.Cause.Retire, actors, address(0), true);
        for (uint256 i = 0; i < ACTORS; ++i) {
            _chargeOne(actors[i], _plausibleUsage(uint256(keccak256(abi.encode(seed, "retired", i)))), merchant);
        }
        _warpToNextDue(offsetSeed);
        for (uint256 i = 0; i < ACTORS; ++i) {
            _chargeOne(actors[i], _plausibleUsage(uint256(keccak256(abi.encode(seed, "running", i)))), reporter);
        }
    }

    /// @notice The merchant moves the payee between its two addresses.
    function setPayee(uint256 seed, uint256 jumpSeed) external step("setPayee", jumpSeed) {
        vm.prank(merchant);
        plan.setPayee(payees[seed % 2]);
        _observe(StatusTransitions.Cause.Other, actors, address(0), true);
    }

    /// @notice The merchant authorizes or revokes the reporter (three times in four it ends up authorized).
    function setReporter(uint256 seed, uint256 jumpSeed) external step("setReporter", jumpSeed) {
        bool authorized = seed % 4 != 0;
        vm.prank(merchant);
        plan.setReporter(reporter, authorized);
        reporterAuthorized = authorized;
        _observe(StatusTransitions.Cause.Other, actors, address(0), true);
    }

    // ------------------------------------------------------------------------------------------------
    // Views for the invariants
    // ------------------------------------------------------------------------------------------------

    function actorCount() external pure returns (uint256) {
        return ACTORS;
    }

    function ghostOf(address actor) external view returns (Ghost memory) {
        return _ghosts[actor];
    }

    /// @notice The selectors the fuzzer may call (not the views). The runner picks uniformly from this list, so
    /// listing an action several times weights it: subscribing and billing come up more often than actions that
    /// only disturb, or a run of 40 calls would see few bills.
    function selectors() external pure returns (bytes4[] memory s) {
        s = new bytes4[](32);
        uint256 k;
        k = _push(s, k, this.subscribe.selector, 4);
        k = _push(s, k, this.billingRound.selector, 4);
        k = _push(s, k, this.chargeUsage.selector, 3);
        k = _push(s, k, this.chargeUsageMany.selector, 2);
        k = _push(s, k, this.warpToNextDue.selector, 2);
        k = _push(s, k, this.warp.selector, 1);
        k = _push(s, k, this.cancel.selector, 1);
        k = _push(s, k, this.cancelFor.selector, 1);
        k = _push(s, k, this.pause.selector, 1);
        k = _push(s, k, this.resume.selector, 1);
        k = _push(s, k, this.setMaxAmount.selector, 1);
        k = _push(s, k, this.frontRunBill.selector, 2);
        k = _push(s, k, this.writeOff.selector, 2);
        k = _push(s, k, this.approve.selector, 2);
        k = _push(s, k, this.fund.selector, 1);
        k = _push(s, k, this.setStatus.selector, 1);
        k = _push(s, k, this.retire.selector, 1);
        k = _push(s, k, this.setPayee.selector, 1);
        k = _push(s, k, this.setReporter.selector, 1);
        assert(k == s.length);
    }

    function _push(bytes4[] memory s, uint256 k, bytes4 selector, uint256 times) private pure returns (uint256) {
        for (uint256 i = 0; i < times; ++i) s[k + i] = selector;
        return k + times;
    }

    // ------------------------------------------------------------------------------------------------
    // Internal
    // ------------------------------------------------------------------------------------------------

    function _actor(uint256 seed) internal view returns (address) {
        return actors[seed % ACTORS];
    }

    /// @dev Who bills: the reporter (half the time), the owner, or (one time in eight) a stranger.
    function _caller(uint256 seed) internal view returns (address) {
        uint256 r = seed % 8;
        return r < 4 ? reporter : r < 7 ? merchant : stranger;
    }

    function _authorized(address caller) internal view returns (bool) {
        return caller == merchant || (caller == reporter && reporterAuthorized);
    }

    /// @dev Usage reported for a cycle: zero, the cap, the free credits, one above the cap, up to twice the cap,
    /// "everything", or (four times in ten) anything up to the cap.
    function _usage(uint256 seed) internal view returns (uint256) {
        uint256 r = seed % 10;
        if (r == 0) return 0;
        if (r == 1) return cap;
        if (r == 2) return freeCredits;
        if (r == 3) return cap + 1;
        if (r == 4) return cap + 1 + bound(seed >> 8, 0, cap);
        if (r == 5) return type(uint256).max;
        return bound(seed >> 8, 0, cap);
    }

    /// @dev Usage a billing job reports: zero, the cap, one above the cap, or (seven times in ten) anything up to the
    /// cap.
    function _plausibleUsage(uint256 seed) internal view returns (uint256) {
        uint256 r = seed % 10;
        if (r == 0) return 0;
        if (r == 1) return cap;
        if (r == 2) return cap + 1;
        return bound(seed >> 8, 0, cap);
    }

    /// @dev Max amounts: 0 (only what credits cover can be billed), half the cap, the cap, "no limit", or anything
    /// up to twice the cap.
    function _maxAmount(uint256 seed) internal view returns (uint256) {
        uint256 r = seed % 5;
        if (r == 0) return 0;
        if (r == 1) return cap / 2;
        if (r == 2) return cap;
        if (r == 3) return type(uint256).max;
        return bound(seed >> 8, 0, 2 * cap);
    }

    /// @dev One `chargeUsage`, after asking `usageChargeability` whether it would succeed.
    function _chargeOne(address actor, uint256 usage, address caller) internal {
        (bool predicted, ChargeReason reason,, uint256 toPull) = plan.usageChargeability(actor, usage);
        uint256 limit = _ghostLimit(actor);
        // M7: the subscriber cannot lower the limit of a cycle already started below what it was since then.
        if (reason == ChargeReason.MaxAmountExceeded && toPull <= limit) ++limitRefusals;
        _checkLimitView(actor, limit);
        Snapshot memory snap = _snapshot();
        vm.prank(caller);
        bool charged;
        try plan.chargeUsage(actor, usage, bytes32(billsTotal)) {
            charged = true;
        } catch {}
        _settle(snap, caller, true);
        _observe(StatusTransitions.Cause.Charge, actors, actor, true);

        if (!_authorized(caller)) return; // a refused caller: `unauthorizedBills` counts it if it billed
        if (predicted && !charged) ++viewSaidOkButFailed;
        if (!predicted && charged) ++viewSaidNoButCharged;
    }

    /// @dev One `chargeUsageMany`: every actor once, in a rotated order, then up to four more picks (duplicates)
    /// from the actors and the stranger (who never subscribed), each with its own random usage (`plausible`: as a
    /// billing job reports it), sent by `caller`.
    function _chargeMany(uint256 seed, address caller, bool plausible) internal {
        uint256 extra = seed % 5;
        uint256 n = ACTORS + extra;
        address[] memory list = new address[](n);
        uint256[] memory usages = new uint256[](n);
        bytes32[] memory refs = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) {
            uint256 r = uint256(keccak256(abi.encode(seed, "item", i)));
            if (i < ACTORS) {
                list[i] = actors[(i + (seed >> 4)) % ACTORS];
            } else {
                uint256 pick = r % (ACTORS + 1);
                list[i] = pick == ACTORS ? stranger : actors[pick];
            }
            usages[i] = plausible ? _plausibleUsage(r >> 8) : _usage(r >> 8);
            refs[i] = bytes32(i);
        }
        Snapshot memory snap = _snapshot();
        vm.prank(caller);
        try plan.chargeUsageMany(list, usages, refs) returns (uint256 charged) {
            uint256 bills = _settle(snap, caller, true);
            if (charged != bills) ++batchCountMismatch;
        } catch {
            _settle(snap, caller, true);
        }
        _observe(StatusTransitions.Cause.Charge, actors, address(0), true);
    }

    function _warpToNextDue(uint256 offsetSeed) internal {
        _observe(StatusTransitions.Cause.Time, actors, address(0), true);
        uint256 now_ = block.timestamp;
        currentTime = now_;
        uint256 due = type(uint256).max;
        for (uint256 i = 0; i < ACTORS; ++i) {
            uint256 next = plan.subscriptionOf(actors[i]).nextChargeAt;
            if (next > now_ && next < due) due = next;
        }
        if (due == type(uint256).max) return;
        uint256 r = offsetSeed % 8;
        uint256 target;
        if (r < 5) target = due + bound(offsetSeed >> 8, 0, grace); // inside the window
        else if (r == 5) target = due; // its first second
        else if (r == 6) target = due + grace; // its last second
        else target = due + grace + 1; // one second late: lapsed
        _advanceTo(target);
        currentTime = target;
        _observe(StatusTransitions.Cause.Time, actors, address(0), true);
    }

    function _statusNow(address subscriber) internal view override returns (SubscriptionStatus) {
        return plan.statusOf(subscriber);
    }

    function _planRetired() internal view override returns (bool) {
        return retired;
    }

    /// @dev One `setMaxAmount` by `actor`, booked in their max-amount history when it succeeds.
    function _setMax(address actor, uint256 maxAmount) internal {
        Snapshot memory snap = _snapshot();
        vm.prank(actor);
        bool ok;
        try plan.setMaxAmount(maxAmount) {
            ok = true;
        } catch {}
        _settle(snap, address(0), false);
        if (ok) _recordMax(actor, maxAmount);
        _checkLimitView(actor, _ghostLimit(actor));
        _observe(StatusTransitions.Cause.Other, actors, address(0), true);
    }

    /// @dev A fresh subscription of `actor` started now with `maxAmount`: its first cycle starts now, its max-amount
    /// history restarts, and any earlier write-off is used up.
    function _freshStart(address actor, uint256 maxAmount) internal {
        Ghost storage g = _ghosts[actor];
        g.cycleStart = currentTime;
        g.writtenOff = false;
        delete _maxTimes[actor];
        delete _maxValues[actor];
        _recordMax(actor, maxAmount);
    }

    function _recordMax(address actor, uint256 maxAmount) internal {
        _maxTimes[actor].push(currentTime);
        _maxValues[actor].push(maxAmount > type(uint96).max ? type(uint96).max : maxAmount);
    }

    /// @dev The highest max amount `actor` had at any moment since the cycle waiting for its bill started: the one in
    /// force at its start (the last set before it) and every one set since (at its very second too: from the end of
    /// a cycle on, the next one is running).
    function _ghostLimit(address actor) internal view returns (uint256 limit) {
        uint256[] storage times = _maxTimes[actor];
        uint256[] storage values = _maxValues[actor];
        uint256 start = _ghosts[actor].cycleStart;
        for (uint256 i = 0; i < times.length; ++i) {
            bool inForceAtStart = times[i] < start && (i + 1 == times.length || times[i + 1] >= start);
            if ((times[i] >= start || inForceAtStart) && values[i] > limit) limit = values[i];
        }
    }

    /// @dev `billingLimit` must be the ghost's limit for a subscription whose waiting cycle can still be billed.
    function _checkLimitView(address actor, uint256 limit) internal {
        SubscriptionStatus status = plan.statusOf(actor);
        if (
            status != SubscriptionStatus.Active && status != SubscriptionStatus.PastDue
                && status != SubscriptionStatus.Paused
        ) return;
        if (plan.billingLimit(actor) != limit) ++limitViewMismatches;
    }

    /// @dev Moves the clock to `t`, first booking the access every subscriber had on the way (see the notice).
    function _advanceTo(uint256 t) internal {
        uint256 from = vm.getBlockTimestamp();
        if (t > from) {
            for (uint256 i = 0; i < ACTORS; ++i) {
                _accrueAccess(actors[i], from, t);
            }
        }
        vm.warp(t);
    }

    /// @dev Books the access `actor` has from `from` (now) to `to`, nothing else happening meanwhile. Without a call a
    /// status only moves on (Active, then PastDue at the cycle's end, then Expired after the grace window), so access
    /// that holds now lasts until the cycle ends (an Active metered subscription) and, if the plan still gives access
    /// while the ended cycle waits for its bill (PastDue: M6 forbids it), until the grace window ends, in the next
    /// cycle (the one running then).
    function _accrueAccess(address actor, uint256 from, uint256 to) internal {
        if (!plan.hasAccess(actor)) return;
        Subscription memory sub = plan.subscriptionOf(actor);
        uint256 end = sub.nextChargeAt;
        if (plan.statusOf(actor) == SubscriptionStatus.PastDue) {
            _bookAccess(actor, from, _min(to, end + grace), sub, 1);
            return;
        }
        _bookAccess(actor, from, _min(to, end), sub, 0);
        if (to > end) {
            vm.warp(end);
            bool onCredit = plan.hasAccess(actor);
            vm.warp(from);
            if (onCredit) _bookAccess(actor, end, _min(to, end + grace), sub, 1);
        }
    }

    /// @dev `actor` had access from `from` to `to` in cycle `sub.periodsPaid + ahead` of the subscription `sub`.
    function _bookAccess(address actor, uint256 from, uint256 to, Subscription memory sub, uint256 ahead) internal {
        if (to <= from) return;
        Ghost storage g = _ghosts[actor];
        g.unbilledAccess += to - from;
        if (g.unbilledAccess > g.maxUnbilledAccess) g.maxUnbilledAccess = g.unbilledAccess;
        bytes32 cycle = keccak256(abi.encode(sub.startedAt, uint256(sub.periodsPaid) + ahead));
        if (cycle != g.lastAccessCycle) {
            g.lastAccessCycle = cycle;
            ++g.exposedCycles;
            if (g.exposedCycles > g.maxExposedCycles) g.maxExposedCycles = g.exposedCycles;
        }
    }

    /// @dev A bill or a write-off covers the access booked so far.
    function _cover(Ghost storage g) internal {
        g.unbilledAccess = 0;
        g.exposedCycles = 0;
        g.lastAccessCycle = bytes32(0);
    }

    function _min(uint256 a, uint256 b) internal pure returns (uint256) {
        return a < b ? a : b;
    }

    /// @dev Every balance a plan call could move: the subscribers', the stranger's and the payees'.
    function _allBalances() internal view returns (uint256 total) {
        for (uint256 i = 0; i < ACTORS; ++i) {
            total += usdc.balanceOf(actors[i]);
        }
        total += usdc.balanceOf(stranger) + _payeeBalances();
    }

    function _markCancelled(address actor) internal {
        Ghost storage g = _ghosts[actor];
        g.cancelled = true;
        g.paused = false;
    }

    function _payeeBalances() internal view returns (uint256) {
        return usdc.balanceOf(payees[0]) + usdc.balanceOf(payees[1]);
    }

    function _snapshot() internal returns (Snapshot memory snap) {
        vm.recordLogs();
        snap.balances = new uint256[](ACTORS);
        snap.subs = new Subscription[](ACTORS);
        snap.credits = new uint256[](ACTORS);
        for (uint256 i = 0; i < ACTORS; ++i) {
            snap.balances[i] = usdc.balanceOf(actors[i]);
            snap.subs[i] = plan.subscriptionOf(actors[i]);
            snap.credits[i] = plan.creditsOf(actors[i]);
        }
        snap.payees = _payeeBalances();
    }

    /// @dev Books what the call did: `UsageCharged` (checked against the rules and the snapshot), `CreditsGranted`,
    /// `UsageChargeFailed`, and the balance deltas (checked against the announced pulls). `caller` made the call;
    /// `billing` says it was a chargeUsage/chargeUsageMany, after which an actor not billed must be unchanged.
    /// Returns how many bills the call made.
    function _settle(Snapshot memory snap, address caller, bool billing) internal returns (uint256 bills) {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        uint256[] memory pulledNow = new uint256[](ACTORS);
        uint256[] memory billsNow = new uint256[](ACTORS); // bills booked so far, per actor
        uint256[] memory billsInCall = new uint256[](ACTORS); // bills the whole call made, per actor
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].emitter != address(plan) || logs[i].topics[0] != IMeteredPlan.UsageCharged.selector) continue;
            uint256 index = _actorIndex[address(uint160(uint256(logs[i].topics[1])))];
            if (index != 0) ++billsInCall[index - 1];
        }
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].emitter != address(plan)) continue;
            bytes32 topic0 = logs[i].topics[0];
            address who = address(uint160(uint256(logs[i].topics[1])));
            if (topic0 == IMeteredPlan.UsageCharged.selector) {
                ++bills;
                _bookBill(snap, who, logs[i].data, caller, pulledNow, billsNow, billsInCall);
            } else if (topic0 == IMeteredPlan.UsageChargeFailed.selector) {
                ++failuresTotal;
                (ChargeReason reason, uint256 usage) = abi.decode(logs[i].data, (ChargeReason, uint256));
                if (reason == ChargeReason.MaxAmountExceeded && _actorIndex[who] != 0) {
                    uint256 credits = snap.credits[_actorIndex[who] - 1];
                    if (usage - (usage < credits ? usage : credits) <= _ghostLimit(who)) ++limitRefusals;
                }
                if (reason >= ChargeReason.AllowanceTooLow && reason <= ChargeReason.TransferFailed) {
                    ++pullFailures;
                    uint256 index = _actorIndex[who];
                    if (index != 0 && snap.credits[index - 1] != 0) ++pullFailuresWithCredits;
                }
            } else if (topic0 == IMeteredPlan.CreditsGranted.selector) {
                if (_actorIndex[who] == 0 || abi.decode(logs[i].data, (uint256)) != freeCredits) ++grantViolations;
                else ++_ghosts[who].grants;
            }
        }

        for (uint256 i = 0; i < ACTORS; ++i) {
            address actor = actors[i];
            uint256 balance = usdc.balanceOf(actor);
            if (balance > snap.balances[i]) {
                ++unannouncedPulls; // a plan call never pays a subscriber
                continue;
            }
            uint256 delta = snap.balances[i] - balance;
            if (delta != pulledNow[i]) ++unannouncedPulls; // what left the wallet is not what was announced
            _ghosts[actor].paid += delta;
            paidTotal += delta;

            // M5 / rule 12: a subscriber the call did not bill (refused, failed pull, not listed) is untouched.
            if (billing && billsNow[i] == 0) {
                Subscription memory now_ = plan.subscriptionOf(actor);
                if (
                    !_same(now_, snap.subs[i]) || plan.creditsOf(actor) != snap.credits[i] || delta != 0
                ) ++failureChangedState;
            }
        }
        payeesReceived += _payeeBalances() - snap.payees;
    }

    /// @dev Checks one `UsageCharged` against the rules, the snapshot before the call and the ghost history.
    /// `billsNow[i]`: bills of actor i booked so far in this call; `billsInCall[i]`: bills of actor i in the call.
    function _bookBill(
        Snapshot memory snap,
        address who,
        bytes memory data,
        address caller,
        uint256[] memory pulledNow,
        uint256[] memory billsNow,
        uint256[] memory billsInCall
    ) internal {
        (uint256 cycleIndex, uint256 usage, uint256 fromCredits, uint256 pulled, uint256 next) =
            abi.decode(data, (uint256, uint256, uint256, uint256, uint256));
        billsTotal += 1;
        pulledTotal += pulled;
        if (!_authorized(caller)) ++unauthorizedBills; // M1
        uint256 index = _actorIndex[who];
        if (index == 0) {
            ++strangerBills; // never subscribed
            return;
        }
        uint256 i = index - 1;
        Ghost storage g = _ghosts[who];
        Subscription memory before = snap.subs[i];
        uint256 now_ = currentTime;

        // (a) One bill per cycle: its index is the count of earlier bills; and, for the call's first bill of this
        // subscriber, the cycle billed is the one that ended at `before.nextChargeAt` (= periodsPaid before), inside
        // its window; it ends at least a period after the last cycle billed and the bills are at least
        // period - grace apart; the schedule moves by exactly one period and nothing else in the word moves.
        if (cycleIndex != g.bills) ++cycleViolations;
        if (billsNow[i] != 0) {
            // A second bill of one subscriber in one call (at one time) bills one cycle twice: cycle ends are at
            // least a period apart and the window is shorter. The snapshot is stale for it: nothing else is checked.
            ++cycleViolations;
        } else {
            if (cycleIndex != before.periodsPaid) ++cycleViolations;
            if (now_ < before.nextChargeAt || now_ > before.nextChargeAt + grace) ++cycleViolations;
            if (next != before.nextChargeAt + period) ++cycleViolations;
            if (g.bills != 0 && before.nextChargeAt < g.lastCycleEnd + period) ++cycleViolations;
            if (g.firstBillAt != 0 && now_ - g.lastBillAt < period - grace) ++cycleViolations;
            g.lastCycleEnd = before.nextChargeAt;

            // M7: never above the highest max amount since the cycle started. M8: on a retired plan, only a cycle
            // that started before the retirement. The next cycle started when this one ended.
            if (pulled > _ghostLimit(who)) ++overLimitBills;
            if (pulled > before.maxAmount) ++billsOnAKeptLimit;
            if (retired && g.cycleStart >= retiredAt) ++retiredBills;
            if (retired) ++billsAfterRetirement;
            g.cycleStart = before.nextChargeAt;

            // (b) Credits pay first: fromCredits = min(usage, credits before).
            uint256 creditsBefore = snap.credits[i];
            if (fromCredits != (usage < creditsBefore ? usage : creditsBefore)) ++splitViolations;
            if (billsInCall[i] == 1) {
                // The state after the call is this bill's alone.
                Subscription memory after_ = plan.subscriptionOf(who);
                // The kept-limits flag (M7) may be cleared by the bill, never set; the before-retirement mark
                // (M8) is always cleared: the cycle it was for is billed, the next one starts after any retirement.
                uint8 limits = BillingMath.FLAG_LIMITS;
                uint8 moving = limits | BillingMath.FLAG_BEFORE_RETIREMENT;
                if (
                    after_.nextChargeAt != next || after_.periodsPaid != before.periodsPaid + 1
                        || after_.maxAmount != before.maxAmount || after_.startedAt != before.startedAt
                        || after_.pausedAt != before.pausedAt
                        || after_.flags & ~moving != (before.flags | BillingMath.FLAG_PAID) & ~moving
                        || (after_.flags & limits != 0 && before.flags & limits == 0)
                        || after_.flags & BillingMath.FLAG_BEFORE_RETIREMENT != 0
                ) ++cycleViolations;
                if (fromCredits > creditsBefore || plan.creditsOf(who) != creditsBefore - fromCredits) {
                    ++splitViolations;
                }
            }
        }

        // (b) Within the cap (the max amount: M7, above), and the split adds up.
        if (usage > cap) ++overCapBills;
        if (fromCredits + pulled != usage) ++splitViolations;

        // (e) and rules 4, 8: never a cancelled or paused subscription (retirement: M8, above).
        if (g.cancelled) ++g.billsWhileCancelled;
        if (before.flags & BillingMath.FLAG_CANCELLED != 0) ++cancelledFlagBills;
        if (g.paused || before.pausedAt != 0) ++g.billsWhilePaused;

        // M6: a bill covers the access the subscriber had.
        _cover(g);

        ++billsNow[i];
        pulledNow[i] += pulled;
        ++g.bills;
        g.usage += usage;
        g.fromCredits += fromCredits;
        g.pulled += pulled;
        if (g.firstBillAt == 0) g.firstBillAt = now_;
        g.lastBillAt = now_;
    }

    function _same(Subscription memory a, Subscription memory b) internal pure returns (bool) {
        return a.maxAmount == b.maxAmount && a.nextChargeAt == b.nextChargeAt && a.startedAt == b.startedAt
            && a.pausedAt == b.pausedAt && a.periodsPaid == b.periodsPaid && a.flags == b.flags;
    }
}

/// @notice Money invariants of a metered plan (IMeteredPlan M1–M8; IPlanCore rules 1–5, 7, 8, 11, 12), checked
/// after every call of random action sequences on two metered plans made by PlanFactory:
///  - plan A: cap 50 tUSDC, 20 tUSDC of free credits (less than a cycle), 7-day period, 2-day grace;
///  - plan B: cap 3.000001 tUSDC, 7.5 tUSDC of free credits (over two full cycles), 1-day period, 1-hour grace.
contract MeteredInvariantsTest is InvariantTest {
    uint256 internal constant T0 = 1_700_000_000;

    PlanFactory internal factory;
    TestUSDC internal usdc;
    MeteredHandler[] internal handlers;

    function setUp() public {
        vm.warp(T0);
        usdc = new TestUSDC();
        factory = new PlanFactory();
        address merchant = address(0xA11CE);

        handlers.push(_deploy(merchant, 50e6, 20e6, 7 days, 2 days, 1));
        handlers.push(_deploy(merchant, 3_000_001, 7_500_000, 1 days, 1 hours, 2));

        for (uint256 i = 0; i < handlers.length; ++i) {
            targetContract(address(handlers[i]));
            targetSelector(FuzzSelector({addr: address(handlers[i]), selectors: handlers[i].selectors()}));
        }
    }

    function _deploy(address merchant, uint256 cap, uint256 credits, uint256 period, uint256 grace, uint256 n)
        internal
        returns (MeteredHandler handler)
    {
        address[2] memory payees = [address(uint160(0xBEEF10 + 2 * n)), address(uint160(0xBEEF11 + 2 * n))];
        vm.prank(merchant);
        MeteredPlan plan = MeteredPlan(
            factory.createPlan(PlanFixture.meteredTerms(address(usdc), payees[0], cap, period, grace, credits))
        );
        handler = new MeteredHandler(plan, usdc, merchant, address(uint160(0x4E904E700 + n)), payees, n);
        vm.label(address(plan), n == 1 ? "meteredA" : "meteredB");
        vm.label(address(handler), n == 1 ? "meteredHandlerA" : "meteredHandlerB");
    }

    // ------------------------------------------------------------------------------------------------
    // Invariants
    // ------------------------------------------------------------------------------------------------

    /// (a) At most one successful bill per subscriber per cycle (M2, rule 1). Each bill carries the next cycleIndex
    /// (= the ghost count of earlier bills = periodsPaid before it), bills the cycle that ended at nextChargeAt, inside
    /// [nextChargeAt, nextChargeAt + grace], moves nextChargeAt by exactly one period and nothing else; the cycles
    /// billed end at least a period apart and the bills are at least period - grace apart. Hence, as in
    /// PlanInvariants (a), a subscriber billed n times has n <= floor((lastBill - firstBill + grace) / period) + 1;
    /// and the plan's periodsPaid equals the ghost count.
    function invariant_atMostOneBillPerCycle() public view {
        for (uint256 h = 0; h < handlers.length; ++h) {
            MeteredHandler handler = handlers[h];
            assertEq(handler.cycleViolations(), 0, "a bill outside the schedule, or a cycle billed twice");
            for (uint256 i = 0; i < handler.actorCount(); ++i) {
                address actor = handler.actors(i);
                MeteredHandler.Ghost memory g = handler.ghostOf(actor);
                assertEq(handler.plan().subscriptionOf(actor).periodsPaid, g.bills, "periodsPaid == bills seen");
                if (g.bills == 0) continue;
                assertLe(
                    g.bills,
                    (g.lastBillAt - g.firstBillAt + handler.grace()) / handler.period() + 1,
                    "bills <= floor((last - first + grace) / period) + 1"
                );
            }
        }
    }

    /// (b) Every successful bill's usage is at most perCycleCap (M3) and its pulled part at most the cycle's limit
    /// (rule 3, M4, M7: the highest max amount since the cycle started, see invariant_billNeverAboveTheCyclesHighest-
    /// MaxAmount); credits pay first, fromCredits + pulled == usage, and the credits drop by exactly fromCredits.
    function invariant_everyBillWithinCapAndMaxAmount() public view {
        for (uint256 h = 0; h < handlers.length; ++h) {
            MeteredHandler handler = handlers[h];
            assertEq(handler.overCapBills(), 0, "usage above perCycleCap billed");
            assertEq(handler.overLimitBills(), 0, "pulled above the highest max amount since the cycle started");
            assertEq(handler.splitViolations(), 0, "credits not first, or fromCredits + pulled != usage");
            for (uint256 i = 0; i < handler.actorCount(); ++i) {
                MeteredHandler.Ghost memory g = handler.ghostOf(handler.actors(i));
                assertLe(g.usage, g.bills * handler.cap(), "usage billed <= bills x cap");
            }
        }
    }

    /// (c) Money goes only to the payee, exactly as announced (rule 11): the payees' balance increase equals the sum
    /// of `pulled` over all UsageCharged events, and so does what left the subscribers' wallets, per subscriber too;
    /// the plan never holds tokens (rule 6).
    function invariant_payeeReceivesExactlyThePulls() public view {
        for (uint256 h = 0; h < handlers.length; ++h) {
            MeteredHandler handler = handlers[h];
            assertEq(handler.payeesReceived(), handler.pulledTotal(), "payees received == sum of UsageCharged.pulled");
            assertEq(handler.paidTotal(), handler.pulledTotal(), "subscribers paid == sum of UsageCharged.pulled");
            assertEq(handler.unannouncedPulls(), 0, "a wallet moved other than its UsageCharged said");
            assertEq(usdc.balanceOf(address(handler.plan())), 0, "the plan holds tokens");
            for (uint256 i = 0; i < handler.actorCount(); ++i) {
                MeteredHandler.Ghost memory g = handler.ghostOf(handler.actors(i));
                assertEq(g.paid, g.pulled, "per subscriber: paid == sum of their pulls");
            }
        }
    }

    /// (d) Free credits (M4): granted at most once per subscriber, always exactly freeCredits; a subscriber's credits
    /// never exceed freeCredits; the credits they spent never exceed freeCredits; and credits left + credits spent ==
    /// freeCredits once granted (0 and 0 before).
    function invariant_creditsGrantedOnceAndNeverOverspent() public view {
        for (uint256 h = 0; h < handlers.length; ++h) {
            MeteredHandler handler = handlers[h];
            uint256 free = handler.freeCredits();
            assertEq(handler.grantViolations(), 0, "a grant of other than freeCredits, or to a stranger");
            for (uint256 i = 0; i < handler.actorCount(); ++i) {
                address actor = handler.actors(i);
                MeteredHandler.Ghost memory g = handler.ghostOf(actor);
                uint256 left = handler.plan().creditsOf(actor);
                assertLe(g.grants, 1, "credits granted more than once");
                assertLe(left, free, "credits above freeCredits");
                assertLe(g.fromCredits, free, "spent more credits than freeCredits");
                assertEq(left + g.fromCredits, g.grants * free, "credits left + spent == granted");
            }
        }
    }

    /// (e) Nothing is billed for a cancelled subscription (rule 4), until the subscriber subscribes again; nor for a
    /// paused one (rule 8); nor, on a retired plan, a cycle that started after the retirement (rule 7, M8: the cycles
    /// that had started before it can still be billed inside their grace window).
    function invariant_nothingBilledWhenCancelledPausedOrRetired() public view {
        for (uint256 h = 0; h < handlers.length; ++h) {
            MeteredHandler handler = handlers[h];
            assertEq(handler.cancelledFlagBills(), 0, "billed a subscription stored as cancelled");
            assertEq(handler.retiredBills(), 0, "billed a cycle that started after the plan was retired");
            for (uint256 i = 0; i < handler.actorCount(); ++i) {
                MeteredHandler.Ghost memory g = handler.ghostOf(handler.actors(i));
                assertEq(g.billsWhileCancelled, 0, "billed after cancel");
                assertEq(g.billsWhilePaused, 0, "billed while paused");
            }
        }
    }

    /// M1, M5, rule 12: only the owner and authorized reporters bill, only subscribers are billed; a charge call that
    /// does not bill a subscriber (refused, or its pull failed in a batch) leaves their word, credits and balance
    /// untouched; chargeUsageMany returns the number it billed; usageChargeability predicts chargeUsage.
    function invariant_onlyReportersBillAndFailuresChangeNothing() public view {
        for (uint256 h = 0; h < handlers.length; ++h) {
            MeteredHandler handler = handlers[h];
            assertEq(handler.unauthorizedBills(), 0, "billed by a caller that is not a reporter");
            assertEq(handler.strangerBills(), 0, "billed an account that never subscribed");
            assertEq(handler.failureChangedState(), 0, "a subscriber not billed was changed");
            assertEq(handler.batchCountMismatch(), 0, "chargeUsageMany's count != bills");
            assertEq(handler.viewSaidOkButFailed(), 0, "usageChargeability said ok, chargeUsage failed");
            assertEq(handler.viewSaidNoButCharged(), 0, "usageChargeability said no, chargeUsage billed");
        }
    }

    /// The merchant's exposure to one address is at most one cycle, at most perCycleCap (M6). The handler books, to the
    /// second, the time each subscriber had access (`hasAccess`) and the cycles it fell in; a bill or the owner's
    /// write-off covers what was booked. Access not covered never adds up to more than one period, and never spans
    /// more than one cycle, so the usage the merchant may never bill is at most one cycle's cap.
    function invariant_merchantExposureAtMostOneCyclePerAddress() public view {
        for (uint256 h = 0; h < handlers.length; ++h) {
            MeteredHandler handler = handlers[h];
            for (uint256 i = 0; i < handler.actorCount(); ++i) {
                MeteredHandler.Ghost memory g = handler.ghostOf(handler.actors(i));
                assertLe(g.maxUnbilledAccess, handler.period(), "access not covered by a bill or write-off > a period");
                assertLe(
                    g.maxExposedCycles * handler.cap(), handler.cap(), "usage exposure (cycles with access x cap) > cap"
                );
            }
        }
    }

    /// M7: a bill never pulls more than the highest max amount the subscriber had since that cycle started (the one in
    /// force at its start, a raise since, or the max amount given when re-subscribing into the resumed schedule); a
    /// lowering since the start never refuses a bill within it (MaxAmountExceeded), so lowering the max amount to 0
    /// just before a bill does not dodge it; and `billingLimit` says exactly that amount.
    function invariant_billNeverAboveTheCyclesHighestMaxAmount() public view {
        for (uint256 h = 0; h < handlers.length; ++h) {
            MeteredHandler handler = handlers[h];
            assertEq(handler.overLimitBills(), 0, "pulled above the highest max amount since the cycle started");
            assertEq(handler.limitRefusals(), 0, "refused MaxAmountExceeded within the cycle's highest max amount");
            assertEq(handler.limitViewMismatches(), 0, "billingLimit != the highest max amount since the cycle start");
        }
    }

    /// M6: an address whose subscription ended (lapsed, or cancelled and past its window: its last cycle is always
    /// unbilled) starts afresh only after the owner's writeOff: subscribe reverts UnbilledCycle(subscriber,
    /// periodsPaid, nextChargeAt) until then, and inside the window it resumes the old schedule. writeOff succeeds
    /// exactly for a subscription that is over and not written off (else NothingToWriteOff(subscriber, status)),
    /// emits CycleWrittenOff, sets only its flag and moves no token.
    function invariant_freshStartOnlyAfterAWriteOff() public view {
        for (uint256 h = 0; h < handlers.length; ++h) {
            MeteredHandler handler = handlers[h];
            assertEq(handler.freshStartsWithoutWriteOff(), 0, "fresh start, last cycle unbilled and not written off");
            assertEq(handler.subscribeViolations(), 0, "subscribe: outcome other than the rules'");
            assertEq(handler.writeOffViolations(), 0, "writeOff: outcome other than the rules'");
        }
    }


    /// Statuses move only along the allowed transitions. After every clock move and every action the handler reads
    /// `statusOf` of every subscriber; each change must be one `StatusTransitions.allowed` lists for its cause (time;
    /// the subscriber's subscribe, cancel, pause or resume; a bill; the merchant's cancelFor or retirement), move only
    /// the subscriber acted on (bar batch bills, time and retirement), and never be Trialing (metered plans have no
    /// trial). A re-subscribe while the last cycle is still billable resumes it, so Cancelled -> PastDue is allowed.
    function invariant_statusesMoveOnlyAlongAllowedTransitions() public view {
        for (uint256 h = 0; h < handlers.length; ++h) {
            assertEq(
                handlers[h].badTransitions(),
                0,
                string.concat("status transition not allowed (cause:from->to) ", handlers[h].firstBadTransition())
            );
        }
    }
}
