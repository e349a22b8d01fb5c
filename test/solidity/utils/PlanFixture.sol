// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {BillingMode, PlanTerms} from "../../../contracts/interfaces/PlanTypes.sol";

/// @notice Builds plan terms for the factory: a token-priced fixed plan, or a metered plan.
library PlanFixture {
    function fixedTerms(
        address token,
        address payee,
        uint256 price,
        uint256 period,
        uint256 trialPeriod,
        uint256 gracePeriod,
        uint256 keeperFeeBps
    ) internal pure returns (PlanTerms memory) {
        return PlanTerms({
            token: token,
            payee: payee,
            price: price,
            period: uint32(period),
            trialPeriod: uint32(trialPeriod),
            gracePeriod: uint32(gracePeriod),
            billingMode: BillingMode.Fixed,
            keeperRestricted: false,
            keeperFeeBps: uint16(keeperFeeBps),
            perCycleCap: 0,
            priceFeed: address(0),
            maxPriceAge: 0,
            allowanceBufferBps: 0,
            freeCredits: 0
        });
    }

    /// @notice A USD-priced fixed plan: `usdPrice` in USD with 8 decimals, converted at `feed`'s answer, which a
    /// charge uses only while at most `maxPriceAge` seconds old; no allowance buffer.
    function usdFixedTerms(
        address token,
        address payee,
        uint256 usdPrice,
        uint256 period,
        uint256 trialPeriod,
        uint256 gracePeriod,
        uint256 keeperFeeBps,
        address feed,
        uint256 maxPriceAge
    ) internal pure returns (PlanTerms memory terms) {
        terms = fixedTerms(token, payee, usdPrice, period, trialPeriod, gracePeriod, keeperFeeBps);
        terms.priceFeed = feed;
        terms.maxPriceAge = uint32(maxPriceAge);
    }

    /// @notice A metered plan: usage billed in arrears, at most `perCycleCap` a cycle, `freeCredits` granted once
    /// per subscriber; every fixed-plan term (price, trial, keeper fee and restriction, USD pricing) is 0.
    function meteredTerms(
        address token,
        address payee,
        uint256 perCycleCap,
        uint256 period,
        uint256 gracePeriod,
        uint256 freeCredits
    ) internal pure returns (PlanTerms memory) {
        return PlanTerms({
            token: token,
            payee: payee,
            price: 0,
            period: uint32(period),
            trialPeriod: 0,
            gracePeriod: uint32(gracePeriod),
            billingMode: BillingMode.Metered,
            keeperRestricted: false,
            keeperFeeBps: 0,
            perCycleCap: perCycleCap,
            priceFeed: address(0),
            maxPriceAge: 0,
            allowanceBufferBps: 0,
            freeCredits: freeCredits
        });
    }
}
