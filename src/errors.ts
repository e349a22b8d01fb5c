// One error type for the keeper, with stable codes. `retryable` says whether the same step may
// succeed if tried again (a network fault, a timeout) or never will (bad config, a revert).
export type KeeperErrorCode =
  | "CONFIG"
  | "RPC_TIMEOUT"
  | "RPC_TRANSPORT"
  | "RPC_ERROR"
  | "CHAIN_MISMATCH"
  | "REORG_TOO_DEEP"
  | "TX_FAILED"
  | "FEE_CAP"
  | "GAS_BUDGET"
  | "ABORTED";

export class KeeperError extends Error {
  readonly code: KeeperErrorCode;
  readonly retryable: boolean;

  constructor(code: KeeperErrorCode, message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "KeeperError";
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

/** A bad configuration value: the process stops with this one line. */
export function configError(variable: string, expected: string, got: string | undefined): KeeperError {
  const shown = got === undefined ? "nothing" : JSON.stringify(got);
  return new KeeperError("CONFIG", `${variable}: expected ${expected}, got ${shown}`);
}

export function isRetryable(error: unknown): boolean {
  return error instanceof KeeperError && error.retryable;
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message.split("\n")[0] ?? error.message;
  return String(error);
}
