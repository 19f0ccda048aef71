/**
 * PostgreSQL backend CPU per statement: unnamed statements (node-postgres's default: parsed and
 * planned on every call) against named ones (prepared once per connection), with the plan
 * cache's default (generic plan reused) and with `plan_cache_mode = force_custom_plan`
 * (parse saved, planned every call). ADR 0009.
 *
 *   npx ts-node --transpile-only -r tsconfig-paths/register bench/compare/pg-statements.ts \
 *     [--url postgres://postgres@127.0.0.1:5432/test] [--iterations 3000] [--rows 50000]
 *
 * Each iteration runs the two shapes the pipeline uses most: a 20-key lookup through
 * `unnest($1, $2)` and a 5-row `UPDATE … FROM jsonb_to_recordset($1)` with a version check.
 * The backend's CPU comes from /proc/<pid>/stat (the server must run on this machine); the
 * update commits each time, so every figure includes one commit per two statements.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { Client } from 'pg';

interface Options {
  url: string;
  iterations: string;
  rows: string;
}

/** User + system CPU of a process in ms (clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

const SELECT = `SELECT * FROM "bench_sr" WHERE ("authority", "mrn") IN (SELECT * FROM unnest($1::text[], $2::text[]))`;
const UPDATE =
  `UPDATE "bench_sr" t SET "status" = x."status", "data" = x."data", "version" = x."version" + 1, ` +
  `"updated_at" = x."updated_at" FROM jsonb_to_recordset($1::jsonb) AS x("id" uuid, "status" text, ` +
  `"data" jsonb, "version" int, "updated_at" timestamptz) WHERE t."id" = x."id" AND t."version" = x."version"`;

async function run(
  c: Client,
  pid: number,
  named: boolean,
  iterations: number,
  rows: number,
): Promise<{ cpuUs: number; wallUs: number }> {
  const t0 = process.hrtime.bigint();
  const c0 = cpuMs(pid);
  for (let i = 0; i < iterations; i++) {
    const mrns = Array.from({ length: 20 }, (_, k) => `M${1 + ((i * 20 + k) % rows)}`);
    const values = [mrns.map(() => 'HOSP'), mrns];
    const found = await c.query(
      named ? { name: 'b_sel', text: SELECT, values } : { text: SELECT, values },
    );
    const upd = found.rows.slice(0, 5).map((r: { id: string; version: number }) => ({
      id: r.id,
      status: 'active',
      data: { i },
      version: r.version,
      updated_at: new Date(),
    }));
    const uv = [JSON.stringify(upd)];
    await c.query(
      named ? { name: 'b_upd', text: UPDATE, values: uv } : { text: UPDATE, values: uv },
    );
  }
  const statements = 2 * iterations;
  return {
    cpuUs: ((cpuMs(pid) - c0) * 1000) / statements,
    wallUs: Number(process.hrtime.bigint() - t0) / 1000 / statements,
  };
}

async function main(): Promise<void> {
  const opts = new Command()
    .option(
      '--url <url>',
      'PostgreSQL URL',
      process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test',
    )
    .option('--iterations <n>', 'iterations per mode (two statements each)', '3000')
    .option('--rows <n>', 'rows in the table', '50000')
    .parse()
    .opts<Options>();
  const iterations = Number(opts.iterations);
  const rows = Number(opts.rows);
  const results: Record<string, number[]> = {};
  for (const mode of ['default', 'force_custom_plan']) {
    const c = new Client({ connectionString: opts.url });
    await c.connect();
    try {
      await c.query(`DROP TABLE IF EXISTS "bench_sr"`);
      await c.query(
        `CREATE TABLE "bench_sr" ("id" uuid PRIMARY KEY, "authority" text, "mrn" text, "person_euid" uuid, ` +
          `"status" text, "data" jsonb, "version" int, "created_at" timestamptz, "updated_at" timestamptz)`,
      );
      await c.query(`CREATE UNIQUE INDEX ON "bench_sr" ("authority", "mrn")`);
      await c.query(
        `INSERT INTO "bench_sr" SELECT gen_random_uuid(), 'HOSP', 'M' || g, gen_random_uuid(), 'active', '{}', 1, now(), now() ` +
          `FROM generate_series(1, $1::int) g`,
        [rows],
      );
      await c.query(`ANALYZE "bench_sr"`);
      if (mode !== 'default') {
        await c.query(`SET plan_cache_mode = ${mode}`);
      }
      const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      // Alternate, twice each: the machine's speed drifts between minutes.
      for (let round = 0; round < 2; round++) {
        for (const named of [false, true]) {
          const r = await run(c, pid, named, iterations, rows);
          const key = named
            ? `named (${mode === 'default' ? 'generic plan reused' : mode})`
            : 'unnamed';
          (results[key] ??= []).push(r.cpuUs);
          console.log(
            `${key.padEnd(38)} backend CPU ${r.cpuUs.toFixed(0).padStart(4)} µs/statement, wall ${r.wallUs.toFixed(0).padStart(5)} µs/statement`,
          );
        }
      }
    } finally {
      await c.query(`DROP TABLE IF EXISTS "bench_sr"`).catch(() => undefined);
      await c.end();
    }
  }
  const summary = Object.fromEntries(
    Object.entries(results).map(([k, v]) => [k, Math.round(Math.min(...v))]),
  );
  console.log(JSON.stringify({ backend_cpu_us_per_statement_best: summary }));
}

main().catch((err: unknown) => {
  console.error((err as Error).message);
  process.exit(1);
});
