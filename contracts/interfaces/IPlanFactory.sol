// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ITermsErrors} from "./ITermsErrors.sol";
import {PlanTerms} from "./PlanTypes.sol";

/// @title The Recur plan factory
/// @notice Creates one plan contract per plan; the caller (the merchant) becomes its owner. Plans are
/// discovered from `PlanCreated` events, and `isPlan` lets a wallet check that a plan came from here.
interface IPlanFactory is ITermsErrors {
    /// @notice A plan was created.
    /// @param plan The new plan contract.
    /// @param owner The merchant who created it and owns it.
    /// @param token The ERC-20 it charges (also in `terms`, indexed for filtering).
    /// @param terms All of its terms, as given and validated.
    event PlanCreated(address indexed plan, address indexed owner, address indexed token, PlanTerms terms);

    /// @notice Creates a plan with `terms`, owned by the caller. Reverts with an `ITermsErrors` error
    /// naming the first term out of bounds.
    /// @return plan The new plan contract.
    function createPlan(PlanTerms calldata terms) external returns (address plan);

    /// @notice Whether `plan` was created by this factory.
    function isPlan(address plan) external view returns (bool);

    /// @notice How many plans this factory created.
    function planCount() external view returns (uint256);

    /// @notice The deployers this factory created and alone uses: one per billing mode.
    function deployers() external view returns (address fixedPlans, address meteredPlans);
}
