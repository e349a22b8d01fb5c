// Standard Webhooks signing and verification (https://www.standardwebhooks.com, through the spec's own
// npm implementation `standardwebhooks`): headers webhook-id, webhook-timestamp (unix seconds) and
// webhook-signature, "v1,<base64 HMAC-SHA256 of `id.timestamp.body`>" per secret, space-separated, so an
// endpoint configured with the old and the new secret verifies with either while a secret rotates.
import { timingSafeEqual } from "node:crypto";

import { Webhook } from "standardwebhooks";

/** A secret as the spec writes it: "whsec_" + base64 of 24 to 64 random bytes. */
export const SECRET_PATTERN = /^whsec_[A-Za-z0-9+/]{32,88}={0,2}$/;

export function isSecret(secret: string): boolean {
  if (!SECRET_PATTERN.test(secret)) return false;
  const bytes = Buffer.from(secret.slice("whsec_".length), "base64").length;
  return bytes >= 24 && bytes <= 64;
}

/** The three headers for one attempt: one v1 signature per secret. */
export function signHeaders(secrets: readonly string[], id: string, timestampSeconds: number, body: string): Record<string, string> {
  const at = new Date(timestampSeconds * 1000);
  return {
    "webhook-id": id,
    "webhook-timestamp": String(timestampSeconds),
    "webhook-signature": secrets.map((s) => new Webhook(s).sign(id, at, body)).join(" "),
  };
}

/** The spec's tolerance on webhook-timestamp, seconds (the library's own). */
export const TOLERANCE_SECONDS = 5 * 60;

export type Verdict = { ok: true } | { ok: false; reason: string };

/** Checks a captured request: the headers present, a v1 signature matching `secret`, and (unless
 * `ignoreAge`) a timestamp within the tolerance of `nowSeconds`. Says why when it fails. */
export function verifyRequest(secret: string, headers: Record<string, string | undefined>, body: string, nowSeconds: number, ignoreAge = false): Verdict {
  const h = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  const id = h["webhook-id"];
  const timestamp = h["webhook-timestamp"];
  const signature = h["webhook-signature"];
  if (id === undefined || id === "") return { ok: false, reason: "webhook-id: missing" };
  if (timestamp === undefined || !/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: `webhook-timestamp: expected unix seconds, got ${JSON.stringify(timestamp ?? null)}` };
  if (signature === undefined || signature === "") return { ok: false, reason: "webhook-signature: missing" };
  const expected = Buffer.from(new Webhook(secret).sign(id, new Date(Number(timestamp) * 1000), body).slice(3), "base64");
  const matches = signature.split(" ").some((part) => {
    const [version, value] = part.split(",");
    if (version !== "v1" || value === undefined) return false;
    const given = Buffer.from(value, "base64");
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  if (!matches) return { ok: false, reason: "webhook-signature: no v1 signature matches this secret and body (wrong secret, or the body was changed: verify the raw bytes)" };
  const age = nowSeconds - Number(timestamp);
  if (!ignoreAge && Math.abs(age) > TOLERANCE_SECONDS) {
    return { ok: false, reason: `webhook-timestamp: ${age} s from now, outside the ${TOLERANCE_SECONDS} s tolerance (the signature itself is valid; --ignore-age to check it alone)` };
  }
  return { ok: true };
}
