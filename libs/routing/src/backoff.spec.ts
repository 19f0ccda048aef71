import { retriesExhausted, retryDelayMs } from './backoff';

describe('retry backoff', () => {
  const retry = { maxAttempts: 5, initialDelayMs: 1000, maxDelayMs: 60_000, multiplier: 2 };

  it('grows exponentially up to the cap, with ±10% jitter', () => {
    expect([1, 2, 3, 4, 7, 20].map((n) => retryDelayMs(retry, n, () => 0.5))).toEqual([
      1000, 2000, 4000, 8000, 60_000, 60_000,
    ]);
    expect(retryDelayMs(retry, 1, () => 0)).toBe(900);
    expect(retryDelayMs(retry, 1, () => 1)).toBe(1100);
  });

  it('gives up after maxAttempts, never when it is 0', () => {
    expect(retriesExhausted(retry, 4)).toBe(false);
    expect(retriesExhausted(retry, 5)).toBe(true);
    expect(retriesExhausted({ ...retry, maxAttempts: 0 }, 1000)).toBe(false);
  });
});
