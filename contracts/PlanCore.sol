// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

import {IPlanCore} from "./interfaces/IPlanCore.sol";
import {ChargeReason, PlanStatus, PlanTerms, Subscription, SubscriptionStatus} from "./interfaces/PlanTypes.sol";
import {BillingMath} from "./libraries/BillingMath.sol";
import {PackedSubscription} from "./libraries/PackedSubscription.sol";
import {TokenCalls} from "./libraries/TokenCalls.sol";

/// @title What every Recur plan does, whatever its billing mode
/// @notice The subscription lifecycle shared by `FixedPricePlan` and `MeteredPlan`: sign-up (own
/// transaction, ERC-2612 permit, or EIP-712 authorization), cancel, pause, resume, the customer's max
/// amount, the owner's payee and plan status, and the views derived from the stored subscription. The
/// billing modes add how a period is charged, and decide through two hooks what a sign-up checks
/// (`_checkSubscribe`) and how a fresh subscription starts (`_start`).
///
/// Trust model (see also `FixedPricePlan`, `MeteredPlan` and docs/SECURITY.md)
/// - Customer: subscribes only for themself (rule 10), by their own transaction (`subscribe`, or
///   `subscribeWithPermit` to approve through ERC-2612 in the same transaction) or by signing an EIP-712
///   `Subscribe` authorization (`subscribeBySig`); sets their own `maxAmount`, pauses, resumes, cancels at
///   any time. Their tokens stay in their wallet.
/// - Relayer (caller of `subscribeBySig`): anyone. It can submit a customer's signed authorization once,
///   until its deadline, on the chain and the plan it was signed for (the domain binds both; a
///   per-subscriber nonce makes it single-use; cancelling, or `revokeAuthorizations`, uses the nonce up,
///   so an authorization not yet submitted dies with them). It cannot change the subscriber, the max
///   amount or the `ref`, pays the gas and is paid nothing. Contract wallets sign through ERC-1271, asked
///   at submission time.
/// - Permits: `subscribeWithPermit` ignores a permit that fails (someone front-ran it, or the token has
///   none), so front-running a permit cannot block a subscription; only the allowance in place counts.
/// - Owner (merchant): changes only the payee, the plan status and who may charge, may cancel a
///   subscription and block an address from subscribing again. The owner cannot change a term and cannot
///   move a customer's tokens anywhere but to the payee. Ownership moves in two steps and cannot be
///   renounced; a new owner starts with no keepers and no reporters (the old owner's are void).
/// - Token and feed: any contract the plan's creator chose, possibly hostile. Every call to them has a
///   fixed gas budget and a checked answer (`TokenCalls`): views never revert because of them, and a
///   batch item's failure never depends on the caller's gas.
/// - Every path that moves tokens or changes a subscription holds a transient reentrancy guard, and
///   changes state before the token call (check, effect, interaction).
abstract contract PlanCore is IPlanCore, Ownable2Step, ReentrancyGuardTransient, EIP712, Nonces {
    using PackedSubscription for uint256;

    // ------------------------------------------------------------------------------------------------
    // Constants
    // ------------------------------------------------------------------------------------------------

    /// @inheritdoc IPlanCore
    bytes32 public constant SUBSCRIBE_TYPEHASH =
        keccak256("Subscribe(address subscriber,uint256 maxAmount,uint256 nonce,uint256 deadline)");

    /// @inheritdoc IPlanCore
    bytes32 public constant SUBSCRIBE_WITH_REF_TYPEHASH = keccak256(
        "SubscribeWithRef(address subscriber,uint256 maxAmount,bytes32 ref,uint256 nonce,uint256 deadline)"
    );

    // ------------------------------------------------------------------------------------------------
    // Immutables (the terms every mode has; the modes add theirs)
    // ------------------------------------------------------------------------------------------------

    IERC20 internal immutable TOKEN;
    uint256 internal immutable PERIOD;
    uint256 internal immutable GRACE_PERIOD;
    /// @dev What one paid period (or billed cycle) adds to a packed subscription: one period to
    /// `nextChargeAt` and one to `periodsPaid`. Neither field can carry into the next: `nextChargeAt`
    /// stays below 2^40 (year 36812) and `periodsPaid` would need 2^32 periods of at least an hour.
    uint256 internal immutable CHARGE_INCREMENT;

    // ------------------------------------------------------------------------------------------------
    // Storage
    // ------------------------------------------------------------------------------------------------

    /// @dev `_payee`, `_status`, `_retiredAt` and `_roleEpoch` share one slot: the charge path reads them
    /// with one cold load.
    address internal _payee;
    PlanStatus internal _status;
    /// @dev When the plan was retired (0 while it is not): a metered plan still bills the cycles that had
    /// started by then.
    uint40 internal _retiredAt;
    /// @dev Bumped by every change of owner: keepers and reporters are kept per epoch, so a new owner
    /// starts with none.
    uint32 internal _roleEpoch;
    /// @dev Each subscription packed into one word (see `PackedSubscription`).
    mapping(address subscriber => uint256 packed) internal _subscriptions;

    // ------------------------------------------------------------------------------------------------
    // Constructor
    // ------------------------------------------------------------------------------------------------

    /// @param owner_ The merchant: may change the payee, status and who may charge, and cancel
    /// subscriptions.
    /// @param terms The plan's terms, checked by the billing mode's constructor.
    constructor(address owner_, PlanTerms memory terms) Ownable(owner_) EIP712("Recur Plan", "1") {
        TOKEN = IERC20(terms.token);
        PERIOD = terms.period;
        GRACE_PERIOD = terms.gracePeriod;
        CHARGE_INCREMENT = (uint256(terms.period) << PackedSubscription.NEXT_CHARGE_AT_SHIFT)
            + (1 << PackedSubscription.PERIODS_PAID_SHIFT);
        _payee = terms.payee;
        // _status starts as PlanStatus.Active (0).
    }

    // ------------------------------------------------------------------------------------------------
    // Subscriber actions
    // ------------------------------------------------------------------------------------------------

    /// @inheritdoc IPlanCore
    function subscribe(uint256 maxAmount) external nonReentrant returns (uint256) {
        return _subscribe(msg.sender, maxAmount, bytes32(0));
    }

    /// @inheritdoc IPlanCore
    function subscribeWithRef(uint256 maxAmount, bytes32 ref) external nonReentrant returns (uint256) {
        return _subscribe(msg.sender, maxAmount, ref);
    }

    /// @inheritdoc IPlanCore
    function subscribeWithPermit(
        uint256 maxAmount,
        uint256 allowance,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant returns (uint256) {
        _tryPermit(allowance, deadline, v, r, s);
        return _subscribe(msg.sender, maxAmount, bytes32(0));
    }

    /// @inheritdoc IPlanCore
    function subscribeWithPermitAndRef(
        uint256 maxAmount,
        bytes32 ref,
        uint256 allowance,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant returns (uint256) {
        _tryPermit(allowance, deadline, v, r, s);
        return _subscribe(msg.sender, maxAmount, ref);
    }

    /// @inheritdoc IPlanCore
    function subscribeBySig(address subscriber, uint256 maxAmount, uint256 deadline, bytes calldata signature)
        external
        nonReentrant
        returns (uint256)
    {
        // Checks: the authorization is live, and is the subscriber's for this plan, chain and nonce. The
        // nonce is used up here, so the same signature never works twice (a failed call uses nothing).
        _checkAuthorization(
            subscriber,
            keccak256(abi.encode(SUBSCRIBE_TYPEHASH, subscriber, maxAmount, _useNonce(subscriber), deadline)),
            deadline,
            signature
        );
        return _subscribe(subscriber, maxAmount, bytes32(0));
    }

    /// @inheritdoc IPlanCore
    function subscribeBySigWithRef(
        address subscriber,
        uint256 maxAmount,
        bytes32 ref,
        uint256 deadline,
        bytes calldata signature
    ) external nonReentrant returns (uint256) {
        _checkAuthorization(
            subscriber,
            keccak256(
                abi.encode(SUBSCRIBE_WITH_REF_TYPEHASH, subscriber, maxAmount, ref, _useNonce(subscriber), deadline)
            ),
            deadline,
            signature
        );
        return _subscribe(subscriber, maxAmount, ref);
    }

    /// @inheritdoc IPlanCore
    function revokeAuthorizations() external {
        emit AuthorizationsRevoked(msg.sender, _useNonce(msg.sender) + 1);
    }

    /// @inheritdoc IPlanCore
    function cancel() external nonReentrant {
        _cancel(msg.sender);
    }

    /// @inheritdoc IPlanCore
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

    /// @inheritdoc IPlanCore
    function resume() external nonReentrant {
        address subscriber = msg.sender;
        Subscription memory sub = _load(subscriber);
        SubscriptionStatus current = _statusOf(sub);
        if (current != SubscriptionStatus.Paused) revert InvalidSubscriptionStatus(subscriber, current);
        if (sub.flags & BillingMath.FLAG_BLOCKED != 0) revert SubscriberBlocked(subscriber);
        uint256 pausedFor = block.timestamp - sub.pausedAt;
        _unpause(sub);
        _store(subscriber, sub);
        emit Resumed(subscriber, sub.nextChargeAt, pausedFor);
    }

    /// @inheritdoc IPlanCore
    function setMaxAmount(uint256 maxAmount) external nonReentrant {
        address subscriber = msg.sender;
        Subscription memory sub = _load(subscriber);
        if (sub.startedAt == 0) revert NotSubscribed(subscriber);
        uint256 oldMax = sub.maxAmount;
        _setMaxAmount(subscriber, sub, BillingMath.clampMaxAmount(maxAmount));
        _store(subscriber, sub);
        emit MaxAmountUpdated(subscriber, oldMax, sub.maxAmount);
    }

    // ------------------------------------------------------------------------------------------------
    // Owner actions
    // ------------------------------------------------------------------------------------------------

    /// @inheritdoc IPlanCore
    function cancelFor(address subscriber) external onlyOwner nonReentrant {
        _cancel(subscriber);
    }

    /// @inheritdoc IPlanCore
    function setStatus(uint8 newStatus) external onlyOwner {
        if (newStatus > uint8(PlanStatus.Retired)) revert InvalidPlanStatus(newStatus);
        PlanStatus from = _status;
        PlanStatus to = PlanStatus(newStatus);
        if (from == PlanStatus.Retired || from == to) revert InvalidStatusTransition(from, to);
        _status = to;
        if (to == PlanStatus.Retired) _retiredAt = uint40(block.timestamp);
        emit PlanStatusChanged(from, to);
    }

    /// @inheritdoc IPlanCore
    function setPayee(address newPayee) external onlyOwner {
        // No payee that could never pass the tokens on: nobody, this plan, the token contract itself.
        if (newPayee == address(0) || newPayee == address(this) || newPayee == address(TOKEN)) {
            revert InvalidPayee(newPayee);
        }
        address oldPayee = _payee;
        _payee = newPayee;
        emit PayeeChanged(oldPayee, newPayee);
    }

    /// @inheritdoc IPlanCore
    function setBlocked(address subscriber, bool blocked) external onlyOwner {
        uint256 word = _subscriptions[subscriber];
        uint256 bit = uint256(BillingMath.FLAG_BLOCKED) << PackedSubscription.FLAGS_SHIFT;
        _subscriptions[subscriber] = blocked ? word | bit : word & ~bit;
        emit SubscriberBlockUpdated(subscriber, blocked);
    }

    /// @notice Ownership cannot be renounced: a plan without an owner could never change its payee or
    /// status again, and a metered plan without reporters could never be billed again.
    function renounceOwnership() public view override onlyOwner {
        revert OwnershipCannotBeRenounced();
    }

    // ------------------------------------------------------------------------------------------------
    // Views
    // ------------------------------------------------------------------------------------------------

    /// @inheritdoc IPlanCore
    function isBlocked(address subscriber) external view returns (bool) {
        return _subscriptions[subscriber].flags() & BillingMath.FLAG_BLOCKED != 0;
    }

    /// @inheritdoc IPlanCore
    function statusOf(address subscriber) external view returns (SubscriptionStatus) {
        return _statusOf(_load(subscriber));
    }

    /// @inheritdoc IPlanCore
    function nextChargeAt(address subscriber) external view returns (uint256) {
        Subscription memory sub = _load(subscriber);
        SubscriptionStatus current = _statusOf(sub);
        bool scheduled = current == SubscriptionStatus.Trialing || current == SubscriptionStatus.Active
            || current == SubscriptionStatus.PastDue;
        return scheduled && !_retiredFor(sub.nextChargeAt, sub.flags) ? sub.nextChargeAt : 0;
    }

    /// @inheritdoc IPlanCore
    function subscriptionOf(address subscriber) external view returns (Subscription memory) {
        return _load(subscriber);
    }

    /// @inheritdoc IPlanCore
    function chargeabilityMany(address[] calldata subscribers)
        external
        view
        virtual
        returns (ChargeReason[] memory reasons)
    {
        reasons = new ChargeReason[](subscribers.length);
        for (uint256 i = 0; i < subscribers.length; ++i) {
            (, reasons[i],) = chargeability(subscribers[i]);
        }
    }

    /// @inheritdoc IPlanCore
    function chargeability(address subscriber) public view virtual returns (bool, ChargeReason, uint256);

    /// @inheritdoc IPlanCore
    function nonces(address subscriber) public view virtual override(IPlanCore, Nonces) returns (uint256) {
        return super.nonces(subscriber);
    }

    /// @inheritdoc IPlanCore
    function token() external view returns (address) {
        return address(TOKEN);
    }

    /// @inheritdoc IPlanCore
    function payee() external view returns (address) {
        return _payee;
    }

    /// @inheritdoc IPlanCore
    function period() external view returns (uint256) {
        return PERIOD;
    }

    /// @inheritdoc IPlanCore
    function gracePeriod() external view returns (uint256) {
        return GRACE_PERIOD;
    }

    /// @inheritdoc IPlanCore
    function status() external view returns (PlanStatus) {
        return _status;
    }

    // ------------------------------------------------------------------------------------------------
    // Hooks for the billing modes
    // ------------------------------------------------------------------------------------------------

    /// @dev Checks a sign-up with the max amount `storedMax` (as stored; `maxAmount` as asked) and returns
    /// what the first period costs now if `_start` charges it (0 when nothing is charged at sign-up).
    function _checkSubscribe(uint96 storedMax, uint256 maxAmount) internal view virtual returns (uint256 amountNow);

    /// @dev Starts a fresh subscription of `subscriber` in `sub`, whose status was `previous` (None,
    /// Cancelled or Expired; `maxAmount` already set): sets `nextChargeAt`, `flags` and, if the first period
    /// is paid now, `periodsPaid`, or reverts if this address may not start afresh. Returns whether a trial
    /// started and whether `amountNow` is to be pulled now.
    function _start(address subscriber, Subscription memory sub, SubscriptionStatus previous)
        internal
        virtual
        returns (bool trial, bool payNow);

    /// @dev Sets `sub.maxAmount` to `newMax` (as stored). Metered plans keep the limit of a cycle already
    /// running or waiting for its bill (see `MeteredPlan`).
    function _setMaxAmount(address, Subscription memory sub, uint96 newMax) internal virtual {
        sub.maxAmount = newMax;
    }

    /// @dev Whether the plan's retirement stops the charge due at `dueAt` of a subscription with `flags`: on
    /// a fixed plan every charge after retirement; a metered plan still bills the cycles that had started
    /// by then.
    function _retiredFor(uint256 dueAt, uint256 flags) internal view virtual returns (bool) {
        dueAt; // every due time alike
        flags;
        return _status == PlanStatus.Retired;
    }

    /// @dev Ends `sub`'s pause (on resume, or on cancel while paused): the schedule shifts by the paused time,
    /// so the unused part of the period paid before the pause is kept.
    function _unpause(Subscription memory sub) internal view virtual {
        sub.nextChargeAt = uint40(BillingMath.shiftedForPause(sub.nextChargeAt, sub.pausedAt, block.timestamp));
        sub.pausedAt = 0;
    }

    // ------------------------------------------------------------------------------------------------
    // Internal
    // ------------------------------------------------------------------------------------------------

    /// @dev Subscribes `subscriber` (the caller, or the signer of a checked authorization): see
    /// `IPlanCore.subscribe`. Callers hold the reentrancy guard.
    function _subscribe(address subscriber, uint256 maxAmount, bytes32 ref) internal returns (uint256) {
        // Checks
        PlanStatus planStatus = _status;
        if (planStatus != PlanStatus.Active) revert PlanNotActive(planStatus);
        uint96 storedMax = BillingMath.clampMaxAmount(maxAmount);
        uint256 amount = _checkSubscribe(storedMax, maxAmount);

        Subscription memory sub = _load(subscriber);
        if (sub.flags & BillingMath.FLAG_BLOCKED != 0) revert SubscriberBlocked(subscriber);
        SubscriptionStatus current = BillingMath.statusOf(sub, block.timestamp, GRACE_PERIOD, false);
        if (current != SubscriptionStatus.None && current != SubscriptionStatus.Cancelled
            && current != SubscriptionStatus.Expired) {
            revert AlreadySubscribed(subscriber, current);
        }

        // Effects: one store and one `Subscribed` for the three cases (re-activation, trial, paid start).
        bool trial = false;
        bool payNow = false;
        if (current == SubscriptionStatus.Cancelled && _resumable(sub)) {
            // Re-subscribing while the old schedule still runs (see `_resumable`): keep it, charge
            // nothing now. The trial, if this is one, is the same trial, not a second. The new max amount
            // is set as `setMaxAmount` sets it.
            sub.flags &= ~(BillingMath.FLAG_CANCELLED | BillingMath.FLAG_WRITTEN_OFF);
            _setMaxAmount(subscriber, sub, storedMax);
        } else {
            sub.maxAmount = storedMax;
            (trial, payNow) = _start(subscriber, sub, current);
            sub.startedAt = uint40(block.timestamp);
            sub.pausedAt = 0;
        }
        _store(subscriber, sub);
        emit Subscribed(subscriber, storedMax, sub.startedAt, sub.nextChargeAt, trial, ref);

        if (payNow) {
            // Interaction: the first period, from the subscriber to the payee (no keeper fee, nothing from
            // the caller, who may be a relayer).
            _pullOrRevert(subscriber, _payee, amount);
            emit Charged(subscriber, sub.periodsPaid - 1, amount, sub.nextChargeAt);
        }
        return sub.nextChargeAt;
    }

    /// @dev Whether re-subscribing after a cancel resumes the cancelled schedule instead of starting a
    /// fresh one: while the paid (or trial) time lasts, `nextChargeAt` not reached.
    function _resumable(Subscription memory sub) internal view virtual returns (bool) {
        return block.timestamp < sub.nextChargeAt;
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
        if (sub.pausedAt != 0) _unpause(sub);
        sub.flags |= BillingMath.FLAG_CANCELLED;
        _store(subscriber, sub);
        // An authorization the subscriber signed and nobody submitted yet must not revive the subscription.
        _useNonce(subscriber);
        emit Cancelled(subscriber, msg.sender, sub.nextChargeAt);
    }

    /// @dev Applies the caller's own ERC-2612 permit to this plan, ignoring its failure: it may already have
    /// been submitted by someone else (it is public once signed). `_subscribe` then pulls the first period
    /// with the allowance in place and reverts with the token's error if there is not enough.
    function _tryPermit(uint256 allowance, uint256 deadline, uint8 v, bytes32 r, bytes32 s) internal {
        try IERC20Permit(address(TOKEN)).permit(msg.sender, address(this), allowance, deadline, v, r, s) {} catch {}
    }

    /// @dev Reverts unless `signature` is `subscriber`'s over the EIP-712 struct hash `structHash`
    /// (which carries their current nonce, used up by the caller) and `deadline` has not passed.
    function _checkAuthorization(address subscriber, bytes32 structHash, uint256 deadline, bytes calldata signature)
        internal
        view
    {
        if (block.timestamp > deadline) revert SignatureExpired(deadline, block.timestamp);
        if (!SignatureChecker.isValidSignatureNow(subscriber, _hashTypedDataV4(structHash), signature)) {
            revert InvalidSignature(subscriber);
        }
    }

    /// @dev Pulls `amount` from `from` to `to` with the pull's full gas budget, reverting with the token's
    /// error if it fails, or `BatchOutOfGas` if the caller left too little gas for the budget.
    function _pullOrRevert(address from, address to, uint256 amount) internal {
        if (!TokenCalls.hasGasFor(TokenCalls.PULL_GAS_NEEDED)) revert BatchOutOfGas(from);
        TokenCalls.transferFrom(address(TOKEN), from, to, amount, true);
    }

    /// @dev A new owner starts with no keepers and no reporters: those are kept per owner epoch.
    function _transferOwnership(address newOwner) internal override {
        ++_roleEpoch;
        super._transferOwnership(newOwner);
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

    /// @dev The status of `sub` on this plan now.
    function _statusOf(Subscription memory sub) internal view virtual returns (SubscriptionStatus) {
        return BillingMath.statusOf(sub, block.timestamp, GRACE_PERIOD, _retiredFor(sub.nextChargeAt, sub.flags));
    }

    /// @dev Whether `subscriber`'s allowance to this plan and balance each cover `amount`: `Ok`,
    /// `AllowanceTooLow`, `BalanceTooLow`, or `TransferFailed` when a token view reverts, runs out of its
    /// gas budget or answers with malformed data (`TokenCalls`). Never reverts.
    function _fundsReason(address subscriber, uint256 amount) internal view returns (ChargeReason) {
        (bool ok, uint256 value) = TokenCalls.allowance(address(TOKEN), subscriber, address(this));
        if (!ok) return ChargeReason.TransferFailed;
        if (value < amount) return ChargeReason.AllowanceTooLow;
        (ok, value) = TokenCalls.balanceOf(address(TOKEN), subscriber);
        if (!ok) return ChargeReason.TransferFailed;
        if (value < amount) return ChargeReason.BalanceTooLow;
        return ChargeReason.Ok;
    }

    /// @dev `_fundsReason` in a batch, where its answer is recorded: reverts `BatchOutOfGas` unless both
    /// reads can have their whole gas budget, so the caller's gas cannot change the recorded reason.
    function _fundsReasonInBatch(address subscriber, uint256 amount) internal view returns (ChargeReason) {
        if (!TokenCalls.hasGasFor(TokenCalls.FUNDS_GAS_NEEDED)) revert BatchOutOfGas(subscriber);
        return _fundsReason(subscriber, amount);
    }

    /// @dev After a failed pull, tells an allowance problem from a balance problem from anything else
    /// (blocklist, paused token).
    function _transferFailureReason(address subscriber, uint256 amount) internal view returns (ChargeReason) {
        ChargeReason funds = _fundsReasonInBatch(subscriber, amount);
        return funds == ChargeReason.Ok ? ChargeReason.TransferFailed : funds;
    }

    /// @dev Reverts with the custom error for a rule `reason` about the packed subscription `word`, whose
    /// charge would be `amount` (the reasons every mode shares: the schedule, the status, the max amount).
    function _revertWith(ChargeReason reason, address subscriber, uint256 word, uint256 amount) internal view {
        if (reason == ChargeReason.NotSubscribed) revert NotSubscribed(subscriber);
        if (reason == ChargeReason.Cancelled) revert SubscriptionCancelled(subscriber);
        if (reason == ChargeReason.Paused) revert SubscriptionPaused(subscriber, word.pausedAt());
        if (reason == ChargeReason.PlanRetired) revert PlanRetired();
        if (reason == ChargeReason.NotDue) revert NotDue(subscriber, word.nextChargeAt(), block.timestamp);
        if (reason == ChargeReason.Expired) {
            revert SubscriptionExpired(subscriber, word.nextChargeAt() + GRACE_PERIOD, block.timestamp);
        }
        revert MaxAmountExceeded(amount, word.maxAmount());
    }
}
