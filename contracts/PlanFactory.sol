// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {FixedPlanDeployer, MeteredPlanDeployer, PlanDeployer} from "./PlanDeployers.sol";
import {IPlanFactory} from "./interfaces/IPlanFactory.sol";
import {BillingMode, PlanTerms} from "./interfaces/PlanTypes.sol";

/// @title Recur plan factory
/// @notice Deploys one plan contract per plan, chosen by the terms' billing mode: a `FixedPricePlan` or a
/// `MeteredPlan`. Each is a full deployment with its terms as immutables (a plan is created once and
/// charged thousands of times, and immutables keep every charge cheaper than reading clone arguments).
/// The two creation codes live in two deployers that the factory creates in its constructor and alone
/// may call. No owner, no fees, no upgrade path: the factory has no power over the plans it made.
contract PlanFactory is IPlanFactory {
    /// @inheritdoc IPlanFactory
    mapping(address plan => bool created) public isPlan;
    /// @inheritdoc IPlanFactory
    uint256 public planCount;

    PlanDeployer private immutable FIXED_DEPLOYER;
    PlanDeployer private immutable METERED_DEPLOYER;

    constructor() {
        FIXED_DEPLOYER = new FixedPlanDeployer();
        METERED_DEPLOYER = new MeteredPlanDeployer();
    }

    /// @inheritdoc IPlanFactory
    function createPlan(PlanTerms calldata terms) external returns (address plan) {
        // The plan validates its own terms in its constructor; its errors bubble up from here.
        PlanDeployer deployer = terms.billingMode == BillingMode.Fixed ? FIXED_DEPLOYER : METERED_DEPLOYER;
        plan = deployer.deploy(msg.sender, terms);
        isPlan[plan] = true;
        ++planCount;
        emit PlanCreated(plan, msg.sender, terms.token, terms);
    }

    /// @inheritdoc IPlanFactory
    function deployers() external view returns (address fixedPlans, address meteredPlans) {
        return (address(FIXED_DEPLOYER), address(METERED_DEPLOYER));
    }
}
