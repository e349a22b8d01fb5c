// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

import {AggregatorV3Interface} from "../interfaces/AggregatorV3Interface.sol";
import {ITermsErrors} from "../interfaces/ITermsErrors.sol";
import {BillingMode, PlanTerms} from "../interfaces/PlanTypes.sol";
import {PriceMath} from "./PriceMath.sol";

/// @title Bounds of plan terms
/// @notice The one place where a plan's terms are checked. Bounds are chosen so that every derived time
/// fits the packed `Subscription` fields and a keeper always has a real window to collect a payment.
library PlanTermsLib {
    /// @notice Largest price (token base units): charges must fit `Subscription.maxAmount` (uint96).
    uint256 internal constant MAX_PRICE = type(uint96).max;
    /// @notice Shortest billing period: one hour.
    uint256 internal constant MIN_PERIOD = 1 hours;
    /// @notice Longest billing period: ten years of 366 days.
    uint256 internal constant MAX_PERIOD = 3660 days;
    /// @notice Longest free trial: 366 days.
    uint256 internal constant MAX_TRIAL = 366 days;
    /// @notice Shortest grace window: 15 minutes, so that a keeper can always land a transaction in it.
    uint256 internal constant MIN_GRACE_PERIOD = 15 minutes;
    /// @notice Largest keeper reward: 10% of a charge, in basis points.
    uint256 internal constant MAX_KEEPER_FEE_BPS = 1_000;
    /// @notice Shortest `maxPriceAge` of a USD-priced plan: one minute.
    uint256 internal constant MIN_PRICE_AGE = 1 minutes;
    /// @notice Longest `maxPriceAge`: seven days.
    uint256 internal constant MAX_PRICE_AGE = 7 days;
    /// @notice Largest allowance buffer of a USD-priced plan: 50%, in basis points.
    uint256 internal constant MAX_ALLOWANCE_BUFFER_BPS = 5_000;

    /// @notice Checks the terms of a fixed plan: reverts with an `ITermsErrors` error naming the first term
    /// out of bounds. For a USD-priced plan, returns the token's and the feed's decimals (0 and 0 otherwise).
    function validateFixed(PlanTerms memory terms) internal view returns (uint8 tokenDecimals, uint8 feedDecimals) {
        _validateCommon(terms, BillingMode.Fixed);
        if (terms.price == 0 || terms.price > MAX_PRICE) revert ITermsErrors.PriceOutOfRange(terms.price, MAX_PRICE);
        if (terms.trialPeriod > MAX_TRIAL) revert ITermsErrors.TrialOutOfRange(terms.trialPeriod, MAX_TRIAL);
        if (terms.keeperFeeBps > MAX_KEEPER_FEE_BPS) {
            revert ITermsErrors.KeeperFeeOutOfRange(terms.keeperFeeBps, MAX_KEEPER_FEE_BPS);
        }
        _notApplicable("perCycleCap", terms.perCycleCap);
        _notApplicable("freeCredits", terms.freeCredits);
        if (terms.priceFeed == address(0)) {
            _notApplicable("maxPriceAge", terms.maxPriceAge);
            _notApplicable("allowanceBufferBps", terms.allowanceBufferBps);
            return (0, 0);
        }
        return _validateUsdPricing(terms);
    }

    /// @notice Checks the terms of a metered plan: token, payee, period and grace as for a fixed plan, a
    /// `perCycleCap` in [1, MAX_PRICE], `freeCredits` at most MAX_PRICE, and every fixed-plan term 0
    /// (price, trial, keeper fee and restriction, USD pricing): reverts with an `ITermsErrors` error
    /// naming the first term that is not.
    function validateMetered(PlanTerms memory terms) internal view {
        _validateCommon(terms, BillingMode.Metered);
        if (terms.perCycleCap == 0 || terms.perCycleCap > MAX_PRICE) {
            revert ITermsErrors.PerCycleCapOutOfRange(terms.perCycleCap, MAX_PRICE);
        }
        if (terms.freeCredits > MAX_PRICE) revert ITermsErrors.FreeCreditsOutOfRange(terms.freeCredits, MAX_PRICE);
        _notApplicable("price", terms.price);
        _notApplicable("trialPeriod", terms.trialPeriod);
        _notApplicable("keeperFeeBps", terms.keeperFeeBps);
        _notApplicable("keeperRestricted", terms.keeperRestricted ? 1 : 0);
        _notApplicable("priceFeed", uint160(terms.priceFeed));
        _notApplicable("maxPriceAge", terms.maxPriceAge);
        _notApplicable("allowanceBufferBps", terms.allowanceBufferBps);
    }

    /// @dev The terms every plan has: a token contract, a payee, the period, and a grace window inside it;
    /// and the billing mode of the contract being built.
    function _validateCommon(PlanTerms memory terms, BillingMode mode) private view {
        if (terms.billingMode != mode) revert ITermsErrors.UnsupportedBillingMode(terms.billingMode);
        if (terms.token.code.length == 0) revert ITermsErrors.InvalidToken(terms.token);
        // A payee that could never pass the tokens on: nobody, the plan being built, the token itself.
        if (terms.payee == address(0) || terms.payee == address(this) || terms.payee == terms.token) {
            revert ITermsErrors.InvalidPayee(terms.payee);
        }
        if (terms.period < MIN_PERIOD || terms.period > MAX_PERIOD) {
            revert ITermsErrors.PeriodOutOfRange(terms.period, MIN_PERIOD, MAX_PERIOD);
        }
        if (terms.gracePeriod < MIN_GRACE_PERIOD || terms.gracePeriod >= terms.period) {
            revert ITermsErrors.GracePeriodOutOfRange(terms.gracePeriod, MIN_GRACE_PERIOD, terms.period - 1);
        }
    }

    /// @dev Reverts `TermNotApplicable(term, value)` unless `value` is 0.
    function _notApplicable(string memory term, uint256 value) private pure {
        if (value != 0) revert ITermsErrors.TermNotApplicable(term, value);
    }

    /// @dev The feed, its age bound, the buffer, and decimals the conversion can handle.
    function _validateUsdPricing(PlanTerms memory terms) private view returns (uint8 tokenDecimals, uint8 feedDecimals) {
        if (terms.priceFeed.code.length == 0) revert ITermsErrors.InvalidPriceFeed(terms.priceFeed);
        if (terms.maxPriceAge < MIN_PRICE_AGE || terms.maxPriceAge > MAX_PRICE_AGE) {
            revert ITermsErrors.PriceAgeOutOfRange(terms.maxPriceAge, MIN_PRICE_AGE, MAX_PRICE_AGE);
        }
        if (terms.allowanceBufferBps > MAX_ALLOWANCE_BUFFER_BPS) {
            revert ITermsErrors.AllowanceBufferOutOfRange(terms.allowanceBufferBps, MAX_ALLOWANCE_BUFFER_BPS);
        }
        try AggregatorV3Interface(terms.priceFeed).decimals() returns (uint8 d) {
            feedDecimals = d;
        } catch {
            revert ITermsErrors.InvalidPriceFeed(terms.priceFeed);
        }
        bool known;
        (known, tokenDecimals) = SafeERC20.tryGetDecimals(IERC20(terms.token));
        if (!known) tokenDecimals = type(uint8).max;
        if (!known || uint256(tokenDecimals) + feedDecimals > PriceMath.MAX_DECIMALS_SUM) {
            revert ITermsErrors.DecimalsOutOfRange(tokenDecimals, feedDecimals, PriceMath.MAX_DECIMALS_SUM);
        }
    }
}
