// Reads a checkout or self-service link. A link is input from anyone: each parameter is checked, and a
// bad one becomes one plain sentence (never an exception, never markup).
import { encodeBytes32String, getAddress, isAddress, isHexString, ZeroHash } from "../vendor/ethers.js";

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

function address(raw, what) {
  if (!ADDRESS.test(raw) || !isAddress(raw)) return { error: `${what} is not a valid address.` };
  return { value: getAddress(raw.toLowerCase()) };
}

/** `ref` as the bytes32 the sign-up carries: text up to 31 bytes (as `recur subscribers` shows it), or
 * 0x + 64 hex digits. */
export function refOf(raw) {
  if (raw === null || raw === "") return { value: ZeroHash, text: null };
  if (isHexString(raw, 32)) return { value: raw.toLowerCase(), text: raw };
  if (!/^[\x20-\x7e]+$/.test(raw)) return { error: "Its order reference has characters a reference can't hold." };
  try {
    return { value: encodeBytes32String(raw), text: raw };
  } catch {
    return { error: "Its order reference is longer than 31 characters." };
  }
}

/** checkout.html?plan=0x…|plans=0xA,0xB&ref=…&periods=N&return=https://… */
export function parseCheckoutLink(search) {
  const q = new URLSearchParams(search);
  const broken = (why) => ({ error: `This checkout link is broken: ${why} Ask the merchant for a new link.` });
  const rawPlans = q.get("plans") ?? q.get("plan");
  if (rawPlans === null || rawPlans.trim() === "") return broken("it names no plan.");
  const entries = rawPlans.split(",").map((s) => s.trim());
  if (entries.length > 8) return broken("it names too many plans.");
  const plans = [];
  for (const entry of entries) {
    const parsed = address(entry, "A plan in it");
    if (parsed.error) return broken(parsed.error);
    if (!plans.includes(parsed.value)) plans.push(parsed.value);
  }
  const rawPeriods = q.get("periods") ?? "12";
  if (!/^\d{1,3}$/.test(rawPeriods) || Number(rawPeriods) < 1 || Number(rawPeriods) > 120) return broken("its number of periods must be a whole number from 1 to 120.");
  const ref = refOf(q.get("ref"));
  if (ref.error) return broken(ref.error);
  let returnUrl = null;
  const rawReturn = q.get("return");
  if (rawReturn !== null && rawReturn !== "") {
    let url = null;
    try {
      url = new URL(rawReturn);
    } catch {
      url = null;
    }
    if (url === null || (url.protocol !== "https:" && url.protocol !== "http:")) return broken("its return address is not a web address (http or https).");
    returnUrl = url;
  }
  return { plans, periods: BigInt(rawPeriods), ref, returnUrl };
}

/** manage.html?plan=0x… (or no plan: every plan of the factory the wallet subscribes to). */
export function parseManageLink(search) {
  const q = new URLSearchParams(search);
  const raw = q.get("plan");
  if (raw === null || raw === "") return { plan: null };
  const parsed = address(raw.trim(), "Its plan");
  if (parsed.error) return { error: `This link is broken: ${parsed.error} Open the page without it to see all your subscriptions.` };
  return { plan: parsed.value };
}

/** The merchant's return URL with the subscriber, the plan and the ref appended. */
export function returnWith(url, subscriber, plan, refText) {
  const out = new URL(url.href);
  out.searchParams.set("subscriber", subscriber);
  out.searchParams.set("plan", plan);
  if (refText !== null) out.searchParams.set("ref", refText);
  return out.href;
}
