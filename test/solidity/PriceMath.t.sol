// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {PriceMath} from "../../contracts/libraries/PriceMath.sol";

import {Test} from "./utils/Test.sol";

/// @notice Exposes PriceMath's internal functions, so the tests call exactly the code the plans inline.
contract PriceMathHarness {
    function usdToToken(uint256 usdPrice, uint256 answer, uint256 feedDecimals, uint256 tokenDecimals)
        external
        pure
        returns (uint256)
    {
        return PriceMath.usdToToken(usdPrice, answer, feedDecimals, tokenDecimals);
    }

    function isUsable(int256 answer, uint256 updatedAt, uint256 now_, uint256 maxAge) external pure returns (bool) {
        return PriceMath.isUsable(answer, updatedAt, now_, maxAge);
    }
}

/// @notice The USD conversion against a reference computation, across token decimals (6, 18) and feed
/// decimals (8, 18): the payee is never paid less than the exact price, and never more than one token
/// unit above it.
contract PriceMathTest is Test {
    PriceMathHarness internal math = new PriceMathHarness();

    /// Decimals pairs the plans meet in practice (6 or 18 for the token, 8 or 18 for the feed), plus the
    /// extremes of their bounds (0 and a sum of MAX_DECIMALS_SUM).
    function _decimals(uint256 seed) internal pure returns (uint256 tokenDecimals, uint256 feedDecimals) {
        uint256[4] memory tokens = [uint256(6), 18, 0, 28];
        uint256[3] memory feeds = [uint256(8), 18, 0];
        tokenDecimals = tokens[seed % 4];
        feedDecimals = feeds[(seed / 4) % 3];
        if (tokenDecimals + feedDecimals > PriceMath.MAX_DECIMALS_SUM) feedDecimals = PriceMath.MAX_DECIMALS_SUM - tokenDecimals;
    }

    /// Rounding up, exactly: r × answer × 10^8 ≥ price × 10^(td+fd) > (r − 1) × answer × 10^8.
    /// Both sides are compared as 512-bit products split in two words, so the reference cannot overflow.
    function testFuzz_usdToToken_roundsUpByLessThanOneUnit(uint256 usdPrice, uint256 answer, uint256 seed) public view {
        (uint256 td, uint256 fd) = _decimals(seed);
        usdPrice = bound(usdPrice, 1, type(uint96).max);
        answer = bound(answer, 1, type(uint128).max);
        uint256 r = math.usdToToken(usdPrice, answer, fd, td);

        uint256 scale = 10 ** (td + fd);
        (uint256 needHi, uint256 needLo) = _mul512(usdPrice, scale);
        (uint256 paidHi, uint256 paidLo) = _mul512(r, answer * 1e8);
        assertTrue(_ge(paidHi, paidLo, needHi, needLo), "the payee gets at least the exact price");
        if (r > 0) {
            (uint256 lessHi, uint256 lessLo) = _mul512(r - 1, answer * 1e8);
            assertTrue(_lt(lessHi, lessLo, needHi, needLo), "one unit less would be short");
        }
    }

    /// Familiar figures: $9.99 of a $1.00 6-decimal stablecoin on an 8-decimal feed is 9.99 tokens exactly;
    /// at $0.999 it is 10.000000 (9.99 / 0.999 = 10); at $3 it is 3.33 rounded up to 3.330000 units.
    function test_usdToToken_familiarFigures() public view {
        assertEq(math.usdToToken(999_000_000, 1e8, 8, 6), 9_990_000, "9.99 at 1.00");
        assertEq(math.usdToToken(999_000_000, 99_900_000, 8, 6), 10_000_000, "9.99 at 0.999");
        assertEq(math.usdToToken(999_000_000, 3e8, 8, 6), 3_330_000, "9.99 at 3.00");
        assertEq(math.usdToToken(1e8, 3e8, 8, 6), 333_334, "1.00 at 3.00 rounds up");
        assertEq(math.usdToToken(1e8, 3e18, 18, 18), 333_333_333_333_333_334, "18-decimal token and feed");
        assertEq(math.usdToToken(2_500e8, 2_500e8, 8, 18), 1e18, "one ether at $2,500");
    }

    /// A higher token price never asks for more tokens; a higher USD price never asks for fewer.
    function testFuzz_usdToToken_isMonotonic(uint256 usdPrice, uint256 answer, uint256 seed) public view {
        (uint256 td, uint256 fd) = _decimals(seed);
        usdPrice = bound(usdPrice, 1, type(uint96).max - 1);
        answer = bound(answer, 1, type(uint128).max - 1);
        uint256 base = math.usdToToken(usdPrice, answer, fd, td);
        assertLe(math.usdToToken(usdPrice, answer + 1, fd, td), base, "dearer token, fewer units");
        assertLe(base, math.usdToToken(usdPrice + 1, answer, fd, td), "higher price, more units");
    }

    /// A feed answer is usable only when positive, updated, not from the future and young enough.
    function testFuzz_isUsable_onlyFreshPositiveAnswers(int256 answer, uint256 updatedAt, uint256 now_, uint256 maxAge)
        public
        view
    {
        now_ = bound(now_, 0, type(uint64).max);
        maxAge = bound(maxAge, 0, type(uint32).max);
        bool expected = answer > 0 && updatedAt != 0 && updatedAt <= now_ && now_ - updatedAt <= maxAge;
        assertTrue(math.isUsable(answer, updatedAt, now_, maxAge) == expected, "usable iff fresh and positive");
    }

    function test_isUsable_boundaries() public view {
        assertTrue(math.isUsable(1, 100, 1_100, 1_000), "exactly maxAge old");
        assertTrue(!math.isUsable(1, 100, 1_101, 1_000), "one second too old");
        assertTrue(!math.isUsable(1, 1_101, 1_100, 1_000), "from the future");
        assertTrue(!math.isUsable(1, 0, 1_100, 1_000), "never updated");
        assertTrue(!math.isUsable(0, 1_000, 1_100, 1_000), "zero answer");
        assertTrue(!math.isUsable(-1, 1_000, 1_100, 1_000), "negative answer");
    }

    function _mul512(uint256 a, uint256 b) private pure returns (uint256 hi, uint256 lo) {
        unchecked {
            uint256 mm = mulmod(a, b, type(uint256).max);
            lo = a * b;
            hi = mm - lo - (mm < lo ? 1 : 0);
        }
    }

    function _ge(uint256 aHi, uint256 aLo, uint256 bHi, uint256 bLo) private pure returns (bool) {
        return aHi > bHi || (aHi == bHi && aLo >= bLo);
    }

    function _lt(uint256 aHi, uint256 aLo, uint256 bHi, uint256 bLo) private pure returns (bool) {
        return !_ge(aHi, aLo, bHi, bLo);
    }
}
