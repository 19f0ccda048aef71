import { encodeText } from './charset';
import { type Delimiters, encodingCharacters } from './delimiters';
import { Hl7ParseError } from './errors';
import { decodeEscapes, encodeEscapes } from './escape';
import { type FieldPath, type Hl7Path, parseFieldPath, parsePath } from './path';

/** Shared by a message and its segments: what a segment needs to read and edit itself. */
interface SegmentContext {
  readonly delimiters: Delimiters;
  readonly encoding: string;
  readonly onChange: () => void;
}

const SEGMENT_NAME = /^[A-Z0-9]{3}$/;

/** MSH and the batch headers FHS/BHS carry the field separator as their first field. */
function isHeaderSegment(name: string): boolean {
  return name === 'MSH' || name === 'FHS' || name === 'BHS';
}

/** The n-th (1-based) piece of `s` split by `sep`, or undefined when there are fewer pieces. */
function nth(s: string, sep: string, n: number): string | undefined {
  let start = 0;
  for (let k = 1; k < n; k++) {
    const i = s.indexOf(sep, start);
    if (i === -1) {
      return undefined;
    }
    start = i + 1;
  }
  const end = s.indexOf(sep, start);
  if (start === 0) {
    return end === -1 ? s : s.slice(0, end);
  }
  return end === -1 ? s.slice(start) : s.slice(start, end);
}

/** Replace the n-th (1-based) piece of `s` split by `sep`, padding with empty pieces. */
function replaceNth(s: string, sep: string, n: number, value: string): string {
  const parts = s.split(sep);
  while (parts.length < n) {
    parts.push('');
  }
  parts[n - 1] = value;
  return parts.join(sep);
}

/**
 * One segment. Fields are split from the segment text only when the segment is first read;
 * values are unescaped only when they contain the escape character.
 *
 * Field numbers are 1-based as in `PID-3`. For MSH (and FHS/BHS) field 1 is the field
 * separator and field 2 the encoding characters: that offset is handled here, in
 * {@link Hl7Segment.rawField}, and nowhere else.
 */
export class Hl7Segment {
  private raw: string | undefined;
  private fields: string[] | undefined;
  private readonly header: boolean;

  /** @internal Segments are created by {@link Hl7Message}; use `addSegment()`. */
  constructor(
    private readonly ctx: SegmentContext,
    readonly name: string,
    raw: string | undefined,
    fields?: string[],
  ) {
    this.raw = raw;
    this.fields = fields;
    this.header = isHeaderSegment(name);
  }

  private split(): string[] {
    if (this.fields === undefined) {
      this.fields = (this.raw ?? this.name).split(this.ctx.delimiters.field);
    }
    return this.fields;
  }

  /** Number of fields present (the highest field number with a value or a delimiter). */
  get fieldCount(): number {
    const f = this.split();
    return this.header ? f.length : f.length - 1;
  }

  /**
   * The raw (still escaped) text of field `n`, all repetitions; undefined when absent.
   * MSH-1 is the field separator, MSH-2 the encoding characters.
   */
  rawField(n: number): string | undefined {
    const f = this.split();
    if (this.header) {
      return n === 1 ? this.ctx.delimiters.field : f[n - 1];
    }
    return f[n];
  }

  /** @internal Read a parsed path; `rawValue` skips unescaping. */
  read(p: FieldPath, rawValue: boolean): string | undefined {
    const field = this.rawField(p.field);
    if (field === undefined) {
      return undefined;
    }
    if (this.header && p.field <= 2) {
      // the separators themselves: never split nor unescaped
      return (p.repetition ?? 1) === 1 && (p.component ?? 1) === 1 && (p.subcomponent ?? 1) === 1
        ? field
        : undefined;
    }
    const d = this.ctx.delimiters;
    let v: string | undefined = field;
    if (p.repetition !== undefined || v.includes(d.repetition)) {
      v = nth(v, d.repetition, p.repetition ?? 1);
    }
    if (v !== undefined && p.component !== undefined) {
      v = nth(v, d.component, p.component);
      if (v !== undefined && p.subcomponent !== undefined) {
        v = nth(v, d.subcomponent, p.subcomponent);
      }
    }
    if (v === undefined || rawValue || !v.includes(d.escape)) {
      return v;
    }
    return decodeEscapes(v, d, this.ctx.encoding);
  }

  /**
   * Decoded value at `3`, `3[2]`, `3.4`, `3[2].4.1` (or a field number). A field or component
   * read returns its first repetition with the lower-level separators intact, each piece
   * unescaped. Undefined when absent, '' when present but empty.
   */
  get(path: string | number): string | undefined {
    return this.read(parseFieldPath(path), false);
  }

  /** Like {@link get} but without unescaping (the text as it is on the wire). */
  getRaw(path: string | number): string | undefined {
    return this.read(parseFieldPath(path), true);
  }

  /** Every repetition of a field (decoded). An absent or empty field gives []. */
  getAll(path: string | number): string[] {
    return this.extractAll(parseFieldPath(path));
  }

  /** @internal */
  extractAll(p: FieldPath): string[] {
    if (p.repetition !== undefined) {
      const one = this.read(p, false);
      return one === undefined ? [] : [one];
    }
    const field = this.rawField(p.field);
    if (field === undefined || field === '') {
      return [];
    }
    if (this.header && p.field <= 2) {
      return [field];
    }
    const reps = field.split(this.ctx.delimiters.repetition);
    const out: string[] = [];
    for (let r = 1; r <= reps.length; r++) {
      out.push(this.read({ ...p, repetition: r }, false) ?? '');
    }
    return out;
  }

  /** Set the value at a field path, escaping it. See {@link Hl7Message.set}. */
  set(path: string | number, value: string): void {
    this.assign(parseFieldPath(path), encodeEscapes(value, this.ctx.delimiters));
  }

  /** Set already-escaped text (e.g. copied with getRaw()) at a field path. */
  setRaw(path: string | number, value: string): void {
    this.assign(parseFieldPath(path), value);
  }

  /** @internal */
  assign(p: FieldPath, encoded: string): void {
    if (this.header && p.field <= 2) {
      throw new Hl7ParseError('BAD_PATH', `${this.name}-1 and ${this.name}-2 cannot be set`);
    }
    const d = this.ctx.delimiters;
    const f = this.split();
    const idx = this.header ? p.field - 1 : p.field;
    while (f.length <= idx) {
      f.push('');
    }
    if (p.repetition === undefined && p.component === undefined) {
      f[idx] = encoded;
    } else {
      const r = p.repetition ?? 1;
      let value = encoded;
      if (p.component !== undefined) {
        const rep = nth(f[idx], d.repetition, r) ?? '';
        if (p.subcomponent !== undefined) {
          const comp = nth(rep, d.component, p.component) ?? '';
          value = replaceNth(comp, d.subcomponent, p.subcomponent, encoded);
        }
        value = replaceNth(rep, d.component, p.component, value);
      }
      f[idx] = replaceNth(f[idx], d.repetition, r, value);
    }
    this.raw = undefined;
    this.ctx.onChange();
  }

  /** The segment as text (without terminator). */
  toString(): string {
    return this.raw ?? this.split().join(this.ctx.delimiters.field);
  }
}

/** @internal What the parser or createMessage() hands to the message. */
export interface MessageInit {
  delimiters: Delimiters;
  encoding: string;
  /** decoded text of a parsed message (segments are located in it lazily) */
  text?: string;
  /** offset of 'MSH' in text */
  start?: number;
  /** the bytes the message was parsed from */
  source?: Buffer;
  /** MSH fields already split by the parser (only when they are the first segment's fields) */
  mshFields?: string[];
}

/**
 * A parsed or built HL7 v2 message.
 *
 * Parsed messages are lazy: segments are located on demand, a segment's fields are split when
 * it is first read, escapes decoded only when a value contains the escape character. An
 * unmodified parsed message serializes back to exactly its input (`toBuffer()` returns the
 * original bytes); once edited it is re-serialized with `\r` after every segment.
 */
export class Hl7Message {
  readonly delimiters: Delimiters;
  /** Node/iconv encoding name used to decode (and to encode in toBuffer), e.g. 'utf8', 'latin1'. */
  readonly encoding: string;

  private readonly text: string;
  private readonly source: Buffer | undefined;
  private readonly segs: Hl7Segment[] = [];
  private readonly ctx: SegmentContext;
  private pos: number;
  private scanned: boolean;
  private nextCR = -1;
  private nextLF = -1;
  private modified: boolean;

  /** @internal Use parseMessage() or createMessage(). */
  constructor(init: MessageInit) {
    this.delimiters = init.delimiters;
    this.encoding = init.encoding;
    this.text = init.text ?? '';
    this.source = init.source;
    this.pos = init.start ?? 0;
    this.scanned = init.text === undefined;
    this.modified = init.text === undefined;
    this.ctx = {
      delimiters: init.delimiters,
      encoding: init.encoding,
      onChange: () => {
        this.modified = true;
      },
    };
    if (init.text !== undefined) {
      this.scanNext(init.mshFields);
    }
  }

  /** Locate the next non-empty segment in the text. */
  private scanNext(firstFields?: string[]): Hl7Segment | undefined {
    const text = this.text;
    const len = text.length;
    let pos = this.pos;
    while (pos < len) {
      if (this.nextCR < pos) {
        const i = text.indexOf('\r', pos);
        this.nextCR = i === -1 ? len : i;
      }
      if (this.nextLF < pos) {
        const i = text.indexOf('\n', pos);
        this.nextLF = i === -1 ? len : i;
      }
      const start = pos;
      const end = this.nextCR < this.nextLF ? this.nextCR : this.nextLF;
      pos = end + 1;
      if (end === start) {
        continue; // empty segment (blank line, or the LF of a CRLF)
      }
      if (text.charCodeAt(start) <= 0x20 && text.slice(start, end).trim() === '') {
        continue; // whitespace-only line
      }
      const fs = this.delimiters.field;
      let nameEnd: number;
      if (end - start >= 4 && text[start + 3] === fs) {
        nameEnd = start + 3;
      } else {
        const i = text.indexOf(fs, start);
        nameEnd = i === -1 || i > end ? end : i;
      }
      const raw = text.slice(start, end);
      const seg = new Hl7Segment(this.ctx, raw.slice(0, nameEnd - start), raw, firstFields);
      firstFields = undefined;
      this.segs.push(seg);
      this.pos = pos;
      return seg;
    }
    this.pos = len;
    this.scanned = true;
    return undefined;
  }

  private scanAll(): void {
    while (!this.scanned) {
      this.scanNext();
    }
  }

  /** All segments, or those with the given name, in message order. */
  segments(name?: string): Hl7Segment[] {
    this.scanAll();
    return name === undefined ? this.segs.slice() : this.segs.filter((s) => s.name === name);
  }

  /** The `occurrence`-th (1-based) segment with this name, or undefined. */
  segment(name: string, occurrence = 1): Hl7Segment | undefined {
    let seen = 0;
    const segs = this.segs;
    for (let i = 0; i < segs.length; i++) {
      if (segs[i].name === name && ++seen === occurrence) {
        return segs[i];
      }
    }
    while (!this.scanned) {
      const s = this.scanNext();
      if (s !== undefined && s.name === name && ++seen === occurrence) {
        return s;
      }
    }
    return undefined;
  }

  hasSegment(name: string): boolean {
    return this.segment(name) !== undefined;
  }

  /** Append a new, empty segment (name: 3 upper-case letters or digits). */
  addSegment(name: string): Hl7Segment {
    if (!SEGMENT_NAME.test(name)) {
      throw new Hl7ParseError('BAD_PATH', `Invalid segment name '${name}'`);
    }
    this.scanAll();
    const fields = isHeaderSegment(name) ? [name, encodingCharacters(this.delimiters)] : [name];
    const seg = new Hl7Segment(this.ctx, name, undefined, fields);
    this.segs.push(seg);
    this.modified = true;
    return seg;
  }

  /** Remove a segment of this message; returns false when it is not one of ours. */
  removeSegment(segment: Hl7Segment): boolean {
    this.scanAll();
    const i = this.segs.indexOf(segment);
    if (i === -1) {
      return false;
    }
    this.segs.splice(i, 1);
    this.modified = true;
    return true;
  }

  /**
   * Decoded value at a path such as `PID-3`, `PID-3[2].4.1`, `OBX(2)-5`. A field (or component)
   * read returns its first repetition (or the named one) with the lower-level separators intact,
   * each piece unescaped. `MSH-1` is the field separator, `MSH-2` the encoding characters.
   * Undefined when absent; '' when present but empty. Throws Hl7ParseError('BAD_PATH').
   */
  get(path: string): string | undefined {
    const p = parsePath(path);
    return this.segment(p.segment, p.occurrence)?.read(p, false);
  }

  /** Like {@link get} but the escaped wire text. */
  getRaw(path: string): string | undefined {
    const p = parsePath(path);
    return this.segment(p.segment, p.occurrence)?.read(p, true);
  }

  /** Every repetition of a field (decoded), in the first matching segment. Absent or empty: []. */
  getAll(path: string): string[] {
    const p = parsePath(path);
    return this.segment(p.segment, p.occurrence)?.extractAll(p) ?? [];
  }

  /**
   * Set a value (escaped for the message's delimiters), creating the segment, field, repetition,
   * component as needed. The addressed element is replaced: `PID-3` replaces the whole field (all
   * repetitions), `PID-3[2]` only the second repetition, `PID-3.4` component 4 of the first.
   */
  set(path: string, value: string): void {
    this.assignPath(parsePath(path), encodeEscapes(value, this.delimiters));
  }

  /** Set already-escaped wire text at a path (e.g. a value copied with getRaw()). */
  setRaw(path: string, value: string): void {
    this.assignPath(parsePath(path), value);
  }

  private assignPath(p: Hl7Path, encoded: string): void {
    let seg = this.segment(p.segment, p.occurrence);
    if (seg === undefined) {
      let count = this.segments(p.segment).length;
      do {
        seg = this.addSegment(p.segment);
      } while (++count < p.occurrence);
    }
    seg.assign(p, encoded);
  }

  /** Serialized text: the original text when unmodified, else segments joined by `\r`. */
  toString(): string {
    if (!this.modified) {
      return this.text;
    }
    this.scanAll();
    let out = '';
    for (const s of this.segs) {
      out += s.toString() + '\r';
    }
    return out;
  }

  /** The original bytes when parsed from a Buffer and unmodified; else encoded in {@link encoding}. */
  toBuffer(): Buffer {
    if (!this.modified && this.source !== undefined) {
      return this.source;
    }
    return encodeText(this.toString(), this.encoding);
  }

  /** True once set()/addSegment()/removeSegment() changed the message. */
  get isModified(): boolean {
    return this.modified;
  }

  private header(path: string): string {
    return this.get(path) ?? '';
  }

  /** MSH-10 */
  get controlId(): string {
    return this.header('MSH-10');
  }
  /** MSH-9.1 */
  get messageType(): string {
    return this.header('MSH-9.1');
  }
  /** MSH-9.2 */
  get triggerEvent(): string {
    return this.header('MSH-9.2');
  }
  /** MSH-9.3 */
  get messageStructure(): string {
    return this.header('MSH-9.3');
  }
  /** MSH-12.1 */
  get version(): string {
    return this.header('MSH-12.1');
  }
  /** MSH-3.1 */
  get sendingApplication(): string {
    return this.header('MSH-3.1');
  }
  /** MSH-4.1 */
  get sendingFacility(): string {
    return this.header('MSH-4.1');
  }
  /** MSH-5.1 */
  get receivingApplication(): string {
    return this.header('MSH-5.1');
  }
  /** MSH-6.1 */
  get receivingFacility(): string {
    return this.header('MSH-6.1');
  }
  /** MSH-15 */
  get acceptAckType(): string {
    return this.header('MSH-15');
  }
  /** MSH-16 */
  get applicationAckType(): string {
    return this.header('MSH-16');
  }
  /** MSH-18 (first repetition), '' when absent */
  get characterSet(): string {
    return this.header('MSH-18');
  }
}
