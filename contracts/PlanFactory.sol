// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {FixedPricePlan} from "./FixedPricePlan.sol";
import {IPlanFactory} from "./interfaces/IPlanFactory.sol";
import {PlanTerms} from "./interfaces/PlanTypes.sol";

/// @title Recur plan factory
/// @notice Deploys one `FixedPricePlan` per plan (a full deployment, terms as immutables: a plan is
/// created once and charged thousands of times, and immutables keep every charge cheaper than reading
/// clone arguments). No owner, no fees, no upgrade path: the factory has no power over the plans it made.
contract PlanFactory is IPlanFactory {
    /// @inheritdoc IPlanFactory
    mapping(address plan => bool created) public isPlan;
    /// @inheritdoc IPlanFactory
    uint256 public planCount;

    /// @inheritdoc IPlanFactory
    function createPlan(PlanTerms calldata terms) external returns (address plan) {
        // The plan validates its own terms in its constructor; its errors bubble up from here.
        plan = address(new FixedPricePlan(msg.sender, terms));
        isPlan[plan] = true;
        ++planCount;
        emit PlanCreated(plan, msg.sender, terms.token, terms);
    }
}
