// When to try again. Three schedules, all in chain time (block timestamps, seconds):
// - a subscriber whose charge the chain refused (a ChargeFailed, or a batch that fails for that item
//   alone) is retried on the operator's retry schedule, counted from the first failure, inside the
//   grace window: if the schedule's last delay would fall after 90% of what is left of the window, every
//   delay is scaled down so that the last try still lands inside it;
// - a plan whose every charge failed alike (a blocked payee, a paused token) is backed off as a whole,
//   on the same schedule, its last delay repeated while the failures go on;
// - a plan whose calls keep failing (views, simulations) is quarantined after a number of failing
//   passes in a row, for a time that doubles with each further failing pass, up to a cap.
export interface BackoffConfig {
  /** Delays after the first failure, seconds, increasing. */
  readonly retrySchedule: readonly number[];
  /** Failing passes in a row before a plan is quarantined. */
  readonly quarantineAfter: number;
  /** First quarantine, seconds; doubled with each further failing pass. */
  readonly quarantineBase: number;
  /** Longest quarantine, seconds. */
  readonly quarantineMax: number;
}

export const DEFAULT_BACKOFF: BackoffConfig = Object.freeze({
  retrySchedule: Object.freeze([3_600, 6 * 3_600, 24 * 3_600, 48 * 3_600]),
  quarantineAfter: 3,
  quarantineBase: 600,
  quarantineMax: 6 * 3_600,
});

/** The share of the grace window (after the first failure) inside which the last retry must fall. */
const LAST_TRY_SHARE = 0.9;

/** The last moment a subscriber due at `dueAt` is tried in its grace window: 90% of the way through. */
export const lastTryAt = (dueAt: number, grace: number): number => dueAt + Math.floor(grace * LAST_TRY_SHARE);

/** When a subscriber that failed `attempts` times (the first at `firstFailedAt`) is tried again, or null
 * once the schedule is used up. `windowEnd` is the end of its grace window (due time + grace). */
export function nextRetryAt(schedule: readonly number[], firstFailedAt: number, windowEnd: number, attempts: number): number | null {
  if (attempts < 1 || attempts > schedule.length) return null;
  const last = schedule[schedule.length - 1]!;
  const room = Math.max(0, Math.floor((windowEnd - firstFailedAt) * LAST_TRY_SHARE));
  const delay = schedule[attempts - 1]!;
  const scaled = last > room ? Math.floor((delay * room) / last) : delay;
  return firstFailedAt + Math.max(scaled, 1);
}

/** When a plan whose every charge failed alike `attempts` times in a row (the first at `since`, the
 * latest at `now`) is tried again: the retry schedule over the plan's grace window from the first
 * failure, then every (scaled) last delay while the failures go on. */
export function planBackoffUntil(schedule: readonly number[], since: number, grace: number, attempts: number, now: number): number {
  const scheduled = nextRetryAt(schedule, since, since + grace, attempts);
  if (scheduled !== null && scheduled > now) return scheduled;
  const last = nextRetryAt(schedule, since, since + grace, schedule.length)! - since;
  return now + last;
}

/** Until when a plan with `failures` failing passes in a row is quarantined (at `now`), or 0 while it
 * has fewer than `quarantineAfter`. */
export function quarantineUntil(config: BackoffConfig, now: number, failures: number): number {
  if (failures < config.quarantineAfter) return 0;
  const doublings = Math.min(failures - config.quarantineAfter, 30);
  return now + Math.min(config.quarantineBase * 2 ** doublings, config.quarantineMax);
}
