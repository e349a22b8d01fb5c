// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Subscription} from "../interfaces/PlanTypes.sol";

/// @title One subscription in one storage word
/// @notice A plan stores each subscription as a single uint256 laid out exactly like the `Subscription`
/// struct (low bits first): maxAmount [0, 96), nextChargeAt [96, 136), startedAt [136, 176),
/// pausedAt [176, 216), periodsPaid [216, 248), flags [248, 256).
/// Why not the struct itself: the charge path reads the word once, checks it, and writes it back with
/// one addition; with a memory struct the compiler unpacks and repacks all six fields (measured with
/// `npm run bench:gas`: about 1,400 gas more per charge).
library PackedSubscription {
    uint256 internal constant NEXT_CHARGE_AT_SHIFT = 96;
    uint256 internal constant STARTED_AT_SHIFT = 136;
    uint256 internal constant PAUSED_AT_SHIFT = 176;
    uint256 internal constant PERIODS_PAID_SHIFT = 216;
    uint256 internal constant FLAGS_SHIFT = 248;

    uint256 private constant _MASK_96 = type(uint96).max;
    uint256 private constant _MASK_40 = type(uint40).max;
    uint256 private constant _MASK_32 = type(uint32).max;

    /// @notice The subscription's cap on a single charge (token base units).
    function maxAmount(uint256 word) internal pure returns (uint256) {
        return word & _MASK_96;
    }

    /// @notice When the next period is due (unix seconds).
    function nextChargeAt(uint256 word) internal pure returns (uint256) {
        return (word >> NEXT_CHARGE_AT_SHIFT) & _MASK_40;
    }

    /// @notice When the current subscription started; 0 if never subscribed.
    function startedAt(uint256 word) internal pure returns (uint256) {
        return (word >> STARTED_AT_SHIFT) & _MASK_40;
    }

    /// @notice When the subscription was paused; 0 when not paused.
    function pausedAt(uint256 word) internal pure returns (uint256) {
        return (word >> PAUSED_AT_SHIFT) & _MASK_40;
    }

    /// @notice Periods paid by this subscriber on this plan.
    function periodsPaid(uint256 word) internal pure returns (uint256) {
        return (word >> PERIODS_PAID_SHIFT) & _MASK_32;
    }

    /// @notice The flag bits (see `BillingMath.FLAG_*`).
    function flags(uint256 word) internal pure returns (uint256) {
        return word >> FLAGS_SHIFT;
    }

    /// @notice The word as a struct (for views and the colder paths).
    function unpack(uint256 word) internal pure returns (Subscription memory sub) {
        sub.maxAmount = uint96(word);
        sub.nextChargeAt = uint40(word >> NEXT_CHARGE_AT_SHIFT);
        sub.startedAt = uint40(word >> STARTED_AT_SHIFT);
        sub.pausedAt = uint40(word >> PAUSED_AT_SHIFT);
        sub.periodsPaid = uint32(word >> PERIODS_PAID_SHIFT);
        sub.flags = uint8(word >> FLAGS_SHIFT);
    }

    /// @notice The struct as a word.
    function pack(Subscription memory sub) internal pure returns (uint256) {
        return uint256(sub.maxAmount) | (uint256(sub.nextChargeAt) << NEXT_CHARGE_AT_SHIFT)
            | (uint256(sub.startedAt) << STARTED_AT_SHIFT) | (uint256(sub.pausedAt) << PAUSED_AT_SHIFT)
            | (uint256(sub.periodsPaid) << PERIODS_PAID_SHIFT) | (uint256(sub.flags) << FLAGS_SHIFT);
    }
}
