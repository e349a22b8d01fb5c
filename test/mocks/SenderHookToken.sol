// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";

/// @notice What an account registered with `SenderHookToken` implements (as ERC-777's `tokensToSend`).
interface ISenderHook {
    function tokensToSend(address operator, address from, address to, uint256 amount) external;
}

/// @notice A 6-decimal ERC-20 with open minting that, as ERC-777 does, calls the sending account before
/// every `transferFrom` that moves its tokens, if that account registered a hook (`setSenderHook`, called by
/// the account itself, as an ERC-1820 registration is). The hook runs with all the gas the token has left,
/// and its revert is bubbled as the transfer's own: revert data and all, copied into the token's memory
/// first. So a subscriber's hook can make the token run out of gas inside a plan's pull. It records the gas
/// each pull began with (`gasAtPull`). Tests only.
contract SenderHookToken is ERC20 {
    /// @notice Whether `account` registered a hook the token calls before moving its tokens.
    mapping(address account => bool registered) public hasSenderHook;
    /// @notice The gas left when the last `transferFrom` from `from` that went through began: a plan that
    /// gives each pull a fixed budget leaves the same figure here at every gas limit of its caller.
    mapping(address from => uint256 gas) public gasAtPull;

    constructor() ERC20("Sender Hook USD", "shUSD") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Registers (or removes) the caller's hook.
    function setSenderHook(bool registered) external {
        hasSenderHook[msg.sender] = registered;
    }

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @dev The sender's hook first (it may refuse the transfer by reverting), then the standard transfer.
    function transferFrom(address from, address to, uint256 value) public override returns (bool) {
        gasAtPull[from] = gasleft();
        if (hasSenderHook[from]) {
            (bool ok, bytes memory returnData) =
                from.call(abi.encodeCall(ISenderHook.tokensToSend, (msg.sender, from, to, value)));
            Address.verifyCallResult(ok, returnData);
        }
        return super.transferFrom(from, to, value);
    }
}
