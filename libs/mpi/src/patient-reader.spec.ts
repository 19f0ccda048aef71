import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import { createDataSource, dialectOf, toSqliteTimestamp } from '@engine/store';
import { createTestDatabase, type TestDatabase } from '@engine/store/testing';
import type { GoldenRecord } from './golden';
import type { Identifier, PatientRecord } from './model';
import {
  encodePatientCursor,
  PatientReader,
  PatientReaderError,
  validatePatientSearch,
} from './patient-reader';

/** Fixed EUIDs / record ids, in EUID order. */
const id = (n: number) => `00000000-0000-4000-8000-${n.toString().padStart(12, '0')}`;
const P1 = id(1); // active SMITH JOHN, two records, SSN, a retired identifier
const P2 = id(2); // merged into P1
const P3 = id(3); // active SMITHSON JANE
const P4 = id(4); // merged into P2 (two hops to P1)
const P5 = id(5); // deleted SMITH
const P6 = id(6); // active SMI_X (LIKE escaping)
const PAGE = [id(11), id(12), id(13), id(14), id(15)]; // five active PAGE persons
const R1 = id(101); // P1, HOSP MRN1
const R2 = id(102); // P1, CLINIC C77
const R3 = id(103); // P2, HOSP OLD9 (merged into R1)
const R4 = id(104); // P4, LAB L4
const R5 = id(105); // P3, HOSP MRN3
const E1 = id(201);
const E2 = id(202);
const X1 = id(301);

const T0 = Date.parse('2025-11-28T10:00:00.000Z');

class Fixture {
  private readonly pg: boolean;
  private n = 0;

  constructor(private readonly ds: DataSource) {
    this.pg = dialectOf(ds) === 'postgres';
  }

  private ts(): string {
    const d = new Date(T0 + this.n++ * 1000);
    return this.pg ? d.toISOString() : toSqliteTimestamp(d);
  }

  private async insert(table: string, row: Record<string, unknown>): Promise<void> {
    const cols = Object.keys(row);
    const marks = cols.map((_, i) => (this.pg ? `$${i + 1}` : '?'));
    const values = cols.map((c) => {
      const v = row[c];
      if (typeof v === 'boolean') {
        return v ? 1 : 0;
      }
      return v !== null && typeof v === 'object' ? JSON.stringify(v) : v;
    });
    await this.ds.query(
      `INSERT INTO "${table}" (${cols.map((c) => `"${c}"`).join(', ')}) VALUES (${marks.join(', ')})`,
      values,
    );
  }

  async person(
    euid: string,
    golden: GoldenRecord,
    status: 'active' | 'merged' | 'deleted' = 'active',
    mergedInto: string | null = null,
  ): Promise<void> {
    const at = this.ts();
    await this.insert('mpi_person', {
      euid,
      status,
      merged_into: mergedInto,
      golden,
      provenance: golden.name
        ? { name: { rule: 'only', sourceRecordId: R1, authority: 'HOSP', mrn: 'MRN1' } }
        : {},
      family_name: golden.name?.family?.toUpperCase() ?? '',
      given_name: golden.name?.given?.toUpperCase() ?? '',
      birth_date: golden.birthDate?.value ?? '',
      sex: golden.sex ?? '',
      version: 1,
      created_at: at,
      updated_at: at,
    });
  }

  async record(
    recordId: string,
    euid: string,
    authority: string,
    mrn: string,
    identifiers: Array<Omit<Identifier, 'source'> & { retired?: boolean }>,
    status: 'active' | 'merged' | 'deleted' = 'active',
    mergedInto: string | null = null,
  ): Promise<void> {
    const at = this.ts();
    const data: PatientRecord = {
      authority,
      mrn,
      identifiers: identifiers
        .filter((i) => !i.retired)
        .map(({ retired: _r, ...i }) => ({ ...i, source: i.type === 'SS' ? 'PID-19' : 'PID-3' })),
      names: [{ family: 'SMITH', given: 'JOHN', type: 'L' }],
      addresses: null,
      telecom: null,
    };
    await this.insert('mpi_source_record', {
      id: recordId,
      authority,
      mrn,
      person_euid: euid,
      status,
      merged_into: mergedInto,
      data,
      data_time: T0,
      last_message_id: null,
      version: 1,
      created_at: at,
      updated_at: at,
    });
    for (const i of identifiers) {
      await this.insert('mpi_identifier', {
        source_record_id: recordId,
        authority: i.authority,
        value: i.value,
        type: i.type,
        retired: i.retired ?? false,
      });
    }
  }

  async encounter(
    encounterId: string,
    origin: string,
    owner: string,
    visitKey: string,
    status: string,
  ): Promise<void> {
    const at = this.ts();
    await this.insert('mpi_encounter', {
      id: encounterId,
      origin_record_id: origin,
      visit_key: visitKey,
      source_record_id: owner,
      status,
      data: { visitNumber: visitKey, class: 'I', status: 'in-progress' },
      data_time: T0,
      created_at: at,
      updated_at: at,
    });
  }

  async result(resultId: string, owner: string, orderKey: string): Promise<void> {
    const at = this.ts();
    await this.insert('mpi_result', {
      id: resultId,
      origin_record_id: owner,
      order_key: orderKey,
      source_record_id: owner,
      status: 'F',
      data: {
        placerOrderNumber: { value: 'ORD1' },
        testCode: { code: 'GLU', system: 'LOINC' },
        status: 'F',
        notes: [],
        observations: [],
      },
      data_time: 0,
      created_at: at,
      updated_at: at,
    });
  }
}

async function seed(ds: DataSource): Promise<void> {
  const f = new Fixture(ds);
  await f.person(P1, {
    name: { family: 'SMITH', given: 'JOHN', type: 'L' },
    birthDate: { value: '1962-03-05', precision: 'day' },
    sex: 'M',
    ssn: '123456789',
  });
  await f.person(
    P2,
    {
      name: { family: 'SMYTH', given: 'JON', type: 'L' },
      birthDate: { value: '1962', precision: 'year' },
    },
    'merged',
    P1,
  );
  await f.person(P3, {
    name: { family: 'SMITHSON', given: 'JANE', type: 'L' },
    birthDate: { value: '1970-01-01', precision: 'day' },
    sex: 'F',
  });
  await f.person(P4, { name: { family: 'OLDER', type: 'L' } }, 'merged', P2);
  await f.person(P5, { name: { family: 'SMITH', given: 'JOHN', type: 'L' } }, 'deleted');
  await f.person(P6, { name: { family: 'SMI_X', given: 'AL', type: 'L' } });
  for (const euid of PAGE) {
    await f.person(euid, {
      name: { family: 'PAGE', given: 'PAT', type: 'L' },
      birthDate: { value: '1999-12-31', precision: 'day' },
    });
  }
  await f.record(R1, P1, 'HOSP', 'MRN1', [
    { value: 'MRN1', authority: 'HOSP', type: 'MR' },
    { value: '123456789', authority: 'SSA', type: 'SS' },
    // Taken over from R3 by the merge.
    { value: 'OLD9', authority: 'HOSP', type: 'MR', retired: true },
  ]);
  // No identifier rows: the MRN is shown from the record itself.
  await f.record(R2, P1, 'CLINIC', 'C77', []);
  await f.record(
    R3,
    P2,
    'HOSP',
    'OLD9',
    [{ value: 'OLD9', authority: 'HOSP', type: 'MR' }],
    'merged',
    R1,
  );
  await f.record(R4, P4, 'LAB', 'L4', [{ value: 'L4', authority: 'LAB', type: 'MR' }]);
  await f.record(R5, P3, 'HOSP', 'MRN3', [
    { value: 'MRN3', authority: 'HOSP', type: 'MR' },
    { value: 'SHARED', authority: 'HOSP', type: 'PI' },
  ]);
  await f.encounter(E1, R1, R1, 'V1', 'in-progress');
  // Arrived for R3, now owned by R1 (moved by the merge).
  await f.encounter(E2, R3, R1, 'V9', 'entered-in-error');
  await f.result(X1, R1, 'ORD1^HOSP');
}

describe('PatientReader', () => {
  let pgDb: TestDatabase;
  let dir: string;

  beforeAll(async () => {
    pgDb = await createTestDatabase();
    dir = mkdtempSync(join(tmpdir(), 'patient-reader-'));
  });

  afterAll(async () => {
    await pgDb.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  const cases: Array<[string, () => DataSource]> = [
    ['postgres', () => createDataSource({ databaseUrl: pgDb.url, poolSize: 2 })],
    ['sqlite', () => createDataSource({ sqlitePath: join(dir, 'mpi.sqlite') })],
  ];

  describe.each(cases)('%s', (_name, make) => {
    let ds: DataSource;
    let reader: PatientReader;

    beforeAll(async () => {
      ds = make();
      await ds.initialize();
      await seed(ds);
      reader = new PatientReader(ds);
    });

    afterAll(async () => {
      await ds.destroy();
    });

    const euids = (page: { items: Array<{ euid: string }> }) => page.items.map((p) => p.euid);

    describe('search', () => {
      it('finds by identifier value, with or without authority', async () => {
        expect(euids(await reader.search({ identifier: 'MRN1' }))).toEqual([P1]);
        expect(euids(await reader.search({ identifier: 'MRN1', authority: 'HOSP' }))).toEqual([P1]);
        expect(euids(await reader.search({ identifier: 'MRN1', authority: 'OTHER' }))).toEqual([]);
        expect(euids(await reader.search({ identifier: 'SHARED' }))).toEqual([P3]);
        expect(euids(await reader.search({ identifier: 'NOPE' }))).toEqual([]);
      });

      it('finds by an MRN that has no identifier row', async () => {
        expect(euids(await reader.search({ identifier: 'C77', authority: 'CLINIC' }))).toEqual([
          P1,
        ]);
      });

      it('finds by an SSN (digits)', async () => {
        const page = await reader.search({ identifier: '123456789' });
        expect(euids(page)).toEqual([P1]);
        expect(JSON.stringify(page)).not.toContain('123456789');
      });

      it('follows a retired identifier and merges to the surviving person', async () => {
        // OLD9 is retired on R1 and the active identifier of merged R3 (person P2 → P1).
        expect(euids(await reader.search({ identifier: 'OLD9', authority: 'HOSP' }))).toEqual([P1]);
        // L4 belongs to P4, merged into P2, merged into P1.
        expect(euids(await reader.search({ identifier: 'L4' }))).toEqual([P1]);
        // With every status, the whole chain shows.
        expect(euids(await reader.search({ identifier: 'L4', status: 'any' }))).toEqual([
          P1,
          P2,
          P4,
        ]);
        expect(euids(await reader.search({ identifier: 'L4', status: 'merged' }))).toEqual([
          P2,
          P4,
        ]);
      });

      it('matches family and given name prefixes case-insensitively (active persons only)', async () => {
        expect(euids(await reader.search({ family: 'smith' }))).toEqual([P1, P3]);
        expect(euids(await reader.search({ family: 'Smith', given: 'jo' }))).toEqual([P1]);
        expect(euids(await reader.search({ family: 'smiths' }))).toEqual([P3]);
        expect(euids(await reader.search({ family: 'SMITH', status: 'any' }))).toEqual([
          P1,
          P3,
          P5,
        ]);
        // LIKE wildcards in the input are literal.
        expect(euids(await reader.search({ family: 'SMI_' }))).toEqual([P6]);
        expect(euids(await reader.search({ family: '%' }))).toEqual([]);
      });

      it('matches the birth date exactly (YYYY-MM-DD or YYYYMMDD)', async () => {
        expect(euids(await reader.search({ birthDate: '1962-03-05' }))).toEqual([P1]);
        expect(euids(await reader.search({ birthDate: '19700101' }))).toEqual([P3]);
        expect(euids(await reader.search({ birthDate: '1962-03-06' }))).toEqual([]);
        expect(euids(await reader.search({ family: 'smith', birthDate: '1970-01-01' }))).toEqual([
          P3,
        ]);
        expect(euids(await reader.search({ given: 'jane', birthDate: '1970-01-01' }))).toEqual([
          P3,
        ]);
      });

      it('combines identifier and demographics', async () => {
        expect(euids(await reader.search({ identifier: 'MRN1', family: 'SMI' }))).toEqual([P1]);
        expect(euids(await reader.search({ identifier: 'MRN1', family: 'JONES' }))).toEqual([]);
      });

      it('pages by EUID with an opaque cursor', async () => {
        const seen: string[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const page = await reader.search({ family: 'page', limit: 2, cursor });
          expect(page.items.length).toBeLessThanOrEqual(2);
          seen.push(...euids(page));
          cursor = page.nextCursor;
          pages++;
        } while (cursor !== undefined);
        expect(seen).toEqual(PAGE);
        expect(pages).toBe(3);
        const exact = await reader.search({ family: 'page', limit: 5 });
        expect(exact.items).toHaveLength(5);
        expect(exact.nextCursor).toBeUndefined();
        const first = await reader.search({ family: 'page', limit: 2 });
        expect(first.nextCursor).toBe(encodePatientCursor(PAGE[1]));
        expect(first.nextCursor).toMatch(/^[A-Za-z0-9_-]+$/);
      });

      it('returns summaries with record identifiers (SSN masked, no retired ones)', async () => {
        const page = await reader.search({ identifier: 'MRN1', authority: 'HOSP' });
        expect(page).toEqual({
          items: [
            {
              euid: P1,
              identifiers: [
                { value: 'MRN1', authority: 'HOSP', type: 'MR' },
                { value: '***-**-6789', authority: 'SSA', type: 'SS' },
                { value: 'C77', authority: 'CLINIC', type: 'MR' },
              ],
              name: { family: 'SMITH', given: 'JOHN' },
              birthDate: '1962-03-05',
              sex: 'M',
              status: 'active',
            },
          ],
        });
      });

      it('refuses searches without a criterion, bad dates, limits and cursors', async () => {
        const codeOf = async (q: Parameters<PatientReader['search']>[0]) => {
          try {
            await reader.search(q);
            return 'ok';
          } catch (err) {
            expect(err).toBeInstanceOf(PatientReaderError);
            return (err as PatientReaderError).code;
          }
        };
        expect(await codeOf({})).toBe('NO_CRITERIA');
        expect(await codeOf({ given: 'JOHN' })).toBe('NO_CRITERIA');
        expect(await codeOf({ family: '  ' })).toBe('NO_CRITERIA');
        expect(await codeOf({ authority: 'HOSP' })).toBe('INVALID_CRITERIA');
        expect(await codeOf({ birthDate: '1962-02-30' })).toBe('INVALID_CRITERIA');
        expect(await codeOf({ birthDate: '05/03/1962' })).toBe('INVALID_CRITERIA');
        expect(await codeOf({ family: 'SMITH', limit: 201 })).toBe('INVALID_CRITERIA');
        expect(await codeOf({ family: 'SMITH', limit: 0 })).toBe('INVALID_CRITERIA');
        expect(await codeOf({ family: 'SMITH', cursor: 'junk' })).toBe('INVALID_CURSOR');
        expect(await codeOf({ family: 'SMITH', cursor: encodePatientCursor('not-a-uuid') })).toBe(
          'INVALID_CURSOR',
        );
        expect(await codeOf({ family: 'SMITH', limit: 200 })).toBe('ok');
      });
    });

    describe('getPerson', () => {
      it('returns the person with golden record, records, encounters and results', async () => {
        const p = await reader.getPerson(P1);
        expect(p).not.toBeNull();
        expect(p).toMatchObject({
          euid: P1,
          status: 'active',
          mergedInto: null,
          golden: {
            name: { family: 'SMITH', given: 'JOHN', type: 'L' },
            birthDate: { value: '1962-03-05', precision: 'day' },
            sex: 'M',
            ssn: '***-**-6789',
          },
          provenance: { name: { rule: 'only', sourceRecordId: R1 } },
          identifiers: [
            { value: 'MRN1', authority: 'HOSP', type: 'MR', retired: false },
            { value: '***-**-6789', authority: 'SSA', type: 'SS', retired: false },
            { value: 'OLD9', authority: 'HOSP', type: 'MR', retired: true },
            { value: 'C77', authority: 'CLINIC', type: 'MR', retired: false },
          ],
        });
        expect(p!.records.map((r) => [r.id, r.authority, r.mrn, r.status, r.mergedInto])).toEqual([
          [R1, 'HOSP', 'MRN1', 'active', null],
          [R2, 'CLINIC', 'C77', 'active', null],
        ]);
        expect(p!.records[0].data.identifiers).toEqual([
          { value: 'MRN1', authority: 'HOSP', type: 'MR', source: 'PID-3' },
          { value: '***-**-6789', authority: 'SSA', type: 'SS', source: 'PID-19' },
        ]);
        expect(p!.records[0].updatedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
        expect(p!.encounters).toEqual([
          {
            id: E1,
            visitNumber: 'V1',
            status: 'in-progress',
            class: 'I',
          },
          {
            id: E2,
            visitNumber: 'V9',
            status: 'entered-in-error',
            class: 'I',
          },
        ]);
        expect(p!.results).toEqual([
          {
            id: X1,
            orderKey: 'ORD1^HOSP',
            status: 'F',
            placerOrderNumber: { value: 'ORD1' },
            testCode: { code: 'GLU', system: 'LOINC' },
            notes: [],
            observations: [],
          },
        ]);
        expect(p!.createdAt).toBe(new Date(T0).toISOString());
        expect(JSON.stringify(p)).not.toContain('123456789');
      });

      it('returns a merged person with mergedInto and its own records', async () => {
        const p = await reader.getPerson(P2);
        expect(p).toMatchObject({ euid: P2, status: 'merged', mergedInto: P1, identifiers: [] });
        expect(p!.records).toMatchObject([
          { id: R3, status: 'merged', mergedInto: R1, authority: 'HOSP', mrn: 'OLD9' },
        ]);
        expect(p!.encounters).toEqual([]);
      });

      it('accepts an upper-case EUID and returns null for unknown or malformed ones', async () => {
        expect((await reader.getPerson(P3.toUpperCase()))?.euid).toBe(P3);
        expect(await reader.getPerson(id(999))).toBeNull();
        expect(await reader.getPerson('nope')).toBeNull();
      });
    });
  });

  describe('validatePatientSearch', () => {
    it('normalizes criteria', () => {
      expect(
        validatePatientSearch({ identifier: ' X1 ', family: ' de  la ', given: 'ann' }),
      ).toEqual({
        identifier: 'X1',
        authority: undefined,
        family: 'DE LA',
        given: 'ANN',
        birthDate: undefined,
        status: 'active',
        limit: 50,
        after: undefined,
      });
      expect(validatePatientSearch({ birthDate: '1962' }).birthDate).toBe('1962');
      expect(validatePatientSearch({ birthDate: '1962-03' }).birthDate).toBe('1962-03');
      expect(() => validatePatientSearch({ birthDate: '1962-0305' })).toThrow(PatientReaderError);
      expect(() => validatePatientSearch({ birthDate: '1962-13' })).toThrow(PatientReaderError);
    });
  });
});
