import { DataSource } from 'typeorm';
import { createDataSourceOptions } from './data-source';
import { runMigrationsLocked } from './store.module';
import { createTestDatabase, type TestDatabase } from './testing';

describe('runMigrationsLocked (PostgreSQL)', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db.drop();
  });

  it('lets several processes start together: each migration is applied exactly once', async () => {
    const sources = Array.from(
      { length: 4 },
      () =>
        new DataSource({
          ...createDataSourceOptions({ databaseUrl: db.url, poolSize: 2 }),
          migrationsRun: false,
        }),
    );
    await Promise.all(sources.map((s) => s.initialize()));
    try {
      await Promise.all(sources.map((s) => runMigrationsLocked(s)));
      const rows: { name: string }[] = await sources[0].query('SELECT name FROM migrations');
      expect(rows.length).toBe(sources[0].migrations.length);
      expect(new Set(rows.map((r) => r.name)).size).toBe(rows.length);
      expect(await sources[1].showMigrations()).toBe(false); // nothing pending
    } finally {
      await Promise.all(sources.map((s) => s.destroy()));
    }
  });
});
