// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice A plain 18-decimal ERC-20 with open minting (an ether-like token for USD-priced plans). Tests only.
contract TestToken18 is ERC20 {
    constructor() ERC20("Test Wrapped Ether", "tWETH") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }
}
