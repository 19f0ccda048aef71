import type { FieldRule } from '@engine/config';
import {
  type Hl7Message,
  type Hl7Path,
  Hl7ParseError,
  type Hl7Segment,
  encodeEscapes,
  formatPath,
  parsePath,
} from '@engine/hl7';

/**
 * Declarative field rules applied to outbound HL7 v2 (route `transform.rules`), in order:
 *
 * - `{ set: 'MSH-5', value: 'EHR' }`: the value is plain text, escaped for the message's
 *   separators (`^` becomes `\S\`); the segment, field, repetition or component is created
 *   when missing. A path without a repetition (`PID-3`) replaces the whole field.
 * - `{ copy: 'PID-3[1].1', to: 'PID-2' }`: copies the wire text (components, repetitions
 *   and escapes kept). A field path without a repetition copies every repetition. Nothing
 *   is copied when the source is absent.
 * - `{ delete: 'PID-3[2]' }`: removes that repetition; `PID-19` empties the field,
 *   `PV1-3.2` the component; a bare segment name (`ZPD`, `NTE(2)`) removes the segment(s).
 *   Deleting something absent does nothing.
 * - `{ map: 'PV1-2', table: 'classes', default: 'U' }`: replaces the value by
 *   `tables[table][value]`; with no entry the value is kept, or replaced by `default` when
 *   given. Absent and empty values are left alone. A field path without a repetition maps
 *   every repetition.
 *
 * Paths are those of libs/hl7 (`PID-3[2].4.1`, `OBX(2)-5`). MSH-1 and MSH-2 (the separators)
 * cannot be changed. A rule that does not change anything leaves the message unmodified, so
 * it is still re-emitted byte for byte.
 */

export type LookupTables = Readonly<Record<string, Readonly<Record<string, string>>>>;

/**
 * Why a delivery cannot be rendered; permanent (rendering is deterministic, a retry fails
 * the same way). `BAD_RULE`: a field rule with a bad path or an unknown table, or one that
 * names a charset that does not exist; `BAD_INPUT`: the delivery lacks what its kind needs
 * (a message delivery without its message, a stored message that does not parse, a merge
 * event without retired identifiers).
 * Messages name paths and rules, never patient data.
 */
export class TransformError extends Error {
  override readonly name = 'TransformError';

  constructor(
    readonly code: 'BAD_RULE' | 'BAD_INPUT',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

function ruleError(message: string, cause?: unknown): TransformError {
  return new TransformError('BAD_RULE', message, cause === undefined ? undefined : { cause });
}

/** A segment (and which one), for `delete: ZPD` / `delete: NTE(2)`. */
interface SegmentTarget {
  readonly segment: string;
  readonly occurrence: number | undefined;
}

type CompiledRule =
  | { kind: 'set'; path: Hl7Path; value: string }
  | { kind: 'copy'; from: Hl7Path; to: Hl7Path }
  | { kind: 'delete'; path: Hl7Path }
  | { kind: 'delete-segment'; target: SegmentTarget }
  | {
      kind: 'map';
      path: Hl7Path;
      table: Readonly<Record<string, string>>;
      fallback: string | undefined;
    };

const SEGMENT_ONLY = /^([A-Za-z0-9]{3})(?:\((\d+)\))?$/;

function isHeader(name: string): boolean {
  return name === 'MSH' || name === 'FHS' || name === 'BHS';
}

function ruleName(rule: FieldRule): string {
  if ('set' in rule) {
    return 'set';
  }
  if ('copy' in rule) {
    return 'copy';
  }
  if ('delete' in rule) {
    return 'delete';
  }
  return 'map';
}

function compileRule(rule: FieldRule, tables: LookupTables, where: string): CompiledRule {
  const path = (text: string, editable: boolean): Hl7Path => {
    let p: Hl7Path;
    try {
      p = parsePath(text);
    } catch (err) {
      const reason = err instanceof Hl7ParseError ? err.message : 'invalid path';
      throw ruleError(`${where}: ${reason}`, err);
    }
    if (editable && isHeader(p.segment) && p.field <= 2) {
      throw ruleError(
        `${where}: ${p.segment}-1 and ${p.segment}-2 (the separators) cannot be changed`,
      );
    }
    return p;
  };
  if ('set' in rule) {
    return { kind: 'set', path: path(rule.set, true), value: rule.value };
  }
  if ('copy' in rule) {
    return { kind: 'copy', from: path(rule.copy, false), to: path(rule.to, true) };
  }
  if ('delete' in rule) {
    const m = SEGMENT_ONLY.exec(rule.delete);
    if (m !== null) {
      const segment = m[1].toUpperCase();
      const occurrence = m[2] === undefined ? undefined : Number(m[2]);
      if (isHeader(segment)) {
        throw ruleError(`${where}: the ${segment} segment cannot be deleted`);
      }
      if (occurrence !== undefined && (occurrence < 1 || !Number.isSafeInteger(occurrence))) {
        throw ruleError(`${where}: invalid segment '${rule.delete}': positions are 1-based`);
      }
      return { kind: 'delete-segment', target: { segment, occurrence } };
    }
    return { kind: 'delete', path: path(rule.delete, true) };
  }
  const table = Object.hasOwn(tables, rule.table) ? tables[rule.table] : undefined;
  if (table === undefined) {
    throw ruleError(`${where}: unknown table '${rule.table}' (not under tables:)`);
  }
  return { kind: 'map', path: path(rule.map, true), table, fallback: rule.default };
}

function compileRules(rules: readonly FieldRule[], tables: LookupTables): CompiledRule[] {
  return rules.map((rule, i) => compileRule(rule, tables, `rules[${i}] (${ruleName(rule)})`));
}

/**
 * Checks rules (paths, tables) without a message, e.g. when the configuration is loaded.
 * Throws {@link TransformError} (`BAD_RULE`) naming the rule (`rules[2] (map): unknown table 'classes' …`).
 */
export function checkRules(rules: readonly FieldRule[], tables: LookupTables): void {
  compileRules(rules, tables);
}

/**
 * Applies field rules to a message, in order. Every rule is checked first: on a bad rule,
 * {@link TransformError} (`BAD_RULE`) is thrown before anything is changed.
 */
export function applyRules(
  msg: Hl7Message,
  rules: readonly FieldRule[],
  tables: LookupTables,
): void {
  for (const rule of compileRules(rules, tables)) {
    applyCompiled(msg, rule);
  }
}

/** A path with no repetition and no component: the whole field, every repetition. */
function wholeField(p: Hl7Path): boolean {
  return p.repetition === undefined && p.component === undefined;
}

/** The segment a path names, when present (never created). */
function segmentOf(msg: Hl7Message, p: Hl7Path): Hl7Segment | undefined {
  return msg.segment(p.segment, p.occurrence);
}

/** The wire text at a path; a whole-field path gives every repetition. */
function currentRaw(msg: Hl7Message, p: Hl7Path): string | undefined {
  const seg = segmentOf(msg, p);
  if (seg === undefined) {
    return undefined;
  }
  if (isHeader(seg.name) && p.field <= 2) {
    // the separators themselves: copied as a value, never as separators
    const value = msg.get(formatPath(p));
    return value === undefined ? undefined : encodeEscapes(value, msg.delimiters);
  }
  return wholeField(p) ? seg.rawField(p.field) : msg.getRaw(formatPath(p));
}

/** Writes wire text at a path unless it is already there (an unchanged message stays as is). */
function write(msg: Hl7Message, p: Hl7Path, raw: string): void {
  if (currentRaw(msg, p) !== raw) {
    msg.setRaw(formatPath(p), raw);
  }
}

function applyCompiled(msg: Hl7Message, rule: CompiledRule): void {
  switch (rule.kind) {
    case 'set':
      write(msg, rule.path, encodeEscapes(rule.value, msg.delimiters));
      return;
    case 'copy': {
      const raw = currentRaw(msg, rule.from);
      if (raw !== undefined) {
        write(msg, rule.to, raw);
      }
      return;
    }
    case 'delete':
      deletePath(msg, rule.path);
      return;
    case 'delete-segment':
      deleteSegments(msg, rule.target);
      return;
    case 'map':
      mapPath(msg, rule.path, rule.table, rule.fallback);
      return;
  }
}

function deletePath(msg: Hl7Message, p: Hl7Path): void {
  const seg = segmentOf(msg, p);
  if (seg === undefined) {
    return;
  }
  if (p.repetition !== undefined && p.component === undefined) {
    const field = seg.rawField(p.field);
    if (field === undefined || field === '') {
      return;
    }
    const reps = field.split(msg.delimiters.repetition);
    if (p.repetition > reps.length) {
      return;
    }
    reps.splice(p.repetition - 1, 1);
    seg.setRaw(p.field, reps.join(msg.delimiters.repetition));
    return;
  }
  const current = currentRaw(msg, p);
  if (current !== undefined && current !== '') {
    msg.setRaw(formatPath(p), '');
  }
}

function deleteSegments(msg: Hl7Message, target: SegmentTarget): void {
  if (target.occurrence !== undefined) {
    const seg = msg.segment(target.segment, target.occurrence);
    if (seg !== undefined) {
      msg.removeSegment(seg);
    }
    return;
  }
  for (const seg of msg.segments(target.segment)) {
    msg.removeSegment(seg);
  }
}

function mapPath(
  msg: Hl7Message,
  p: Hl7Path,
  table: Readonly<Record<string, string>>,
  fallback: string | undefined,
): void {
  const seg = segmentOf(msg, p);
  if (seg === undefined) {
    return;
  }
  const targets: Hl7Path[] = [];
  if (wholeField(p)) {
    const field = seg.rawField(p.field);
    const count =
      field === undefined || field === '' ? 0 : field.split(msg.delimiters.repetition).length;
    for (let r = 1; r <= count; r++) {
      targets.push({ ...p, repetition: r });
    }
  } else {
    targets.push(p);
  }
  for (const t of targets) {
    const path = formatPath(t);
    const value = msg.get(path);
    if (value === undefined || value === '') {
      continue;
    }
    const mapped = Object.hasOwn(table, value) ? table[value] : fallback;
    if (mapped !== undefined && mapped !== value) {
      msg.set(path, mapped);
    }
  }
}
