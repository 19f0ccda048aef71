import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildAck, encodeMllp, MllpDecoder, parseMessage, splitMessages } from '@engine/hl7';
import { run, type CliIo } from '../hl7';
import { type Summary } from './generate';

function captureIo(): CliIo & { stdout: string; stderr: string } {
  const io = {
    stdout: '',
    stderr: '',
    out: (text: string) => {
      io.stdout += text;
    },
    err: (text: string) => {
      io.stderr += text;
    },
  };
  return io;
}

/** Every file of a directory tree, relative path → bytes. */
function readTree(dir: string, prefix = ''): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const rel = `${prefix}${entry.name}`;
    if (entry.isDirectory()) {
      for (const [k, v] of readTree(join(dir, entry.name), `${rel}/`)) {
        out.set(k, v);
      }
    } else {
      out.set(rel, readFileSync(join(dir, entry.name)));
    }
  }
  return out;
}

describe('hl7 generate', () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'hl7-generate-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const generate = async (
    out: string,
    ...extra: string[]
  ): Promise<CliIo & { stdout: string; stderr: string; code: number }> => {
    const io = captureIo();
    const code = await run(
      ['generate', '--people', '200', '--duplicate-rate', '0.2', '--out', out, ...extra],
      io,
    );
    return Object.assign(io, { code });
  };

  it('writes messages, truth, duplicates and summary, and prints one summary line', async () => {
    const out = join(dir, 'a');
    const io = await generate(out, '--seed', 's1', '--mllp', '--split');
    expect(io.stderr).toBe('');
    expect(io.code).toBe(0);
    expect(io.stdout).toMatch(
      new RegExp(
        `^generated 200 people, \\d+ records, \\d+ messages in [\\d.]+ s \\(duplicates: 40 people, .*\\) -> ${out}\\n$`,
      ),
    );
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as Summary;
    expect(summary).toMatchObject({ seed: 's1', people: 200, duplicates: { people: 40 } });

    const file = readFileSync(join(out, 'messages.hl7'));
    const messages = splitMessages(file);
    expect(messages).toHaveLength(summary.messages);
    // `\r` after each segment, a blank line between messages.
    expect(file.toString('latin1')).toMatch(/^MSH\|[^\n]*\r\n\nMSH\|/);
    const split = readdirSync(join(out, 'messages')).sort();
    expect(split).toHaveLength(summary.messages);
    expect(split[0]).toBe('000001.hl7');
    const frames: Buffer[] = [];
    for (const event of new MllpDecoder().push(readFileSync(join(out, 'messages.mllp')))) {
      if (event.type === 'frame') {
        frames.push(event.payload);
      }
    }
    expect(frames).toHaveLength(summary.messages);
    messages.forEach((m, i) => {
      const text = m.toString('latin1').replace(/\r\n$/, '\r');
      expect(readFileSync(join(out, 'messages', split[i])).toString('latin1')).toBe(text);
      expect(frames[i].toString('latin1')).toBe(text);
    });

    const truth = readFileSync(join(out, 'truth.csv'), 'utf8').trim().split('\n');
    expect(truth[0]).toBe('authority,mrn,person_id,kind');
    expect(truth).toHaveLength(summary.records + 1);
    const keys = new Set(truth.slice(1).map((l) => l.split(',').slice(0, 2).join('|')));
    for (const m of messages) {
      const msg = parseMessage(m);
      expect(keys.has(`${msg.get('PID-3.4')}|${msg.get('PID-3.1')}`)).toBe(true);
    }
    expect(readFileSync(join(out, 'duplicates.csv'), 'utf8').trim().split('\n')).toHaveLength(
      summary.duplicates.records + 1,
    );
  });

  it('writes the same bytes for the same seed and options, other bytes for another seed', async () => {
    await generate(join(dir, 'a'), '--seed', 'x');
    await generate(join(dir, 'b'), '--seed', 'x');
    await generate(join(dir, 'c'), '--seed', 'y');
    const a = readTree(join(dir, 'a'));
    const b = readTree(join(dir, 'b'));
    expect([...a.keys()].sort()).toEqual([
      'duplicates.csv',
      'messages.hl7',
      'summary.json',
      'truth.csv',
    ]);
    for (const [name, bytes] of a) {
      expect([name, bytes.equals(b.get(name) as Buffer)]).toEqual([name, true]);
    }
    const c = readTree(join(dir, 'c'));
    expect(c.get('messages.hl7')?.equals(a.get('messages.hl7') as Buffer)).toBe(false);
  });

  it('honours --authorities and the rates', async () => {
    const out = join(dir, 'a');
    const io = await generate(
      out,
      '--authorities',
      'NORTH,SOUTH',
      '--twins-rate',
      '0.1',
      '--junior-senior-rate',
      '0.1',
      '--common-name-rate',
      '0.1',
      '--same-authority-rate',
      '0',
      '--messages-per-person',
      '1',
    );
    expect(io.code).toBe(0);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as Summary;
    expect(Object.keys(summary.authorities)).toEqual(['NORTH', 'SOUTH']);
    expect(summary.hardNegatives).toEqual({
      twinPairs: 10,
      juniorSeniorPairs: 10,
      commonNamePeople: 20,
    });
    expect(summary.duplicates.sameAuthority).toBe(0);
    expect(summary.messages).toBe(summary.records);
    expect(summary.triggers.A08).toBe(0);
    const truth = readFileSync(join(out, 'truth.csv'), 'utf8');
    expect(truth.match(/,twin\n/g)).toHaveLength(
      summary.hardNegatives.twinPairs * 2 + countDup(truth, 'twin'),
    );
  });

  it('writes a feed that `send` delivers over MLLP', async () => {
    const out = join(dir, 'a');
    expect((await generate(out)).code).toBe(0);
    const received: string[] = [];
    const server = net.createServer((socket) => {
      const decoder = new MllpDecoder();
      socket.on('data', (chunk: Buffer) => {
        for (const event of decoder.push(chunk)) {
          if (event.type === 'frame') {
            const msg = parseMessage(event.payload);
            received.push(msg.controlId);
            socket.write(encodeMllp(buildAck(msg, { code: 'AA' }).toBuffer()));
          }
        }
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const io = captureIo();
      const port = String((server.address() as net.AddressInfo).port);
      const code = await run(['send', join(out, 'messages.hl7'), '--port', port], io);
      expect(io.stderr).toBe('');
      expect(code).toBe(0);
      const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as Summary;
      expect(received).toHaveLength(summary.messages);
      expect(io.stdout.trim().split('\n')).toHaveLength(summary.messages);
      expect(new Set(received).size).toBe(received.length);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('reports progress on stderr for large runs', async () => {
    const io = captureIo();
    const out = join(dir, 'big');
    const code = await run(['generate', '--people', '20001', '--out', out], io);
    expect(code).toBe(0);
    expect(io.stderr).toContain('generate: planning 20001 people\n');
    expect(io.stderr).toMatch(/generate: writing \d+ messages to /);
    expect(io.stderr).toMatch(/generate: 50% \(\d+\/\d+ messages\)/);
    expect(io.stdout.trim().split('\n')).toHaveLength(1);
  });

  it.each([
    [['generate'], /required option '--people <n>' not specified/],
    [['generate', '--people', '0'], /expected a positive integer/],
    [['generate', '--people', '9999999'], /expected at most 5000000/],
    [['generate', '--people', '10', '--duplicate-rate', '1.5'], /expected a rate between 0 and 1/],
    [['generate', '--people', '10', '--twins-rate', '-1'], /expected a rate between 0 and 1/],
    [['generate', '--people', '10', '--authorities', 'A,A'], /expected distinct/],
    [['generate', '--people', '10', '--authorities', 'A|B'], /expected distinct/],
    [['generate', '--people', '10', '--messages-per-person', '0.5'], /expected a number from 1/],
    [
      ['generate', '--people', '10', '--twins-rate', '0.6', '--common-name-rate', '0.6'],
      /add up to more than 1/,
    ],
  ])('exits 2 on usage error %j', async (argv, message) => {
    const io = captureIo();
    expect(await run([...argv, '--out', join(dir, 'x')], io)).toBe(2);
    expect(io.stderr).toMatch(message);
  });

  it('exits 1 when the output directory cannot be written', async () => {
    const io = captureIo();
    const file = join(dir, 'file');
    await generate(file);
    const code = await run(
      ['generate', '--people', '5', '--out', join(file, 'summary.json', 'x')],
      io,
    );
    expect(code).toBe(1);
    expect(io.stderr).toMatch(/cannot write .*: (ENOTDIR|EEXIST)/);
  });

  it('prints help with exit 0', async () => {
    const io = captureIo();
    expect(await run(['generate', '--help'], io)).toBe(0);
    expect(io.stdout).toContain('--duplicate-rate <rate>');
    expect(io.stdout).toContain('--messages-per-person <m>');
  });
});

/** Twin rows beyond each twin's first record (duplicates of twins). */
function countDup(truth: string, kind: string): number {
  const people = truth
    .split('\n')
    .filter((l) => l.endsWith(`,${kind}`))
    .map((l) => l.split(',')[2]);
  return people.length - new Set(people).size;
}
