// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IMeteredPlan} from "../../contracts/interfaces/IMeteredPlan.sol";
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

    // Plan-wide ghost totals.
    uint256 public billsTotal; // `UsageCharged` events
    uint256 public failuresTotal; // `UsageChargeFailed` events
    uint256 public pullFailures; // of which the pull failed (allowance, balance, token): word and credits restored
    uint256 public pullFailuresWithCredits; // of which the subscriber had credits left (they must be restored too)
    uint256 public pulledTotal; // sum of `UsageCharged.pulled`
    uint256 public paidTotal; // sum of subscriber balance decreases
    uint256 public payeesReceived; // increase of the payees' balances
    uint256 public overCapBills; // usage above perCycleCap billed
    uint256 public overMaxBills; // pulled above the subscriber's maxAmount at that time
    uint256 public splitViolations; // fromCredits + pulled != usage, credits not first, or not reduced by fromCredits
    uint256 public cycleViolations; // wrong cycleIndex, outside the window, not one period on, a cycle billed twice
    uint256 public grantViolations; // a `CreditsGranted` of other than freeCredits, or for a non-actor
    uint256 public cancelledFlagBills; // bills of a subscription whose stored word said cancelled
    uint256 public retiredBills; // bills after the plan was retired
    uint256 public unauthorizedBills; // bills by a caller that is neither the owner nor an authorized reporter
    uint256 public strangerBills; // bills of an account that never subscribed
    uint256 public unannouncedPulls; // a wallet delta other than its `UsageCharged` pulls, or a subscriber paid
    uint256 public failureChangedState; // a subscriber not billed by a charge call whose word or credits moved
    uint256 public batchCountMismatch; // chargeUsageMany's return != the `UsageCharged` it emitted
    uint256 public viewSaidOkButFailed; // usageChargeability said ok, chargeUsage by a reporter reverted
    uint256 public viewSaidNoButCharged; // usageChargeability said no, chargeUsage went through

    mapping(string action => uint256) public calls;

    // ------------------------------------------------------------------------------------------------
    // Modifiers
    // ------------------------------------------------------------------------------------------------

    /// @dev Moves the clock by 0 (one call in two) or up to half a grace period, before the action.
    modifier step(string memory action, uint256 jumpSeed) {
        uint256 t = block.timestamp;
        if (jumpSeed % 2 != 0) {
            t += bound(jumpSeed >> 1, 1, grace / 2);
            vm.warp(t);
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
            vm.prank(actors[i]);
            plan_.subscribe(i == 0 ? type(uint256).max : i == 1 ? cap : cap / 2);
            _settle(snap, address(0), false);
            _observe(StatusTransitions.Cause.Subscribe, actors, actors[i], true);
        }
    }

    // ------------------------------------------------------------------------------------------------
    // Actions (the fuzzer's targets)
    // ------------------------------------------------------------------------------------------------

    /// @notice Jumps up to three periods ahead.
    function warp(uint256 seed) external {
        uint256 t = block.timestamp + bound(seed, 1, 3 * period);
        vm.warp(t);
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

    function subscribe(uint256 actorSeed, uint256 maxSeed, uint256 jumpSeed) external step("subscribe", jumpSeed) {
        address actor = _actor(actorSeed);
        uint256 maxAmount = _maxAmount(maxSeed);
        Snapshot memory snap = _snapshot();
        vm.prank(actor);
        try plan.subscribe(maxAmount) {
            Ghost storage g = _ghosts[actor];
            g.cancelled = false;
            g.paused = false;
        } catch {}
        _settle(snap, address(0), false);
        _observe(StatusTransitions.Cause.Subscribe, actors, actor, true);
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
        address actor = _actor(actorSeed);
        uint256 maxAmount = _maxAmount(maxSeed);
        Snapshot memory snap = _snapshot();
        vm.prank(actor);
        try plan.setMaxAmount(maxAmount) {} catch {}
        _settle(snap, address(0), false);
        _observe(StatusTransitions.Cause.Other, actors, address(0), true);
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
            if (to == uint8(PlanStatus.Retired)) retired = true;
        } catch {}
        _observe(
            to == uint8(PlanStatus.Retired) ? StatusTransitions.Cause.Retire : StatusTransitions.Cause.Other,
            actors,
            address(0),
            true
        );
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
        s = new bytes4[](27);
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
        k = _push(s, k, this.approve.selector, 2);
        k = _push(s, k, this.fund.selector, 1);
        k = _push(s, k, this.setStatus.selector, 1);
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
        (bool predicted,,,) = plan.usageChargeability(actor, usage);
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
        vm.warp(target);
        currentTime = target;
        _observe(StatusTransitions.Cause.Time, actors, address(0), true);
    }

    function _statusNow(address subscriber) internal view override returns (SubscriptionStatus) {
        return plan.statusOf(subscriber);
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
                (ChargeReason reason,) = abi.decode(logs[i].data, (ChargeReason, uint256));
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

            // (b) Credits pay first: fromCredits = min(usage, credits before).
            uint256 creditsBefore = snap.credits[i];
            if (fromCredits != (usage < creditsBefore ? usage : creditsBefore)) ++splitViolations;
            if (billsInCall[i] == 1) {
                // The state after the call is this bill's alone.
                Subscription memory after_ = plan.subscriptionOf(who);
                if (
                    after_.nextChargeAt != next || after_.periodsPaid != before.periodsPaid + 1
                        || after_.maxAmount != before.maxAmount || after_.startedAt != before.startedAt
                        || after_.pausedAt != before.pausedAt || after_.flags != (before.flags | BillingMath.FLAG_PAID)
                ) ++cycleViolations;
                if (fromCredits > creditsBefore || plan.creditsOf(who) != creditsBefore - fromCredits) {
                    ++splitViolations;
                }
            }
        }

        // (b) Within the cap and the subscriber's max amount at that time (no call changes it while billing), and
        // the split adds up.
        if (usage > cap) ++overCapBills;
        if (pulled > before.maxAmount) ++overMaxBills;
        if (fromCredits + pulled != usage) ++splitViolations;

        // (e) and rules 7, 8: never a cancelled or paused subscription, never on a retired plan.
        if (g.cancelled) ++g.billsWhileCancelled;
        if (before.flags & BillingMath.FLAG_CANCELLED != 0) ++cancelledFlagBills;
        if (g.paused || before.pausedAt != 0) ++g.billsWhilePaused;
        if (retired) ++retiredBills;

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

/// @notice Money invariants of a metered plan (IMeteredPlan M1–M5; IPlanCore rules 1–5, 7, 8, 11, 12), checked
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

    /// (b) Every successful bill's usage is at most perCycleCap (M3) and its pulled part at most the subscriber's
    /// maxAmount at that time (rule 3, M4); credits pay first, fromCredits + pulled == usage, and the credits drop by
    /// exactly fromCredits.
    function invariant_everyBillWithinCapAndMaxAmount() public view {
        for (uint256 h = 0; h < handlers.length; ++h) {
            MeteredHandler handler = handlers[h];
            assertEq(handler.overCapBills(), 0, "usage above perCycleCap billed");
            assertEq(handler.overMaxBills(), 0, "pulled above the subscriber's maxAmount");
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
    /// paused one (rule 8), nor on a retired plan (rule 7).
    function invariant_nothingBilledWhenCancelledPausedOrRetired() public view {
        for (uint256 h = 0; h < handlers.length; ++h) {
            MeteredHandler handler = handlers[h];
            assertEq(handler.cancelledFlagBills(), 0, "billed a subscription stored as cancelled");
            assertEq(handler.retiredBills(), 0, "billed after the plan was retired");
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
