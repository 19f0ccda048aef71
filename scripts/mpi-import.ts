/**
 * Bulk-loads an existing patient list into the master patient index (a hospital adopting the
 * engine):
 *
 *   npm run mpi:import -- FILE.csv [--batch 500] [--authority AUTH]
 *
 * CSV with a header row; column names (case-insensitive, `_`/`-`/space ignored): `authority`
 * (or `--authority` for the whole file), `mrn` (required), `family`, `given`, `middle`,
 * `suffix`, `birth_date` (YYYY-MM-DD or YYYYMMDD), `sex` (F/M/O/U), `ssn`, `street`, `line2`,
 * `city`, `state`, `postcode`, `country`, `phone`, `email`. Each row goes through the same
 * identity resolution as an arriving registration (blocking, matching, review tasks), so
 * duplicates inside the list and against the index are linked or put on the worklist. Rows are
 * applied in batches, each in one transaction; re-running the same file changes nothing.
 * Progress on stderr; one JSON line on stdout.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { parse } from 'csv-parse/sync';
import {
  createIdentityResolver,
  MpiPipeline,
  MpiStore,
  normalizeEmail,
  normalizeName,
  normalizePhone,
  normalizePostalCode,
  normalizeSex,
  normalizeSsn,
  parseHl7Date,
  tidyText,
  type BatchItem,
  type NormalizedMessage,
  type PatientRecord,
} from '@engine/mpi';
import { duration, openMpi } from './mpi/context';

type Row = Record<string, string>;

function column(row: Row, ...names: string[]): string | undefined {
  for (const n of names) {
    const v = row[n];
    if (v !== undefined && v.trim() !== '') {
      return v;
    }
  }
  return undefined;
}

/** One CSV row → a patient record, normalized like PID data; throws with the reason. */
export function rowToPatient(row: Row, defaultAuthority?: string): PatientRecord {
  const authority = tidyText(column(row, 'authority')) ?? defaultAuthority;
  const mrn = tidyText(column(row, 'mrn'));
  if (!authority) {
    throw new Error('no authority (column or --authority)');
  }
  if (!mrn) {
    throw new Error('no mrn');
  }
  const birthText = column(row, 'birthdate', 'dob');
  const birthDate = birthText ? parseHl7Date(birthText.replace(/-/g, '')) : undefined;
  if (birthText && !birthDate) {
    throw new Error(`birth date "${birthText}" is not a date`);
  }
  const ssn = normalizeSsn(column(row, 'ssn'));
  const phone = normalizePhone(column(row, 'phone'));
  const email = normalizeEmail(column(row, 'email'));
  const family = normalizeName(column(row, 'family', 'surname', 'lastname'));
  const given = normalizeName(column(row, 'given', 'firstname'));
  const street = tidyText(column(row, 'street', 'address', 'line1'));
  return {
    authority,
    mrn,
    identifiers: [
      { value: mrn, authority, type: 'MR', source: 'PID-3' },
      ...(ssn ? [{ value: ssn, authority: 'SSA', type: 'SS', source: 'PID-19' as const }] : []),
    ],
    names:
      family || given
        ? [
            {
              family,
              given,
              middle: normalizeName(column(row, 'middle')),
              suffix: normalizeName(column(row, 'suffix')),
              type: 'L',
            },
          ]
        : [],
    birthDate,
    // F/M/O/U, or the words (female, male, other, unknown) by their first letter.
    sex: normalizeSex(column(row, 'sex', 'gender')?.trim().slice(0, 1)),
    addresses: street
      ? [
          {
            line1: street.toUpperCase(),
            line2: tidyText(column(row, 'line2'))?.toUpperCase(),
            city: tidyText(column(row, 'city'))?.toUpperCase(),
            state: tidyText(column(row, 'state'))?.toUpperCase(),
            postalCode: normalizePostalCode(column(row, 'postcode', 'zip', 'postalcode')),
            country: tidyText(column(row, 'country'))?.toUpperCase(),
            type: 'H',
          },
        ]
      : [],
    telecom: [
      ...(phone ? [{ system: 'phone' as const, value: phone, use: 'home' as const }] : []),
      ...(email ? [{ system: 'email' as const, value: email, use: 'home' as const }] : []),
    ],
  };
}

async function main(): Promise<void> {
  const program = new Command('mpi:import')
    .argument('<file>', 'CSV file with a header row')
    .option('--batch <n>', 'rows per transaction', (v) => Number(v), 500)
    .option('--authority <auth>', 'assigning authority of every row without one')
    .parse();
  const [file] = program.args;
  const opts = program.opts<{ batch: number; authority?: string }>();
  if (!Number.isInteger(opts.batch) || opts.batch < 1) {
    throw new Error('--batch must be a positive integer');
  }
  const rows = parse(readFileSync(file), {
    columns: (header: string[]) => header.map((h) => h.toLowerCase().replace(/[\s_-]/g, '')),
    skip_empty_lines: true,
    trim: true,
    bom: true,
  }) as Row[];
  const { dataSource, config } = await openMpi();
  const started = Date.now();
  let applied = 0;
  const rejected: Array<{ line: number; reason: string }> = [];
  try {
    const pipeline = new MpiPipeline(new MpiStore(dataSource), {
      identity: createIdentityResolver(config.mpi.identity, config.mpi.matching),
      survivorship: config.mpi.survivorship,
    });
    let last = 0;
    for (let start = 0; start < rows.length; start += opts.batch) {
      const items: BatchItem[] = [];
      rows.slice(start, start + opts.batch).forEach((row, i) => {
        try {
          const patient = rowToPatient(row, opts.authority);
          const normalized: NormalizedMessage = {
            event: { type: 'ADT', trigger: 'A28', messageControlId: 'mpi:import' },
            supported: true,
            patient,
          };
          items.push({ messageId: null, receivedAt: new Date(), normalized });
        } catch (err) {
          rejected.push({ line: start + i + 2, reason: (err as Error).message });
        }
      });
      await pipeline.applyBatch(items);
      applied += items.length;
      if (Date.now() - last > 1000 || start + opts.batch >= rows.length) {
        last = Date.now();
        const rate = applied / Math.max(0.001, (Date.now() - started) / 1000);
        process.stderr.write(
          `${start + Math.min(opts.batch, rows.length - start)}/${rows.length} rows  ` +
            `${Math.round(rate)} rows/s  ${rejected.length} rejected  elapsed ${duration(Date.now() - started)}\n`,
        );
      }
    }
    for (const r of rejected.slice(0, 20)) {
      process.stderr.write(`line ${r.line}: ${r.reason}\n`);
    }
    const [{ tasks }] = await dataSource.query<Array<{ tasks: string | number }>>(
      `SELECT count(*) AS tasks FROM "mpi_duplicate_task" WHERE "status" = 'open'`,
    );
    process.stdout.write(
      JSON.stringify({
        rows: rows.length,
        applied,
        rejected: rejected.length,
        open_tasks: Number(tasks),
        elapsed_s: Math.round((Date.now() - started) / 100) / 10,
        rows_per_sec: Math.round(applied / Math.max(0.001, (Date.now() - started) / 1000)),
      }) + '\n',
    );
  } finally {
    await dataSource.destroy();
  }
  if (rejected.length > 0) {
    process.exitCode = 3;
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`mpi:import: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
