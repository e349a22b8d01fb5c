// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice A 6-decimal ERC-20 with open minting that works normally until a test switches how it answers
/// `allowance`, `balanceOf` or `transferFrom` (each on its own): with nothing, with one byte, with 31 bytes,
/// with a revert, by burning every unit of gas it is given, or with a huge payload (`hugeBytes` long, the
/// true answer in its first word). The factory is permissionless, so anyone can create a plan on such a
/// token: the plan's views must still answer (`TransferFailed`) and its batches must still record the item
/// and go on. `Forge` moves the tokens as asked, then emits forged copies of a plan's `Charged` and
/// `ChargeFailed` events from the token: whoever reads a charge's receipt must count only the plan's own
/// logs. `decimals` always answers 6, so a USD-priced plan can be created on it. Open to anyone.
/// Tests only.
contract HostileToken is ERC20 {
    /// @notice How a function answers. `Normal` is the ERC-20's own answer. A hostile `transferFrom` moves
    /// nothing, except `Huge`, which moves the tokens and then answers `true` in its first word, and `Forge`
    /// (for `transferFrom` only), which moves them, answers `true` and emits forged plan events.
    enum Behaviour {
        Normal,
        Empty,
        OneByte,
        ShortWord,
        Revert,
        BurnGas,
        Huge,
        Forge
    }

    /// @notice A forgery of `IPlanCore.Charged`, same signature, emitted by the token.
    event Charged(address indexed subscriber, uint256 periodIndex, uint256 amount, uint256 nextChargeAt);
    /// @notice A forgery of `IPlan.ChargeFailed` (the reason as its uint8 code), emitted by the token.
    event ChargeFailed(address indexed subscriber, uint8 reason);

    Behaviour public allowanceBehaviour;
    Behaviour public balanceOfBehaviour;
    Behaviour public transferFromBehaviour;
    /// @notice Length in bytes of a `Huge` answer (the memory it needs is paid by the token, from the gas it
    /// was given: above about 140 KB it no longer fits a plan's view budget of 50,000).
    uint256 public hugeBytes = 1_000_000;

    error TokenDown();

    constructor() ERC20("Hostile USD", "hUSD") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Sets how `allowance`, `balanceOf` and `transferFrom` answer from now on.
    function setBehaviours(Behaviour allowance_, Behaviour balanceOf_, Behaviour transferFrom_) external {
        allowanceBehaviour = allowance_;
        balanceOfBehaviour = balanceOf_;
        transferFromBehaviour = transferFrom_;
    }

    /// @notice Sets the length of a `Huge` answer.
    function setHugeBytes(uint256 length) external {
        hugeBytes = length;
    }

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    function allowance(address owner, address spender) public view override returns (uint256) {
        uint256 value = super.allowance(owner, spender);
        _answer(allowanceBehaviour, value);
        return value;
    }

    function balanceOf(address account) public view override returns (uint256) {
        uint256 value = super.balanceOf(account);
        _answer(balanceOfBehaviour, value);
        return value;
    }

    function transferFrom(address from, address to, uint256 value) public override returns (bool) {
        Behaviour behaviour = transferFromBehaviour;
        if (behaviour == Behaviour.Normal || behaviour == Behaviour.Huge || behaviour == Behaviour.Forge) {
            super.transferFrom(from, to, value);
        }
        if (behaviour == Behaviour.Forge) {
            // Two forged charges of made-up subscribers and a forged failure of the real one.
            emit Charged(address(uint160(0xF0F0)), 7, value, block.timestamp);
            emit Charged(address(uint160(0xF0F1)), 7, value, block.timestamp);
            emit ChargeFailed(from, 4);
            return true;
        }
        _answer(behaviour, 1);
        return true;
    }

    /// @dev Returns from the current call as `behaviour` says, with `value` as the true answer; returns
    /// normally (the caller then answers `value`) when the behaviour is `Normal`.
    function _answer(Behaviour behaviour, uint256 value) private view {
        if (behaviour == Behaviour.Normal) return;
        if (behaviour == Behaviour.Revert) revert TokenDown();
        uint256 huge = hugeBytes;
        assembly ("memory-safe") {
            switch behaviour
            case 1 { return(0, 0) } // Empty
            case 2 {
                // OneByte: the answer's last byte only
                mstore(0, shl(248, and(value, 0xff)))
                return(0, 1)
            }
            case 3 {
                // ShortWord: the answer's first 31 bytes
                mstore(0, value)
                return(0, 31)
            }
            case 5 { for {} 1 {} {} } // BurnGas
            case 6 {
                // Huge: the answer, then zeros up to `huge` bytes (memory the token pays for)
                mstore(0, value)
                return(0, huge)
            }
        }
    }
}
