import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import { v7 as uuidv7 } from 'uuid';
import { parseMessage } from '@engine/hl7';
import {
  DuplicateService,
  MpiPipeline,
  MpiStore,
  normalizeMessage,
  type BatchItem,
} from '@engine/mpi';
import { createDataSource, MessageRepository, type NewMessage } from '@engine/store';
import { receivedMessage } from '@engine/store/testing';
import { buildDataset, DEFAULT_OPTIONS } from '../scripts/generate/generate';

/**
 * Probabilistic identity on arrival, end to end over a synthetic feed with a known truth
 * (scripts/generate: typos, nicknames, transposed dates, married names, moves; twins,
 * junior/senior pairs and common names as hard negatives; same-facility duplicates).
 */
describe('matching on arrival over a synthetic feed', () => {
  let dir: string;
  let ds: DataSource;
  const truth = new Map<string, { person: string; kind: string }>();
  let records: Array<{ key: string; authority: string; euid: string }>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'matching-e2e-'));
    ds = createDataSource({ sqlitePath: join(dir, 'mpi.sqlite') });
    await ds.initialize();
    const dataset = buildDataset({
      ...DEFAULT_OPTIONS,
      people: 600,
      seed: 'matching-e2e',
      duplicateRate: 0.2,
      twinsRate: 0.04,
      juniorSeniorRate: 0.04,
      commonNameRate: 0.04,
      sameAuthorityRate: 0.3,
    });
    for (const r of dataset.plan.records) {
      truth.set(`${dataset.options.authorities[r.authority]}|${r.mrn}`, {
        person: r.person.id,
        kind: r.person.kind,
      });
    }
    const repo = new MessageRepository(ds);
    const pipeline = new MpiPipeline(new MpiStore(ds), {
      survivorship: { default: 'mostRecent', trustedAuthorities: [], fields: {} },
    });
    const BATCH = 50;
    for (let start = 0; start < dataset.messageCount; start += BATCH) {
      const rows: NewMessage[] = [];
      const items: BatchItem[] = [];
      for (let i = start; i < Math.min(dataset.messageCount, start + BATCH); i++) {
        const raw = Buffer.from(dataset.message(i), 'latin1');
        const m = parseMessage(raw);
        const id = uuidv7();
        rows.push(
          receivedMessage(raw, {
            id,
            controlId: m.controlId,
            type: m.messageType,
            trigger: m.triggerEvent,
            version: m.version,
          }),
        );
        items.push({ messageId: id, receivedAt: new Date(), normalized: normalizeMessage(m) });
      }
      await repo.insertBatch(rows, { dedupWindowMs: 0 });
      const out = await pipeline.applyBatch(items);
      expect(out.statuses.every((s) => s.status === 'processed')).toBe(true);
    }
    records = (
      await ds.query<Array<{ authority: string; mrn: string; person_euid: string }>>(
        `SELECT authority, mrn, person_euid FROM mpi_source_record`,
      )
    ).map((r) => ({ key: `${r.authority}|${r.mrn}`, authority: r.authority, euid: r.person_euid }));
  }, 120000);

  afterAll(async () => {
    await ds.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  function byEuid(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const r of records) {
      out.set(r.euid, [...(out.get(r.euid) ?? []), r.key]);
    }
    return out;
  }

  it('every source record of the feed is in the MPI', () => {
    expect(records).toHaveLength(truth.size);
  });

  it('never links two different people (twins, junior/senior and common names included)', () => {
    const wrong: string[][] = [];
    for (const keys of byEuid().values()) {
      const persons = new Set(keys.map((k) => truth.get(k)?.person));
      if (persons.size > 1) {
        wrong.push(keys);
      }
    }
    expect(wrong).toEqual([]);
    // The feed does carry hard negatives.
    const kinds = new Set([...truth.values()].map((t) => t.kind));
    expect([...kinds].sort()).toEqual(['', 'common-name', 'junior-senior', 'twin']);
  });

  it('same-facility duplicates are never linked automatically, and go to review', async () => {
    const euid = new Map(records.map((r) => [r.key, r.euid]));
    const sameFacility: Array<[string, string]> = [];
    const seen = new Map<string, string>();
    for (const [key, t] of truth) {
      const auth = key.split('|')[0];
      const other = seen.get(`${t.person}|${auth}`);
      if (other) {
        sameFacility.push([other, key]);
      }
      seen.set(`${t.person}|${auth}`, key);
    }
    expect(sameFacility.length).toBeGreaterThan(5);
    for (const [a, b] of sameFacility) {
      expect(euid.get(a)).not.toBe(euid.get(b));
    }
    const tasks = await new DuplicateService(ds, {
      default: 'mostRecent',
      trustedAuthorities: [],
      fields: {},
    }).search({ limit: 200 });
    const pairs = await ds.query<Array<{ l: string; r: string }>>(
      `SELECT l.authority || '|' || l.mrn AS l, r.authority || '|' || r.mrn AS r FROM mpi_duplicate_task t
       JOIN mpi_source_record l ON l.id = t.left_record_id JOIN mpi_source_record r ON r.id = t.right_record_id`,
    );
    const onList = new Set(pairs.map((p) => [p.l, p.r].sort().join(' ')));
    const reviewed = sameFacility.filter(([a, b]) => onList.has([a, b].sort().join(' ')));
    expect(tasks.total).toBe(pairs.length);
    // Found by blocking and scored into the review band (a duplicate too garbled to be a
    // candidate can only be found by a person).
    expect(reviewed.length / sameFacility.length).toBeGreaterThanOrEqual(0.8);
  });

  it('finds most true duplicates: linked, or on the worklist', async () => {
    const euid = new Map(records.map((r) => [r.key, r.euid]));
    const first = new Map<string, string>();
    const pairs: Array<[string, string]> = [];
    for (const [key, t] of truth) {
      const f = first.get(t.person);
      if (f) {
        pairs.push([f, key]);
      } else {
        first.set(t.person, key);
      }
    }
    const listed = await ds.query<Array<{ l: string; r: string }>>(
      `SELECT l.person_euid AS l, r.person_euid AS r FROM mpi_duplicate_task t
       JOIN mpi_source_record l ON l.id = t.left_record_id JOIN mpi_source_record r ON r.id = t.right_record_id`,
    );
    const reviewPairs = new Set(listed.map((p) => [p.l, p.r].sort().join(' ')));
    let linked = 0;
    let review = 0;
    for (const [a, b] of pairs) {
      const ea = euid.get(a)!;
      const eb = euid.get(b)!;
      if (ea === eb) {
        linked++;
      } else if (reviewPairs.has([ea, eb].sort().join(' '))) {
        review++;
      }
    }
    expect(pairs.length).toBeGreaterThan(50);
    expect(linked).toBeGreaterThan(pairs.length / 2);
    expect((linked + review) / pairs.length).toBeGreaterThanOrEqual(0.9);
  });
});
