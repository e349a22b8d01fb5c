// docs/RULES.md maps every on-chain rule to the tests that prove it. This keeps the map honest: every
// test it names must exist in the file it names (a renamed or deleted test fails here, not in an audit).
// docs/OPERATIONS.md explains every keeper metric: its table must list exactly the registry's metrics,
// with their types and labels (a metric added without docs fails here).
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { expect } from "chai";

import { Store } from "../src/index/store.ts";
import { createMetrics } from "../src/ops/metrics.ts";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** Each "`file`: names" group of a RULES.md table cell, with the names it lists. */
function citations(markdown: string): { file: string; names: string[] }[] {
  const found: { file: string; names: string[] }[] = [];
  const group = /`([\w/-]+\.(?:test\.ts|t\.sol))`(?: \([^)]*\))?: (.*?)(?=<br>|\s\|\s|$)/gm;
  for (const match of markdown.matchAll(group)) {
    const [, file, list] = match;
    const names = file!.endsWith(".t.sol")
      ? list!.split(";").map((n) => n.trim()).filter((n) => n !== "")
      : [...list!.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!.replace(/\\`/g, "`"));
    found.push({ file: file!, names });
  }
  return found;
}

function testFile(file: string): string {
  return path.join(ROOT, "test", file.endsWith(".t.sol") ? "solidity" : "", file);
}

describe("docs/RULES.md", () => {
  const groups = citations(readFileSync(path.join(ROOT, "docs/RULES.md"), "utf8"));

  it("cites tests at all (the parser still understands the table)", () => {
    expect(groups.length).to.be.greaterThan(20);
    expect(groups.flatMap((g) => g.names).length).to.be.greaterThan(150);
  });

  for (const { file, names } of groups) {
    it(`names only tests that exist in ${file}: ${names.length} cited`, () => {
      const source = readFileSync(testFile(file), "utf8");
      const missing = names.filter((name) =>
        file.endsWith(".t.sol") ? !new RegExp(`function ${name}\\(`).test(source) : !source.includes(`"${name}"`),
      );
      expect(missing, `${file} has no test named:\n${missing.join("\n")}`).to.deep.equal([]);
    });
  }
});

describe("docs/OPERATIONS.md", () => {
  /** The metrics table's rows: name, type, labels. */
  function documented(markdown: string): Map<string, { type: string; labels: string[] }> {
    const rows = new Map<string, { type: string; labels: string[] }>();
    for (const match of markdown.matchAll(/^\| `(recur_\w+)` \| (\w+) \|([^|]*)\| .+ \|$/gm)) {
      rows.set(match[1]!, { type: match[2]!, labels: [...match[3]!.matchAll(/`(\w+)`/g)].map((m) => m[1]!) });
    }
    return rows;
  }

  it("lists every recur_ metric of the registry with its type and labels, and no other", () => {
    const store = new Store(":memory:");
    try {
      // Every optional part on: a keeper account (the balance) and a webhook outbox (its gauges).
      const metrics = createMetrics({ store, clock: () => 0, confirmations: 1, info: { chainId: "1", shard: "0/1" }, outboxStats: () => ({ depth: 0, oldestAgeSeconds: null }) });
      metrics.identify("0x0000000000000000000000000000000000000001");
      const registry = new Map(
        metrics.registry.getMetricsAsArray()
          .filter((m) => m.name.startsWith("recur_"))
          .map((m) => [m.name, { type: String(m.type), labels: [...((m as unknown as { labelNames?: string[] }).labelNames ?? [])] }]),
      );
      const docs = documented(readFileSync(path.join(ROOT, "docs/OPERATIONS.md"), "utf8"));
      expect(registry.size).to.be.greaterThan(20);
      expect([...docs.keys()].sort(), "documented metrics").to.deep.equal([...registry.keys()].sort());
      for (const [name, doc] of docs) expect(doc, name).to.deep.equal(registry.get(name));
    } finally {
      store.close();
    }
  });
});
