// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";

/// @notice A plain 6-decimal ERC-20 with ERC-2612 permit and open minting. Tests and the demo only.
contract TestUSDC is ERC20, ERC20Permit {
    constructor() ERC20("Test USD Coin", "tUSDC") ERC20Permit("Test USD Coin") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function decimals() public pure override returns (uint8) {
        return 6;
    }
}
