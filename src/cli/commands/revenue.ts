// `recur revenue [--plan P] [--since D] [--until D] [--by day|week|month] [--at-risk-days 7]`.
import { configError } from "../../errors.ts";
import { parseInteger, parseTime } from "../../reports/format.ts";
import { MONTH, revenueReport } from "../../reports/revenue.ts";
import type { Command } from "../command.ts";
import { option, planOption, reportScope, tokensOf } from "./reporting.ts";

export const revenueCommand: Command = {
  spec: {
    name: "revenue",
    options: { plan: { type: "string" }, since: { type: "string" }, until: { type: "string" }, by: { type: "string" }, "at-risk-days": { type: "string" } },
    factory: "required", signer: null, csv: true,
  },
  summary: "collected per token (and USD), MRR, new and churned subscriptions, failed charges recovered, and revenue at risk",
  synopsis: "recur revenue [--plan 0x…] [--since 2027-01-01] [--until …] [--by day|week|month] [--at-risk-days 7] [--json | --csv]",
  help: [
    { flag: "--plan 0x…", text: "only this plan (default: every plan of the factory)" },
    { flag: "--since D", text: "window start, inclusive: YYYY-MM-DD (UTC) or ISO-8601 (default: 30 days before --until)" },
    { flag: "--until D", text: "window end, exclusive (default: now, the confirmed head's time)" },
    { flag: "--by day|week|month", text: "bucket of the collected figures (default month; weeks start on Monday, UTC)" },
    { flag: "--at-risk-days N", text: "look this many days ahead for due charges predicted to fail (default 7)" },
  ],
  examples: ["recur revenue --since 2027-01-01 --by week", "recur revenue --plan 0x… --at-risk-days 14 --json"],
  async run(ctx) {
    const by = option(ctx, "by") ?? "month";
    if (by !== "day" && by !== "week" && by !== "month") throw configError("--by", "day, week or month", by);
    const rawDays = option(ctx, "at-risk-days");
    const atRiskDays = rawDays === null ? 7 : parseInteger("--at-risk-days", rawDays, 0, 365);
    const rawSince = option(ctx, "since");
    const rawUntil = option(ctx, "until");
    const sinceOpt = rawSince === null ? null : parseTime("--since", rawSince);
    const untilOpt = rawUntil === null ? null : parseTime("--until", rawUntil);
    const scope = await reportScope(ctx);
    const until = untilOpt ?? scope.now + 1;
    const since = sinceOpt ?? until - MONTH;
    if (until <= since) throw configError("--until", `a time after --since (${rawSince ?? new Date(since * 1000).toISOString()})`, rawUntil ?? new Date(until * 1000).toISOString());
    const one = planOption(ctx, false);
    const plans = one === null ? ctx.store().plans() : [one];
    const tokens = await tokensOf(ctx, scope, plans);
    const report = await revenueReport({ store: ctx.store(), rpc: ctx.rpc, chainId: scope.chainId, block: scope.block, now: scope.now, plans, tokens, since, until, by, atRiskDays });
    const f = report.json.failedCharges;
    ctx.print({
      json: report.json,
      columns: report.columns.filter((c) => ctx.config.csv || c.key !== "chain_id"),
      rows: report.rows,
      head: [
        `revenue of ${plans.length} plan(s), ${report.json.window.since} to ${report.json.window.until} (exclusive), by ${by}; at block ${scope.block}`,
        `failed charges: ${f.failed}, recovered inside grace: ${f.recoveredInGrace}${f.recoveryRate === null ? "" : ` (${(f.recoveryRate * 100).toFixed(1)}%)`}`,
        `at risk: ${report.json.atRisk.subscriptions.length} of ${report.json.atRisk.dueSubscriptions} charge(s) due in the next ${atRiskDays} day(s) predicted to fail`,
      ],
    });
    return 0;
  },
};
