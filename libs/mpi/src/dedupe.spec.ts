import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import { createDataSource } from '@engine/store';
import { createTestDatabase, type TestDatabase } from '@engine/store/testing';
import { DedupeScanner } from './dedupe';
import { DuplicateService } from './duplicates';
import { DeterministicIdentityResolver } from './identity';
import type { NormalizedMessage, PatientRecord } from './model';
import { MpiStore } from './mpi-store';
import { MpiPipeline } from './pipeline';

const survivorship = { default: 'mostRecent' as const, trustedAuthorities: [], fields: {} };

function patient(
  authority: string,
  mrn: string,
  family: string,
  given: string,
  birth: string,
  street: string,
  ssn?: string,
): NormalizedMessage {
  const p: PatientRecord = {
    authority,
    mrn,
    identifiers: [
      { value: mrn, authority, type: 'MR', source: 'PID-3' },
      ...(ssn ? [{ value: ssn, authority: 'SSA', type: 'SS', source: 'PID-19' as const }] : []),
    ],
    names: [{ family, given, type: 'L' }],
    birthDate: { value: birth, precision: 'day' },
    sex: 'F',
    addresses: [{ line1: street, city: 'TOWN', postalCode: '12345', type: 'H' }],
    telecom: [],
  };
  return {
    event: { type: 'ADT', trigger: 'A28', messageControlId: 't' },
    supported: true,
    patient: p,
  };
}

describe.each(['postgres', 'sqlite'] as const)('mpi:dedupe scan on %s', (dialect) => {
  let pgDb: TestDatabase | undefined;
  let dir: string;
  let ds: DataSource;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mpi-dedupe-'));
    if (dialect === 'postgres') {
      pgDb = await createTestDatabase();
      ds = createDataSource({ databaseUrl: pgDb.url, poolSize: 2 });
    } else {
      ds = createDataSource({ sqlitePath: join(dir, 'mpi.sqlite') });
    }
    await ds.initialize();
    // An index built without matching (no blocking keys, no tasks): what an adopting hospital has.
    const pipeline = new MpiPipeline(new MpiStore(ds), {
      survivorship,
      identity: new DeterministicIdentityResolver(),
    });
    const rows = [
      patient('HOSP', 'H1', 'NGUYEN', 'LINDA', '1960-04-04', '7 BIRCH RD', '345678123'),
      // Linked on arrival by the deterministic rule (SSN + birth date + sex): one person.
      patient('CLINIC', 'C1', 'NGUYEN', 'LYNDA', '1960-04-04', '7 BIRCH RD', '345678123'),
      patient('HOSP', 'H2', 'NGUYEN', 'LINDA', '1960-04-04', '7 BIRCH RD'), // same facility
      patient('HOSP', 'H3', 'OKAFOR', 'ADA', '1975-09-09', '18 CEDAR LN'),
      patient('LAB', 'L3', 'OKAFOR', 'ADA', '1975-09-09', '18 CEDAR LN'),
      patient('HOSP', 'H4', 'PETROV', 'IVANA', '1950-01-01', '2 PINE AVE'), // nobody like her
    ];
    await pipeline.applyBatch(
      rows.map((normalized) => ({ messageId: null, receivedAt: new Date(), normalized })),
    );
  });

  afterAll(async () => {
    await ds.destroy();
    await pgDb?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reindexes, scans every record once and opens tasks for the likely pairs', async () => {
    const progress: number[] = [];
    const result = await new DedupeScanner(ds).run({
      chunkSize: 2,
      reindex: true,
      onProgress: (p) => progress.push(p.records),
    });
    expect(result.records).toBe(6);
    expect(progress).toEqual([2, 4, 6]);
    const [{ n }] = await ds.query<Array<{ n: number | string }>>(
      `SELECT count(*) AS n FROM mpi_block`,
    );
    expect(Number(n)).toBeGreaterThan(6);
    const tasks = await ds.query<Array<{ l: string; r: string }>>(
      `SELECT l.mrn AS l, r.mrn AS r FROM mpi_duplicate_task t
       JOIN mpi_source_record l ON l.id = t.left_record_id JOIN mpi_source_record r ON r.id = t.right_record_id`,
    );
    const pairs = tasks.map((t) => [t.l, t.r].sort().join('~')).sort();
    // H1 and C1 are one person already; H2 pairs with both of its records' person once each.
    expect(pairs).toEqual(expect.arrayContaining(['H1~H2', 'H3~L3']));
    expect(pairs).not.toContain('C1~H1');
    expect(pairs.some((p) => p.includes('H4'))).toBe(false);
    expect(pairs.some((p) => p.includes('H3') && p.includes('H1'))).toBe(false);
    expect(result.tasksOpened).toBe(pairs.length);
  });

  it('a second scan reopens nothing, and a pair marked not-duplicate stays closed', async () => {
    const service = new DuplicateService(ds, survivorship);
    const open = await service.search({ status: 'open' });
    await service.decide(open.items[0].id, 'not-duplicate', { reason: 'checked', actor: 'mrt' });
    const again = await new DedupeScanner(ds).run();
    expect(again.tasksOpened).toBe(0);
    expect(again.reviewPairs + again.autoLinkPairs).toBe(open.total);
    expect((await service.search({ status: 'not-duplicate' })).total).toBe(1);
  });
});
