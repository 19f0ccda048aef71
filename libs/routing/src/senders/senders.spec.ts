import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import {
  type AckCode,
  type AckOptions,
  buildAck,
  createMessage,
  encodeMllp,
  type Hl7Message,
  MllpDecoder,
  parseMessage,
} from '@engine/hl7';
import { makeTestPki, type TestPki } from '../../../../test/support/certs';
import { type Rendered } from '../types';
import { MAX_RETRY_AFTER_MS, parseRetryAfter } from './http-sender';
import {
  createSender,
  FileSender,
  HttpSender,
  type HttpSenderConfig,
  MllpSender,
  type MllpSenderConfig,
} from './index';

// ---------------------------------------------------------------------------------------------
// helpers

function hl7(controlId: string): Rendered {
  const msg = createMessage({
    messageType: 'ADT^A01^ADT_A01',
    controlId,
    sendingApplication: 'ENGINE',
    receivingApplication: 'RECEIVER',
  });
  msg.setRaw('PID-3', 'MRN1^^^HOSP^MR');
  return {
    body: msg.toBuffer(),
    contentType: 'application/hl7-v2',
    extension: 'hl7',
    controlId,
  };
}

/** What the test server does with one received message. */
type Answer =
  | { ack: AckCode; options?: Omit<AckOptions, 'code'>; controlId?: string }
  | { raw: Buffer }
  | 'silent'
  | 'close';

interface MllpTestServer {
  port: number;
  /** Connections accepted so far. */
  connections: number;
  /** Connections open now. */
  open: Set<net.Socket>;
  /** Control ids received, in order. */
  received: string[];
  /** Set when a message arrived on a socket that still owed an ACK. */
  overlapped: boolean;
  /** Resolves when the next server-side socket closes. */
  nextClose(): Promise<void>;
  close(): Promise<void>;
}

type Handler = (msg: Hl7Message, socket: net.Socket) => Answer | Promise<Answer>;

async function startMllpServer(handler: Handler, secure?: tls.TlsOptions): Promise<MllpTestServer> {
  const closeWaiters: Array<() => void> = [];
  const state: MllpTestServer = {
    port: 0,
    connections: 0,
    open: new Set(),
    received: [],
    overlapped: false,
    nextClose: () => new Promise<void>((resolve) => closeWaiters.push(resolve)),
    close: async () => {
      for (const s of state.open) {
        s.destroy();
      }
      server.close();
      await once(server, 'close');
    },
  };
  const onSocket = (socket: net.Socket): void => {
    state.connections++;
    state.open.add(socket);
    const decoder = new MllpDecoder();
    let owed = 0;
    socket.on('error', () => undefined);
    socket.on('close', () => {
      state.open.delete(socket);
      for (const w of closeWaiters.splice(0)) {
        w();
      }
    });
    socket.on('data', (chunk: Buffer) => {
      for (const ev of decoder.push(chunk)) {
        if (ev.type !== 'frame') {
          continue;
        }
        const msg = parseMessage(ev.payload);
        state.received.push(msg.controlId);
        if (owed > 0) {
          state.overlapped = true;
        }
        owed++;
        void Promise.resolve(handler(msg, socket)).then((answer) => {
          if (answer === 'silent') {
            return;
          }
          if (answer === 'close') {
            socket.destroy();
            return;
          }
          owed--;
          if ('raw' in answer) {
            socket.write(answer.raw);
            return;
          }
          const ack = buildAck(msg, { code: answer.ack, ...answer.options });
          if (answer.controlId !== undefined) {
            ack.set('MSA-2', answer.controlId);
          }
          socket.write(encodeMllp(ack.toBuffer()));
        });
      }
    });
  };
  const server: net.Server =
    secure === undefined
      ? net.createServer(onSocket)
      : tls.createServer(secure, onSocket).on('tlsClientError', () => undefined);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  state.port = (server.address() as net.AddressInfo).port;
  return state;
}

function mllpConfig(port: number, extra: Partial<MllpSenderConfig> = {}): MllpSenderConfig {
  return {
    host: '127.0.0.1',
    port,
    connections: 1,
    checkControlId: true,
    timeoutMs: 5000,
    ...extra,
  };
}

/** A port nothing listens on (bound then released). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  server.close();
  await once(server, 'close');
  return port;
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

let pki: TestPki;

beforeAll(() => {
  pki = makeTestPki();
});

afterAll(() => {
  rmSync(pki.dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// MLLP

describe('MllpSender', () => {
  let server: MllpTestServer | undefined;
  let sender: MllpSender | undefined;

  afterEach(async () => {
    await sender?.close();
    await server?.close();
    sender = undefined;
    server = undefined;
  });

  it('delivers on AA and keeps the connection open for the next message', async () => {
    server = await startMllpServer(() => ({ ack: 'AA' }));
    sender = new MllpSender(mllpConfig(server.port));
    await expect(sender.send(hl7('C1'), 'd1')).resolves.toEqual({ ok: true, remoteAck: 'AA' });
    await expect(sender.send(hl7('C2'), 'd2')).resolves.toEqual({ ok: true, remoteAck: 'AA' });
    expect(server.received).toEqual(['C1', 'C2']);
    expect(server.connections).toBe(1);
    expect(sender.openConnections).toBe(1);
  });

  it('delivers on CA (enhanced mode)', async () => {
    server = await startMllpServer(() => ({ ack: 'CA' }));
    sender = new MllpSender(mllpConfig(server.port));
    await expect(sender.send(hl7('C1'), 'd1')).resolves.toEqual({ ok: true, remoteAck: 'CA' });
  });

  it('fails permanently on AE, with the receiver’s error text', async () => {
    server = await startMllpServer(() => ({
      ack: 'AE',
      options: { error: { code: 101, text: 'PID-8 is required', location: 'PID-8' } },
    }));
    sender = new MllpSender(mllpConfig(server.port));
    const outcome = await sender.send(hl7('C1'), 'd1');
    expect(outcome).toEqual({
      ok: false,
      retry: false,
      remoteAck: 'AE',
      error: 'remote AE: PID-8 is required',
    });
    // the connection stays usable
    expect(sender.openConnections).toBe(1);
  });

  it('prefers MSA-3 for the AE text, and fails permanently on CE', async () => {
    server = await startMllpServer(() => ({ ack: 'CE', options: { text: 'unknown patient' } }));
    sender = new MllpSender(mllpConfig(server.port));
    await expect(sender.send(hl7('C1'), 'd1')).resolves.toEqual({
      ok: false,
      retry: false,
      remoteAck: 'CE',
      error: 'remote CE: unknown patient',
    });
  });

  it('asks for a retry on AR and CR', async () => {
    const codes: AckCode[] = ['AR', 'CR'];
    server = await startMllpServer(() => ({
      ack: codes.shift() ?? 'AA',
      options: { text: 'busy' },
    }));
    sender = new MllpSender(mllpConfig(server.port));
    await expect(sender.send(hl7('C1'), 'd1')).resolves.toEqual({
      ok: false,
      retry: true,
      remoteAck: 'AR',
      error: 'remote AR: busy',
    });
    await expect(sender.send(hl7('C2'), 'd2')).resolves.toMatchObject({
      ok: false,
      retry: true,
      remoteAck: 'CR',
    });
    await expect(sender.send(hl7('C3'), 'd3')).resolves.toEqual({ ok: true, remoteAck: 'AA' });
  });

  it('drops the connection and retries when MSA-2 does not echo MSH-10', async () => {
    let first = true;
    server = await startMllpServer(() => {
      const answer: Answer = first ? { ack: 'AA', controlId: 'SOMETHING-ELSE' } : { ack: 'AA' };
      first = false;
      return answer;
    });
    sender = new MllpSender(mllpConfig(server.port));
    const closed = server.nextClose();
    const outcome = await sender.send(hl7('C1'), 'd1');
    expect(outcome).toMatchObject({ ok: false, retry: true, remoteAck: 'AA' });
    expect(outcome.ok || outcome.error).toMatch(/out of step.*SOMETHING-ELSE.*C1/);
    await closed;
    await expect(sender.send(hl7('C1'), 'd1')).resolves.toEqual({ ok: true, remoteAck: 'AA' });
    expect(server.connections).toBe(2);
  });

  it('accepts a mismatched MSA-2 when checkControlId is off', async () => {
    server = await startMllpServer(() => ({ ack: 'AA', controlId: 'OTHER' }));
    sender = new MllpSender(mllpConfig(server.port, { checkControlId: false }));
    await expect(sender.send(hl7('C1'), 'd1')).resolves.toEqual({ ok: true, remoteAck: 'AA' });
  });

  it('times out when the receiver never answers, and closes that connection', async () => {
    server = await startMllpServer(() => 'silent');
    sender = new MllpSender(mllpConfig(server.port, { timeoutMs: 300 }));
    const closed = server.nextClose();
    const outcome = await sender.send(hl7('C1'), 'd1');
    expect(outcome).toEqual({
      ok: false,
      retry: true,
      error: `timeout: no ACK from 127.0.0.1:${server.port} within 300 ms`,
    });
    await closed;
    expect(sender.openConnections).toBe(0);
  });

  it('asks for a retry when the connection is refused, naming the address', async () => {
    const port = await freePort();
    sender = new MllpSender(mllpConfig(port));
    await expect(sender.send(hl7('C1'), 'd1')).resolves.toEqual({
      ok: false,
      retry: true,
      error: `connect ECONNREFUSED 127.0.0.1:${port}`,
    });
  });

  it('asks for a retry when the receiver closes without answering', async () => {
    server = await startMllpServer(() => 'close');
    sender = new MllpSender(mllpConfig(server.port));
    const outcome = await sender.send(hl7('C1'), 'd1');
    expect(outcome).toMatchObject({ ok: false, retry: true });
    expect(outcome.ok || outcome.error).toMatch(
      /closed by 127\.0\.0\.1:\d+ before the ACK|ECONNRESET/,
    );
  });

  it('asks for a retry on an answer that is not an ACK, and drops the connection', async () => {
    server = await startMllpServer(() => ({ raw: encodeMllp('this is not HL7') }));
    sender = new MllpSender(mllpConfig(server.port));
    const closed = server.nextClose();
    const outcome = await sender.send(hl7('C1'), 'd1');
    expect(outcome).toMatchObject({ ok: false, retry: true });
    expect(outcome.ok || outcome.error).toMatch(/unreadable answer/);
    await closed;
  });

  it('reconnects when the receiver closed an idle connection', async () => {
    server = await startMllpServer(() => ({ ack: 'AA' }));
    sender = new MllpSender(mllpConfig(server.port));
    await expect(sender.send(hl7('C1'), 'd1')).resolves.toMatchObject({ ok: true });
    for (const s of server.open) {
      s.end();
    }
    const s = sender;
    await waitFor(() => s.openConnections === 0, 'the sender to see the close');
    await expect(sender.send(hl7('C2'), 'd2')).resolves.toEqual({ ok: true, remoteAck: 'AA' });
    expect(server.connections).toBe(2);
  });

  it('resends once on a fresh connection when a reused one is closed before the ACK', async () => {
    // The receiver drops its first connection on the second message without answering (as
    // when its idle timer fires while we write); the message then goes out on a new one.
    let n = 0;
    server = await startMllpServer(() => (++n === 2 ? 'close' : { ack: 'AA' }));
    sender = new MllpSender(mllpConfig(server.port));
    await expect(sender.send(hl7('C1'), 'd1')).resolves.toMatchObject({ ok: true });
    await expect(sender.send(hl7('C2'), 'd2')).resolves.toEqual({ ok: true, remoteAck: 'AA' });
    expect(server.received).toEqual(['C1', 'C2', 'C2']);
    expect(server.connections).toBe(2);
  });

  it('uses up to `connections` sockets concurrently, one message at a time on each', async () => {
    // Hold the ACKs until two messages are in flight, so the pool must use both sockets.
    const held: Array<() => void> = [];
    server = await startMllpServer(
      () =>
        new Promise<Answer>((resolve) => {
          held.push(() => resolve({ ack: 'AA' }));
          if (held.length >= 2) {
            for (const release of held.splice(0)) {
              release();
            }
          }
        }),
    );
    sender = new MllpSender(mllpConfig(server.port, { connections: 2 }));
    const outcomes = await Promise.all(
      ['C1', 'C2', 'C3', 'C4'].map((id) => (sender as MllpSender).send(hl7(id), id)),
    );
    expect(outcomes.every((o) => o.ok)).toBe(true);
    expect(server.connections).toBe(2);
    expect(server.overlapped).toBe(false);
    expect([...server.received].sort()).toEqual(['C1', 'C2', 'C3', 'C4']);
  });

  it('refuses to frame a body that contains MLLP control bytes (permanent)', async () => {
    sender = new MllpSender(mllpConfig(await freePort()));
    const item = { ...hl7('C1'), body: Buffer.from('MSH|^~\\&|\x0bX\r') };
    await expect(sender.send(item, 'd1')).resolves.toMatchObject({ ok: false, retry: false });
  });

  it('answers "sender closed" after close()', async () => {
    server = await startMllpServer(() => ({ ack: 'AA' }));
    sender = new MllpSender(mllpConfig(server.port));
    await sender.send(hl7('C1'), 'd1');
    const closed = server.nextClose();
    await sender.close();
    await closed;
    await expect(sender.send(hl7('C2'), 'd2')).resolves.toEqual({
      ok: false,
      retry: true,
      error: 'sender closed',
    });
  });

  describe('over TLS', () => {
    const secure = (): tls.TlsOptions => ({
      cert: readFileSync(pki.serverCert),
      key: readFileSync(pki.serverKey),
      ca: readFileSync(pki.ca),
      requestCert: true,
      rejectUnauthorized: true,
    });

    it('delivers to a server whose certificate the CA signed, with a client certificate', async () => {
      server = await startMllpServer(() => ({ ack: 'AA' }), secure());
      sender = new MllpSender(
        mllpConfig(server.port, {
          tls: {
            ca: pki.ca,
            cert: pki.clientCert,
            key: pki.clientKey,
            servername: 'localhost',
            rejectUnauthorized: true,
          },
        }),
      );
      await expect(sender.send(hl7('T1'), 'd1')).resolves.toEqual({ ok: true, remoteAck: 'AA' });
      await expect(sender.send(hl7('T2'), 'd2')).resolves.toEqual({ ok: true, remoteAck: 'AA' });
      expect(server.connections).toBe(1);
    });

    it('asks for a retry when the server certificate does not verify', async () => {
      server = await startMllpServer(() => ({ ack: 'AA' }), secure());
      sender = new MllpSender(
        mllpConfig(server.port, {
          tls: { cert: pki.clientCert, key: pki.clientKey, rejectUnauthorized: true },
        }),
      );
      const outcome = await sender.send(hl7('T1'), 'd1');
      expect(outcome).toMatchObject({ ok: false, retry: true });
      expect(outcome.ok || outcome.error).toMatch(/^TLS handshake with 127\.0\.0\.1:\d+ failed: /);
      expect(server.received).toEqual([]);
    });

    it('fails fast at construction when a TLS file cannot be read', () => {
      expect(
        () =>
          new MllpSender(
            mllpConfig(1, { tls: { ca: join(pki.dir, 'missing.crt'), rejectUnauthorized: true } }),
          ),
      ).toThrow(/cannot read TLS CA file .*missing\.crt: ENOENT/);
    });
  });
});

// ---------------------------------------------------------------------------------------------
// HTTP

interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

interface HttpTestServer {
  port: number;
  seen: SeenRequest[];
  connections: number;
  close(): Promise<void>;
}

type HttpHandler = (req: SeenRequest, res: http.ServerResponse) => void;

async function startHttpServer(handler: HttpHandler, secure?: https.ServerOptions) {
  const state: HttpTestServer = {
    port: 0,
    seen: [],
    connections: 0,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
  const listener = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const seen = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      state.seen.push(seen);
      handler(seen, res);
    });
  };
  const server: http.Server =
    secure === undefined ? http.createServer(listener) : https.createServer(secure, listener);
  server.on(secure === undefined ? 'connection' : 'secureConnection', () => {
    state.connections++;
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  state.port = (server.address() as net.AddressInfo).port;
  return state;
}

const jsonItem: Rendered = {
  body: Buffer.from('{"type":"patient.created","euid":"E1"}'),
  contentType: 'application/json',
  extension: 'json',
};

function httpConfig(port: number, extra: Partial<HttpSenderConfig> = {}): HttpSenderConfig {
  return { url: `http://127.0.0.1:${port}/events?token=secret`, timeoutMs: 5000, ...extra };
}

describe('HttpSender', () => {
  let server: HttpTestServer | undefined;
  let sender: HttpSender | undefined;

  afterEach(async () => {
    await sender?.close();
    await server?.close();
    sender = undefined;
    server = undefined;
  });

  const respond =
    (status: number, body = '', headers: http.OutgoingHttpHeaders = {}): HttpHandler =>
    (_req, res) => {
      res.writeHead(status, headers);
      res.end(body);
    };

  it('POSTs the body with content type, delivery id headers and bearer auth; 200 → ok', async () => {
    server = await startHttpServer(respond(200, '{"ok":true}'));
    sender = new HttpSender(
      httpConfig(server.port, {
        headers: { 'X-Source': 'engine' },
        auth: { type: 'bearer', token: 'tok-123' },
      }),
    );
    await expect(sender.send(jsonItem, 'delivery-42')).resolves.toEqual({
      ok: true,
      remoteAck: 'HTTP 200',
    });
    const seen = server.seen[0];
    expect(seen.method).toBe('POST');
    expect(seen.url).toBe('/events?token=secret');
    expect(seen.body).toBe(jsonItem.body.toString());
    expect(seen.headers).toMatchObject({
      'content-type': 'application/json',
      'idempotency-key': 'delivery-42',
      'x-delivery-id': 'delivery-42',
      authorization: 'Bearer tok-123',
      'x-source': 'engine',
    });
  });

  it('PUTs with basic auth; 201 → ok; reuses the connection', async () => {
    server = await startHttpServer(respond(201));
    sender = new HttpSender(
      httpConfig(server.port, {
        method: 'PUT',
        auth: { type: 'basic', username: 'user', password: 'p:ss' },
      }),
    );
    await expect(sender.send(jsonItem, 'd1')).resolves.toEqual({ ok: true, remoteAck: 'HTTP 201' });
    await expect(sender.send(jsonItem, 'd2')).resolves.toEqual({ ok: true, remoteAck: 'HTTP 201' });
    expect(server.seen.map((s) => s.method)).toEqual(['PUT', 'PUT']);
    expect(server.seen[0].headers.authorization).toBe(
      `Basic ${Buffer.from('user:p:ss').toString('base64')}`,
    );
    expect(server.connections).toBe(1);
  });

  it('resends once on a fresh socket when a kept-alive one is reset before the answer', async () => {
    let n = 0;
    server = await startHttpServer((_req, res) => {
      if (++n === 2) {
        res.socket?.destroy(); // as a server whose keep-alive timer fired
        return;
      }
      res.writeHead(200).end();
    });
    sender = new HttpSender(httpConfig(server.port));
    await expect(sender.send(jsonItem, 'd1')).resolves.toMatchObject({ ok: true });
    await expect(sender.send(jsonItem, 'd2')).resolves.toEqual({ ok: true, remoteAck: 'HTTP 200' });
    expect(server.seen.map((s) => s.headers['idempotency-key'])).toEqual(['d1', 'd2', 'd2']);
    expect(server.connections).toBe(2);
  });

  it('does not resend when a fresh socket is reset', async () => {
    server = await startHttpServer((_req, res) => {
      res.socket?.destroy();
    });
    sender = new HttpSender(httpConfig(server.port));
    const outcome = await sender.send(jsonItem, 'd1');
    expect(outcome).toMatchObject({ ok: false, retry: true });
    expect(outcome.ok || outcome.error).toMatch(/socket hang up|ECONNRESET/);
    expect(server.seen).toHaveLength(1);
  });

  it('lets the configured headers override the content type', async () => {
    server = await startHttpServer(respond(204));
    sender = new HttpSender(
      httpConfig(server.port, { headers: { 'Content-Type': 'x-application/hl7-v2+er7' } }),
    );
    await expect(sender.send(hl7('C1'), 'd1')).resolves.toMatchObject({ ok: true });
    expect(server.seen[0].headers['content-type']).toBe('x-application/hl7-v2+er7');
  });

  it.each([
    [400, false],
    [404, false],
    [409, false],
    [408, true],
    [429, true],
    [500, true],
    [503, true],
  ])('HTTP %d → retry %s, error with the status and the body', async (status, retry) => {
    server = await startHttpServer(respond(status, `{"error":"nope ${status}"}`));
    sender = new HttpSender(httpConfig(server.port));
    const outcome = await sender.send(jsonItem, 'd1');
    expect(outcome).toMatchObject({ ok: false, retry, remoteAck: `HTTP ${status}` });
    const error = outcome.ok ? '' : outcome.error;
    expect(error).toMatch(
      new RegExp(`^HTTP ${status} .*from POST http://127\\.0\\.0\\.1:\\d+/events: `),
    );
    expect(error).toContain(`{"error":"nope ${status}"}`);
    expect(error).not.toContain('secret'); // the query string stays out of error texts
  });

  it('passes on the receiver’s Retry-After with a retry (seconds or an HTTP date)', async () => {
    server = await startHttpServer(respond(429, 'slow down', { 'Retry-After': '7' }));
    sender = new HttpSender(httpConfig(server.port));
    expect(await sender.send(jsonItem, 'd1')).toMatchObject({
      ok: false,
      retry: true,
      retryAfterMs: 7000,
    });
    await server.close();
    const at = new Date(Date.now() + 120_000).toUTCString();
    server = await startHttpServer(respond(503, '', { 'Retry-After': at }));
    sender = new HttpSender(httpConfig(server.port));
    const outcome = await sender.send(jsonItem, 'd2');
    const ms = outcome.ok ? 0 : (outcome.retryAfterMs ?? 0);
    expect(ms).toBeGreaterThan(110_000);
    expect(ms).toBeLessThanOrEqual(120_000);
  });

  it('ignores Retry-After on a permanent failure', async () => {
    server = await startHttpServer(respond(400, '', { 'Retry-After': '7' }));
    sender = new HttpSender(httpConfig(server.port));
    const outcome = await sender.send(jsonItem, 'd1');
    expect(outcome).toMatchObject({ ok: false, retry: false });
    expect(outcome.ok ? undefined : outcome.retryAfterMs).toBeUndefined();
  });

  it('keeps at most 200 characters of the response body in the error', async () => {
    server = await startHttpServer(respond(400, 'x'.repeat(5000)));
    sender = new HttpSender(httpConfig(server.port));
    const outcome = await sender.send(jsonItem, 'd1');
    const error = outcome.ok ? '' : outcome.error;
    expect(error).toContain(`${'x'.repeat(200)}...`);
    expect(error).not.toContain('x'.repeat(201));
  });

  it('does not follow redirects (permanent)', async () => {
    server = await startHttpServer(respond(302, '', { Location: 'http://elsewhere/' }));
    sender = new HttpSender(httpConfig(server.port));
    const outcome = await sender.send(jsonItem, 'd1');
    expect(outcome).toMatchObject({ ok: false, retry: false, remoteAck: 'HTTP 302' });
    expect(outcome.ok || outcome.error).toMatch(
      /redirects are not followed; Location: http:\/\/elsewhere\//,
    );
  });

  it('times out when the server does not answer (retry)', async () => {
    server = await startHttpServer(() => undefined);
    sender = new HttpSender(httpConfig(server.port, { timeoutMs: 300 }));
    await expect(sender.send(jsonItem, 'd1')).resolves.toEqual({
      ok: false,
      retry: true,
      error: `timeout: no complete answer from POST http://127.0.0.1:${server.port}/events within 300 ms`,
    });
  });

  it('asks for a retry when the connection is refused', async () => {
    const port = await freePort();
    sender = new HttpSender(httpConfig(port));
    const outcome = await sender.send(jsonItem, 'd1');
    expect(outcome).toMatchObject({ ok: false, retry: true });
    expect(outcome.ok || outcome.error).toContain(`connect ECONNREFUSED 127.0.0.1:${port}`);
  });

  it('speaks HTTPS with the configured CA and client certificate', async () => {
    server = await startHttpServer(respond(200), {
      cert: readFileSync(pki.serverCert),
      key: readFileSync(pki.serverKey),
      ca: readFileSync(pki.ca),
      requestCert: true,
      rejectUnauthorized: true,
    });
    sender = new HttpSender({
      url: `https://localhost:${server.port}/fhir`,
      timeoutMs: 5000,
      tls: { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey, rejectUnauthorized: true },
    });
    await expect(sender.send(jsonItem, 'd1')).resolves.toEqual({ ok: true, remoteAck: 'HTTP 200' });

    const untrusting = new HttpSender({
      url: `https://localhost:${server.port}/fhir`,
      timeoutMs: 5000,
    });
    try {
      await expect(untrusting.send(jsonItem, 'd2')).resolves.toMatchObject({
        ok: false,
        retry: true,
      });
    } finally {
      await untrusting.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// File

describe('FileSender', () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'file-sender-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes <deliveryId>.<extension>, creating the directory, leaving no temp file', async () => {
    const target = join(dir, 'out', 'nested');
    const sender = new FileSender({ directory: target });
    const item = hl7('C1');
    await expect(sender.send(item, 'delivery-1')).resolves.toEqual({
      ok: true,
      remoteAck: 'file delivery-1.hl7',
    });
    expect(readdirSync(target)).toEqual(['delivery-1.hl7']);
    expect(readFileSync(join(target, 'delivery-1.hl7')).equals(item.body)).toBe(true);
  });

  it('overwrites the same file when the same delivery is sent again', async () => {
    const sender = new FileSender({ directory: dir });
    await sender.send({ ...jsonItem, body: Buffer.from('{"v":1}') }, 'd-7');
    await sender.send({ ...jsonItem, body: Buffer.from('{"v":2}') }, 'd-7');
    expect(readdirSync(dir)).toEqual(['d-7.json']);
    expect(readFileSync(join(dir, 'd-7.json'), 'utf8')).toBe('{"v":2}');
  });

  it('asks for a retry when the directory cannot be written', async () => {
    const blocker = join(dir, 'not-a-dir');
    writeFileSync(blocker, 'x');
    const sender = new FileSender({ directory: join(blocker, 'sub') });
    const outcome = await sender.send(jsonItem, 'd1');
    expect(outcome).toMatchObject({ ok: false, retry: true });
    expect(outcome.ok || outcome.error).toMatch(/ENOTDIR|EEXIST/);
    expect(readdirSync(dir)).toEqual(['not-a-dir']);
  });

  it('refuses delivery ids that are not plain file names (permanent)', async () => {
    const sender = new FileSender({ directory: dir });
    for (const id of ['../escape', '.hidden', 'a/b', '']) {
      await expect(sender.send(jsonItem, id)).resolves.toMatchObject({ ok: false, retry: false });
    }
    expect(readdirSync(dir)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('createSender', () => {
  const common = {
    id: 'dest',
    format: 'hl7' as const,
    ordering: 'patient' as const,
    concurrency: 2,
    timeoutMs: 1000,
    retry: { maxAttempts: 0, initialDelayMs: 1000, maxDelayMs: 60_000, multiplier: 2 },
    paused: false,
  };

  it('builds the sender of each destination type', async () => {
    const senders = [
      createSender({
        ...common,
        type: 'mllp',
        host: '127.0.0.1',
        port: 6661,
        connections: 1,
        checkControlId: true,
      }),
      createSender({
        ...common,
        type: 'http',
        url: 'http://127.0.0.1:6680/',
        method: 'POST',
        headers: {},
      }),
      createSender({ ...common, type: 'file', directory: tmpdir() }),
    ];
    expect(senders[0]).toBeInstanceOf(MllpSender);
    expect(senders[1]).toBeInstanceOf(HttpSender);
    expect(senders[2]).toBeInstanceOf(FileSender);
    await Promise.all(senders.map((s) => s.close()));
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');

  it('reads delay-seconds and HTTP dates', () => {
    expect(parseRetryAfter('0', now)).toBe(0);
    expect(parseRetryAfter(' 30 ', now)).toBe(30_000);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:01:00 GMT', now)).toBe(60_000);
  });

  it('takes a past date as now, caps long waits at an hour, and ignores what it cannot read', () => {
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('86400', now)).toBe(MAX_RETRY_AFTER_MS);
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter('', now)).toBeUndefined();
    expect(parseRetryAfter('-5', now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
  });
});
