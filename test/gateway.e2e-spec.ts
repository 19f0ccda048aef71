import { Queue, UnrecoverableError, Worker } from 'bullmq';
import { DataSource } from 'typeorm';
import request from 'supertest';
import { inboundJobId, inboundQueueName } from '@engine/queue';
import { MessageRepository } from '@engine/store';
import { SweeperService } from '@engine/gateway';
import {
  ADMIN_KEY,
  REDIS_URL,
  startTestEngine,
  type TestEngine,
  defaultFeed,
} from './support/engine';
import { ackField, TestMllpClient } from './support/mllp-client';
import { adt, oru } from './support/messages';

describe('gateway (MLLP → PostgreSQL → BullMQ → ACK)', () => {
  let engine: TestEngine;
  let repo: MessageRepository;
  const clients: TestMllpClient[] = [];

  async function client(feed = 'default'): Promise<TestMllpClient> {
    const c = await TestMllpClient.connect(engine.port(feed));
    clients.push(c);
    return c;
  }

  async function rowsByControlId(controlId: string) {
    return (await repo.search({ controlId, limit: 100 })).items;
  }

  async function jobExists(messageId: string, partition: number): Promise<boolean> {
    const q = new Queue(inboundQueueName(partition), {
      connection: { url: REDIS_URL },
      prefix: engine.settings.QUEUE_PREFIX,
    });
    try {
      return (await q.getJob(inboundJobId('default', messageId))) !== undefined;
    } finally {
      await q.close();
    }
  }

  async function waitFor(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > end) {
        throw new Error('condition not met in time');
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  beforeAll(async () => {
    engine = await startTestEngine({
      config: {
        feeds: [
          defaultFeed({ maxMessageBytes: 4096, maxNoiseBytes: 1024 }),
          defaultFeed({ id: 'enhanced', ackMode: 'enhanced', honorAcceptAckType: true }),
          defaultFeed({ id: 'nodup', duplicates: { policy: 'process' } }),
        ],
      },
    });
    repo = engine.app.get(MessageRepository);
  });

  afterAll(async () => {
    clients.forEach((c) => c.close());
    await engine.close();
  });

  it('stores the exact bytes and header, enqueues the id, then ACKs AA', async () => {
    const c = await client();
    const msg = adt({ controlId: 'CTRL-AA-1', trigger: 'A04' });
    const ack = await c.send(msg);
    expect(ackField(ack, 'MSA', 1)).toBe('AA');
    expect(ackField(ack, 'MSA', 2)).toBe('CTRL-AA-1');
    expect(ackField(ack, 'MSH', 3)).toBe('ENGINE'); // mirrors MSH-5 of the original
    expect(ackField(ack, 'MSH', 5)).toBe('SENDER');
    const [row] = await rowsByControlId('CTRL-AA-1');
    expect(row).toMatchObject({
      feed: 'default',
      type: 'ADT',
      trigger: 'A04',
      version: '2.5.1',
      sendingApplication: 'SENDER',
      sendingFacility: 'FAC',
      receivingApplication: 'ENGINE',
      receivingFacility: 'DEST',
      status: 'received',
      partitionKey: '12345^HOSP',
    });
    const full = await repo.findById(row.id);
    expect(full!.raw.equals(Buffer.from(msg, 'latin1'))).toBe(true);
    expect(full!.remoteAddress).toMatch(/^127\.0\.0\.1:\d+$/);
    // The enqueue follows the commit (and the ACK) within moments.
    await waitFor(() => jobExists(row.id, row.partition));
  });

  it('puts one patient’s messages in the same partition', async () => {
    const c = await client();
    for (const trig of ['A01', 'A08', 'A03']) {
      expect(
        ackField(
          await c.send(adt({ controlId: `PART-${trig}`, trigger: trig, mrn: 'P77' })),
          'MSA',
          1,
        ),
      ).toBe('AA');
    }
    const parts = await Promise.all(['A01', 'A08', 'A03'].map((t) => rowsByControlId(`PART-${t}`)));
    expect(new Set(parts.map(([r]) => r.partition)).size).toBe(1);
  });

  it('accepts ORU^R01', async () => {
    const c = await client();
    expect(ackField(await c.send(oru({ controlId: 'ORU-OK' })), 'MSA', 1)).toBe('AA');
  });

  describe('rejections: a clear NAK, the payload kept as rejected', () => {
    it('unparseable header → AR with ERR', async () => {
      const c = await client();
      const ack = await c.send('THIS IS NOT HL7 AT ALL');
      expect(ackField(ack, 'MSA', 1)).toBe('AR');
      expect(ack).toContain('ERR|');
      const rows = (await repo.search({ status: 'rejected', limit: 100 })).items;
      const row = rows.find((r) => r.errorCode === 'UNPARSEABLE');
      expect(row).toBeDefined();
      expect((await repo.findById(row!.id))!.raw.toString()).toBe('THIS IS NOT HL7 AT ALL');
    });

    it('a type the feed does not accept → AR 200', async () => {
      const c = await client();
      const ack = await c.send(adt({ controlId: 'REJ-TYPE', type: 'SIU', trigger: 'S12' }));
      expect(ackField(ack, 'MSA', 1)).toBe('AR');
      expect(ackField(ack, 'ERR', 3)).toMatch(/^200\^/);
      const [row] = await rowsByControlId('REJ-TYPE');
      expect(row).toMatchObject({ status: 'rejected', errorCode: 'UNSUPPORTED_TYPE' });
      expect(row.errorReason).toContain('SIU');
    });

    it('an event the feed does not accept → AR 201', async () => {
      const c = await client();
      const ack = await c.send(
        oru({ controlId: 'REJ-EVT' }).replace('ORU^R01^ORU_R01', 'ORU^R30^ORU_R30'),
      );
      expect(ackField(ack, 'MSA', 1)).toBe('AR');
      expect(ackField(ack, 'ERR', 3)).toMatch(/^201\^/);
    });

    it('an unsupported version → AR 203', async () => {
      const c = await client();
      const ack = await c.send(adt({ controlId: 'REJ-VER', version: '9.9' }));
      expect(ackField(ack, 'MSA', 1)).toBe('AR');
      expect(ackField(ack, 'ERR', 3)).toMatch(/^203\^/);
      expect((await rowsByControlId('REJ-VER'))[0]).toMatchObject({
        errorCode: 'UNSUPPORTED_VERSION',
      });
    });

    it('a v2.3 message gets ERR-1 (the pre-2.5 shape)', async () => {
      const c = await client();
      const ack = await c.send(
        adt({ controlId: 'REJ-V23', version: '2.3', type: 'SIU', trigger: 'S12' }),
      );
      expect(ackField(ack, 'MSA', 1)).toBe('AR');
      expect(ackField(ack, 'ERR', 1)).toContain('200');
    });

    it('ADT without PID → AE 100; ORU without OBX → AE 100', async () => {
      const c = await client();
      const a = await c.send(adt({ controlId: 'REJ-NOPID', segments: ['EVN|A01|20240101'] }));
      expect(ackField(a, 'MSA', 1)).toBe('AE');
      expect(ackField(a, 'ERR', 3)).toMatch(/^100\^/);
      const o = await c.send(oru({ controlId: 'REJ-NOOBX', withObx: false }));
      expect(ackField(o, 'MSA', 1)).toBe('AE');
      expect((await rowsByControlId('REJ-NOOBX'))[0]).toMatchObject({
        status: 'rejected',
        errorCode: 'MISSING_SEGMENT',
      });
    });

    it('NUL bytes in header fields do not spoil the commit other connections share', async () => {
      const c1 = await client();
      const c2 = await client();
      const bad = adt({ controlId: 'NUL\u0000ID', facility: 'F\u0000AC' });
      c1.sendFrame(Buffer.from(bad, 'latin1'));
      c2.sendFrame(adt({ controlId: 'NUL-NEIGHBOUR' }));
      expect(ackField((await c1.nextAck()).toString('latin1'), 'MSA', 1)).toBe('AA');
      expect(ackField((await c2.nextAck()).toString('latin1'), 'MSA', 1)).toBe('AA');
      const [row] = await rowsByControlId('NUL\uFFFDID');
      expect((await repo.findById(row.id))!.raw.equals(Buffer.from(bad, 'latin1'))).toBe(true);
    });

    it('a missing MSH-10 → AR 101', async () => {
      const c = await client();
      const ack = await c.send(adt({ controlId: '' }));
      expect(ackField(ack, 'MSA', 1)).toBe('AR');
      expect(ackField(ack, 'ERR', 3)).toMatch(/^101\^/);
    });

    it('an oversize message → AR, and the stream resyncs at the next start block', async () => {
      const c = await client();
      const big = adt({ controlId: 'REJ-BIG', segments: [`NTE|1||${'x'.repeat(8000)}`] });
      c.sendFrame(big);
      c.sendFrame(adt({ controlId: 'AFTER-BIG' }));
      const nak = (await c.nextAck()).toString('latin1');
      expect(ackField(nak, 'MSA', 1)).toBe('AR');
      expect(nak).toMatch(/exceeds the maximum/);
      const next = (await c.nextAck()).toString('latin1');
      expect(ackField(next, 'MSA', 1)).toBe('AA');
      expect(ackField(next, 'MSA', 2)).toBe('AFTER-BIG');
      const rejected = (await repo.search({ status: 'rejected', limit: 100 })).items;
      expect(rejected.some((r) => r.errorCode === 'OVERSIZE')).toBe(true);
    });

    it('bytes that are not HL7 at all → connection closed after the limit; others unaffected', async () => {
      const bad = await client();
      const good = await client();
      bad.write(Buffer.alloc(4096, 0x41));
      await bad.whenClosed();
      expect(ackField(await good.send(adt({ controlId: 'STILL-OK' })), 'MSA', 1)).toBe('AA');
    });
  });

  describe('resend', () => {
    it('same feed + facility + MSH-10 + identical bytes → AA again, one row, one job', async () => {
      const c = await client();
      const msg = adt({ controlId: 'RESEND-1' });
      expect(ackField(await c.send(msg), 'MSA', 1)).toBe('AA');
      expect(ackField(await c.send(msg), 'MSA', 1)).toBe('AA');
      const c2 = await client();
      expect(ackField(await c2.send(msg), 'MSA', 1)).toBe('AA');
      const rows = await rowsByControlId('RESEND-1');
      expect(rows).toHaveLength(1);
    });

    it('same MSH-10 with different content → a new message', async () => {
      const c = await client();
      await c.send(adt({ controlId: 'RESEND-2', family: 'ONE' }));
      await c.send(adt({ controlId: 'RESEND-2', family: 'TWO' }));
      expect(await rowsByControlId('RESEND-2')).toHaveLength(2);
    });

    it('policy "process" keeps every arrival', async () => {
      const c = await client('nodup');
      const msg = adt({ controlId: 'RESEND-3' });
      await c.send(msg);
      await c.send(msg);
      expect(await rowsByControlId('RESEND-3')).toHaveLength(2);
    });
  });

  describe('enhanced acknowledgement mode', () => {
    it('answers CA when MSH-15 is AL, and nothing when it is NE', async () => {
      const c = await client('enhanced');
      const ack = await c.send(adt({ controlId: 'ENH-1', ackTypes: ['AL', 'NE'] }));
      expect(ackField(ack, 'MSA', 1)).toBe('CA');
      c.sendFrame(adt({ controlId: 'ENH-NE', ackTypes: ['NE', 'NE'] }));
      c.sendFrame(adt({ controlId: 'ENH-2', ackTypes: ['AL', 'NE'] }));
      const next = (await c.nextAck()).toString('latin1');
      expect(ackField(next, 'MSA', 2)).toBe('ENH-2');
      expect(await rowsByControlId('ENH-NE')).toHaveLength(1);
    });

    it('by default answers every message, even one whose MSH-15 says NE', async () => {
      const c = await client();
      const ack = await c.send(adt({ controlId: 'ENH-NE-DEFAULT', ackTypes: ['NE', 'NE'] }));
      expect(ackField(ack, 'MSA', 1)).toBe('CA');
      expect(ackField(ack, 'MSA', 2)).toBe('ENH-NE-DEFAULT');
    });

    it('auto mode answers CR for a rejected message that asked for enhanced mode', async () => {
      const c = await client();
      const ack = await c.send(
        adt({ controlId: 'ENH-REJ', version: '9.9', ackTypes: ['AL', 'AL'] }),
      );
      expect(ackField(ack, 'MSA', 1)).toBe('CR');
    });
  });

  describe('a batch in one frame (FHS/BHS … BTS/FTS)', () => {
    const segments = (ack: string) => ack.split('\r').filter((x) => x !== '');

    it('stores and queues each message, and answers one batch of ACKs in order', async () => {
      const c = await client();
      const batch =
        'FHS|^~\\&|SENDER|FAC|ENGINE|DEST|20240101120000||||FILE-1\r' +
        'BHS|^~\\&|SENDER|FAC|ENGINE|DEST|20240101120000||||BATCH-1\r' +
        adt({ controlId: 'BATCH-M1', mrn: 'B1' }) +
        oru({ controlId: 'BATCH-M2' }) +
        adt({ controlId: 'BATCH-M3', type: 'SIU', trigger: 'S12' }) +
        'BTS|3\rFTS|1\r';
      const ack = segments(await c.send(batch));
      expect(ack[0]).toMatch(/^FHS\|\^~\\&\|ENGINE\|DEST\|SENDER\|FAC\|\d{14}/);
      expect(ack[0].split('|')[11]).toBe('FILE-1'); // FHS-12 references the file
      expect(ack[1].split('|')[11]).toBe('BATCH-1'); // BHS-12 references the batch
      expect(ack.filter((x) => x.startsWith('MSA'))).toEqual([
        'MSA|AA|BATCH-M1',
        'MSA|AA|BATCH-M2',
        expect.stringMatching(/^MSA\|AR\|BATCH-M3/),
      ]);
      expect(ack.slice(-2)).toEqual(['BTS|3', 'FTS|1']);
      const [m1] = await rowsByControlId('BATCH-M1');
      const [m2] = await rowsByControlId('BATCH-M2');
      const [m3] = await rowsByControlId('BATCH-M3');
      expect([m1.status, m2.status, m3.status]).toEqual(['received', 'received', 'rejected']);
      expect(m3.errorCode).toBe('UNSUPPORTED_TYPE');
      // Each row holds its own message's bytes, not the envelope.
      expect((await repo.findById(m2.id))!.raw.toString('latin1')).toBe(
        oru({ controlId: 'BATCH-M2' }),
      );
      expect(m1.id < m2.id && m2.id < m3.id).toBe(true); // arrival order kept
      // One wake-up job per partition and flush, for its newest message (ADR 0010).
      await waitFor(() => jobExists(m2.id, m2.partition));
      if (m1.partition !== m2.partition) {
        await waitFor(() => jobExists(m1.id, m1.partition));
      }
    });

    it('a resent batch is ACKed again without storing anything twice', async () => {
      const c = await client();
      const batch =
        'BHS|^~\\&|SENDER|FAC|ENGINE|DEST\r' +
        adt({ controlId: 'BATCH-R1', mrn: 'R1' }) +
        adt({ controlId: 'BATCH-R2', mrn: 'R2' }) +
        'BTS|2\r';
      const first = segments(await c.send(batch));
      const again = segments(await c.send(batch));
      for (const ack of [first, again]) {
        expect(ack[0].startsWith('BHS|')).toBe(true);
        expect(ack.filter((x) => x.startsWith('MSA'))).toEqual([
          'MSA|AA|BATCH-R1',
          'MSA|AA|BATCH-R2',
        ]);
      }
      expect(await rowsByControlId('BATCH-R1')).toHaveLength(1);
      expect(await rowsByControlId('BATCH-R2')).toHaveLength(1);
    });

    it('an empty batch gets an empty batch back and stores nothing', async () => {
      const c = await client();
      const count = async () =>
        Number((await engine.app.get(DataSource).query('SELECT count(*) AS n FROM message'))[0].n);
      const before = await count();
      const ack = segments(await c.send('BHS|^~\\&|SENDER|FAC|ENGINE|DEST|||||EMPTY-1\rBTS|0\r'));
      expect(ack[0].split('|')[11]).toBe('EMPTY-1');
      expect(ack.slice(1)).toEqual(['BTS|0']);
      expect(await count()).toBe(before);
    });
  });

  it('50 concurrent connections: every message ACKed in order and stored once', async () => {
    const conns = await Promise.all(Array.from({ length: 50 }, () => client()));
    const perConn = 20;
    await Promise.all(
      conns.map(async (c, ci) => {
        // Pipelined: all frames written at once; ACKs must come back in the same order.
        for (let i = 0; i < perConn; i++) {
          c.sendFrame(adt({ controlId: `CONC-${ci}-${i}`, mrn: `C${ci}` }));
        }
        for (let i = 0; i < perConn; i++) {
          const ack = (await c.nextAck()).toString('latin1');
          expect(ackField(ack, 'MSA', 1)).toBe('AA');
          expect(ackField(ack, 'MSA', 2)).toBe(`CONC-${ci}-${i}`);
        }
      }),
    );
    const ds = engine.app.get(DataSource);
    const [{ n }] = await ds.query(
      `SELECT count(*)::int AS n FROM message WHERE control_id LIKE 'CONC-%'`,
    );
    expect(n).toBe(50 * perConn);
  });

  it('a sender streaming 2,000 frames without reading is throttled, not dropped', async () => {
    const c = await client();
    const n = 2000;
    let burst = '';
    for (let i = 0; i < n; i++) {
      burst += `\x0b${adt({ controlId: `BURST-${i}`, mrn: 'BURST' })}\x1c\r`;
    }
    c.write(Buffer.from(burst, 'latin1'));
    for (let i = 0; i < n; i++) {
      const ack = (await c.nextAck(30000)).toString('latin1');
      expect(ackField(ack, 'MSA', 2)).toBe(`BURST-${i}`);
      expect(ackField(ack, 'MSA', 1)).toBe('AA');
    }
  });

  it('the sweeper re-enqueues committed messages whose jobs vanished (Redis flushed)', async () => {
    const c = await client();
    await c.send(adt({ controlId: 'SWEEP-1' }));
    const [row] = await rowsByControlId('SWEEP-1');
    await waitFor(() => jobExists(row.id, row.partition));
    await engine.flushQueues();
    expect(await jobExists(row.id, row.partition)).toBe(false);
    const n = await engine.app.get(SweeperService).sweep(0);
    expect(n).toBeGreaterThanOrEqual(1);
    expect(await jobExists(row.id, row.partition)).toBe(true);
    // A second sweep finds nothing missing.
    expect(await engine.app.get(SweeperService).sweep(0)).toBe(0);
  });

  it('the sweeper wakes a partition with one job, for its newest uncovered message', async () => {
    const c = await client();
    // One patient, so one partition; no worker runs here, so both stay `received`.
    await c.send(adt({ controlId: 'SWEEP-OLD', mrn: 'SWEEP-MRN' }));
    await c.send(adt({ controlId: 'SWEEP-NEW', mrn: 'SWEEP-MRN' }));
    const [older] = await rowsByControlId('SWEEP-OLD');
    const [newer] = await rowsByControlId('SWEEP-NEW');
    expect(newer.partition).toBe(older.partition);
    await waitFor(() => jobExists(newer.id, newer.partition));
    await engine.flushQueues();
    const sweeper = engine.app.get(SweeperService);
    expect(await sweeper.sweep(0)).toBeGreaterThanOrEqual(2);
    // The newer message's job covers the older one (a job drains its partition up to its id).
    expect(await jobExists(newer.id, newer.partition)).toBe(true);
    expect(await jobExists(older.id, older.partition)).toBe(false);
    expect(await sweeper.sweep(0)).toBe(0);
  });

  it('the sweeper leaves alone a partition whose live job covers its stale messages', async () => {
    const c = await client();
    await c.send(adt({ controlId: 'SWEEP-LAG-1', mrn: 'SWEEP-LAG' }));
    const [older] = await rowsByControlId('SWEEP-LAG-1');
    await waitFor(() => jobExists(older.id, older.partition));
    // As if its flush had also held a newer message of the partition: no job of its own.
    const q = new Queue(inboundQueueName(older.partition), {
      connection: { url: REDIS_URL },
      prefix: engine.settings.QUEUE_PREFIX,
    });
    try {
      expect(await q.remove(inboundJobId('default', older.id))).toBe(1);
    } finally {
      await q.close();
    }
    await new Promise((r) => setTimeout(r, 400));
    await c.send(adt({ controlId: 'SWEEP-LAG-2', mrn: 'SWEEP-LAG' }));
    const [newer] = await rowsByControlId('SWEEP-LAG-2');
    await waitFor(() => jobExists(newer.id, newer.partition));
    // The older message is stale and has no job, but the newer one's waiting job covers it
    // (a worker that is merely behind): nothing to wake, nothing counted.
    expect(await engine.app.get(SweeperService).sweep(300)).toBe(0);
    expect(await jobExists(older.id, older.partition)).toBe(false);
  });

  it('the sweeper retries a failed job whose message is still unprocessed', async () => {
    const c = await client();
    await c.send(adt({ controlId: 'SWEEP-FAILED' }));
    const [row] = await rowsByControlId('SWEEP-FAILED');
    await waitFor(() => jobExists(row.id, row.partition));
    // A worker that fails the job for good, without recording anything on the message.
    const worker = new Worker(
      inboundQueueName(row.partition),
      () => {
        throw new UnrecoverableError('simulated: database down while processing');
      },
      { connection: { url: REDIS_URL }, prefix: engine.settings.QUEUE_PREFIX },
    );
    const q = new Queue(inboundQueueName(row.partition), {
      connection: { url: REDIS_URL },
      prefix: engine.settings.QUEUE_PREFIX,
    });
    try {
      const jobId = inboundJobId('default', row.id);
      await waitFor(async () => (await q.getJob(jobId))?.failedReason !== undefined);
      await worker.close();
      expect(await q.getJobState(jobId)).toBe('failed');
      expect(await engine.app.get(SweeperService).sweep(0)).toBeGreaterThanOrEqual(1);
      expect(await q.getJobState(jobId)).toBe('waiting');
    } finally {
      await worker.close();
      await q.close();
    }
  });

  describe('API', () => {
    it('health endpoints answer', async () => {
      await request(engine.url!).get('/health/live').expect(200, { status: 'ok' });
      const ready = await request(engine.url!).get('/health/ready').expect(200);
      expect(ready.body).toMatchObject({ status: 'ok', database: 'up', redis: 'up' });
    });

    it('requires the bearer key', async () => {
      await request(engine.url!).get('/api/messages').expect(401);
      await request(engine.url!)
        .get('/api/messages')
        .set('Authorization', 'Bearer wrong-key-wrong-key')
        .expect(401);
    });

    it('searches messages by control id, feed and status (rejected included)', async () => {
      const c = await client();
      await c.send(adt({ controlId: 'API-1', trigger: 'A08' }));
      const res = await request(engine.url!)
        .get('/api/messages')
        .query({ controlId: 'API-1', feed: 'default' })
        .set('Authorization', `Bearer ${ADMIN_KEY}`)
        .expect(200);
      expect(res.body.items).toHaveLength(1);
      expect(res.body.items[0]).toMatchObject({
        feed: 'default',
        controlId: 'API-1',
        type: 'ADT^A08',
        status: 'received',
      });
      expect(Object.keys(res.body.items[0]).sort()).toEqual(
        ['controlId', 'feed', 'id', 'receivedAt', 'status', 'type'].sort(),
      );
      const rej = await request(engine.url!)
        .get('/api/messages')
        .query({ status: 'rejected' })
        .set('Authorization', `Bearer ${ADMIN_KEY}`)
        .expect(200);
      expect(rej.body.items.length).toBeGreaterThan(0);
      expect(rej.body.items.every((m: { status: string }) => m.status === 'rejected')).toBe(true);
      for (const query of ['status=bogus', 'cursor=junk', 'type=A&type=B', 'limit=0']) {
        await request(engine.url!)
          .get(`/api/messages?${query}`)
          .set('Authorization', `Bearer ${ADMIN_KEY}`)
          .expect(400);
      }
    });

    it('shows one message with raw text and header, and audits the read', async () => {
      const c = await client();
      const msg = adt({ controlId: 'API-2' });
      await c.send(msg);
      const [row] = await rowsByControlId('API-2');
      const res = await request(engine.url!)
        .get(`/api/messages/${row.id}`)
        .set('Authorization', `Bearer ${ADMIN_KEY}`)
        .expect(200);
      expect(res.body.raw).toBe(msg);
      expect(res.body.header).toMatchObject({
        sendingApplication: 'SENDER',
        sendingFacility: 'FAC',
      });
      const ds = engine.app.get(DataSource);
      const audits = await ds.query(`SELECT actor, action FROM audit_log WHERE entity_id = $1`, [
        row.id,
      ]);
      expect(audits).toEqual([{ actor: 'admin', action: 'message.read' }]);
      await request(engine.url!)
        .get('/api/messages/00000000-0000-0000-0000-000000000000')
        .set('Authorization', `Bearer ${ADMIN_KEY}`)
        .expect(404);
      await request(engine.url!)
        .get('/api/messages/nope')
        .set('Authorization', `Bearer ${ADMIN_KEY}`)
        .expect(400);
    });
  });
});
