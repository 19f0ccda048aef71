import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import { createDataSource, createDataSourceOptions } from './data-source';
import { createTestDatabase, type TestDatabase } from './testing';

describe('store migrations', () => {
  let pgDb: TestDatabase;
  let dir: string;

  beforeAll(async () => {
    pgDb = await createTestDatabase();
    dir = mkdtempSync(join(tmpdir(), 'store-migrations-'));
  });

  afterAll(async () => {
    await pgDb.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  const cases: Array<[string, () => DataSource]> = [
    ['postgres', () => createDataSource({ databaseUrl: pgDb.url, poolSize: 2 })],
    ['sqlite', () => createDataSource({ sqlitePath: join(dir, 'sub', 'engine.sqlite') })],
  ];

  describe.each(cases)('%s', (_name, make) => {
    let ds: DataSource;

    afterEach(async () => {
      if (ds?.isInitialized) {
        await ds.destroy();
      }
    });

    it('runs at start, matches the entity mapping, reverts and re-applies', async () => {
      ds = make();
      await ds.initialize();
      const qr = ds.createQueryRunner();
      try {
        expect(await qr.hasTable('message')).toBe(true);
        const table = await qr.getTable('message');
        expect(table?.indices.map((i) => i.name).sort()).toEqual([
          'message_held_idx',
          'message_pending_idx',
          'message_received_at_idx',
          'message_resend_key',
          'message_status_received_at_idx',
        ]);
        // The mapping and the migrations agree: TypeORM would generate nothing.
        const pending = await ds.driver.createSchemaBuilder().log();
        expect(pending.upQueries.map((q) => q.query)).toEqual([]);
        expect(await ds.showMigrations()).toBe(false);

        expect(await qr.hasTable('audit_log')).toBe(true);
        for (const t of ['mpi_person', 'mpi_source_record', 'mpi_event', 'mpi_history']) {
          expect(await qr.hasTable(t)).toBe(true);
        }

        expect(await qr.hasTable('mpi_duplicate_task')).toBe(true);
        expect(await qr.hasTable('delivery')).toBe(true);
        expect(await qr.hasTable('destination_state')).toBe(true);

        // down, newest first: every migration reverts cleanly.
        await ds.undoLastMigration();
        expect(await qr.hasTable('delivery')).toBe(false);
        expect(await qr.hasTable('destination_state')).toBe(false);
        expect(await qr.hasTable('mpi_duplicate_task')).toBe(true);
        await ds.undoLastMigration();
        expect(await qr.hasTable('mpi_duplicate_task')).toBe(false);
        expect(await qr.hasTable('mpi_block')).toBe(false);
        expect(await qr.hasTable('mpi_person')).toBe(true);
        await ds.undoLastMigration();
        expect(await qr.hasTable('mpi_person')).toBe(false);
        expect(await qr.hasColumn('message', 'held')).toBe(false);
        await ds.undoLastMigration();
        expect(await qr.hasTable('audit_log')).toBe(false);
        expect(await qr.hasTable('message')).toBe(true);
        await ds.undoLastMigration();
        expect(await qr.hasTable('message')).toBe(false);
        expect(await ds.showMigrations()).toBe(true);

        const applied = await ds.runMigrations();
        expect(applied.map((m) => m.name)).toEqual([
          'CreateMessage1764316800000',
          'CreateAuditLog1764316800001',
          'CreateMpi1764316800002',
          'CreateMatching1764316800003',
          'CreateDelivery1764316800004',
        ]);
        expect(await qr.hasTable('message')).toBe(true);
        expect(await qr.hasTable('audit_log')).toBe(true);
        expect((await ds.driver.createSchemaBuilder().log()).upQueries).toEqual([]);
      } finally {
        await qr.release();
      }
    });
  });

  it('sets SQLite to WAL, synchronous FULL and a busy timeout', async () => {
    const ds = createDataSource({ sqlitePath: join(dir, 'pragmas', 'engine.sqlite') });
    await ds.initialize();
    try {
      expect(await ds.query('PRAGMA journal_mode')).toEqual([{ journal_mode: 'wal' }]);
      expect(await ds.query('PRAGMA synchronous')).toEqual([{ synchronous: 2 }]);
      expect(await ds.query('PRAGMA busy_timeout')).toEqual([{ timeout: 5000 }]);
    } finally {
      await ds.destroy();
    }
  });

  it('builds options: SQLite by default, PostgreSQL from a URL with a pool size', () => {
    const sqlite = createDataSourceOptions({ sqlitePath: join(dir, 'new', 'x.sqlite') });
    expect(sqlite).toMatchObject({
      type: 'better-sqlite3',
      database: join(dir, 'new', 'x.sqlite'),
      synchronize: false,
      migrationsRun: true,
    });
    expect(createDataSourceOptions({ databaseUrl: '' }).type).toBe('better-sqlite3');
    expect(createDataSourceOptions()).toMatchObject({ database: 'data/engine.sqlite' });
    expect(createDataSourceOptions({ databaseUrl: pgDb.url })).toMatchObject({
      type: 'postgres',
      poolSize: 10,
      synchronize: false,
      migrationsRun: true,
    });
    expect(createDataSourceOptions({ databaseUrl: pgDb.url, poolSize: 3 })).toMatchObject({
      poolSize: 3,
    });
    expect(() => createDataSourceOptions({ databaseUrl: 'mysql://x' })).toThrow(/postgres/);
  });

  it('declares the resend key as a unique index', async () => {
    const ds = createDataSource({ databaseUrl: pgDb.url, poolSize: 1 });
    await ds.initialize();
    try {
      // TypeORM's table metadata does not keep the index column order: read the definition.
      expect(
        await ds.query(`SELECT indexdef FROM pg_indexes WHERE indexname = 'message_resend_key'`),
      ).toEqual([
        {
          indexdef:
            'CREATE UNIQUE INDEX message_resend_key ON public.message USING btree ' +
            '(control_id, feed, sending_facility, content_hash, resend_generation)',
        },
      ]);
      // The hot path's prepared statements need no custom plans any more.
      expect(await ds.query('SHOW plan_cache_mode')).toEqual([{ plan_cache_mode: 'auto' }]);
    } finally {
      await ds.destroy();
    }
  });
});
