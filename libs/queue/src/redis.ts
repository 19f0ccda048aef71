import type { ConnectionOptions } from 'bullmq';

/**
 * BullMQ connection options from a redis:// or rediss:// URL. `maxRetriesPerRequest: null`
 * is required by BullMQ workers (blocking commands); producers fail fast instead.
 */
export function redisConnection(url: string, role: 'producer' | 'worker'): ConnectionOptions {
  const u = new URL(url);
  const db = u.pathname.length > 1 ? Number(u.pathname.slice(1)) : 0;
  return {
    host: u.hostname,
    port: u.port === '' ? 6379 : Number(u.port),
    username: u.username === '' ? undefined : decodeURIComponent(u.username),
    password: u.password === '' ? undefined : decodeURIComponent(u.password),
    db: Number.isFinite(db) ? db : 0,
    tls: u.protocol === 'rediss:' ? {} : undefined,
    maxRetriesPerRequest: role === 'worker' ? null : 1,
    enableOfflineQueue: role === 'worker',
    connectTimeout: 5000,
  };
}
