// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {FixedPricePlan} from "../../contracts/FixedPricePlan.sol";
import {IPlan} from "../../contracts/interfaces/IPlan.sol";
import {IPlanCore} from "../../contracts/interfaces/IPlanCore.sol";
import {ChargeReason, PlanStatus, Subscription, SubscriptionStatus} from "../../contracts/interfaces/PlanTypes.sol";
import {BillingMath} from "../../contracts/libraries/BillingMath.sol";
import {PriceMath} from "../../contracts/libraries/PriceMath.sol";
import {PlanFactory} from "../../contracts/PlanFactory.sol";
import {MockAggregator} from "../mocks/MockAggregator.sol";
import {TestUSDC} from "../mocks/TestUSDC.sol";

import {PlanFixture} from "./utils/PlanFixture.sol";
import {StatusTracker, StatusTransitions} from "./utils/StatusTransitions.sol";
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
///
/// USD-priced plans: the handler also moves the plan's `MockAggregator` (`moveFeed`: fresh answers inside a band,
/// answers exactly `maxPriceAge` old, stale or future rounds, a broken feed), and works out before every call the
/// amount in force (`PriceMath.usdToToken` at a usable answer, rounded up) that every charge of the call must pull.
/// `price` is then the largest amount the band allows (at its lowest answer): an upper bound, not the amount.
///
/// Statuses: after every clock move and every action, every subscriber's `statusOf` is read and each change is
/// checked against `StatusTransitions.allowed` for what caused it (see `StatusTracker`).
contract PlanHandler is CheatCodes, StatusTracker {
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
        bool usable; // the price may be used now (always, on a token-priced plan)
        uint256 amount; // what one period costs now, token base units (0 if not usable)
        uint256 share; // amount - keeper fee
    }

    FixedPricePlan public plan;
    TestUSDC public usdc;
    address public merchant;
    address public keeper; // the caller of every charge (and the receiver of keeper fees)
    uint256 public price;
    uint256 public period;
    uint256 public grace;
    uint256 public payeeShare; // price - keeper fee

    // USD pricing (all zero for a token-priced plan).
    MockAggregator public feed;
    uint256 public usdPrice; // the plan's price in USD, 8 decimals
    uint256 public maxPriceAge;
    uint256 public feeBps;
    uint256 internal _feedDecimals;
    uint256 internal _tokenDecimals;
    int256 public minAnswer; // the band the handler's answers stay in
    int256 public maxAnswer;

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
    uint256 public staleCharges; // charges while the feed's answer could not be used (stale, future, broken)
    uint256 public usdCharges; // charges of a USD-priced plan (to see that the suite reaches them)

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
        _observe(StatusTransitions.Cause.Time, actors, address(0), false);
        _;
    }

    constructor(
        FixedPricePlan plan_,
        TestUSDC usdc_,
        address merchant_,
        address keeper_,
        address[2] memory payees_,
        uint256 actorSeed,
        int256 minAnswer_,
        int256 maxAnswer_
    ) {
        plan = plan_;
        usdc = usdc_;
        merchant = merchant_;
        keeper = keeper_;
        payees = payees_;
        period = plan_.period();
        grace = plan_.gracePeriod();
        feeBps = plan_.keeperFeeBps();
        (address feed_, uint256 maxAge,) = plan_.usdPricing();
        if (feed_ == address(0)) {
            price = plan_.price();
        } else {
            feed = MockAggregator(feed_);
            usdPrice = plan_.price();
            maxPriceAge = maxAge;
            _feedDecimals = feed.decimals();
            _tokenDecimals = usdc_.decimals();
            minAnswer = minAnswer_;
            maxAnswer = maxAnswer_;
            price = PriceMath.usdToToken(usdPrice, uint256(minAnswer_), _feedDecimals, _tokenDecimals);
        }
        payeeShare = price - BillingMath.keeperFee(price, feeBps);
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
        _observe(StatusTransitions.Cause.Time, actors, address(0), false);
        // The oracle posts a new round one time in two (otherwise the answer may have gone stale).
        if (address(feed) != address(0) && (seed >> 128) % 2 == 0) _freshRound(seed >> 130);
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
        _observe(StatusTransitions.Cause.Subscribe, actors, actor, false);
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
        _observe(StatusTransitions.Cause.Cancel, actors, actor, false);
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
        _observe(StatusTransitions.Cause.Cancel, actors, actor, false);
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
        _observe(StatusTransitions.Cause.Pause, actors, actor, false);
    }

    function resume(uint256 actorSeed, uint256 jumpSeed) external step("resume", jumpSeed) {
        address actor = _actor(actorSeed);
        Snapshot memory snap = _snapshot();
        vm.prank(actor);
        try plan.resume() {
            _ghosts[actor].paused = false;
        } catch {}
        _settle(snap, address(0));
        _observe(StatusTransitions.Cause.Resume, actors, actor, false);
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
        _observe(StatusTransitions.Cause.Other, actors, address(0), false);
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
        _observe(StatusTransitions.Cause.Other, actors, address(0), false);
    }

    /// @notice The subscriber empties their wallet, leaves just under one price, or (one time in two) tops up ten
    /// prices.
    function fund(uint256 actorSeed, uint256 amountSeed, uint256 jumpSeed) external step("fund", jumpSeed) {
        address actor = _actor(actorSeed);
        uint256 balance = usdc.balanceOf(actor);
        uint256 r = amountSeed % 4;
        if (r >= 2) {
            usdc.mint(actor, 10 * price);
        } else {
            uint256 keep = r == 0 ? 0 : price - 1;
            if (balance > keep) {
                vm.prank(actor);
                usdc.transfer(address(0xB1AC4401E), balance - keep);
            }
        }
        _observe(StatusTransitions.Cause.Other, actors, address(0), false);
    }

    /// @notice The merchant toggles Active / OnHold, and one time in eight retires the plan (terminal).
    function setStatus(uint256 seed, uint256 jumpSeed) external step("setStatus", jumpSeed) {
        uint8 to = seed % 8 == 0 ? uint8(PlanStatus.Retired) : uint8(seed % 2);
        vm.prank(merchant);
        try plan.setStatus(to) {
            if (to == uint8(PlanStatus.Retired)) retired = true;
        } catch {}
        _observe(
            to == uint8(PlanStatus.Retired) ? StatusTransitions.Cause.Retire : StatusTransitions.Cause.Other,
            actors,
            address(0),
            false
        );
    }

    /// @notice The merchant moves the payee between its two addresses.
    function setPayee(uint256 seed, uint256 jumpSeed) external step("setPayee", jumpSeed) {
        vm.prank(merchant);
        plan.setPayee(payees[seed % 2]);
        _observe(StatusTransitions.Cause.Other, actors, address(0), false);
    }

    /// @notice USD-priced plans: the oracle moves. Half the time a fresh answer anywhere in the band; otherwise an
    /// answer exactly `maxPriceAge` old (the oldest usable), a stale round (older than that), a round from the
    /// future, or a broken feed (`latestRoundData` reverts). Charges must convert at a usable answer, and nothing
    /// may be charged (or subscribed with a first payment) on an unusable one.
    function moveFeed(uint256 seed, uint256 jumpSeed) external step("moveFeed", jumpSeed) {
        if (address(feed) == address(0)) return;
        uint256 r = seed % 8;
        uint256 now_ = currentTime;
        if (r < 4) {
            _freshRound(seed >> 8);
        } else if (r == 4) {
            feed.setRound(_answer(seed >> 8), now_ - maxPriceAge);
        } else if (r == 5) {
            feed.setRound(_answer(seed >> 8), now_ - maxPriceAge - bound(seed >> 128, 1, period));
        } else if (r == 6) {
            feed.setRound(_answer(seed >> 8), now_ + bound(seed >> 128, 1, 1 hours));
        } else {
            feed.setBroken(true);
        }
        _observe(StatusTransitions.Cause.Other, actors, address(0), false);
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
    function selectors() external view returns (bytes4[] memory s) {
        bool usd = address(feed) != address(0);
        s = new bytes4[](usd ? 25 : 23);
        uint256 k;
        if (usd) k = _push(s, k, this.moveFeed.selector, 2);
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
        _observe(StatusTransitions.Cause.Charge, actors, actor, false);

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
        _observe(StatusTransitions.Cause.Charge, actors, address(0), false);
    }

    function _warpToNextDue(uint256 offsetSeed) internal {
        _observe(StatusTransitions.Cause.Time, actors, address(0), false);
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
        _observe(StatusTransitions.Cause.Time, actors, address(0), false);
        // USD plans: the oracle posted a round since, three times in four (else it may be stale by now).
        if (address(feed) != address(0) && (offsetSeed >> 128) % 4 != 0) _freshRound(offsetSeed >> 130);
    }

    /// @dev A working feed with a fresh answer in the band.
    function _freshRound(uint256 seed) internal {
        feed.setBroken(false);
        feed.setRound(_answer(seed), currentTime);
    }

    /// @dev An answer in [minAnswer, maxAnswer].
    function _answer(uint256 seed) internal view returns (int256) {
        return int256(bound(seed, uint256(minAnswer), uint256(maxAnswer)));
    }

    /// @dev What one period costs now, worked out by the handler as the rules say: the price of a token-priced
    /// plan, or the USD price at a usable answer (positive, updated, not from the future, at most `maxPriceAge`
    /// old, from a feed that answers), rounded up by `PriceMath.usdToToken`.
    function _amountNow() internal view returns (bool usable, uint256 amount) {
        if (address(feed) == address(0)) return (true, price);
        try feed.latestRoundData() returns (uint80, int256 answer, uint256, uint256 updatedAt, uint80) {
            if (!PriceMath.isUsable(answer, updatedAt, vm.getBlockTimestamp(), maxPriceAge)) return (false, 0);
            return (true, PriceMath.usdToToken(usdPrice, uint256(answer), _feedDecimals, _tokenDecimals));
        } catch {
            return (false, 0);
        }
    }

    function _statusNow(address subscriber) internal view override returns (SubscriptionStatus) {
        return plan.statusOf(subscriber);
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
        (snap.usable, snap.amount) = _amountNow();
        snap.share = snap.amount - BillingMath.keeperFee(snap.amount, feeBps);
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
            if (g.maxAmount < snap.amount) g.pulledAboveMax += delta;
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

        if (!snap.usable) ++staleCharges; // nothing may be charged at an answer that cannot be used
        if (address(feed) != address(0)) ++usdCharges;
        chargedTotal += amount;
        g.charged += amount;
        g.charges += 1;
        if (g.firstChargeAt == 0) g.firstChargeAt = now_;
        else if (now_ - g.lastChargeAt < period - grace) ++tooSoon;
        g.lastChargeAt = now_;
        if (periodIndex != before.periodsPaid) ++scheduleViolations;

        if (who == subscriber) {
            // The first period of a (new) subscription, paid by the subscriber's own transaction: the whole
            // price (the amount in force) to the payee, and the schedule starts now.
            if (amount != snap.amount) ++wrongAmounts;
            if (next != now_ + period) ++scheduleViolations;
            expectedPayees += snap.amount;
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
        if (amount == snap.amount) {
            // payee share + fee
        } else if (amount == snap.share) {
            ++feeRefused; // the token refused the keeper's fee although the wallet covered the whole price
        } else {
            ++wrongAmounts;
        }
        expectedPayees += snap.share;
    }
}

/// @notice Money invariants of a plan (SPEC §1 rules 1, 2, 3, 4, 5, 7, 8, 11), checked after every call of
/// random action sequences on three plans made by PlanFactory:
///  - plan A: no trial, no keeper fee, 7-day period, 2-day grace;
///  - plan B: 3-day trial, 2.5% keeper fee, 10-day period, 1-day grace;
///  - plan C: USD-priced ($9.99, a MockAggregator with 8 decimals answering $0.90-$1.10 per token, answers at
///    most 1 day old), 2-day trial, 1% keeper fee, 5-day period, 12-hour grace.
/// Also: statuses move only along the allowed transitions (`StatusTransitions`).
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
        handlers.push(_deployUsd(merchant, 999_000_000, 5 days, 2 days, 12 hours, 100, 3));

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
        handler = new PlanHandler(plan, usdc, merchant, address(uint160(0x4EE9E200 + n)), payees, n, 0, 0);
        vm.label(address(plan), n == 1 ? "planA" : "planB");
        vm.label(address(handler), n == 1 ? "handlerA" : "handlerB");
    }

    /// @dev A USD-priced plan whose feed answers in [0.90, 1.10] USD per token (8 decimals, odd bounds so that
    /// conversions round), starting at 1.00 and at most a day old.
    function _deployUsd(
        address merchant,
        uint256 usdPrice,
        uint256 period,
        uint256 trial,
        uint256 grace,
        uint256 feeBps,
        uint256 n
    ) internal returns (PlanHandler handler) {
        address[2] memory payees = [address(uint160(0xBEEF00 + 2 * n)), address(uint160(0xBEEF01 + 2 * n))];
        MockAggregator feed = new MockAggregator(8, 1e8);
        vm.prank(merchant);
        FixedPricePlan plan = FixedPricePlan(
            factory.createPlan(
                PlanFixture.usdFixedTerms(
                    address(usdc), payees[0], usdPrice, period, trial, grace, feeBps, address(feed), 1 days
                )
            )
        );
        handler = new PlanHandler(
            plan, usdc, merchant, address(uint160(0x4EE9E200 + n)), payees, n, 90_000_007, 110_000_000
        );
        vm.label(address(plan), "planC");
        vm.label(address(feed), "feedC");
        vm.label(address(handler), "handlerC");
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
    /// sets up: `feeRefused` stays 0. On the USD-priced plan, "the price" is the amount in force at the call:
    /// `PriceMath.usdToToken(usdPrice, answer)` (rounded up) at the feed's answer, and nothing is charged while the
    /// answer cannot be used (stale, from the future, or the feed reverts); `price()` of the handler is then the
    /// largest amount the answer band allows.
    function invariant_everyChargePullsExactlyPrice() public view {
        for (uint256 h = 0; h < handlers.length; ++h) {
            PlanHandler handler = handlers[h];
            assertEq(handler.wrongAmounts(), 0, "a charge pulled an amount other than the price in force");
            for (uint256 i = 0; i < handler.actorCount(); ++i) {
                PlanHandler.Ghost memory g = handler.ghostOf(handler.actors(i));
                assertLe(g.pulled, g.charges * handler.price(), "pulled <= charges * price");
            }
            assertEq(handler.feeRefused(), 0, "a charge pulled the payee share without the keeper's fee");
            assertEq(handler.staleCharges(), 0, "a charge at a stale, future or broken feed answer");
        }
    }

    /// Statuses move only along the allowed transitions. After every clock move and every action the handler reads
    /// `statusOf` of every subscriber; each change must be one `StatusTransitions.allowed` lists for its cause
    /// (time; the subscriber's subscribe, cancel, pause or resume; a keeper charge; the merchant's cancelFor or
    /// retirement), move only the subscriber acted on (bar batch charges, time and retirement), and never enter
    /// Trialing after the subscriber was Active (one trial per subscriber per plan).
    function invariant_statusesMoveOnlyAlongAllowedTransitions() public view {
        for (uint256 h = 0; h < handlers.length; ++h) {
            assertEq(
                handlers[h].badTransitions(),
                0,
                string.concat("status transition not allowed (cause:from->to) ", handlers[h].firstBadTransition())
            );
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
