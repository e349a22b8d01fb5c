// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {FixedPricePlan} from "../../contracts/FixedPricePlan.sol";
import {IPlan} from "../../contracts/interfaces/IPlan.sol";
import {IPlanCore} from "../../contracts/interfaces/IPlanCore.sol";
import {ChargeReason, PlanStatus, Subscription} from "../../contracts/interfaces/PlanTypes.sol";
import {BillingMath} from "../../contracts/libraries/BillingMath.sol";
import {PlanFactory} from "../../contracts/PlanFactory.sol";
import {TestUSDC} from "../mocks/TestUSDC.sol";

import {PlanFixture} from "./utils/PlanFixture.sol";
import {CheatCodes, InvariantTest} from "./utils/Test.sol";
import {Vm} from "./utils/Vm.sol";

/// @notice Drives one plan through random sequences of everything its users can do, and keeps ghost totals of
/// what every call actually moved (token balance deltas) and announced (`Charged` events).
///
/// Every action is wrapped in `try`/`catch`: actions the rules refuse are expected and are swallowed, so a run goes
/// deep instead of stopping at the first refusal (the runner's `failOnRevert` is off). Rule breaks are not asserted
/// here (a revert in a handler is discarded) but counted in ghost variables that the invariants require to be 0.
///
/// Time: most actions first move the clock by 0 or up to half a grace period; `warp` jumps up to three periods
/// (lapsing subscriptions); `warpToNextDue` and `keeperRound` land around the earliest upcoming due time, so that
/// grace windows are hit, not just crossed.
///
/// Time is read once per call, before any `vm.warp`, and kept in `currentTime`: with `viaIR` the optimizer may
/// reuse an earlier `block.timestamp` after a warp in the same function.
contract PlanHandler is CheatCodes {
    uint256 internal constant ACTORS = 3;

    /// @notice Per-subscriber ghost state, all of it measured by the handler, none of it read from the plan.
    struct Ghost {
        uint256 pulled; // tokens that left the subscriber's wallet during plan calls (balance deltas)
        uint256 charged; // sum of the amounts of the subscriber's `Charged` events
        uint256 charges; // number of the subscriber's `Charged` events
        uint256 firstChargeAt; // time of the subscriber's first charge on this plan, 0 if none
        uint256 lastChargeAt; // time of the latest charge
        bool cancelled; // cancelled (by themself or the merchant) and not subscribed again since
        uint256 cancelledAt;
        uint256 pulledAfterCancel; // pulled while `cancelled`
        bool paused;
        uint256 pulledWhilePaused;
        uint256 maxAmount; // the max amount the subscriber last set, as the plan stores it
        uint256 pulledAboveMax; // pulled by a charge of more than `maxAmount`
    }

    /// @dev What the plan looked like before a call.
    struct Snapshot {
        uint256[] balances;
        Subscription[] subs;
        uint256 payees;
        uint256 keeper;
    }

    FixedPricePlan public plan;
    TestUSDC public usdc;
    address public merchant;
    address public keeper; // the caller of every charge (and the receiver of keeper fees)
    uint256 public price;
    uint256 public period;
    uint256 public grace;
    uint256 public payeeShare; // price - keeper fee

    address[] public actors;
    address[2] public payees;
    mapping(address actor => uint256 indexPlusOne) internal _actorIndex;
    mapping(address actor => Ghost) internal _ghosts;

    /// @notice The time every action of the current call uses (see the contract notice).
    uint256 public currentTime;
    bool public retired;

    // Plan-wide ghost totals.
    uint256 public chargedTotal; // sum of all `Charged` amounts
    uint256 public pulledTotal; // sum of all subscriber balance decreases
    uint256 public payeesReceived; // increase of the payees' balances
    uint256 public keeperReceived; // increase of the keeper's balance
    uint256 public expectedPayees; // price per subscribe charge + payee share per keeper charge
    uint256 public expectedKeeper; // fee per `KeeperFeePaid`
    uint256 public wrongAmounts; // charges of other than the price (or the payee share when the fee was refused)
    uint256 public feeRefused; // keeper charges whose fee transfer the token refused
    uint256 public scheduleViolations; // charges outside the window, not moving by one period, or wrongly indexed
    uint256 public tooSoon; // charges of one subscriber less than period - grace apart
    uint256 public pulledAfterRetire;
    uint256 public pulledTooMuch; // a subscriber whose balance went up, or a pull without a `Charged` event
    uint256 public viewSaidOkButFailed; // `chargeability` said ok, the charge reverted
    uint256 public viewSaidNoButCharged; // `chargeability` said no, the charge went through (not the fee case)

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
        _;
    }

    constructor(
        FixedPricePlan plan_,
        TestUSDC usdc_,
        address merchant_,
        address keeper_,
        address[2] memory payees_,
        uint256 actorSeed
    ) {
        plan = plan_;
        usdc = usdc_;
        merchant = merchant_;
        keeper = keeper_;
        payees = payees_;
        price = plan_.price();
        period = plan_.period();
        grace = plan_.gracePeriod();
        payeeShare = price - BillingMath.keeperFee(price, plan_.keeperFeeBps());
        for (uint256 i = 0; i < ACTORS; ++i) {
            address actor = address(uint160(uint256(keccak256(abi.encode("actor", actorSeed, i)))));
            actors.push(actor);
            _actorIndex[actor] = i + 1;
            usdc_.mint(actor, 1000 * price);
            vm.prank(actor);
            usdc_.approve(address(plan_), type(uint256).max);
        }
        currentTime = block.timestamp;
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
    }

    /// @notice Jumps to around the earliest upcoming due time among the subscribers: into its grace window (most
    /// often), exactly to its edges, or just past it (that subscription lapses).
    function warpToNextDue(uint256 offsetSeed) external {
        ++calls["warpToNextDue"];
        _warpToNextDue(offsetSeed);
    }

    /// @notice What a keeper does: wakes up around the next due time and charges every subscriber, in one
    /// `chargeMany` batch or (one time in two) with one `charge` each.
    function keeperRound(uint256 offsetSeed, uint256 batchSeed) external {
        ++calls["keeperRound"];
        _warpToNextDue(offsetSeed);
        if (batchSeed % 2 == 0) {
            _chargeMany(batchSeed >> 1);
        } else {
            for (uint256 i = 0; i < ACTORS; ++i) _chargeOne(actors[i]);
        }
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
            g.maxAmount = _stored(maxAmount);
        } catch {}
        _settle(snap, actor);
    }

    function charge(uint256 actorSeed, uint256 jumpSeed) external step("charge", jumpSeed) {
        _chargeOne(_actor(actorSeed));
    }

    function chargeMany(uint256 seed, uint256 jumpSeed) external step("chargeMany", jumpSeed) {
        _chargeMany(seed);
    }

    function cancel(uint256 actorSeed, uint256 jumpSeed) external step("cancel", jumpSeed) {
        address actor = _actor(actorSeed);
        Snapshot memory snap = _snapshot();
        vm.prank(actor);
        bool ok;
        try plan.cancel() {
            ok = true;
        } catch {}
        _settle(snap, address(0));
        if (ok) _markCancelled(actor);
    }

    function cancelFor(uint256 actorSeed, uint256 jumpSeed) external step("cancelFor", jumpSeed) {
        address actor = _actor(actorSeed);
        Snapshot memory snap = _snapshot();
        vm.prank(merchant);
        bool ok;
        try plan.cancelFor(actor) {
            ok = true;
        } catch {}
        _settle(snap, address(0));
        if (ok) _markCancelled(actor);
    }

    function pause(uint256 actorSeed, uint256 jumpSeed) external step("pause", jumpSeed) {
        address actor = _actor(actorSeed);
        Snapshot memory snap = _snapshot();
        vm.prank(actor);
        bool ok;
        try plan.pause() {
            ok = true;
        } catch {}
        _settle(snap, address(0));
        if (ok) _ghosts[actor].paused = true;
    }

    function resume(uint256 actorSeed, uint256 jumpSeed) external step("resume", jumpSeed) {
        address actor = _actor(actorSeed);
        Snapshot memory snap = _snapshot();
        vm.prank(actor);
        try plan.resume() {
            _ghosts[actor].paused = false;
        } catch {}
        _settle(snap, address(0));
    }

    function setMaxAmount(uint256 actorSeed, uint256 maxSeed, uint256 jumpSeed)
        external
        step("setMaxAmount", jumpSeed)
    {
        address actor = _actor(actorSeed);
        uint256 maxAmount = _maxAmount(maxSeed);
        Snapshot memory snap = _snapshot();
        vm.prank(actor);
        try plan.setMaxAmount(maxAmount) {
            _ghosts[actor].maxAmount = _stored(maxAmount);
        } catch {}
        _settle(snap, address(0));
    }

    /// @notice The subscriber changes their allowance to the plan: none, just under the payee share, the payee
    /// share, just under the price, a few prices, or (two times in seven) unlimited.
    function approve(uint256 actorSeed, uint256 amountSeed, uint256 jumpSeed) external step("approve", jumpSeed) {
        address actor = _actor(actorSeed);
        uint256 r = amountSeed % 7;
        uint256 amount = r == 0
            ? 0
            : r == 1 ? payeeShare - 1 : r == 2 ? payeeShare : r == 3 ? price - 1 : r == 4
                ? price * (1 + (amountSeed >> 8) % 5)
                : type(uint256).max;
        vm.prank(actor);
        usdc.approve(address(plan), amount);
    }

    /// @notice The subscriber empties their wallet, leaves just under one price, or (one time in two) tops up ten
    /// prices.
    function fund(uint256 actorSeed, uint256 amountSeed, uint256 jumpSeed) external step("fund", jumpSeed) {
        address actor = _actor(actorSeed);
        uint256 balance = usdc.balanceOf(actor);
        uint256 r = amountSeed % 4;
        if (r >= 2) {
            usdc.mint(actor, 10 * price);
            return;
        }
        uint256 keep = r == 0 ? 0 : price - 1;
        if (balance > keep) {
            vm.prank(actor);
            usdc.transfer(address(0xB1AC4401E), balance - keep);
        }
    }

    /// @notice The merchant toggles Active / OnHold, and one time in eight retires the plan (terminal).
    function setStatus(uint256 seed, uint256 jumpSeed) external step("setStatus", jumpSeed) {
        uint8 to = seed % 8 == 0 ? uint8(PlanStatus.Retired) : uint8(seed % 2);
        vm.prank(merchant);
        try plan.setStatus(to) {
            if (to == uint8(PlanStatus.Retired)) retired = true;
        } catch {}
    }

    /// @notice The merchant moves the payee between its two addresses.
    function setPayee(uint256 seed, uint256 jumpSeed) external step("setPayee", jumpSeed) {
        vm.prank(merchant);
        plan.setPayee(payees[seed % 2]);
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
    /// listing an action several times weights it: subscribing and keeper rounds come up more often than actions
    /// that only disturb (cancel, pause, allowance and balance changes, plan status), or a run of 40 calls would
    /// see few charges.
    function selectors() external pure returns (bytes4[] memory s) {
        s = new bytes4[](23);
        uint256 k;
        k = _push(s, k, this.subscribe.selector, 4);
        k = _push(s, k, this.keeperRound.selector, 4);
        k = _push(s, k, this.charge.selector, 2);
        k = _push(s, k, this.chargeMany.selector, 1);
        k = _push(s, k, this.warpToNextDue.selector, 2);
        k = _push(s, k, this.warp.selector, 1);
        k = _push(s, k, this.cancel.selector, 1);
        k = _push(s, k, this.cancelFor.selector, 1);
        k = _push(s, k, this.pause.selector, 1);
        k = _push(s, k, this.resume.selector, 1);
        k = _push(s, k, this.setMaxAmount.selector, 1);
        k = _push(s, k, this.approve.selector, 1);
        k = _push(s, k, this.fund.selector, 1);
        k = _push(s, k, this.setStatus.selector, 1);
        k = _push(s, k, this.setPayee.selector, 1);
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

    /// @dev Max amounts around the price: just under it (refused by subscribe, stops charges), the price,
    /// twice it, "no limit", or anything up to three prices.
    function _maxAmount(uint256 seed) internal view returns (uint256) {
        uint256 r = seed % 5;
        if (r == 0) return price - 1;
        if (r == 1) return price;
        if (r == 2) return 2 * price;
        if (r == 3) return type(uint256).max;
        return bound(seed >> 8, 0, 3 * price);
    }

    /// @dev One `charge` by the keeper, after asking `chargeability` whether it would succeed.
    function _chargeOne(address actor) internal {
        (bool predicted, ChargeReason why,) = plan.chargeability(actor);
        Snapshot memory snap = _snapshot();
        vm.prank(keeper);
        bool charged;
        try plan.charge(actor) {
            charged = true;
        } catch {}
        _settle(snap, address(0));

        if (predicted && !charged) ++viewSaidOkButFailed;
        if (!predicted && charged) ++viewSaidNoButCharged;
        why; // the reason itself is checked by the mocha and fuzz tests
    }

    /// @dev One `chargeMany` by the keeper: every actor once, in a rotated order, then up to four more picks
    /// (duplicates) from the actors and a stranger who never subscribed.
    function _chargeMany(uint256 seed) internal {
        uint256 extra = seed % 5;
        address[] memory list = new address[](ACTORS + extra);
        for (uint256 i = 0; i < ACTORS; ++i) {
            list[i] = actors[(i + (seed >> 4)) % ACTORS];
        }
        for (uint256 i = 0; i < extra; ++i) {
            uint256 pick = (seed >> (8 + 3 * i)) % (ACTORS + 1);
            list[ACTORS + i] = pick == ACTORS ? address(0xDEAD) : actors[pick];
        }
        Snapshot memory snap = _snapshot();
        vm.prank(keeper);
        try plan.chargeMany(list) {} catch {}
        _settle(snap, address(0));
    }

    function _warpToNextDue(uint256 offsetSeed) internal {
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
    }

    function _stored(uint256 maxAmount) internal pure returns (uint256) {
        return maxAmount > type(uint96).max ? type(uint96).max : maxAmount;
    }

    function _markCancelled(address actor) internal {
        Ghost storage g = _ghosts[actor];
        g.cancelled = true;
        g.cancelledAt = currentTime;
        g.paused = false;
    }

    function _payeeBalances() internal view returns (uint256) {
        return usdc.balanceOf(payees[0]) + usdc.balanceOf(payees[1]);
    }

    function _snapshot() internal returns (Snapshot memory snap) {
        vm.recordLogs();
        snap.balances = new uint256[](ACTORS);
        snap.subs = new Subscription[](ACTORS);
        for (uint256 i = 0; i < ACTORS; ++i) {
            snap.balances[i] = usdc.balanceOf(actors[i]);
            snap.subs[i] = plan.subscriptionOf(actors[i]);
        }
        snap.payees = _payeeBalances();
        snap.keeper = usdc.balanceOf(keeper);
    }

    /// @dev Books what the call did: `Charged` events (checked against the rules and the snapshot) and balance
    /// deltas (checked against the ghost state). `subscriber` is the actor whose `subscribe` this was, if any.
    function _settle(Snapshot memory snap, address subscriber) internal {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        uint256[] memory chargedNow = new uint256[](ACTORS);
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].emitter != address(plan)) continue;
            bytes32 topic0 = logs[i].topics[0];
            if (topic0 == IPlanCore.Charged.selector) {
                address who = address(uint160(uint256(logs[i].topics[1])));
                uint256 amount = _bookCharge(snap, who, logs[i].data, subscriber);
                if (_actorIndex[who] != 0) chargedNow[_actorIndex[who] - 1] += amount;
            } else if (topic0 == IPlan.KeeperFeePaid.selector) {
                expectedKeeper += abi.decode(logs[i].data, (uint256));
            }
        }

        for (uint256 i = 0; i < ACTORS; ++i) {
            uint256 balance = usdc.balanceOf(actors[i]);
            if (balance > snap.balances[i]) {
                ++pulledTooMuch; // a plan call never pays a subscriber
                continue;
            }
            uint256 delta = snap.balances[i] - balance;
            if (delta != chargedNow[i]) ++pulledTooMuch; // what left the wallet is not what Charged announced
            if (delta == 0) continue;
            Ghost storage g = _ghosts[actors[i]];
            g.pulled += delta;
            pulledTotal += delta;
            if (g.cancelled) g.pulledAfterCancel += delta;
            if (g.paused) g.pulledWhilePaused += delta;
            if (retired) pulledAfterRetire += delta;
            if (g.maxAmount < price) g.pulledAboveMax += delta;
        }
        payeesReceived += _payeeBalances() - snap.payees;
        keeperReceived += usdc.balanceOf(keeper) - snap.keeper;
    }

    function _bookCharge(Snapshot memory snap, address who, bytes memory data, address subscriber)
        internal
        returns (uint256 amount)
    {
        uint256 periodIndex;
        uint256 next;
        (periodIndex, amount, next) = abi.decode(data, (uint256, uint256, uint256));
        uint256 now_ = currentTime;
        uint256 index = _actorIndex[who];
        if (index == 0) {
            ++scheduleViolations; // a charge of someone who never subscribed
            return amount;
        }
        Subscription memory before = snap.subs[index - 1];
        Ghost storage g = _ghosts[who];

        chargedTotal += amount;
        g.charged += amount;
        g.charges += 1;
        if (g.firstChargeAt == 0) g.firstChargeAt = now_;
        else if (now_ - g.lastChargeAt < period - grace) ++tooSoon;
        g.lastChargeAt = now_;
        if (periodIndex != before.periodsPaid) ++scheduleViolations;

        if (who == subscriber) {
            // The first period of a (new) subscription, paid by the subscriber's own transaction: the whole
            // price to the payee, and the schedule starts now.
            if (amount != price) ++wrongAmounts;
            if (next != now_ + period) ++scheduleViolations;
            expectedPayees += price;
            return amount;
        }

        // A keeper charge: only a live, due subscription inside its window, on a plan that is not retired; it
        // moves the schedule by exactly one period from the due time.
        bool live = before.startedAt != 0 && before.flags & BillingMath.FLAG_CANCELLED == 0 && before.pausedAt == 0;
        if (!live || retired) ++scheduleViolations;
        if (now_ < before.nextChargeAt || now_ > before.nextChargeAt + grace) ++scheduleViolations;
        if (next != before.nextChargeAt + period) ++scheduleViolations;
        // Nothing else in the packed word moves: same max, start, pause; one more period paid; the paid flag set.
        Subscription memory after_ = plan.subscriptionOf(who);
        if (
            after_.nextChargeAt != next || after_.periodsPaid != before.periodsPaid + 1
                || after_.maxAmount != before.maxAmount || after_.startedAt != before.startedAt
                || after_.pausedAt != before.pausedAt || after_.flags != (before.flags | BillingMath.FLAG_PAID)
        ) ++scheduleViolations;
        if (amount == price) {
            // payee share + fee
        } else if (amount == payeeShare) {
            ++feeRefused; // the token refused the keeper's fee although the wallet covered the whole price
        } else {
            ++wrongAmounts;
        }
        expectedPayees += payeeShare;
    }
}

/// @notice Money invariants of a plan (SPEC §1 rules 1, 2, 3, 4, 5, 7, 8, 11), checked after every call of
/// random action sequences on two plans made by PlanFactory:
///  - plan A: no trial, no keeper fee, 7-day period, 2-day grace;
///  - plan B: 3-day trial, 2.5% keeper fee, 10-day period, 1-day grace.
contract PlanInvariantsTest is InvariantTest {
    uint256 internal constant T0 = 1_700_000_000;

    PlanFactory internal factory;
    TestUSDC internal usdc;
    PlanHandler[] internal handlers;

    function setUp() public {
        vm.warp(T0);
        usdc = new TestUSDC();
        factory = new PlanFactory();
        address merchant = address(0xA11CE);

        handlers.push(_deploy(merchant, 25e6, 7 days, 0, 2 days, 0, 1));
        handlers.push(_deploy(merchant, 9_990_001, 10 days, 3 days, 1 days, 250, 2));

        for (uint256 i = 0; i < handlers.length; ++i) {
            targetContract(address(handlers[i]));
            targetSelector(FuzzSelector({addr: address(handlers[i]), selectors: handlers[i].selectors()}));
        }
    }

    function _deploy(
        address merchant,
        uint256 price,
        uint256 period,
        uint256 trial,
        uint256 grace,
        uint256 feeBps,
        uint256 n
    ) internal returns (PlanHandler handler) {
        address[2] memory payees = [address(uint160(0xBEEF00 + 2 * n)), address(uint160(0xBEEF01 + 2 * n))];
        vm.prank(merchant);
        FixedPricePlan plan = FixedPricePlan(
            factory.createPlan(PlanFixture.fixedTerms(address(usdc), payees[0], price, period, trial, grace, feeBps))
        );
        handler = new PlanHandler(plan, usdc, merchant, address(uint160(0x4EE9E200 + n)), payees, n);
        vm.label(address(plan), n == 1 ? "planA" : "planB");
        vm.label(address(handler), n == 1 ? "handlerA" : "handlerB");
    }

    // ------------------------------------------------------------------------------------------------
    // Invariants
    // ------------------------------------------------------------------------------------------------

    /// (a) Never more than one charge per period. Let a subscriber's charges (over all their subscriptions on the
    /// plan) happen at t_0 < t_1 < ... < t_{n-1}, paying periods due at d_0 < ... < d_{n-1}. A charge happens only
    /// inside its window, d_k <= t_k <= d_k + grace; the schedule is anchored, pauses only push it later, and a new
    /// subscription charges only at or after the old due time, so d_{k+1} >= d_k + period. Hence
    /// t_{n-1} >= d_{n-1} >= d_0 + (n-1) * period >= t_0 - grace + (n-1) * period, i.e.
    ///     n <= floor((t_{n-1} - t_0 + grace) / period) + 1,
    /// and since grace <= period - 1 and t_{n-1} <= now,
    ///     total pulled <= n * price <= (ceil((now - firstChargeAt) / period) + 1) * price.
    /// Both bounds are checked, and so is the gap they rest on: t_{k+1} - t_k >= period - grace.
    function invariant_totalPulledWithinSchedule() public view {
        uint256 now_ = vm.getBlockTimestamp();
        for (uint256 h = 0; h < handlers.length; ++h) {
            PlanHandler handler = handlers[h];
            uint256 price = handler.price();
            uint256 period = handler.period();
            uint256 grace = handler.grace();
            for (uint256 i = 0; i < handler.actorCount(); ++i) {
                PlanHandler.Ghost memory g = handler.ghostOf(handler.actors(i));
                if (g.firstChargeAt == 0) {
                    assertEq(g.pulled, 0, "nothing pulled before the first charge");
                    continue;
                }
                uint256 elapsed = now_ - g.firstChargeAt;
                uint256 bound_ = ((elapsed + period - 1) / period + 1) * price;
                assertLe(g.pulled, bound_, "total pulled <= (ceil((now - first) / period) + 1) * price");
                assertLe(
                    g.charges,
                    (g.lastChargeAt - g.firstChargeAt + grace) / period + 1,
                    "charges <= floor((last - first + grace) / period) + 1"
                );
            }
            assertEq(handler.tooSoon(), 0, "two charges of one subscriber less than period - grace apart");
        }
    }

    /// (b) Nothing is pulled from a subscriber after they (or the merchant) cancelled, until they subscribe again.
    function invariant_nothingPulledAfterCancel() public view {
        for (uint256 h = 0; h < handlers.length; ++h) {
            PlanHandler handler = handlers[h];
            for (uint256 i = 0; i < handler.actorCount(); ++i) {
                assertEq(handler.ghostOf(handler.actors(i)).pulledAfterCancel, 0, "pulled after cancel");
            }
        }
    }

    /// (c) Money goes only to the payee (and the keeper's fee to the caller): the payees' balance increase equals
    /// the sum of all recorded charges minus the keeper fees, every fee paid is announced by KeeperFeePaid, and
    /// the Charged events add up to exactly what left the subscribers' wallets.
    function invariant_payeeReceivesEveryCharge() public view {
        for (uint256 h = 0; h < handlers.length; ++h) {
            PlanHandler handler = handlers[h];
            assertEq(
                handler.payeesReceived() + handler.keeperReceived(),
                handler.chargedTotal(),
                "payees + keeper received == sum of Charged amounts"
            );
            assertEq(
                handler.payeesReceived(),
                handler.expectedPayees(),
                "payees received price per subscribe charge + payee share per keeper charge"
            );
            assertEq(handler.keeperReceived(), handler.expectedKeeper(), "keeper received the announced fees");
            assertEq(handler.pulledTotal(), handler.chargedTotal(), "pulled from subscribers == sum of Charged");
            assertEq(handler.pulledTooMuch(), 0, "a pull without a Charged event, or a subscriber paid");
            for (uint256 i = 0; i < handler.actorCount(); ++i) {
                PlanHandler.Ghost memory g = handler.ghostOf(handler.actors(i));
                assertEq(g.pulled, g.charged, "per subscriber: pulled == sum of their Charged amounts");
            }
        }
    }

    /// (d) Allowance, not escrow: the plan contract never holds tokens.
    function invariant_planNeverHoldsTokens() public view {
        for (uint256 h = 0; h < handlers.length; ++h) {
            assertEq(usdc.balanceOf(address(handlers[h].plan())), 0, "plan balance");
        }
    }

    /// (e) Every charge pulls exactly the price: never more (rule 2), never a different amount. The keeper's fee is
    /// part of the price, so a wallet that covers only the payee share is refused; the only way to pull the payee
    /// share alone is a token that refuses the fee transfer itself (a blocklisted keeper), which this handler never
    /// sets up: `feeRefused` stays 0.
    function invariant_everyChargePullsExactlyPrice() public view {
        for (uint256 h = 0; h < handlers.length; ++h) {
            PlanHandler handler = handlers[h];
            assertEq(handler.wrongAmounts(), 0, "a charge pulled an amount other than the price");
            for (uint256 i = 0; i < handler.actorCount(); ++i) {
                PlanHandler.Ghost memory g = handler.ghostOf(handler.actors(i));
                assertLe(g.pulled, g.charges * handler.price(), "pulled <= charges * price");
            }
            assertEq(handler.feeRefused(), 0, "a charge pulled the payee share without the keeper's fee");
        }
    }

    /// Rules 1 and 5: every keeper charge happens inside [nextChargeAt, nextChargeAt + grace] of a live (not
    /// cancelled, not paused) subscription on a plan that is not retired, moves nextChargeAt by exactly one period
    /// and carries the next periodIndex; a subscribe charge starts the schedule at now + period.
    function invariant_chargesFollowTheAnchoredSchedule() public view {
        for (uint256 h = 0; h < handlers.length; ++h) {
            assertEq(handlers[h].scheduleViolations(), 0, "charge outside the rules of the schedule");
        }
    }

    /// `chargeability` is sound and complete: whenever it says a charge would succeed the keeper's charge succeeds,
    /// and whenever it says no, the charge fails (on keeper-fee plans too: the fee is part of the price).
    function invariant_chargeabilityPredictsTheCharge() public view {
        for (uint256 h = 0; h < handlers.length; ++h) {
            assertEq(handlers[h].viewSaidOkButFailed(), 0, "chargeability said ok, the charge failed");
            assertEq(handlers[h].viewSaidNoButCharged(), 0, "chargeability said no, the charge succeeded");
        }
    }

    /// Rules 3, 7 and 8: nothing is pulled while a subscription is paused, after the plan is retired, or above the
    /// subscriber's max amount.
    function invariant_nothingPulledWhilePausedRetiredOrAboveMax() public view {
        for (uint256 h = 0; h < handlers.length; ++h) {
            PlanHandler handler = handlers[h];
            assertEq(handler.pulledAfterRetire(), 0, "pulled after the plan was retired");
            for (uint256 i = 0; i < handler.actorCount(); ++i) {
                PlanHandler.Ghost memory g = handler.ghostOf(handler.actors(i));
                assertEq(g.pulledWhilePaused, 0, "pulled while paused");
                assertEq(g.pulledAboveMax, 0, "pulled above the subscriber's max amount");
            }
        }
    }
}
