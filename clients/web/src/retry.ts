// Unary calls tried again where the service says a retry may work: after the wait
// RetryInfo asks for on RESOURCE_EXHAUSTED, and with growing delays on
// UNAVAILABLE. Streams are not retried here: a watcher re-opens its stream.

import { Code, type Interceptor } from "@connectrpc/connect";
import { UploadError } from "./errors.js";

/** How calls are tried again. */
export interface RetryOptions {
  /** Attempts in all, the first included (default 4). */
  attempts?: number;
  /** The first delay after UNAVAILABLE, doubled each time (default 250 ms). */
  baseDelayMs?: number;
  /** The longest wait between two attempts, whatever RetryInfo asks (default 30 s). */
  maxDelayMs?: number;
  /** Stands in for setTimeout in tests. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** A number in [0, 1) for the jitter (default Math.random). */
  random?: () => number;
}

/** The wait before attempt `attempt + 1`, or undefined when the failure is final. */
export function retryDelay(
  error: UploadError,
  attempt: number,
  options: Required<Pick<RetryOptions, "attempts" | "baseDelayMs" | "maxDelayMs">>,
  random: number,
): number | undefined {
  if (attempt >= options.attempts) {
    return undefined;
  }
  switch (error.code) {
    case Code.ResourceExhausted:
      // Only a refusal that says when to come back is worth another try.
      return error.retryDelayMs === undefined ? undefined : Math.min(error.retryDelayMs, options.maxDelayMs);
    case Code.Unavailable: {
      const step = Math.min(options.baseDelayMs * 2 ** (attempt - 1), options.maxDelayMs);
      // At least what the service asked for; jitter in the upper half of the step.
      const jittered = step / 2 + (step / 2) * random;
      return Math.max(jittered, Math.min(error.retryDelayMs ?? 0, options.maxDelayMs));
    }
    default:
      return undefined;
  }
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** An interceptor that tries unary calls again as {@link retryDelay} says. */
export function retryInterceptor(options: RetryOptions = {}): Interceptor {
  const limits = {
    attempts: Math.max(1, options.attempts ?? 4),
    baseDelayMs: options.baseDelayMs ?? 250,
    maxDelayMs: options.maxDelayMs ?? 30_000,
  };
  const sleep = options.sleep ?? abortableSleep;
  const random = options.random ?? Math.random;
  return (next) => async (req) => {
    if (req.stream) {
      return next(req);
    }
    for (let attempt = 1; ; attempt++) {
      try {
        return await next(req);
      } catch (thrown) {
        const error = UploadError.from(thrown);
        const delay = retryDelay(error, attempt, limits, random());
        if (delay === undefined || req.signal.aborted) {
          throw error;
        }
        await sleep(delay, req.signal);
      }
    }
  };
}
