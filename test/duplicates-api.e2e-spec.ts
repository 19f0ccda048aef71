import request from 'supertest';
import { DataSource } from 'typeorm';
import { v7 as uuidv7 } from 'uuid';
import { parseMessage } from '@engine/hl7';
import { MpiPipeline, MpiStore, normalizeMessage } from '@engine/mpi';
import { MessageRepository } from '@engine/store';
import { receivedMessage } from '@engine/store/testing';
import { ADMIN_KEY, startTestEngine, type TestEngine } from './support/engine';
import { ReviewEverything } from './support/review-everything';

const AUTH = { Authorization: `Bearer ${ADMIN_KEY}` };

function adt(mrn: string, auth: string, given: string): string {
  return (
    [
      `MSH|^~\\&|APP|FAC|ENGINE|DEST|20240101100000||ADT^A04|C${uuidv7()}|P|2.5.1`,
      `PID|1||${mrn}^^^${auth}^MR||ROE^${given}||19720202|M|||9 HILL RD^^TOWN^ST^12345^USA^H||||||||123-45-6789`,
    ].join('\r') + '\r'
  );
}

describe('duplicate worklist API', () => {
  let engine: TestEngine;
  let ds: DataSource;

  beforeAll(async () => {
    engine = await startTestEngine({ roles: ['api'] });
    ds = new DataSource({ type: 'postgres', url: engine.databaseUrl, poolSize: 2 });
    await ds.initialize();
    const repo = new MessageRepository(ds);
    const pipeline = new MpiPipeline(new MpiStore(ds), {
      survivorship: { default: 'mostRecent', trustedAuthorities: [], fields: {} },
      identity: new ReviewEverything(),
    });
    for (const [mrn, auth, given] of [
      ['A1', 'HOSP', 'RICHARD'],
      ['B1', 'CLINIC', 'RICK'],
      ['C1', 'LAB', 'RICHARD'],
    ]) {
      const raw = Buffer.from(adt(mrn, auth, given));
      const m = parseMessage(raw);
      const id = uuidv7();
      await repo.insertBatch(
        [
          receivedMessage(raw, {
            id,
            controlId: m.controlId,
            type: 'ADT',
            trigger: 'A04',
            version: '2.5.1',
          }),
        ],
        { dedupWindowMs: 0 },
      );
      await pipeline.applyBatch([
        { messageId: id, receivedAt: new Date(), normalized: normalizeMessage(m) },
      ]);
    }
  });

  afterAll(async () => {
    await ds.destroy();
    await engine.close();
  });

  const api = () => request(engine.url!);

  it('lists open tasks by score with both persons and their identifiers (SSN masked)', async () => {
    await api().get('/api/duplicates').expect(401);
    const res = await api().get('/api/duplicates?status=open').set(AUTH).expect(200);
    expect(res.body.total).toBe(3); // B1~A1, C1~A1, C1~B1
    const scores = res.body.items.map((t: { score: number }) => t.score);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    const [first] = res.body.items;
    expect(first).toMatchObject({ status: 'open', left: { euid: expect.any(String) } });
    expect(first.left.identifiers).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ authority: expect.any(String), value: expect.any(String) }),
      ]),
    );
    const ssn = first.left.identifiers.find((i: { type: string }) => i.type === 'SS');
    expect(ssn.value).not.toContain('123456789');
    const lab = await api().get('/api/duplicates?facility=LAB').set(AUTH).expect(200);
    expect(lab.body.total).toBe(2);
    await api().get('/api/duplicates?status=nope').set(AUTH).expect(400);
    await api().get('/api/duplicates?from=yesterday').set(AUTH).expect(400);
    await api().get('/api/duplicates?cursor=zzz').set(AUTH).expect(400);
    const page = await api().get('/api/duplicates?limit=2').set(AUTH).expect(200);
    expect(page.body.items).toHaveLength(2);
    const next = await api()
      .get(`/api/duplicates?limit=2&cursor=${page.body.nextCursor}`)
      .set(AUTH)
      .expect(200);
    expect(next.body.items).toHaveLength(1);
  });

  it('shows both persons side by side with the breakdown; decides and audits; unmerges', async () => {
    const list = await api().get('/api/duplicates?status=open&facility=CLINIC').set(AUTH);
    const task = list.body.items[0];
    const detail = await api().get(`/api/duplicates/${task.id}`).set(AUTH).expect(200);
    expect(detail.body.breakdown).toEqual([{ field: 'family', level: 'exact', weight: 4 }]);
    expect(detail.body.left.euid).toBe(task.left.euid);
    expect(detail.body.right.records).toHaveLength(1);
    await api().get(`/api/duplicates/${uuidv7()}`).set(AUTH).expect(404);

    const url = `/api/duplicates/${task.id}/decision`;
    await api().post(url).set(AUTH).send({ action: 'merge' }).expect(400); // no reason
    await api().post(url).set(AUTH).send({ action: 'explode', reason: 'x' }).expect(400);
    const decided = await api()
      .post(url)
      .set(AUTH)
      .set('X-Acting-User', 'mrt.jane')
      .send({ action: 'merge', survivor: task.left.euid, reason: 'same person (ID checked)' })
      .expect(200);
    expect(decided.body).toMatchObject({ status: 'merged', decidedBy: 'admin/mrt.jane' });
    await api().post(url).set(AUTH).send({ action: 'not-duplicate', reason: 'again' }).expect(409);
    const [audit] = await ds.query(
      `SELECT actor, details FROM audit_log WHERE action = 'duplicate.decision'`,
    );
    expect(audit.details).toMatchObject({
      actor: 'admin/mrt.jane',
      action: 'merge',
      reason: 'same person (ID checked)',
      before: { status: 'open' },
    });
    const merged = await api().get(`/api/patients/${task.right.euid}`).set(AUTH).expect(200);
    expect(merged.body).toMatchObject({ status: 'merged', mergedInto: task.left.euid });

    await api().post(`/api/patients/${task.left.euid}/unmerge`).set(AUTH).send({}).expect(400);
    const undone = await api()
      .post(`/api/patients/${task.left.euid}/unmerge`)
      .set(AUTH)
      .send({ reason: 'wrong person' })
      .expect(200);
    expect(undone.body.undone).toMatchObject({ kind: 'merge', restoredEuid: task.right.euid });
    const restored = await api().get(`/api/patients/${task.right.euid}`).set(AUTH).expect(200);
    expect(restored.body.status).toBe('active');
    await api()
      .post(`/api/patients/${task.left.euid}/unmerge`)
      .set(AUTH)
      .send({ reason: 'again' })
      .expect(404);
    const types = (await ds.query(`SELECT type FROM mpi_event`)).map(
      (r: { type: string }) => r.type,
    );
    expect(types).toEqual(expect.arrayContaining(['patient.merged', 'patient.unmerged']));
  });
});
