// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title Calls to the plan's token and price feed, each with a fixed gas budget
/// @notice The factory is permissionless, so a plan's token or feed may be built to hurt whoever calls
/// the plan: answer with empty or malformed data, revert, or burn every unit of gas it is given. Every
/// call a plan makes to them goes through here, so that:
/// - a view (`chargeability`, `usageChargeability`, `isDue`, `amountDue`, …) never reverts because of
///   what the token or the feed returns or how much gas it burns: each read is a low-level `staticcall`
///   with a bounded budget and a return-length check, and anything odd is a failed read
///   (`TransferFailed` for the token, `PriceStale` for the feed);
/// - a token pull (`transferFrom`) always gets exactly `PULL_GAS`: its outcome then depends on the
///   token and the accounts, never on the caller's gas limit. A batch asks `hasGasFor` before each
///   pull and reverts `BatchOutOfGas` when the caller left too little for the whole budget, so a failure
///   that did have the whole budget is the item's own (`ChargeFailed` / `UsageChargeFailed`).
/// Only the first 32 bytes of a token's answer (160 of a feed's) are ever copied, so a token cannot make
/// a read expensive by answering with a huge payload.
library TokenCalls {
    /// @notice Gas given to each token view (`allowance`, `balanceOf`). A standard ERC-20 behind a proxy
    /// (USDC) reads an allowance or a balance with well under 15,000.
    uint256 internal constant VIEW_GAS = 50_000;
    /// @notice Gas given to a price feed's `latestRoundData`. A Chainlink proxy and aggregator answer
    /// with well under 30,000.
    uint256 internal constant FEED_GAS = 100_000;
    /// @notice Gas given to each `transferFrom` the plan makes (the first period, a charge, a usage bill,
    /// a keeper fee). USDC's `transferFrom` to a payee with no balance yet (the dearest case: a new
    /// balance slot, blocklist and pause checks, a proxy) uses about 45,000.
    uint256 internal constant PULL_GAS = 200_000;
    /// @notice Gas that must be left before a pull for the token call to receive all of `PULL_GAS`: the
    /// budget, the 1/64 a call keeps back (EIP-150), and the call's own cost (a cold account access and
    /// the calldata in memory).
    uint256 internal constant PULL_GAS_NEEDED = PULL_GAS + PULL_GAS / 63 + 3_000;
    /// @notice Gas that must be left before the two funds reads of an item (allowance, then balance) for
    /// each to receive all of `VIEW_GAS`.
    uint256 internal constant FUNDS_GAS_NEEDED = 2 * (VIEW_GAS + VIEW_GAS / 63 + 3_000);

    // Selectors, left-aligned in a word as calldata wants them.
    uint256 private constant _ALLOWANCE = 0xdd62ed3e00000000000000000000000000000000000000000000000000000000; // allowance(address,address)
    uint256 private constant _BALANCE_OF = 0x70a0823100000000000000000000000000000000000000000000000000000000; // balanceOf(address)
    uint256 private constant _TRANSFER_FROM = 0x23b872dd00000000000000000000000000000000000000000000000000000000; // transferFrom(address,address,uint256)
    uint256 private constant _LATEST_ROUND_DATA = 0xfeaf968c00000000000000000000000000000000000000000000000000000000; // latestRoundData()

    /// @notice `token.allowance(owner, spender)`; `ok` is false if the call reverts, runs out of its
    /// budget, or answers with fewer than 32 bytes.
    function allowance(address token, address owner, address spender) internal view returns (bool ok, uint256 value) {
        assembly ("memory-safe") {
            let fmp := mload(0x40)
            mstore(0x00, _ALLOWANCE)
            mstore(0x04, and(owner, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(0x24, and(spender, 0xffffffffffffffffffffffffffffffffffffffff))
            // (Yul evaluates arguments right to left: the call first, then its answer's size.)
            ok := staticcall(VIEW_GAS, token, 0x00, 0x44, 0x00, 0x20)
            ok := and(ok, gt(returndatasize(), 0x1f))
            value := mload(0x00)
            mstore(0x40, fmp)
        }
    }

    /// @notice `token.balanceOf(account)`; `ok` as for `allowance`.
    function balanceOf(address token, address account) internal view returns (bool ok, uint256 value) {
        assembly ("memory-safe") {
            mstore(0x00, _BALANCE_OF)
            mstore(0x04, and(account, 0xffffffffffffffffffffffffffffffffffffffff))
            ok := staticcall(VIEW_GAS, token, 0x00, 0x24, 0x00, 0x20)
            ok := and(ok, gt(returndatasize(), 0x1f))
            value := mload(0x00)
        }
    }

    /// @notice The feed's latest answer and its time, read from `latestRoundData()`; `ok` is false if the
    /// call reverts, runs out of its budget, or answers with fewer than the five words it should (the
    /// round ids are not read, so a malformed one cannot make the read revert).
    function latestAnswer(address feed) internal view returns (bool ok, int256 answer, uint256 updatedAt) {
        assembly ("memory-safe") {
            // Scratch memory past the free memory pointer, which is not moved.
            let out := mload(0x40)
            mstore(0x00, _LATEST_ROUND_DATA)
            ok := staticcall(FEED_GAS, feed, 0x00, 0x04, out, 0xa0)
            ok := and(ok, gt(returndatasize(), 0x9f))
            answer := mload(add(out, 0x20))
            updatedAt := mload(add(out, 0x60))
        }
        if (!ok) (answer, updatedAt) = (0, 0);
    }

    /// @notice `token.transferFrom(from, to, amount)` with exactly `PULL_GAS` (the caller checks
    /// `hasGasFor` first where the outcome must not depend on its gas). Succeeds as `SafeERC20` does: the
    /// call succeeds and answers `true`, or answers nothing from a contract (USDT-style tokens).
    /// @param bubble On failure, revert with the token's own revert data (or
    /// `SafeERC20FailedOperation(token)` when it gave none) instead of returning false.
    function transferFrom(address token, address from, address to, uint256 amount, bool bubble)
        internal
        returns (bool ok)
    {
        assembly ("memory-safe") {
            let fmp := mload(0x40)
            mstore(0x00, _TRANSFER_FROM)
            mstore(0x04, and(from, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(0x24, and(to, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(0x44, amount)
            let called := call(PULL_GAS, token, 0, 0x00, 0x64, 0x00, 0x20)
            switch returndatasize()
            case 0 { ok := and(called, gt(extcodesize(token), 0)) }
            default { ok := and(called, and(gt(returndatasize(), 0x1f), eq(mload(0x00), 1))) }
            if and(iszero(ok), bubble) {
                if and(iszero(called), gt(returndatasize(), 0)) {
                    returndatacopy(fmp, 0x00, returndatasize())
                    revert(fmp, returndatasize())
                }
                // SafeERC20FailedOperation(address token): the error OpenZeppelin's SafeERC20 raises.
                mstore(0x00, 0x5274afe7)
                mstore(0x20, and(token, 0xffffffffffffffffffffffffffffffffffffffff))
                revert(0x1c, 0x24)
            }
            mstore(0x40, fmp)
            mstore(0x60, 0)
        }
    }

    /// @notice Whether `gasleft()` is at least `needed` (one of the `*_GAS_NEEDED` constants).
    function hasGasFor(uint256 needed) internal view returns (bool) {
        return gasleft() >= needed;
    }
}
