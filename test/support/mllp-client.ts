import net from 'node:net';
import { encodeMllp, MllpDecoder } from '@engine/hl7';

/** A minimal MLLP test client: send frames, read ACK payloads in order. */
export class TestMllpClient {
  private readonly decoder = new MllpDecoder({ maxFrameBytes: 16 * 1024 * 1024 });
  private readonly acks: Buffer[] = [];
  private waiters: { resolve: (b: Buffer) => void; reject: (e: Error) => void }[] = [];
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const ev of this.decoder.push(chunk)) {
        if (ev.type === 'frame') {
          const w = this.waiters.shift();
          if (w) {
            w.resolve(ev.payload);
          } else {
            this.acks.push(ev.payload);
          }
        }
      }
    });
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) {
        w.reject(new Error('connection closed'));
      }
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number, host = '127.0.0.1'): Promise<TestMllpClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, host, () => resolve(new TestMllpClient(s)));
      s.once('error', reject);
    });
  }

  write(bytes: Buffer | string): void {
    this.socket.write(bytes);
  }

  sendFrame(payload: Buffer | string): void {
    this.socket.write(encodeMllp(payload));
  }

  nextAck(timeoutMs = 10000): Promise<Buffer> {
    const ready = this.acks.shift();
    if (ready) {
      return Promise.resolve(ready);
    }
    if (this.closed) {
      return Promise.reject(new Error('connection closed'));
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`no ACK within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (b: Buffer): void => {
        clearTimeout(timer);
        resolve(b);
      };
      this.waiters.push({
        resolve: done,
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
  }

  async send(payload: Buffer | string, timeoutMs?: number): Promise<string> {
    this.sendFrame(payload);
    return (await this.nextAck(timeoutMs)).toString('latin1');
  }

  /** Resolves when the server closes the connection. */
  whenClosed(timeoutMs = 10000): Promise<void> {
    if (this.closed) {
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('connection still open')), timeoutMs);
      this.socket.once('close', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Field n (1-based, MSH-1 = field separator) of a segment of an ACK text. */
export function ackField(ack: string, segment: string, n: number): string {
  const seg = ack.split(/\r\n|\r|\n/).find((s) => s.startsWith(segment + '|'));
  if (!seg) {
    return '';
  }
  const fields = seg.split('|');
  return (segment === 'MSH' ? fields[n - 1] : fields[n]) ?? '';
}
