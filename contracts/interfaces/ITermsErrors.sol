// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {BillingMode} from "./PlanTypes.sol";

/// @title Errors for invalid plan terms
/// @notice Raised when a plan is created with terms outside their bounds (see `PlanTerms`). Each error
/// carries the offending value and the bound it broke. Declared once here so that both the factory and
/// the plan expose them in their ABI.
interface ITermsErrors {
    /// @notice `token` has no code: it cannot be an ERC-20 contract.
    error InvalidToken(address token);
    /// @notice `payee` is the zero address.
    error InvalidPayee(address payee);
    /// @notice `price` (token base units) is 0 or above `maxPrice`.
    error PriceOutOfRange(uint256 price, uint256 maxPrice);
    /// @notice `period` (seconds) is outside [`minPeriod`, `maxPeriod`].
    error PeriodOutOfRange(uint256 period, uint256 minPeriod, uint256 maxPeriod);
    /// @notice `trialPeriod` (seconds) is above `maxTrial`.
    error TrialOutOfRange(uint256 trialPeriod, uint256 maxTrial);
    /// @notice `gracePeriod` (seconds) is outside [`minGrace`, `maxGrace`] (`maxGrace` is period - 1, so
    /// that a late charge can never be followed by a second one for the same stretch of time).
    error GracePeriodOutOfRange(uint256 gracePeriod, uint256 minGrace, uint256 maxGrace);
    /// @notice `keeperFeeBps` (basis points) is above `maxFeeBps`.
    error KeeperFeeOutOfRange(uint256 keeperFeeBps, uint256 maxFeeBps);
    /// @notice The terms are for `billingMode`, and the plan contract being deployed bills another way (the
    /// factory picks the contract from the mode, so only a direct deployment can see this).
    error UnsupportedBillingMode(BillingMode billingMode);
    /// @notice A metered plan's `perCycleCap` (token base units) is 0 or above `maxCap`.
    error PerCycleCapOutOfRange(uint256 perCycleCap, uint256 maxCap);
    /// @notice A metered plan's `freeCredits` (token base units) is above `maxCredits`.
    error FreeCreditsOutOfRange(uint256 freeCredits, uint256 maxCredits);
    /// @notice `priceFeed` has no code, or does not answer `decimals()`.
    error InvalidPriceFeed(address priceFeed);
    /// @notice `maxPriceAge` (seconds) of a USD-priced plan is outside [`minAge`, `maxAge`].
    error PriceAgeOutOfRange(uint256 maxPriceAge, uint256 minAge, uint256 maxAge);
    /// @notice `allowanceBufferBps` of a USD-priced plan is above `maxBufferBps`.
    error AllowanceBufferOutOfRange(uint256 allowanceBufferBps, uint256 maxBufferBps);
    /// @notice The token's and the feed's decimals add up to more than `maxSum`, or the token does not
    /// answer `decimals()` (then `tokenDecimals` is type(uint8).max).
    error DecimalsOutOfRange(uint256 tokenDecimals, uint256 feedDecimals, uint256 maxSum);
    /// @notice A term that does not apply to this billing mode/pricing was set: it must be 0.
    /// `term` is the field's name.
    error TermNotApplicable(string term, uint256 value);
}
