/**
 * The SDK's own retries are limited to 2 attempts: the state machine owns retrying (with backoff the execution
 * history shows), and a Lambda that sleeps through ten SDK retries hides throttling from the operator and pays for
 * the idle time.
 */
export const clientConfig = { maxAttempts: 2 } as const;
