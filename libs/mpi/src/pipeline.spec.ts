import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import { v7 as uuidv7 } from 'uuid';
import { parseMessage } from '@engine/hl7';
import { createDataSource, MessageRepository } from '@engine/store';
import { createTestDatabase, type TestDatabase, receivedMessage } from '@engine/store/testing';
import { normalizeMessage } from './from-hl7';
import { DeterministicIdentityResolver } from './identity';
import { MpiStore } from './mpi-store';
import { MpiPipeline, type BatchItem } from './pipeline';

/** Fictitious people only. */
interface Pid {
  mrn: string;
  auth?: string;
  family?: string;
  given?: string;
  dob?: string;
  sex?: string;
  ssn?: string;
  extra?: string;
}

function pid(p: Pid): string {
  return (
    `PID|1||${p.mrn}^^^${p.auth ?? 'HOSP'}^MR||${p.family ?? 'DOE'}^${p.given ?? 'JANE'}||` +
    `${p.dob ?? '19800101'}|${p.sex ?? 'F'}|||1 MAIN ST^^TOWN^ST^12345^USA^H||555-0100|||||` +
    `|${p.ssn ?? ''}`
  );
}

function msg(trigger: string, when: string, segments: string[], type = 'ADT'): string {
  return (
    [
      `MSH|^~\\&|APP|FAC|ENGINE|DEST|${when}||${type}^${trigger}|C${uuidv7()}|P|2.5.1`,
      ...(type === 'ADT' ? [`EVN|${trigger}|${when}`] : []),
      ...segments,
    ].join('\r') + '\r'
  );
}

describe.each(['postgres', 'sqlite'] as const)('MpiPipeline on %s', (dialect) => {
  let pgDb: TestDatabase | undefined;
  let dir: string;
  let ds: DataSource;
  let messages: MessageRepository;
  let pipeline: MpiPipeline;
  let holdPipeline: MpiPipeline;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mpi-pipeline-'));
    if (dialect === 'postgres') {
      pgDb = await createTestDatabase();
      ds = createDataSource({ databaseUrl: pgDb.url, poolSize: 4 });
    } else {
      ds = createDataSource({ sqlitePath: join(dir, 'mpi.sqlite') });
    }
    await ds.initialize();
    messages = new MessageRepository(ds);
    const store = new MpiStore(ds);
    const survivorship = {
      default: 'mostRecent' as const,
      trustedAuthorities: [],
      fields: {},
    };
    // The deterministic identity rule: these tests are about ADT/ORU semantics (probabilistic
    // matching has its own tests).
    const identity = new DeterministicIdentityResolver();
    pipeline = new MpiPipeline(store, { survivorship, identity });
    holdPipeline = new MpiPipeline(store, { survivorship, failurePolicy: 'hold', identity });
  });

  afterAll(async () => {
    await ds.destroy();
    await pgDb?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Stores the messages (status received) and applies them as one batch. */
  async function run(texts: string[], p = pipeline) {
    const items: BatchItem[] = [];
    const rows = texts.map((text) => {
      const raw = Buffer.from(text, 'latin1');
      const m = parseMessage(raw);
      return receivedMessage(raw, {
        controlId: m.controlId,
        type: m.messageType,
        trigger: m.triggerEvent,
        version: m.version,
      });
    });
    await messages.insertBatch(rows, { dedupWindowMs: 0 });
    for (const r of rows) {
      items.push({
        messageId: r.id,
        receivedAt: r.receivedAt,
        normalized: normalizeMessage(parseMessage(r.raw)),
      });
    }
    return { ids: rows.map((r) => r.id), outcome: await p.applyBatch(items) };
  }

  const q = (sql: string, params: unknown[] = []) =>
    ds.query<Record<string, unknown>[]>(
      dialect === 'postgres' ? sql : sql.replace(/\$\d+/g, '?'),
      params,
    );
  // Test reads of stored JSON: deep property access without declaring every shape.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const obj = (v: unknown) => (typeof v === 'string' ? JSON.parse(v) : v) as Record<string, any>;

  async function recordOf(mrn: string, auth = 'HOSP') {
    const [r] = await q(`SELECT * FROM mpi_source_record WHERE authority = $1 AND mrn = $2`, [
      auth,
      mrn,
    ]);
    return r;
  }
  async function personOf(mrn: string, auth = 'HOSP') {
    const r = await recordOf(mrn, auth);
    const [p] = await q(`SELECT * FROM mpi_person WHERE euid = $1`, [r.person_euid]);
    return p;
  }
  async function eventsOf(ids: string[]) {
    const rows = await q(`SELECT type, message_id FROM mpi_event ORDER BY id`);
    return rows.filter((r) => ids.includes(String(r.message_id))).map((r) => r.type);
  }
  async function statusOf(id: string) {
    const [m] = await q(
      `SELECT status, error_code, error_reason, held FROM message WHERE id = $1`,
      [id],
    );
    return m;
  }
  async function snapshot() {
    const persons = await q(
      `SELECT euid, status, merged_into, golden, family_name FROM mpi_person ORDER BY euid`,
    );
    const records = await q(
      `SELECT id, authority, mrn, person_euid, status, merged_into, data, data_time FROM mpi_source_record ORDER BY id`,
    );
    const encounters = await q(
      `SELECT id, source_record_id, status, data FROM mpi_encounter ORDER BY id`,
    );
    const results = await q(
      `SELECT id, source_record_id, status, data FROM mpi_result ORDER BY id`,
    );
    const identifiers = await q(
      `SELECT * FROM mpi_identifier ORDER BY source_record_id, authority, value, type`,
    );
    const [{ n }] = await q(`SELECT count(*) AS n FROM mpi_event`);
    return JSON.stringify({ persons, records, encounters, results, identifiers, n: Number(n) });
  }

  it('A01 creates a person, a source record and an encounter, with events', async () => {
    const { ids, outcome } = await run([
      msg('A01', '20240101100000', [
        pid({ mrn: 'A1', ssn: '123-45-6780' }),
        'PV1|1|I|W^1^1||||||||||||||||V100',
      ]),
    ]);
    expect(outcome.statuses.map((s) => s.status)).toEqual(['processed']);
    expect(await statusOf(ids[0])).toMatchObject({ status: 'processed', error_code: null });
    const rec = await recordOf('A1');
    expect(rec.status).toBe('active');
    const person = await personOf('A1');
    expect(obj(person.golden).name).toMatchObject({ family: 'DOE', given: 'JANE' });
    expect(person.family_name).toBe('DOE');
    expect(person.birth_date).toBe('1980-01-01');
    expect(obj(person.provenance).name).toMatchObject({ rule: 'only', mrn: 'A1' });
    const ids2 = await q(`SELECT type, value FROM mpi_identifier WHERE source_record_id = $1`, [
      rec.id,
    ]);
    expect(ids2).toEqual(
      expect.arrayContaining([
        { type: 'MR', value: 'A1' },
        { type: 'SS', value: '123456780' },
      ]),
    );
    const [enc] = await q(`SELECT * FROM mpi_encounter WHERE source_record_id = $1`, [rec.id]);
    expect(enc).toMatchObject({ visit_key: 'V100', status: 'in-progress' });
    expect(await eventsOf(ids)).toEqual(['encounter.created', 'patient.created']);
  });

  it('A08 updates; an older A08 does not overwrite newer data; a replay changes nothing', async () => {
    await run([msg('A04', '20240102100000', [pid({ mrn: 'B1', family: 'SMITH' })])]);
    const newer = await run([msg('A08', '20240103100000', [pid({ mrn: 'B1', family: 'JONES' })])]);
    expect(await eventsOf(newer.ids)).toEqual(['patient.updated']);
    const older = await run([msg('A08', '20240102120000', [pid({ mrn: 'B1', family: 'BROWN' })])]);
    expect(older.outcome.statuses[0].status).toBe('processed');
    expect(await eventsOf(older.ids)).toEqual([]);
    expect(obj((await personOf('B1')).golden).name.family).toBe('JONES');

    // Replay: the same normalized message applied again.
    const before = await snapshot();
    const again = normalizeMessage(
      parseMessage(
        Buffer.from(msg('A08', '20240103100000', [pid({ mrn: 'B1', family: 'JONES' })])),
      ),
    );
    await ds.query(
      dialect === 'postgres'
        ? `UPDATE message SET status = 'received' WHERE id = $1`
        : `UPDATE message SET status = 'received' WHERE id = ?`,
      [newer.ids[0]],
    );
    await pipeline.applyBatch([
      { messageId: newer.ids[0], receivedAt: new Date(), normalized: again },
    ]);
    expect(await snapshot()).toBe(before);
  });

  it('several updates of one patient in one batch apply in order', async () => {
    const { ids } = await run([
      msg('A04', '20240104100000', [pid({ mrn: 'C1', family: 'ONE' })]),
      msg('A08', '20240104110000', [pid({ mrn: 'C1', family: 'TWO' })]),
      msg('A08', '20240104120000', [pid({ mrn: 'C1', family: 'THREE' })]),
    ]);
    expect(obj((await personOf('C1')).golden).name.family).toBe('THREE');
    expect(await eventsOf(ids)).toEqual(['patient.created', 'patient.updated', 'patient.updated']);
    const [{ n }] = await q(
      `SELECT count(*) AS n FROM mpi_person p JOIN mpi_source_record r ON r.person_euid = p.euid WHERE r.mrn = 'C1'`,
    );
    expect(Number(n)).toBe(1);
  });

  it('joins a new record to a person on SSN + birth date + sex from another authority only', async () => {
    await run([
      msg('A04', '20240105100000', [pid({ mrn: 'D1', ssn: '234-56-7891', dob: '19700202' })]),
    ]);
    await run([
      msg('A04', '20240105110000', [
        pid({ mrn: 'D2', auth: 'CLINIC', ssn: '234567891', dob: '19700202', family: 'DOE-SMITH' }),
      ]),
    ]);
    await run([
      msg('A04', '20240105120000', [pid({ mrn: 'D3', ssn: '234567891', dob: '19700202' })]),
    ]);
    await run([
      msg('A04', '20240105130000', [
        pid({ mrn: 'D4', auth: 'LAB', ssn: '234567891', dob: '19700203' }),
      ]),
    ]);
    const d1 = await recordOf('D1');
    expect((await recordOf('D2', 'CLINIC')).person_euid).toBe(d1.person_euid);
    expect((await recordOf('D3')).person_euid).not.toBe(d1.person_euid); // same authority
    expect((await recordOf('D4', 'LAB')).person_euid).not.toBe(d1.person_euid); // other birth date
    // Most recent wins the name.
    expect(obj((await personOf('D1')).golden).name.family).toBe('DOE-SMITH');
  });

  it('A40 merges the MRG prior record into the survivor: identifiers, encounters, results move', async () => {
    await run([
      msg('A01', '20240106100000', [pid({ mrn: 'E1' }), 'PV1|1|I|W^1^1||||||||||||||||VE1']),
    ]);
    await run([
      msg('A01', '20240106110000', [
        pid({ mrn: 'E2', family: 'OTHER' }),
        'PV1|1|I|W^2^1||||||||||||||||VE2',
      ]),
      msg(
        'R01',
        '20240106113000',
        [
          pid({ mrn: 'E2' }),
          'OBR|1||FILL1|2345-7^GLUCOSE^LN',
          'OBX|1|NM|2345-7^GLUCOSE^LN||99|mg/dL||N|||F',
        ],
        'ORU',
      ),
    ]);
    const priorPerson = (await recordOf('E2')).person_euid;
    const merge = await run([
      msg('A40', '20240106120000', [pid({ mrn: 'E1' }), 'MRG|E2^^^HOSP^MR']),
    ]);
    expect(merge.outcome.statuses[0].status).toBe('processed');
    const e1 = await recordOf('E1');
    const e2 = await recordOf('E2');
    expect(e2).toMatchObject({ status: 'merged', merged_into: e1.id, person_euid: e1.person_euid });
    const [pp] = await q(`SELECT status, merged_into FROM mpi_person WHERE euid = $1`, [
      priorPerson,
    ]);
    expect(pp).toEqual({ status: 'merged', merged_into: e1.person_euid });
    const encs = await q(
      `SELECT visit_key FROM mpi_encounter WHERE source_record_id = $1 ORDER BY visit_key`,
      [e1.id],
    );
    expect(encs.map((e) => e.visit_key)).toEqual(['VE1', 'VE2']);
    const [res] = await q(`SELECT source_record_id FROM mpi_result WHERE order_key = 'F:|FILL1'`);
    expect(res.source_record_id).toBe(e1.id);
    const retired = await q(
      `SELECT value, retired FROM mpi_identifier WHERE source_record_id = $1 AND value = 'E2'`,
      [e1.id],
    );
    expect(retired).toEqual([{ value: 'E2', retired: dialect === 'postgres' ? true : 1 }]);
    // The survivor's record gained the retired identifiers: its person is updated too.
    expect(await eventsOf(merge.ids)).toEqual(['patient.merged', 'patient.updated']);
    const [hist] = await q(
      `SELECT kind, subject_euid, actor FROM mpi_history WHERE message_id = $1`,
      [merge.ids[0]],
    );
    expect(hist).toEqual({ kind: 'merge', subject_euid: priorPerson, actor: 'message' });

    // A later A08 about the retired MRN updates that record; its encounters go to the survivor.
    await run([
      msg('A01', '20240106130000', [pid({ mrn: 'E2' }), 'PV1|1|I|W^3^1||||||||||||||||VE3']),
    ]);
    const [late] = await q(`SELECT source_record_id FROM mpi_encounter WHERE visit_key = 'VE3'`);
    expect(late.source_record_id).toBe(e1.id);

    // Replaying the merge changes nothing.
    const before = await snapshot();
    await run([msg('A40', '20240106120000', [pid({ mrn: 'E1' }), 'MRG|E2^^^HOSP^MR'])]);
    expect(await snapshot()).toBe(before);
  });

  it('A40 with a prior MRN never seen keeps a merged stub and retires the identifier', async () => {
    await run([msg('A40', '20240107100000', [pid({ mrn: 'F1' }), 'MRG|F0^^^HOSP^MR'])]);
    const f1 = await recordOf('F1');
    expect(await recordOf('F0')).toMatchObject({ status: 'merged', merged_into: f1.id });
  });

  it('ORU creates results and a correction raises result.corrected', async () => {
    const obr = 'OBR|1|PL9|FL9|718-7^HGB^LN|||20240108080000';
    const first = await run([
      msg(
        'R01',
        '20240108090000',
        [pid({ mrn: 'G1' }), obr, 'OBX|1|NM|718-7^HGB^LN||13.5|g/dL|12-16|N|||F'],
        'ORU',
      ),
    ]);
    expect(await eventsOf(first.ids)).toEqual(['result.created', 'patient.created']);
    const fix = await run([
      msg(
        'R01',
        '20240108100000',
        [pid({ mrn: 'G1' }), obr, 'OBX|1|NM|718-7^HGB^LN||11.0|g/dL|12-16|L|||C'],
        'ORU',
      ),
    ]);
    expect(await eventsOf(fix.ids)).toEqual(['result.corrected']);
    const rows = await q(`SELECT data FROM mpi_result WHERE order_key = 'F:|FL9'`);
    expect(rows).toHaveLength(1);
    expect(obj(rows[0].data).observations[0].value).toEqual({ kind: 'number', value: 11 });
  });

  it('unsupported triggers are ignored, a PID without an id is an error', async () => {
    const { ids } = await run([
      msg('A20', '20240109100000', ['NPU|W^1^1']),
      msg('A01', '20240109100000', ['PID|1||^^^HOSP||NOID^PAT']),
    ]);
    expect(await statusOf(ids[0])).toMatchObject({ status: 'ignored' });
    expect(await statusOf(ids[1])).toMatchObject({
      status: 'error',
      error_code: 'MISSING_PATIENT_ID',
    });
  });

  it('policy hold: a failed message holds the partition and stops the batch', async () => {
    const { ids, outcome } = await run(
      [
        msg('A04', '20240110100000', [pid({ mrn: 'H1' })]),
        msg('A01', '20240110110000', ['PID|1||^^^HOSP||NOID^PAT']),
        msg('A08', '20240110120000', [pid({ mrn: 'H1', family: 'LATER' })]),
      ],
      holdPipeline,
    );
    expect(outcome.held).toBe(true);
    expect(outcome.statuses).toHaveLength(2);
    expect(await statusOf(ids[1])).toMatchObject({
      status: 'error',
      held: dialect === 'postgres' ? true : 1,
    });
    expect(await statusOf(ids[2])).toMatchObject({ status: 'received' });
    await q(`UPDATE message SET held = ${dialect === 'postgres' ? 'false' : '0'} WHERE id = $1`, [
      ids[1],
    ]);
  });

  it('visit events move the encounter through its states; A23 deletes it; A42 merges visits', async () => {
    const pv1 = (loc: string, visit: string, extra = '') =>
      `PV1|1|I|${loc}^1^1||||||||||||||||${visit}${extra}`;
    const enc = async (visit: string) => {
      const [e] = await q(`SELECT status, data FROM mpi_encounter WHERE visit_key = $1`, [visit]);
      return { status: e.status, data: obj(e.data) };
    };
    await run([msg('A01', '20240112080000', [pid({ mrn: 'V1' }), pv1('W1', 'VV1')])]);
    expect(await enc('VV1')).toMatchObject({ status: 'in-progress', data: { class: 'I' } });
    const transfer = await run([
      msg('A02', '20240112090000', [pid({ mrn: 'V1' }), pv1('W2', 'VV1')]),
    ]);
    expect(await eventsOf(transfer.ids)).toEqual(['encounter.updated']);
    expect((await enc('VV1')).data.location.pointOfCare).toBe('W2');
    const discharge = 'PV1|1|I|W2^1^1||||||||||||||||VV1' + '|'.repeat(26) + '20240112100000';
    await run([msg('A03', '20240112100000', [pid({ mrn: 'V1' }), discharge])]);
    expect(await enc('VV1')).toMatchObject({
      status: 'finished',
      data: { dischargeAt: { value: '2024-01-12T10:00:00' } },
    });
    await run([msg('A13', '20240112110000', [pid({ mrn: 'V1' }), pv1('W2', 'VV1')])]);
    const cancelled = await enc('VV1');
    expect(cancelled.status).toBe('in-progress');
    expect(cancelled.data.dischargeAt).toBeUndefined();
    // An A03 older than the A13 does not finish it again.
    await run([msg('A03', '20240112103000', [pid({ mrn: 'V1' }), discharge])]);
    expect((await enc('VV1')).status).toBe('in-progress');

    await run([msg('A01', '20240112120000', [pid({ mrn: 'V1' }), pv1('W3', 'VV2')])]);
    await run([msg('A11', '20240112121000', [pid({ mrn: 'V1' }), pv1('W3', 'VV2')])]);
    expect((await enc('VV2')).status).toBe('cancelled');
    const del = await run([msg('A23', '20240112122000', [pid({ mrn: 'V1' }), pv1('W3', 'VV2')])]);
    expect(await eventsOf(del.ids)).toEqual(['encounter.deleted']);
    expect((await enc('VV2')).status).toBe('entered-in-error');

    await run([msg('A01', '20240112130000', [pid({ mrn: 'V1' }), pv1('W4', 'VV3')])]);
    const merge = await run([
      msg('A42', '20240112140000', [
        pid({ mrn: 'V1' }),
        'MRG|V1^^^HOSP^MR||||VV3',
        pv1('W4', 'VV1'),
      ]),
    ]);
    expect(await eventsOf(merge.ids)).toContain('encounter.merged');
    expect((await enc('VV3')).status).toBe('merged');
  });

  it('survivorship: mostTrusted takes the name from the trusted authority, with provenance', async () => {
    const trusted = new MpiPipeline(new MpiStore(ds), {
      identity: new DeterministicIdentityResolver(),
      survivorship: {
        default: 'mostRecent',
        trustedAuthorities: ['REG'],
        fields: { name: 'mostTrusted' },
      },
    });
    await run(
      [
        msg('A04', '20240113100000', [
          pid({
            mrn: 'T1',
            auth: 'REG',
            family: 'TRUSTED',
            ssn: '345-67-8912',
            dob: '19650505',
            sex: 'M',
          }),
        ]),
      ],
      trusted,
    );
    await run(
      [
        msg('A04', '20240113110000', [
          pid({
            mrn: 'T2',
            auth: 'ER',
            family: 'NEWER',
            ssn: '345678912',
            dob: '19650505',
            sex: 'M',
          }),
        ]),
      ],
      trusted,
    );
    const person = await personOf('T1', 'REG');
    expect((await recordOf('T2', 'ER')).person_euid).toBe(person.euid);
    const golden = obj(person.golden);
    const provenance = obj(person.provenance);
    expect(golden.name.family).toBe('TRUSTED');
    expect(provenance.name).toMatchObject({ rule: 'mostTrusted', authority: 'REG', mrn: 'T1' });
    expect(provenance.address).toMatchObject({ rule: 'mostRecent', authority: 'ER' });
  });

  it('A24 links, A37 unlinks, A29 deletes, A47 changes the identifier', async () => {
    await run([
      msg('A04', '20240111100000', [pid({ mrn: 'L1' })]),
      msg('A04', '20240111100000', [pid({ mrn: 'L2', auth: 'CLINIC' })]),
    ]);
    const link = await run([
      msg('A24', '20240111110000', [pid({ mrn: 'L1' }), pid({ mrn: 'L2', auth: 'CLINIC' })]),
    ]);
    expect(await eventsOf(link.ids)).toContain('patient.linked');
    expect((await recordOf('L2', 'CLINIC')).person_euid).toBe((await recordOf('L1')).person_euid);
    const unlink = await run([
      msg('A37', '20240111120000', [pid({ mrn: 'L1' }), pid({ mrn: 'L2', auth: 'CLINIC' })]),
    ]);
    expect(await eventsOf(unlink.ids)).toEqual(
      expect.arrayContaining(['patient.unlinked', 'patient.created']),
    );
    expect((await recordOf('L2', 'CLINIC')).person_euid).not.toBe(
      (await recordOf('L1')).person_euid,
    );

    const del = await run([msg('A29', '20240111130000', [pid({ mrn: 'L2', auth: 'CLINIC' })])]);
    expect(await eventsOf(del.ids)).toEqual(['patient.deleted']);
    expect((await personOf('L2', 'CLINIC')).status).toBe('deleted');

    const rekey = await run([
      msg('A47', '20240111140000', [pid({ mrn: 'L1-NEW' }), 'MRG|L1^^^HOSP^MR']),
    ]);
    expect(await eventsOf(rekey.ids)).toContain('identifier.changed');
    expect(await recordOf('L1')).toBeUndefined();
    expect((await recordOf('L1-NEW')).status).toBe('active');
  });
});
