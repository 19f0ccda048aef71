/**
 * The baseline of `bench:ingest`: a minimal durable-ACK MLLP server. It group-commits raw
 * frames across connections into one table, ACKs AA right after the commit and enqueues the ids
 * in bulk behind it. No parsing, validation, resend check or partitioning: the full gateway
 * should stay within 10% of it.
 *
 * Usage: node dist/bench/minimal-server.js PORT DATABASE_URL REDIS_URL QUEUE_PREFIX
 */
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { Queue } from 'bullmq';
import { Pool } from 'pg';
import { encodeMllp, MllpDecoder } from '@engine/hl7';

const [portArg, databaseUrl, redisUrl, prefix] = process.argv.slice(2);
const pool = new Pool({ connectionString: databaseUrl, max: 4 });
const queue = new Queue('minimal', { connection: { url: redisUrl }, prefix });
const ACK = encodeMllp('MSH|^~\\&|MIN|MIN|||20240101||ACK|1|P|2.5\rMSA|AA|1\r');

interface Pending {
  raw: Buffer;
  done: (ok: boolean) => void;
}
let pending: Pending[] = [];
let inflight = 0;

function pump(): void {
  while (inflight < 2 && pending.length > 0) {
    const batch = pending.splice(0, 500);
    inflight++;
    const ids = batch.map(() => randomUUID());
    const params: unknown[] = [];
    const values = batch.map((p, i) => {
      params.push(ids[i], p.raw);
      return `($${i * 2 + 1}, $${i * 2 + 2}, now())`;
    });
    pool
      .query(
        `INSERT INTO minimal_message (id, raw, received_at) VALUES ${values.join(',')}`,
        params,
      )
      .then(
        () => {
          batch.forEach((p) => p.done(true));
          void queue
            .addBulk(ids.map((id) => ({ name: 'm', data: { id }, opts: { jobId: id } })))
            .catch(() => undefined);
        },
        () => batch.forEach((p) => p.done(false)),
      )
      .finally(() => {
        inflight--;
        pump();
      });
  }
}

async function main(): Promise<void> {
  await pool.query(
    'CREATE TABLE IF NOT EXISTS minimal_message (id uuid PRIMARY KEY, raw bytea NOT NULL, received_at timestamptz NOT NULL)',
  );
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    const decoder = new MllpDecoder({ maxFrameBytes: 4 * 1024 * 1024 });
    let chain = Promise.resolve();
    socket.on('data', (chunk: Buffer) => {
      for (const ev of decoder.push(chunk)) {
        if (ev.type !== 'frame') {
          continue;
        }
        const committed = new Promise<boolean>((done) => {
          pending.push({ raw: ev.payload, done });
          pump();
        });
        chain = chain.then(async () => {
          if (await committed) {
            socket.write(ACK);
          }
        });
      }
    });
    socket.on('error', () => undefined);
  });
  server.listen(Number(portArg), '127.0.0.1', () => process.stdout.write('ready\n'));
}

void main();
process.on('SIGTERM', () => {
  pending = [];
  void Promise.all([pool.end(), queue.close()]).finally(() => process.exit(0));
});
