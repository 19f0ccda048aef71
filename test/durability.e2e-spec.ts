import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { createTestDatabase } from '@engine/store/testing';
import { MessageRepository } from '@engine/store';
import { REDIS_URL, startTestEngine } from './support/engine';
import { ackField, TestMllpClient } from './support/mllp-client';
import { adt } from './support/messages';
import { spawnEngine } from './support/pipeline';
import { freePort } from './support/sinks';
import { waitFor } from './support/wait';
import { Redis } from 'ioredis';

/** A TCP proxy in front of PostgreSQL that the test can cut (database "stopped"). */
class TcpProxy {
  private readonly sockets = new Set<net.Socket>();
  private server?: net.Server;
  port = 0;

  async start(port = 0): Promise<void> {
    this.server = net.createServer((client) => {
      const upstream = net.connect(5432, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((r) => this.server!.listen(port, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) {
      s.destroy();
    }
    await new Promise<void>((r) => this.server?.close(() => r()));
  }
}

describe('durability', () => {
  it('database stopped → no AA (AR 207), and AA again once it is back', async () => {
    const db = await createTestDatabase();
    const proxy = new TcpProxy();
    await proxy.start();
    const viaProxy = db.url.replace(':5432/', `:${proxy.port}/`);
    const engine = await startTestEngine({ databaseUrl: viaProxy, roles: ['gateway'] });
    const client = await TestMllpClient.connect(engine.port());
    try {
      expect(ackField(await client.send(adt({ controlId: 'DB-UP' })), 'MSA', 1)).toBe('AA');
      await proxy.stop();
      const nak = await client.send(adt({ controlId: 'DB-DOWN' }), 30000);
      expect(ackField(nak, 'MSA', 1)).toBe('AR');
      expect(ackField(nak, 'ERR', 3)).toMatch(/^207\^/);
      await proxy.start(proxy.port);
      const again = await waitFor(
        'an AA once the database is back',
        async () => {
          const ack = await client.send(adt({ controlId: 'DB-BACK' }), 30000);
          return ackField(ack, 'MSA', 1) === 'AA' ? ack : undefined;
        },
        30000,
      );
      expect(ackField(again, 'MSA', 2)).toBe('DB-BACK');
      const repo = engine.app.get(MessageRepository);
      expect((await repo.search({ controlId: 'DB-DOWN' })).items).toHaveLength(0);
      expect((await repo.search({ controlId: 'DB-UP' })).items).toHaveLength(1);
    } finally {
      client.close();
      await engine.close();
      await proxy.stop().catch(() => undefined);
      await db.drop();
    }
  });

  describe('engine killed (SIGKILL) right after AA', () => {
    let child: ChildProcess | undefined;
    afterEach(() => child?.kill('SIGKILL'));

    it('every AA-acknowledged message is in the database and is processed after restart', async () => {
      const db = await createTestDatabase();
      const port = await freePort();
      const dir = mkdtempSync(join(tmpdir(), 'engine-'));
      const cfg = join(dir, 'engine.yaml');
      writeFileSync(
        cfg,
        `engine:\n  partitions: 4\n  sweeper: { intervalSeconds: 1, graceSeconds: 0 }\nfeeds:\n  - id: default\n    host: 127.0.0.1\n    port: ${port}\n    accept: ['ADT^*']\n`,
      );
      const prefix = `crash${Date.now()}`;
      const env = {
        HL7_CONFIG: cfg,
        DATABASE_URL: db.url,
        REDIS_URL,
        QUEUE_PREFIX: prefix,
        LOG_LEVEL: 'warn',
        TS_NODE_PROJECT: 'tsconfig.json',
      };
      const ds = new DataSource({ type: 'postgres', url: db.url });
      await ds.initialize();
      try {
        child = spawnEngine(['gateway'], env);
        const clients = await waitFor(
          'the gateway to accept connections',
          async () => Promise.all(Array.from({ length: 4 }, () => TestMllpClient.connect(port))),
          30000,
        );
        // Four connections send as fast as they can; the engine is killed mid-stream.
        const acked: string[] = [];
        let stop = false;
        const senders = clients.map(async (c, ci) => {
          for (let i = 0; !stop; i++) {
            const id = `KILL-${ci}-${i}`;
            const ack = await c
              .send(adt({ controlId: id, mrn: `K${ci}` }), 5000)
              .catch(() => undefined);
            if (ack === undefined) {
              return;
            }
            if (ackField(ack, 'MSA', 1) === 'AA') {
              acked.push(id);
            }
          }
        });
        await waitFor(
          '200 messages acknowledged',
          () => Promise.resolve(acked.length >= 200 ? true : undefined),
          30000,
        );
        child.kill('SIGKILL');
        stop = true;
        await Promise.all(senders);
        clients.forEach((c) => c.close());
        const stored = new Set<string>(
          (await ds.query(`SELECT control_id FROM message`)).map(
            (r: { control_id: string }) => r.control_id,
          ),
        );
        const lost = acked.filter((id) => !stored.has(id));
        expect(lost).toEqual([]);

        // Redis lost too: the restarted engine's sweeper re-enqueues and the worker processes all.
        const r = new Redis(REDIS_URL);
        const keys = await r.keys(`${prefix}:*`);
        if (keys.length > 0) {
          await r.del(...keys);
        }
        r.disconnect();
        child = spawnEngine(['gateway', 'worker'], env);
        await waitFor(
          'every message processed',
          async () => {
            const [{ n }] = await ds.query(
              `SELECT count(*)::int AS n FROM message WHERE status = 'received'`,
            );
            return n === 0 ? true : undefined;
          },
          60000,
        );
        const [{ processed }] = await ds.query(
          `SELECT count(*)::int AS processed FROM message WHERE status = 'processed'`,
        );
        expect(processed).toBe(stored.size);
      } finally {
        child?.kill('SIGKILL');
        await ds.destroy();
        await db.drop();
      }
    }, 120000);
  });
});
