import type { RetryConfig } from '@engine/config';

/**
 * Delay before attempt `attempts + 1` after `attempts` failed ones: exponential from
 * `initialDelayMs`, capped at `maxDelayMs`, with ±10% jitter so lanes that failed together do
 * not all retry in the same instant.
 */
export function retryDelayMs(retry: RetryConfig, attempts: number, random = Math.random): number {
  const base = retry.initialDelayMs * Math.pow(retry.multiplier, Math.max(0, attempts - 1));
  const capped = Math.min(retry.maxDelayMs, base);
  return Math.round(capped * (0.9 + 0.2 * random()));
}

/** True when a transient failure after `attempts` attempts is to be given up (dead-lettered). */
export function retriesExhausted(retry: RetryConfig, attempts: number): boolean {
  return retry.maxAttempts > 0 && attempts >= retry.maxAttempts;
}
