// Every merchant command (and `serve`, the customer pages), in the order `recur --help` lists them. The keeper's own commands (run,
// status, usage) are parsed by parseConfig in src/cli/config.ts and run by src/cli/main.ts.
import type { Command } from "../command.ts";
import { chargesCommand } from "./charges.ts";
import { PLAN_COMMANDS } from "./plan.ts";
import { plansCommand } from "./plans.ts";
import { revenueCommand } from "./revenue.ts";
import { serveCommand } from "./serve.ts";
import { subscribersCommand } from "./subscribers.ts";
import { WEBHOOK_COMMANDS } from "./webhooks.ts";

export const COMMANDS: Command[] = [...PLAN_COMMANDS, plansCommand, subscribersCommand, chargesCommand, revenueCommand, ...WEBHOOK_COMMANDS, serveCommand];

/** The command `argv` names: the longest registered name its leading words spell ("plan create"). */
export function findCommand(argv: readonly string[]): Command | undefined {
  const words = argv.filter((a) => !a.startsWith("-"));
  let found: Command | undefined;
  for (const command of COMMANDS) {
    const name = command.spec.name.split(" ");
    if (name.every((w, i) => words[i] === w) && (found === undefined || name.length > found.spec.name.split(" ").length)) found = command;
  }
  return found;
}
