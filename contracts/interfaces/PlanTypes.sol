// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice How a plan bills. `Fixed` (`FixedPricePlan`): one price per period, pulled in advance by
/// `charge`. `Metered` (`MeteredPlan`): usage billed in arrears, once per cycle after it ends, by the owner
/// or an authorized reporter through `chargeUsage`.
enum BillingMode {
    Fixed,
    Metered
}

/// @notice The merchant-controlled lifecycle of a plan.
/// `Active`: new subscriptions allowed. `OnHold`: no new subscriptions, existing ones billed as normal.
/// `Retired` (terminal): no new subscriptions and no further charges.
enum PlanStatus {
    Active,
    OnHold,
    Retired
}

/// @notice A subscription's status, derived from stored fields and the current time (no keeper needed).
/// `None`: never subscribed. `Trialing`: in the free trial, nothing charged yet. `Active`: paid up to
/// `nextChargeAt`. `PastDue`: due and unpaid, inside the grace window. `Paused`: frozen by the subscriber.
/// `Cancelled`: cancelled; access lasts until `nextChargeAt`. `Expired`: the grace window passed unpaid
/// (or the plan was retired and the paid time ran out); it can never be charged again.
enum SubscriptionStatus {
    None,
    Trialing,
    Active,
    PastDue,
    Paused,
    Cancelled,
    Expired
}

/// @notice Why the next charge of a subscription would (not) succeed. `Ok` means it would.
/// Reasons up to `PlanRetired` depend only on the subscription and the plan; `MaxAmountExceeded` on the
/// subscriber's limit; the next three on the subscriber's token allowance, balance and the token itself;
/// `PriceStale` on a USD-priced plan's feed (answer not positive, never updated, from the future, or older
/// than the plan's `maxPriceAge`); `UsageAboveCap` on a metered plan's usage above its `perCycleCap`.
enum ChargeReason {
    Ok,
    NotSubscribed,
    NotDue,
    Paused,
    Cancelled,
    Expired,
    PlanRetired,
    MaxAmountExceeded,
    AllowanceTooLow,
    BalanceTooLow,
    TransferFailed,
    PriceStale,
    UsageAboveCap
}

/// @notice One subscriber's subscription, packed into a single storage slot (the charge path reads and
/// writes exactly one slot). Times are unix seconds.
/// @param maxAmount Customer-set cap on any single charge, token base units (inputs above
/// `type(uint96).max` are stored as `type(uint96).max`; every chargeable amount is below it).
/// @param nextChargeAt When the next period is due (inclusive). While cancelled: the end of the paid time.
/// On a metered plan: the end of the current usage cycle, from when its usage may be billed.
/// @param startedAt When the current subscription started; 0 if the subscriber never subscribed.
/// @param pausedAt When the subscriber paused; 0 when not paused.
/// @param periodsPaid Periods this subscriber has paid on this plan, over all their subscriptions; the
/// `periodIndex` of the next `Charged` event (on a metered plan: cycles billed, the next `cycleIndex`).
/// @param flags Bit 0: cancelled. Bit 1: the trial has been used (metered plans: the free credits have
/// been granted). Bit 2: the current subscription has paid at least one period (metered plans: set from
/// the start, as there is no trial). Bit 3: the owner blocked this address. Metered plans: bit 4, the
/// owner wrote off the unbilled cycle this ended subscription left; bit 5, a higher limit is kept for an
/// unbilled cycle (`IMeteredPlan.billingLimit`).
struct Subscription {
    uint96 maxAmount;
    uint40 nextChargeAt;
    uint40 startedAt;
    uint40 pausedAt;
    uint32 periodsPaid;
    uint8 flags;
}

/// @notice The terms of a plan, fixed at creation and never changed afterwards (except `payee`, which
/// is only the initial payee).
/// @param token The ERC-20 pulled from subscribers. Standard tokens, including those that return nothing
/// from `transferFrom`; fee-on-transfer and rebasing tokens are NOT supported.
/// @param payee Where charges are paid (the owner may change it later with `setPayee`).
/// @param price Fixed plans: per period, token base units for a token-priced plan; USD with 8 decimals
/// ($9.99 is 999_000_000) when `priceFeed` is set. In [1, type(uint96).max]. 0 for metered plans.
/// @param period Seconds per billing period, in [MIN_PERIOD, MAX_PERIOD].
/// @param trialPeriod Seconds of free trial before the first charge, at most MAX_TRIAL; 0 for none. Fixed
/// plans only (metered plans give `freeCredits` instead).
/// @param gracePeriod Seconds after a due time during which the payment may still be collected, in
/// [MIN_GRACE_PERIOD, period - 1].
/// @param billingMode Fixed or Metered; it decides which plan contract the factory deploys. Terms that do not
/// apply to the mode must be 0 (`TermNotApplicable` otherwise).
/// @param keeperRestricted When true only the owner and authorized keepers may call `charge`/`chargeMany`.
/// Fixed plans only (metered plans are always charged by the owner and reporters).
/// @param keeperFeeBps Share of each charge paid to the caller of `charge`/`chargeMany`, in basis points,
/// at most MAX_KEEPER_FEE_BPS. Paid out of the price, never on top of it. Fixed plans only.
/// @param perCycleCap Metered plans only: the most one cycle's usage may bill, token base units, in
/// [1, type(uint96).max].
/// @param priceFeed A Chainlink-style feed answering USD per whole token: the price is then in USD and
/// converted at each charge; address(0): the price is in token units.
/// @param maxPriceAge USD pricing: the oldest feed answer a charge may use, seconds, in
/// [MIN_PRICE_AGE, MAX_PRICE_AGE]; 0 for token-priced plans.
/// @param allowanceBufferBps USD pricing: margin `requiredAllowance` adds for price moves, basis points, at
/// most MAX_ALLOWANCE_BUFFER_BPS; 0 for token-priced plans.
/// @param freeCredits Metered plans only: token base units of usage granted free to each subscriber at their
/// first subscription (once per subscriber per plan), used up before any token moves; at most
/// type(uint96).max.
struct PlanTerms {
    address token;
    address payee;
    uint256 price;
    uint32 period;
    uint32 trialPeriod;
    uint32 gracePeriod;
    BillingMode billingMode;
    bool keeperRestricted;
    uint16 keeperFeeBps;
    uint256 perCycleCap;
    address priceFeed;
    uint32 maxPriceAge;
    uint16 allowanceBufferBps;
    uint256 freeCredits;
}
