/**
 * Scans the whole master patient index for duplicate persons and opens worklist tasks:
 *
 *   npm run mpi:dedupe [-- --chunk 1000] [--reindex]
 *
 * Runs against the engine's database and config (DATABASE_URL / SQLITE_PATH, HL7_CONFIG; the
 * matching parameters and thresholds of `mpi.matching`). `--reindex` first rewrites every
 * record's blocking keys (after changing the blocking rules, or moving from the deterministic
 * identity rule). Progress on stderr; one JSON line on stdout at the end. Safe to run while the
 * engine runs, and again: a pair already on the worklist (open, decided, not a duplicate) is
 * never reopened.
 */
import { Command } from 'commander';
import {
  DedupeScanner,
  resolveMatchParams,
  validateMatchingConfig,
  type DedupeProgress,
} from '@engine/mpi';
import { duration, openMpi } from './mpi/context';

async function main(): Promise<void> {
  const opts = new Command('mpi:dedupe')
    .option('--chunk <n>', 'records per step', (v) => Number(v), 1000)
    .option('--reindex', 'rewrite every blocking key first', false)
    .parse()
    .opts<{ chunk: number; reindex: boolean }>();
  if (!Number.isInteger(opts.chunk) || opts.chunk < 1) {
    throw new Error('--chunk must be a positive integer');
  }
  const { dataSource, config } = await openMpi();
  try {
    const matching = config.mpi.matching
      ? validateMatchingConfig(config.mpi.matching, 'mpi.matching')
      : undefined;
    const scanner = new DedupeScanner(dataSource, resolveMatchParams(matching));
    let last = 0;
    const report = (p: DedupeProgress, force = false) => {
      if (!force && Date.now() - last < 1000) {
        return;
      }
      last = Date.now();
      const rate = p.records / Math.max(0.001, p.elapsedMs / 1000);
      const eta = rate > 0 ? ((p.total - p.records) / rate) * 1000 : 0;
      process.stderr.write(
        `${p.records}/${p.total} records  ${Math.round(rate)} rec/s  ` +
          `${p.candidatePairs} pairs scored  ${p.tasksOpened} tasks opened  ` +
          `elapsed ${duration(p.elapsedMs)}  eta ${duration(eta)}\n`,
      );
    };
    process.stderr.write(opts.reindex ? 'rewriting blocking keys…\n' : '');
    const result = await scanner.run({
      chunkSize: opts.chunk,
      reindex: opts.reindex,
      onProgress: (p) => report(p),
    });
    report(result, true);
    const mem = process.memoryUsage();
    process.stdout.write(
      JSON.stringify({
        records: result.records,
        candidate_pairs: result.candidatePairs,
        auto_link_pairs: result.autoLinkPairs,
        review_pairs: result.reviewPairs,
        tasks_opened: result.tasksOpened,
        elapsed_s: Math.round(result.elapsedMs / 100) / 10,
        records_per_sec: Math.round(result.records / Math.max(0.001, result.elapsedMs / 1000)),
        rss_mb: Math.round(mem.rss / 1e6),
        heap_used_mb: Math.round(mem.heapUsed / 1e6),
      }) + '\n',
    );
  } finally {
    await dataSource.destroy();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`mpi:dedupe: ${(err as Error).message}\n`);
  process.exit(1);
});
