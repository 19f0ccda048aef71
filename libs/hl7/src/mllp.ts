/**
 * MLLP (Minimal Lower Layer Protocol) frame codec.
 *
 * A frame is `<VT=0x0B> payload <FS=0x1C><CR=0x0D>` (HL7 v2.5.1 Appendix C, MLLP Release 1;
 * the same block in MLLP Release 2). The payload may contain any byte except VT and FS, so the
 * codec is binary-safe: it never decodes text, charsets are the parser's business.
 *
 * Framework-free on purpose (no Nest, nothing else from our libs): the gateway, the MLLP
 * destination sender, the CLI and the benchmarks all use it.
 *
 * Decoder choices (see docs/decisions/0002-mllp-codec.md):
 * - Bytes outside a frame are noise: discarded, counted (`stats.noiseBytes`,
 *   `pendingNoiseBytes`) and reported as `noise` events, at most one per contiguous run per
 *   `push()`. The gateway closes a connection whose `pendingNoiseBytes` exceeds
 *   `maxNoiseBytes` (the decoder itself never throws on bad input).
 * - A frame is complete at its FS. The standard end block is FS CR; a CR right after the FS
 *   (even in the next read) is consumed. If any other byte follows the FS, the FS still ends
 *   the frame (senders that omit the CR are not stalled) and `stats.missingCr` counts it.
 * - A VT inside a frame (before its FS) means the sender gave up on that frame and started
 *   anew (seen after a sender-side timeout/retry): the partial frame is discarded as noise
 *   (counted, `stats.brokenFrames`) and a new frame starts at the new VT. We do not guess
 *   that the first part was a whole message: without its end block it may be truncated.
 * - A frame whose payload exceeds `maxFrameBytes` is not buffered past the limit: its bytes
 *   are dropped as they arrive, and one `oversize` event with the payload's total size is
 *   emitted when it ends (at its FS, or at the next VT, where the stream resyncs). The event
 *   carries the frame's first OVERSIZE_HEAD_BYTES bytes so the gateway can NAK it.
 * - Whole frames inside one chunk are returned as slices of that chunk (no copy). The
 *   decoder takes ownership of pushed chunks: callers must not overwrite a chunk after
 *   `push()` (socket `data` buffers are never reused by Node, so this holds for sockets).
 *   Frames that span chunks are assembled in a growable buffer (amortised O(n), bounded by
 *   `maxFrameBytes`) and returned as a fresh copy.
 */

export const MLLP_START = 0x0b;
export const MLLP_END = 0x1c;
export const MLLP_CR = 0x0d;

export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024;
export const DEFAULT_MAX_NOISE_BYTES = 64 * 1024;
/** Bytes of an oversize frame kept in its `oversize` event (the rest is dropped). */
export const OVERSIZE_HEAD_BYTES = 4096;

/** Frame a payload. Strings are encoded with `encoding` (default UTF-8). */
export function encodeMllp(payload: Buffer | string, encoding: BufferEncoding = 'utf8'): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, encoding) : payload;
  if (body.indexOf(MLLP_START) !== -1 || body.indexOf(MLLP_END) !== -1) {
    throw new RangeError('MLLP payload must not contain VT (0x0B) or FS (0x1C) bytes');
  }
  const out = Buffer.allocUnsafe(body.length + 3);
  out[0] = MLLP_START;
  body.copy(out, 1);
  out[body.length + 1] = MLLP_END;
  out[body.length + 2] = MLLP_CR;
  return out;
}

export interface MllpDecoderOptions {
  /** Largest accepted payload in bytes (default 1 MiB). */
  maxFrameBytes?: number;
  /**
   * Bytes outside frames tolerated (since the last good frame) before the caller should treat
   * the peer as not speaking HL7/MLLP (default 64 KiB). Exposed as `maxNoiseBytes` and checked
   * by the caller against `pendingNoiseBytes`; see `noiseLimitExceeded`.
   */
  maxNoiseBytes?: number;
}

export type MllpEvent =
  /** A complete payload (a slice of the pushed chunk or a fresh copy; stays valid). */
  | { type: 'frame'; payload: Buffer }
  /**
   * A frame exceeded maxFrameBytes; `bytes` is its whole payload size, all discarded except
   * `head`: a copy of its first bytes (up to OVERSIZE_HEAD_BYTES), enough to read the MSH and
   * answer with a NAK that references MSH-10.
   */
  | { type: 'oversize'; bytes: number; head: Buffer }
  /** Bytes discarded outside frames (including broken frames cut by a new VT). */
  | { type: 'noise'; bytes: number };

export interface MllpDecoderStats {
  /** Complete frames emitted. */
  frames: number;
  /** Bytes discarded outside frames, in total. */
  noiseBytes: number;
  /** Frames discarded for exceeding maxFrameBytes. */
  oversizeFrames: number;
  /** Frames cut short by a VT before their FS (their bytes are counted as noise). */
  brokenFrames: number;
  /** Frames whose FS was followed by something other than CR. */
  missingCr: number;
}

const enum State {
  /** Between frames, looking for VT. */
  Outside,
  /** Inside a frame, collecting payload. */
  Inside,
  /** Inside an oversize frame, dropping payload until FS or VT. */
  Discarding,
}

const EMPTY = Buffer.alloc(0);
const MIN_ACCUMULATOR_BYTES = 4096;
/** Accumulators up to this size are kept for the next split frame; larger ones are freed. */
const KEEP_ACCUMULATOR_BYTES = 64 * 1024;

export class MllpDecoder {
  readonly maxFrameBytes: number;
  readonly maxNoiseBytes: number;

  private readonly counters: MllpDecoderStats = {
    frames: 0,
    noiseBytes: 0,
    oversizeFrames: 0,
    brokenFrames: 0,
    missingCr: 0,
  };
  private state: State = State.Outside;
  /** Set after an FS: the next byte should be the CR of the end block. */
  private expectCr = false;
  /** Noise since the last frame. */
  private pendingNoise = 0;
  /** Noise not yet reported in a `noise` event. */
  private unreportedNoise = 0;
  /** Payload size seen so far for the frame being discarded (State.Discarding). */
  private discarded = 0;
  /** First bytes of the frame being discarded (State.Discarding), up to OVERSIZE_HEAD_BYTES. */
  private head: Buffer = EMPTY;
  private headLength = 0;
  /** Partial payload of the current frame (State.Inside), valid bytes are [0, accLength). */
  private acc: Buffer | null = null;
  private accLength = 0;

  constructor(options: MllpDecoderOptions = {}) {
    const maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    const maxNoiseBytes = options.maxNoiseBytes ?? DEFAULT_MAX_NOISE_BYTES;
    if (!Number.isSafeInteger(maxFrameBytes) || maxFrameBytes < 1) {
      throw new RangeError(`maxFrameBytes must be a positive integer, got ${maxFrameBytes}`);
    }
    if (!Number.isSafeInteger(maxNoiseBytes) || maxNoiseBytes < 0) {
      throw new RangeError(`maxNoiseBytes must be a non-negative integer, got ${maxNoiseBytes}`);
    }
    this.maxFrameBytes = maxFrameBytes;
    this.maxNoiseBytes = maxNoiseBytes;
  }

  /** Counters since construction. The object is live: read it, do not keep a copy. */
  get stats(): Readonly<MllpDecoderStats> {
    return this.counters;
  }

  /** Noise bytes since the last complete frame. */
  get pendingNoiseBytes(): number {
    return this.pendingNoise;
  }

  /** True when `pendingNoiseBytes` exceeds `maxNoiseBytes`: the peer is not sending MLLP. */
  get noiseLimitExceeded(): boolean {
    return this.pendingNoise > this.maxNoiseBytes;
  }

  /** Bytes buffered for an incomplete frame (0 while discarding an oversize frame). */
  get bufferedBytes(): number {
    return this.state === State.Inside ? this.accLength : 0;
  }

  /** True while inside a frame (buffering or discarding), i.e. a frame has started but not ended. */
  get inFrame(): boolean {
    return this.state !== State.Outside;
  }

  /** Feed bytes from a socket read; returns the events completed by this chunk, in order. */
  push(chunk: Buffer): MllpEvent[] {
    const events: MllpEvent[] = [];
    const len = chunk.length;
    let i = 0;

    if (this.expectCr && len > 0) {
      this.expectCr = false;
      if (chunk[0] === MLLP_CR) {
        i = 1;
      } else {
        this.counters.missingCr++;
      }
    }

    while (i < len) {
      if (this.state === State.Outside) {
        const start = chunk.indexOf(MLLP_START, i);
        if (start === -1) {
          this.addNoise(len - i);
          break;
        }
        this.addNoise(start - i);
        this.flushNoise(events);
        i = start + 1;
        this.state = State.Inside;
        this.accLength = 0;
        continue;
      }

      // Inside a frame (buffering or discarding): the frame ends at FS; a VT before the FS
      // restarts it. Search FS over the rest of the chunk, VT only up to that FS.
      const end = chunk.indexOf(MLLP_END, i);
      const restart = chunk.indexOf(MLLP_START, i);
      const stop = end === -1 ? restart : restart === -1 || end < restart ? end : restart;

      if (stop === -1) {
        this.absorb(chunk, i, len);
        break;
      }

      if (stop === end) {
        this.finishFrame(chunk, i, end, events);
        i = end + 1;
        if (i < len) {
          if (chunk[i] === MLLP_CR) {
            i++;
          } else {
            this.counters.missingCr++;
          }
        } else {
          this.expectCr = true;
        }
        continue;
      }

      // A VT before the FS: the current frame is broken (or oversize) and a new one starts.
      if (this.state === State.Discarding) {
        this.extendHead(chunk, i, restart);
        this.reportOversize(this.discarded + (restart - i), this.takeHead(), events);
      } else if (this.accLength + (restart - i) > this.maxFrameBytes) {
        this.reportOversize(
          this.accLength + (restart - i),
          this.captureHead(chunk, i, restart),
          events,
        );
        this.releaseAccumulator();
      } else {
        this.counters.brokenFrames++;
        // The VT that opened the broken frame counts as noise too.
        this.addNoise(1 + this.accLength + (restart - i));
        this.flushNoise(events);
        this.releaseAccumulator();
      }
      this.state = State.Inside;
      this.accLength = 0;
      i = restart + 1;
    }

    this.flushNoise(events);
    return events;
  }

  /** Drop any partial frame and pending counters (e.g. when the connection is reset). */
  reset(): void {
    this.state = State.Outside;
    this.expectCr = false;
    this.pendingNoise = 0;
    this.unreportedNoise = 0;
    this.discarded = 0;
    this.head = EMPTY;
    this.headLength = 0;
    this.accLength = 0;
    this.acc = null;
  }

  /** Payload bytes [from, to) of `chunk` belong to the current frame, which continues. */
  private absorb(chunk: Buffer, from: number, to: number): void {
    const n = to - from;
    if (this.state === State.Discarding) {
      this.extendHead(chunk, from, to);
      this.discarded += n;
      return;
    }
    if (this.accLength + n > this.maxFrameBytes) {
      this.state = State.Discarding;
      this.head = Buffer.allocUnsafe(OVERSIZE_HEAD_BYTES);
      this.headLength = this.copyHead(this.head, chunk, from, to);
      this.discarded = this.accLength + n;
      this.accLength = 0;
      this.acc = null;
      return;
    }
    this.append(chunk, from, to);
  }

  /** The current frame ends with payload bytes [from, to) of `chunk` (an FS is at `to`). */
  private finishFrame(chunk: Buffer, from: number, to: number, events: MllpEvent[]): void {
    const state = this.state;
    this.state = State.Outside;
    if (state === State.Discarding) {
      this.extendHead(chunk, from, to);
      this.reportOversize(this.discarded + (to - from), this.takeHead(), events);
      return;
    }
    const size = this.accLength + (to - from);
    if (size > this.maxFrameBytes) {
      const head = this.captureHead(chunk, from, to);
      this.accLength = 0;
      this.releaseAccumulator();
      this.reportOversize(size, head, events);
      return;
    }
    let payload: Buffer;
    if (this.accLength === 0) {
      // Common case: the whole frame is in this chunk. A slice, no copy.
      payload = chunk.subarray(from, to);
    } else {
      this.append(chunk, from, to);
      const acc = this.acc as Buffer;
      payload = Buffer.from(acc.subarray(0, this.accLength));
      this.accLength = 0;
      this.releaseAccumulator();
    }
    this.counters.frames++;
    this.pendingNoise = 0;
    events.push({ type: 'frame', payload });
  }

  private append(chunk: Buffer, from: number, to: number): void {
    const needed = this.accLength + (to - from);
    let acc = this.acc;
    if (acc === null || acc.length < needed) {
      let capacity = Math.max(MIN_ACCUMULATOR_BYTES, acc === null ? 0 : acc.length * 2);
      while (capacity < needed) {
        capacity *= 2;
      }
      capacity = Math.min(capacity, this.maxFrameBytes);
      const grown = Buffer.allocUnsafe(capacity);
      if (acc !== null && this.accLength > 0) {
        acc.copy(grown, 0, 0, this.accLength);
      }
      acc = grown;
      this.acc = grown;
    }
    chunk.copy(acc, this.accLength, from, to);
    this.accLength = needed;
  }

  private releaseAccumulator(): void {
    if (this.acc !== null && this.acc.length > KEEP_ACCUMULATOR_BYTES) {
      this.acc = null;
    }
  }

  /** A copy of the first OVERSIZE_HEAD_BYTES of the current frame: buffered bytes, then chunk. */
  private captureHead(chunk: Buffer, from: number, to: number): Buffer {
    const head = Buffer.allocUnsafe(OVERSIZE_HEAD_BYTES);
    return Buffer.from(head.subarray(0, this.copyHead(head, chunk, from, to)));
  }

  /** Copy buffered bytes then chunk[from, to) into `head`, up to its size; returns the length. */
  private copyHead(head: Buffer, chunk: Buffer, from: number, to: number): number {
    const fromAcc = Math.min(this.accLength, head.length);
    if (fromAcc > 0 && this.acc !== null) {
      this.acc.copy(head, 0, 0, fromAcc);
    }
    const fromChunk = Math.min(to - from, head.length - fromAcc);
    chunk.copy(head, fromAcc, from, from + fromChunk);
    return fromAcc + fromChunk;
  }

  private extendHead(chunk: Buffer, from: number, to: number): void {
    if (this.headLength < this.head.length && to > from) {
      const n = Math.min(to - from, this.head.length - this.headLength);
      chunk.copy(this.head, this.headLength, from, from + n);
      this.headLength += n;
    }
  }

  private takeHead(): Buffer {
    const head = this.head.subarray(0, this.headLength);
    this.head = EMPTY;
    this.headLength = 0;
    return head;
  }

  private reportOversize(bytes: number, head: Buffer, events: MllpEvent[]): void {
    this.discarded = 0;
    this.counters.oversizeFrames++;
    events.push({ type: 'oversize', bytes, head });
  }

  private addNoise(bytes: number): void {
    if (bytes > 0) {
      this.pendingNoise += bytes;
      this.unreportedNoise += bytes;
      this.counters.noiseBytes += bytes;
    }
  }

  private flushNoise(events: MllpEvent[]): void {
    if (this.unreportedNoise > 0) {
      events.push({ type: 'noise', bytes: this.unreportedNoise });
      this.unreportedNoise = 0;
    }
  }
}
