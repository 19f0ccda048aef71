import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createDataSource } from '@engine/store';
import { rowToPatient } from './mpi-import';

const run = promisify(execFile);

describe('mpi:import', () => {
  it('turns a CSV row into a normalized patient record, with clear errors', () => {
    const p = rowToPatient({
      authority: 'HOSP',
      mrn: ' 1001 ',
      family: 'Smith',
      given: 'Robert',
      birthdate: '1970-05-03',
      sex: 'male',
      ssn: '234-56-7891',
      street: '12 Oak St',
      postcode: 'ab1 2cd',
      phone: '(555) 201-0001',
      email: 'Bob@Example.COM',
    });
    expect(p).toMatchObject({
      authority: 'HOSP',
      mrn: '1001',
      names: [{ family: 'SMITH', given: 'ROBERT', type: 'L' }],
      birthDate: { value: '1970-05-03', precision: 'day' },
      sex: 'M',
      addresses: [{ line1: '12 OAK ST', postalCode: 'AB1 2CD', type: 'H' }],
      telecom: [
        { system: 'phone', value: '5552010001' },
        { system: 'email', value: 'bob@example.com' },
      ],
    });
    expect(p.identifiers).toContainEqual({
      value: '234567891',
      authority: 'SSA',
      type: 'SS',
      source: 'PID-19',
    });
    expect(rowToPatient({ mrn: '7' }, 'LAB').authority).toBe('LAB');
    expect(() => rowToPatient({ mrn: '7' })).toThrow(/authority/);
    expect(() => rowToPatient({ authority: 'H' })).toThrow(/mrn/);
    expect(() => rowToPatient({ authority: 'H', mrn: '1', birthdate: 'soon' })).toThrow(/date/);
  });

  it('loads a file, links the obvious duplicate, queues the doubtful one, reports bad rows', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mpi-import-'));
    try {
      const csv = join(dir, 'patients.csv');
      writeFileSync(
        csv,
        [
          'Authority,MRN,Family,Given,Birth Date,Sex,SSN,Street,City,Postcode,Phone',
          'HOSP,1001,Smith,Robert,1970-05-03,M,234-56-7891,12 Oak St,Springfield,62701,555-201-0001',
          'CLINIC,A77,Smith,Bob,1970-05-03,M,234567891,12 Oak Street,Springfield,62701,5552010001',
          'HOSP,1002,Jones,Mary,19811212,F,,4 Elm Ave,Springfield,62702,',
          'HOSP,1003,Jones,Marie,1981-12-12,F,,4 Elm Ave,Springfield,62702,',
          'HOSP,,Nomrn,X,1990-01-01,F,,,,,',
        ].join('\n'),
      );
      const sqlite = join(dir, 'engine.sqlite');
      const env = {
        ...process.env,
        SQLITE_PATH: sqlite,
        DATABASE_URL: '',
        TS_NODE_PROJECT: 'tsconfig.json',
      };
      const args = ['-r', 'ts-node/register/transpile-only', '-r', 'tsconfig-paths/register'];
      const out = await run(process.execPath, [...args, 'scripts/mpi-import.ts', csv], {
        cwd: join(__dirname, '..'),
        env,
      }).catch((e: { code: number; stdout: string; stderr: string }) => e);
      expect((out as { code?: number }).code).toBe(3); // one row rejected
      expect(JSON.parse(out.stdout.trim())).toMatchObject({
        rows: 5,
        applied: 4,
        rejected: 1,
        open_tasks: 1,
      });
      expect(out.stderr).toContain('line 6: no mrn');
      const ds = createDataSource({ sqlitePath: sqlite });
      await ds.initialize();
      try {
        const rows = await ds.query<Array<{ mrn: string; person_euid: string }>>(
          `SELECT mrn, person_euid FROM mpi_source_record ORDER BY mrn`,
        );
        const euid = Object.fromEntries(rows.map((r) => [r.mrn, r.person_euid]));
        expect(euid['1001']).toBe(euid.A77); // nickname + same SSN, birth date, address
        expect(euid['1002']).not.toBe(euid['1003']); // same facility: review, never linked
      } finally {
        await ds.destroy();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60000);
});
