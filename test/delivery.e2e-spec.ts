import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HttpSinkRecord } from '../scripts/sink-http';
import type { MllpSinkRecord } from '../scripts/sink-mllp';
import { ADMIN_KEY, startTestEngine, type TestEngine } from './support/engine';
import { adt } from './support/messages';
import { ackField, TestMllpClient } from './support/mllp-client';
import { DataSource } from 'typeorm';
import { parseMessage } from '@engine/hl7';
import { MpiPipeline, MpiStore, normalizeMessage } from '@engine/mpi';
import { ReviewEverything } from './support/review-everything';
import { sleep, waitFor } from './support/wait';
import { freePort, killSinks, readRecords, type RunningSink, startSink } from './support/sinks';

/**
 * Routing and delivery end to end, with real sink processes: the gateway, the pipeline worker,
 * the delivery worker and the API in one engine; an MLLP sink as the records system (EHR) and
 * an HTTP sink as billing that fails a third of its requests.
 */

jest.setTimeout(240_000);

/** The parts of the JSON event envelope (docs/events.md) these tests read. */
interface Envelope {
  id: string;
  type: string;
  euid: string;
  source: { controlId: string | null };
  data: Record<string, unknown>;
}

describe('routing and delivery (e2e, real sinks)', () => {
  let dir: string;
  let engine: TestEngine;
  let ehr: RunningSink;
  let billing: RunningSink;
  let ehrPort: number;
  let ehrFile: string;
  /** The record file of the EHR sink running now. */
  let ehrNow: string;
  let billingFile: string;

  const api = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(`${engine.url}${path}`, {
      ...init,
      headers: {
        authorization: `Bearer ${ADMIN_KEY}`,
        'content-type': 'application/json',
        ...(init.headers as Record<string, string>),
      },
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  const destinations = async () =>
    (await api('/api/destinations')).body.items as Array<{
      id: string;
      paused: boolean;
      counts: Record<string, number>;
      lagSeconds: number;
    }>;

  /** Resolves once every message is applied and neither destination has anything pending. */
  const drained = () =>
    waitFor('every delivery to be done', async () => {
      const waiting = await api('/api/messages?status=received');
      if ((waiting.body.items as unknown[]).length > 0) {
        return undefined;
      }
      const d = await destinations();
      return d.every((x) => x.counts.pending === 0) ? d : undefined;
    });

  const startEhr = (file: string, extra: string[] = []) =>
    startSink('sink-mllp.ts', ['--quiet', '--record', file, ...extra], ehrPort);

  async function send(messages: string[][]): Promise<void> {
    // One connection per patient stream: each patient's messages are sent in order.
    await Promise.all(
      messages.map(async (stream) => {
        const client = await TestMllpClient.connect(engine.port());
        try {
          for (const text of stream) {
            expect(ackField(await client.send(text, 10_000), 'MSA', 1)).toBe('AA');
          }
        } finally {
          client.close();
        }
      }),
    );
  }

  /** `patients` patients × `perPatient` messages: an A04, then A08 updates; control ids P-k. */
  function streams(tag: string, patients: number, perPatient: number): string[][] {
    return Array.from({ length: patients }, (_, p) =>
      Array.from({ length: perPatient }, (_, k) =>
        adt({
          controlId: `${tag}${p}-${k}`,
          trigger: k === 0 ? 'A04' : 'A08',
          mrn: `${tag}${p}`,
          family: `FAM${p}`,
          given: `GIVEN${k}`,
        }),
      ),
    );
  }

  /** Per patient (first PID-3 id), the sequence numbers of the control ids received with AA. */
  function ehrSequences(file: string, tag: string): Map<string, number[]> {
    const out = new Map<string, number[]>();
    for (const r of readRecords<MllpSinkRecord>(file)) {
      if (r.ack !== 'AA' || !r.controlId.startsWith(tag)) {
        continue;
      }
      const patient = r.pid3[0].split('^')[0];
      const k = Number(r.controlId.split('-')[1]);
      out.set(patient, [...(out.get(patient) ?? []), k]);
    }
    return out;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'delivery-e2e-'));
    ehrPort = await freePort();
    ehrFile = join(dir, 'ehr-1.jsonl');
    billingFile = join(dir, 'billing.jsonl');
    ehr = await startEhr(ehrFile, ['--reject-pattern', 'REJECTME']);
    ehrNow = ehrFile;
    billing = await startSink('sink-http.ts', [
      '--quiet',
      '--record',
      billingFile,
      '--fail-rate',
      '0.3',
      '--seed',
      '7',
    ]);
    const retry = { maxAttempts: 0, initialDelayMs: 100, maxDelayMs: 1000, multiplier: 2 };
    engine = await startTestEngine({
      roles: ['gateway', 'worker', 'api'],
      config: {
        destinations: [
          {
            id: 'ehr',
            type: 'mllp',
            host: '127.0.0.1',
            port: ehrPort,
            format: 'hl7',
            timeoutMs: 2000,
            retry,
          },
          {
            id: 'billing',
            type: 'http',
            url: `http://127.0.0.1:${billing.port}/events`,
            format: 'json',
            concurrency: 8,
            retry,
          },
        ],
        routes: [
          { id: 'adt-to-ehr', source: { feed: 'default' }, destinations: ['ehr'] },
          {
            id: 'decisions-to-ehr',
            source: { events: ['patient.merged', 'patient.linked'] },
            filter: { origins: ['decision'] },
            destinations: ['ehr'],
          },
          {
            id: 'events-to-billing',
            source: { events: ['patient.*'] },
            destinations: ['billing'],
          },
        ],
      },
    });
  });

  afterAll(async () => {
    await engine?.close();
    killSinks();
    rmSync(dir, { recursive: true, force: true });
  });

  it("keeps each patient's order at both sinks while billing fails intermittently", async () => {
    const input = streams('P', 12, 6);
    await send(input);
    await drained();

    const ehrSeq = ehrSequences(ehrFile, 'P');
    expect(ehrSeq.size).toBe(12);
    for (const seq of ehrSeq.values()) {
      expect(seq).toEqual([0, 1, 2, 3, 4, 5]); // each once, in order
    }
    // The EHR gets the EUID added to PID-3 under the engine's authority.
    const first = readRecords<MllpSinkRecord>(ehrFile)[0];
    expect(first.pid3.some((id) => /\^\^\^EUID\^PI$/.test(id))).toBe(true);

    const records = readRecords<HttpSinkRecord>(billingFile);
    expect(records.some((r) => r.status === 503)).toBe(true); // retries happened
    const accepted = records
      .filter((r) => r.status === 200)
      .map((r) => JSON.parse(r.body) as Envelope);
    const ids = accepted.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length); // nothing twice
    // Per patient, the events follow the order of the messages that caused them.
    const byEuid = new Map<string, number[]>();
    for (const e of accepted) {
      const k = Number(String(e.source.controlId).split('-')[1]);
      byEuid.set(e.euid, [...(byEuid.get(e.euid) ?? []), k]);
    }
    expect(byEuid.size).toBe(12);
    for (const seq of byEuid.values()) {
      expect(seq).toEqual([...seq].sort((a, b) => a - b));
      expect(seq[0]).toBe(0); // patient.created from the A04 first
    }
    const [ehrCounts] = (await destinations()).filter((d) => d.id === 'ehr');
    expect(ehrCounts.counts.delivered).toBe(72);
  });

  it('an AE from the EHR dead-letters the delivery; a replay after the fix delivers it once', async () => {
    await send([[adt({ controlId: 'REJ-0', mrn: 'REJ1', family: 'REJECTME' })]]);
    const dead = await waitFor('the dead letter', async () => {
      const page = await api('/api/deliveries?status=dead&destination=ehr');
      const items = page.body.items as Array<Record<string, unknown>>;
      return items.length > 0 ? items : undefined;
    });
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ status: 'dead', remoteAck: 'AE', attempts: 1 });
    expect(String(dead[0].lastError)).toMatch(/AE/);

    // The fix: the EHR accepts the message now.
    await ehr.stop();
    const fixedFile = join(dir, 'ehr-2.jsonl');
    ehr = await startEhr(fixedFile);
    ehrNow = fixedFile;
    const replay = await api(`/api/deliveries/${String(dead[0].id)}/replay`, { method: 'POST' });
    expect(replay.status).toBe(200);
    await drained();
    const got = readRecords<MllpSinkRecord>(fixedFile).filter((r) => r.controlId === 'REJ-0');
    expect(got.map((r) => r.ack)).toEqual(['AA']);
    expect((await api(`/api/deliveries/${String(dead[0].id)}`)).body).toMatchObject({
      status: 'delivered',
      remoteAck: 'AA',
    });
    // Replaying it again needs force: a delivered message is not sent twice by accident.
    const again = await api(`/api/deliveries/${String(dead[0].id)}/replay`, { method: 'POST' });
    expect(again.status).toBe(400);
  });

  it('merges reach both systems: a source A40 and a worklist merge (A40 to the EHR, patient.merged to billing)', async () => {
    // A merge sent by a source: the EHR gets the A40 itself, billing a patient.merged event.
    await send([
      [
        adt({ controlId: 'M-0', trigger: 'A04', mrn: 'MA1', family: 'MERGE' }),
        adt({ controlId: 'M-1', trigger: 'A04', mrn: 'MB1', family: 'MERGE' }),
        adt({
          controlId: 'M-2',
          trigger: 'A40',
          mrn: 'MA1',
          segments: [
            'EVN|A40|20240101120000',
            'PID|1||MA1^^^HOSP^MR||MERGE^JANE||19800101|F',
            'MRG|MB1^^^HOSP^MR',
          ],
        }),
      ],
    ]);
    await drained();
    const a40 = readRecords<MllpSinkRecord>(ehrNow).filter((r) => r.controlId === 'M-2');
    expect(a40.map((r) => [r.type, r.ack])).toEqual([['ADT^A40', 'AA']]);
    const merged = () =>
      readRecords<HttpSinkRecord>(billingFile)
        .filter((r) => r.status === 200)
        .map((r) => JSON.parse(r.body) as Envelope)
        .filter((e) => e.type === 'patient.merged');
    expect(merged()).toHaveLength(1);
    expect(merged()[0].source.controlId).toBe('M-2');

    // A worklist merge (no source message): the EHR gets an A40 the engine builds.
    const ds = new DataSource({ type: 'postgres', url: engine.databaseUrl, poolSize: 2 });
    await ds.initialize();
    try {
      const seed = new MpiPipeline(new MpiStore(ds), {
        survivorship: { default: 'mostRecent', trustedAuthorities: [], fields: {} },
        identity: new ReviewEverything(),
      });
      for (const [mrn, auth] of [
        ['W1', 'CLINIC'],
        ['W2', 'LAB'],
      ]) {
        const m = parseMessage(
          adt({ mrn, authority: auth, family: 'WORKLIST', given: 'ROBIN', trigger: 'A04' }),
        );
        await seed.applyBatch([
          { messageId: null, receivedAt: new Date(), normalized: normalizeMessage(m) },
        ]);
      }
    } finally {
      await ds.destroy();
    }
    // The worklist holds other pairs too (the earlier test patients look alike): take ours.
    const tasks = (
      (await api('/api/duplicates?status=open&limit=200')).body.items as Array<{
        id: string;
        left: { euid: string; identifiers: Array<{ value: string }> };
        right: { euid: string; identifiers: Array<{ value: string }> };
      }>
    ).filter((t) =>
      [...t.left.identifiers, ...t.right.identifiers].some((i) => /^W[12]$/.test(i.value)),
    );
    expect(tasks).toHaveLength(1);
    const decision = await api(`/api/duplicates/${tasks[0].id}/decision`, {
      method: 'POST',
      body: JSON.stringify({
        action: 'merge',
        survivor: tasks[0].left.euid,
        reason: 'same person',
      }),
    });
    expect(decision.status).toBe(200);
    await drained();
    const built = readRecords<MllpSinkRecord>(ehrNow).filter((r) => r.type === 'ADT^A40');
    expect(built).toHaveLength(2);
    const worklistA40 = built.find((r) => r.controlId !== 'M-2')!;
    expect(worklistA40.ack).toBe('AA');
    expect(worklistA40.pid3).toContain(`${tasks[0].left.euid}^^^EUID^PI`);
    expect(worklistA40.message).toContain(`MRG|${tasks[0].right.euid}^^^EUID^PI`);
    const events = merged();
    expect(events).toHaveLength(2);
    expect(events[1]).toMatchObject({
      euid: tasks[0].left.euid,
      data: { retiredEuid: tasks[0].right.euid },
    });
  });

  it('a paused destination holds its deliveries until it is resumed', async () => {
    const paused = await api('/api/destinations/ehr/pause', {
      method: 'POST',
      body: JSON.stringify({ reason: 'EHR maintenance' }),
    });
    expect(paused.body).toEqual({ id: 'ehr', paused: true });
    await send(streams('Q', 3, 3));
    let ehrState = await waitFor('the paused deliveries', async () => {
      const d = (await destinations()).find((x) => x.id === 'ehr')!;
      return d.counts.pending === 9 ? d : undefined;
    });
    expect(ehrState.paused).toBe(true);
    await sleep(1000); // a paused destination sends nothing, however long it waits
    expect(ehrSequences(ehrNow, 'Q').size).toBe(0);
    // Billing is not paused: its events went out.
    expect((await destinations()).find((d) => d.id === 'billing')!.paused).toBe(false);

    await api('/api/destinations/ehr/resume', { method: 'POST', body: '{}' });
    ehrState = (await drained()).find((d) => d.id === 'ehr')!;
    expect(ehrState.paused).toBe(false);
    expect(ehrSequences(ehrNow, 'Q').size).toBe(3);
    for (const seq of ehrSequences(ehrNow, 'Q').values()) {
      expect(seq).toEqual([0, 1, 2]);
    }
    expect((await api('/api/destinations/nope/pause', { method: 'POST' })).status).toBe(404);
  });

  it('the EHR down for 60 seconds: everything arrives once it is back, in order, nothing twice', async () => {
    await ehr.stop();
    const downFile = join(dir, 'ehr-3.jsonl');
    await send(streams('D', 6, 5));
    const downSince = Date.now();
    // Meanwhile the deliveries wait and retry; the lag grows.
    await waitFor('the waiting deliveries', async () => {
      const d = (await destinations()).find((x) => x.id === 'ehr')!;
      return d.counts.pending === 30 && d.lagSeconds > 3 ? d : undefined;
    });
    const pending = await api('/api/deliveries?destination=ehr&status=pending&limit=500');
    const items = pending.body.items as Array<{ attempts: number; lastError: string }>;
    expect(items.some((i) => i.attempts > 0 && /ECONNREFUSED/.test(i.lastError))).toBe(true);
    await sleep(Math.max(0, 60_000 - (Date.now() - downSince)));

    ehr = await startEhr(downFile);
    ehrNow = downFile;
    await drained();
    const seq = ehrSequences(downFile, 'D');
    expect(seq.size).toBe(6);
    for (const s of seq.values()) {
      expect(s).toEqual([0, 1, 2, 3, 4]);
    }
  });
});
