// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {IPlan} from "./interfaces/IPlan.sol";
import {
    BillingMode, ChargeReason, PlanStatus, PlanTerms, Subscription, SubscriptionStatus
} from "./interfaces/PlanTypes.sol";
import {AggregatorV3Interface} from "./interfaces/AggregatorV3Interface.sol";
import {BillingMath} from "./libraries/BillingMath.sol";
import {PackedSubscription} from "./libraries/PackedSubscription.sol";
import {PlanTermsLib} from "./libraries/PlanTermsLib.sol";
import {PriceMath} from "./libraries/PriceMath.sol";

/// @title A fixed-price subscription plan, priced in token units
/// @notice One contract per plan, created by `PlanFactory`. Rules: see `IPlan`.
///
/// Trust model
/// - Customer: subscribes only for themself (rule 10), by their own transaction (`subscribe`, or
///   `subscribeWithPermit` to approve through ERC-2612 in the same transaction) or by signing an EIP-712
///   `Subscribe` authorization (`subscribeBySig`); sets their own `maxAmount`, pauses, resumes, cancels at
///   any time. Their tokens stay in their wallet; the plan pulls exactly the price, at most once per
///   period, only inside the grace window, never above their `maxAmount`, never after cancel.
/// - Relayer (caller of `subscribeBySig`): anyone. It can submit a customer's signed authorization once,
///   until its deadline, on the chain and the plan it was signed for (the domain binds both; a
///   per-subscriber nonce makes it single-use, so it cannot revive a cancelled subscription). It cannot
///   change the subscriber or the max amount, pays the gas and is paid nothing; the first period goes
///   from the customer to the payee. Contract wallets sign through ERC-1271, asked at submission time.
/// - Permits: `subscribeWithPermit` ignores a permit that fails (someone front-ran it, or the token has
///   none), so front-running a permit cannot block a subscription; only the allowance in place counts.
/// - Owner (merchant): changes only the payee, the plan status and the authorized keepers, and may
///   cancel a subscription. The owner cannot change a price, period, trial, grace or token, cannot
///   charge anyone early or twice, and cannot move a customer's tokens anywhere but to the payee.
/// - Caller of `charge`/`chargeMany` (a keeper): anyone, unless the plan is keeper-restricted. A keeper
///   decides only *when* inside the allowed window a due charge happens, and earns `keeperFeeBps` of it
///   if the plan pays a fee. It cannot choose the amount or the recipient.
/// - Price feed (USD-priced plans only): chosen at creation, immutable. A charge uses its answer only if
///   it is positive, updated, not from the future and at most `maxPriceAge` old, and is still capped by the
///   subscriber's `maxAmount`; a feed that reverts stops charges, it cannot force one.
/// - Tokens: standard ERC-20s, including ones that return nothing from `transferFrom` (through
///   SafeERC20). Fee-on-transfer and rebasing tokens are NOT supported: the payee would receive less
///   than the price, or balances would move under the plan.
/// - Every path that moves tokens or changes a subscription holds a transient reentrancy guard, and
///   changes state before the token call (check, effect, interaction).
///
/// Design: a full deployment per plan, with every term an immutable, so that the charge path reads the
/// terms from code and touches exactly one storage slot per subscriber plus one for the payee and status
/// (see README, "Gas").
contract FixedPricePlan is IPlan, Ownable2Step, ReentrancyGuardTransient, EIP712, Nonces {
    using SafeERC20 for IERC20;
    using PackedSubscription for uint256;

    // ------------------------------------------------------------------------------------------------
    // Constants
    // ------------------------------------------------------------------------------------------------

    /// @inheritdoc IPlan
    bytes32 public constant SUBSCRIBE_TYPEHASH =
        keccak256("Subscribe(address subscriber,uint256 maxAmount,uint256 nonce,uint256 deadline)");

    // ------------------------------------------------------------------------------------------------
    // Immutables (the terms)
    // ------------------------------------------------------------------------------------------------

    IERC20 private immutable TOKEN;
    uint256 private immutable PRICE;
    uint256 private immutable PERIOD;
    uint256 private immutable TRIAL_PERIOD;
    uint256 private immutable GRACE_PERIOD;
    uint256 private immutable KEEPER_FEE_BPS;
    bool private immutable KEEPER_RESTRICTED;
    /// @dev The caller's reward and the payee's share of one charge, worked out once.
    uint256 private immutable KEEPER_FEE;
    uint256 private immutable PAYEE_SHARE;
    /// @dev USD pricing (all zero for a token-priced plan): the feed, the oldest answer a charge may use
    /// (seconds), the allowance margin (basis points), and the decimals of the token and of the feed.
    AggregatorV3Interface private immutable PRICE_FEED;
    bool private immutable USD_PRICED;
    uint256 private immutable MAX_PRICE_AGE;
    uint256 private immutable ALLOWANCE_BUFFER_BPS;
    uint256 private immutable TOKEN_DECIMALS;
    uint256 private immutable FEED_DECIMALS;
    /// @dev What one paid period adds to a packed subscription: one period to `nextChargeAt` and one to
    /// `periodsPaid`. Neither field can carry into the next: `nextChargeAt` stays below 2^40 (year
    /// 36812) and `periodsPaid` would need 2^32 periods of at least an hour.
    uint256 private immutable CHARGE_INCREMENT;

    // ------------------------------------------------------------------------------------------------
    // Storage
    // ------------------------------------------------------------------------------------------------

    /// @dev `_payee` and `_status` share one slot: the charge path reads both with one cold load.
    address private _payee;
    PlanStatus private _status;
    /// @dev Each subscription packed into one word (see `PackedSubscription`).
    mapping(address subscriber => uint256 packed) private _subscriptions;
    mapping(address keeper => bool authorized) private _keepers;

    // ------------------------------------------------------------------------------------------------
    // Modifiers
    // ------------------------------------------------------------------------------------------------

    modifier onlyKeeper() {
        _checkKeeper();
        _;
    }

    // ------------------------------------------------------------------------------------------------
    // Constructor
    // ------------------------------------------------------------------------------------------------

    /// @param owner_ The merchant: may change the payee, status and keepers, and cancel subscriptions.
    /// @param terms The plan's terms; reverts with an `ITermsErrors` error if one is out of bounds.
    constructor(address owner_, PlanTerms memory terms) Ownable(owner_) EIP712("Recur Plan", "1") {
        (TOKEN_DECIMALS, FEED_DECIMALS) = PlanTermsLib.validate(terms);
        PRICE_FEED = AggregatorV3Interface(terms.priceFeed);
        USD_PRICED = terms.priceFeed != address(0);
        MAX_PRICE_AGE = terms.maxPriceAge;
        ALLOWANCE_BUFFER_BPS = terms.allowanceBufferBps;
        TOKEN = IERC20(terms.token);
        PRICE = terms.price;
        PERIOD = terms.period;
        TRIAL_PERIOD = terms.trialPeriod;
        GRACE_PERIOD = terms.gracePeriod;
        KEEPER_FEE_BPS = terms.keeperFeeBps;
        KEEPER_RESTRICTED = terms.keeperRestricted;
        KEEPER_FEE = BillingMath.keeperFee(terms.price, terms.keeperFeeBps);
        PAYEE_SHARE = terms.price - KEEPER_FEE;
        CHARGE_INCREMENT = (uint256(terms.period) << PackedSubscription.NEXT_CHARGE_AT_SHIFT)
            + (1 << PackedSubscription.PERIODS_PAID_SHIFT);
        _payee = terms.payee;
        // _status starts as PlanStatus.Active (0).
    }

    // ------------------------------------------------------------------------------------------------
    // Subscriber actions
    // ------------------------------------------------------------------------------------------------

    /// @inheritdoc IPlan
    function subscribe(uint256 maxAmount) external nonReentrant returns (uint256) {
        return _subscribe(msg.sender, maxAmount);
    }

    /// @inheritdoc IPlan
    function subscribeWithPermit(
        uint256 maxAmount,
        uint256 allowance,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant returns (uint256) {
        // The permit may already have been submitted by someone else (it is public once signed): its
        // failure is not the subscription's. `_subscribe` pulls the first period with the allowance in
        // place and reverts with the token's error if there is not enough.
        try IERC20Permit(address(TOKEN)).permit(msg.sender, address(this), allowance, deadline, v, r, s) {} catch {}
        return _subscribe(msg.sender, maxAmount);
    }

    /// @inheritdoc IPlan
    function subscribeBySig(address subscriber, uint256 maxAmount, uint256 deadline, bytes calldata signature)
        external
        nonReentrant
        returns (uint256)
    {
        // Checks: the authorization is live, and is the subscriber's for this plan, chain and nonce. The
        // nonce is used up here, so the same signature never works twice (a failed call uses nothing).
        if (block.timestamp > deadline) revert SignatureExpired(deadline, block.timestamp);
        bytes32 digest = _hashTypedDataV4(
            keccak256(abi.encode(SUBSCRIBE_TYPEHASH, subscriber, maxAmount, _useNonce(subscriber), deadline))
        );
        if (!SignatureChecker.isValidSignatureNow(subscriber, digest, signature)) revert InvalidSignature(subscriber);
        return _subscribe(subscriber, maxAmount);
    }

    /// @inheritdoc IPlan
    function cancel() external nonReentrant {
        _cancel(msg.sender);
    }

    /// @inheritdoc IPlan
    function pause() external nonReentrant {
        address subscriber = msg.sender;
        Subscription memory sub = _load(subscriber);
        SubscriptionStatus current = _statusOf(sub);
        if (current != SubscriptionStatus.Active && current != SubscriptionStatus.Trialing) {
            revert InvalidSubscriptionStatus(subscriber, current);
        }
        sub.pausedAt = uint40(block.timestamp);
        _store(subscriber, sub);
        emit Paused(subscriber, block.timestamp);
    }

    /// @inheritdoc IPlan
    function resume() external nonReentrant {
        address subscriber = msg.sender;
        Subscription memory sub = _load(subscriber);
        SubscriptionStatus current = _statusOf(sub);
        if (current != SubscriptionStatus.Paused) revert InvalidSubscriptionStatus(subscriber, current);
        uint256 pausedFor = block.timestamp - sub.pausedAt;
        sub.nextChargeAt = uint40(BillingMath.shiftedForPause(sub.nextChargeAt, sub.pausedAt, block.timestamp));
        sub.pausedAt = 0;
        _store(subscriber, sub);
        emit Resumed(subscriber, sub.nextChargeAt, pausedFor);
    }

    /// @inheritdoc IPlan
    function setMaxAmount(uint256 maxAmount) external nonReentrant {
        address subscriber = msg.sender;
        Subscription memory sub = _load(subscriber);
        if (sub.startedAt == 0) revert NotSubscribed(subscriber);
        uint256 oldMax = sub.maxAmount;
        sub.maxAmount = BillingMath.clampMaxAmount(maxAmount);
        _store(subscriber, sub);
        emit MaxAmountUpdated(subscriber, oldMax, sub.maxAmount);
    }

    // ------------------------------------------------------------------------------------------------
    // Charging
    // ------------------------------------------------------------------------------------------------

    /// @inheritdoc IPlan
    function charge(address subscriber) external nonReentrant onlyKeeper returns (uint256) {
        // Checks
        uint256 word = _subscriptions[subscriber];
        address payee_ = _payee;
        (bool usable, uint256 amount, uint256 share, uint256 fee) = _pricing();
        ChargeReason reason = _reasonAt(word, _status == PlanStatus.Retired, usable, amount);
        if (reason != ChargeReason.Ok) _revertWith(reason, subscriber, word, amount);
        if (fee != 0) {
            // The keeper's fee is part of the price: the subscriber must cover all of it (see _payKeeperFee).
            ChargeReason funds = _fundsReason(subscriber, amount);
            if (funds != ChargeReason.Ok) revert InsufficientFunds(subscriber, funds);
        }

        // Effects
        uint256 charged = _afterCharge(word);
        _subscriptions[subscriber] = charged;

        // Interaction
        TOKEN.safeTransferFrom(subscriber, payee_, share);
        uint256 pulled = _payKeeperFee(subscriber, amount, share, fee);
        emit Charged(subscriber, word.periodsPaid(), pulled, charged.nextChargeAt());
        return pulled;
    }

    /// @inheritdoc IPlan
    function chargeMany(address[] calldata subscribers) external nonReentrant onlyKeeper returns (uint256 charged) {
        address payee_ = _payee;
        bool retired = _status == PlanStatus.Retired;
        // One price for the whole batch: the same block, the same feed answer.
        (bool usable, uint256 amount, uint256 share, uint256 fee) = _pricing();
        uint256 count = subscribers.length;
        for (uint256 i = 0; i < count; ++i) {
            address subscriber = subscribers[i];

            // Checks: items the rules do not allow are skipped; a due one that cannot pay (over its max
            // amount; on fee plans, short of allowance or balance) is recorded as failed.
            uint256 word = _subscriptions[subscriber];
            ChargeReason reason = _reasonAt(word, retired, usable, amount);
            if (reason == ChargeReason.Ok && fee != 0) reason = _fundsReason(subscriber, amount);
            if (reason != ChargeReason.Ok) {
                if (reason >= ChargeReason.MaxAmountExceeded) emit ChargeFailed(subscriber, reason);
                continue;
            }

            // Effects
            uint256 after_ = _afterCharge(word);
            _subscriptions[subscriber] = after_;

            // Interaction: on failure, restore the word (rule 12) and record why, unless the failure may
            // have been caused by the caller's gas limit rather than the subscriber.
            uint256 gasBefore = gasleft();
            if (!TOKEN.trySafeTransferFrom(subscriber, payee_, share)) {
                // The token call got 63/64 of `gasBefore`; if less than 1/63 is left it may have run out.
                if (gasleft() < gasBefore / 63) revert BatchOutOfGas(subscriber);
                _subscriptions[subscriber] = word;
                emit ChargeFailed(subscriber, _transferFailureReason(subscriber, amount));
                continue;
            }
            uint256 pulled = _payKeeperFee(subscriber, amount, share, fee);
            emit Charged(subscriber, word.periodsPaid(), pulled, after_.nextChargeAt());
            // Cannot overflow: at most `count` increments.
            unchecked {
                ++charged;
            }
        }
    }

    // ------------------------------------------------------------------------------------------------
    // Owner actions
    // ------------------------------------------------------------------------------------------------

    /// @inheritdoc IPlan
    function cancelFor(address subscriber) external onlyOwner nonReentrant {
        _cancel(subscriber);
    }

    /// @inheritdoc IPlan
    function setStatus(uint8 newStatus) external onlyOwner {
        if (newStatus > uint8(PlanStatus.Retired)) revert InvalidPlanStatus(newStatus);
        PlanStatus from = _status;
        PlanStatus to = PlanStatus(newStatus);
        if (from == PlanStatus.Retired || from == to) revert InvalidStatusTransition(from, to);
        _status = to;
        emit PlanStatusChanged(from, to);
    }

    /// @inheritdoc IPlan
    function setPayee(address newPayee) external onlyOwner {
        if (newPayee == address(0)) revert InvalidPayee(newPayee);
        address oldPayee = _payee;
        _payee = newPayee;
        emit PayeeChanged(oldPayee, newPayee);
    }

    /// @inheritdoc IPlan
    function setKeeper(address keeper, bool authorized) external onlyOwner {
        _keepers[keeper] = authorized;
        emit KeeperAuthorized(keeper, authorized);
    }

    // ------------------------------------------------------------------------------------------------
    // Views
    // ------------------------------------------------------------------------------------------------

    /// @inheritdoc IPlan
    function statusOf(address subscriber) external view returns (SubscriptionStatus) {
        return _statusOf(_load(subscriber));
    }

    /// @inheritdoc IPlan
    function isDue(address subscriber) external view returns (bool) {
        (bool usable, uint256 amount) = _amountNow();
        return _reasonAt(_subscriptions[subscriber], _status == PlanStatus.Retired, usable, amount) == ChargeReason.Ok;
    }

    /// @inheritdoc IPlan
    function amountDue(address subscriber) external view returns (uint256) {
        SubscriptionStatus current = _statusOf(_load(subscriber));
        bool live = current == SubscriptionStatus.Trialing || current == SubscriptionStatus.Active
            || current == SubscriptionStatus.PastDue || current == SubscriptionStatus.Paused;
        (bool usable, uint256 amount) = _amountNow();
        return live && usable && _status != PlanStatus.Retired ? amount : 0;
    }

    /// @inheritdoc IPlan
    function nextChargeAt(address subscriber) external view returns (uint256) {
        Subscription memory sub = _load(subscriber);
        SubscriptionStatus current = _statusOf(sub);
        bool scheduled = current == SubscriptionStatus.Trialing || current == SubscriptionStatus.Active
            || current == SubscriptionStatus.PastDue;
        return scheduled && _status != PlanStatus.Retired ? sub.nextChargeAt : 0;
    }

    /// @inheritdoc IPlan
    function hasAccess(address subscriber) external view returns (bool) {
        Subscription memory sub = _load(subscriber);
        SubscriptionStatus current = _statusOf(sub);
        if (current == SubscriptionStatus.Trialing || current == SubscriptionStatus.Active) return true;
        return current == SubscriptionStatus.Cancelled && block.timestamp < sub.nextChargeAt;
    }

    /// @inheritdoc IPlan
    function subscriptionOf(address subscriber) external view returns (Subscription memory) {
        return _load(subscriber);
    }

    /// @inheritdoc IPlan
    function chargeability(address subscriber) public view returns (bool, ChargeReason, uint256) {
        uint256 word = _subscriptions[subscriber];
        (bool usable, uint256 amount) = _amountNow();
        ChargeReason reason = _reasonAt(word, _status == PlanStatus.Retired, usable, amount);
        // Before the due time, report what would stop the next charge, so the customer can be warned.
        if (reason == ChargeReason.Ok || reason == ChargeReason.NotDue) {
            ChargeReason funds = !usable
                ? ChargeReason.PriceStale
                : amount > word.maxAmount() ? ChargeReason.MaxAmountExceeded : _fundsReason(subscriber, amount);
            if (funds != ChargeReason.Ok) reason = funds;
        }
        return (reason == ChargeReason.Ok, reason, amount);
    }

    /// @inheritdoc IPlan
    function chargeabilityMany(address[] calldata subscribers) external view returns (ChargeReason[] memory reasons) {
        reasons = new ChargeReason[](subscribers.length);
        for (uint256 i = 0; i < subscribers.length; ++i) {
            (, reasons[i],) = chargeability(subscribers[i]);
        }
    }

    /// @inheritdoc IPlan
    function requiredAllowance(uint256 periods) external view returns (uint256) {
        (bool usable, uint256 amount) = _amountNow();
        if (!usable) _revertPriceUnavailable();
        return BillingMath.requiredAllowance(amount, periods, ALLOWANCE_BUFFER_BPS);
    }

    /// @inheritdoc IPlan
    function isKeeper(address account) external view returns (bool) {
        return account == owner() || _keepers[account];
    }

    /// @inheritdoc IPlan
    function nonces(address subscriber) public view override(IPlan, Nonces) returns (uint256) {
        return super.nonces(subscriber);
    }

    /// @inheritdoc IPlan
    function token() external view returns (address) {
        return address(TOKEN);
    }

    /// @inheritdoc IPlan
    function payee() external view returns (address) {
        return _payee;
    }

    /// @inheritdoc IPlan
    function price() external view returns (uint256) {
        return PRICE;
    }

    /// @inheritdoc IPlan
    function period() external view returns (uint256) {
        return PERIOD;
    }

    /// @inheritdoc IPlan
    function trialPeriod() external view returns (uint256) {
        return TRIAL_PERIOD;
    }

    /// @inheritdoc IPlan
    function gracePeriod() external view returns (uint256) {
        return GRACE_PERIOD;
    }

    /// @inheritdoc IPlan
    function billingMode() external pure returns (BillingMode) {
        return BillingMode.Fixed;
    }

    /// @inheritdoc IPlan
    function perCycleCap() external pure returns (uint256) {
        return 0;
    }

    /// @inheritdoc IPlan
    function status() external view returns (PlanStatus) {
        return _status;
    }

    /// @inheritdoc IPlan
    function usdPricing() external view returns (address, uint256, uint256) {
        return (address(PRICE_FEED), MAX_PRICE_AGE, ALLOWANCE_BUFFER_BPS);
    }

    /// @inheritdoc IPlan
    function keeperRestricted() external view returns (bool) {
        return KEEPER_RESTRICTED;
    }

    /// @inheritdoc IPlan
    function keeperFeeBps() external view returns (uint256) {
        return KEEPER_FEE_BPS;
    }

    // ------------------------------------------------------------------------------------------------
    // Internal
    // ------------------------------------------------------------------------------------------------

    /// @dev Subscribes `subscriber` (the caller, or the signer of a checked authorization): see
    /// `IPlan.subscribe`. Callers hold the reentrancy guard.
    function _subscribe(address subscriber, uint256 maxAmount) internal returns (uint256) {
        // Checks
        PlanStatus planStatus = _status;
        if (planStatus != PlanStatus.Active) revert PlanNotActive(planStatus);
        uint96 storedMax = BillingMath.clampMaxAmount(maxAmount);
        (bool usable, uint256 amount) = _amountNow();
        if (!usable) _revertPriceUnavailable();
        if (storedMax < amount) revert MaxAmountExceeded(amount, maxAmount);

        Subscription memory sub = _load(subscriber);
        SubscriptionStatus current = BillingMath.statusOf(sub, block.timestamp, GRACE_PERIOD, false);
        if (current != SubscriptionStatus.None && current != SubscriptionStatus.Cancelled
            && current != SubscriptionStatus.Expired) {
            revert AlreadySubscribed(subscriber, current);
        }

        // Effects: one store and one `Subscribed` for the three cases (re-activation, trial, paid start).
        // Gas: with one emitting branch per case the contract held 50 copies of the 160-bit address mask,
        // and above 46 the optimiser (runs 10,000) computes the mask instead of pushing it: 56 gas more on
        // every `charge` (bench/gas.ts). Written this way it holds 46 and stays a PUSH20 literal.
        sub.maxAmount = storedMax;
        bool trial = false;
        bool payNow = false;
        if (current == SubscriptionStatus.Cancelled && block.timestamp < sub.nextChargeAt) {
            // Re-subscribing before the paid (or trial) time ran out: keep the old schedule, charge
            // nothing now. The trial, if this is one, is the same trial, not a second.
            sub.flags &= ~BillingMath.FLAG_CANCELLED;
        } else {
            sub.startedAt = uint40(block.timestamp);
            sub.pausedAt = 0;
            trial = TRIAL_PERIOD != 0 && sub.flags & BillingMath.FLAG_TRIAL_USED == 0;
            if (trial) {
                sub.flags = BillingMath.FLAG_TRIAL_USED;
                sub.nextChargeAt = uint40(block.timestamp + TRIAL_PERIOD);
            } else {
                sub.flags = (sub.flags & BillingMath.FLAG_TRIAL_USED) | BillingMath.FLAG_PAID;
                sub.nextChargeAt = uint40(block.timestamp + PERIOD);
                ++sub.periodsPaid;
                payNow = true;
            }
        }
        _store(subscriber, sub);
        emit Subscribed(subscriber, storedMax, sub.startedAt, sub.nextChargeAt, trial);

        if (payNow) {
            // Interaction: the first period, from the subscriber to the payee (no keeper fee, nothing from
            // the caller, who may be a relayer).
            TOKEN.safeTransferFrom(subscriber, _payee, amount);
            emit Charged(subscriber, sub.periodsPaid - 1, amount, sub.nextChargeAt);
        }
        return sub.nextChargeAt;
    }

    /// @dev Cancels `subscriber`: a paused subscription first gets its frozen time back (the schedule is
    /// shifted as on resume), so `nextChargeAt` is the end of the access already paid.
    function _cancel(address subscriber) internal {
        Subscription memory sub = _load(subscriber);
        SubscriptionStatus current = _statusOf(sub);
        if (current == SubscriptionStatus.None || current == SubscriptionStatus.Cancelled
            || current == SubscriptionStatus.Expired) {
            revert InvalidSubscriptionStatus(subscriber, current);
        }
        if (sub.pausedAt != 0) {
            sub.nextChargeAt = uint40(BillingMath.shiftedForPause(sub.nextChargeAt, sub.pausedAt, block.timestamp));
            sub.pausedAt = 0;
        }
        sub.flags |= BillingMath.FLAG_CANCELLED;
        _store(subscriber, sub);
        emit Cancelled(subscriber, msg.sender, sub.nextChargeAt);
    }

    /// @dev The packed subscription after one paid period: `nextChargeAt` one period later (anchored: from
    /// the due time, not from now), `periodsPaid` + 1, and the paid flag set.
    function _afterCharge(uint256 word) internal view returns (uint256) {
        // Cannot overflow or carry between fields: see CHARGE_INCREMENT.
        unchecked {
            return (word + CHARGE_INCREMENT) | (uint256(BillingMath.FLAG_PAID) << PackedSubscription.FLAGS_SHIFT);
        }
    }

    /// @dev The stored subscription of `subscriber`, unpacked.
    function _load(address subscriber) internal view returns (Subscription memory) {
        return PackedSubscription.unpack(_subscriptions[subscriber]);
    }

    /// @dev Stores `sub` as the subscription of `subscriber`.
    function _store(address subscriber, Subscription memory sub) internal {
        _subscriptions[subscriber] = PackedSubscription.pack(sub);
    }

    /// @dev Pays the caller its `fee` out of a charge of `amount` whose payee share was just pulled, and
    /// returns the total pulled from `subscriber`. The subscriber's allowance and balance were checked to
    /// cover the whole amount, so a fee the token still refuses (a blocklisted keeper, say) is the
    /// keeper's problem: it is not paid, the charge stands, and the subscriber is charged less, never more.
    function _payKeeperFee(address subscriber, uint256 amount, uint256 share, uint256 fee)
        internal
        returns (uint256 pulled)
    {
        pulled = share;
        if (fee != 0 && TOKEN.trySafeTransferFrom(subscriber, msg.sender, fee)) {
            pulled = amount;
            emit KeeperFeePaid(msg.sender, subscriber, fee);
        }
    }

    /// @dev What one period costs now, in token base units: the price of a token-priced plan, or the USD
    /// price converted at the feed's answer (rounded up). `usable` is false when the answer may not be
    /// used (not positive, never updated, from the future, older than MAX_PRICE_AGE, or the feed reverts).
    function _amountNow() internal view returns (bool usable, uint256 amount) {
        if (!USD_PRICED) return (true, PRICE);
        (int256 answer, uint256 updatedAt) = _latestAnswer();
        if (!PriceMath.isUsable(answer, updatedAt, block.timestamp, MAX_PRICE_AGE)) return (false, 0);
        return (true, PriceMath.usdToToken(PRICE, uint256(answer), FEED_DECIMALS, TOKEN_DECIMALS));
    }

    /// @dev The feed's latest answer and its time; (0, 0), which is never usable, if the feed reverts.
    function _latestAnswer() internal view returns (int256 answer, uint256 updatedAt) {
        try PRICE_FEED.latestRoundData() returns (uint80, int256 answer_, uint256, uint256 updatedAt_, uint80) {
            return (answer_, updatedAt_);
        } catch {
            return (0, 0);
        }
    }

    /// @dev `_amountNow` split into the payee's share and the caller's fee (worked out once, at creation,
    /// for a token-priced plan).
    function _pricing() internal view returns (bool usable, uint256 amount, uint256 share, uint256 fee) {
        if (!USD_PRICED) return (true, PRICE, PAYEE_SHARE, KEEPER_FEE);
        (usable, amount) = _amountNow();
        fee = BillingMath.keeperFee(amount, KEEPER_FEE_BPS);
        share = amount - fee;
    }

    /// @dev Why the rules refuse charging the packed subscription `word` now at `amount`, or `Ok`; a due
    /// charge of a USD-priced plan whose feed answer may not be used is `PriceStale`.
    function _reasonAt(uint256 word, bool retired, bool usable, uint256 amount) internal view returns (ChargeReason reason) {
        reason = BillingMath.chargeReason(word, block.timestamp, GRACE_PERIOD, retired, amount);
        if (reason == ChargeReason.Ok && !usable) reason = ChargeReason.PriceStale;
    }

    /// @dev Reverts `PriceUnavailable` with what the feed answers now.
    function _revertPriceUnavailable() internal view {
        (int256 answer, uint256 updatedAt) = _latestAnswer();
        revert PriceUnavailable(answer, updatedAt, MAX_PRICE_AGE);
    }

    /// @dev Reverts unless the caller may charge on this plan.
    function _checkKeeper() internal view {
        if (KEEPER_RESTRICTED && msg.sender != owner() && !_keepers[msg.sender]) {
            revert NotAuthorizedKeeper(msg.sender);
        }
    }

    /// @dev The status of `sub` on this plan now.
    function _statusOf(Subscription memory sub) internal view returns (SubscriptionStatus) {
        return BillingMath.statusOf(sub, block.timestamp, GRACE_PERIOD, _status == PlanStatus.Retired);
    }

    /// @dev Whether `subscriber`'s allowance to this plan and balance each cover `amount`: `Ok`,
    /// `AllowanceTooLow`, `BalanceTooLow`, or `TransferFailed` when the token's views revert.
    function _fundsReason(address subscriber, uint256 amount) internal view returns (ChargeReason) {
        try TOKEN.allowance(subscriber, address(this)) returns (uint256 allowance_) {
            if (allowance_ < amount) return ChargeReason.AllowanceTooLow;
        } catch {
            return ChargeReason.TransferFailed;
        }
        try TOKEN.balanceOf(subscriber) returns (uint256 balance) {
            if (balance < amount) return ChargeReason.BalanceTooLow;
        } catch {
            return ChargeReason.TransferFailed;
        }
        return ChargeReason.Ok;
    }

    /// @dev After a failed pull, tells an allowance problem from a balance problem from anything else
    /// (blocklist, paused token).
    function _transferFailureReason(address subscriber, uint256 amount) internal view returns (ChargeReason) {
        ChargeReason funds = _fundsReason(subscriber, amount);
        return funds == ChargeReason.Ok ? ChargeReason.TransferFailed : funds;
    }

    /// @dev Reverts with the custom error for a rule `reason` about the packed subscription `word`, whose
    /// charge would be `amount`.
    function _revertWith(ChargeReason reason, address subscriber, uint256 word, uint256 amount) internal view {
        if (reason == ChargeReason.NotSubscribed) revert NotSubscribed(subscriber);
        if (reason == ChargeReason.Cancelled) revert SubscriptionCancelled(subscriber);
        if (reason == ChargeReason.Paused) revert SubscriptionPaused(subscriber, word.pausedAt());
        if (reason == ChargeReason.PlanRetired) revert PlanRetired();
        if (reason == ChargeReason.NotDue) revert NotDue(subscriber, word.nextChargeAt(), block.timestamp);
        if (reason == ChargeReason.Expired) {
            revert SubscriptionExpired(subscriber, word.nextChargeAt() + GRACE_PERIOD, block.timestamp);
        }
        if (reason == ChargeReason.PriceStale) _revertPriceUnavailable();
        revert MaxAmountExceeded(amount, word.maxAmount());
    }
}
