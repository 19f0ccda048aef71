import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';

/** Renew the lease only while it is still ours. */
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
/** Release the lease only while it is still ours. */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1]) else return 0 end`;

export interface PartitionLeaseOptions {
  redis: Redis;
  /** Key prefix (the queue prefix): leases live at `<prefix>:lease:inbound:<n>`. */
  prefix: string;
  partitions: number;
  leaseMs: number;
  /** A partition became ours: start consuming it. */
  onAcquired(partition: number): void;
  /**
   * A partition must stop (lost, or handed over to balance the load). Resolve once nothing of
   * it is in flight; the lease is released after that (when it is still ours).
   */
  onReleased(partition: number, lost: boolean): Promise<void>;
  onError?(err: Error): void;
}

/**
 * Exclusive, renewed leases on the inbound partitions, so that each partition is consumed by
 * one worker process at a time (per-patient order) while the partitions spread over every live
 * worker. Each worker heartbeats into a sorted set; its fair share is ceil(partitions / live
 * workers). Every tick (a third of the lease) it renews its leases, hands over partitions above
 * its share, and takes free ones up to it. A worker that dies stops renewing: its leases
 * expire after `leaseMs` and the others take them.
 */
export class PartitionLeases {
  readonly workerId = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  private readonly owned = new Set<number>();
  private readonly releasing = new Set<number>();
  private timer?: NodeJS.Timeout;
  private ticking?: Promise<void>;
  private stopped = false;

  constructor(private readonly o: PartitionLeaseOptions) {}

  private key(p: number): string {
    return `${this.o.prefix}:lease:inbound:${p}`;
  }

  private get membersKey(): string {
    return `${this.o.prefix}:workers`;
  }

  /** Partitions held now. */
  get partitions(): number[] {
    return [...this.owned].sort((a, b) => a - b);
  }

  async start(): Promise<void> {
    await this.tick();
    this.timer = setInterval(
      () => {
        if (!this.ticking) {
          this.ticking = this.tick().finally(() => (this.ticking = undefined));
        }
      },
      Math.max(200, Math.floor(this.o.leaseMs / 3)),
    );
    this.timer.unref();
  }

  /** Stops consuming everything and releases every lease. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.ticking;
    await Promise.all([...this.owned].map((p) => this.release(p, false)));
    await this.o.redis.zrem(this.membersKey, this.workerId).catch(() => undefined);
  }

  private async tick(): Promise<void> {
    if (this.stopped) {
      return;
    }
    try {
      const r = this.o.redis;
      const now = Date.now();
      await r
        .multi()
        .zadd(this.membersKey, now, this.workerId)
        .zremrangebyscore(this.membersKey, '-inf', now - this.o.leaseMs)
        .exec();
      const live = Math.max(1, await r.zcard(this.membersKey));
      // Partitions being handed over are renewed too, until their last batch is done.
      for (const p of [...this.owned]) {
        const kept = (await r.eval(RENEW, 1, this.key(p), this.workerId, this.o.leaseMs)) as number;
        if (kept !== 1 && !this.releasing.has(p)) {
          void this.release(p, true);
        }
      }
      const share = Math.ceil(this.o.partitions / live);
      const held = [...this.owned].filter((p) => !this.releasing.has(p));
      if (held.length > share) {
        // Hand over the highest-numbered extras; the others take them once released.
        for (const p of held.sort((a, b) => b - a).slice(0, held.length - share)) {
          void this.release(p, false);
        }
        return;
      }
      let want = share - held.length;
      const start = Math.floor(Math.random() * this.o.partitions);
      for (let i = 0; i < this.o.partitions && want > 0 && !this.stopped; i++) {
        const p = (start + i) % this.o.partitions;
        if (this.owned.has(p)) {
          continue;
        }
        const ok = await r.set(this.key(p), this.workerId, 'PX', this.o.leaseMs, 'NX');
        if (ok === 'OK') {
          this.owned.add(p);
          want--;
          this.o.onAcquired(p);
        }
      }
    } catch (err) {
      this.o.onError?.(err as Error);
    }
  }

  private async release(p: number, lost: boolean): Promise<void> {
    if (this.releasing.has(p)) {
      return;
    }
    this.releasing.add(p);
    try {
      await this.o.onReleased(p, lost);
      if (!lost) {
        await this.o.redis.eval(RELEASE, 1, this.key(p), this.workerId);
      }
    } catch (err) {
      this.o.onError?.(err as Error);
    } finally {
      this.owned.delete(p);
      this.releasing.delete(p);
    }
  }
}
