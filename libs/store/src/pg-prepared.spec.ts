import { Client } from 'pg';
import { DEFAULT_TEST_ADMIN_URL } from './testing';
import type * as prepared from './pg-prepared';
import { MAX_PREPARED_STATEMENTS, preparedName, queryPrepared } from './pg-prepared';

describe('preparedName', () => {
  it('gives one stable name per distinct text', () => {
    const a = preparedName('SELECT 1 AS spec_a');
    const b = preparedName('SELECT 2 AS spec_b');
    expect(a).toMatch(/^engine_q\d+$/);
    expect(b).toMatch(/^engine_q\d+$/);
    expect(a).not.toBe(b);
    expect(preparedName('SELECT 1 AS spec_a')).toBe(a);
  });

  it('stops naming new texts at the cap and keeps the names it gave', () => {
    jest.isolateModules(() => {
      // A fresh copy of the module, so the cap is reached without touching the shared map.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const fresh = require('./pg-prepared') as typeof prepared;
      const first = fresh.preparedName('SELECT 0');
      for (let i = 1; i < MAX_PREPARED_STATEMENTS; i++) {
        expect(fresh.preparedName(`SELECT ${i}`)).toBeDefined();
      }
      expect(fresh.preparedName('SELECT -1')).toBeUndefined();
      expect(fresh.preparedName('SELECT 0')).toBe(first);
    });
  });
});

describe('queryPrepared on PostgreSQL', () => {
  let client: Client;

  beforeAll(async () => {
    client = new Client({ connectionString: process.env.DATABASE_URL || DEFAULT_TEST_ADMIN_URL });
    await client.connect();
  });
  afterAll(() => client.end());

  it('prepares the statement once on the connection and runs it with each call’s values', async () => {
    const text = 'SELECT $1::int + 1 AS n /* pg-prepared.spec */';
    const first = await queryPrepared<{ n: number }>(client, text, [1]);
    const second = await queryPrepared<{ n: number }>(client, text, [41]);
    expect(first.rows[0].n).toBe(2);
    expect(second.rows[0].n).toBe(42);
    const prepared = await client.query<{ name: string; statement: string }>(
      'SELECT name, statement FROM pg_prepared_statements WHERE name = $1',
      [preparedName(text)],
    );
    expect(prepared.rows).toHaveLength(1);
    expect(prepared.rows[0].statement).toBe(text);
  });
});
