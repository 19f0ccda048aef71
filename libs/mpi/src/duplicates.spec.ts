import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import { v7 as uuidv7 } from 'uuid';
import { parseMessage } from '@engine/hl7';
import { createDataSource, MessageRepository } from '@engine/store';
import { createTestDatabase, type TestDatabase, receivedMessage } from '@engine/store/testing';
import { DuplicateService } from './duplicates';
import { normalizeMessage } from './from-hl7';
import type { IdentityMatch, IdentityPrefetch, IdentityResolver } from './identity';
import type { PatientRecord } from './model';
import { MpiStore } from './mpi-store';
import { OperationError } from './operations';
import { MpiPipeline } from './pipeline';
import type { WorkingSet } from './working-set';

/**
 * A resolver for these tests: records sharing family name + birth date are candidates, and
 * every candidate goes to review (score 7.5) — the real matcher decides differently, but the
 * worklist plumbing is the same.
 */
class ReviewEverything implements IdentityResolver {
  blockKeys(p: PatientRecord): string[] {
    const family = p.names?.[0]?.family;
    return family && p.birthDate ? [`fd:${family}:${p.birthDate.value}`] : [];
  }
  prefetch(p: PatientRecord, into: IdentityPrefetch): void {
    this.blockKeys(p).forEach((k) => into.blockKeys.add(k));
  }
  resolve(ws: WorkingSet, p: PatientRecord): IdentityMatch | undefined {
    const candidates = ws.recordsByBlocks(this.blockKeys(p));
    if (candidates.length === 0) {
      return undefined;
    }
    return {
      rule: 'test',
      reviews: candidates.map((c) => ({
        recordId: c.id,
        euid: c.personEuid,
        score: 7.5,
        breakdown: [{ field: 'name', level: 'exact', weight: 7.5 }],
      })),
    };
  }
}

const survivorship = { default: 'mostRecent' as const, trustedAuthorities: [], fields: {} };

function adt(mrn: string, auth: string, given: string, when: string): string {
  return (
    [
      `MSH|^~\\&|APP|FAC|ENGINE|DEST|${when}||ADT^A04|C${uuidv7()}|P|2.5.1`,
      `EVN|A04|${when}`,
      `PID|1||${mrn}^^^${auth}^MR||DOE^${given}||19800101|F|||1 MAIN ST^^TOWN^ST^12345^USA^H`,
    ].join('\r') + '\r'
  );
}

describe.each(['postgres', 'sqlite'] as const)('duplicate worklist on %s', (dialect) => {
  let pgDb: TestDatabase | undefined;
  let dir: string;
  let ds: DataSource;
  let pipeline: MpiPipeline;
  let service: DuplicateService;
  let messages: MessageRepository;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mpi-dups-'));
    if (dialect === 'postgres') {
      pgDb = await createTestDatabase();
      ds = createDataSource({ databaseUrl: pgDb.url, poolSize: 4 });
    } else {
      ds = createDataSource({ sqlitePath: join(dir, 'mpi.sqlite') });
    }
    await ds.initialize();
    messages = new MessageRepository(ds);
    pipeline = new MpiPipeline(new MpiStore(ds), {
      survivorship,
      identity: new ReviewEverything(),
    });
    service = new DuplicateService(ds, survivorship);
  });

  afterAll(async () => {
    await ds.destroy();
    await pgDb?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function apply(text: string, id = uuidv7()) {
    const raw = Buffer.from(text);
    const m = parseMessage(raw);
    await messages.insertBatch(
      [
        receivedMessage(raw, {
          id,
          controlId: m.controlId,
          type: m.messageType,
          trigger: m.triggerEvent,
          version: m.version,
        }),
      ],
      { dedupWindowMs: 0 },
    );
    await pipeline.applyBatch([
      { messageId: id, receivedAt: new Date(), normalized: normalizeMessage(m) },
    ]);
    return id;
  }

  const q = (sql: string, params: unknown[] = []) =>
    ds.query<Array<Record<string, unknown>>>(
      dialect === 'postgres' ? sql : sql.replace(/\$\d+/g, '?'),
      params,
    );

  /** Persons and records without timestamps and versions. */
  async function mpiState() {
    const persons = await q(
      `SELECT euid, status, merged_into, golden, provenance FROM mpi_person ORDER BY euid`,
    );
    const records = await q(
      `SELECT id, person_euid, status, merged_into, data FROM mpi_source_record ORDER BY id`,
    );
    return JSON.stringify({ persons, records });
  }

  it('a review-band pair opens one task, listed by score with both persons', async () => {
    await apply(adt('W1', 'HOSP', 'ANNA', '20240101100000'));
    await apply(adt('W2', 'CLINIC', 'ANNE', '20240101110000'));
    const page = await service.search({ status: 'open' });
    expect(page.total).toBe(1);
    const [task] = page.items;
    expect(task).toMatchObject({ score: 7.5, status: 'open', facility: 'CLINIC' });
    expect(task.leftEuid).not.toBe(task.rightEuid);
    expect(task.breakdown).toEqual([{ field: 'name', level: 'exact', weight: 7.5 }]);
    const [{ n }] = await q(`SELECT count(*) AS n FROM mpi_block`);
    expect(Number(n)).toBe(2);
    const [ev] = await q(`SELECT type FROM mpi_event WHERE type = 'duplicate.suspected'`);
    expect(ev).toBeDefined();
  });

  it('merge joins the persons; unmerge restores the MPI exactly; the decision is final', async () => {
    await apply(adt('M1', 'HOSP', 'CLARA', '20240102100000').replace('19800101', '19700707'));
    await apply(adt('M2', 'LAB', 'KLARA', '20240102110000').replace('19800101', '19700707'));
    const task = (await service.search({ status: 'open', facility: 'LAB' })).items[0];
    const before = await mpiState();

    const decided = await service.decide(task.id, 'merge', {
      survivor: task.leftEuid,
      reason: 'same person, checked the ID card',
      actor: 'mrt.jane',
    });
    expect(decided).toMatchObject({
      status: 'merged',
      decidedBy: 'mrt.jane',
      decisionReason: 'same person, checked the ID card',
    });
    const [right] = await q(`SELECT status, merged_into FROM mpi_person WHERE euid = $1`, [
      task.rightEuid,
    ]);
    expect(right).toEqual({ status: 'merged', merged_into: task.leftEuid });
    const records = await q(`SELECT person_euid FROM mpi_source_record WHERE id = $1`, [
      task.rightRecordId,
    ]);
    expect(records[0].person_euid).toBe(task.leftEuid);
    const [hist] = await q(`SELECT actor, reason, kind FROM mpi_history WHERE actor = 'mrt.jane'`);
    expect(hist).toEqual({
      actor: 'mrt.jane',
      reason: 'same person, checked the ID card',
      kind: 'merge',
    });
    await expect(
      service.decide(task.id, 'not-duplicate', { reason: 'x', actor: 'mrt.joe' }),
    ).rejects.toThrow(OperationError);

    const undone = await service.unmerge(task.leftEuid, {
      reason: 'wrong merge',
      actor: 'mrt.jane',
    });
    expect(undone.kind).toBe('merge');
    expect(await mpiState()).toBe(before);
    const types = (await q(`SELECT type FROM mpi_event ORDER BY id`)).map((r) => r.type);
    expect(types).toEqual(expect.arrayContaining(['patient.merged', 'patient.unmerged']));
    await expect(service.unmerge(task.leftEuid, { reason: 'again', actor: 'x' })).rejects.toThrow(
      /no merge/,
    );
  });

  it('not-duplicate is remembered: re-processing the message never reopens the pair', async () => {
    await apply(adt('N1', 'HOSP', 'EMMA', '20240103100000').replace('19800101', '19600303'));
    const second = await apply(
      adt('N2', 'ER', 'EMMA', '20240103110000').replace('19800101', '19600303'),
    );
    const task = (await service.search({ facility: 'ER' })).items[0];
    await service.decide(task.id, 'not-duplicate', { reason: 'twins', actor: 'mrt.joe' });
    // Re-process the message that raised it.
    await q(`UPDATE message SET status = 'received' WHERE id = $1`, [second]);
    await pipeline.applyBatch([
      {
        messageId: second,
        receivedAt: new Date(),
        normalized: normalizeMessage(
          parseMessage(
            Buffer.from(adt('N2', 'ER', 'EMMA', '20240103110000').replace('19800101', '19600303')),
          ),
        ),
      },
    ]);
    const tasks = await service.search({ facility: 'ER' });
    expect(tasks.items.map((t) => t.status)).toEqual(['not-duplicate']);
    expect(tasks.total).toBe(1);
  });

  it('link moves one record; defer keeps the task on the list; bad input is refused', async () => {
    await apply(adt('L1', 'HOSP', 'GRETA', '20240104100000').replace('19800101', '19550505'));
    await apply(adt('L2', 'ER', 'GRETA', '20240104110000').replace('19800101', '19550505'));
    await apply(adt('L3', 'LAB', 'GRETE', '20240104120000').replace('19800101', '19550505'));
    const tasks = (await service.search({ status: 'open', facility: 'LAB' })).items;
    expect(tasks).toHaveLength(2);
    await expect(
      service.decide(tasks[0].id, 'merge', { survivor: uuidv7(), reason: 'x', actor: 'a' }),
    ).rejects.toThrow(/survivor/);
    await service.decide(tasks[0].id, 'defer', { reason: 'ask the ward', actor: 'mrt.joe' });
    expect((await service.get(tasks[0].id))?.status).toBe('deferred');
    await service.decide(tasks[1].id, 'link', { reason: 'same', actor: 'mrt.joe' });
    const [l3] = await q(`SELECT person_euid FROM mpi_source_record WHERE mrn = 'L3'`);
    expect(l3.person_euid).toBe(tasks[1].leftEuid);
    expect((await service.search({ status: 'deferred' })).total).toBe(1);
    await expect(service.search({ cursor: 'nonsense' })).rejects.toThrow(/cursor/);
  });
});
