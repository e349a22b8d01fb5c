// The webhooks configuration file (RECUR_WEBHOOKS=path, --webhooks path): JSON, read and checked once at
// start into a frozen object; every bad value stops the process with one line naming it and what was
// expected. Secrets never appear in a message or a log line.
//   {
//     "endpoints": [
//       { "url": "https://merchant.example/hooks/recur", "secrets": ["whsec_…", "whsec_… (the next one)"],
//         "plans": ["0x…"], "events": ["charge.failed", "subscription.past_due"], "name": "billing" }
//     ],
//     "upcomingLead": "3d", "trialWillEndLead": "3d", "pastDueAfter": "1h", "timeout": "15s",
//     "retrySchedule": ["5s", "5m", "30m", "2h", "5h", "10h", "10h", "10h", "10h", "10h", "14h"],
//     "concurrency": 8, "perEndpoint": 2, "interval": "1s",
//     "checkoutUrl": "https://pay.example/checkout.html", "portalUrl": "https://pay.example/manage.html"
//   }
import { readFileSync } from "node:fs";

import { getAddress, isAddress } from "ethers";

import { configError } from "../errors.ts";
import { EVENT_TYPES } from "./events.ts";
import type { EventType } from "./events.ts";
import { DEFAULT_RETRY_SCHEDULE_MS } from "./schedule.ts";
import { isSecret } from "./sign.ts";

export interface EndpointConfig {
  readonly url: string;
  /** What log lines call it: its `name`, else its host and path (never its query or credentials). */
  readonly name: string;
  /** Every secret it is signed with (one signature each): the old and the new one while rotating. */
  readonly secrets: readonly string[];
  /** Only these plans (lowercase); null: every plan of the factory. */
  readonly plans: ReadonlySet<string> | null;
  /** Only these event types; null: every type. */
  readonly events: ReadonlySet<EventType> | null;
}

export interface WebhooksConfig {
  readonly file: string;
  readonly endpoints: readonly EndpointConfig[];
  /** charge.upcoming this long before each due charge (seconds; 0: never sent). */
  readonly upcomingLeadSeconds: number;
  /** subscription.trial_will_end this long before a trial ends (seconds; 0: never sent). */
  readonly trialWillEndLeadSeconds: number;
  /** subscription.past_due once a charge has been due and unpaid this long (seconds). */
  readonly pastDueAfterSeconds: number;
  readonly timeoutMs: number;
  /** Delays (ms) before the 2nd, 3rd, … attempt. */
  readonly retryScheduleMs: readonly number[];
  /** Deliveries in flight at once, over every endpoint. */
  readonly concurrency: number;
  /** Deliveries in flight at once to one endpoint (a slow one holds no more than this). */
  readonly perEndpoint: number;
  /** How often the daemon's worker looks for work (ms). */
  readonly intervalMs: number;
  readonly checkoutUrl: string | null;
  readonly portalUrl: string | null;
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "250ms", "15s", "10m", "6h", "3d" → ms; null when unreadable. */
export function parseDurationMs(raw: unknown): number | null {
  if (typeof raw !== "string") return null;
  const match = /^(\d{1,9})(ms|s|m|h|d)$/.exec(raw.trim());
  return match === null ? null : Number(match[1]) * UNITS[match[2]!]!;
}

export function loadWebhooksConfig(variable: string, file: string): WebhooksConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    throw configError(variable, "a readable webhooks config file (JSON)", file);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw configError(variable, "a JSON webhooks config file", `${file}: ${(error as Error).message.split("\n")[0]}`);
  }
  return parseWebhooksConfig(`${variable} ${file}`, file, json);
}

const httpUrl = (raw: unknown): raw is string => typeof raw === "string" && /^https?:\/\/[^\s]+$/.test(raw) && URL.canParse(raw);

function durationOf(where: string, key: string, raw: unknown, fallbackMs: number, minMs: number, maxMs: number): number {
  if (raw === undefined) return fallbackMs;
  const ms = parseDurationMs(raw);
  if (ms === null || ms < minMs || ms > maxMs) throw configError(`${where}: ${key}`, `a duration from ${minMs} ms to ${maxMs / 86_400_000} d, e.g. "15s", "3d"`, JSON.stringify(raw));
  return ms;
}

function integerOf(where: string, key: string, raw: unknown, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  if (typeof raw !== "number" || !Number.isInteger(raw) || raw < min || raw > max) throw configError(`${where}: ${key}`, `an integer in [${min}, ${max}]`, JSON.stringify(raw));
  return raw;
}

function endpointOf(where: string, raw: unknown, i: number): EndpointConfig {
  const at = `${where}: endpoints[${i}]`;
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw configError(at, "an object with url and secrets", JSON.stringify(raw));
  const e = raw as Record<string, unknown>;
  for (const key of Object.keys(e)) {
    if (!["url", "secret", "secrets", "plans", "events", "name"].includes(key)) throw configError(`${at}.${key}`, "one of url, secrets, plans, events, name", key);
  }
  if (!httpUrl(e.url)) throw configError(`${at}.url`, "an http(s) URL", e.url === undefined ? undefined : JSON.stringify(e.url));
  const secrets = e.secrets ?? (e.secret === undefined ? undefined : [e.secret]);
  if (!Array.isArray(secrets) || secrets.length === 0 || secrets.length > 8) throw configError(`${at}.secrets`, 'an array of 1 to 8 secrets "whsec_…"', secrets === undefined ? undefined : "<redacted>");
  secrets.forEach((s, j) => {
    if (typeof s !== "string" || !isSecret(s)) {
      throw configError(`${at}.secrets[${j}]`, 'a Standard Webhooks secret: "whsec_" + base64 of 24 to 64 bytes', typeof s === "string" ? `<redacted: ${s.length} characters>` : typeof s);
    }
  });
  let plans: Set<string> | null = null;
  if (e.plans !== undefined) {
    if (!Array.isArray(e.plans) || e.plans.length === 0) throw configError(`${at}.plans`, "a non-empty array of plan addresses (leave it out for every plan)", JSON.stringify(e.plans));
    plans = new Set();
    for (const p of e.plans) {
      if (typeof p !== "string" || !/^0x[0-9a-fA-F]{40}$/.test(p) || !isAddress(p)) throw configError(`${at}.plans`, "0x-prefixed 20-byte addresses", JSON.stringify(p));
      plans.add(getAddress(p).toLowerCase());
    }
  }
  let events: Set<EventType> | null = null;
  if (e.events !== undefined) {
    if (!Array.isArray(e.events) || e.events.length === 0) throw configError(`${at}.events`, "a non-empty array of event types (leave it out for every type)", JSON.stringify(e.events));
    events = new Set();
    for (const t of e.events) {
      if (typeof t !== "string" || !(EVENT_TYPES as readonly string[]).includes(t)) throw configError(`${at}.events`, `event types among ${EVENT_TYPES.join(", ")}`, JSON.stringify(t));
      events.add(t as EventType);
    }
  }
  if (e.name !== undefined && (typeof e.name !== "string" || !/^[\w.:-]{1,64}$/.test(e.name))) throw configError(`${at}.name`, "1 to 64 letters, digits, '.', ':', '-' or '_'", JSON.stringify(e.name));
  const url = new URL(e.url);
  const name = typeof e.name === "string" ? e.name : `${url.host}${url.pathname}`;
  return Object.freeze({ url: e.url, name, secrets: Object.freeze([...secrets] as string[]), plans, events });
}

export function parseWebhooksConfig(where: string, file: string, json: unknown): WebhooksConfig {
  if (json === null || typeof json !== "object" || Array.isArray(json)) throw configError(where, "a JSON object with an endpoints array", typeof json);
  const c = json as Record<string, unknown>;
  const known = ["endpoints", "upcomingLead", "trialWillEndLead", "pastDueAfter", "timeout", "retrySchedule", "concurrency", "perEndpoint", "interval", "checkoutUrl", "portalUrl"];
  for (const key of Object.keys(c)) if (!known.includes(key)) throw configError(`${where}: ${key}`, `one of ${known.join(", ")}`, key);
  if (!Array.isArray(c.endpoints) || c.endpoints.length > 100) throw configError(`${where}: endpoints`, "an array of at most 100 endpoints", JSON.stringify(c.endpoints));
  const endpoints = c.endpoints.map((e, i) => endpointOf(where, e, i));
  const urls = new Set<string>();
  for (const e of endpoints) {
    if (urls.has(e.url)) throw configError(`${where}: endpoints`, "each url once (give one endpoint several secrets instead)", e.name);
    urls.add(e.url);
  }
  let retryScheduleMs = DEFAULT_RETRY_SCHEDULE_MS;
  if (c.retrySchedule !== undefined) {
    if (!Array.isArray(c.retrySchedule) || c.retrySchedule.length === 0 || c.retrySchedule.length > 30) {
      throw configError(`${where}: retrySchedule`, 'an array of 1 to 30 durations, e.g. ["5s", "5m", "30m"]', JSON.stringify(c.retrySchedule));
    }
    retryScheduleMs = Object.freeze(c.retrySchedule.map((d, i) => durationOf(where, `retrySchedule[${i}]`, d, 0, 1, 7 * 86_400_000)));
  }
  for (const key of ["checkoutUrl", "portalUrl"] as const) {
    if (c[key] !== undefined && !httpUrl(c[key])) throw configError(`${where}: ${key}`, "an http(s) URL", JSON.stringify(c[key]));
  }
  return Object.freeze({
    file,
    endpoints: Object.freeze(endpoints),
    upcomingLeadSeconds: durationOf(where, "upcomingLead", c.upcomingLead, 3 * 86_400_000, 0, 30 * 86_400_000) / 1000,
    trialWillEndLeadSeconds: durationOf(where, "trialWillEndLead", c.trialWillEndLead, 3 * 86_400_000, 0, 30 * 86_400_000) / 1000,
    pastDueAfterSeconds: durationOf(where, "pastDueAfter", c.pastDueAfter, 3_600_000, 0, 30 * 86_400_000) / 1000,
    timeoutMs: durationOf(where, "timeout", c.timeout, 15_000, 100, 120_000),
    retryScheduleMs,
    concurrency: integerOf(where, "concurrency", c.concurrency, 8, 1, 256),
    perEndpoint: integerOf(where, "perEndpoint", c.perEndpoint, 2, 1, 64),
    intervalMs: durationOf(where, "interval", c.interval, 1000, 10, 3_600_000),
    checkoutUrl: typeof c.checkoutUrl === "string" ? c.checkoutUrl : null,
    portalUrl: typeof c.portalUrl === "string" ? c.portalUrl : null,
  });
}
