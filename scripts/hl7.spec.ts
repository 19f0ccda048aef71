import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { encodeMllp, MllpDecoder } from '../libs/hl7/src/mllp';
import { run, type CliIo } from './hl7';

const msg = (id: string, extra = ''): string =>
  `MSH|^~\\&|LAB|HOSP|ENGINE|HOSP|20240101120000||ADT^A01|${id}|P|2.5.1\rPID|1||123^^^HOSP^MR||DOE^JANE${extra}\r`;

type Responder = (payload: Buffer) => string | null;

const ackFor =
  (code: string, errText?: string): Responder =>
  (payload) => {
    const id = payload.toString('latin1').split('\r')[0].split('|')[9];
    let ack = `MSH|^~\\&|ENGINE|HOSP|LAB|HOSP|20240101120001||ACK^A01^ACK|A${id}|P|2.5.1\rMSA|${code}|${id}\r`;
    if (errText) {
      ack += `ERR||PID^1^5|101^${errText}^HL70357|E\r`;
    }
    return ack;
  };

interface TinyServer {
  port: number;
  received: Buffer[];
  connections: number;
  close(): Promise<void>;
}

/** A tiny MLLP server on port 0; `respond` returns the ACK text or null (no answer). */
async function startServer(
  respond: Responder,
  secure?: { key: Buffer; cert: Buffer },
): Promise<TinyServer> {
  const received: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const state = { connections: 0 };
  const onConnection = (socket: net.Socket): void => {
    state.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    const decoder = new MllpDecoder();
    socket.on('data', (chunk: Buffer) => {
      for (const event of decoder.push(chunk)) {
        if (event.type === 'frame') {
          received.push(event.payload);
          const ack = respond(event.payload);
          if (ack !== null) {
            socket.write(encodeMllp(ack));
          }
        }
      }
    });
  };
  const server = secure ? tls.createServer(secure, onConnection) : net.createServer(onConnection);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    received,
    get connections() {
      return state.connections;
    },
    close: async () => {
      for (const s of sockets) {
        s.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

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

describe('hl7 send', () => {
  let dir: string;
  let server: TinyServer | undefined;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'hl7-cli-'));
  });
  afterEach(async () => {
    await server?.close();
    server = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  const file = (name: string, content: string | Buffer): string => {
    const path = join(dir, name);
    writeFileSync(path, content);
    return path;
  };

  it('sends single, blank-line separated and batch files over one connection; exit 0 on AA', async () => {
    server = await startServer(ackFor('AA'));
    const one = file('one.hl7', msg('M1'));
    const many = file(
      'many.hl7',
      `${msg('M2')}\n${msg('M3')}\n\n${msg('M4')}`.replace(/\r/g, '\n'),
    );
    const batch = file(
      'batch.hl7',
      `FHS|^~\\&|LAB\rBHS|^~\\&|LAB\r${msg('B1')}${msg('B2')}BTS|2\rFTS|1\r`,
    );
    const io = captureIo();
    const code = await run(['send', one, many, batch, '--port', String(server.port)], io);
    expect(io.stderr).toBe('');
    expect(code).toBe(0);
    expect(io.stdout.trim().split('\n')).toEqual([
      `${one} #1 MSH-10=M1 MSA-1=AA MSA-2=M1`,
      `${many} #1 MSH-10=M2 MSA-1=AA MSA-2=M2`,
      `${many} #2 MSH-10=M3 MSA-1=AA MSA-2=M3`,
      `${many} #3 MSH-10=M4 MSA-1=AA MSA-2=M4`,
      `${batch} #1 MSH-10=B1 MSA-1=AA MSA-2=B1`,
      `${batch} #2 MSH-10=B2 MSA-1=AA MSA-2=B2`,
    ]);
    expect(server.connections).toBe(1);
    // LF line ends were sent as CR segment terminators, envelopes dropped.
    expect(server.received.map((b) => b.toString('latin1'))).toEqual(
      ['M1', 'M2', 'M3', 'M4', 'B1', 'B2'].map((id) => msg(id)),
    );
    // No patient data in the output.
    expect(io.stdout).not.toContain('DOE');
  });

  it('--as-batch sends a batch file as one frame and prints each ACK of the batch answer', async () => {
    // Answers a batch with a batch of ACKs: AA for B1, AR for B2.
    server = await startServer((payload) => {
      const ids = payload
        .toString('latin1')
        .split('\r')
        .filter((l) => l.startsWith('MSH|'))
        .map((l) => l.split('|')[9]);
      const acks = ids.map(
        (id, i) =>
          `MSH|^~\\&|ENGINE|HOSP|LAB|HOSP|20240101120001||ACK^A01^ACK|A${id}|P|2.5.1\rMSA|${i === 0 ? 'AA' : 'AR'}|${id}\r`,
      );
      return `BHS|^~\\&|ENGINE|HOSP|LAB|HOSP\r${acks.join('')}BTS|${acks.length}\r`;
    });
    const batch = file('batch.hl7', `BHS|^~\\&|LAB\r${msg('B1')}${msg('B2')}BTS|2\r`);
    const io = captureIo();
    const code = await run(['send', batch, '--as-batch', '--port', String(server.port)], io);
    expect(code).toBe(1);
    expect(io.stdout.trim().split('\n')).toEqual([
      `${batch} #1 MSH-10=B1 MSA-1=AA MSA-2=B1`,
      `${batch} #2 MSH-10=B2 MSA-1=AR MSA-2=B2`,
    ]);
    // One frame: the whole batch, envelope included.
    expect(server.received).toHaveLength(1);
    expect(server.received[0].toString('latin1')).toBe(
      `BHS|^~\\&|LAB\r${msg('B1')}${msg('B2')}BTS|2\r`,
    );
  });

  it('--as-batch matches ACKs by MSA-2 when the answer leaves some out', async () => {
    server = await startServer(
      () =>
        'BHS|^~\\&|ENGINE|HOSP|LAB|HOSP\r' +
        'MSH|^~\\&|ENGINE|HOSP|LAB|HOSP|20240101120001||ACK^A01^ACK|AB2|P|2.5.1\rMSA|AE|B2\r' +
        'BTS|1\r',
    );
    const batch = file('batch.hl7', `BHS|^~\\&|LAB\r${msg('B1')}${msg('B2')}BTS|2\r`);
    const io = captureIo();
    expect(await run(['send', batch, '--as-batch', '--port', String(server.port)], io)).toBe(1);
    expect(io.stdout.trim().split('\n')).toEqual([
      `${batch} #2 MSH-10=B2 MSA-1=AE MSA-2=B2`,
      `${batch} batch: 2 message(s) sent, 1 ACK(s) in the answer`,
    ]);
  });

  it('--as-batch: a single ACK to a whole batch never counts as accepted', async () => {
    server = await startServer(ackFor('AA'));
    const batch = file('batch.hl7', `BHS|^~\\&|LAB\r${msg('B1')}BTS|1\r`);
    const io = captureIo();
    expect(await run(['send', batch, '--as-batch', '--port', String(server.port)], io)).toBe(1);
    expect(io.stdout).toContain(`${batch} batch of 1 MSA-1=AA`);
  });

  it('sends bytes unchanged (non-UTF-8) and with --raw keeps line ends', async () => {
    server = await startServer(ackFor('AA'));
    const latin1 = Buffer.from(msg('L1', '^Müller'), 'latin1');
    const path = file('latin1.hl7', latin1);
    const io = captureIo();
    expect(await run(['send', path, '--port', String(server.port), '--raw'], io)).toBe(0);
    expect(server.received[0].equals(latin1)).toBe(true);
  });

  it('exits 1 and prints the ERR text when the receiver answers AE', async () => {
    server = await startServer(ackFor('AE', 'Required field missing'));
    const io = captureIo();
    const code = await run(['send', file('a.hl7', msg('E1')), '--port', String(server.port)], io);
    expect(code).toBe(1);
    expect(io.stdout).toContain('MSH-10=E1 MSA-1=AE MSA-2=E1 ERR="Required field missing"');
  });

  it('exits 1 on an ACK timeout and reconnects for the next message', async () => {
    let n = 0;
    server = await startServer((payload) => (n++ === 0 ? null : ackFor('AA')(payload)));
    const io = captureIo();
    const path = file('two.hl7', `${msg('T1')}\r\n${msg('T2')}`);
    const code = await run(['send', path, '--port', String(server.port), '--timeout', '300'], io);
    expect(code).toBe(1);
    const lines = io.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/#1 MSH-10=T1 TIMEOUT/);
    expect(lines[1]).toBe(`${path} #2 MSH-10=T2 MSA-1=AA MSA-2=T2`);
    expect(server.connections).toBe(2);
  });

  it('exits 1 when it cannot connect', async () => {
    const closed = await startServer(ackFor('AA'));
    const port = closed.port;
    await closed.close();
    const io = captureIo();
    expect(await run(['send', file('a.hl7', msg('C1')), '--port', String(port)], io)).toBe(1);
    expect(io.stderr).toMatch(/cannot connect to 127\.0\.0\.1:\d+: .*ECONNREFUSED/);
  });

  it.each([
    [['send', '/nonexistent/x.hl7'], /cannot read \/nonexistent\/x\.hl7: ENOENT/],
    [['send'], /missing required argument 'files'/],
    [['send', 'x.hl7', '--port', 'abc'], /expected a TCP port/],
    [['send', 'x.hl7', '--timeout', '0'], /expected a positive integer/],
    [['send', 'x.hl7', '--bogus'], /unknown option '--bogus'/],
    [['frobnicate'], /unknown command 'frobnicate'/],
    [[], /Usage: hl7/],
  ])('exits 2 on usage error %j', async (argv, message) => {
    const io = captureIo();
    expect(await run(argv, io)).toBe(2);
    expect(io.stderr).toMatch(message);
  });

  it('exits 2 for a file without messages', async () => {
    const io = captureIo();
    expect(await run(['send', file('empty.hl7', '\n\n')], io)).toBe(2);
    expect(io.stderr).toMatch(/no HL7 message in/);
  });

  it('prints help with exit 0', async () => {
    const io = captureIo();
    expect(await run(['send', '--help'], io)).toBe(0);
    expect(io.stdout).toContain('--timeout <ms>');
  });

  it('sends over TLS, verifying the server with --ca', async () => {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    // Subject/SAN for localhost so hostname verification passes.
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost',
      ],
      { stdio: 'ignore' },
    );
    server = await startServer(ackFor('AA'), { key: readFileSync(key), cert: readFileSync(cert) });
    const path = file('tls.hl7', msg('S1'));
    const io = captureIo();
    const args = ['send', path, '--host', 'localhost', '--port', String(server.port)];
    expect(await run([...args, '--tls', '--ca', cert], io)).toBe(0);
    expect(io.stdout).toContain('MSH-10=S1 MSA-1=AA MSA-2=S1');
    // Without the CA the self-signed certificate is refused.
    const refused = captureIo();
    expect(await run([...args, '--tls', '--timeout', '2000'], refused)).toBe(1);
    expect(refused.stderr).toMatch(/cannot connect/);
  });
});
