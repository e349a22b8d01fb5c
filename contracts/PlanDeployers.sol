// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {FixedPricePlan} from "./FixedPricePlan.sol";
import {MeteredPlan} from "./MeteredPlan.sol";
import {PlanTerms} from "./interfaces/PlanTypes.sol";

/// @title Base of the per-mode plan deployers
/// @notice Each billing mode's plan contract is deployed by its own deployer, which holds that mode's
/// creation code: together they would not fit in one contract (24 KB, EIP-170). A deployer is created by
/// the `PlanFactory` and deploys only for it.
abstract contract PlanDeployer {
    /// @notice `caller` is not the factory that created this deployer.
    error OnlyFactory(address caller);

    /// @notice The factory this deployer serves.
    address public immutable FACTORY = msg.sender;

    /// @notice Deploys a plan owned by `owner` with `terms` (the plan checks its terms itself).
    function deploy(address owner, PlanTerms calldata terms) external returns (address plan) {
        if (msg.sender != FACTORY) revert OnlyFactory(msg.sender);
        return _deploy(owner, terms);
    }

    function _deploy(address owner, PlanTerms calldata terms) internal virtual returns (address);
}

/// @notice Deploys `FixedPricePlan`s.
contract FixedPlanDeployer is PlanDeployer {
    function _deploy(address owner, PlanTerms calldata terms) internal override returns (address) {
        return address(new FixedPricePlan(owner, terms));
    }
}

/// @notice Deploys `MeteredPlan`s.
contract MeteredPlanDeployer is PlanDeployer {
    function _deploy(address owner, PlanTerms calldata terms) internal override returns (address) {
        return address(new MeteredPlan(owner, terms));
    }
}
