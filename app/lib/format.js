// Formatting for people: amounts with their unit, durations in words, dates in the reader's locale, and
// the one way the pages put text on screen (text nodes: a value from a link or the chain is never HTML).
import { formatUnits } from "../vendor/ethers.js";

/** "9.99 tUSDC": base units in the token's decimals, trailing zeros dropped (at least two decimals). */
export function amount(base, token) {
  let text = formatUnits(base, token.decimals);
  let [whole, fraction = ""] = text.split(".");
  fraction = fraction.replace(/0+$/, "");
  if (token.decimals >= 2) fraction = fraction.padEnd(2, "0");
  whole = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${fraction === "" ? whole : `${whole}.${fraction}`} ${token.symbol}`;
}

/** "$9.99" from a USD amount with 8 decimals. */
export function usd(base8) {
  const [whole, fraction = ""] = formatUnits(base8, 8).split(".");
  return `$${whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",")}.${fraction.padEnd(2, "0").slice(0, Math.max(2, fraction.replace(/0+$/, "").length))}`;
}

const UNITS = [["year", 365 * 86400], ["week", 7 * 86400], ["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1]];

/** "30 days", "1 week", "1 day 12 hours" (at most two units). */
export function duration(seconds) {
  let left = Number(seconds);
  if (left === 0) return "none";
  const parts = [];
  for (const [name, size] of UNITS) {
    if (name === "week" && left % size !== 0) continue;
    if (name === "year" && left % size !== 0) continue;
    const n = Math.floor(left / size);
    if (n > 0) {
      parts.push(`${n} ${name}${n === 1 ? "" : "s"}`);
      left -= n * size;
    }
    if (parts.length === 2) break;
  }
  return parts.join(" ");
}

/** "every 30 days", "every month" style phrase for a period. */
export function every(seconds) {
  const d = Number(seconds);
  if (d === 86400) return "every day";
  if (d === 7 * 86400) return "every week";
  if (d === 365 * 86400) return "every year";
  return `every ${duration(d)}`;
}

/** A unix time as a date and time in the reader's locale ("12 March 2027, 14:05"). */
export function date(unix) {
  return new Date(Number(unix) * 1000).toLocaleString(undefined, { day: "numeric", month: "long", year: "numeric", hour: "2-digit", minute: "2-digit" });
}

/** "12 March 2027". */
export function day(unix) {
  return new Date(Number(unix) * 1000).toLocaleDateString(undefined, { day: "numeric", month: "long", year: "numeric" });
}

/** "0x7099…79C8". */
export function short(address) {
  return `${address.slice(0, 6)}…${address.slice(-4)}`;
}

/** An element with attributes and children; strings become text nodes, never markup. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" || typeof child === "number" || typeof child === "bigint" ? document.createTextNode(String(child)) : child);
  }
  return node;
}

/** A link to a transaction on the configured explorer, or its hash as text when none is configured. */
export function txLink(config, hash) {
  if (config.explorerTxUrl === null || config.explorerTxUrl === undefined) return el("code", { class: "hash" }, hash);
  return el("a", { href: config.explorerTxUrl + hash, target: "_blank", rel: "noopener noreferrer", class: "hash" }, `${hash.slice(0, 10)}…${hash.slice(-6)}`);
}

/** A definition list of [label, value] rows. */
export function facts(rows) {
  return el("dl", { class: "facts" }, rows.filter((r) => r !== null).flatMap(([label, value]) => [el("dt", {}, label), el("dd", {}, value)]));
}
