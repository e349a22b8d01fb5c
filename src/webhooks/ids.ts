// The webhook-id of each fact, derived from the fact alone, so that a restart, a replay, a rebuilt store
// or a second keeper on the same chain never gives one fact two ids: a chain event's id hashes (chain
// id, transaction hash, log index, event type); a time-derived event's (chain id, plan, subscriber,
// kind, due time). "evt_" + 32 hex characters (128 bits of SHA-256).
import { createHash } from "node:crypto";

const hashId = (parts: readonly (string | number | bigint)[]): string =>
  "evt_" + createHash("sha256").update(parts.map(String).join("\n")).digest("hex").slice(0, 32);

/** One log's event: the type is part of the hash, since one log could one day yield two types. */
export function chainEventId(chainId: bigint, txHash: string, logIndex: number, type: string): string {
  return hashId(["log", chainId, txHash.toLowerCase(), logIndex, type]);
}

/** A time-derived event (no transaction behind it): the subscription, the kind and the due time it is about. */
export function timeEventId(chainId: bigint, plan: string, subscriber: string, type: string, dueAt: number): string {
  return hashId(["time", chainId, plan.toLowerCase(), subscriber.toLowerCase(), type, dueAt]);
}
