import { randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';

export const DEFAULT_TEST_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/test';

export interface TestDatabase {
  /** postgres:// URL of the new, empty database (run migrations by initializing a data source). */
  url: string;
  /** Drops the database (closing any connections still open to it). */
  drop(): Promise<void>;
}

/**
 * Creates a uniquely named PostgreSQL database for one test file. The admin URL is
 * `DATABASE_URL` when set, else postgres://postgres@127.0.0.1:5432/test.
 */
export async function createTestDatabase(
  adminUrl: string = process.env.DATABASE_URL || DEFAULT_TEST_ADMIN_URL,
): Promise<TestDatabase> {
  const name = `engine_test_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  await withAdmin(adminUrl, (admin) => admin.query(`CREATE DATABASE "${name}"`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    url: url.toString(),
    drop: async () => {
      if (dropped) {
        return;
      }
      dropped = true;
      await withAdmin(adminUrl, (admin) =>
        admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`),
      );
    },
  };
}

async function withAdmin(url: string, fn: (admin: DataSource) => Promise<unknown>): Promise<void> {
  const admin = new DataSource({ type: 'postgres', url, poolSize: 1 });
  await admin.initialize();
  try {
    await fn(admin);
  } finally {
    await admin.destroy();
  }
}
