import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import type { DataSource } from 'typeorm';
import { validateEngineConfig } from '@engine/config';
import { type DeliveryRow, MpiStore, WorkingSet } from '@engine/mpi';
import type { DeliveryQueues } from '@engine/queue';
import { createDataSource, DeliveryStore } from '@engine/store';
import { createTestDatabase, type TestDatabase } from '@engine/store/testing';
import { DestinationRunner } from './delivery.service';
import { deliveryMetrics } from './metrics';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const EUID = '01890a5d-ac96-774b-bcce-b302099a8057';

/** A patient's event rows, all in one lane. */
function row(n: number): DeliveryRow {
  return {
    destination: 'billing',
    route: 'r',
    lane: 3,
    kind: 'event',
    messageId: null,
    eventType: n === 1 ? 'patient.created' : 'patient.updated',
    eventKey: `k${n}`,
    euid: EUID,
    payload: { n },
    dedupeKey: `e:k${n}`,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('DestinationRunner (PostgreSQL, Redis, an HTTP receiver)', () => {
  let pg: TestDatabase;
  let ds: DataSource;
  let redis: Redis;
  let server: Server;
  /** Bodies the receiver accepted (200), in order, and how many requests it answered 503. */
  const accepted: number[] = [];
  let refused = 0;
  let firstRequestSeen = false;
  let runner: DestinationRunner | undefined;

  beforeAll(async () => {
    pg = await createTestDatabase();
    ds = createDataSource({ databaseUrl: pg.url, poolSize: 4 });
    await ds.initialize();
    redis = new Redis(REDIS_URL);
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const n = Number((JSON.parse(body) as { data: { n: number } }).data.n);
        if (n === 1 && refused === 0) {
          // The first event fails once, slowly. Meanwhile new work wakes the loop (as the
          // pipeline's wake-up job would), and it starts its next batch.
          firstRequestSeen = true;
          refused++;
          runner?.wake();
          setTimeout(() => res.writeHead(503).end('busy'), 150);
          return;
        }
        accepted.push(n);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });

  afterAll(async () => {
    await ds.destroy();
    await pg.drop();
    redis.disconnect();
    await new Promise((r) => server.close(r));
  });

  it('a lane released while a batch is being read still waits for its retry', async () => {
    const { port } = server.address() as AddressInfo;
    const config = validateEngineConfig({
      destinations: [
        {
          id: 'billing',
          type: 'http',
          url: `http://127.0.0.1:${port}/events`,
          format: 'json',
          concurrency: 4,
          retry: { maxAttempts: 0, initialDelayMs: 300, maxDelayMs: 300, multiplier: 1 },
        },
      ],
    }).destinations[0];
    const real = new DeliveryStore(ds);
    await new MpiStore(ds).flush(new WorkingSet(), [], new Date(), [row(1), row(2), row(3)]);

    // The race, made certain: the next batch reads the blocked lanes while the lane of event 1
    // is still sending it, and reads the busy lanes only after that lane wrote its retry and
    // was released.
    let retried!: () => void;
    const retryWritten = new Promise<void>((r) => (retried = r));
    let raced = false;
    const store = Object.create(real) as DeliveryStore;
    store.blockedLanes = async (destination, now) => {
      const blocked = await real.blockedLanes(destination, now);
      if (firstRequestSeen && !raced) {
        raced = true;
        await retryWritten;
        await sleep(20); // the lane's `finally` releases it
      }
      return blocked;
    };
    store.markRetry = async (...args) => {
      await real.markRetry(...args);
      retried();
    };

    runner = new DestinationRunner(config, {
      store,
      queues: { isPaused: () => Promise.resolve(false) } as unknown as DeliveryQueues,
      redis,
      prefix: `t${randomBytes(4).toString('hex')}`,
      renderOptions: () => ({
        euidAuthority: 'EUID',
        addEuid: true,
        rules: [],
        tables: {},
        application: 'ENGINE',
        facility: 'EUID',
      }),
      metrics: deliveryMetrics(),
    });
    runner.start();
    try {
      const end = Date.now() + 10_000;
      while (accepted.length < 3 && Date.now() < end) {
        await sleep(20);
      }
    } finally {
      await runner.stop();
    }
    expect(raced).toBe(true);
    expect(refused).toBe(1);
    // Event 1 went out again after its retry delay, and nothing of the patient overtook it.
    expect(accepted).toEqual([1, 2, 3]);
  });
});
