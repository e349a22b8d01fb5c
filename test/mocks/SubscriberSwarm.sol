// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @notice What a swarm member needs of a test token: open minting and `approve`.
interface IOpenMintToken is IERC20 {
    function mint(address to, uint256 amount) external;
}

/// @notice What a swarm member calls on a plan.
interface ISwarmPlan {
    function subscribe(uint256 maxAmount) external returns (uint256);
}

/// @notice One contract subscriber: in its constructor it mints itself `funds` of `token`, approves `plan`
/// for all of them and subscribes with `maxAmount`. Tests only.
contract SwarmMember {
    constructor(IOpenMintToken token, ISwarmPlan plan, uint256 maxAmount, uint256 funds) {
        token.mint(address(this), funds);
        // The test tokens revert on failure; the returned bool carries nothing more.
        token.approve(address(plan), funds);
        plan.subscribe(maxAmount);
    }
}

/// @notice Many subscribers in one transaction, so that an end-to-end test can give one plan hundreds of
/// them (a stranger's plan that costs the keeper's views a lot of gas per subscriber, say) in a few
/// blocks. Open to anyone. Tests only.
contract SubscriberSwarm {
    event Joined(address indexed plan, address member);

    /// @notice Creates `count` members subscribed to `plan`, each holding `funds` of `token`.
    function join(IOpenMintToken token, ISwarmPlan plan, uint256 maxAmount, uint256 funds, uint256 count) external {
        for (uint256 i = 0; i < count; i++) {
            SwarmMember member = new SwarmMember(token, plan, maxAmount, funds);
            emit Joined(address(plan), address(member));
        }
    }
}
