// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Pausable} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Pausable.sol";

/// @notice A 6-decimal ERC-20 whose owner can pause every transfer (as USDC's and USDT's admins can): while
/// paused, `transfer`, `transferFrom` and `mint` revert `EnforcedPause()`; views (balances, allowances)
/// keep answering and `approve` still works. Tests only.
contract PausableToken is ERC20, ERC20Pausable, Ownable {
    constructor() ERC20("Pausable USD", "pUSD") Ownable(msg.sender) {}

    /// @notice Open minting (reverts while paused, like every balance change).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Stops every balance change until `unpause`.
    function pause() external onlyOwner {
        _pause();
    }

    function unpause() external onlyOwner {
        _unpause();
    }

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Pausable) {
        super._update(from, to, value);
    }
}
