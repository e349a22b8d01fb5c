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

    /// @notice Reverts with an `ITermsErrors` error naming the first term out of bounds. For a USD-priced
    /// plan, returns the token's and the feed's decimals (0 and 0 otherwise).
    function validate(PlanTerms memory terms) internal view returns (uint8 tokenDecimals, uint8 feedDecimals) {
        if (terms.token.code.length == 0) revert ITermsErrors.InvalidToken(terms.token);
        if (terms.payee == address(0)) revert ITermsErrors.InvalidPayee(terms.payee);
        if (terms.price == 0 || terms.price > MAX_PRICE) revert ITermsErrors.PriceOutOfRange(terms.price, MAX_PRICE);
        if (terms.period < MIN_PERIOD || terms.period > MAX_PERIOD) {
            revert ITermsErrors.PeriodOutOfRange(terms.period, MIN_PERIOD, MAX_PERIOD);
        }
        if (terms.trialPeriod > MAX_TRIAL) revert ITermsErrors.TrialOutOfRange(terms.trialPeriod, MAX_TRIAL);
        if (terms.gracePeriod < MIN_GRACE_PERIOD || terms.gracePeriod >= terms.period) {
            revert ITermsErrors.GracePeriodOutOfRange(terms.gracePeriod, MIN_GRACE_PERIOD, terms.period - 1);
        }
        if (terms.keeperFeeBps > MAX_KEEPER_FEE_BPS) {
            revert ITermsErrors.KeeperFeeOutOfRange(terms.keeperFeeBps, MAX_KEEPER_FEE_BPS);
        }
        if (terms.billingMode != BillingMode.Fixed) revert ITermsErrors.UnsupportedBillingMode(terms.billingMode);
        if (terms.perCycleCap != 0) revert ITermsErrors.TermNotApplicable("perCycleCap", terms.perCycleCap);
        if (terms.priceFeed == address(0)) {
            if (terms.maxPriceAge != 0) revert ITermsErrors.TermNotApplicable("maxPriceAge", terms.maxPriceAge);
            if (terms.allowanceBufferBps != 0) {
                revert ITermsErrors.TermNotApplicable("allowanceBufferBps", terms.allowanceBufferBps);
            }
            return (0, 0);
        }
        return _validateUsdPricing(terms);
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
