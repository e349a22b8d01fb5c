// Reading a Prometheus text exposition in tests: every sample by name and labels.

/** A Prometheus text exposition's samples, by `name{label="value",…}` with the labels sorted. */
export function parseSamples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null) continue;
    const labels = Object.fromEntries([...(match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]));
    out.set(sampleKey(match[1]!, labels), Number(match[3]));
  }
  return out;
}

/** The key of one sample in `parseSamples`' map. */
export function sampleKey(name: string, labels: Record<string, string> = {}): string {
  return `${name}{${Object.keys(labels).sort().map((k) => `${k}="${labels[k]}"`).join(",")}}`;
}
