export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` every 200 ms until it returns a value (errors count as "not yet"). */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  ms = 90_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) {
      return v;
    }
    if (Date.now() > end) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await sleep(200);
  }
}
