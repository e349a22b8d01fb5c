// Structured logs: one JSON object per line, one line per action. Secrets never reach a line: fields
// whose name looks like a secret are dropped, and URLs lose their credentials and query strings.
import type { Writable } from "node:stream";

export type Level = "debug" | "info" | "warn" | "error";
export type Fields = Record<string, unknown>;

export interface Logger {
  debug(event: string, fields?: Fields): void;
  info(event: string, fields?: Fields): void;
  warn(event: string, fields?: Fields): void;
  error(event: string, fields?: Fields): void;
  child(fields: Fields): Logger;
}

const SECRET_FIELD = /key|secret|password|mnemonic|passphrase|raw/i;
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** `https://user:pass@host/path/KEY?token=x` → `https://host/…`: the path of many RPC URLs is a key. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    const path = parsed.pathname.length > 1 ? "/…" : "";
    return `${parsed.protocol}//${parsed.host}${path}`;
  } catch {
    return "<invalid url>";
  }
}

function clean(value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Error) return value.message.split("\n")[0];
  if (Array.isArray(value)) return value.map(clean);
  if (value !== null && typeof value === "object") {
    const out: Fields = {};
    for (const [k, v] of Object.entries(value)) if (!SECRET_FIELD.test(k)) out[k] = clean(v);
    return out;
  }
  return value;
}

export function createLogger(stream: Writable, options: { level?: Level; base?: Fields; clock?: () => Date } = {}): Logger {
  const min = ORDER[options.level ?? "info"];
  const base = options.base ?? {};
  const clock = options.clock ?? (() => new Date());
  const write = (level: Level, event: string, fields: Fields = {}) => {
    if (ORDER[level] < min) return;
    const line = { t: clock().toISOString(), level, event, ...(clean(base) as Fields), ...(clean(fields) as Fields) };
    stream.write(JSON.stringify(line) + "\n");
  };
  return {
    debug: (e, f) => write("debug", e, f),
    info: (e, f) => write("info", e, f),
    warn: (e, f) => write("warn", e, f),
    error: (e, f) => write("error", e, f),
    child: (fields) => createLogger(stream, { ...options, base: { ...base, ...fields } }),
  };
}
