import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import { AuditRepository } from './audit.repository';
import type { NewAuditRecord } from './audit.types';
import { createDataSource } from './data-source';
import { createTestDatabase, type TestDatabase } from './testing';

const T0 = Date.parse('2025-11-28T10:00:00.000Z');

function record(over: Partial<NewAuditRecord> = {}): NewAuditRecord {
  return {
    actor: 'key-1',
    action: 'message.read',
    entityType: 'message',
    entityId: 'm1',
    remoteAddress: '127.0.0.1',
    at: new Date(T0),
    details: null,
    ...over,
  };
}

describe('AuditRepository', () => {
  let pgDb: TestDatabase;
  let dir: string;

  beforeAll(async () => {
    pgDb = await createTestDatabase();
    dir = mkdtempSync(join(tmpdir(), 'store-audit-'));
  });

  afterAll(async () => {
    await pgDb.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  const cases: Array<[string, () => DataSource]> = [
    ['postgres', () => createDataSource({ databaseUrl: pgDb.url, poolSize: 2 })],
    ['sqlite', () => createDataSource({ sqlitePath: join(dir, 'audit.sqlite') })],
  ];

  describe.each(cases)('%s', (_name, make) => {
    let ds: DataSource;
    let repo: AuditRepository;

    beforeEach(async () => {
      ds = make();
      await ds.initialize();
      await ds.query('DELETE FROM "audit_log"');
      repo = new AuditRepository(ds);
    });

    afterEach(async () => {
      await ds.destroy();
    });

    it('appends records (with JSON details) and finds them newest first, with paging', async () => {
      const a = await repo.insert(record());
      const b = await repo.insert(
        record({
          action: 'patient.merge',
          entityType: 'person',
          entityId: 'E1',
          at: new Date(T0 + 1000),
          details: { survivor: 'E1', retired: ['E2'], score: 0.97 },
        }),
      );
      const c = await repo.insert(record({ actor: 'key-2', at: new Date(T0 + 2000) }));

      const all = await repo.search();
      expect(all.items.map((r) => r.id)).toEqual([c, b, a]);
      expect(all.nextCursor).toBeNull();
      expect(all.items[1]).toEqual({
        id: b,
        actor: 'key-1',
        action: 'patient.merge',
        entityType: 'person',
        entityId: 'E1',
        remoteAddress: '127.0.0.1',
        at: new Date(T0 + 1000),
        details: { survivor: 'E1', retired: ['E2'], score: 0.97 },
      });

      expect(
        (await repo.search({ entityType: 'message', entityId: 'm1' })).items.map((r) => r.id),
      ).toEqual([c, a]);
      expect((await repo.search({ actor: 'key-2' })).items.map((r) => r.id)).toEqual([c]);

      const first = await repo.search({ limit: 2 });
      expect(first.items.map((r) => r.id)).toEqual([c, b]);
      const second = await repo.search({ limit: 2, cursor: first.nextCursor ?? undefined });
      expect(second.items.map((r) => r.id)).toEqual([a]);
      expect(second.nextCursor).toBeNull();
    });
  });
});
