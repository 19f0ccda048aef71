import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import tls from 'node:tls';
import request from 'supertest';
import { encodeMllp, MllpDecoder } from '@engine/hl7';
import { MessageRepository } from '@engine/store';
import { ADMIN_KEY, defaultFeed, startTestEngine, type TestEngine } from './support/engine';
import { makeTestPki, type TestPki } from './support/certs';
import { ackField, TestMllpClient } from './support/mllp-client';
import { adt } from './support/messages';

/** Send one frame over TLS and resolve with the ACK text (or reject when the server refuses). */
function tlsSend(port: number, opts: tls.ConnectionOptions, payload: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      { host: '127.0.0.1', port, servername: 'localhost', ...opts },
      () => {
        socket.write(encodeMllp(payload));
      },
    );
    const decoder = new MllpDecoder();
    socket.on('data', (chunk: Buffer) => {
      for (const ev of decoder.push(chunk)) {
        if (ev.type === 'frame') {
          resolve(ev.payload.toString('latin1'));
          socket.end();
        }
      }
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error('closed without an ACK')));
  });
}

describe('gateway listeners: TLS with client certificates, connection limits, idle timeout', () => {
  let pki: TestPki;
  let engine: TestEngine;

  beforeAll(async () => {
    pki = makeTestPki();
    engine = await startTestEngine({
      config: {
        feeds: [
          defaultFeed({
            id: 'secure',
            tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca, requireClientCert: true },
          }),
          defaultFeed({ id: 'small', maxConnections: 2 }),
          defaultFeed({ id: 'idle', idleTimeoutSeconds: 1 }),
        ],
      },
    });
  });

  afterAll(async () => {
    await engine.close();
    rmSync(pki.dir, { recursive: true, force: true });
  });

  it('accepts a client whose certificate the CA signed, and ACKs AA', async () => {
    const ack = await tlsSend(
      engine.port('secure'),
      {
        ca: readFileSync(pki.ca),
        cert: readFileSync(pki.clientCert),
        key: readFileSync(pki.clientKey),
      },
      adt({ controlId: 'TLS-1' }),
    );
    expect(ackField(ack, 'MSA', 1)).toBe('AA');
    const repo = engine.app.get(MessageRepository);
    expect((await repo.search({ controlId: 'TLS-1', feed: 'secure' })).items).toHaveLength(1);
  });

  it('refuses a client without a certificate, or with one from another CA', async () => {
    await expect(
      tlsSend(
        engine.port('secure'),
        { ca: readFileSync(pki.ca) },
        adt({ controlId: 'TLS-NOCERT' }),
      ),
    ).rejects.toThrow();
    await expect(
      tlsSend(
        engine.port('secure'),
        {
          ca: readFileSync(pki.ca),
          cert: readFileSync(pki.rogueCert),
          key: readFileSync(pki.rogueKey),
        },
        adt({ controlId: 'TLS-ROGUE' }),
      ),
    ).rejects.toThrow();
    const repo = engine.app.get(MessageRepository);
    expect((await repo.search({ controlId: 'TLS-NOCERT' })).items).toHaveLength(0);
    expect((await repo.search({ controlId: 'TLS-ROGUE' })).items).toHaveLength(0);
  });

  it('refuses connections beyond maxConnections and keeps serving the others', async () => {
    const a = await TestMllpClient.connect(engine.port('small'));
    const b = await TestMllpClient.connect(engine.port('small'));
    expect(ackField(await a.send(adt({ controlId: 'LIM-A' })), 'MSA', 1)).toBe('AA');
    const c = await TestMllpClient.connect(engine.port('small'));
    await c.whenClosed(5000);
    expect(ackField(await b.send(adt({ controlId: 'LIM-B' })), 'MSA', 1)).toBe('AA');
    a.close();
    b.close();
  });

  it('closes a connection that stays idle longer than idleTimeoutSeconds', async () => {
    const c = await TestMllpClient.connect(engine.port('idle'));
    expect(ackField(await c.send(adt({ controlId: 'IDLE-1' })), 'MSA', 1)).toBe('AA');
    const started = Date.now();
    await c.whenClosed(5000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it('exposes gateway metrics in Prometheus text format', async () => {
    const res = await request(engine.url!).get('/metrics').expect(200);
    expect(res.text).toMatch(/hl7_gateway_messages_total\{feed="secure",outcome="accepted"\} 1/);
    expect(res.text).toContain('hl7_gateway_ack_seconds_bucket');
    // The admin key is not needed for metrics, and must never appear in them.
    expect(res.text).not.toContain(ADMIN_KEY);
  });
});

describe('embedded SQLite (DATABASE_URL unset)', () => {
  it('stores, acknowledges and serves messages from a SQLite file', async () => {
    const dir = `${tmpdir()}/engine-sqlite-${Date.now()}`;
    const engine = await startTestEngine({
      databaseUrl: '',
      env: { SQLITE_PATH: `${dir}/engine.sqlite` },
    });
    try {
      const c = await TestMllpClient.connect(engine.port());
      const msg = adt({ controlId: 'SQLITE-1' });
      expect(ackField(await c.send(msg), 'MSA', 1)).toBe('AA');
      expect(ackField(await c.send(msg), 'MSA', 1)).toBe('AA'); // resend
      const nak = await c.send(adt({ controlId: 'SQLITE-2', version: '9.9' }));
      expect(ackField(nak, 'MSA', 1)).toBe('AR');
      c.close();
      const res = await request(engine.url!)
        .get('/api/messages')
        .query({ controlId: 'SQLITE-1' })
        .set('Authorization', `Bearer ${ADMIN_KEY}`)
        .expect(200);
      expect(res.body.items).toHaveLength(1);
      const one = await request(engine.url!)
        .get(`/api/messages/${res.body.items[0].id}`)
        .set('Authorization', `Bearer ${ADMIN_KEY}`)
        .expect(200);
      expect(one.body.raw).toBe(msg);
    } finally {
      await engine.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
