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
    /// @notice The billing mode is not implemented by this factory.
    error UnsupportedBillingMode(BillingMode billingMode);
    /// @notice USD pricing through a feed is not implemented yet; `priceFeed` must be address(0).
    error UnsupportedPriceFeed(address priceFeed);
    /// @notice A term that does not apply to this billing mode/pricing was set: it must be 0.
    /// `term` is the field's name.
    error TermNotApplicable(string term, uint256 value);
}
