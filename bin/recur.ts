#!/usr/bin/env -S node --disable-warning=ExperimentalWarning
// `recur`: the one command of merchants and keeper operators (src/cli/main.ts). Node 22 with TypeScript
// type stripping: no build step.
import process from "node:process";

import { main } from "../src/cli/main.ts";

const controller = new AbortController();
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    // The first signal stops after the current step; a second one exits at once.
    if (controller.signal.aborted) process.exit(130);
    controller.abort();
  });
}
process.exitCode = await main(process.argv.slice(2), process.env, { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, signal: controller.signal });
