// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice The few cheatcodes Recur's Solidity tests use, at the standard cheatcode address that Hardhat 3's
/// Solidity test runner (EDR, Foundry-compatible) serves. forge-std is not available here, so this declares
/// only what the tests call; signatures match Foundry's `Vm` so the runner recognises them.
interface Vm {
    /// @notice A log recorded by `recordLogs`.
    struct Log {
        bytes32[] topics;
        bytes data;
        address emitter;
    }

    /// @notice Sets `block.timestamp`.
    function warp(uint256 newTimestamp) external;

    /// @notice `block.timestamp` as the EVM sees it now. Use it instead of `block.timestamp` after a `warp` in the
    /// same function: with `viaIR` the optimizer may reuse an earlier read of `block.timestamp`.
    function getBlockTimestamp() external view returns (uint256);

    /// @notice Makes the next call come from `sender`.
    function prank(address sender) external;

    /// @notice Makes every following call come from `sender` until `stopPrank`.
    function startPrank(address sender) external;

    /// @notice Ends `startPrank`.
    function stopPrank() external;

    /// @notice The next call must revert with exactly `revertData` (selector and arguments).
    function expectRevert(bytes calldata revertData) external;

    /// @notice The next call must revert with an error whose selector is `revertData`.
    function expectRevert(bytes4 revertData) external;

    /// @notice The next call must revert (with anything).
    function expectRevert() external;

    /// @notice Discards the current fuzz input when `condition` is false.
    function assume(bool condition) external pure;

    /// @notice Names an address in traces.
    function label(address account, string calldata newLabel) external;

    /// @notice The address of private key `privateKey`.
    function addr(uint256 privateKey) external pure returns (address);

    /// @notice Starts recording every emitted log.
    function recordLogs() external;

    /// @notice The logs recorded since `recordLogs` or the last call of this function (which empties the record).
    function getRecordedLogs() external returns (Log[] memory logs);

    /// @notice Fails (reverts) with `error` unless `left == right`.
    function assertEq(uint256 left, uint256 right, string calldata error) external pure;

    /// @notice Fails (reverts) with `error` unless `left == right`.
    function assertEq(address left, address right, string calldata error) external pure;

    /// @notice Fails (reverts) with `error` unless `left == right`.
    function assertEq(bool left, bool right, string calldata error) external pure;

    /// @notice Fails (reverts) with `error` unless `left == right`.
    function assertEq(bytes calldata left, bytes calldata right, string calldata error) external pure;

    /// @notice Fails (reverts) with `error` unless `left <= right`.
    function assertLe(uint256 left, uint256 right, string calldata error) external pure;

    /// @notice Fails (reverts) with `error` unless `left >= right`.
    function assertGe(uint256 left, uint256 right, string calldata error) external pure;

    /// @notice Fails (reverts) with `error` unless `left < right`.
    function assertLt(uint256 left, uint256 right, string calldata error) external pure;

    /// @notice Fails (reverts) with `error` unless `condition`.
    function assertTrue(bool condition, string calldata error) external pure;

    /// @notice Fails (reverts) with `error` if `condition`.
    function assertFalse(bool condition, string calldata error) external pure;
}
