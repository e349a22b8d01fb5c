// `recur plans [--owner 0x…]`: the merchant's plans, their terms in human units, and subscribers by status.
import { plansOf, plansReport } from "../../reports/plans.ts";
import { parseAddress } from "../../reports/format.ts";
import type { Command } from "../command.ts";
import { isoTime } from "../output.ts";
import { option, reportScope, tokensOf } from "./reporting.ts";

const HUMAN = ["plan", "kind", "status", "terms", "period", "trial_seconds", "grace_seconds", "keeper_fee_bps", "trialing", "active", "past_due", "paused", "cancelled", "expired"];

export const plansCommand: Command = {
  spec: { name: "plans", options: { owner: { type: "string" } }, factory: "required", signer: null, csv: true },
  summary: "the plans the index holds (or one owner's): terms in human units, status, subscribers by status",
  synopsis: "recur plans [--owner 0x…] [--json | --csv]",
  help: [{ flag: "--owner 0x…", text: "only the plans this address owns (default: every plan of the factory)" }],
  examples: ["recur plans --owner 0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "recur plans --csv > plans.csv"],
  async run(ctx) {
    const rawOwner = option(ctx, "owner");
    const owner = rawOwner === null ? null : parseAddress("--owner", rawOwner, "the plans' owner");
    const scope = await reportScope(ctx);
    const tokens = await tokensOf(ctx, scope, plansOf(ctx.store(), owner));
    const report = plansReport({ store: ctx.store(), tokens, chainId: scope.chainId, now: scope.now, owner });
    ctx.print({
      json: { chainId: scope.chainId.toString(), block: scope.block, now: isoTime(scope.now), plans: report.plans },
      columns: ctx.config.csv ? report.columns : report.columns.filter((c) => HUMAN.includes(c.key)),
      rows: report.rows,
      head: [`${report.plans.length} plan(s)${owner === null ? "" : ` owned by ${owner}`}, at block ${scope.block} (${isoTime(scope.now)})`],
    });
    return 0;
  },
};
