// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title Chainlink-style price feed
/// @notice The subset of Chainlink's `AggregatorV3Interface` a USD-priced plan reads: the feed's decimals
/// and its latest answer (USD per whole token, with `decimals()` decimals) with the time it was updated.
interface AggregatorV3Interface {
    /// @notice Decimals of `answer`.
    function decimals() external view returns (uint8);

    /// @notice The latest round. `answer`: USD per whole token; `updatedAt`: unix seconds of the answer.
    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound);
}
