// `recur webhooks list|test|replay|verify|deliver`: the webhook endpoints and their deliveries, a signed
// test event, re-queueing past events (dead ones included, same ids), checking a captured request
// against a secret, and one delivery round for cron. The work lives in src/webhooks/.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";

import { configError } from "../../errors.ts";
import type { WebhookEventRow } from "../../index/store.ts";
import { parseTime } from "../../reports/format.ts";
import type { EndpointConfig, WebhooksConfig } from "../../webhooks/config.ts";
import { isoSeconds } from "../../webhooks/events.ts";
import { isSecret, verifyRequest } from "../../webhooks/sign.ts";
import { clearGone, initCursors, isGone, post, webhookRound } from "../../webhooks/worker.ts";
import type { Command, Context } from "../command.ts";
import { option } from "./reporting.ts";

const hooks = (ctx: Context): WebhooksConfig => ctx.config.webhooks!;

/** `--endpoint URL`: the configured endpoints, or the one it names. */
function endpointsOf(ctx: Context): EndpointConfig[] {
  const wanted = option(ctx, "endpoint");
  const all = hooks(ctx).endpoints;
  if (wanted === null) return [...all];
  const found = all.filter((e) => e.url === wanted || e.name === wanted);
  if (found.length === 0) throw configError("--endpoint", `the url or name of an endpoint in ${hooks(ctx).file}`, wanted);
  return found;
}

export const webhooksListCommand: Command = {
  spec: { name: "webhooks list", options: {}, factory: "optional", signer: null, csv: true, rpc: "none", webhooks: "required" },
  summary: "the webhook endpoints, what each receives, and its pending, delivered and dead deliveries",
  synopsis: "recur webhooks list [--json | --csv]",
  help: [],
  examples: ["RECUR_WEBHOOKS=webhooks.json recur webhooks list"],
  async run(ctx) {
    const store = ctx.store();
    const counts = store.webhookCounts();
    const endpoints = hooks(ctx).endpoints.map((e) => {
      const c = counts.get(e.url) ?? {};
      return {
        name: e.name, url: e.url, state: isGone(store, e.url) ? "gone (410)" : "active", secrets: e.secrets.length,
        plans: e.plans === null ? "all" : [...e.plans].join(" "), events: e.events === null ? "all" : [...e.events].join(" "),
        pending: c.pending ?? 0, delivered: c.delivered ?? 0, dead: c.dead ?? 0,
      };
    });
    ctx.print({
      json: { endpoints },
      columns: [{ key: "name" }, { key: "state" }, { key: "secrets", right: true }, { key: "pending", right: true }, { key: "delivered", right: true }, { key: "dead", right: true }, { key: "plans" }, { key: "events" }, ...(ctx.config.csv ? [{ key: "url" }] : [])],
      rows: endpoints,
      head: [`${endpoints.length} endpoint(s) in ${hooks(ctx).file}`],
    });
    return 0;
  },
};

export const webhooksTestCommand: Command = {
  spec: { name: "webhooks test", options: { endpoint: { type: "string" } }, factory: "optional", signer: null, csv: false, rpc: "none", webhooks: "required" },
  summary: "send a signed webhook.test event to each endpoint (or one) now, and show what it answered (exit 0 all 2xx, 2 otherwise)",
  synopsis: "recur webhooks test [--endpoint URL|NAME] [--json]",
  help: [{ flag: "--endpoint URL", text: "only this endpoint (its url or name)" }],
  examples: ["recur webhooks test --endpoint https://merchant.example/hooks/recur"],
  async run(ctx) {
    const now = Date.now();
    const id = `evt_test_${randomBytes(12).toString("hex")}`;
    const body = JSON.stringify({ type: "webhook.test", timestamp: isoSeconds(Math.floor(now / 1000)), data: { message: "a test event from recur webhooks test" } });
    const results = [];
    for (const e of endpointsOf(ctx)) {
      const r = await post(e, id, body, hooks(ctx).timeoutMs, now, ctx.io.signal);
      results.push({ endpoint: e.name, id, outcome: r.outcome, status: r.status, error: r.error });
    }
    ctx.print({ json: { results }, columns: [{ key: "endpoint" }, { key: "outcome" }, { key: "status", right: true }, { key: "error" }], rows: results, head: [`webhook.test ${id}`] });
    return results.every((r) => r.outcome === "delivered") ? 0 : 2;
  },
};

export const webhooksReplayCommand: Command = {
  spec: { name: "webhooks replay", options: { since: { type: "string" }, id: { type: "string" }, endpoint: { type: "string" } }, factory: "optional", signer: null, csv: false, rpc: "none", webhooks: "required" },
  summary: "queue past events again (delivered and dead ones too), with their ids; the worker sends them",
  synopsis: "recur webhooks replay (--since 2027-01-01 | --id evt_…) [--endpoint URL|NAME] [--json]",
  help: [
    { flag: "--since D", text: "every event that happened (chain time) from D: YYYY-MM-DD (UTC) or ISO-8601" },
    { flag: "--id evt_…", text: "this one event" },
    { flag: "--endpoint URL", text: "only to this endpoint (default: every endpoint that wants the event); a stopped (410) one starts again" },
  ],
  examples: ["recur webhooks replay --since 2027-01-01T00:00:00Z", "recur webhooks replay --id evt_3f… --endpoint billing"],
  async run(ctx) {
    const since = option(ctx, "since");
    const id = option(ctx, "id");
    if ((since === null) === (id === null)) throw configError("arguments", "one of --since and --id", since === null ? "neither" : "both");
    const store = ctx.store();
    let events: WebhookEventRow[];
    if (id !== null) {
      if (!/^evt_[0-9a-f]{32}$/.test(id)) throw configError("--id", "an event id evt_ + 32 hex characters", id);
      const found = store.webhookEvent(id);
      if (found === undefined) throw configError("--id", "the id of an event in the outbox", id);
      events = [found];
    } else {
      events = store.webhookEventsSince(parseTime("--since", since!));
    }
    const endpoints = endpointsOf(ctx);
    initCursors(store, endpoints);
    const now = Date.now();
    let queued = 0;
    store.transaction(() => {
      for (const event of events) {
        for (const e of endpoints) {
          if ((e.plans !== null && !e.plans.has(event.plan)) || (e.events !== null && !e.events.has(event.type as never))) continue;
          store.queueDelivery(event.seq, e.url, now, true);
          queued++;
        }
      }
    });
    for (const e of endpoints) if (isGone(store, e.url)) clearGone(store, e.url);
    ctx.print({ json: { events: events.length, queued }, head: [`${events.length} event(s), ${queued} deliver(ies) queued; the worker (recur run, or recur webhooks deliver --once) sends them`] });
    return 0;
  },
};

/** Headers from a file: a JSON object, or "name: value" lines (as captured by curl -D or a proxy). */
function readHeaders(file: string): Record<string, string> {
  const text = readFileSync(file, "utf8");
  try {
    const json = JSON.parse(text) as unknown;
    if (json !== null && typeof json === "object" && !Array.isArray(json)) return Object.fromEntries(Object.entries(json).map(([k, v]) => [k.toLowerCase(), String(v)]));
  } catch {
    // not JSON: header lines
  }
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const at = line.indexOf(":");
    if (at > 0) out[line.slice(0, at).trim().toLowerCase()] = line.slice(at + 1).trim();
  }
  return out;
}

export const webhooksVerifyCommand: Command = {
  spec: {
    name: "webhooks verify",
    options: { secret: { type: "string" }, headers: { type: "string" }, id: { type: "string" }, timestamp: { type: "string" }, signature: { type: "string" }, body: { type: "string" }, "ignore-age": { type: "boolean" } },
    factory: "optional", signer: null, csv: false, rpc: "none",
  },
  summary: "check a captured webhook request against a secret: exit 0 valid, 1 invalid (with the reason)",
  synopsis: "recur webhooks verify --secret whsec_… (--headers FILE | --id … --timestamp … --signature …) --body FILE [--ignore-age]",
  help: [
    { flag: "--secret whsec_…", text: "the endpoint's secret" },
    { flag: "--headers FILE", text: "the request's headers: a JSON object or 'name: value' lines" },
    { flag: "--id/--timestamp/--signature", text: "or the three webhook-* header values themselves" },
    { flag: "--body FILE", text: "the raw request body, byte for byte" },
    { flag: "--ignore-age", text: "check the signature only, not the 5-minute timestamp tolerance" },
  ],
  examples: ["recur webhooks verify --secret whsec_… --headers captured.headers --body captured.json"],
  async run(ctx) {
    const secret = option(ctx, "secret");
    if (secret === null || !isSecret(secret)) throw configError("--secret", 'a Standard Webhooks secret "whsec_…"', secret === null ? undefined : "<redacted>");
    const bodyFile = option(ctx, "body");
    if (bodyFile === null) throw configError("--body", "the file holding the raw request body", undefined);
    let body: string;
    let headers: Record<string, string | undefined>;
    try {
      body = readFileSync(bodyFile, "utf8");
      const headersFile = option(ctx, "headers");
      headers = headersFile !== null ? readHeaders(headersFile) : { "webhook-id": option(ctx, "id") ?? undefined, "webhook-timestamp": option(ctx, "timestamp") ?? undefined, "webhook-signature": option(ctx, "signature") ?? undefined };
    } catch (error) {
      throw configError("--body / --headers", "readable files", (error as Error).message.split("\n")[0]);
    }
    const verdict = verifyRequest(secret, headers, body, Math.floor(Date.now() / 1000), ctx.values["ignore-age"] === true);
    if (ctx.config.json) ctx.io.stdout.write(JSON.stringify({ valid: verdict.ok, id: headers["webhook-id"] ?? null, reason: verdict.ok ? null : verdict.reason }) + "\n");
    else if (verdict.ok) ctx.io.stdout.write(`valid: ${headers["webhook-id"]} is signed with this secret\n`);
    if (!verdict.ok) ctx.err(`invalid: ${verdict.reason}`);
    return verdict.ok ? 0 : 1;
  },
};

export const webhooksDeliverCommand: Command = {
  spec: { name: "webhooks deliver", options: {}, factory: "required", signer: null, csv: false, webhooks: "required" },
  summary: "for cron: index, derive the time events, send every delivery due now, and exit",
  synopsis: "recur webhooks deliver --once [--json]",
  help: [{ flag: "--once", text: "required: one round, then exit (the daemon, recur run, delivers continuously)" }],
  examples: ["* * * * * recur webhooks deliver --once >> /var/log/recur-webhooks.log"],
  async run(ctx) {
    if (!ctx.config.once) throw configError("arguments", "--once (the daemon, recur run, delivers continuously)", "no --once");
    const store = ctx.store();
    initCursors(store, hooks(ctx).endpoints);
    await ctx.catchUp();
    const r = await webhookRound({ store, rpc: ctx.rpc, log: ctx.log, config: hooks(ctx), chainId: ctx.config.chainId, clock: () => Date.now(), signal: ctx.io.signal });
    ctx.print({ json: r, head: [`derived ${r.derived} time event(s); queued ${r.queued}; attempted ${r.attempted}: ${r.delivered} delivered, ${r.failed} to retry, ${r.dead} dead-lettered, ${r.gone} endpoint(s) gone`] });
    return 0;
  },
};

export const WEBHOOK_COMMANDS: Command[] = [webhooksListCommand, webhooksTestCommand, webhooksReplayCommand, webhooksVerifyCommand, webhooksDeliverCommand];
