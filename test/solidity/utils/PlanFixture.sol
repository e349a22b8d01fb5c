// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {BillingMode, PlanTerms} from "../../../contracts/interfaces/PlanTypes.sol";

/// @notice Builds the terms of a token-priced fixed plan (the only kind the factory deploys today).
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
}
