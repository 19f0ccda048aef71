import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import { type DeliveryRow, MpiStore, WorkingSet } from '@engine/mpi';
import { createDataSource } from './data-source';
import { DeliveryStore } from './delivery.store';
import { createTestDatabase, type TestDatabase } from './testing';

const EUID = '01890a5d-ac96-774b-bcce-b302099a8057';

function row(n: number, over: Partial<DeliveryRow> = {}): DeliveryRow {
  return {
    destination: 'ehr',
    route: 'r',
    lane: 3,
    kind: 'event',
    messageId: null,
    eventType: 'patient.updated',
    eventKey: `k${n}`,
    euid: EUID,
    payload: { n },
    dedupeKey: `e:k${n}`,
    ...over,
  };
}

describe('DeliveryStore', () => {
  let pg: TestDatabase;
  let dir: string;

  beforeAll(async () => {
    pg = await createTestDatabase();
    dir = mkdtempSync(join(tmpdir(), 'delivery-store-'));
  });
  afterAll(async () => {
    await pg.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  const cases: Array<[string, () => DataSource]> = [
    ['postgres', () => createDataSource({ databaseUrl: pg.url, poolSize: 2 })],
    ['sqlite', () => createDataSource({ sqlitePath: join(dir, 'engine.sqlite') })],
  ];

  describe.each(cases)('%s', (_name, make) => {
    let ds: DataSource;
    let store: DeliveryStore;
    let mpi: MpiStore;
    const t0 = new Date('2026-01-01T10:00:00.000Z');

    beforeAll(async () => {
      ds = make();
      await ds.initialize();
      store = new DeliveryStore(ds);
      mpi = new MpiStore(ds);
    });
    afterAll(() => ds.destroy());

    it('keeps one row per (destination, dedupe key) and reads a lane in id order', async () => {
      await mpi.flush(new WorkingSet(), [], t0, [row(1), row(2), row(3)]);
      // The same keys again (a message applied twice): nothing new.
      await mpi.flush(new WorkingSet(), [], t0, [row(2), row(1, { destination: 'billing' })]);
      const lane = await store.pendingInLane('ehr', 3, 10);
      expect(lane.map((d) => d.payload)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
      expect(lane[0]).toMatchObject({
        destination: 'ehr',
        kind: 'event',
        euid: EUID,
        status: 'pending',
        attempts: 0,
        createdAt: t0,
        nextAttemptAt: t0,
      });
      expect(await store.pendingLanes()).toEqual(
        expect.arrayContaining([
          { destination: 'ehr', lane: 3, dueAt: t0 },
          { destination: 'billing', lane: 3, dueAt: t0 },
        ]),
      );
    });

    it('reads due deliveries in id order, skipping lanes that wait for a retry', async () => {
      const lab = (n: number, lane: number) =>
        row(n, { destination: 'lab', lane, dedupeKey: `lab:${n}` });
      await mpi.flush(new WorkingSet(), [], t0, [lab(1, 3), lab(2, 5), lab(3, 3), lab(4, 5)]);
      const due = await store.dueDeliveries('lab', t0, 10);
      expect(due.map((d) => [d.lane, d.payload])).toEqual([
        [3, { n: 1 }],
        [5, { n: 2 }],
        [3, { n: 3 }],
        [5, { n: 4 }],
      ]);
      expect((await store.dueDeliveries('lab', t0, 10, [3])).map((d) => d.lane)).toEqual([5, 5]);
      expect(await store.dueDeliveries('lab', new Date(t0.getTime() - 1), 10)).toEqual([]);

      const retryAt = new Date(t0.getTime() + 30_000);
      await store.markRetry(due[0].id, 'AR', 'AR', retryAt, t0);
      expect(await store.blockedLanes('lab', t0)).toEqual(new Map([[3, retryAt]]));
      expect(await store.nextDue('lab')).toEqual(t0);
      expect(await store.nextDue('nowhere')).toBeNull();

      const at = new Date(t0.getTime() + 250);
      expect(
        await store.markDeliveredMany([
          { id: due[1].id, remoteAck: 'AA', at },
          { id: due[3].id, remoteAck: 'CA', at },
          { id: due[1].id, remoteAck: 'AA', at }, // already delivered: not counted twice
        ]),
      ).toBe(2);
      expect(await store.get(due[3].id)).toMatchObject({
        status: 'delivered',
        remoteAck: 'CA',
        latencyMs: 250,
        attempts: 1,
      });
    });

    it('records outcomes, replays dead ones, and delivered ones only when forced', async () => {
      const [a, b, c] = await store.pendingInLane('ehr', 3, 10);
      const later = new Date(t0.getTime() + 1500);
      expect(await store.markDelivered(a.id, 'AA', later)).toBe(true);
      expect(await store.markDelivered(a.id, 'AA', later)).toBe(false); // not twice
      await store.markRetry(
        b.id,
        'connect ECONNREFUSED',
        null,
        new Date(t0.getTime() + 60_000),
        later,
      );
      await store.markDead(c.id, 'remote AE: bad PID', 'AE', later);

      expect(await store.get(a.id)).toMatchObject({
        status: 'delivered',
        attempts: 1,
        remoteAck: 'AA',
        latencyMs: 1500,
        deliveredAt: later,
      });
      expect(await store.get(b.id)).toMatchObject({
        status: 'pending',
        attempts: 1,
        lastError: 'connect ECONNREFUSED',
      });
      expect(await store.get(c.id)).toMatchObject({ status: 'dead', remoteAck: 'AE', attempts: 1 });

      const counts = (await store.counts(new Date(t0.getTime() + 10_000))).get('ehr');
      expect(counts).toEqual({
        pending: 1,
        delivered: 1,
        dead: 1,
        skipped: 0,
        lagMs: 10_000,
        retrying: 1,
      });
      const dead = await store.search({ destination: 'ehr', status: 'dead' });
      expect(dead.items.map((d) => d.id)).toEqual([c.id]);

      // Replay: dead → pending; delivered stays unless forced.
      const r1 = await store.replay([a.id, c.id]);
      expect(r1).toEqual({ replayed: [c.id], lanes: [{ destination: 'ehr', lane: 3 }] });
      expect(await store.get(c.id)).toMatchObject({ status: 'pending', attempts: 0 });
      const r2 = await store.replay([a.id], { force: true });
      expect(r2.replayed).toEqual([a.id]);
      expect(await store.get(a.id)).toMatchObject({
        status: 'pending',
        redeliveries: 1,
        deliveredAt: null,
      });
      expect(await store.replay(['nope'])).toEqual({ replayed: [], lanes: [] });
    });

    it('replays every dead delivery of a destination and pages newest first', async () => {
      const [first] = await store.pendingInLane('billing', 3, 1);
      await store.markDead(first.id, 'HTTP 400', 'HTTP 400', new Date());
      expect((await store.replayDead('ehr')).replayed).toEqual([]);
      expect((await store.replayDead()).replayed).toEqual([first.id]);
      const page1 = await store.search({ limit: 2 });
      expect(page1.items).toHaveLength(2);
      const page2 = await store.search({ limit: 2, cursor: page1.nextCursor! });
      expect([...page1.items, ...page2.items].map((d) => Number(d.id))).toEqual(
        [...[...page1.items, ...page2.items].map((d) => Number(d.id))].sort((x, y) => y - x),
      );
    });

    it('keeps pause state per destination', async () => {
      await store.setPaused('ehr', true, 'admin/alice', 'maintenance');
      await store.setPaused('ehr', false, 'admin/bob', 'done');
      await store.setPaused('billing', true, 'admin/alice', '');
      const states = await store.destinationStates();
      expect(states.get('ehr')).toMatchObject({ paused: false, changedBy: 'admin/bob' });
      expect(states.get('billing')).toMatchObject({ paused: true, reason: '' });
    });
  });
});
