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

import {IPlanCore} from "./interfaces/IPlanCore.sol";
import {ChargeReason, PlanStatus, PlanTerms, Subscription, SubscriptionStatus} from "./interfaces/PlanTypes.sol";
import {BillingMath} from "./libraries/BillingMath.sol";
import {PackedSubscription} from "./libraries/PackedSubscription.sol";

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
///   per-subscriber nonce makes it single-use, so it cannot revive a cancelled subscription). It cannot
///   change the subscriber or the max amount, pays the gas and is paid nothing. Contract wallets sign
///   through ERC-1271, asked at submission time.
/// - Permits: `subscribeWithPermit` ignores a permit that fails (someone front-ran it, or the token has
///   none), so front-running a permit cannot block a subscription; only the allowance in place counts.
/// - Owner (merchant): changes only the payee, the plan status and who may charge, and may cancel a
///   subscription. The owner cannot change a term and cannot move a customer's tokens anywhere but to the
///   payee.
/// - Every path that moves tokens or changes a subscription holds a transient reentrancy guard, and
///   changes state before the token call (check, effect, interaction).
abstract contract PlanCore is IPlanCore, Ownable2Step, ReentrancyGuardTransient, EIP712, Nonces {
    using SafeERC20 for IERC20;
    using PackedSubscription for uint256;

    // ------------------------------------------------------------------------------------------------
    // Constants
    // ------------------------------------------------------------------------------------------------

    /// @inheritdoc IPlanCore
    bytes32 public constant SUBSCRIBE_TYPEHASH =
        keccak256("Subscribe(address subscriber,uint256 maxAmount,uint256 nonce,uint256 deadline)");

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

    /// @dev `_payee` and `_status` share one slot: the charge path reads both with one cold load.
    address internal _payee;
    PlanStatus internal _status;
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
        return _subscribe(msg.sender, maxAmount);
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
        // The permit may already have been submitted by someone else (it is public once signed): its
        // failure is not the subscription's. `_subscribe` pulls the first period with the allowance in
        // place and reverts with the token's error if there is not enough.
        try IERC20Permit(address(TOKEN)).permit(msg.sender, address(this), allowance, deadline, v, r, s) {} catch {}
        return _subscribe(msg.sender, maxAmount);
    }

    /// @inheritdoc IPlanCore
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
        uint256 pausedFor = block.timestamp - sub.pausedAt;
        sub.nextChargeAt = uint40(BillingMath.shiftedForPause(sub.nextChargeAt, sub.pausedAt, block.timestamp));
        sub.pausedAt = 0;
        _store(subscriber, sub);
        emit Resumed(subscriber, sub.nextChargeAt, pausedFor);
    }

    /// @inheritdoc IPlanCore
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
        emit PlanStatusChanged(from, to);
    }

    /// @inheritdoc IPlanCore
    function setPayee(address newPayee) external onlyOwner {
        if (newPayee == address(0)) revert InvalidPayee(newPayee);
        address oldPayee = _payee;
        _payee = newPayee;
        emit PayeeChanged(oldPayee, newPayee);
    }

    // ------------------------------------------------------------------------------------------------
    // Views
    // ------------------------------------------------------------------------------------------------

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
        return scheduled && _status != PlanStatus.Retired ? sub.nextChargeAt : 0;
    }

    /// @inheritdoc IPlanCore
    function subscriptionOf(address subscriber) external view returns (Subscription memory) {
        return _load(subscriber);
    }

    /// @inheritdoc IPlanCore
    function chargeabilityMany(address[] calldata subscribers) external view returns (ChargeReason[] memory reasons) {
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

    /// @dev Starts a fresh subscription of `subscriber` in `sub` (`startedAt` and `pausedAt` already set):
    /// sets `nextChargeAt`, `flags` and, if the first period is paid now, `periodsPaid`. Returns whether a
    /// trial started and whether `amountNow` is to be pulled now.
    function _start(address subscriber, Subscription memory sub) internal virtual returns (bool trial, bool payNow);

    // ------------------------------------------------------------------------------------------------
    // Internal
    // ------------------------------------------------------------------------------------------------

    /// @dev Subscribes `subscriber` (the caller, or the signer of a checked authorization): see
    /// `IPlanCore.subscribe`. Callers hold the reentrancy guard.
    function _subscribe(address subscriber, uint256 maxAmount) internal returns (uint256) {
        // Checks
        PlanStatus planStatus = _status;
        if (planStatus != PlanStatus.Active) revert PlanNotActive(planStatus);
        uint96 storedMax = BillingMath.clampMaxAmount(maxAmount);
        uint256 amount = _checkSubscribe(storedMax, maxAmount);

        Subscription memory sub = _load(subscriber);
        SubscriptionStatus current = BillingMath.statusOf(sub, block.timestamp, GRACE_PERIOD, false);
        if (current != SubscriptionStatus.None && current != SubscriptionStatus.Cancelled
            && current != SubscriptionStatus.Expired) {
            revert AlreadySubscribed(subscriber, current);
        }

        // Effects: one store and one `Subscribed` for the three cases (re-activation, trial, paid start).
        sub.maxAmount = storedMax;
        bool trial = false;
        bool payNow = false;
        if (current == SubscriptionStatus.Cancelled && _resumable(sub)) {
            // Re-subscribing while the old schedule still runs (see `_resumable`): keep it, charge
            // nothing now. The trial, if this is one, is the same trial, not a second.
            sub.flags &= ~BillingMath.FLAG_CANCELLED;
        } else {
            sub.startedAt = uint40(block.timestamp);
            sub.pausedAt = 0;
            (trial, payNow) = _start(subscriber, sub);
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
