/**
 * The synthetic ADT feed and its ground truth, for testing and measuring patient matching.
 *
 * `buildDataset` plans the population (see population.ts) and orders every message by time;
 * `writeDataset` writes, into one directory:
 *
 * - `messages.hl7`: every message, `\r` after each segment, a blank line between messages
 *   (what `npm run hl7 -- send` reads); `messages.mllp` (MLLP frames back to back) with
 *   `mllp`; `messages/000001.hl7`... one file per message with `split`.
 * - `truth.csv`: `authority,mrn,person_id,kind`, one row per source record; records with the
 *   same person_id are the same real person; `kind` marks the hard negatives (`twin`,
 *   `junior-senior`, `common-name`): distinct people that look alike and must not be linked.
 * - `duplicates.csv`: `authority,mrn,person_id,original_authority,original_mrn,errors`, one row
 *   per duplicate record, with the errors it was made with (`;`-separated).
 * - `summary.json`: the options and the counts.
 *
 * Output depends only on the options (seeded generator, no clock, no `Math.random`).
 */
import { closeSync, mkdirSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { renderAdt, type Trigger } from './adt';
import {
  ERROR_KINDS,
  type ErrorKind,
  type GenerateOptions,
  type Plan,
  planPopulation,
  recordAt,
  type SourceRecord,
} from './population';
import { Rng } from './rng';

export { DEFAULT_OPTIONS, type GenerateOptions } from './population';

const TRIGGERS: readonly Trigger[] = ['A01', 'A04', 'A08'];
const SEQ_BITS = 2 ** 25;
/** Keys are `time * 2^25 + seq`, exact in a double while time < 2^28 s and seq < 2^25. */
export const MAX_MESSAGES = SEQ_BITS - 1;

export interface Summary {
  seed: string;
  options: Omit<GenerateOptions, 'seed'>;
  people: number;
  records: number;
  messages: number;
  triggers: Record<Trigger, number>;
  authorities: Record<string, { records: number; messages: number }>;
  duplicates: {
    /** People with more than one record. */
    people: number;
    /** Records beyond each person's first. */
    records: number;
    /** Duplicate records at the same authority as the person's first record. */
    sameAuthority: number;
    /** Duplicate records made without any error (exact re-registrations). */
    exact: number;
    errors: Record<ErrorKind, number>;
  };
  hardNegatives: {
    twinPairs: number;
    juniorSeniorPairs: number;
    commonNamePeople: number;
  };
}

export class Dataset {
  /** Message order: record index and trigger of each message, sorted by time. */
  private readonly eventRecord: Uint32Array;
  private readonly eventTrigger: Uint8Array;
  private readonly eventTime: Float64Array;
  private readonly controlPrefix: string;

  constructor(
    readonly options: GenerateOptions,
    readonly plan: Plan,
  ) {
    const { records } = plan;
    let count = 0;
    for (const r of records) {
      count += 1 + r.updates.length;
    }
    if (count > MAX_MESSAGES) {
      throw new RangeError(`too many messages (${count}); lower --people or --messages-per-person`);
    }
    const keys = new Float64Array(count);
    const rec = new Uint32Array(count);
    const trig = new Uint8Array(count);
    let seq = 0;
    for (const r of records) {
      keys[seq] = r.created * SEQ_BITS + seq;
      rec[seq] = r.index;
      trig[seq] = r.trigger === 'A01' ? 0 : 1;
      seq++;
      for (const at of r.updates) {
        keys[seq] = at * SEQ_BITS + seq;
        rec[seq] = r.index;
        trig[seq] = 2;
        seq++;
      }
    }
    keys.sort();
    this.eventRecord = new Uint32Array(count);
    this.eventTrigger = new Uint8Array(count);
    this.eventTime = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      const s = keys[i] % SEQ_BITS;
      this.eventRecord[i] = rec[s];
      this.eventTrigger[i] = trig[s];
      this.eventTime[i] = (keys[i] - s) / SEQ_BITS;
    }
    this.controlPrefix = `G${new Rng(`control:${options.seed}`).uint32().toString(36).toUpperCase()}`;
  }

  get messageCount(): number {
    return this.eventRecord.length;
  }

  /** The i-th message (0-based, time order). */
  message(i: number): string {
    const record = this.plan.records[this.eventRecord[i]];
    const at = this.eventTime[i];
    return renderAdt({
      authority: this.options.authorities[record.authority],
      style: record.authority % 3,
      mrn: record.mrn,
      trigger: TRIGGERS[this.eventTrigger[i]],
      at,
      controlId: `${this.controlPrefix}${String(i + 1).padStart(9, '0')}`,
      visit: i + 1,
      demographics: recordAt(record, at),
    });
  }

  *messages(): Generator<string> {
    for (let i = 0; i < this.messageCount; i++) {
      yield this.message(i);
    }
  }

  /** Records in order of registration. */
  recordsByTime(): SourceRecord[] {
    return this.plan.records.slice().sort((x, y) => x.created - y.created || x.index - y.index);
  }

  truthCsv(): string {
    const lines = ['authority,mrn,person_id,kind'];
    for (const r of this.recordsByTime()) {
      lines.push(
        `${this.options.authorities[r.authority]},${r.mrn},${r.person.id},${r.person.kind}`,
      );
    }
    return `${lines.join('\n')}\n`;
  }

  duplicatesCsv(): string {
    const lines = ['authority,mrn,person_id,original_authority,original_mrn,errors'];
    const auth = this.options.authorities;
    for (const r of this.recordsByTime()) {
      if (r.original) {
        lines.push(
          `${auth[r.authority]},${r.mrn},${r.person.id},${auth[r.original.authority]},` +
            `${r.original.mrn},${r.errors.join(';')}`,
        );
      }
    }
    return `${lines.join('\n')}\n`;
  }

  summary(): Summary {
    const { seed, ...options } = this.options;
    const triggers: Record<Trigger, number> = { A01: 0, A04: 0, A08: 0 };
    for (const t of this.eventTrigger) {
      triggers[TRIGGERS[t]]++;
    }
    const authorities: Summary['authorities'] = {};
    for (const a of this.options.authorities) {
      authorities[a] = { records: 0, messages: 0 };
    }
    const errors = Object.fromEntries(ERROR_KINDS.map((k) => [k, 0])) as Record<ErrorKind, number>;
    let dupRecords = 0;
    let sameAuthority = 0;
    let exact = 0;
    for (const r of this.plan.records) {
      const a = authorities[this.options.authorities[r.authority]];
      a.records++;
      a.messages += 1 + r.updates.length;
      if (r.original) {
        dupRecords++;
        sameAuthority += r.original.authority === r.authority ? 1 : 0;
        exact += r.errors.length === 0 ? 1 : 0;
        for (const e of r.errors) {
          errors[e]++;
        }
      }
    }
    return {
      seed,
      options,
      people: this.plan.persons.length,
      records: this.plan.records.length,
      messages: this.messageCount,
      triggers,
      authorities,
      duplicates: {
        people: this.plan.duplicatedPersons,
        records: dupRecords,
        sameAuthority,
        exact,
        errors,
      },
      hardNegatives: {
        twinPairs: this.plan.twinPairs,
        juniorSeniorPairs: this.plan.juniorSeniorPairs,
        commonNamePeople: this.plan.commonNamePersons,
      },
    };
  }
}

export function buildDataset(options: GenerateOptions): Dataset {
  return new Dataset(options, planPopulation(options, new Rng(options.seed)));
}

export interface WriteOptions {
  /** Also write `messages.mllp` (VT payload FS CR, back to back). */
  mllp?: boolean;
  /** Also write one file per message under `messages/`. */
  split?: boolean;
  /** Called with a short progress line (no patient data) every ~10% of the messages. */
  progress?: (line: string) => void;
}

/** Buffered appends to one file (small buffers: they die young, cheap for the GC). */
class Output {
  private readonly fd: number;
  private pieces: string[] = [];
  private size = 0;

  constructor(path: string) {
    this.fd = openSync(path, 'w');
  }

  write(data: string | Buffer): void {
    if (typeof data !== 'string') {
      this.flush();
      writeSync(this.fd, data);
      return;
    }
    this.pieces.push(data);
    this.size += data.length;
    if (this.size >= 1 << 18) {
      this.flush();
    }
  }

  private flush(): void {
    if (this.pieces.length > 0) {
      writeSync(this.fd, this.pieces.join(''));
      this.pieces = [];
      this.size = 0;
    }
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
  }
}

/** Writes the dataset's files into `dir` (created if needed); returns the file names. */
export function writeDataset(dataset: Dataset, dir: string, options: WriteOptions = {}): string[] {
  mkdirSync(dir, { recursive: true });
  const files = ['messages.hl7', 'truth.csv', 'duplicates.csv', 'summary.json'];
  const text = new Output(join(dir, 'messages.hl7'));
  const mllp = options.mllp ? new Output(join(dir, 'messages.mllp')) : undefined;
  if (mllp) {
    files.push('messages.mllp');
  }
  const splitDir = join(dir, 'messages');
  if (options.split) {
    mkdirSync(splitDir, { recursive: true });
    // Only our own numbered files from an earlier run are removed.
    for (const name of readdirSync(splitDir)) {
      if (/^\d+\.hl7$/.test(name)) {
        rmSync(join(splitDir, name));
      }
    }
    files.push('messages/');
  }
  const total = dataset.messageCount;
  const width = Math.max(6, String(total).length);
  const step = Math.max(1, Math.ceil(total / 10));
  try {
    for (let i = 0; i < total; i++) {
      const message = dataset.message(i);
      text.write(i === 0 ? message : `\n\n${message}`);
      if (mllp) {
        mllp.write(`\x0b${message}\x1c\r`);
      }
      if (options.split) {
        const out = new Output(join(splitDir, `${String(i + 1).padStart(width, '0')}.hl7`));
        out.write(message);
        out.close();
      }
      if (options.progress && (i + 1) % step === 0 && i + 1 < total) {
        options.progress(`${Math.round(((i + 1) * 100) / total)}% (${i + 1}/${total} messages)`);
      }
    }
    text.write('\n');
  } finally {
    text.close();
    mllp?.close();
  }
  writeText(join(dir, 'truth.csv'), dataset.truthCsv());
  writeText(join(dir, 'duplicates.csv'), dataset.duplicatesCsv());
  writeText(join(dir, 'summary.json'), `${JSON.stringify(dataset.summary(), null, 2)}\n`);
  return files;
}

function writeText(path: string, content: string): void {
  const out = new Output(path);
  out.write(content);
  out.close();
}
