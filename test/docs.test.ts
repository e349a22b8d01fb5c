// docs/RULES.md maps every on-chain rule to the tests that prove it. This keeps the map honest: every
// test it names must exist in the file it names (a renamed or deleted test fails here, not in an audit).
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { expect } from "chai";

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
