/**
 * Matcher evaluation on the labelled public data sets in `../shared/data`:
 *
 *   npm run mpi:eval -- --dataset febrl1|febrl2|febrl3|febrl4|opencr|splink
 *       [--em [--em-mode mixed|fixed-u|candidates]] [--loose] [--drop FIELD,…] [--sweep]
 *       [--errors N] [--bench] [--data DIR]
 *   npm run mpi:eval -- --estimate-defaults      (rewrites libs/mpi/src/matching/defaults.ts)
 *
 * Each data set is read as the engine would see it: every row becomes a `PatientRecord` (names,
 * birth date, address line "number street", identifiers, telecom) and then a `MatchRecord`
 * through `fromPatientRecord`. The records are prepared, blocked (in-memory `BlockIndex` over
 * `blockingKeys`), every distinct candidate pair is scored with the shipped defaults, and the
 * decisions are checked against the truth (FEBRL: same `rec-N-` number; FEBRL4: linkage between
 * dataset4a and dataset4b, the two files being two assigning authorities; OpenCR: the true-links
 * file; Splink: same `cluster`). Pairs in the review band count as predicted matches for
 * precision, recall and F1; `auto_link_precision` counts the auto-linked pairs alone. True pairs
 * that blocking never proposes are false negatives.
 *
 * `--em` re-estimates m, u and the prior by EM on this data set (unlabelled: its candidate pairs
 * plus 200,000 random pairs, see `EmMode`) and scores again with the same thresholds; the result
 * is reported under "em". `--loose` adds broad blocking keys (a stress test of the scores),
 * `--drop` removes fields before matching (ablation), `--sweep` prints precision/recall over a
 * range of thresholds, `--errors N` prints false auto-links and missed pairs with their
 * breakdowns (synthetic data only), `--bench` adds warm per-record and per-pair timings.
 *
 * The matching code is imported from `libs/mpi/src/matching` directly rather than through
 * `@engine/mpi`, whose barrel also loads the persistence layer (slower start, nothing used).
 *
 * Progress goes to stderr; stdout gets ONE JSON line:
 * {"dataset","precision","recall","f1","auto_link_precision","review_pairs","records_per_sec",
 *  "auto_link_pairs","true_pairs","candidate_pairs","pairs_completeness",…}
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, Option } from 'commander';
import type { PatientRecord } from '@engine/mpi';
import {
  BlockIndex,
  DEFAULT_PARAMS,
  FIELDS,
  HAND_SET_LEVELS,
  U_FLOOR,
  PairScorer,
  PatternCounts,
  blockingKeys,
  compileParams,
  estimateEm,
  estimateU,
  fromPatientRecord,
  holdReasons,
  initialProbabilities,
  matchProbability,
  scoreVector,
  newVector,
  prepareRecord,
  compareInto,
  scorePair,
  type CompiledParams,
  type FieldName,
  type FieldProbabilities,
  type MatchRecord,
  type PreparedRecord,
} from '../libs/mpi/src/matching';

const DATASETS = ['febrl1', 'febrl2', 'febrl3', 'febrl4', 'opencr', 'splink'] as const;
type DatasetName = (typeof DATASETS)[number];

interface Dataset {
  name: DatasetName;
  records: MatchRecord[];
  /** Entity id of each record (same id = same person). */
  entity: string[];
  /** Linkage task: only pairs across the two files count (FEBRL4). */
  link: boolean;
}

const log = (text: string): void => {
  process.stderr.write(`${text}\n`);
};

// ---------------------------------------------------------------------------------------------
// Loading

/** Minimal CSV: quoted fields with "" escapes; every field trimmed ("skip initial space"). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else {
          quoted = false;
        }
      } else {
        field += c;
      }
    } else if (c === '"' && field.trim() === '') {
      quoted = true;
      field = '';
    } else if (c === ',') {
      row.push(field.trim());
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') {
        i++;
      }
      row.push(field.trim());
      rows.push(row);
      row = [];
      field = '';
    } else {
      field += c;
    }
  }
  if (field !== '' || row.length > 0) {
    row.push(field.trim());
    rows.push(row);
  }
  return rows.filter((r) => r.length > 1 || r[0] !== '');
}

function readTable(file: string): Record<string, string>[] {
  const [header, ...rows] = parseCsv(fs.readFileSync(file, 'utf8'));
  return rows.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i] ?? ''])));
}

/**
 * A birth date as the sender typed it: the digits of an 8-digit `YYYYMMDD` (or ISO) value, kept
 * even when it is not a calendar date (FEBRL has some; the comparator works on the digits).
 */
function looseBirthDate(raw: string): PatientRecord['birthDate'] {
  const digits = raw.replace(/[^0-9]/g, '');
  if (digits.length !== 8) {
    return undefined;
  }
  return {
    value: `${digits.slice(0, 4)}-${digits.slice(4, 6)}-${digits.slice(6, 8)}`,
    precision: 'day',
  };
}

function patient(authority: string, mrn: string): PatientRecord {
  return { authority, mrn, identifiers: [], names: [], addresses: [], telecom: [] };
}

function febrlRecord(row: Record<string, string>, authority: string): PatientRecord {
  const p = patient(authority, row.rec_id);
  p.names = [{ given: row.given_name || undefined, family: row.surname || undefined, type: 'L' }];
  const line1 = [row.street_number, row.address_1].filter((s) => s !== '').join(' ');
  p.addresses = [
    {
      line1: line1 || undefined,
      line2: row.address_2 || undefined,
      city: row.suburb || undefined,
      postalCode: row.postcode || undefined,
      state: row.state || undefined,
      type: 'H',
    },
  ];
  p.birthDate = looseBirthDate(row.date_of_birth);
  if (row.soc_sec_id) {
    p.identifiers.push({ value: row.soc_sec_id, authority: 'SSA', type: 'SS', source: 'PID-19' });
  }
  return p;
}

function febrlEntity(recId: string): string {
  const m = /^rec-(\d+)-/.exec(recId);
  if (!m) {
    throw new Error(`unexpected FEBRL rec_id ${recId}`);
  }
  return m[1];
}

function loadDataset(name: DatasetName, dataDir: string): Dataset {
  const records: MatchRecord[] = [];
  const entity: string[] = [];
  const add = (p: PatientRecord, id: string, entityId: string): void => {
    records.push(fromPatientRecord(p, id));
    entity.push(entityId);
  };
  switch (name) {
    case 'febrl1':
    case 'febrl2':
    case 'febrl3': {
      const file = path.join(dataDir, 'febrl', `dataset${name.slice(-1)}.csv`);
      for (const row of readTable(file)) {
        add(febrlRecord(row, ''), row.rec_id, febrlEntity(row.rec_id));
      }
      return { name, records, entity, link: false };
    }
    case 'febrl4': {
      for (const part of ['a', 'b']) {
        const file = path.join(dataDir, 'febrl', `dataset4${part}.csv`);
        for (const row of readTable(file)) {
          add(
            febrlRecord(row, `FEBRL4${part.toUpperCase()}`),
            `${part}:${row.rec_id}`,
            febrlEntity(row.rec_id),
          );
        }
      }
      return { name, records, entity, link: true };
    }
    case 'opencr': {
      const dir = path.join(dataDir, 'opencr');
      const rows = readTable(path.join(dir, 'uganda_data_v21_20201501.csv'));
      // Truth from the true-links file: union the linked ids into entities.
      const parent = new Map<string, string>();
      const find = (x: string): string => {
        let r = x;
        while (parent.has(r) && parent.get(r) !== r) {
          r = parent.get(r)!;
        }
        return r;
      };
      for (const link of readTable(path.join(dir, 'uganda_data_v21_20201501_true_links.csv'))) {
        parent.set(find(link.rec_id_1), find(link.rec_id_2));
      }
      for (const row of rows) {
        const p = patient('', row.rec_id);
        p.names = [
          { given: row.given_name || undefined, family: row.surname || undefined, type: 'L' },
        ];
        p.birthDate = looseBirthDate(row.date_of_birth);
        const sex = row.sex.toUpperCase();
        if (sex === 'F' || sex === 'M') {
          p.sex = sex;
        }
        if (row.phone_number) {
          p.telecom = [{ system: 'phone', value: row.phone_number, use: 'home' }];
        }
        if (row.uganda_nin) {
          p.identifiers.push({
            value: row.uganda_nin,
            authority: 'NIRA',
            type: 'NI',
            source: 'PID-3',
          });
        }
        if (row.art_number) {
          // A treatment-programme number: kept as an identifier, not compared by the matcher.
          p.identifiers.push({
            value: row.art_number,
            authority: 'ART',
            type: 'PI',
            source: 'PID-3',
          });
        }
        add(p, row.rec_id, find(row.rec_id));
      }
      return { name, records, entity, link: false };
    }
    case 'splink': {
      for (const row of readTable(path.join(dataDir, 'splink', 'fake_1000.csv'))) {
        const p = patient('', row.unique_id);
        p.names = [
          { given: row.first_name || undefined, family: row.surname || undefined, type: 'L' },
        ];
        p.birthDate = looseBirthDate(row.dob);
        if (row.city) {
          p.addresses = [{ city: row.city, type: 'H' }];
        }
        if (row.email) {
          p.telecom = [{ system: 'email', value: row.email, use: 'home' }];
        }
        add(p, row.unique_id, row.cluster);
      }
      return { name, records, entity, link: false };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Evaluation

interface Candidates {
  prepared: PreparedRecord[];
  /** Flat [i0, j0, i1, j1, …]. */
  pairs: Uint32Array;
  truePairs: number;
  trueCandidates: number;
  blockSeconds: number;
  prepareSeconds: number;
  oversizedKeys: number;
}

function isCross(ds: Dataset, i: number, j: number): boolean {
  return !ds.link || ds.records[i].authority !== ds.records[j].authority;
}

function countTruePairs(ds: Dataset): number {
  const groups = new Map<string, number[]>();
  ds.entity.forEach((e, i) => {
    const g = groups.get(e) ?? [];
    g.push(i);
    groups.set(e, g);
  });
  let total = 0;
  for (const g of groups.values()) {
    for (let x = 0; x < g.length; x++) {
      for (let y = x + 1; y < g.length; y++) {
        if (isCross(ds, g[x], g[y])) {
          total++;
        }
      }
    }
  }
  return total;
}

/**
 * Extra broad keys for `--loose`: same postcode, same phonetic family name, same birth year and
 * phonetic given name. They multiply the non-matching candidates, to check that the scores (not
 * the blocking) keep two different people apart.
 */
function looseKeys(p: PreparedRecord): string[] {
  const keys: string[] = [];
  if (p.record.postcode !== undefined) {
    keys.push(`x-pc:${p.record.postcode}`);
  }
  if (p.family && p.family.dm1 !== '') {
    keys.push(`x-f:${p.family.dm1}`);
  }
  if (p.given && p.given.dm1 !== '' && p.birth) {
    keys.push(`x-gy:${p.given.dm1}:${p.birth.year}`);
  }
  return keys;
}

function buildCandidates(ds: Dataset, loose = false): Candidates {
  const t0 = process.hrtime.bigint();
  const prepared = ds.records.map(prepareRecord);
  const prepareSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const index = new BlockIndex({ maxBlockSize: loose ? 5000 : undefined });
  for (const p of prepared) {
    index.add(loose ? [...blockingKeys(p), ...looseKeys(p)] : blockingKeys(p));
  }
  const list: number[] = [];
  let trueCandidates = 0;
  for (const [i, j] of index.pairs((i, j) => isCross(ds, i, j))) {
    list.push(i, j);
    if (ds.entity[i] === ds.entity[j]) {
      trueCandidates++;
    }
  }
  const blockSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return {
    prepared,
    pairs: Uint32Array.from(list),
    truePairs: countTruePairs(ds),
    trueCandidates,
    blockSeconds,
    prepareSeconds,
    oversizedKeys: index.oversizedKeys().length,
  };
}

interface Metrics {
  precision: number;
  recall: number;
  f1: number;
  auto_link_precision: number;
  auto_link_pairs: number;
  review_pairs: number;
  /** True pairs in the review band. */
  review_true: number;
  false_auto_links: number;
  missed_true_pairs: number;
  score_seconds: number;
  /** Review pairs scoring at or above autoLink, by hold reason (a pair may have several). */
  held: Record<string, number>;
}

function round(x: number, digits = 4): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function evaluate(ds: Dataset, c: Candidates, compiled: CompiledParams, errors = 0): Metrics {
  const scorer = new PairScorer(compiled);
  let auto = 0;
  let autoTrue = 0;
  let review = 0;
  let reviewTrue = 0;
  const held: Record<string, number> = {};
  const shownFp: string[] = [];
  const shownFn: string[] = [];
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < c.pairs.length; k += 2) {
    const i = c.pairs[k];
    const j = c.pairs[k + 1];
    const { decision, score } = scorer.score(c.prepared[i], c.prepared[j]);
    const same = ds.entity[i] === ds.entity[j];
    if (decision === 'auto-link') {
      auto++;
      if (same) {
        autoTrue++;
      } else if (shownFp.length < errors) {
        shownFp.push(explain('FALSE AUTO-LINK', c.prepared[i], c.prepared[j], compiled, score));
      }
    } else if (decision === 'review') {
      review++;
      if (same) {
        reviewTrue++;
      }
      if (score >= compiled.thresholds.autoLink) {
        for (const reason of holdReasons(
          c.prepared[i],
          c.prepared[j],
          scorer.lastVector(),
          compiled,
        )) {
          held[reason] = (held[reason] ?? 0) + 1;
        }
      }
    } else if (same && shownFn.length < errors) {
      shownFn.push(explain('MISSED', c.prepared[i], c.prepared[j], compiled, score));
    }
  }
  const scoreSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
  for (const s of [...shownFp, ...shownFn]) {
    log(s);
  }
  const tp = autoTrue + reviewTrue;
  const predicted = auto + review;
  const precision = predicted === 0 ? 1 : tp / predicted;
  const recall = c.truePairs === 0 ? 1 : tp / c.truePairs;
  const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
  return {
    precision: round(precision),
    recall: round(recall),
    f1: round(f1),
    auto_link_precision: round(auto === 0 ? 1 : autoTrue / auto, 5),
    auto_link_pairs: auto,
    review_pairs: review,
    review_true: reviewTrue,
    false_auto_links: auto - autoTrue,
    missed_true_pairs: c.truePairs - tp,
    score_seconds: scoreSeconds,
    held,
  };
}

function explain(
  title: string,
  a: PreparedRecord,
  b: PreparedRecord,
  compiled: CompiledParams,
  score: number,
): string {
  const s = scorePair(a, b, compiled);
  const fields = s.breakdown
    .filter((e) => e.level !== 'missing' || e.left !== undefined || e.right !== undefined)
    .map(
      (e) =>
        `    ${e.field.padEnd(12)} ${e.level.padEnd(18)} ${e.weight.toFixed(1).padStart(6)}  ${e.left ?? '∅'} | ${e.right ?? '∅'}${e.note ? ` (${e.note})` : ''}`,
    );
  return [
    `${title} ${a.record.id} ~ ${b.record.id} score ${score.toFixed(2)} held ${s.held.join(',') || '-'}`,
    ...fields,
  ].join('\n');
}

function patternsOf(c: Candidates): PatternCounts {
  const counts = new PatternCounts();
  const v = newVector();
  for (let k = 0; k < c.pairs.length; k += 2) {
    compareInto(c.prepared[c.pairs[k]], c.prepared[c.pairs[k + 1]], v);
    counts.add(v);
  }
  return counts;
}

/** Pairs drawn at random (seeded), for u: almost all of them are non-matches. */
function randomPatterns(ds: Dataset, c: Candidates, samples: number): PatternCounts {
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  const counts = new PatternCounts();
  const v = newVector();
  const n = c.prepared.length;
  let drawn = 0;
  while (drawn < samples) {
    const i = rand(n);
    const j = rand(n);
    if (i === j || !isCross(ds, i, j)) {
      continue;
    }
    compareInto(c.prepared[i], c.prepared[j], v);
    counts.add(v);
    drawn++;
  }
  return counts;
}

function sweep(ds: Dataset, c: Candidates, compiled: CompiledParams): void {
  // Scores and truth once; then every threshold pair.
  const scorer = new PairScorer({
    ...compiled,
    thresholds: { autoLink: Number.POSITIVE_INFINITY, review: Number.NEGATIVE_INFINITY },
  });
  const holdScorer = new PairScorer({ ...compiled, thresholds: { autoLink: -1e9, review: -1e9 } });
  const rows: { score: number; same: boolean; held: boolean }[] = [];
  for (let k = 0; k < c.pairs.length; k += 2) {
    const i = c.pairs[k];
    const j = c.pairs[k + 1];
    const { score } = scorer.score(c.prepared[i], c.prepared[j]);
    const held = holdScorer.score(c.prepared[i], c.prepared[j]).decision === 'review';
    rows.push({ score, same: ds.entity[i] === ds.entity[j], held });
  }
  log('  review  f1      precision recall   | autoLink  auto_prec  auto_pairs false_auto');
  const reviews = [0, 2, 4, 6, 8, 10, 12];
  const autos = [14, 18, 20, 22, 24, 26, 28, 30, 32, 36];
  for (let x = 0; x < Math.max(reviews.length, autos.length); x++) {
    let left = ''.padEnd(35);
    if (x < reviews.length) {
      const r = reviews[x];
      let tp = 0;
      let pred = 0;
      for (const row of rows) {
        if (row.score >= r) {
          pred++;
          if (row.same) {
            tp++;
          }
        }
      }
      const p = pred ? tp / pred : 1;
      const rc = tp / c.truePairs;
      left = `  ${String(r).padStart(6)}  ${((2 * p * rc) / (p + rc)).toFixed(4)}  ${p.toFixed(4)}    ${rc.toFixed(4)}`;
    }
    let right = '';
    if (x < autos.length) {
      const a = autos[x];
      let n = 0;
      let t = 0;
      for (const row of rows) {
        if (row.score >= a && !row.held) {
          n++;
          if (row.same) {
            t++;
          }
        }
      }
      right = `${String(a).padStart(8)}  ${(n ? t / n : 1).toFixed(5)}  ${String(n).padStart(9)} ${String(n - t).padStart(9)}`;
    }
    log(`${left} | ${right}`);
  }
}

/**
 * How `--em` estimates:
 * - `mixed` (default): m, u and λ all by EM, over the candidate pairs plus 200,000 random pairs
 *   (the random pairs give EM the non-matches that blocking removes);
 * - `fixed-u`: u = level frequencies among the random pairs, m and λ by EM on the candidate pairs;
 * - `candidates`: m, u and λ by EM on the candidate pairs alone (unstable when blocking leaves few
 *   non-matches: kept to show why the other two exist).
 */
type EmMode = 'mixed' | 'fixed-u' | 'candidates';
const EM_MODES: readonly EmMode[] = ['mixed', 'fixed-u', 'candidates'];

function runEm(
  ds: Dataset,
  c: Candidates,
  mode: EmMode,
  init: { prior: number; fields: Record<FieldName, FieldProbabilities> },
): ReturnType<typeof estimateEm> {
  const patterns = patternsOf(c);
  if (mode === 'candidates') {
    return estimateEm(patterns, init);
  }
  const random = randomPatterns(ds, c, 200000);
  if (mode === 'fixed-u') {
    return estimateEm(
      patterns,
      { prior: init.prior, fields: estimateU(random, init.fields) },
      {
        fixU: true,
      },
    );
  }
  random.patterns.forEach((v, k) => patterns.add(v, random.counts[k]));
  return estimateEm(patterns, init);
}

/** Nanoseconds per call of `f(i)`, after a warm-up, over at least `minMs`. */
function nsPerCall(f: (i: number) => void, minMs = 400): number {
  for (let i = 0; i < 20000; i++) {
    f(i);
  }
  let calls = 0;
  const t0 = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < minMs * 1e6) {
    for (let i = 0; i < 10000; i++) {
      f(calls++);
    }
    elapsed = Number(process.hrtime.bigint() - t0);
  }
  return Math.round(elapsed / calls);
}

/** Warm per-call costs of the hot-path pieces (one core), for docs/decisions/0007-matching.md. */
function microBench(ds: Dataset, c: Candidates, compiled: CompiledParams): Record<string, number> {
  const n = ds.records.length;
  const p = c.prepared;
  const scorer = new PairScorer(compiled);
  const pairs = c.pairs.length / 2;
  return {
    prepare_ns_per_record: nsPerCall((i) => prepareRecord(ds.records[i % n])),
    blocking_keys_ns_per_record: nsPerCall((i) => blockingKeys(p[i % n])),
    score_ns_per_candidate_pair: nsPerCall((i) => {
      const k = 2 * (i % pairs);
      scorer.score(p[c.pairs[k]], p[c.pairs[k + 1]]);
    }),
    score_ns_per_random_pair: nsPerCall((i) =>
      scorer.score(p[(i * 7919) % n], p[(i * 104729 + 13) % n]),
    ),
    explain_ns_per_candidate_pair: nsPerCall((i) => {
      const k = 2 * (i % pairs);
      scorePair(p[c.pairs[k]], p[c.pairs[k + 1]], compiled);
    }),
  };
}

interface RunOptions {
  /** MatchRecord fields removed before matching (ablation: `--drop nationalId`). */
  drop: (keyof MatchRecord)[];
  bench: boolean;
  loose: boolean;
  em: boolean;
  sweep: boolean;
  errors: number;
  emMode: EmMode;
}

function runDataset(name: DatasetName, dataDir: string, opts: RunOptions): Record<string, unknown> {
  log(`[mpi:eval] ${name}: loading ${dataDir}`);
  const ds = loadDataset(name, dataDir);
  for (const record of ds.records) {
    for (const field of opts.drop) {
      delete record[field];
    }
  }
  log(`[mpi:eval] ${name}: ${ds.records.length} records; blocking…`);
  const c = buildCandidates(ds, opts.loose);
  log(
    `[mpi:eval] ${name}: ${c.pairs.length / 2} candidate pairs, ${c.trueCandidates}/${c.truePairs} true pairs among them (${c.blockSeconds.toFixed(2)} s); scoring…`,
  );
  const compiled = compileParams(DEFAULT_PARAMS);
  const m = evaluate(ds, c, compiled, opts.errors);
  const seconds = c.blockSeconds + m.score_seconds;
  log(
    `[mpi:eval] ${name}: shipped defaults: P ${m.precision} R ${m.recall} F1 ${m.f1}, auto-link ${m.auto_link_pairs} (precision ${m.auto_link_precision}), review ${m.review_pairs} (${m.review_true} true), ${seconds.toFixed(2)} s`,
  );
  if (opts.sweep) {
    sweep(ds, c, compiled);
  }
  const out: Record<string, unknown> = {
    dataset: name,
    precision: m.precision,
    recall: m.recall,
    f1: m.f1,
    auto_link_precision: m.auto_link_precision,
    review_pairs: m.review_pairs,
    records_per_sec: Math.round(ds.records.length / seconds),
    auto_link_pairs: m.auto_link_pairs,
    true_pairs: c.truePairs,
    candidate_pairs: c.pairs.length / 2,
    pairs_completeness: round(c.trueCandidates / c.truePairs),
    review_true_pairs: m.review_true,
    false_auto_links: m.false_auto_links,
    missed_true_pairs: m.missed_true_pairs,
    held_by: m.held,
    records: ds.records.length,
    thresholds: compiled.thresholds,
    blocking: opts.loose ? 'loose' : 'shipped',
    ...(opts.drop.length > 0 ? { dropped: opts.drop } : {}),
  };
  if (opts.bench) {
    out.bench = microBench(ds, c, compiled);
    log(`[mpi:eval] ${name}: warm timings ${JSON.stringify(out.bench)}`);
  }
  if (opts.em) {
    const t0 = process.hrtime.bigint();
    const em = runEm(ds, c, opts.emMode, {
      prior: DEFAULT_PARAMS.prior,
      fields: DEFAULT_PARAMS.fields,
    });
    const emSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const emCompiled = compileParams({
      prior: em.prior,
      fields: em.fields,
      thresholds: DEFAULT_PARAMS.thresholds,
    });
    const e = evaluate(ds, c, emCompiled, opts.errors);
    log(
      `[mpi:eval] ${name}: EM (${em.iterations} iterations, λ ${em.prior.toFixed(4)}, ${emSeconds.toFixed(2)} s): P ${e.precision} R ${e.recall} F1 ${e.f1}, auto-link ${e.auto_link_pairs} (precision ${e.auto_link_precision}), review ${e.review_pairs}`,
    );
    if (opts.sweep) {
      sweep(ds, c, emCompiled);
    }
    out.em = {
      precision: e.precision,
      recall: e.recall,
      f1: e.f1,
      auto_link_precision: e.auto_link_precision,
      review_pairs: e.review_pairs,
      auto_link_pairs: e.auto_link_pairs,
      false_auto_links: e.false_auto_links,
      prior: round(em.prior, 5),
      iterations: em.iterations,
      converged: em.converged,
      mode: opts.emMode,
      em_seconds: round(emSeconds, 3),
    };
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Estimating the shipped defaults

/** Which data set's EM estimate each field's shipped m/u comes from. */
const DEFAULT_SOURCES: Record<string, readonly FieldName[]> = {
  febrl12: [
    'given',
    'family',
    'birthDate',
    'ssn',
    'streetNumber',
    'street',
    'line2',
    'city',
    'postcode',
    'state',
  ],
  opencr: ['sex', 'phone', 'nationalId'],
  splink: ['email'],
};

function estimateDefaults(dataDir: string): string {
  const fields = { ...initialProbabilities() } as Record<FieldName, FieldProbabilities>;
  let prior = 0;
  const sources: string[] = [];
  for (const [source, owned] of Object.entries(DEFAULT_SOURCES)) {
    const names: DatasetName[] =
      source === 'febrl12' ? ['febrl1', 'febrl2'] : [source as DatasetName];
    const patterns = new PatternCounts();
    const candidates = new PatternCounts();
    for (const name of names) {
      const ds = loadDataset(name, dataDir);
      const c = buildCandidates(ds);
      const p = patternsOf(c);
      p.patterns.forEach((v, i) => {
        patterns.add(v, p.counts[i]);
        candidates.add(v, p.counts[i]);
      });
      const r = randomPatterns(ds, c, 200000);
      r.patterns.forEach((v, i) => patterns.add(v, r.counts[i]));
      log(`[mpi:eval] defaults: ${name}: ${c.pairs.length / 2} candidate pairs`);
    }
    const em = estimateEm(patterns, { prior: 0.01, fields: initialProbabilities() });
    const candidateShare = matchShare(candidates, em);
    log(
      `[mpi:eval] defaults: ${source}: EM ${em.iterations} iterations, λ ${em.prior.toFixed(4)} (${candidateShare.toFixed(4)} among candidates), estimated ${em.estimated.join(', ')}`,
    );
    for (const f of owned) {
      const m = { ...em.fields[f].m };
      const u = { ...em.fields[f].u };
      for (const [level, set] of Object.entries(HAND_SET_LEVELS[f] ?? {})) {
        m[level] = set.m ?? m[level];
        u[level] = set.u ?? u[level];
      }
      for (const level of Object.keys(u)) {
        u[level] = Math.max(u[level], U_FLOOR);
      }
      fields[f] = { m, u };
    }
    if (source === 'febrl12') {
      prior = candidateShare;
    }
    sources.push(`${source} (${names.join(' + ')}): ${owned.join(', ')}`);
  }
  return renderDefaults(fields, prior, sources);
}

/** Mean P(match) over the candidate pairs under an EM result: λ among candidates. */
function matchShare(candidates: PatternCounts, em: ReturnType<typeof estimateEm>): number {
  const compiled = compileParams({
    prior: em.prior,
    fields: em.fields,
    thresholds: DEFAULT_PARAMS.thresholds,
  });
  let sum = 0;
  candidates.patterns.forEach((v, i) => {
    sum += candidates.counts[i] * matchProbability(scoreVector(v, compiled), em.prior);
  });
  return sum / candidates.total;
}

function sig(x: number): string {
  return Number(x.toPrecision(4)).toString();
}

function renderDefaults(
  fields: Record<FieldName, FieldProbabilities>,
  prior: number,
  sources: string[],
): string {
  const estimated = FIELDS.filter((f) =>
    Object.values(DEFAULT_SOURCES).some((l) => l.includes(f.name)),
  );
  const body = estimated
    .map((f) => {
      const p = fields[f.name];
      const levels = (k: 'm' | 'u'): string =>
        (f.levels as readonly string[]).map((l) => `'${l}': ${sig(p[k][l])}`).join(', ');
      return `  ${f.name}: {\n    m: { ${levels('m')} },\n    u: { ${levels('u')} },\n  },`;
    })
    .join('\n');
  return [
    '// Shipped matching parameters. GENERATED by `npm run mpi:eval -- --estimate-defaults`, then',
    '// frozen here (do not edit by hand; re-run and review the diff). m, u and λ: EM over the',
    '// unlabelled candidate pairs of the source data sets plus 200,000 random pairs of each; then',
    '// HAND_SET_LEVELS (levels the data sets never exercise) replace the EM values and every u is',
    '// raised to at least U_FLOOR. The hand-set fields and the thresholds come from hand-set.ts.',
    '// Sources:',
    ...sources.map((s) => `//   ${s}`),
    "import type { FieldName, FieldProbabilities, MatchParams } from './fellegi-sunter';",
    "import { DEFAULT_THRESHOLDS, HAND_SET } from './hand-set';",
    '',
    'type Estimated = Exclude<FieldName, keyof typeof HAND_SET>;',
    '',
    'export const ESTIMATED_PROBABILITIES: Record<Estimated, FieldProbabilities> = {',
    body,
    '};',
    '',
    '/** Share of matches among the FEBRL1 + FEBRL2 candidate pairs under the EM estimate. */',
    `export const ESTIMATED_PRIOR = ${sig(prior)};`,
    '',
    'export const DEFAULT_PARAMS: MatchParams = {',
    '  prior: ESTIMATED_PRIOR,',
    '  fields: { ...ESTIMATED_PROBABILITIES, ...HAND_SET },',
    '  thresholds: DEFAULT_THRESHOLDS,',
    '};',
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const program = new Command()
    .name('mpi:eval')
    .addOption(new Option('--dataset <name>', 'data set').choices(DATASETS))
    .option('--data <dir>', 'data folder', path.resolve(process.cwd(), '../shared/data'))
    .option('--em', 're-estimate m/u/prior by EM on this data set and report that too', false)
    .addOption(
      new Option('--em-mode <mode>', 'what --em estimates from which pairs')
        .choices(EM_MODES)
        .default('mixed'),
    )
    .option('--drop <fields>', 'comma-separated MatchRecord fields to remove (ablation)', '')
    .option('--bench', 'also report warm per-record and per-pair timings', false)
    .option('--loose', 'add broad blocking keys (stress test of the scores)', false)
    .option('--sweep', 'print precision/recall over a range of thresholds (stderr)', false)
    .option('--errors <n>', 'print up to N false auto-links and missed pairs (stderr)', '0')
    .option('--estimate-defaults', 're-estimate the shipped defaults (rewrites defaults.ts)', false)
    .parse();
  const o = program.opts<{
    dataset?: DatasetName;
    data: string;
    drop: string;
    bench: boolean;
    loose: boolean;
    em: boolean;
    emMode: EmMode;
    sweep: boolean;
    errors: string;
    estimateDefaults: boolean;
  }>();
  if (o.estimateDefaults) {
    const file = path.resolve(process.cwd(), 'libs/mpi/src/matching/defaults.ts');
    const text = estimateDefaults(o.data);
    // A dev dependency, loaded only here (the evaluation itself needs none).
    const prettier = await import('prettier');
    const options = (await prettier.resolveConfig(file)) ?? {};
    fs.writeFileSync(file, await prettier.format(text, { ...options, filepath: file }));
    log(`[mpi:eval] wrote ${file}`);
    process.stdout.write(`${JSON.stringify({ defaults: path.relative(process.cwd(), file) })}\n`);
    return;
  }
  if (!o.dataset) {
    program.error('--dataset is required');
    return;
  }
  const out = runDataset(o.dataset, o.data, {
    drop: o.drop
      .split(',')
      .map((f) => f.trim())
      .filter((f): f is keyof MatchRecord => f !== '' && f !== 'id' && f !== 'authority'),
    bench: o.bench,
    loose: o.loose,
    em: o.em,
    sweep: o.sweep,
    errors: Number(o.errors),
    emMode: o.emMode,
  });
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(
    `[mpi:eval] ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exitCode = 1;
});
