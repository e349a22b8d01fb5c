// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

/// @title USD price conversion
/// @notice Converts a USD price into token base units at a feed's answer, and says whether an answer may
/// be used. Pure maths, fuzzed on its own (test/solidity/PriceMath.t.sol).
library PriceMath {
    /// @notice Decimals of a USD price (as Chainlink's USD feeds: $9.99 is 999_000_000).
    uint256 internal constant USD_DECIMALS = 8;
    /// @notice Largest token decimals + feed decimals a plan accepts: with prices below 2^96 the product
    /// price × 10^(token + feed decimals) then stays below 2^216, so no conversion can overflow.
    uint256 internal constant MAX_DECIMALS_SUM = 36;

    /// @notice Token base units worth `usdPrice` (USD, 8 decimals) when one whole token is worth `answer`
    /// (USD, `feedDecimals` decimals), for a token with `tokenDecimals`. Rounded up: the payee is never
    /// paid less than the exact price and never more than one token unit above it.
    /// @dev amount = ceil(usdPrice × 10^(tokenDecimals + feedDecimals) / (answer × 10^8)), computed as two
    /// ceiling divisions (equal for positive integers) so that `answer × 10^8` cannot overflow.
    /// Requires answer > 0 and tokenDecimals + feedDecimals ≤ MAX_DECIMALS_SUM (checked by the caller).
    function usdToToken(uint256 usdPrice, uint256 answer, uint256 feedDecimals, uint256 tokenDecimals)
        internal
        pure
        returns (uint256)
    {
        uint256 scaled = Math.mulDiv(usdPrice, 10 ** (tokenDecimals + feedDecimals), answer, Math.Rounding.Ceil);
        return Math.ceilDiv(scaled, 10 ** USD_DECIMALS);
    }

    /// @notice Whether a feed answer may be used at `now_`: positive, updated (not 0), not in the future,
    /// and at most `maxAge` seconds old.
    function isUsable(int256 answer, uint256 updatedAt, uint256 now_, uint256 maxAge) internal pure returns (bool) {
        return answer > 0 && updatedAt != 0 && updatedAt <= now_ && now_ - updatedAt <= maxAge;
    }
}
