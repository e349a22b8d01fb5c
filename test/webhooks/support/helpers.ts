// What the webhook end-to-end tests share: two secrets, a temp folder, a config file, an exit check.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

import { expect } from "chai";

import type { RunResult } from "../../keeper/support/chain.ts";

export const OLD_SECRET = "whsec_" + Buffer.alloc(32, 1).toString("base64");
export const NEW_SECRET = "whsec_" + Buffer.alloc(32, 2).toString("base64");

export function tmp(): string {
  return mkdtempSync(path.join(tmpdir(), "recur-wh-"));
}

export function writeConfig(dir: string, config: Record<string, unknown>): string {
  const file = path.join(dir, `webhooks-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(config));
  return file;
}

export function ok(result: RunResult): RunResult {
  expect(result.code, `exit ${result.code ?? result.signal}\n${result.stdout.slice(-3000)}${result.stderr}`).to.equal(0);
  return result;
}

