import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { DataSource } from 'typeorm';
import { ackField, TestMllpClient } from './support/mllp-client';
import { ADMIN_KEY, REDIS_URL, startTestEngine, type TestEngine } from './support/engine';
import {
  applySequentially,
  mpiSnapshot,
  patientStream,
  spawnWorker,
  writeEngineConfig,
  type StreamMessage,
} from './support/pipeline';
import { waitFor } from './support/wait';

const PARTITIONS = 8;
const CONNECTIONS = 4;

/** Sends the stream over 4 connections; a patient's messages always use the same one. */
async function send(engine: TestEngine, stream: StreamMessage[]): Promise<void> {
  const clients = await Promise.all(
    Array.from({ length: CONNECTIONS }, () => TestMllpClient.connect(engine.port())),
  );
  try {
    await Promise.all(
      clients.map(async (client, c) => {
        for (const m of stream.filter((s) => s.patient % CONNECTIONS === c)) {
          const ack = await client.send(m.text, 10000);
          expect(ackField(ack, 'MSA', 1)).toBe('AA');
        }
      }),
    );
  } finally {
    clients.forEach((c) => c.close());
  }
}

async function counts(ds: DataSource): Promise<Record<string, number>> {
  const rows = await ds.query<Array<{ status: string; n: number }>>(
    `SELECT status, count(*)::int AS n FROM message GROUP BY status`,
  );
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

async function allApplied(ds: DataSource, total: number): Promise<true | undefined> {
  const c = await counts(ds);
  const done = (c.processed ?? 0) + (c.ignored ?? 0) + (c.error ?? 0);
  return done === total && !c.received ? true : undefined;
}

/** The reference MPI: the same stored messages applied one by one in arrival order. */
async function expectedSnapshot(ds: DataSource) {
  const rows = await ds.query<Array<{ id: string; raw: Buffer; received_at: Date }>>(
    `SELECT id, raw, received_at FROM message ORDER BY id`,
  );
  const ref = await applySequentially(rows);
  try {
    return await mpiSnapshot(ref.ds);
  } finally {
    await ref.cleanup();
  }
}

async function leaseHolders(prefix: string): Promise<Set<string>> {
  const r = new Redis(REDIS_URL);
  try {
    const keys = await r.keys(`${prefix}:lease:inbound:*`);
    const values = keys.length > 0 ? await r.mget(...keys) : [];
    return new Set(values.filter((v): v is string => v !== null));
  } finally {
    r.disconnect();
  }
}

describe('pipeline across worker processes', () => {
  const children: ChildProcess[] = [];
  let engine: TestEngine | undefined;
  let ds: DataSource | undefined;
  let cleanupConfig: (() => void) | undefined;

  afterEach(async () => {
    children.splice(0).forEach((c) => c.kill('SIGKILL'));
    await ds?.destroy();
    ds = undefined;
    await engine?.close();
    engine = undefined;
    cleanupConfig?.();
  });

  async function setup(prefix: string) {
    engine = await startTestEngine({
      roles: ['gateway', 'api'],
      queuePrefix: prefix,
      config: {
        engine: { partitions: PARTITIONS, sweeper: { intervalSeconds: 1, graceSeconds: 2 } },
        worker: { leaseSeconds: 2 },
      },
    });
    // Deterministic identity: which other patients a new record is compared with depends on
    // how far the other partitions have got, so probabilistic review tasks (not the MPI) may
    // differ from a one-by-one run; ordering is what these tests are about.
    const cfg = writeEngineConfig(
      `engine:\n  partitions: ${PARTITIONS}\nworker:\n  leaseSeconds: 2\n` +
        `mpi:\n  identity: deterministic\nfeeds: []\n`,
    );
    cleanupConfig = cfg.cleanup;
    const env = {
      HL7_CONFIG: cfg.file,
      DATABASE_URL: engine.databaseUrl,
      REDIS_URL,
      QUEUE_PREFIX: prefix,
    };
    ds = new DataSource({ type: 'postgres', url: engine.databaseUrl, poolSize: 2 });
    await ds.initialize();
    return { engine, ds, startWorker: () => children.push(spawnWorker(env)) };
  }

  it('2,000 interleaved messages about 50 patients with A08s and an A40: the MPI equals one-by-one application; a replay changes nothing', async () => {
    const prefix = `order${Date.now()}`;
    const { engine: e, ds: db, startWorker } = await setup(prefix);
    startWorker();
    startWorker();
    // Both workers share the partitions before the stream starts.
    await waitFor(
      'both workers to share the partitions',
      async () => ((await leaseHolders(prefix)).size === 2 ? true : undefined),
      60000,
    );
    const stream = patientStream(7, 2000, 50, [
      { at: 900, prior: 1, survivor: 0 },
      { at: 1400, prior: 3, survivor: 2 },
    ]);
    await send(e, stream);
    await waitFor('every message applied', () => allApplied(db, 2000), 120000);
    expect(await counts(db)).toEqual({ processed: 2000 });
    expect((await leaseHolders(prefix)).size).toBe(2);

    const actual = await mpiSnapshot(db);
    const expected = await expectedSnapshot(db);
    expect(actual).toEqual(expected);
    // The merges happened: the prior records are merged into the survivors.
    const merged = (actual.records as Array<{ key: string; status: string; mergedInto: string }>)
      .filter((r) => r.status === 'merged')
      .map((r) => `${r.key}->${r.mergedInto}`);
    expect(merged).toEqual(['HOSP|P1->HOSP|P0', 'HOSP|P3->HOSP|P2']);

    // Replay every processed message through the API: nothing changes, no new event.
    const ids = await db.query<Array<{ id: string }>>(`SELECT id FROM message ORDER BY id`);
    const base = `${e.url}/api/messages`;
    for (let i = 0; i < ids.length; i += 20) {
      await Promise.all(
        ids.slice(i, i + 20).map(async ({ id }) => {
          const res = await fetch(`${base}/${id}/reprocess`, {
            method: 'POST',
            headers: { authorization: `Bearer ${ADMIN_KEY}` },
          });
          expect([202, 409]).toContain(res.status);
        }),
      );
    }
    await waitFor('every message applied', () => allApplied(db, 2000), 120000);
    expect(await mpiSnapshot(db)).toEqual(actual);
  }, 300000);

  it('a worker killed with SIGKILL mid-run: after a restart every message is applied exactly once in effect', async () => {
    const prefix = `kill${Date.now()}`;
    const { engine: e, ds: db, startWorker } = await setup(prefix);
    const stream = patientStream(11, 2000, 50, [{ at: 1000, prior: 5, survivor: 4 }]);
    await send(e, stream); // stored and queued; no worker yet
    startWorker();
    startWorker();
    await waitFor(
      '300 messages applied',
      async () => {
        const c = await counts(db);
        return (c.processed ?? 0) >= 300 ? true : undefined;
      },
      120000,
    );
    children[0].kill('SIGKILL');
    expect((await counts(db)).received ?? 0).toBeGreaterThan(0); // killed mid-run
    startWorker(); // the operator restarts it
    await waitFor('every message applied', () => allApplied(db, 2000), 180000);
    expect(await counts(db)).toEqual({ processed: 2000 });
    expect(await mpiSnapshot(db)).toEqual(await expectedSnapshot(db));
  }, 300000);
});
