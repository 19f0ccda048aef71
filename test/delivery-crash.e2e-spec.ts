import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import type { MllpSinkRecord } from '../scripts/sink-mllp';
import { REDIS_URL, startTestEngine, type TestEngine } from './support/engine';
import { adt } from './support/messages';
import { ackField, TestMllpClient } from './support/mllp-client';
import { spawnWorker, writeEngineConfig } from './support/pipeline';
import { waitFor } from './support/wait';
import { freePort, killSinks, readRecords, startSink } from './support/sinks';

/**
 * A delivering worker process killed with SIGKILL in the middle of a stream: another worker
 * takes the destination over when the lease lapses, and every message reaches the EHR, in
 * per-patient order (a batch in flight at the kill may be sent again: at-least-once).
 */

jest.setTimeout(180_000);

describe('delivery when a worker process dies (e2e)', () => {
  const children: ChildProcess[] = [];
  let engine: TestEngine | undefined;
  let ds: DataSource | undefined;
  let dir: string;
  let cleanupConfig: (() => void) | undefined;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'delivery-crash-'));
  });
  afterAll(async () => {
    children.forEach((c) => c.kill('SIGKILL'));
    killSinks();
    await ds?.destroy();
    await engine?.close();
    cleanupConfig?.();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a worker killed mid-delivery: the next one delivers everything, in order', async () => {
    const port = await freePort();
    const record = join(dir, 'ehr.jsonl');
    // The EHR answers after 5 ms, so the stream is still being delivered when the kill comes.
    await startSink('sink-mllp.ts', ['--quiet', '--record', record, '--delay-ms', '5'], port);
    const prefix = `dcrash${Date.now()}`;
    engine = await startTestEngine({ roles: ['gateway', 'api'], queuePrefix: prefix });
    const cfg = writeEngineConfig(
      `engine:\n  partitions: 4\nworker:\n  leaseSeconds: 2\nmpi:\n  identity: deterministic\n` +
        `feeds: []\n` +
        `destinations:\n  - { id: ehr, type: mllp, host: 127.0.0.1, port: ${port}, format: hl7, ` +
        `concurrency: 4, retry: { initialDelayMs: 100, maxDelayMs: 1000 } }\n` +
        `routes:\n  - { id: all, source: { feed: '*' }, destinations: [ehr] }\n`,
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

    const patients = 10;
    const perPatient = 30;
    children.push(spawnWorker(env));
    await Promise.all(
      Array.from({ length: patients }, async (_, p) => {
        const client = await TestMllpClient.connect(engine!.port());
        try {
          for (let k = 0; k < perPatient; k++) {
            const text = adt({
              controlId: `K${p}-${k}`,
              trigger: k === 0 ? 'A04' : 'A08',
              mrn: `K${p}`,
              given: `G${k}`,
            });
            expect(ackField(await client.send(text, 10_000), 'MSA', 1)).toBe('AA');
          }
        } finally {
          client.close();
        }
      }),
    );
    await waitFor('the first deliveries', () =>
      Promise.resolve(readRecords<MllpSinkRecord>(record).length >= 60 ? true : undefined),
    );
    children[0].kill('SIGKILL');
    const atKill = readRecords<MllpSinkRecord>(record).length;
    expect(atKill).toBeLessThan(patients * perPatient); // killed mid-stream
    children.push(spawnWorker(env)); // the operator starts another worker

    const total = patients * perPatient;
    await waitFor(
      'every delivery',
      async () => {
        const [row] = await ds!.query<Array<{ n: number }>>(
          `SELECT count(*)::int AS n FROM delivery WHERE status = 'delivered'`,
        );
        return row.n === total ? true : undefined;
      },
      120_000,
    );
    const got = readRecords<MllpSinkRecord>(record).filter((r) => r.ack === 'AA');
    const firstSeen = new Map<string, number[]>();
    const seen = new Set<string>();
    for (const r of got) {
      if (seen.has(r.controlId)) {
        continue; // re-sent after the crash (at-least-once)
      }
      seen.add(r.controlId);
      const [patient, k] = r.controlId.split('-');
      firstSeen.set(patient, [...(firstSeen.get(patient) ?? []), Number(k)]);
    }
    expect(seen.size).toBe(total);
    for (const seq of firstSeen.values()) {
      expect(seq).toEqual(Array.from({ length: perPatient }, (_, k) => k));
    }
    // Only what was in flight at the kill can come twice (one batch at most).
    expect(got.length - total).toBeLessThanOrEqual(500);
  });
});
