import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMessage, encodeMllp, MllpDecoder, parseMessage } from '@engine/hl7';
import { HttpSender, MllpSender } from '../libs/routing/src/senders';
import { type Rendered } from '../libs/routing/src/types';
import { type HttpSinkRecord } from './sink-http';
import { type MllpSinkRecord } from './sink-mllp';
import { killSinks, readRecords, startSink } from '../test/support/sinks';

afterEach(() => killSinks());

function hl7(controlId: string, familyName = 'DOE'): Rendered {
  const msg = createMessage({ messageType: 'ADT^A01^ADT_A01', controlId });
  msg.setRaw('PID-3', 'MRN1^^^HOSP^MR~E-77^^^EUID^PI');
  msg.setRaw('PID-5', `${familyName}^JANE`);
  return { body: msg.toBuffer(), contentType: 'application/hl7-v2', extension: 'hl7', controlId };
}

function json(doc: object): Rendered {
  return {
    body: Buffer.from(JSON.stringify(doc)),
    contentType: 'application/json',
    extension: 'json',
  };
}

/** Write raw bytes on one socket and collect `count` ACK frames. */
async function rawExchange(port: number, writes: Buffer[], count: number): Promise<string[]> {
  const socket = net.connect({ host: '127.0.0.1', port });
  await once(socket, 'connect');
  const decoder = new MllpDecoder();
  const acks: string[] = [];
  const done = new Promise<void>((resolveDone, reject) => {
    socket.on('data', (chunk: Buffer) => {
      for (const ev of decoder.push(chunk)) {
        if (ev.type === 'frame') {
          acks.push(ev.payload.toString('latin1'));
        }
      }
      if (acks.length >= count) {
        resolveDone();
      }
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`closed after ${acks.length} ACKs`)));
  });
  for (const w of writes) {
    socket.write(w);
    await new Promise((r) => setImmediate(r));
  }
  await done;
  socket.destroy();
  return acks;
}

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sink-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('sink-mllp', () => {
  it('ACKs AA, AE on --reject-pattern, records before answering, exits 0 on SIGTERM', async () => {
    const record = join(dir, 'mllp.jsonl');
    const sink = await startSink('sink-mllp.ts', [
      '--record',
      record,
      '--reject-pattern',
      'PID\\|[^\\r]*REJECTME',
    ]);
    const ok1 = hl7('OK-1');
    const sender = new MllpSender({
      host: '127.0.0.1',
      port: sink.port,
      connections: 2,
      checkControlId: true,
      timeoutMs: 10_000,
    });
    try {
      await expect(sender.send(ok1, 'd1')).resolves.toEqual({ ok: true, remoteAck: 'AA' });
      // the record line is there as soon as the ACK is
      expect(readRecords<MllpSinkRecord>(record)).toHaveLength(1);
      await expect(sender.send(hl7('BAD-1', 'REJECTME'), 'd2')).resolves.toEqual({
        ok: false,
        retry: false,
        remoteAck: 'AE',
        error: 'remote AE: message matches --reject-pattern',
      });
      const both = await Promise.all([
        sender.send(hl7('OK-2'), 'd3'),
        sender.send(hl7('OK-3'), 'd4'),
      ]);
      expect(both).toEqual([
        { ok: true, remoteAck: 'AA' },
        { ok: true, remoteAck: 'AA' },
      ]);
    } finally {
      await sender.close();
    }

    const lines = readRecords<MllpSinkRecord>(record);
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatchObject({
      seq: 1,
      controlId: 'OK-1',
      type: 'ADT^A01',
      ack: 'AA',
      pid3: ['MRN1^^^HOSP^MR', 'E-77^^^EUID^PI'],
    });
    expect(lines[0].message).toBe(ok1.body.toString('utf8'));
    expect(lines[0].message).toMatch(/^MSH\|[^\r]*\rPID\|/);
    expect(new Date(lines[0].at).toString()).not.toBe('Invalid Date');
    expect(lines[1]).toMatchObject({ seq: 2, controlId: 'BAD-1', ack: 'AE' });
    expect(
      lines
        .slice(2)
        .map((l) => l.controlId)
        .sort(),
    ).toEqual(['OK-2', 'OK-3']);

    await expect(sink.stop()).resolves.toBe(0);
    expect(sink.stdout()).toMatch(/^\S+ #1 ADT\^A01 OK-1 AA$/m);
    expect(sink.stdout()).toMatch(/^\S+ #2 ADT\^A01 BAD-1 AE$/m);
    expect(sink.stdout()).not.toContain('REJECTME'); // no message content without --verbose
  });

  it('answers frames merged in one write and split across writes, in order', async () => {
    const sink = await startSink('sink-mllp.ts', ['--quiet']);
    const a = encodeMllp(hl7('M-1').body);
    const b = encodeMllp(hl7('M-2').body);
    const c = encodeMllp(hl7('M-3').body);
    const pieces = [Buffer.concat([a, b]), c.subarray(0, 5), c.subarray(5, 40), c.subarray(40)];
    const acks = await rawExchange(sink.port, pieces, 3);
    expect(acks.map((ack) => parseMessage(ack).get('MSA-2'))).toEqual(['M-1', 'M-2', 'M-3']);
    expect(acks.map((ack) => parseMessage(ack).get('MSA-1'))).toEqual(['AA', 'AA', 'AA']);
    await expect(sink.stop()).resolves.toBe(0);
    expect(sink.stdout()).toMatch(/^sink-mllp listening on 127\.0\.0\.1:\d+\n$/); // --quiet
  });

  it('answers AR with --fail-rate 1 (a retry for the sender)', async () => {
    const sink = await startSink('sink-mllp.ts', ['--fail-rate', '1', '--seed', '7']);
    const sender = new MllpSender({
      host: '127.0.0.1',
      port: sink.port,
      connections: 1,
      checkControlId: true,
      timeoutMs: 10_000,
    });
    try {
      await expect(sender.send(hl7('F-1'), 'd1')).resolves.toEqual({
        ok: false,
        retry: true,
        remoteAck: 'AR',
        error: 'remote AR: simulated failure (--fail-rate)',
      });
    } finally {
      await sender.close();
    }
    await expect(sink.stop()).resolves.toBe(0);
    expect(sink.stdout()).toMatch(/^\S+ #1 ADT\^A01 F-1 AR$/m);
  });

  it('answers AE for everything with --ack AE, and refuses bad options', async () => {
    const sink = await startSink('sink-mllp.ts', ['--ack', 'AE', '--delay-ms', '50']);
    const acks = await rawExchange(sink.port, [encodeMllp(hl7('E-1').body)], 1);
    expect(parseMessage(acks[0]).get('MSA-1')).toBe('AE');
    await expect(sink.stop()).resolves.toBe(0);

    await expect(startSink('sink-mllp.ts', ['--ack', 'XX'])).rejects.toThrow(/exited with 2/);
  });
});

describe('sink-http', () => {
  it('answers 200, 400 on --reject-pattern, records before answering, exits 0 on SIGTERM', async () => {
    const record = join(dir, 'http.jsonl');
    const sink = await startSink('sink-http.ts', [
      '--record',
      record,
      '--reject-pattern',
      'REJECTME',
    ]);
    const sender = new HttpSender({
      url: `http://127.0.0.1:${sink.port}/events`,
      timeoutMs: 10_000,
    });
    try {
      await expect(
        sender.send(json({ type: 'patient.created', id: 'ev-1', euid: 'E1' }), 'delivery-1'),
      ).resolves.toEqual({ ok: true, remoteAck: 'HTTP 200' });
      expect(readRecords<HttpSinkRecord>(record)).toHaveLength(1);
      const rejected = await sender.send(
        json({ type: 'patient.merged', note: 'REJECTME' }),
        'delivery-2',
      );
      expect(rejected).toMatchObject({ ok: false, retry: false, remoteAck: 'HTTP 400' });
      expect(rejected.ok || rejected.error).toContain('body matches --reject-pattern');
    } finally {
      await sender.close();
    }

    const lines = readRecords<HttpSinkRecord>(record);
    expect(lines).toEqual([
      {
        at: expect.any(String),
        seq: 1,
        method: 'POST',
        path: '/events',
        headers: {
          'content-type': 'application/json',
          'idempotency-key': 'delivery-1',
          'x-delivery-id': 'delivery-1',
        },
        status: 200,
        body: '{"type":"patient.created","id":"ev-1","euid":"E1"}',
      },
      expect.objectContaining({ seq: 2, status: 400 }),
    ]);
    await expect(sink.stop()).resolves.toBe(0);
    expect(sink.stdout()).toMatch(/^\S+ #1 POST \/events 200 type=patient\.created id=ev-1$/m);
    expect(sink.stdout()).toMatch(/^\S+ #2 POST \/events 400 type=patient\.merged$/m);
  });

  it('answers 503 with --fail-rate 1 and the --status given otherwise', async () => {
    const failing = await startSink('sink-http.ts', ['--fail-rate', '1', '--quiet']);
    const configured = await startSink('sink-http.ts', ['--status', '404', '--quiet']);
    const a = new HttpSender({ url: `http://127.0.0.1:${failing.port}/`, timeoutMs: 10_000 });
    const b = new HttpSender({ url: `http://127.0.0.1:${configured.port}/x`, timeoutMs: 10_000 });
    try {
      await expect(a.send(json({ type: 'x' }), 'd1')).resolves.toMatchObject({
        ok: false,
        retry: true,
        remoteAck: 'HTTP 503',
      });
      await expect(b.send(json({ type: 'x' }), 'd1')).resolves.toMatchObject({
        ok: false,
        retry: false,
        remoteAck: 'HTTP 404',
      });
    } finally {
      await a.close();
      await b.close();
    }
    await expect(failing.stop()).resolves.toBe(0);
    await expect(configured.stop()).resolves.toBe(0);
  });
});
