// When a failed delivery is tried again. The default schedule, after the first attempt (made at once):
// 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, 10 h, 10 h, 10 h, 14 h — 12 attempts over 71 h 35 min
// (about three days); each delay varies by up to ±10 % (jitter), so that the retries of an endpoint that
// was down do not all arrive at once. After the last attempt the delivery is dead-lettered (kept, and
// `recur webhooks replay` queues it again). A receiver's Retry-After (seconds or an HTTP date) is
// honoured: the next attempt waits at least that long, at most MAX_RETRY_AFTER_MS.

const S = 1000;
const M = 60 * S;
const H = 60 * M;

/** Delays (ms) before attempts 2, 3, …: the first attempt is made at once. */
export const DEFAULT_RETRY_SCHEDULE_MS: readonly number[] = Object.freeze([5 * S, 5 * M, 30 * M, 2 * H, 5 * H, 10 * H, 10 * H, 10 * H, 10 * H, 10 * H, 14 * H]);
/** The most a receiver's Retry-After may push an attempt back: a day (a hostile receiver cannot park its
 * events for ever, and the dead letter stays replayable anyway). */
export const MAX_RETRY_AFTER_MS = 24 * H;
export const JITTER = 0.1;

/** The delay (ms) before the next attempt after `attempts` failed ones, or null when the schedule is used
 * up (dead-lettered). `random` in [0, 1) gives the jitter; `retryAfterMs` the receiver's wish, if any. */
export function nextDelay(attempts: number, schedule: readonly number[], retryAfterMs: number | null, random: () => number = Math.random): number | null {
  const base = schedule[attempts - 1];
  if (base === undefined) return null;
  const jittered = Math.round(base * (1 - JITTER + 2 * JITTER * random()));
  return retryAfterMs === null ? jittered : Math.max(jittered, Math.min(retryAfterMs, MAX_RETRY_AFTER_MS));
}

/** Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP date, as ms from `nowMs` (0 for a date in the
 * past); null when absent or unreadable. */
export function parseRetryAfter(header: string | null, nowMs: number): number | null {
  if (header === null) return null;
  const text = header.trim();
  if (/^\d{1,10}$/.test(text)) return Number(text) * 1000;
  // IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") and the two obsolete forms Date.parse also reads.
  if (!/^[A-Za-z]{3,9},? [\w :-]{10,40}$/.test(text)) return null;
  const at = Date.parse(text);
  return Number.isFinite(at) ? Math.max(0, at - nowMs) : null;
}

/** The total span (ms) of a schedule: from the first attempt to the last, without jitter. */
export const scheduleSpanMs = (schedule: readonly number[]): number => schedule.reduce((a, b) => a + b, 0);
