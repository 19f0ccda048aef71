import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Client, Message } from 'node-hl7-client';
import { MessageRepository } from '@engine/store';
import { startTestEngine, type TestEngine } from './support/engine';
import { adt, oru } from './support/messages';

const run = promisify(execFile);
const MLLP_SEND = '/usr/bin/mllp_send';

describe('third-party MLLP clients against the gateway', () => {
  let engine: TestEngine;

  beforeAll(async () => {
    engine = await startTestEngine();
  });
  afterAll(async () => {
    await engine.close();
  });

  it('node-hl7-client 3.2.0 sends ADT and ORU and receives AA for each', async () => {
    const client = new Client({ host: '127.0.0.1' });
    const acks: string[] = [];
    let onAck: (() => void) | undefined;
    const conn = client.createConnection({ port: engine.port(), waitAck: true }, (res) => {
      const m = res.getMessage();
      acks.push(`${m.get('MSA.1').toString()}|${m.get('MSA.2').toString()}`);
      onAck?.();
    });
    // node-hl7-client 3.2.0 busy-waits (blocking the event loop) when sendMessage is called
    // before the socket is connected or while an ACK is awaited: send one at a time.
    await new Promise<void>((resolve) => conn.once('connect', () => resolve()));
    try {
      for (const text of [
        adt({ controlId: 'NHC-1' }),
        adt({ controlId: 'NHC-2', trigger: 'A08' }),
        oru({ controlId: 'NHC-3' }),
      ]) {
        const acked = new Promise<void>((resolve) => (onAck = resolve));
        await conn.sendMessage(new Message({ text }));
        await acked;
      }
    } finally {
      await conn.close();
    }
    expect(acks).toEqual(['AA|NHC-1', 'AA|NHC-2', 'AA|NHC-3']);
    const repo = engine.app.get(MessageRepository);
    for (const id of ['NHC-1', 'NHC-2', 'NHC-3']) {
      expect((await repo.search({ controlId: id })).items).toHaveLength(1);
    }
  });

  it('mllp_send (python3-hl7) sends a file and prints the AA', async () => {
    expect(existsSync(MLLP_SEND)).toBe(true); // apt-get install python3-hl7 (.ci/run does)
    const dir = mkdtempSync(join(tmpdir(), 'mllp-send-'));
    const file = join(dir, 'adt.hl7');
    // An analyst's file: segments on separate lines (--loose accepts \n and \r\n).
    writeFileSync(file, adt({ controlId: 'PYHL7-1' }).replace(/\r/g, '\n'));
    const { stdout } = await run(MLLP_SEND, [
      '--loose',
      '--file',
      file,
      '--port',
      String(engine.port()),
      '127.0.0.1',
    ]);
    expect(stdout).toMatch(/MSA\|AA\|PYHL7-1/);
    const repo = engine.app.get(MessageRepository);
    expect((await repo.search({ controlId: 'PYHL7-1' })).items).toHaveLength(1);
  });
});
