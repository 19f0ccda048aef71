import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import {
  type EngineConfig,
  loadSettings,
  type Settings,
  validateEngineConfig,
} from '@engine/config';
import { createTestDatabase } from '@engine/store/testing';
import { MllpListenerService } from '@engine/gateway';
import { startEngine, type StartedEngine } from '../../apps/engine/src/bootstrap';
import type { Role } from '../../apps/engine/src/roles';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const ADMIN_KEY = 'test-admin-key-0123456789';

export interface TestEngine extends StartedEngine {
  settings: Settings;
  config: EngineConfig;
  databaseUrl: string;
  /** MLLP port of a feed. */
  port(feed?: string): number;
  /** Delete every Redis key of this engine's queue prefix (a "Redis flushed" event). */
  flushQueues(): Promise<void>;
  close(): Promise<void>;
}

export interface TestEngineOptions {
  roles?: Role[];
  /** Partial engine config; feeds default to one `default` feed on an ephemeral port. */
  config?: Record<string, unknown>;
  /** Reuse a database (e.g. for restart tests); otherwise a fresh one is created. */
  databaseUrl?: string;
  queuePrefix?: string;
  env?: Record<string, string>;
}

export function defaultFeed(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { id: 'default', host: '127.0.0.1', port: 0, accept: ['ADT^*', 'ORU^R01'], ...overrides };
}

export async function startTestEngine(opts: TestEngineOptions = {}): Promise<TestEngine> {
  const db = opts.databaseUrl !== undefined ? undefined : await createTestDatabase();
  const databaseUrl = opts.databaseUrl ?? db!.url;
  const queuePrefix = opts.queuePrefix ?? `t${randomBytes(4).toString('hex')}`;
  const settings = loadSettings({
    DATABASE_URL: databaseUrl,
    REDIS_URL,
    HTTP_PORT: '0',
    HTTP_HOST: '127.0.0.1',
    ADMIN_API_KEY: ADMIN_KEY,
    QUEUE_PREFIX: queuePrefix,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...opts.env,
  });
  const config = validateEngineConfig({
    engine: { partitions: 4, sweeper: { intervalSeconds: 3600, graceSeconds: 0 } },
    feeds: [defaultFeed()],
    ...opts.config,
  });
  /** Delete every key of this engine's queue prefix. */
  async function flushQueues(): Promise<void> {
    const r = new Redis(REDIS_URL);
    try {
      const keys = await r.keys(`${queuePrefix}:*`);
      if (keys.length > 0) {
        await r.del(...keys);
      }
    } finally {
      r.disconnect();
    }
  }
  const started = await startEngine(opts.roles ?? ['gateway', 'api'], {
    settings,
    engineConfig: config,
  });
  return {
    ...started,
    settings,
    config,
    databaseUrl,
    port(feed = 'default') {
      return started.app.get(MllpListenerService).address(feed).port;
    },
    flushQueues,
    async close() {
      await started.app.close();
      await flushQueues();
      await db?.drop();
    },
  };
}
