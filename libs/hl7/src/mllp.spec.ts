import net from 'node:net';
import { once } from 'node:events';
import {
  encodeMllp,
  MLLP_CR,
  MLLP_END,
  MLLP_START,
  MllpDecoder,
  OVERSIZE_HEAD_BYTES,
  type MllpDecoderOptions,
  type MllpEvent,
} from './mllp';

const VT = Buffer.from([MLLP_START]);
const FS = Buffer.from([MLLP_END]);
const CR = Buffer.from([MLLP_CR]);

function frames(events: MllpEvent[]): string[] {
  return events.flatMap((e) => (e.type === 'frame' ? [e.payload.toString('latin1')] : []));
}

function ofType<T extends MllpEvent['type']>(
  events: MllpEvent[],
  type: T,
): Extract<MllpEvent, { type: T }>[] {
  return events.filter((e): e is Extract<MllpEvent, { type: T }> => e.type === type);
}

const b64 = (b: Buffer): string => b.toString('base64');

function pushAll(decoder: MllpDecoder, chunks: Buffer[]): MllpEvent[] {
  return chunks.flatMap((c) => decoder.push(c));
}

function bytewise(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i++) {
    out.push(buf.subarray(i, i + 1));
  }
  return out;
}

/** Deterministic PRNG (mulberry32) so a failing seed can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random payload of any byte except VT and FS (CR, NUL, 0x80-0xFF included). */
function randomPayload(rand: () => number, maxLen: number): Buffer {
  const len = Math.floor(rand() * maxLen);
  const buf = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) {
    let b = Math.floor(rand() * 256);
    while (b === MLLP_START || b === MLLP_END) {
      b = Math.floor(rand() * 256);
    }
    buf[i] = b;
  }
  return buf;
}

function splitRandomly(buf: Buffer, rand: () => number, maxPiece: number): Buffer[] {
  const out: Buffer[] = [];
  let i = 0;
  while (i < buf.length) {
    const n = 1 + Math.floor(rand() * maxPiece);
    out.push(buf.subarray(i, i + n));
    i += n;
  }
  return out;
}

const MSG =
  'MSH|^~\\&|LAB|HOSP|ENGINE|HOSP|20240101120000||ADT^A01|MSG0001|P|2.5.1\rPID|1||123^^^HOSP^MR\r';

describe('encodeMllp', () => {
  it('wraps a string payload in VT ... FS CR', () => {
    const out = encodeMllp('AB');
    expect([...out]).toEqual([0x0b, 0x41, 0x42, 0x1c, 0x0d]);
  });

  it('frames Buffers byte for byte and strings in the given encoding', () => {
    const latin1 = Buffer.from([0x4d, 0xfc, 0x6c, 0x6c, 0x65, 0x72]); // "Müller" in ISO-8859-1
    expect(encodeMllp(latin1).subarray(1, -2)).toEqual(latin1);
    expect(encodeMllp('Müller', 'latin1').subarray(1, -2)).toEqual(latin1);
    expect(encodeMllp('Müller').subarray(1, -2)).toEqual(Buffer.from('Müller', 'utf8'));
  });

  it('frames an empty payload', () => {
    expect([...encodeMllp('')]).toEqual([0x0b, 0x1c, 0x0d]);
  });

  it('refuses payloads containing VT or FS', () => {
    expect(() => encodeMllp('a\x0bb')).toThrow(RangeError);
    expect(() => encodeMllp(Buffer.from([0x41, 0x1c]))).toThrow(RangeError);
  });
});

describe('MllpDecoder', () => {
  it('decodes one whole frame as a slice of the chunk', () => {
    const decoder = new MllpDecoder();
    const chunk = encodeMllp(MSG);
    const events = decoder.push(chunk);
    expect(events).toHaveLength(1);
    expect(events[0]).toEqual({ type: 'frame', payload: Buffer.from(MSG) });
    const payload = (events[0] as { payload: Buffer }).payload;
    expect(payload.buffer).toBe(chunk.buffer); // no copy for the common case
    expect(decoder.stats).toMatchObject({ frames: 1, noiseBytes: 0, oversizeFrames: 0 });
    expect(decoder.bufferedBytes).toBe(0);
    expect(decoder.pendingNoiseBytes).toBe(0);
  });

  it('decodes a frame fed one byte at a time, with FS and CR in separate reads', () => {
    const decoder = new MllpDecoder();
    const chunks = bytewise(encodeMllp(MSG));
    const events: MllpEvent[] = [];
    for (const [n, c] of chunks.entries()) {
      events.push(...decoder.push(c));
      if (n === chunks.length - 2) {
        // The frame completes at FS; the CR in the next read is swallowed.
        expect(frames(events)).toEqual([MSG]);
      }
    }
    expect(events).toHaveLength(1);
    expect(decoder.stats).toMatchObject({ frames: 1, noiseBytes: 0, missingCr: 0 });
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('reports bufferedBytes for an incomplete frame', () => {
    const decoder = new MllpDecoder();
    const whole = encodeMllp(MSG);
    expect(decoder.push(whole.subarray(0, 11))).toEqual([]);
    expect(decoder.bufferedBytes).toBe(10);
    expect(decoder.inFrame).toBe(true);
    expect(frames(decoder.push(whole.subarray(11)))).toEqual([MSG]);
    expect(decoder.bufferedBytes).toBe(0);
    expect(decoder.inFrame).toBe(false);
  });

  it('returns a copy that stays valid for a frame split across reads', () => {
    const decoder = new MllpDecoder();
    const whole = encodeMllp(MSG);
    const a = Buffer.from(whole.subarray(0, 20));
    const b = Buffer.from(whole.subarray(20));
    const [event] = [...decoder.push(a), ...decoder.push(b)];
    a.fill(0);
    b.fill(0);
    // Feed another split frame: the accumulator is reused, the first payload must not change.
    pushAll(decoder, [
      encodeMllp('X'.repeat(50)).subarray(0, 10),
      encodeMllp('X'.repeat(50)).subarray(10),
    ]);
    expect(event).toEqual({ type: 'frame', payload: Buffer.from(MSG) });
  });

  it('decodes many frames in one read, in order', () => {
    const decoder = new MllpDecoder();
    const payloads = Array.from({ length: 100 }, (_, i) => `${MSG}OBX|${i}\r`);
    const events = decoder.push(Buffer.concat(payloads.map((p) => encodeMllp(p))));
    expect(frames(events)).toEqual(payloads);
    expect(events).toHaveLength(100);
    expect(decoder.stats.frames).toBe(100);
  });

  it('decodes a frame whose end and the next frame start share a read', () => {
    const decoder = new MllpDecoder();
    const stream = Buffer.concat([encodeMllp('one'), encodeMllp('two'), encodeMllp('three')]);
    const events = pushAll(decoder, [
      stream.subarray(0, 3),
      stream.subarray(3, 9),
      stream.subarray(9),
    ]);
    expect(frames(events)).toEqual(['one', 'two', 'three']);
  });

  it('discards and counts noise between frames', () => {
    const decoder = new MllpDecoder();
    const events = decoder.push(
      Buffer.concat([
        Buffer.from('junk'),
        encodeMllp('one'),
        Buffer.from('\r\n'),
        encodeMllp('two'),
      ]),
    );
    expect(events).toEqual([
      { type: 'noise', bytes: 4 },
      { type: 'frame', payload: Buffer.from('one') },
      { type: 'noise', bytes: 2 },
      { type: 'frame', payload: Buffer.from('two') },
    ]);
    expect(decoder.stats.noiseBytes).toBe(6);
    expect(decoder.pendingNoiseBytes).toBe(0);
  });

  it('tracks pendingNoiseBytes since the last frame and flags the noise limit', () => {
    const decoder = new MllpDecoder({ maxNoiseBytes: 10 });
    expect(decoder.push(Buffer.from('GET / HTTP/1.1\r\n'))).toEqual([{ type: 'noise', bytes: 16 }]);
    expect(decoder.pendingNoiseBytes).toBe(16);
    expect(decoder.noiseLimitExceeded).toBe(true);
    decoder.push(encodeMllp('ok'));
    expect(decoder.pendingNoiseBytes).toBe(0);
    expect(decoder.noiseLimitExceeded).toBe(false);
    decoder.push(Buffer.from('abc'));
    decoder.push(Buffer.from('de'));
    expect(decoder.pendingNoiseBytes).toBe(5);
    expect(decoder.stats.noiseBytes).toBe(21);
  });

  it('reports one noise event per run per read, even byte by byte', () => {
    const decoder = new MllpDecoder();
    const events = pushAll(decoder, bytewise(Buffer.from('xyz')));
    expect(events).toEqual([
      { type: 'noise', bytes: 1 },
      { type: 'noise', bytes: 1 },
      { type: 'noise', bytes: 1 },
    ]);
  });

  it('treats a VT inside a frame as a broken frame (noise) and starts anew', () => {
    const decoder = new MllpDecoder();
    const stream = Buffer.concat([VT, Buffer.from('partial'), encodeMllp('whole')]);
    const events = decoder.push(stream);
    expect(events).toEqual([
      { type: 'noise', bytes: 8 }, // VT + 'partial'
      { type: 'frame', payload: Buffer.from('whole') },
    ]);
    expect(decoder.stats).toMatchObject({ frames: 1, brokenFrames: 1, noiseBytes: 8 });
  });

  it('handles a broken frame split across reads', () => {
    const decoder = new MllpDecoder();
    const stream = Buffer.concat([VT, Buffer.from('partial'), encodeMllp('whole')]);
    const events = pushAll(decoder, bytewise(stream));
    expect(frames(events)).toEqual(['whole']);
    expect(ofType(events, 'noise').reduce((n, e) => n + e.bytes, 0)).toBe(8);
    expect(decoder.stats.brokenFrames).toBe(1);
  });

  it('accepts FS without CR, ends the frame at FS and counts it', () => {
    const decoder = new MllpDecoder();
    const stream = Buffer.concat([VT, Buffer.from('one'), FS, VT, Buffer.from('two'), FS, CR]);
    expect(frames(decoder.push(stream))).toEqual(['one', 'two']);
    expect(decoder.stats).toMatchObject({ frames: 2, missingCr: 1, noiseBytes: 0 });
  });

  it('emits a frame at FS without waiting for the CR', () => {
    const decoder = new MllpDecoder();
    expect(frames(decoder.push(Buffer.concat([VT, Buffer.from('one'), FS])))).toEqual(['one']);
    // A byte other than CR after the FS (next read) counts as a missing CR and is processed.
    expect(decoder.push(Buffer.from('x'))).toEqual([{ type: 'noise', bytes: 1 }]);
    expect(decoder.stats.missingCr).toBe(1);
  });

  it('is binary-safe: every byte except VT and FS passes through', () => {
    const all = Buffer.from(
      Array.from({ length: 256 }, (_, b) => b).filter((b) => b !== MLLP_START && b !== MLLP_END),
    );
    const decoder = new MllpDecoder();
    const events = pushAll(decoder, [encodeMllp(all), ...bytewise(encodeMllp(all))]);
    expect(events).toEqual([
      { type: 'frame', payload: all },
      { type: 'frame', payload: all },
    ]);
  });

  it('decodes ISO-8859-1 payloads unchanged', () => {
    const latin1 = Buffer.from('PID|1||42^^^H^MR||Müller^Zoë\r', 'latin1');
    const decoder = new MllpDecoder();
    const [event] = decoder.push(encodeMllp(latin1));
    expect(event).toEqual({ type: 'frame', payload: latin1 });
  });

  it('accepts an empty frame', () => {
    const decoder = new MllpDecoder();
    expect(decoder.push(encodeMllp(''))).toEqual([{ type: 'frame', payload: Buffer.alloc(0) }]);
  });

  describe('maxFrameBytes', () => {
    const options: MllpDecoderOptions = { maxFrameBytes: 100 };

    it('accepts a frame of exactly maxFrameBytes', () => {
      const decoder = new MllpDecoder(options);
      expect(frames(decoder.push(encodeMllp('a'.repeat(100))))).toEqual(['a'.repeat(100)]);
      expect(frames(pushAll(decoder, bytewise(encodeMllp('b'.repeat(100)))))).toEqual([
        'b'.repeat(100),
      ]);
    });

    it('discards an oversize frame in one read and resyncs', () => {
      const decoder = new MllpDecoder(options);
      const events = decoder.push(Buffer.concat([encodeMllp('a'.repeat(101)), encodeMllp('ok')]));
      expect(events).toEqual([
        { type: 'oversize', bytes: 101, head: Buffer.from('a'.repeat(101)) },
        { type: 'frame', payload: Buffer.from('ok') },
      ]);
      expect(decoder.stats).toMatchObject({ frames: 1, oversizeFrames: 1, noiseBytes: 0 });
    });

    it('never buffers more than maxFrameBytes of an oversize frame', () => {
      const decoder = new MllpDecoder(options);
      const stream = Buffer.concat([encodeMllp('a'.repeat(5000)), encodeMllp('ok')]);
      const events: MllpEvent[] = [];
      let maxBuffered = 0;
      for (const chunk of splitRandomly(stream, rng(7), 37)) {
        events.push(...decoder.push(chunk));
        maxBuffered = Math.max(maxBuffered, decoder.bufferedBytes);
      }
      expect(maxBuffered).toBeLessThanOrEqual(100);
      expect(events).toEqual([
        { type: 'oversize', bytes: 5000, head: Buffer.alloc(OVERSIZE_HEAD_BYTES, 'a') },
        { type: 'frame', payload: Buffer.from('ok') },
      ]);
    });

    it('emits oversize once per frame, byte by byte', () => {
      const decoder = new MllpDecoder(options);
      const stream = Buffer.concat([
        encodeMllp('a'.repeat(300)),
        encodeMllp('b'.repeat(150)),
        encodeMllp('ok'),
      ]);
      const events = pushAll(decoder, bytewise(stream));
      expect(events).toEqual([
        { type: 'oversize', bytes: 300, head: Buffer.from('a'.repeat(300)) },
        { type: 'oversize', bytes: 150, head: Buffer.from('b'.repeat(150)) },
        { type: 'frame', payload: Buffer.from('ok') },
      ]);
      expect(decoder.stats.oversizeFrames).toBe(2);
    });

    it('ends an oversize frame at the next start block', () => {
      const decoder = new MllpDecoder(options);
      const stream = Buffer.concat([VT, Buffer.from('a'.repeat(250)), encodeMllp('ok')]);
      for (const chunks of [[stream], splitRandomly(stream, rng(3), 64)]) {
        const d = new MllpDecoder(options);
        expect(pushAll(d, chunks)).toEqual([
          { type: 'oversize', bytes: 250, head: Buffer.from('a'.repeat(250)) },
          { type: 'frame', payload: Buffer.from('ok') },
        ]);
      }
      expect(decoder.push(stream)).toHaveLength(2);
    });

    it('keeps memory bounded for an endless frame', () => {
      const decoder = new MllpDecoder({ maxFrameBytes: 1024 });
      decoder.push(VT);
      const block = Buffer.alloc(64 * 1024, 0x41);
      for (let i = 0; i < 160; i++) {
        expect(decoder.push(block)).toEqual([]);
        expect(decoder.bufferedBytes).toBe(0);
      }
      expect(decoder.inFrame).toBe(true);
      expect(decoder.push(Buffer.concat([FS, CR]))).toEqual([
        { type: 'oversize', bytes: 160 * 64 * 1024, head: Buffer.alloc(OVERSIZE_HEAD_BYTES, 0x41) },
      ]);
    });

    it('keeps the head of an oversize frame (MSH for the NAK) across reads', () => {
      const decoder = new MllpDecoder({ maxFrameBytes: 200 });
      const payload = `${MSG}${'OBX|1|ED|||' + 'x'.repeat(10000)}\r`;
      const events = pushAll(decoder, bytewise(encodeMllp(payload)));
      expect(events).toHaveLength(1);
      const [event] = ofType(events, 'oversize');
      expect(event.bytes).toBe(payload.length);
      expect(event.head.toString()).toBe(payload.slice(0, OVERSIZE_HEAD_BYTES));
      expect(event.head.toString()).toContain('MSG0001');
    });

    it('validates options', () => {
      expect(() => new MllpDecoder({ maxFrameBytes: 0 })).toThrow(RangeError);
      expect(() => new MllpDecoder({ maxNoiseBytes: -1 })).toThrow(RangeError);
      expect(new MllpDecoder().maxFrameBytes).toBe(1024 * 1024);
      expect(new MllpDecoder().maxNoiseBytes).toBe(64 * 1024);
    });
  });

  it('reset() drops a partial frame', () => {
    const decoder = new MllpDecoder();
    decoder.push(Buffer.concat([VT, Buffer.from('half')]));
    decoder.reset();
    expect(decoder.bufferedBytes).toBe(0);
    expect(
      frames(decoder.push(Buffer.concat([Buffer.from('rest'), FS, CR, encodeMllp('ok')]))),
    ).toEqual(['ok']);
  });

  describe('property: random frames split at random points', () => {
    it.each([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])('seed %i', (seed) => {
      const rand = rng(seed);
      const payloads = Array.from({ length: 200 }, () =>
        randomPayload(rand, seed % 2 ? 300 : 5000),
      );
      const stream = Buffer.concat(payloads.map((p) => encodeMllp(p)));
      // Piece sizes: 1-byte reads, small reads, and reads spanning many frames.
      for (const maxPiece of [1, 7, 300, 20000]) {
        const decoder = new MllpDecoder();
        const events = pushAll(decoder, splitRandomly(stream, rand, maxPiece));
        expect(events.every((e) => e.type === 'frame')).toBe(true);
        // Compare as strings: jest's deep equality walks Buffers element by element (slow).
        expect(events.map((e) => b64((e as { payload: Buffer }).payload))).toEqual(
          payloads.map(b64),
        );
        expect(decoder.stats).toMatchObject({
          frames: payloads.length,
          noiseBytes: 0,
          oversizeFrames: 0,
          brokenFrames: 0,
          missingCr: 0,
        });
        expect(decoder.bufferedBytes).toBe(0);
      }
    });

    it('with noise between frames, gets exactly the frames back and counts the noise', () => {
      const rand = rng(42);
      const payloads: Buffer[] = [];
      const parts: Buffer[] = [];
      let noise = 0;
      for (let i = 0; i < 300; i++) {
        const p = randomPayload(rand, 400);
        payloads.push(p);
        parts.push(encodeMllp(p));
        if (rand() < 0.3) {
          // Noise must not start with CR (it would be taken as the end block's CR) nor contain VT.
          const n = randomPayload(rand, 50).filter((b) => b !== MLLP_CR);
          noise += n.length;
          parts.push(Buffer.from(n));
        }
      }
      const stream = Buffer.concat(parts);
      for (const maxPiece of [1, 13, 4096]) {
        const decoder = new MllpDecoder();
        const events = pushAll(decoder, splitRandomly(stream, rand, maxPiece));
        expect(ofType(events, 'frame').map((e) => b64(e.payload))).toEqual(payloads.map(b64));
        expect(ofType(events, 'noise').reduce((n, e) => n + e.bytes, 0)).toBe(noise);
        expect(decoder.stats.noiseBytes).toBe(noise);
      }
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Over real sockets (port 0, loopback).

interface TestServer {
  port: number;
  /** Payloads received, per connection, in order. */
  received: Buffer[][];
  events: MllpEvent[][];
  close(): Promise<void>;
}

/** A bare MLLP server: decodes with MllpDecoder and ACKs every frame with "ACK <n>". */
async function startServer(
  options?: MllpDecoderOptions,
  ackText: (n: number, payload: Buffer) => string = (n) => `ACK ${n}`,
): Promise<TestServer> {
  const received: Buffer[][] = [];
  const allEvents: MllpEvent[][] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const decoder = new MllpDecoder(options);
    const mine: Buffer[] = [];
    const evs: MllpEvent[] = [];
    received.push(mine);
    allEvents.push(evs);
    socket.on('data', (chunk: Buffer) => {
      for (const event of decoder.push(chunk)) {
        evs.push(event);
        if (event.type === 'frame') {
          mine.push(event.payload);
          socket.write(encodeMllp(ackText(mine.length, event.payload)));
        } else if (event.type === 'oversize') {
          socket.write(encodeMllp('NAK oversize'));
        }
      }
      if (decoder.noiseLimitExceeded) {
        socket.destroy();
      }
    });
    socket.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    received,
    events: allEvents,
    close: async () => {
      for (const s of sockets) {
        s.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A client that collects decoded ACK frames. */
async function connect(port: number): Promise<{
  socket: net.Socket;
  acks: string[];
  waitForAcks(n: number): Promise<string[]>;
}> {
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  await once(socket, 'connect');
  const decoder = new MllpDecoder();
  const acks: string[] = [];
  let waiter: { n: number; resolve: () => void } | null = null;
  socket.on('data', (chunk: Buffer) => {
    for (const event of decoder.push(chunk)) {
      if (event.type === 'frame') {
        acks.push(event.payload.toString());
      }
    }
    if (waiter && acks.length >= waiter.n) {
      waiter.resolve();
      waiter = null;
    }
  });
  return {
    socket,
    acks,
    waitForAcks: async (n: number) => {
      if (acks.length < n) {
        await new Promise<void>((resolve, reject) => {
          waiter = { n, resolve };
          socket.once('close', () =>
            reject(new Error(`connection closed after ${acks.length}/${n} ACKs`)),
          );
        });
      }
      return acks;
    },
  };
}

async function writeAll(socket: net.Socket, chunks: Buffer[]): Promise<void> {
  for (const chunk of chunks) {
    if (!socket.write(chunk)) {
      await once(socket, 'drain');
    }
  }
}

describe('MllpDecoder over TCP', () => {
  let server: TestServer;
  beforeEach(async () => {
    server = await startServer({ maxFrameBytes: 64 * 1024, maxNoiseBytes: 1024 });
  });
  afterEach(async () => {
    await server.close();
  });

  it('receives a frame written one byte per write (Nagle off, byte-by-byte reads)', async () => {
    const client = await connect(server.port);
    const stream = Buffer.concat([encodeMllp(MSG), encodeMllp(Buffer.from('Zoë', 'latin1'))]);
    for (const byte of bytewise(stream)) {
      client.socket.write(byte);
      // Yield so that most bytes travel in their own segment.
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(await client.waitForAcks(2)).toEqual(['ACK 1', 'ACK 2']);
    expect(server.received[0]).toEqual([Buffer.from(MSG), Buffer.from('Zoë', 'latin1')]);
    client.socket.destroy();
  });

  it('receives many frames in one write', async () => {
    const client = await connect(server.port);
    const payloads = Array.from({ length: 500 }, (_, i) => Buffer.from(`${MSG}NTE|${i}\r`));
    client.socket.write(Buffer.concat(payloads.map((p) => encodeMllp(p))));
    const acks = await client.waitForAcks(500);
    expect(acks[499]).toBe('ACK 500');
    expect(server.received[0]).toEqual(payloads);
    client.socket.destroy();
  });

  it('skips noise between frames and still ACKs every frame', async () => {
    const client = await connect(server.port);
    client.socket.write(Buffer.concat([Buffer.from('\r\n\r\n'), encodeMllp('one')]));
    await client.waitForAcks(1);
    client.socket.write(
      Buffer.concat([Buffer.from('garbage'), encodeMllp('two'), Buffer.from('\n')]),
    );
    expect(await client.waitForAcks(2)).toEqual(['ACK 1', 'ACK 2']);
    expect(server.received[0].map(String)).toEqual(['one', 'two']);
    expect(ofType(server.events[0], 'noise').reduce((n, e) => n + e.bytes, 0)).toBe(12);
    client.socket.destroy();
  });

  it('closes a connection that sends only noise past maxNoiseBytes', async () => {
    const client = await connect(server.port);
    const closed = once(client.socket, 'close');
    client.socket.write(Buffer.alloc(4096, 0x41));
    await closed;
    expect(server.received[0]).toEqual([]);
  });

  it('NAKs an oversize frame and accepts the good frame after it', async () => {
    const client = await connect(server.port);
    const big = encodeMllp(Buffer.alloc(1024 * 1024, 0x41));
    await writeAll(client.socket, splitRandomly(big, rng(11), 16 * 1024));
    client.socket.write(encodeMllp(MSG));
    expect(await client.waitForAcks(2)).toEqual(['NAK oversize', 'ACK 1']);
    expect(server.received[0]).toEqual([Buffer.from(MSG)]);
    expect(server.events[0][0]).toEqual({
      type: 'oversize',
      bytes: 1024 * 1024,
      head: Buffer.alloc(OVERSIZE_HEAD_BYTES, 0x41),
    });
    client.socket.destroy();
  });

  it('serves 50 concurrent connections, every frame intact and in order', async () => {
    const connections = 50;
    const perConnection = 40;
    const clients = await Promise.all(
      Array.from({ length: connections }, () => connect(server.port)),
    );
    const sent = clients.map((_, c) => {
      const rand = rng(1000 + c);
      return Array.from({ length: perConnection }, () => randomPayload(rand, 2000));
    });
    await Promise.all(
      clients.map(async (client, c) => {
        const rand = rng(c);
        const stream = Buffer.concat(sent[c].map((p) => encodeMllp(p)));
        // Mixed write sizes: some clients dribble, some write big blocks.
        await writeAll(client.socket, splitRandomly(stream, rand, c % 5 === 0 ? 3 : 8192));
        const acks = await client.waitForAcks(perConnection);
        expect(acks).toEqual(Array.from({ length: perConnection }, (_, i) => `ACK ${i + 1}`));
      }),
    );
    const key = (frames: Buffer[]): string => frames.map((f) => f.toString('base64')).join(',');
    const got = server.received.map(key);
    const want = sent.map(key);
    expect(got.sort()).toEqual(want.sort());
    expect(server.received.every((f) => f.length === perConnection)).toBe(true);
    for (const client of clients) {
      client.socket.destroy();
    }
  });
});
