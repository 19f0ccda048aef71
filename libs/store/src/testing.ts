import { createHash, randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import { v7 as uuidv7 } from 'uuid';
import type { NewMessage } from './message.types';

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

/**
 * A `received` message row for tests that store messages without the gateway: a UUIDv7 id, the
 * content hash, empty header fields unless given (pass the header fields a test reads).
 */
export function receivedMessage(raw: Buffer, fields: Partial<NewMessage> = {}): NewMessage {
  return {
    id: uuidv7(),
    feed: 'default',
    controlId: '',
    type: '',
    trigger: '',
    version: '',
    sendingApplication: '',
    sendingFacility: '',
    receivingApplication: '',
    receivingFacility: '',
    receivedAt: new Date(),
    remoteAddress: '',
    partition: 0,
    partitionKey: '',
    raw,
    contentHash: createHash('sha256').update(raw).digest('hex'),
    status: 'received',
    ...fields,
  };
}
