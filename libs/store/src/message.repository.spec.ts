import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { v7 as uuidv7 } from 'uuid';
import type { DataSource } from 'typeorm';
import { createDataSource } from './data-source';
import { MessageRepository } from './message.repository';
import { StoreError } from './paging';
import type { NewMessage } from './message.types';
import { createTestDatabase, type TestDatabase } from './testing';

const T0 = Date.parse('2025-11-28T10:00:00.000Z');
const MINUTE = 60_000;

/** Bytes that are not valid UTF-8 (windows-1252 é, a lone 0xFF, a NUL). */
const NON_UTF8 = Buffer.from([0x4d, 0x53, 0x48, 0x7c, 0xe9, 0xff, 0x00, 0x0d, 0x80, 0x81]);

function hl7(controlId: string, extra = ''): Buffer {
  return Buffer.concat([
    Buffer.from(
      `MSH|^~\\&|APP|FAC|ENG|HOSP|20251128||ADT^A01|${controlId}|P|2.5.1\rPID|||1${extra}\r`,
    ),
    NON_UTF8,
  ]);
}

function msg(over: Partial<NewMessage> & { raw?: Buffer } = {}): NewMessage {
  const raw = over.raw ?? hl7(over.controlId ?? 'C1');
  return {
    id: uuidv7(),
    feed: 'default',
    controlId: 'C1',
    type: 'ADT',
    trigger: 'A01',
    version: '2.5.1',
    sendingApplication: 'APP',
    sendingFacility: 'FAC',
    receivingApplication: 'ENG',
    receivingFacility: 'HOSP',
    receivedAt: new Date(T0),
    remoteAddress: '10.0.0.1:5000',
    partition: 3,
    partitionKey: 'MRN1^HOSP',
    status: 'received',
    contentHash: createHash('sha256').update(raw).digest('hex'),
    ...over,
    raw,
  };
}

describe('MessageRepository', () => {
  let pgDb: TestDatabase;
  let dir: string;

  beforeAll(async () => {
    pgDb = await createTestDatabase();
    dir = mkdtempSync(join(tmpdir(), 'store-repo-'));
  });

  afterAll(async () => {
    await pgDb.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  const cases: Array<[string, () => DataSource]> = [
    ['postgres', () => createDataSource({ databaseUrl: pgDb.url, poolSize: 4 })],
    ['sqlite', () => createDataSource({ sqlitePath: join(dir, `${randomUUID()}.sqlite`) })],
  ];

  describe.each(cases)('%s', (_name, make) => {
    let ds: DataSource;
    let repo: MessageRepository;

    beforeEach(async () => {
      ds = make();
      await ds.initialize();
      await ds.query('DELETE FROM "message"');
      repo = new MessageRepository(ds);
    });

    afterEach(async () => {
      await ds.destroy();
    });

    describe('insertBatch', () => {
      it('stores the exact bytes and every field, and returns ids in input order', async () => {
        const rows = [
          msg({ controlId: 'A' }),
          msg({ controlId: 'B', raw: NON_UTF8, errorCode: null, ackCode: 'AA' }),
          msg({ controlId: 'C', partition: 7 }),
        ];
        const results = await repo.insertBatch(rows, { dedupWindowMs: MINUTE });
        expect(results).toEqual(rows.map((r) => ({ id: r.id, duplicate: false })));

        const b = await repo.findById(rows[1].id);
        expect(b).not.toBeNull();
        expect(Buffer.isBuffer(b?.raw)).toBe(true);
        expect(b?.raw.equals(NON_UTF8)).toBe(true);
        expect(b).toMatchObject({
          id: rows[1].id,
          feed: 'default',
          controlId: 'B',
          type: 'ADT',
          trigger: 'A01',
          version: '2.5.1',
          sendingApplication: 'APP',
          sendingFacility: 'FAC',
          receivingApplication: 'ENG',
          receivingFacility: 'HOSP',
          remoteAddress: '10.0.0.1:5000',
          partition: 3,
          partitionKey: 'MRN1^HOSP',
          contentHash: rows[1].contentHash,
          status: 'received',
          errorCode: null,
          errorReason: null,
          ackCode: 'AA',
          processedAt: null,
        });
        expect(b?.receivedAt).toEqual(new Date(T0));
        expect(b?.updatedAt).toBeInstanceOf(Date);
        expect((await repo.findById(rows[2].id))?.partition).toBe(7);
      });

      it('returns [] for an empty batch', async () => {
        expect(await repo.insertBatch([], { dedupWindowMs: MINUTE })).toEqual([]);
      });

      it('dedups an identical resend within the window (earlier row in the database)', async () => {
        const first = msg();
        await repo.insertBatch([first], { dedupWindowMs: MINUTE });
        const resend = msg({ receivedAt: new Date(T0 + 30_000) });
        expect(await repo.insertBatch([resend], { dedupWindowMs: MINUTE })).toEqual([
          { id: first.id, duplicate: true },
        ]);
        expect(await repo.findById(resend.id)).toBeNull();
      });

      it('dedups an identical resend within the same batch', async () => {
        const a = msg();
        const other = msg({ controlId: 'X' });
        const b = msg({ receivedAt: new Date(T0 + 5) });
        const c = msg({ receivedAt: new Date(T0 + 9) });
        expect(await repo.insertBatch([a, other, b, c], { dedupWindowMs: MINUTE })).toEqual([
          { id: a.id, duplicate: false },
          { id: other.id, duplicate: false },
          { id: a.id, duplicate: true },
          { id: a.id, duplicate: true },
        ]);
        expect(await repo.findById(b.id)).toBeNull();
        expect(await repo.findById(c.id)).toBeNull();
      });

      it('maps an in-batch resend of a database duplicate to the stored row', async () => {
        const stored = msg();
        await repo.insertBatch([stored], { dedupWindowMs: MINUTE });
        const a = msg({ receivedAt: new Date(T0 + 10) });
        const b = msg({ receivedAt: new Date(T0 + 20) });
        expect(await repo.insertBatch([a, b], { dedupWindowMs: MINUTE })).toEqual([
          { id: stored.id, duplicate: true },
          { id: stored.id, duplicate: true },
        ]);
      });

      it('does not dedup different content with the same control id', async () => {
        const first = msg();
        await repo.insertBatch([first], { dedupWindowMs: MINUTE });
        const changed = msg({ raw: hl7('C1', 'changed'), receivedAt: new Date(T0 + 1000) });
        const sameBatch = msg({ raw: hl7('C1', 'again'), receivedAt: new Date(T0 + 1000) });
        expect(await repo.insertBatch([changed, sameBatch], { dedupWindowMs: MINUTE })).toEqual([
          { id: changed.id, duplicate: false },
          { id: sameBatch.id, duplicate: false },
        ]);
      });

      it('does not dedup across feeds or sending facilities', async () => {
        const a = msg();
        const b = msg({ feed: 'other' });
        const c = msg({ sendingFacility: 'FAC2' });
        const results = await repo.insertBatch([a, b, c], { dedupWindowMs: MINUTE });
        expect(results.map((r) => r.duplicate)).toEqual([false, false, false]);
      });

      it('does not dedup a resend after the window, nor with the window 0', async () => {
        const first = msg();
        await repo.insertBatch([first], { dedupWindowMs: MINUTE });
        const late = msg({ receivedAt: new Date(T0 + MINUTE + 1) });
        expect(await repo.insertBatch([late], { dedupWindowMs: MINUTE })).toEqual([
          { id: late.id, duplicate: false },
        ]);
        const batchLate = [msg({ receivedAt: new Date(T0 + 10 * MINUTE) })];
        batchLate.push(msg({ receivedAt: new Date(T0 + 12 * MINUTE) }));
        expect(
          (await repo.insertBatch(batchLate, { dedupWindowMs: MINUTE })).map((r) => r.duplicate),
        ).toEqual([false, false]);
        const off = [msg(), msg()];
        expect(await repo.insertBatch(off, { dedupWindowMs: 0 })).toEqual(
          off.map((r) => ({ id: r.id, duplicate: false })),
        );
      });

      it('always inserts rejected rows, and never matches a resend against them', async () => {
        const rejected = {
          status: 'rejected',
          errorCode: 'UNSUPPORTED_TYPE',
          errorReason: 'type ZZZ not accepted on feed default',
          ackCode: 'AR',
        } as const;
        const r1 = msg(rejected);
        const r2 = msg({ ...rejected, receivedAt: new Date(T0 + 1) });
        expect(await repo.insertBatch([r1, r2], { dedupWindowMs: MINUTE })).toEqual([
          { id: r1.id, duplicate: false },
          { id: r2.id, duplicate: false },
        ]);
        const r3 = msg({ ...rejected, receivedAt: new Date(T0 + 2) });
        const accepted = msg({ receivedAt: new Date(T0 + 3) });
        expect(await repo.insertBatch([r3, accepted], { dedupWindowMs: MINUTE })).toEqual([
          { id: r3.id, duplicate: false },
          { id: accepted.id, duplicate: false },
        ]);
        expect(await repo.findById(r2.id)).toMatchObject({
          status: 'rejected',
          errorCode: 'UNSUPPORTED_TYPE',
          errorReason: 'type ZZZ not accepted on feed default',
          ackCode: 'AR',
        });
      });

      it('treats a retried commit of the same ids as stored, not as a duplicate', async () => {
        const rows = [msg(), msg({ controlId: 'D' })];
        await repo.insertBatch(rows, { dedupWindowMs: MINUTE });
        expect(await repo.insertBatch(rows, { dedupWindowMs: MINUTE })).toEqual(
          rows.map((r) => ({ id: r.id, duplicate: false })),
        );
        expect(await repo.insertBatch(rows, { dedupWindowMs: 0 })).toEqual(
          rows.map((r) => ({ id: r.id, duplicate: false })),
        );
      });

      /** id → resend_generation of every stored row. */
      async function generations(): Promise<Record<string, number>> {
        const found = await ds.query<Array<{ id: string; g: number }>>(
          'SELECT "id", "resend_generation" AS g FROM "message"',
        );
        return Object.fromEntries(found.map((r) => [r.id, Number(r.g)]));
      }

      it('stores identical rejected payloads with increasing resend generations', async () => {
        const rejected = {
          status: 'rejected',
          errorCode: 'UNSUPPORTED_TYPE',
          ackCode: 'AR',
        } as const;
        const r1 = msg(rejected);
        const r2 = msg({ ...rejected, receivedAt: new Date(T0 + 1) });
        await repo.insertBatch([r1], { dedupWindowMs: MINUTE });
        expect(await repo.insertBatch([r2], { dedupWindowMs: MINUTE })).toEqual([
          { id: r2.id, duplicate: false },
        ]);
        const r3 = msg({ ...rejected, receivedAt: new Date(T0 + 2) });
        const r4 = msg({ ...rejected, receivedAt: new Date(T0 + 3) });
        expect(await repo.insertBatch([r3, r4], { dedupWindowMs: MINUTE })).toEqual([
          { id: r3.id, duplicate: false },
          { id: r4.id, duplicate: false },
        ]);
        expect(await generations()).toEqual({ [r1.id]: 0, [r2.id]: 1, [r3.id]: 2, [r4.id]: 3 });
      });

      it('stores every identical arrival with the window 0 (policy process)', async () => {
        const a = msg();
        const b = msg({ receivedAt: new Date(T0 + 1) });
        const c = msg({ receivedAt: new Date(T0 + 2) });
        const d = msg({ receivedAt: new Date(T0 + 3) });
        expect(await repo.insertBatch([a], { dedupWindowMs: 0 })).toEqual([
          { id: a.id, duplicate: false },
        ]);
        expect(await repo.insertBatch([b, c, d], { dedupWindowMs: 0 })).toEqual(
          [b, c, d].map((r) => ({ id: r.id, duplicate: false })),
        );
        expect(await generations()).toEqual({ [a.id]: 0, [b.id]: 1, [c.id]: 2, [d.id]: 3 });
        // Back to a window: a resend matches the earliest received identical row.
        const resend = msg({ receivedAt: new Date(T0 + 10) });
        expect(await repo.insertBatch([resend], { dedupWindowMs: MINUTE })).toEqual([
          { id: a.id, duplicate: true },
        ]);
      });

      it('stores a resend after the window as a new generation, and dedups against it', async () => {
        const first = msg();
        await repo.insertBatch([first], { dedupWindowMs: MINUTE });
        const late = msg({ receivedAt: new Date(T0 + 5 * MINUTE) });
        expect(await repo.insertBatch([late], { dedupWindowMs: MINUTE })).toEqual([
          { id: late.id, duplicate: false },
        ]);
        const again = msg({ receivedAt: new Date(T0 + 5 * MINUTE + 30_000) });
        const other = msg({ controlId: 'OTHER' });
        expect(await repo.insertBatch([other, again], { dedupWindowMs: MINUTE })).toEqual([
          { id: other.id, duplicate: false },
          { id: late.id, duplicate: true },
        ]);
        expect(await generations()).toEqual({ [first.id]: 0, [late.id]: 1, [other.id]: 0 });
      });

      it('stores nothing twice when the same rows are retried (same ids)', async () => {
        await repo.insertBatch([msg({ controlId: 'OLD' })], { dedupWindowMs: MINUTE });
        const rejected = msg({ controlId: 'OLD', status: 'rejected', errorCode: 'X' });
        const fresh = msg({ controlId: 'NEW' });
        const late = msg({ controlId: 'OLD', receivedAt: new Date(T0 + 9 * MINUTE) });
        const rows = [fresh, rejected, late];
        const expected = rows.map((r) => ({ id: r.id, duplicate: false }));
        expect(await repo.insertBatch(rows, { dedupWindowMs: MINUTE })).toEqual(expected);
        const before = await generations();
        expect(Object.keys(before)).toHaveLength(4);
        expect([before[rejected.id], before[late.id]]).toEqual([1, 2]);
        for (const window of [MINUTE, 0]) {
          expect(await repo.insertBatch(rows, { dedupWindowMs: window })).toEqual(expected);
          expect(await repo.insertBatch([late, fresh], { dedupWindowMs: window })).toEqual([
            expected[2],
            expected[0],
          ]);
        }
        expect(await generations()).toEqual(before);
      });

      it('stores a batch larger than one statement in one call', async () => {
        const rows = Array.from({ length: 2500 }, (_, i) =>
          msg({ controlId: `BIG${i}`, receivedAt: new Date(T0 + i) }),
        );
        rows.push(msg({ controlId: 'BIG7', receivedAt: new Date(T0 + 7) }));
        const results = await repo.insertBatch(rows, { dedupWindowMs: MINUTE });
        expect(results).toHaveLength(2501);
        expect(results[2499]).toEqual({ id: rows[2499].id, duplicate: false });
        expect(results[2500]).toEqual({ id: rows[7].id, duplicate: true });
        const [{ n }] = await ds.query<Array<{ n: string | number }>>(
          'SELECT COUNT(*) AS n FROM "message"',
        );
        expect(Number(n)).toBe(2500);
      });
    });

    describe('search', () => {
      let ids: string[];

      beforeEach(async () => {
        const rows: NewMessage[] = [];
        for (let i = 0; i < 7; i++) {
          rows.push(
            msg({
              controlId: i % 2 === 0 ? 'EVEN' : `ODD${i}`,
              feed: i < 5 ? 'default' : 'lab',
              type: i === 6 ? 'ORU' : 'ADT',
              receivedAt: new Date(T0 + (i < 4 ? i : 4) * 1000),
              raw: hl7(`S${i}`),
            }),
          );
        }
        rows[3] = { ...rows[3], status: 'rejected', errorCode: 'PARSE_ERROR' };
        await repo.insertBatch(rows, { dedupWindowMs: 0 });
        ids = rows.map((r) => r.id);
      });

      it('returns newest first (received_at, id) and pages with a cursor', async () => {
        // rows 4, 5, 6 share one received_at: the id breaks the tie.
        const expected = [ids[6], ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]];
        const seen: string[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const page = await repo.search({ limit: 3, cursor });
          pages++;
          seen.push(...page.items.map((m) => m.id));
          cursor = page.nextCursor ?? undefined;
          expect(page.items.length).toBeLessThanOrEqual(3);
          expect(page.items[0]).not.toHaveProperty('raw');
        } while (cursor);
        expect(seen).toEqual(expected);
        expect(pages).toBe(3);
      });

      it('has no next cursor when the page is not full', async () => {
        const page = await repo.search({ limit: 10 });
        expect(page.items).toHaveLength(7);
        expect(page.nextCursor).toBeNull();
      });

      it('filters by control id, feed, status and type', async () => {
        const byControl = await repo.search({ controlId: 'EVEN' });
        expect(byControl.items.map((m) => m.id)).toEqual([ids[6], ids[4], ids[2], ids[0]]);
        expect((await repo.search({ feed: 'lab' })).items.map((m) => m.id)).toEqual([
          ids[6],
          ids[5],
        ]);
        expect((await repo.search({ status: 'rejected' })).items.map((m) => m.id)).toEqual([
          ids[3],
        ]);
        expect((await repo.search({ type: 'ORU' })).items.map((m) => m.id)).toEqual([ids[6]]);
        expect((await repo.search({ type: 'ADT', trigger: 'A01' })).items).toHaveLength(6);
        expect((await repo.search({ trigger: 'A08' })).items).toEqual([]);
        const combined = await repo.search({ controlId: 'EVEN', feed: 'default', limit: 1 });
        expect(combined.items.map((m) => m.id)).toEqual([ids[4]]);
        const next = await repo.search({
          controlId: 'EVEN',
          feed: 'default',
          limit: 1,
          cursor: combined.nextCursor ?? undefined,
        });
        expect(next.items.map((m) => m.id)).toEqual([ids[2]]);
      });

      it('rejects a malformed cursor with INVALID_CURSOR', async () => {
        await expect(repo.search({ cursor: 'not-a-cursor' })).rejects.toMatchObject({
          code: 'INVALID_CURSOR',
        });
        await expect(repo.search({ cursor: 'not-a-cursor' })).rejects.toBeInstanceOf(StoreError);
      });
    });

    describe('findUnqueued', () => {
      it('returns received rows older than the cut-off, oldest first, with keyset paging', async () => {
        const rows = [0, 1, 2, 3, 4].map((i) =>
          msg({ controlId: `U${i}`, receivedAt: new Date(T0 + i * 1000), partition: i }),
        );
        rows[1] = { ...rows[1], status: 'rejected' };
        await repo.insertBatch(rows, { dedupWindowMs: 0 });
        await repo.setStatus(rows[2].id, 'processed');

        const olderThan = new Date(T0 + 4000); // excludes rows[4]
        const first = await repo.findUnqueued({ olderThan, limit: 1 });
        expect(first).toEqual([
          { id: rows[0].id, feed: 'default', partition: 0, receivedAt: new Date(T0) },
        ]);
        const rest = await repo.findUnqueued({
          olderThan,
          limit: 10,
          after: { receivedAt: first[0].receivedAt, id: first[0].id },
        });
        expect(rest.map((r) => r.id)).toEqual([rows[3].id]);
        expect(rest[0].receivedAt).toEqual(new Date(T0 + 3000));
      });
    });

    describe('setStatus', () => {
      it('sets status, error fields, processed_at and updated_at', async () => {
        const row = msg();
        await repo.insertBatch([row], { dedupWindowMs: 0 });
        const before = await repo.findById(row.id);

        expect(
          await repo.setStatus(row.id, 'error', { errorCode: 'MPI_FAILED', errorReason: 'x' }),
        ).toBe(true);
        const errored = await repo.findById(row.id);
        expect(errored).toMatchObject({
          status: 'error',
          errorCode: 'MPI_FAILED',
          errorReason: 'x',
        });
        expect(errored?.processedAt).toBeInstanceOf(Date);
        expect(errored!.updatedAt.getTime()).toBeGreaterThanOrEqual(before!.updatedAt.getTime());

        await repo.setStatus(row.id, 'received');
        expect(await repo.findById(row.id)).toMatchObject({
          status: 'received',
          errorCode: null,
          errorReason: null,
          processedAt: null,
        });
        await repo.setStatus(row.id, 'processed');
        expect((await repo.findById(row.id))?.processedAt).toBeInstanceOf(Date);
      });

      it('returns false for an unknown id', async () => {
        expect(await repo.setStatus(uuidv7(), 'processed')).toBe(false);
        expect(await repo.setStatus('not-a-uuid', 'processed')).toBe(false);
      });
    });

    describe('reprocess', () => {
      it('puts processed, error and ignored rows back to received, clearing the outcome', async () => {
        for (const status of ['processed', 'error', 'ignored'] as const) {
          const row = msg({ controlId: `RP-${status}` });
          await repo.insertBatch([row], { dedupWindowMs: 0 });
          await repo.setStatus(row.id, status, { errorCode: 'X', errorReason: 'why' });
          await ds.query(
            `UPDATE "message" SET "held" = ${ds.options.type === 'postgres' ? 'true' : '1'}`,
          );
          const before = await repo.findById(row.id);
          const result = await repo.reprocess(row.id);
          expect(result).toMatchObject({
            outcome: 'done',
            message: {
              id: row.id,
              status: 'received',
              errorCode: null,
              errorReason: null,
              processedAt: null,
            },
          });
          expect(result.outcome === 'done' && 'raw' in result.message).toBe(false);
          const after = await repo.findById(row.id);
          expect(after).toMatchObject({ status: 'received', errorCode: null, processedAt: null });
          expect(after!.updatedAt.getTime()).toBeGreaterThanOrEqual(before!.updatedAt.getTime());
          const [{ held }] = await ds.query(
            `SELECT "held" FROM "message" WHERE "id" = ${ds.options.type === 'postgres' ? '$1' : '?'}`,
            [row.id],
          );
          expect(Boolean(held)).toBe(false);
        }
      });

      it('refuses rejected and received rows, and reports unknown ids', async () => {
        const rejected = msg({ controlId: 'RP-REJ', status: 'rejected', errorCode: 'BAD' });
        const received = msg({ controlId: 'RP-RCV' });
        await repo.insertBatch([rejected, received], { dedupWindowMs: 0 });
        expect(await repo.reprocess(rejected.id)).toEqual({
          outcome: 'wrong-status',
          status: 'rejected',
        });
        expect(await repo.findById(rejected.id)).toMatchObject({
          status: 'rejected',
          errorCode: 'BAD',
        });
        expect(await repo.reprocess(received.id)).toEqual({
          outcome: 'wrong-status',
          status: 'received',
        });
        expect(await repo.reprocess(uuidv7())).toEqual({ outcome: 'not-found' });
        expect(await repo.reprocess('not-a-uuid')).toEqual({ outcome: 'not-found' });
      });
    });

    describe('skip', () => {
      it('turns an error row into ignored, keeping the code and the earlier reason', async () => {
        const row = msg({ controlId: 'SK-1' });
        await repo.insertBatch([row], { dedupWindowMs: 0 });
        await repo.setStatus(row.id, 'error', { errorCode: 'PARSE_ERROR', errorReason: 'bad MSH' });
        const result = await repo.skip(row.id, 'sender resent a corrected copy');
        expect(result).toMatchObject({
          outcome: 'done',
          message: {
            status: 'ignored',
            errorCode: 'PARSE_ERROR',
            errorReason: 'skipped: sender resent a corrected copy; error was: bad MSH',
          },
        });
        expect((await repo.findById(row.id))?.processedAt).toBeInstanceOf(Date);

        const bare = msg({ controlId: 'SK-2' });
        await repo.insertBatch([bare], { dedupWindowMs: 0 });
        await repo.setStatus(bare.id, 'error');
        expect(await repo.skip(bare.id, 'test message')).toMatchObject({
          outcome: 'done',
          message: { status: 'ignored', errorReason: 'skipped: test message' },
        });
      });

      it('refuses rows not in error, and reports unknown ids', async () => {
        const row = msg({ controlId: 'SK-3' });
        await repo.insertBatch([row], { dedupWindowMs: 0 });
        expect(await repo.skip(row.id, 'r')).toEqual({
          outcome: 'wrong-status',
          status: 'received',
        });
        await repo.setStatus(row.id, 'processed');
        expect(await repo.skip(row.id, 'r')).toEqual({
          outcome: 'wrong-status',
          status: 'processed',
        });
        expect(await repo.findById(row.id)).toMatchObject({ status: 'processed' });
        expect(await repo.skip(uuidv7(), 'r')).toEqual({ outcome: 'not-found' });
        expect(await repo.skip('nope', 'r')).toEqual({ outcome: 'not-found' });
      });
    });

    it('findById returns null for unknown or malformed ids', async () => {
      expect(await repo.findById(uuidv7())).toBeNull();
      expect(await repo.findById('nope')).toBeNull();
    });

    it('ping succeeds', async () => {
      await expect(repo.ping()).resolves.toBeUndefined();
    });
  });

  describe('postgres, two gateways', () => {
    let a: DataSource;
    let b: DataSource;

    beforeEach(async () => {
      a = createDataSource({ databaseUrl: pgDb.url, poolSize: 2 });
      b = createDataSource({ databaseUrl: pgDb.url, poolSize: 2 });
      await a.initialize();
      await b.initialize();
      await a.query('DELETE FROM "message"');
    });

    afterEach(async () => {
      await a.destroy();
      await b.destroy();
    });

    it('store exactly one row when both commit the same resend at once', async () => {
      const repoA = new MessageRepository(a);
      const repoB = new MessageRepository(b);
      for (let round = 0; round < 20; round++) {
        const controlId = `RACE${round}`;
        const raw = hl7(controlId);
        // Odd rounds: an earlier copy outside the window, so both race for generation 1.
        if (round % 2 === 1) {
          await repoA.insertBatch(
            [msg({ controlId, raw, receivedAt: new Date(T0 - 10 * MINUTE) })],
            {
              dedupWindowMs: MINUTE,
            },
          );
        }
        const fromA = msg({ controlId, raw });
        const fromB = msg({ controlId, raw, receivedAt: new Date(T0 + 1) });
        const [[ra], [rb]] = await Promise.all([
          repoA.insertBatch([fromA, msg({ controlId: `${controlId}-a` })], {
            dedupWindowMs: MINUTE,
          }),
          repoB.insertBatch([fromB], { dedupWindowMs: MINUTE }),
        ]);
        const winner = ra.duplicate ? rb : ra;
        const loser = ra.duplicate ? ra : rb;
        expect(winner).toEqual({ id: winner.id, duplicate: false });
        expect(loser).toEqual({ id: winner.id, duplicate: true });
        expect([fromA.id, fromB.id]).toContain(winner.id);
        const stored = await a.query<Array<{ id: string; g: number }>>(
          'SELECT "id", "resend_generation" AS g FROM "message" WHERE "control_id" = $1 ' +
            'AND "received_at" >= $2',
          [controlId, new Date(T0)],
        );
        expect(stored).toEqual([{ id: winner.id, g: round % 2 }]);
      }
    });
  });
});
