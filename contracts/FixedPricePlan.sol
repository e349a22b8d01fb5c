// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IPlan} from "./interfaces/IPlan.sol";
import {IPlanCore} from "./interfaces/IPlanCore.sol";
import {BillingMode, ChargeReason, PlanStatus, PlanTerms, Subscription, SubscriptionStatus} from "./interfaces/PlanTypes.sol";
import {AggregatorV3Interface} from "./interfaces/AggregatorV3Interface.sol";
import {BillingMath} from "./libraries/BillingMath.sol";
import {PackedSubscription} from "./libraries/PackedSubscription.sol";
import {PlanTermsLib} from "./libraries/PlanTermsLib.sol";
import {PriceMath} from "./libraries/PriceMath.sol";
import {TokenCalls} from "./libraries/TokenCalls.sol";
import {PlanCore} from "./PlanCore.sol";

/// @title A fixed-price subscription plan, priced in token units or in USD
/// @notice One contract per plan, created by `PlanFactory` for `BillingMode.Fixed`. Rules: see `IPlanCore`
/// and `IPlan`; the lifecycle shared with metered plans is in `PlanCore`.
///
/// Trust model (the lifecycle's, shared with metered plans: `PlanCore`)
/// - Customer: the plan pulls exactly the price, at most once per period, only inside the grace window,
///   never above their `maxAmount`, never after cancel. A relayer's `subscribeBySig` pulls the first
///   period from the customer to the payee.
/// - Owner (merchant): cannot change a price, period, trial, grace or token, and cannot charge anyone
///   early or twice.
/// - Caller of `charge`/`chargeMany` (a keeper): anyone, unless the plan is keeper-restricted. A keeper
///   decides only *when* inside the allowed window a due charge happens, and earns `keeperFeeBps` of it
///   if the plan pays a fee. It cannot choose the amount or the recipient.
/// - Price feed (USD-priced plans only): chosen at creation, immutable. A charge uses its answer only if
///   it is positive, updated, not from the future and at most `maxPriceAge` old, and is still capped by the
///   subscriber's `maxAmount`; a feed that reverts stops charges, it cannot force one.
/// - Tokens: standard ERC-20s, including ones that return nothing from `transferFrom` (checked as
///   SafeERC20 checks it, with a fixed gas budget: `TokenCalls`). Fee-on-transfer and rebasing tokens are NOT supported: the payee would receive less
///   than the price, or balances would move under the plan.
///
/// Design: a full deployment per plan, with every term an immutable, so that the charge path reads the
/// terms from code and touches exactly one storage slot per subscriber plus one for the payee and status
/// (see README, "Gas").
contract FixedPricePlan is IPlan, PlanCore {
    using PackedSubscription for uint256;

    // ------------------------------------------------------------------------------------------------
    // Immutables (the terms)
    // ------------------------------------------------------------------------------------------------

    uint256 private immutable PRICE;
    uint256 private immutable TRIAL_PERIOD;
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
    // ------------------------------------------------------------------------------------------------
    // Storage
    // ------------------------------------------------------------------------------------------------

    /// @dev Authorized keepers per owner epoch (`_roleEpoch`): a new owner starts with none.
    mapping(uint256 epoch => mapping(address keeper => bool authorized)) private _keepers;

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
    constructor(address owner_, PlanTerms memory terms) PlanCore(owner_, terms) {
        (TOKEN_DECIMALS, FEED_DECIMALS) = PlanTermsLib.validateFixed(terms);
        PRICE_FEED = AggregatorV3Interface(terms.priceFeed);
        USD_PRICED = terms.priceFeed != address(0);
        MAX_PRICE_AGE = terms.maxPriceAge;
        ALLOWANCE_BUFFER_BPS = terms.allowanceBufferBps;
        PRICE = terms.price;
        TRIAL_PERIOD = terms.trialPeriod;
        KEEPER_FEE_BPS = terms.keeperFeeBps;
        KEEPER_RESTRICTED = terms.keeperRestricted;
        KEEPER_FEE = BillingMath.keeperFee(terms.price, terms.keeperFeeBps);
        PAYEE_SHARE = terms.price - KEEPER_FEE;
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
        if (reason != ChargeReason.Ok) _revertCharge(reason, subscriber, word, amount);
        if (fee != 0) {
            // The keeper's fee is part of the price: the subscriber must cover all of it (see _payKeeperFee).
            ChargeReason funds = _fundsReason(subscriber, amount);
            if (funds != ChargeReason.Ok) revert InsufficientFunds(subscriber, funds);
        }

        // Effects
        uint256 charged = _afterCharge(word);
        _subscriptions[subscriber] = charged;

        // Interaction
        _pullOrRevert(subscriber, payee_, share);
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
            if (reason == ChargeReason.Ok && fee != 0) reason = _fundsReasonInBatch(subscriber, amount);
            if (reason != ChargeReason.Ok) {
                if (reason >= ChargeReason.MaxAmountExceeded) emit ChargeFailed(subscriber, reason);
                continue;
            }

            // Effects
            uint256 after_ = _afterCharge(word);
            _subscriptions[subscriber] = after_;

            // Interaction: the pull always has its whole gas budget (or the batch reverts), so a failure
            // is the subscriber's or the token's, never the caller's gas: restore the word (rule 12) and
            // record why.
            if (!TokenCalls.hasGasFor(TokenCalls.PULL_GAS_NEEDED)) revert BatchOutOfGas(subscriber);
            if (!TokenCalls.transferFrom(address(TOKEN), subscriber, payee_, share, false)) {
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
    function setKeeper(address keeper, bool authorized) external onlyOwner {
        _keepers[_roleEpoch][keeper] = authorized;
        emit KeeperAuthorized(keeper, authorized);
    }

    // ------------------------------------------------------------------------------------------------
    // Views
    // ------------------------------------------------------------------------------------------------

    /// @inheritdoc IPlanCore
    function isDue(address subscriber) external view returns (bool) {
        (bool usable, uint256 amount) = _amountNow();
        return _reasonAt(_subscriptions[subscriber], _status == PlanStatus.Retired, usable, amount) == ChargeReason.Ok;
    }

    /// @inheritdoc IPlanCore
    function amountDue(address subscriber) external view returns (uint256) {
        SubscriptionStatus current = _statusOf(_load(subscriber));
        bool live = current == SubscriptionStatus.Trialing || current == SubscriptionStatus.Active
            || current == SubscriptionStatus.PastDue || current == SubscriptionStatus.Paused;
        (bool usable, uint256 amount) = _amountNow();
        return live && usable && _status != PlanStatus.Retired ? amount : 0;
    }

    /// @inheritdoc IPlanCore
    function hasAccess(address subscriber) external view returns (bool) {
        Subscription memory sub = _load(subscriber);
        SubscriptionStatus current = _statusOf(sub);
        if (current == SubscriptionStatus.Trialing || current == SubscriptionStatus.Active) return true;
        return current == SubscriptionStatus.Cancelled && block.timestamp < sub.nextChargeAt;
    }

    /// @inheritdoc IPlanCore
    function chargeability(address subscriber)
        public
        view
        override(IPlanCore, PlanCore)
        returns (bool, ChargeReason, uint256)
    {
        (bool usable, uint256 amount) = _amountNow();
        ChargeReason reason = _chargeabilityAt(subscriber, _status == PlanStatus.Retired, usable, amount);
        return (reason == ChargeReason.Ok, reason, amount);
    }

    /// @inheritdoc IPlanCore
    /// @dev Reads the price once for the whole list: one feed call, whatever its length.
    function chargeabilityMany(address[] calldata subscribers)
        external
        view
        override(IPlanCore, PlanCore)
        returns (ChargeReason[] memory reasons)
    {
        (bool usable, uint256 amount) = _amountNow();
        bool retired = _status == PlanStatus.Retired;
        reasons = new ChargeReason[](subscribers.length);
        for (uint256 i = 0; i < subscribers.length; ++i) {
            reasons[i] = _chargeabilityAt(subscribers[i], retired, usable, amount);
        }
    }

    /// @inheritdoc IPlanCore
    function requiredAllowance(uint256 periods) external view returns (uint256) {
        (bool usable, uint256 amount) = _amountNow();
        if (!usable) _revertPriceUnavailable();
        return BillingMath.requiredAllowance(amount, periods, ALLOWANCE_BUFFER_BPS);
    }

    /// @inheritdoc IPlan
    function isKeeper(address account) external view returns (bool) {
        return account == owner() || _keepers[_roleEpoch][account];
    }

    /// @inheritdoc IPlanCore
    function nonces(address subscriber) public view override(IPlanCore, PlanCore) returns (uint256) {
        return super.nonces(subscriber);
    }

    /// @inheritdoc IPlanCore
    function price() external view returns (uint256) {
        return PRICE;
    }

    /// @inheritdoc IPlanCore
    function trialPeriod() external view returns (uint256) {
        return TRIAL_PERIOD;
    }

    /// @inheritdoc IPlanCore
    function billingMode() external pure returns (BillingMode) {
        return BillingMode.Fixed;
    }

    /// @inheritdoc IPlanCore
    function perCycleCap() external pure returns (uint256) {
        return 0;
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

    /// @dev A sign-up needs a usable price (USD plans) and a max amount that covers it.
    function _checkSubscribe(uint96 storedMax, uint256 maxAmount) internal view override returns (uint256) {
        (bool usable, uint256 amount) = _amountNow();
        if (!usable) _revertPriceUnavailable();
        if (storedMax < amount) revert MaxAmountExceeded(amount, maxAmount);
        return amount;
    }

    /// @dev A first-time subscriber starts the trial, if the plan has one; anyone else pays the first
    /// period now.
    function _start(address, Subscription memory sub, SubscriptionStatus)
        internal
        view
        override
        returns (bool trial, bool payNow)
    {
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

    /// @dev Pays the caller its `fee` out of a charge of `amount` whose payee share was just pulled, and
    /// returns the total pulled from `subscriber`. The subscriber's allowance and balance were checked to
    /// cover the whole amount, so a fee the token still refuses (a blocklisted keeper, say) is the
    /// keeper's problem: it is not paid, the charge stands, and the subscriber is charged less, never more.
    function _payKeeperFee(address subscriber, uint256 amount, uint256 share, uint256 fee)
        internal
        returns (uint256 pulled)
    {
        pulled = share;
        if (fee == 0) return pulled;
        // The fee's pull has its whole gas budget too, so whether the keeper is paid never depends on its
        // own gas limit.
        if (!TokenCalls.hasGasFor(TokenCalls.PULL_GAS_NEEDED)) revert BatchOutOfGas(subscriber);
        if (TokenCalls.transferFrom(address(TOKEN), subscriber, msg.sender, fee, false)) {
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

    /// @dev The feed's latest answer and its time; (0, 0), which is never usable, if the feed reverts,
    /// runs out of its gas budget or answers with malformed data (`TokenCalls.latestAnswer`).
    function _latestAnswer() internal view returns (int256 answer, uint256 updatedAt) {
        (, answer, updatedAt) = TokenCalls.latestAnswer(address(PRICE_FEED));
    }

    /// @dev `chargeability`'s reason for `subscriber` at a price already read: the rules first, then, when
    /// they allow the charge or it is not due yet (so the customer can be warned), what would stop it.
    function _chargeabilityAt(address subscriber, bool retired, bool usable, uint256 amount)
        internal
        view
        returns (ChargeReason reason)
    {
        uint256 word = _subscriptions[subscriber];
        reason = _reasonAt(word, retired, usable, amount);
        if (reason == ChargeReason.Ok || reason == ChargeReason.NotDue) {
            ChargeReason funds = !usable
                ? ChargeReason.PriceStale
                : amount > word.maxAmount() ? ChargeReason.MaxAmountExceeded : _fundsReason(subscriber, amount);
            if (funds != ChargeReason.Ok) reason = funds;
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
        if (KEEPER_RESTRICTED && msg.sender != owner() && !_keepers[_roleEpoch][msg.sender]) {
            revert NotAuthorizedKeeper(msg.sender);
        }
    }

    /// @dev Reverts with the custom error for a rule `reason` (the shared ones, or a stale price).
    function _revertCharge(ChargeReason reason, address subscriber, uint256 word, uint256 amount) internal view {
        if (reason == ChargeReason.PriceStale) _revertPriceUnavailable();
        _revertWith(reason, subscriber, word, amount);
    }
}
