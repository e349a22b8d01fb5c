// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice A Chainlink-style price feed that answers soundly until a test switches how `latestRoundData`
/// answers: with the five words a test wrote (`setRaw`: any bit pattern, so a round id wider than uint80, a
/// negative or zero answer, a time in the future), with nothing, with `shortBytes` bytes, with a revert, by
/// burning every unit of gas it is given, or with a huge payload (`hugeBytes` long, the sound answer in its
/// first five words). `decimals` always answers the constructor's value, so a USD-priced plan can be
/// created on it. Open to anyone. Tests only.
contract HostileFeed {
    /// @notice How `latestRoundData` answers. `Normal`: round 1, `answer`, updated now (always fresh).
    enum Behaviour {
        Normal,
        Raw,
        Empty,
        Short,
        Revert,
        BurnGas,
        Huge
    }

    uint8 public immutable decimals;
    int256 public answer;
    Behaviour public behaviour;
    /// @notice The five words `Raw` answers: roundId, answer, startedAt, updatedAt, answeredInRound.
    uint256[5] public raw;
    /// @notice Length in bytes of a `Short` answer (the first bytes of the sound one).
    uint256 public shortBytes = 128;
    /// @notice Length in bytes of a `Huge` answer.
    uint256 public hugeBytes = 1_000_000;

    error FeedDown();

    constructor(uint8 decimals_, int256 answer_) {
        decimals = decimals_;
        answer = answer_;
    }

    function setAnswer(int256 answer_) external {
        answer = answer_;
    }

    function setBehaviour(Behaviour behaviour_) external {
        behaviour = behaviour_;
    }

    /// @notice Answers exactly these five words from now on (`Raw`).
    function setRaw(uint256 roundId, uint256 answer_, uint256 startedAt, uint256 updatedAt, uint256 answeredInRound)
        external
    {
        raw = [roundId, answer_, startedAt, updatedAt, answeredInRound];
        behaviour = Behaviour.Raw;
    }

    function setShortBytes(uint256 length) external {
        shortBytes = length;
    }

    function setHugeBytes(uint256 length) external {
        hugeBytes = length;
    }

    /// @dev Declared without return types, so that it can answer any bytes at all.
    function latestRoundData() external view {
        Behaviour b = behaviour;
        if (b == Behaviour.Revert) revert FeedDown();
        uint256[5] memory words = b == Behaviour.Raw
            ? raw
            : [uint256(1), uint256(answer), block.timestamp, block.timestamp, uint256(1)];
        uint256 length = b == Behaviour.Short ? shortBytes : b == Behaviour.Huge ? hugeBytes : 160;
        if (b == Behaviour.Empty) length = 0;
        if (b == Behaviour.BurnGas) {
            assembly ("memory-safe") {
                for {} 1 {} {}
            }
        }
        assembly ("memory-safe") {
            // The words at the start of a free region, then return `length` bytes from there (zeros past them).
            let out := mload(0x40)
            for { let i := 0 } lt(i, 5) { i := add(i, 1) } { mstore(add(out, mul(i, 0x20)), mload(add(words, mul(i, 0x20)))) }
            return(out, length)
        }
    }
}
