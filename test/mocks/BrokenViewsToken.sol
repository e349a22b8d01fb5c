// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice A 6-decimal ERC-20 whose `allowance` and `balanceOf` views can be made to revert (a token mid-upgrade,
/// or one that guards its views), while transfers keep working. Plans must then report `TransferFailed` from
/// their funds checks rather than revert or guess. Tests only.
contract BrokenViewsToken is ERC20 {
    /// @notice Which views revert: bit 0 `allowance`, bit 1 `balanceOf`.
    uint8 public brokenViews;

    error ViewsDown();

    constructor() ERC20("Broken Views USD", "bvUSD") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function setBrokenViews(uint8 views) external {
        brokenViews = views;
    }

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    function allowance(address owner, address spender) public view override returns (uint256) {
        if (brokenViews & 1 != 0) revert ViewsDown();
        return super.allowance(owner, spender);
    }

    function balanceOf(address account) public view override returns (uint256) {
        if (brokenViews & 2 != 0) revert ViewsDown();
        return super.balanceOf(account);
    }
}
