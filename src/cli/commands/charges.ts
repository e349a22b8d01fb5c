// `recur charges [--plan P] [--since D] [--until D] [--subscriber S]`: every charge, failed charge and
// usage bill, with whether each failure was recovered inside grace.
import { configError } from "../../errors.ts";
import { chargesReport } from "../../reports/charges.ts";
import { parseAddress, parseTime } from "../../reports/format.ts";
import type { Command } from "../command.ts";
import { isoTime } from "../output.ts";
import { option, planOption, reportScope, tokensOf } from "./reporting.ts";

const HUMAN = ["time", "plan", "subscriber", "event", "amount", "symbol", "period_index", "reason", "recovery", "tx_hash", "log_index"];

export const chargesCommand: Command = {
  spec: { name: "charges", options: { plan: { type: "string" }, since: { type: "string" }, until: { type: "string" }, subscriber: { type: "string" } }, factory: "required", signer: null, csv: true },
  summary: "every charge, failed charge and usage bill, with the tx, and whether each failure was recovered inside grace",
  synopsis: "recur charges [--plan 0x…] [--since 2027-01-01] [--until 2027-02-01] [--subscriber 0x…] [--json | --csv]",
  help: [
    { flag: "--plan 0x…", text: "only this plan (default: every plan of the factory)" },
    { flag: "--since D", text: "from this time, inclusive: YYYY-MM-DD (UTC) or ISO-8601" },
    { flag: "--until D", text: "to this time, exclusive: YYYY-MM-DD (UTC) or ISO-8601" },
    { flag: "--subscriber 0x…", text: "only this subscriber" },
  ],
  examples: ["recur charges --plan 0x… --since 2027-01-01 --until 2027-02-01 --csv > january.csv", "recur charges --subscriber 0x… --json"],
  async run(ctx) {
    const rawSince = option(ctx, "since");
    const rawUntil = option(ctx, "until");
    const since = rawSince === null ? null : parseTime("--since", rawSince);
    const until = rawUntil === null ? null : parseTime("--until", rawUntil);
    if (since !== null && until !== null && until <= since) throw configError("--until", `a time after --since (${rawSince})`, rawUntil!);
    const rawSubscriber = option(ctx, "subscriber");
    const subscriber = rawSubscriber === null ? null : parseAddress("--subscriber", rawSubscriber, "a subscriber");
    const scope = await reportScope(ctx);
    const one = planOption(ctx, false);
    const plans = one === null ? ctx.store().plans() : [one];
    const tokens = await tokensOf(ctx, scope, plans);
    const report = chargesReport({ store: ctx.store(), tokens, chainId: scope.chainId, now: scope.now, plans, subscriber, since, until });
    const failed = report.charges.filter((c) => c.event === "charge_failed" || c.event === "usage_failed");
    ctx.print({
      json: { chainId: scope.chainId.toString(), block: scope.block, now: isoTime(scope.now), charges: report.charges },
      columns: ctx.config.csv ? report.columns : report.columns.filter((c) => HUMAN.includes(c.key)),
      rows: report.rows,
      head: [`${report.charges.length} event(s), ${failed.length} failed (${failed.filter((c) => c.recoveredAt !== null).length} recovered inside grace), at block ${scope.block}`],
    });
    return 0;
  },
};
