// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice A 6-decimal ERC-20 that burns 1% of every transfer (rounded down): the sender's balance drops by
/// the full value, the recipient receives the value minus the fee, and the total supply drops by the fee.
/// Minting is free of fees. Recur does NOT support such tokens (docs/SECURITY.md); this mock shows what
/// happens if a merchant uses one anyway. Tests only.
contract FeeOnTransferToken is ERC20 {
    /// @notice The fee burned on each transfer, in basis points of the value.
    uint256 public constant FEE_BPS = 100;

    constructor() ERC20("Fee On Transfer USD", "feeUSD") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @dev Transfers (neither a mint nor a burn) burn `value × FEE_BPS / 10_000` from the sender and move
    /// the rest: the Transfer events are (from → 0, fee) and (from → to, value − fee).
    function _update(address from, address to, uint256 value) internal override {
        if (from == address(0) || to == address(0)) {
            super._update(from, to, value);
            return;
        }
        uint256 fee = value * FEE_BPS / 10_000;
        super._update(from, address(0), fee);
        super._update(from, to, value - fee);
    }
}
