/** Helpers shared by the benchmark scripts (bench/ingest.ts, bench/pipeline.ts, bench/e2e.ts). */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { Redis } from 'ioredis';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** mulberry32: a small seeded PRNG, so a seed gives the same people and stream. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The "some" line of /proc/pressure/cpu (CPU stall), or 'n/a'. */
export function cpuPressure(): string {
  try {
    return readFileSync('/proc/pressure/cpu', 'utf8').split('\n')[0];
  } catch {
    return 'n/a';
  }
}

/** Deletes every Redis key of a queue prefix. */
export async function clearPrefix(redisUrl: string, prefix: string): Promise<void> {
  const r = new Redis(redisUrl);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) {
        await r.del(...keys);
      }
    } while (cursor !== '0');
  } finally {
    r.disconnect();
  }
}

/** Waits until `workers` worker processes hold every inbound partition, evenly shared. */
export async function waitForLeases(
  redis: Redis,
  prefix: string,
  partitions: number,
  workers: number,
  timeoutMs: number,
  log: (line: string) => void,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  const share = Math.ceil(partitions / workers);
  const keys = Array.from({ length: partitions }, (_, p) => `${prefix}:lease:inbound:${p}`);
  for (;;) {
    const owners = await redis.mget(...keys);
    const counts = new Map<string, number>();
    for (const o of owners) {
      if (o !== null) {
        counts.set(o, (counts.get(o) ?? 0) + 1);
      }
    }
    const leased = owners.filter((o) => o !== null).length;
    const state = `${leased}/${partitions} partitions leased by ${counts.size} worker(s)`;
    if (
      leased === partitions &&
      counts.size === Math.min(workers, partitions) &&
      Math.max(...counts.values()) <= share
    ) {
      log(`  ${state}`);
      return;
    }
    if (Date.now() > end) {
      throw new Error(`workers did not take their partitions in time: ${state}`);
    }
    await sleep(250);
  }
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = net.createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => ok(port));
    });
  });
}

/** Waits until `port` accepts connections; fails if `child` exits first. */
export async function waitForPort(
  port: number,
  child: ChildProcess,
  timeoutMs = 60_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `process ${child.pid} exited (code ${child.exitCode}) before port ${port} opened`,
      );
    }
    const ok = await new Promise<boolean>((done) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        done(true);
      });
      s.on('error', () => done(false));
    });
    if (ok) {
      return;
    }
    if (Date.now() > end) {
      throw new Error(`port ${port} did not open`);
    }
    await sleep(200);
  }
}

/** A V8 CPU profile (Profiler.stop), as much of it as the summaries read. */
export interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
}

/** A profile's nodes by id, and each node's parent. */
export function profileTree(profile: CpuProfile): {
  byId: Map<number, ProfileNode>;
  parent: Map<number, number>;
} {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    for (const c of n.children ?? []) {
      parent.set(c, n.id);
    }
  }
  return { byId, parent };
}
