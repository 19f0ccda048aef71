/**
 * Parser benchmark: `npm run bench:parse`.
 *
 * On one core, for a few seconds each after warm-up, measures messages/second for
 *  - ADT: parse + the 11 fields the pipeline reads (MSH-3, MSH-4, MSH-5, MSH-6, MSH-9, MSH-10,
 *    MSH-12, PID-3 first repetition components 1 and 4, PID-5, PID-7, PID-8);
 *  - ORU: parse + every field of every OBR/OBX segment;
 * for @engine/hl7, a plain split-based parser written here (baseline), node-hl7-client 3.2.0
 * and @medplum/core Hl7Message, on the same messages (ADT and ORU files of
 * ../shared/samples/hl7, resolved from the project root). Every parser starts from the Buffer:
 * ours decodes it with MSH-18, the others get `buf.toString('utf8')` (they take text only).
 *
 * Prints a table, then ONE JSON line:
 * {"adt_msgs_per_sec":…,"oru_msgs_per_sec":…, "<parser>_adt_msgs_per_sec":…, …}
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseMessage, splitMessages } from '@engine/hl7';
import { Hl7Message as MedplumMessage } from '@medplum/core';
import { Message as NodeHl7Message } from 'node-hl7-client';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const WARMUP_SECONDS = 1;
const SAMPLES = path.resolve(process.cwd(), '../shared/samples/hl7');

let sink = 0; // defeats dead-code elimination
const use = (v: unknown): void => {
  if (typeof v === 'string') {
    sink += v.length;
  } else if (v !== undefined && v !== null) {
    sink += 1;
  }
};

/* ------------------------------------------------------------------ corpus */

function loadCorpus(): { adt: Buffer[]; oru: Buffer[]; oruFields: number } {
  const adt: Buffer[] = [];
  const oru: Buffer[] = [];
  for (const file of fs
    .readdirSync(SAMPLES)
    .filter((f) => f.endsWith('.hl7'))
    .sort()) {
    for (const buf of splitMessages(fs.readFileSync(path.join(SAMPLES, file)))) {
      const m = parseMessage(buf);
      if (m.messageType === 'ADT' && m.hasSegment('PID')) {
        adt.push(buf);
      } else if (m.messageType === 'ORU' && (m.hasSegment('OBX') || m.hasSegment('OBR'))) {
        oru.push(buf);
      }
    }
  }
  let oruFields = 0;
  for (const buf of oru) {
    for (const s of parseMessage(buf).segments()) {
      if (s.name === 'OBX' || s.name === 'OBR') {
        oruFields += s.fieldCount;
      }
    }
  }
  return { adt, oru, oruFields };
}

/* --------------------------------------------------- the parsers under test */

interface Contender {
  name: string;
  adt(buf: Buffer): void;
  oru(buf: Buffer): number; // returns the number of fields read
}

const ours: Contender = {
  name: '@engine/hl7',
  adt(buf) {
    const m = parseMessage(buf);
    use(m.get('MSH-3'));
    use(m.get('MSH-4'));
    use(m.get('MSH-5'));
    use(m.get('MSH-6'));
    use(m.get('MSH-9'));
    use(m.get('MSH-10'));
    use(m.get('MSH-12'));
    use(m.get('PID-3[1].1'));
    use(m.get('PID-3[1].4'));
    use(m.get('PID-5'));
    use(m.get('PID-7'));
    use(m.get('PID-8'));
  },
  oru(buf) {
    let n = 0;
    for (const s of parseMessage(buf).segments()) {
      if (s.name === 'OBX' || s.name === 'OBR') {
        const count = s.fieldCount;
        for (let i = 1; i <= count; i++) {
          use(s.get(i));
        }
        n += count;
      }
    }
    return n;
  },
};

/** The obvious parser: split everything into nested arrays up front, unescape every value. */
type Field = string[][][]; // repetitions → components → subcomponents
interface SplitSegment {
  name: string;
  fields: Field[]; // index = HL7 field number (MSH offset applied)
}

function splitUnescape(v: string): string {
  return v.includes('\\')
    ? v.replace(
        /\\([FSTRE])\\/g,
        (_m, c: string) => ({ F: '|', S: '^', T: '&', R: '~', E: '\\' })[c] ?? '',
      )
    : v;
}

function splitParse(text: string): SplitSegment[] {
  const fs = text[3];
  const enc = text.slice(4, text.indexOf(fs, 4));
  const [cs, rs, , ss] = enc;
  return text
    .split(/\r\n|\r|\n/)
    .filter((l) => l.length > 0)
    .map((line) => {
      const parts = line.split(fs);
      const name = parts[0];
      const fields: Field[] = [[[[name]]]];
      if (name === 'MSH') {
        fields.push([[[fs]]], [[[enc]]]);
        parts.splice(0, 2);
      } else {
        parts.shift();
      }
      for (const p of parts) {
        fields.push(p.split(rs).map((r) => r.split(cs).map((c) => c.split(ss).map(splitUnescape))));
      }
      return { name, fields };
    });
}

function splitField(f: Field | undefined): string | undefined {
  return f?.[0]?.map((c) => c.join('&')).join('^');
}

const baseline: Contender = {
  name: 'split baseline',
  adt(buf) {
    const segs = splitParse(buf.toString('utf8'));
    const msh = segs.find((s) => s.name === 'MSH');
    const pid = segs.find((s) => s.name === 'PID');
    for (const n of [3, 4, 5, 6, 9, 10, 12]) {
      use(splitField(msh?.fields[n]));
    }
    use(pid?.fields[3]?.[0]?.[0]?.join('&'));
    use(pid?.fields[3]?.[0]?.[3]?.join('&'));
    use(splitField(pid?.fields[5]));
    use(splitField(pid?.fields[7]));
    use(splitField(pid?.fields[8]));
  },
  oru(buf) {
    let n = 0;
    for (const s of splitParse(buf.toString('utf8'))) {
      if (s.name === 'OBX' || s.name === 'OBR') {
        for (let i = 1; i < s.fields.length; i++) {
          use(splitField(s.fields[i]));
        }
        n += s.fields.length - 1;
      }
    }
    return n;
  },
};

/** Field counts per OBR/OBX segment (from our parser, computed once per message, outside timing). */
const countCache = new Map<Buffer, Map<string, number[]>>();
function fieldCounts(buf: Buffer, name: string): number[] {
  let byName = countCache.get(buf);
  if (byName === undefined) {
    const m = parseMessage(buf);
    byName = new Map(['OBR', 'OBX'].map((n) => [n, m.segments(n).map((s) => s.fieldCount)]));
    countCache.set(buf, byName);
  }
  return byName.get(name) ?? [];
}

const nodeHl7Client: Contender = {
  name: 'node-hl7-client 3.2.0',
  adt(buf) {
    const m = new NodeHl7Message({ text: buf.toString('utf8') });
    for (const p of ['MSH.3', 'MSH.4', 'MSH.5', 'MSH.6', 'MSH.9', 'MSH.10', 'MSH.12']) {
      use(m.get(p).toString());
    }
    use(m.get('PID.3.1').toString());
    use(m.get('PID.3.4').toString());
    use(m.get('PID.5').toString());
    use(m.get('PID.7').toString());
    use(m.get('PID.8').toString());
  },
  oru(buf) {
    const m = new NodeHl7Message({ text: buf.toString('utf8') });
    let n = 0;
    for (const name of ['OBR', 'OBX']) {
      const counts = fieldCounts(buf, name);
      if (counts.length === 0) {
        continue;
      }
      let k = 0;
      m.get(name).forEach((seg) => {
        const count = counts[k++] ?? 0;
        for (let i = 1; i <= count; i++) {
          use(seg.get(i).toString());
        }
        n += count;
      });
    }
    return n;
  },
};

const medplum: Contender = {
  name: '@medplum/core',
  adt(buf) {
    const m = MedplumMessage.parse(buf.toString('utf8'));
    const msh = m.getSegment('MSH');
    const pid = m.getSegment('PID');
    for (const n of [3, 4, 5, 6, 9, 10, 12]) {
      use(msh?.getField(n)?.toString());
    }
    use(pid?.getComponent(3, 1));
    use(pid?.getComponent(3, 4));
    use(pid?.getField(5)?.toString());
    use(pid?.getField(7)?.toString());
    use(pid?.getField(8)?.toString());
  },
  oru(buf) {
    let n = 0;
    for (const s of MedplumMessage.parse(buf.toString('utf8')).segments) {
      if (s.name === 'OBX' || s.name === 'OBR') {
        for (let i = 1; i < s.fields.length; i++) {
          use(s.getField(i)?.toString());
        }
        n += s.fields.length - 1;
      }
    }
    return n;
  },
};

/* ------------------------------------------------------------------ runner */

function run(fn: (buf: Buffer) => unknown, corpus: Buffer[], seconds: number): number {
  let count = 0;
  const deadline = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  const start = process.hrtime.bigint();
  let now = start;
  while (now < deadline) {
    for (let r = 0; r < 50; r++) {
      for (const buf of corpus) {
        fn(buf);
      }
    }
    count += 50 * corpus.length;
    now = process.hrtime.bigint();
  }
  return count / (Number(now - start) / 1e9);
}

function measure(fn: (buf: Buffer) => unknown, corpus: Buffer[]): number {
  run(fn, corpus, WARMUP_SECONDS);
  return Math.round(run(fn, corpus, SECONDS));
}

function main(): void {
  const { adt, oru, oruFields } = loadCorpus();
  console.log(
    `corpus: ${adt.length} ADT messages, ${oru.length} ORU messages ` +
      `(${oruFields} OBR/OBX fields in all, ${(oruFields / oru.length).toFixed(1)} per message); ` +
      `${SECONDS}s per run after ${WARMUP_SECONDS}s warm-up, node ${process.version}`,
  );
  const contenders = [ours, baseline, nodeHl7Client, medplum];
  const rows: { name: string; adt: number; oru: number }[] = [];
  const json: Record<string, number> = {};
  for (const c of contenders) {
    // every contender must read the same fields on every message
    const fields = oru.reduce((sum, b) => sum + c.oru(b), 0);
    if (fields !== oruFields) {
      throw new Error(`${c.name} read ${fields} ORU fields, expected ${oruFields}`);
    }
    const a = measure((b) => c.adt(b), adt);
    const o = measure((b) => c.oru(b), oru);
    rows.push({ name: c.name, adt: a, oru: o });
    const key = c.name.replace(/@|\/.*$| .*$/g, '').replace(/[^a-z0-9]+/gi, '_');
    json[`${key}_adt_msgs_per_sec`] = a;
    json[`${key}_oru_msgs_per_sec`] = o;
  }
  const pad = (s: string, n: number): string => s.padEnd(n);
  const num = (v: number): string => v.toLocaleString('en-US').padStart(12);
  console.log(
    `${pad('parser', 24)}${'ADT msg/s'.padStart(12)}${'ORU msg/s'.padStart(12)}  ours is (ADT)`,
  );
  for (const r of rows) {
    console.log(
      `${pad(r.name, 24)}${num(r.adt)}${num(r.oru)}  ${(rows[0].adt / r.adt).toFixed(1)}x faster`,
    );
  }
  if (sink === 0) {
    console.log('(nothing read?)');
  }
  console.log(
    JSON.stringify({
      adt_msgs_per_sec: rows[0].adt,
      oru_msgs_per_sec: rows[0].oru,
      oru_fields_per_msg: Number((oruFields / oru.length).toFixed(1)),
      adt_messages: adt.length,
      oru_messages: oru.length,
      ...json,
    }),
  );
}

main();
