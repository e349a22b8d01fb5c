// Test-only signing helpers for the signed sign-up forms: the EIP-712 `Subscribe` and `SubscribeWithRef`
// authorizations a relayer submits (`subscribeBySig`, `subscribeBySigWithRef`) and the token's ERC-2612
// permit (`subscribeWithPermit`, `subscribeWithPermitAndRef`). They only produce signatures; every check
// is the plan's.
import { Signature, type Signer, type TypedDataDomain } from "ethers";
import type { HardhatEthers } from "@nomicfoundation/hardhat-ethers/types";

import type { TestUSDC } from "../../typechain-types/index.js";

/** `Subscribe(address subscriber,uint256 maxAmount,uint256 nonce,uint256 deadline)` (`SUBSCRIBE_TYPEHASH`). */
export const SUBSCRIBE_TYPES = {
  Subscribe: [
    { name: "subscriber", type: "address" },
    { name: "maxAmount", type: "uint256" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
};

/** `SubscribeWithRef(address subscriber,uint256 maxAmount,bytes32 ref,uint256 nonce,uint256 deadline)`
 * (`SUBSCRIBE_WITH_REF_TYPEHASH`). */
export const SUBSCRIBE_WITH_REF_TYPES = {
  SubscribeWithRef: [
    { name: "subscriber", type: "address" },
    { name: "maxAmount", type: "uint256" },
    { name: "ref", type: "bytes32" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
};

/** The EIP-712 type strings the plan's type hashes are the keccak of. */
export const SUBSCRIBE_TYPE = "Subscribe(address subscriber,uint256 maxAmount,uint256 nonce,uint256 deadline)";
export const SUBSCRIBE_WITH_REF_TYPE =
  "SubscribeWithRef(address subscriber,uint256 maxAmount,bytes32 ref,uint256 nonce,uint256 deadline)";

export interface Authorization {
  subscriber: string;
  maxAmount: bigint;
  nonce: bigint;
  deadline: bigint;
}

export interface RefAuthorization extends Authorization {
  ref: string;
}

/** The plan's EIP-712 domain on this chain ("Recur Plan", "1"), with `overrides` applied. */
async function planDomain(ethers: HardhatEthers, planAddress: string, overrides: TypedDataDomain): Promise<TypedDataDomain> {
  const { chainId } = await ethers.provider.getNetwork();
  return { name: "Recur Plan", version: "1", chainId, verifyingContract: planAddress, ...overrides };
}

/** `signer`'s signature of the `Subscribe` authorization `auth` for the plan at `planAddress`. */
export async function signSubscribe(
  ethers: HardhatEthers,
  signer: Signer,
  planAddress: string,
  auth: Authorization,
  domain: TypedDataDomain = {},
): Promise<string> {
  return signer.signTypedData(await planDomain(ethers, planAddress, domain), SUBSCRIBE_TYPES, {
    subscriber: auth.subscriber,
    maxAmount: auth.maxAmount,
    nonce: auth.nonce,
    deadline: auth.deadline,
  });
}

/** `signer`'s signature of the `SubscribeWithRef` authorization `auth` for the plan at `planAddress`. */
export async function signSubscribeWithRef(
  ethers: HardhatEthers,
  signer: Signer,
  planAddress: string,
  auth: RefAuthorization,
  domain: TypedDataDomain = {},
): Promise<string> {
  return signer.signTypedData(await planDomain(ethers, planAddress, domain), SUBSCRIBE_WITH_REF_TYPES, {
    subscriber: auth.subscriber,
    maxAmount: auth.maxAmount,
    ref: auth.ref,
    nonce: auth.nonce,
    deadline: auth.deadline,
  });
}

/** `owner`'s ERC-2612 permit for `spender` to spend `value` of `token` (TestUSDC: "Test USD Coin", "1"),
 * split into v, r, s. */
export async function signPermit(
  ethers: HardhatEthers,
  token: TestUSDC,
  owner: Signer,
  spender: string,
  value: bigint,
  deadline: bigint,
): Promise<{ v: number; r: string; s: string }> {
  const { chainId } = await ethers.provider.getNetwork();
  const ownerAddress = await owner.getAddress();
  const signature = await owner.signTypedData(
    { name: "Test USD Coin", version: "1", chainId, verifyingContract: await token.getAddress() },
    {
      Permit: [
        { name: "owner", type: "address" },
        { name: "spender", type: "address" },
        { name: "value", type: "uint256" },
        { name: "nonce", type: "uint256" },
        { name: "deadline", type: "uint256" },
      ],
    },
    { owner: ownerAddress, spender, value, nonce: await token.nonces(ownerAddress), deadline },
  );
  const { v, r, s } = Signature.from(signature);
  return { v, r, s };
}
