// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice A 0-decimal ERC-20 (one base unit is one whole token, as some points and ticket tokens are),
/// with open minting. Tests only.
contract ZeroDecimalsToken is ERC20 {
    constructor() ERC20("Whole Unit Token", "WHOLE") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function decimals() public pure override returns (uint8) {
        return 0;
    }
}
