import { createHash } from 'node:crypto';
import { Queue, UnrecoverableError, Worker } from 'bullmq';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { v7 as uuidv7 } from 'uuid';
import { InboundQueues, inboundJobId, inboundQueueName } from '@engine/queue';
import { MessageRepository, type NewMessage } from '@engine/store';
import { ADMIN_KEY, REDIS_URL, startTestEngine, type TestEngine } from './support/engine';
import { adt } from './support/messages';

/** Fixed EUIDs / record ids (fictitious people). */
const id = (n: number) => `00000000-0000-4000-8000-${n.toString().padStart(12, '0')}`;
const P1 = id(1);
const P2 = id(2); // merged into P1
const P3 = id(3);
const R1 = id(101);
const R2 = id(102);
const R3 = id(103);
const SSN = '987654321';

const AUTH = { Authorization: `Bearer ${ADMIN_KEY}` };

async function seedPersons(ds: DataSource): Promise<void> {
  const at = new Date('2025-11-28T10:00:00.000Z').toISOString();
  const person = (euid: string, status: string, mergedInto: string | null, golden: object) =>
    ds.query(
      `INSERT INTO "mpi_person" ("euid", "status", "merged_into", "golden", "provenance",
        "family_name", "given_name", "birth_date", "sex", "version", "created_at", "updated_at")
      VALUES ($1, $2, $3, $4, '{}', $5, $6, $7, $8, 1, $9, $9)`,
      [
        euid,
        status,
        mergedInto,
        JSON.stringify(golden),
        (golden as { name: { family: string } }).name.family,
        (golden as { name: { given: string } }).name.given,
        (golden as { birthDate?: { value: string } }).birthDate?.value ?? '',
        (golden as { sex?: string }).sex ?? '',
        at,
      ],
    );
  const record = (
    recordId: string,
    euid: string,
    authority: string,
    mrn: string,
    status: string,
    mergedInto: string | null,
    identifiers: Array<[string, string, string, boolean]>,
  ) =>
    ds
      .query(
        `INSERT INTO "mpi_source_record" ("id", "authority", "mrn", "person_euid", "status",
          "merged_into", "data", "data_time", "version", "created_at", "updated_at")
        VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 1, $8, $8)`,
        [
          recordId,
          authority,
          mrn,
          euid,
          status,
          mergedInto,
          JSON.stringify({
            authority,
            mrn,
            identifiers: identifiers
              .filter(([, , , retired]) => !retired)
              .map(([value, auth, type]) => ({ value, authority: auth, type, source: 'PID-3' })),
            names: null,
            addresses: null,
            telecom: null,
          }),
          at,
        ],
      )
      .then(async () => {
        for (const [value, auth, type, retired] of identifiers) {
          await ds.query(
            `INSERT INTO "mpi_identifier" ("source_record_id", "authority", "value", "type", "retired")
            VALUES ($1, $2, $3, $4, $5)`,
            [recordId, auth, value, type, retired],
          );
        }
      });
  await person(P1, 'active', null, {
    name: { family: 'TESTPERSON', given: 'ALPHA', type: 'L' },
    birthDate: { value: '1962-03-05', precision: 'day' },
    sex: 'F',
    ssn: SSN,
  });
  await person(P2, 'merged', P1, { name: { family: 'TESTPERSON', given: 'ALFA', type: 'L' } });
  await person(P3, 'active', null, {
    name: { family: 'TESTPERSONA', given: 'BETA', type: 'L' },
    birthDate: { value: '1970-01-01', precision: 'day' },
    sex: 'M',
  });
  await record(R1, P1, 'HOSP', 'M100', 'active', null, [
    ['M100', 'HOSP', 'MR', false],
    [SSN, 'SSA', 'SS', false],
    ['M999', 'HOSP', 'MR', true],
  ]);
  await record(R2, P2, 'HOSP', 'M999', 'merged', R1, [['M999', 'HOSP', 'MR', false]]);
  await record(R3, P3, 'HOSP', 'M300', 'active', null, [['M300', 'HOSP', 'MR', false]]);
  await ds.query(
    `INSERT INTO "mpi_encounter" ("id", "origin_record_id", "visit_key", "source_record_id",
      "status", "data", "data_time", "created_at", "updated_at")
    VALUES ($1, $2, 'V1', $2, 'in-progress', '{"visitNumber":"V1","class":"I"}', 0, $3, $3)`,
    [id(201), R1, at],
  );
}

function message(over: Partial<NewMessage> = {}): NewMessage {
  const raw = Buffer.from(adt({ controlId: `RP${uuidv7()}` }));
  return {
    id: uuidv7(),
    feed: 'default',
    controlId: 'RP',
    type: 'ADT',
    trigger: 'A01',
    version: '2.5.1',
    sendingApplication: 'SENDER',
    sendingFacility: 'FAC',
    receivingApplication: 'ENGINE',
    receivingFacility: 'DEST',
    receivedAt: new Date(),
    remoteAddress: '127.0.0.1:1',
    partition: 1,
    partitionKey: 'K',
    raw,
    contentHash: createHash('sha256').update(raw).digest('hex'),
    status: 'received',
    ...over,
  };
}

describe('patients and message actions API', () => {
  let engine: TestEngine;
  let ds: DataSource;
  let repo: MessageRepository;
  let queue: Queue;
  const workers: Worker[] = [];

  const api = () => request(engine.url!);

  async function audits(action: string) {
    return ds.query<Array<{ actor: string; entity_type: string; entity_id: string }>>(
      `SELECT "actor", "entity_type", "entity_id" FROM "audit_log" WHERE "action" = $1 ORDER BY "at"`,
      [action],
    );
  }

  async function waitFor(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > end) {
        throw new Error('condition not met in time');
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** A stored message in `status`, and optionally a finished job of an earlier run. */
  async function stored(
    status: 'processed' | 'error' | 'ignored' | 'received' | 'rejected',
    job?: 'completed' | 'failed',
  ): Promise<NewMessage> {
    const m = message(status === 'rejected' ? { status: 'rejected', errorCode: 'BAD' } : {});
    await repo.insertBatch([m], { dedupWindowMs: 0 });
    if (job) {
      await engine.app
        .get(InboundQueues)
        .enqueue([{ messageId: m.id, feed: m.feed, partition: m.partition }]);
      const worker = new Worker(
        inboundQueueName(m.partition),
        () => {
          if (job === 'failed') {
            throw new UnrecoverableError('simulated failure');
          }
          return Promise.resolve();
        },
        { connection: { url: REDIS_URL }, prefix: engine.settings.QUEUE_PREFIX },
      );
      try {
        const jobId = inboundJobId(m.feed, m.id);
        await waitFor(async () => (await queue.getJobState(jobId)) === job);
      } finally {
        await worker.close();
      }
    }
    if (status !== 'received' && status !== 'rejected') {
      await repo.setStatus(m.id, status, {
        errorCode: status === 'error' ? 'PROCESSING_FAILED' : null,
        errorReason: status === 'error' ? 'simulated failure' : null,
      });
    }
    return m;
  }

  beforeAll(async () => {
    // No gateway (no sweeper) and no worker: jobs stay where the API puts them.
    engine = await startTestEngine({ roles: ['api'] });
    ds = engine.app.get(DataSource);
    repo = engine.app.get(MessageRepository);
    queue = new Queue(inboundQueueName(1), {
      connection: { url: REDIS_URL },
      prefix: engine.settings.QUEUE_PREFIX,
    });
    await seedPersons(ds);
  });

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.close()));
    await queue?.close();
    await engine?.close();
  });

  describe('GET /api/patients', () => {
    it('requires the bearer key', async () => {
      await api().get('/api/patients?identifier=M100').expect(401);
      await api().get(`/api/patients/${P1}`).expect(401);
      await api()
        .get('/api/patients?identifier=M100')
        .set('Authorization', 'Bearer wrong-key-wrong-key')
        .expect(401);
    });

    it('finds by identifier and authority, with the documented JSON shape', async () => {
      const res = await api()
        .get('/api/patients')
        .query({ identifier: 'M100', authority: 'HOSP' })
        .set(AUTH)
        .expect(200);
      expect(res.body).toEqual({
        items: [
          {
            euid: P1,
            identifiers: [
              { value: 'M100', authority: 'HOSP', type: 'MR' },
              { value: '***-**-4321', authority: 'SSA', type: 'SS' },
            ],
            name: { family: 'TESTPERSON', given: 'ALPHA' },
            birthDate: '1962-03-05',
            sex: 'F',
            status: 'active',
          },
        ],
      });
      expect(res.text).not.toContain(SSN);
    });

    it('finds the surviving person by a retired identifier of a merged record', async () => {
      const res = await api()
        .get('/api/patients')
        .query({ identifier: 'M999', authority: 'HOSP' })
        .set(AUTH)
        .expect(200);
      expect(res.body.items.map((p: { euid: string }) => p.euid)).toEqual([P1]);
    });

    it('finds by name prefix (alias name) and dob, and pages with nextCursor', async () => {
      const byName = await api().get('/api/patients?name=testpers').set(AUTH).expect(200);
      expect(byName.body.items.map((p: { euid: string }) => p.euid)).toEqual([P1, P3]);
      const byDob = await api().get('/api/patients?dob=1970-01-01').set(AUTH).expect(200);
      expect(byDob.body.items.map((p: { euid: string }) => p.euid)).toEqual([P3]);
      const both = await api()
        .get('/api/patients')
        .query({ family: 'TestPerson', given: 'al', birthDate: '19620305' })
        .set(AUTH)
        .expect(200);
      expect(both.body.items.map((p: { euid: string }) => p.euid)).toEqual([P1]);

      const first = await api().get('/api/patients?family=testperson&limit=1').set(AUTH);
      expect(first.status).toBe(200);
      expect(first.body.items.map((p: { euid: string }) => p.euid)).toEqual([P1]);
      expect(typeof first.body.nextCursor).toBe('string');
      const second = await api()
        .get('/api/patients')
        .query({ family: 'testperson', limit: 1, cursor: first.body.nextCursor })
        .set(AUTH)
        .expect(200);
      expect(second.body.items.map((p: { euid: string }) => p.euid)).toEqual([P3]);
      expect(second.body.nextCursor).toBeUndefined();
    });

    it('answers 400 with a reason for bad searches', async () => {
      for (const query of [
        '',
        'given=ALPHA',
        'authority=HOSP',
        'family=',
        'dob=1962-13-01',
        'birthDate=05/03/1962',
        'family=A&family=B',
        'family=A&name=B',
        'family=A&limit=0',
        'family=A&limit=201',
        'family=A&limit=1.5',
        'family=A&cursor=junk',
        'family=A&status=bogus',
      ]) {
        const res = await api().get(`/api/patients?${query}`).set(AUTH);
        expect([query, res.status]).toEqual([query, 400]);
        expect(typeof res.body.message).toBe('string');
      }
    });

    it('audits every search with the criteria names only', async () => {
      await ds.query(`DELETE FROM "audit_log"`);
      await api()
        .get('/api/patients')
        .query({ identifier: 'M100', authority: 'HOSP' })
        .set(AUTH)
        .expect(200);
      await api().get('/api/patients?name=nobody&dob=1962-03-05').set(AUTH).expect(200);
      expect(await audits('patient.search')).toEqual([
        { actor: 'admin', entity_type: 'person', entity_id: 'identifier,authority' },
        { actor: 'admin', entity_type: 'person', entity_id: 'family,birthDate' },
      ]);
      const all = JSON.stringify(await ds.query(`SELECT * FROM "audit_log"`));
      for (const phi of ['M100', 'NOBODY', 'nobody', '1962']) {
        expect(all).not.toContain(phi);
      }
    });
  });

  describe('GET /api/patients/:euid', () => {
    it('returns the person with records and encounters, SSN masked, and audits the read', async () => {
      await ds.query(`DELETE FROM "audit_log"`);
      const res = await api().get(`/api/patients/${P1}`).set(AUTH).expect(200);
      expect(res.body).toMatchObject({
        euid: P1,
        status: 'active',
        mergedInto: null,
        golden: { name: { family: 'TESTPERSON' }, ssn: '***-**-4321' },
        identifiers: [
          { value: 'M100', authority: 'HOSP', type: 'MR', retired: false },
          { value: '***-**-4321', authority: 'SSA', type: 'SS', retired: false },
          { value: 'M999', authority: 'HOSP', type: 'MR', retired: true },
        ],
        records: [{ id: R1, authority: 'HOSP', mrn: 'M100', status: 'active', mergedInto: null }],
        encounters: [{ id: id(201), visitNumber: 'V1', status: 'in-progress', class: 'I' }],
        results: [],
      });
      expect(res.body.records[0].data.identifiers[1].value).toBe('***-**-4321');
      expect(res.text).not.toContain(SSN);
      expect(await audits('patient.read')).toEqual([
        { actor: 'admin', entity_type: 'person', entity_id: P1 },
      ]);
    });

    it('returns a merged person with mergedInto', async () => {
      const res = await api().get(`/api/patients/${P2}`).set(AUTH).expect(200);
      expect(res.body).toMatchObject({ euid: P2, status: 'merged', mergedInto: P1 });
    });

    it('answers 400 for a non-UUID and 404 for an unknown EUID', async () => {
      await api().get('/api/patients/not-an-euid').set(AUTH).expect(400);
      await api()
        .get(`/api/patients/${id(999)}`)
        .set(AUTH)
        .expect(404);
    });
  });

  describe('POST /api/messages/:id/reprocess', () => {
    it('requires the bearer key', async () => {
      await api().post(`/api/messages/${uuidv7()}/reprocess`).expect(401);
      await api().post(`/api/messages/${uuidv7()}/skip`).send({ reason: 'x' }).expect(401);
    });

    it.each([
      ['processed', 'completed'],
      ['error', 'failed'],
      ['ignored', 'completed'],
      ['processed', undefined],
    ] as const)(
      'puts a message in %s (earlier job: %s) back to received with a fresh waiting job',
      async (status, job) => {
        const m = await stored(status, job);
        const res = await api().post(`/api/messages/${m.id}/reprocess`).set(AUTH).expect(202);
        expect(res.body).toEqual({ id: m.id, status: 'received' });
        expect(await repo.findById(m.id)).toMatchObject({
          status: 'received',
          errorCode: null,
          errorReason: null,
          processedAt: null,
        });
        const jobId = inboundJobId(m.feed, m.id);
        expect(await queue.getJobState(jobId)).toBe('waiting');
        expect(
          await engine.app
            .get(InboundQueues)
            .jobStates([{ messageId: m.id, feed: m.feed, partition: m.partition }]),
        ).toEqual(['present']);
        const [{ held }] = await ds.query(`SELECT "held" FROM "message" WHERE "id" = $1`, [m.id]);
        expect(held).toBe(false);
        expect(await audits('message.reprocess')).toContainEqual({
          actor: 'admin',
          entity_type: 'message',
          entity_id: m.id,
        });
        // Already waiting: a second reprocess is a conflict.
        await api().post(`/api/messages/${m.id}/reprocess`).set(AUTH).expect(409);
      },
    );

    it('answers 409 for a message whose job is still running', async () => {
      // Partition 2: nothing else is waiting there, so the worker takes this job.
      const m = message({ partition: 2 });
      await repo.insertBatch([m], { dedupWindowMs: 0 });
      await repo.setStatus(m.id, 'processed');
      await engine.app
        .get(InboundQueues)
        .enqueue([{ messageId: m.id, feed: m.feed, partition: m.partition }]);
      const q2 = new Queue(inboundQueueName(2), {
        connection: { url: REDIS_URL },
        prefix: engine.settings.QUEUE_PREFIX,
      });
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const worker = new Worker(inboundQueueName(2), () => gate, {
        connection: { url: REDIS_URL },
        prefix: engine.settings.QUEUE_PREFIX,
      });
      workers.push(worker);
      const jobId = inboundJobId(m.feed, m.id);
      try {
        await waitFor(async () => (await q2.getJobState(jobId)) === 'active');
        const res = await api().post(`/api/messages/${m.id}/reprocess`).set(AUTH).expect(409);
        expect(res.body.message).toMatch(/still being processed/);
        expect((await repo.findById(m.id))?.status).toBe('processed');
        release();
        await waitFor(async () => (await q2.getJobState(jobId)) === 'completed');
        await worker.close();
        await api().post(`/api/messages/${m.id}/reprocess`).set(AUTH).expect(202);
        expect(await q2.getJobState(jobId)).toBe('waiting');
      } finally {
        release();
        await worker.close();
        await q2.close();
      }
    });

    it('answers 409 for rejected and received messages, 404 unknown, 400 malformed', async () => {
      const rejected = await stored('rejected');
      const res = await api().post(`/api/messages/${rejected.id}/reprocess`).set(AUTH);
      expect(res.status).toBe(409);
      expect(res.body.message).toMatch(/rejected/);
      expect((await repo.findById(rejected.id))?.status).toBe('rejected');
      const received = await stored('received');
      await api().post(`/api/messages/${received.id}/reprocess`).set(AUTH).expect(409);
      await api().post(`/api/messages/${uuidv7()}/reprocess`).set(AUTH).expect(404);
      await api().post('/api/messages/nope/reprocess').set(AUTH).expect(400);
    });
  });

  describe('POST /api/messages/:id/skip', () => {
    it('turns an error message into ignored and audits it', async () => {
      const m = await stored('error');
      const res = await api()
        .post(`/api/messages/${m.id}/skip`)
        .set(AUTH)
        .send({ reason: 'duplicate of a corrected resend' })
        .expect(200);
      expect(res.body).toEqual({
        id: m.id,
        status: 'ignored',
        errorCode: 'PROCESSING_FAILED',
        errorReason: 'skipped: duplicate of a corrected resend; error was: simulated failure',
      });
      expect((await repo.findById(m.id))?.status).toBe('ignored');
      expect(await audits('message.skip')).toContainEqual({
        actor: 'admin',
        entity_type: 'message',
        entity_id: m.id,
      });
      await api()
        .post(`/api/messages/${m.id}/skip`)
        .set(AUTH)
        .send({ reason: 'again' })
        .expect(409);
    });

    it('answers 409 unless in error, 400 without a reason, 404 unknown', async () => {
      const processed = await stored('processed');
      await api()
        .post(`/api/messages/${processed.id}/skip`)
        .set(AUTH)
        .send({ reason: 'x' })
        .expect(409);
      const errored = await stored('error');
      for (const body of [{}, { reason: '' }, { reason: 7 }, { reason: 'x'.repeat(501) }]) {
        await api().post(`/api/messages/${errored.id}/skip`).set(AUTH).send(body).expect(400);
      }
      expect((await repo.findById(errored.id))?.status).toBe('error');
      await api()
        .post(`/api/messages/${uuidv7()}/skip`)
        .set(AUTH)
        .send({ reason: 'x' })
        .expect(404);
    });
  });
});
