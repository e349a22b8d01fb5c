// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {AggregatorV3Interface} from "../../contracts/interfaces/AggregatorV3Interface.sol";

/// @notice A Chainlink-style feed whose answer and update time a test sets. Tests and the demo only.
contract MockAggregator is AggregatorV3Interface {
    uint8 public immutable decimals;
    int256 public answer;
    uint256 public updatedAt;
    uint80 public roundId;
    /// @notice When set, `latestRoundData` reverts (a feed that is down or deprecated).
    bool public broken;

    error FeedDown();

    constructor(uint8 decimals_, int256 answer_) {
        decimals = decimals_;
        setAnswer(answer_);
    }

    /// @notice Sets the answer, updated now.
    function setAnswer(int256 answer_) public {
        setRound(answer_, block.timestamp);
    }

    /// @notice Sets the answer and its update time (0, past or future, to test staleness checks).
    function setRound(int256 answer_, uint256 updatedAt_) public {
        answer = answer_;
        updatedAt = updatedAt_;
        ++roundId;
    }

    function setBroken(bool broken_) external {
        broken = broken_;
    }

    function latestRoundData() external view returns (uint80, int256, uint256, uint256, uint80) {
        if (broken) revert FeedDown();
        return (roundId, answer, updatedAt, updatedAt, roundId);
    }
}
