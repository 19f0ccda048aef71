/**
 * MLLP destination sender: HL7 v2 over TCP (or TLS), one message at a time per connection,
 * waiting for the receiver's ACK.
 *
 * - Up to `connections` sockets, opened lazily and kept open between sends. A send takes a
 *   free connection slot or waits in line for one (FIFO).
 * - `timeoutMs` covers connect (and TLS handshake) + write + ACK. A timeout destroys the socket
 *   (a late ACK on a reused socket would answer the wrong message) and asks for a retry.
 * - ACK codes: AA/CA → delivered; AE/CE → permanent failure; AR/CR → retry.
 * - With `checkControlId`, an ACK whose MSA-2 is not the MSH-10 sent means the connection is
 *   out of step with the receiver: the socket is destroyed and the delivery retried.
 * - Connection refused / reset / closed before the ACK, TLS failures, unreadable answers: the
 *   socket is destroyed, retry. A socket the peer closed while idle is dropped and replaced on
 *   the next send; if the peer closes a reused socket before answering (it timed the idle
 *   connection out as we wrote), the message is sent once more on a fresh connection within the
 *   same deadline.
 * - Never logs; error texts carry no message content (only the receiver's ACK error text).
 */
import net from 'node:net';
import tls from 'node:tls';
import { type ClientTlsConfig, type MllpDestinationConfig } from '@engine/config';
import { encodeMllp, MllpDecoder, parseMessage } from '@engine/hl7';
import { type Rendered, type SendOutcome, type Sender } from '../types';
import { errorMessage, loadClientTls, type LoadedClientTls, oneLine } from './common';

/** The settings an MLLP sender uses (a destination config has them all). */
export type MllpSenderConfig = Pick<
  MllpDestinationConfig,
  'host' | 'port' | 'connections' | 'checkControlId' | 'timeoutMs'
> & { tls?: ClientTlsConfig };

/** Largest ACK accepted (an ACK is a few hundred bytes; anything huge is not an ACK). */
const MAX_ACK_BYTES = 1024 * 1024;

/** A failure that ends the connection; `message` is the outcome's error text. */
class ConnectionError extends Error {
  constructor(
    message: string,
    /** Closed/reset by the peer before any answer byte (safe to resend on a fresh socket). */
    readonly peerClosed = false,
  ) {
    super(message);
  }
}

/** One socket with its decoder; at most one request outstanding. */
class MllpConnection {
  /** Resolves once connected (after the TLS handshake for TLS); rejects when that fails. */
  readonly ready: Promise<void>;
  private readonly socket: net.Socket;
  private readonly decoder = new MllpDecoder({ maxFrameBytes: MAX_ACK_BYTES });
  private failure: ConnectionError | null = null;
  private connecting: { resolve: () => void; reject: (err: Error) => void } | null = null;
  private pending: { resolve: (frame: Buffer) => void; reject: (err: Error) => void } | null = null;
  private connected = false;
  /** True once a byte arrived after the current request was written. */
  private answered = false;

  constructor(
    private readonly address: string,
    private readonly host: string,
    port: number,
    tlsOptions: LoadedClientTls | undefined,
  ) {
    this.ready = new Promise<void>((resolve, reject) => {
      this.connecting = { resolve, reject };
    });
    this.ready.catch(() => undefined); // the sender awaits it; never an unhandled rejection
    const socket =
      tlsOptions === undefined
        ? net.connect({ host, port })
        : tls.connect({
            host,
            port,
            ca: tlsOptions.ca,
            cert: tlsOptions.cert,
            key: tlsOptions.key,
            servername: tlsOptions.servername ?? (net.isIP(host) === 0 ? host : undefined),
            rejectUnauthorized: tlsOptions.rejectUnauthorized,
          });
    this.socket = socket;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    socket.once(tlsOptions === undefined ? 'connect' : 'secureConnect', () => {
      this.connected = true;
      const connecting = this.connecting;
      this.connecting = null;
      connecting?.resolve();
    });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      let text: string;
      if (tlsOptions !== undefined && !this.connected && err.syscall === undefined) {
        text = `TLS handshake with ${address} failed: ${err.message}`;
      } else if (err.message.includes(this.host)) {
        text = err.message; // 'connect ECONNREFUSED 127.0.0.1:6661'
      } else {
        text = `${err.message} (${address})`; // 'read ECONNRESET (127.0.0.1:6661)'
      }
      const reset = err.code === 'ECONNRESET' || err.code === 'EPIPE';
      this.fail(new ConnectionError(text, this.connected && !this.answered && reset));
    });
    socket.on('close', () => {
      this.fail(
        new ConnectionError(
          this.connected
            ? `connection closed by ${address} before the ACK`
            : `connection to ${address} closed before it was established`,
          this.connected && !this.answered,
        ),
      );
    });
  }

  /** False once the socket failed or closed: the slot must open a new one. */
  get usable(): boolean {
    return this.failure === null;
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /** Write one framed message; resolves with the next frame received. */
  request(frame: Buffer): Promise<Buffer> {
    if (this.failure !== null) {
      return Promise.reject(this.failure);
    }
    return new Promise<Buffer>((resolve, reject) => {
      this.pending = { resolve, reject };
      this.answered = false;
      this.socket.write(frame);
    });
  }

  /** Close the socket, failing the connect or request in progress with `reason`. */
  destroy(reason: ConnectionError = new ConnectionError('connection closed')): void {
    this.fail(reason);
    this.socket.destroy();
  }

  /** Polite close of an idle connection (FIN, then destroy if the peer lingers). */
  end(): Promise<void> {
    this.fail(new ConnectionError('sender closed'));
    if (this.socket.destroyed) {
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.socket.destroy(), 1000);
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.socket.end();
    });
  }

  private onData(chunk: Buffer): void {
    this.answered = true;
    for (const event of this.decoder.push(chunk)) {
      switch (event.type) {
        case 'frame': {
          const pending = this.pending;
          if (pending === null) {
            // An answer to nothing: the receiver is out of step with us.
            this.destroy(new ConnectionError(`unexpected frame from ${this.address}`));
            return;
          }
          this.pending = null;
          pending.resolve(event.payload);
          break;
        }
        case 'oversize':
          this.destroy(
            new ConnectionError(`answer from ${this.address} exceeds ${MAX_ACK_BYTES} bytes`),
          );
          return;
        case 'noise':
          break;
      }
    }
    if (this.decoder.noiseLimitExceeded) {
      this.destroy(new ConnectionError(`answer from ${this.address} is not MLLP`));
    }
  }

  private fail(err: ConnectionError): void {
    if (this.failure === null) {
      this.failure = err;
    }
    const connecting = this.connecting;
    const pending = this.pending;
    this.connecting = null;
    this.pending = null;
    connecting?.reject(this.failure);
    pending?.reject(this.failure);
  }
}

interface Slot {
  conn: MllpConnection | null;
  busy: boolean;
}

type Ack = { code: string; controlId: string; text: string };

function readAck(frame: Buffer): Ack | undefined {
  try {
    const ack = parseMessage(frame);
    const code = (ack.get('MSA-1') ?? '').trim().toUpperCase();
    if (code === '') {
      return undefined;
    }
    const first = (...paths: string[]): string => {
      for (const path of paths) {
        const value = ack.get(path);
        if (value !== undefined && value.trim() !== '') {
          return value;
        }
      }
      return '';
    };
    return {
      code,
      controlId: (ack.get('MSA-2') ?? '').trim(),
      // MSA-3 (before 2.7), ERR-8 user message (2.7), ERR-3.2 error text (2.5+), ERR-1.4.2
      // (before 2.5), then the bare error codes.
      text: oneLine(first('MSA-3', 'ERR-8', 'ERR-3.2', 'ERR-1.4.2', 'ERR-3.1', 'ERR-1.4.1')),
    };
  } catch {
    return undefined;
  }
}

export class MllpSender implements Sender {
  private readonly slots: Slot[];
  private readonly waiting: Array<(slot: Slot | null) => void> = [];
  private readonly tls: LoadedClientTls | undefined;
  private readonly address: string;
  private closed = false;

  /** Throws when a TLS file cannot be read. */
  constructor(private readonly config: MllpSenderConfig) {
    this.tls = config.tls === undefined ? undefined : loadClientTls(config.tls);
    this.address = `${net.isIPv6(config.host) ? `[${config.host}]` : config.host}:${config.port}`;
    this.slots = Array.from({ length: Math.max(1, config.connections) }, () => ({
      conn: null,
      busy: false,
    }));
  }

  /** Sockets currently open (connected or connecting). */
  get openConnections(): number {
    return this.slots.filter((s) => s.conn?.usable === true).length;
  }

  async send(item: Rendered, _deliveryId: string): Promise<SendOutcome> {
    let frame: Buffer;
    try {
      frame = encodeMllp(item.body);
    } catch (err) {
      return { ok: false, retry: false, error: `cannot frame the message: ${errorMessage(err)}` };
    }
    const slot = await this.acquire();
    if (slot === null) {
      return { ok: false, retry: true, error: 'sender closed' };
    }
    try {
      return await this.sendOn(slot, frame, item.controlId);
    } finally {
      this.release(slot);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const waiter of this.waiting.splice(0)) {
      waiter(null);
    }
    await Promise.all(
      this.slots.map((slot) => {
        const conn = slot.conn;
        slot.conn = null;
        if (conn === null) {
          return Promise.resolve();
        }
        if (slot.busy) {
          conn.destroy(new ConnectionError('sender closed'));
          return Promise.resolve();
        }
        return conn.end();
      }),
    );
  }

  private async sendOn(slot: Slot, frame: Buffer, controlId?: string): Promise<SendOutcome> {
    const timeoutMs = this.config.timeoutMs;
    let current: MllpConnection | null = null;
    const timer = setTimeout(() => {
      const phase = current?.isConnected === true ? 'no ACK from' : 'could not connect to';
      current?.destroy(
        new ConnectionError(`timeout: ${phase} ${this.address} within ${timeoutMs} ms`),
      );
    }, timeoutMs);
    try {
      // A reused socket may have been closed by the peer just as we wrote (idle timeout on
      // its side): one more try on a fresh socket. A fresh socket's failure is final.
      for (let attempt = 0; ; attempt++) {
        const reused = slot.conn !== null && slot.conn.usable;
        if (!reused) {
          slot.conn = new MllpConnection(
            this.address,
            this.config.host,
            this.config.port,
            this.tls,
          );
        }
        const conn = slot.conn as MllpConnection;
        current = conn;
        let answer: Buffer;
        try {
          await conn.ready;
          answer = await conn.request(frame);
        } catch (err) {
          conn.destroy();
          slot.conn = null;
          if (reused && attempt === 0 && err instanceof ConnectionError && err.peerClosed) {
            continue;
          }
          return { ok: false, retry: true, error: errorMessage(err) };
        }
        return this.judge(slot, answer, controlId);
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** Turn the answer into an outcome (dropping the connection when it is out of step). */
  private judge(slot: Slot, answer: Buffer, controlId: string | undefined): SendOutcome {
    const drop = (error: string, remoteAck?: string): SendOutcome => {
      slot.conn?.destroy();
      slot.conn = null;
      return remoteAck === undefined
        ? { ok: false, retry: true, error }
        : { ok: false, retry: true, error, remoteAck };
    };
    const ack = readAck(answer);
    if (ack === undefined) {
      return drop(`unreadable answer from ${this.address} (not an HL7 ACK with MSA-1)`);
    }
    if (this.config.checkControlId && controlId !== undefined && ack.controlId !== controlId) {
      return drop(
        `ACK out of step: MSA-2 '${oneLine(ack.controlId, 40)}' does not match MSH-10 '${controlId}'`,
        ack.code,
      );
    }
    const detail = ack.text === '' ? '' : `: ${ack.text}`;
    switch (ack.code) {
      case 'AA':
      case 'CA':
        return { ok: true, remoteAck: ack.code };
      case 'AE':
      case 'CE':
        return {
          ok: false,
          retry: false,
          error: `remote ${ack.code}${detail}`,
          remoteAck: ack.code,
        };
      case 'AR':
      case 'CR':
        return {
          ok: false,
          retry: true,
          error: `remote ${ack.code}${detail}`,
          remoteAck: ack.code,
        };
      default:
        return drop(`unknown ACK code '${oneLine(ack.code, 10)}' from ${this.address}`);
    }
  }

  private acquire(): Promise<Slot | null> {
    if (this.closed) {
      return Promise.resolve(null);
    }
    // Prefer a free slot whose socket is open (reuse), then any free slot.
    const free =
      this.slots.find((s) => !s.busy && s.conn?.usable === true) ?? this.slots.find((s) => !s.busy);
    if (free !== undefined) {
      free.busy = true;
      return Promise.resolve(free);
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(slot: Slot): void {
    if (this.closed) {
      slot.busy = false;
      if (slot.conn !== null) {
        const conn = slot.conn;
        slot.conn = null;
        void conn.end();
      }
      return;
    }
    const next = this.waiting.shift();
    if (next !== undefined) {
      next(slot); // stays busy, handed over
    } else {
      slot.busy = false;
    }
  }
}
