import { RetryableServiceError, RetryableThrottlingError } from "../domain/errors.js";

export interface RetryPolicy {
  attempts: number;
  firstDelayMs: number;
  maxDelayMs: number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

/**
 * Inside a function that no state machine retries (the intake, invoked asynchronously by EventBridge): the same
 * policy the state machine gives its tasks, for our Retryable* errors only (the call did not take effect), with
 * full jitter so a storm's calls spread out. Anything else, and the last retryable error, is thrown: Lambda's own
 * asynchronous retries, then the alarmed dead-letter queue, take it from there.
 */
export async function retryRetryable<T>(call: () => Promise<T>, policy: RetryPolicy): Promise<T> {
  const sleep = policy.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const random = policy.random ?? Math.random;
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      const retryable = error instanceof RetryableThrottlingError || error instanceof RetryableServiceError;
      if (!retryable || attempt >= policy.attempts) throw error;
      const ceiling = Math.min(policy.maxDelayMs, policy.firstDelayMs * 2 ** (attempt - 1));
      await sleep(Math.round(random() * ceiling));
    }
  }
}
