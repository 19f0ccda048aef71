import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { DataSource } from 'typeorm';
import { MessageRepository } from './message.repository';
import { StoreModule } from './store.module';
import { createTestDatabase, type TestDatabase } from './testing';

const STORE_SETTINGS = 'STORE_SETTINGS';

@Module({
  providers: [{ provide: STORE_SETTINGS, useValue: { url: '' } }],
  exports: [STORE_SETTINGS],
})
class SettingsModule {}

describe('StoreModule', () => {
  let pgDb: TestDatabase;
  let dir: string;

  beforeAll(async () => {
    pgDb = await createTestDatabase();
    dir = mkdtempSync(join(tmpdir(), 'store-module-'));
  });

  afterAll(async () => {
    await pgDb.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('forRoot: embedded SQLite, migrations run at start, MessageRepository injectable', async () => {
    const app = await Test.createTestingModule({
      imports: [StoreModule.forRoot({ sqlitePath: join(dir, 'data', 'engine.sqlite') })],
    }).compile();
    await app.init();
    try {
      const repo = app.get(MessageRepository);
      await expect(repo.ping()).resolves.toBeUndefined();
      const ds = app.get(DataSource);
      expect(ds.options.type).toBe('better-sqlite3');
      expect(await ds.showMigrations()).toBe(false);
    } finally {
      await app.close();
    }
  });

  it('forRootAsync: PostgreSQL from an injected setting', async () => {
    const app = await Test.createTestingModule({
      imports: [
        StoreModule.forRootAsync({
          imports: [SettingsModule],
          inject: [STORE_SETTINGS],
          useFactory: (settings: { url: string }) => ({
            databaseUrl: settings.url || pgDb.url,
            poolSize: 3,
          }),
        }),
      ],
    }).compile();
    await app.init();
    try {
      const ds = app.get(DataSource);
      expect(ds.options.type).toBe('postgres');
      expect(await ds.showMigrations()).toBe(false);
      await expect(app.get(MessageRepository).ping()).resolves.toBeUndefined();
    } finally {
      await app.close();
    }
  });
});
