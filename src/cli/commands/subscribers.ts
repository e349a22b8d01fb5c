// `recur subscribers --plan P [--status …] [--ref …]`: a plan's subscribers with their status and the
// chain's prediction of their next charge.
import { configError } from "../../errors.ts";
import { parseStatuses } from "../../reports/status.ts";
import { subscribersReport } from "../../reports/subscribers.ts";
import type { Command } from "../command.ts";
import { isoTime } from "../output.ts";
import { option, planOption, reportScope, tokensOf } from "./reporting.ts";

const HUMAN = ["subscriber", "status", "ref", "started_at", "periods_paid", "total_paid", "symbol", "next_charge_at", "outcome"];

export const subscribersCommand: Command = {
  spec: { name: "subscribers", options: { plan: { type: "string" }, status: { type: "string" }, ref: { type: "string" } }, factory: "required", signer: null, csv: true },
  summary: "a plan's subscribers: status, paid periods, total paid, next charge, ref, and whether the next charge will succeed",
  synopsis: "recur subscribers --plan 0x… [--status PastDue,Active] [--ref order-42] [--json | --csv]",
  help: [
    { flag: "--plan 0x…", text: "the plan (required)" },
    { flag: "--status S,…", text: "only these statuses: Trialing, Active, PastDue, Paused, Cancelled, Expired" },
    { flag: "--ref R", text: "only the sign-ups with this ref (its text, or its bytes32 hex)" },
  ],
  examples: ["recur subscribers --plan 0x5FbDB2315678afecb367f032d93F642f64180aa3 --status PastDue", "recur subscribers --plan 0x… --csv > subscribers.csv"],
  async run(ctx) {
    const rawStatus = option(ctx, "status");
    const statuses = rawStatus === null ? null : parseStatuses(rawStatus, (bad, allowed) => configError("--status", `one or more of ${allowed}, comma-separated`, bad));
    const ref = option(ctx, "ref");
    const scope = await reportScope(ctx);
    const plan = planOption(ctx, true)!;
    const token = (await tokensOf(ctx, scope, [plan])).get(plan.token.toLowerCase())!;
    const report = await subscribersReport({ store: ctx.store(), rpc: ctx.rpc, chainId: scope.chainId, block: scope.block, now: scope.now, plan, token, statuses, ref });
    ctx.print({
      json: { chainId: scope.chainId.toString(), block: scope.block, now: isoTime(scope.now), plan: plan.address, subscribers: report.subscribers },
      columns: ctx.config.csv ? report.columns : report.columns.filter((c) => HUMAN.includes(c.key)),
      rows: report.rows,
      head: [`plan ${plan.address}: ${report.subscribers.length} subscriber(s), at block ${scope.block} (${isoTime(scope.now)})`],
    });
    return 0;
  },
};
