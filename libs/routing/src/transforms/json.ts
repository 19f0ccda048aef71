import { type NormalizedMessage, normalizeMessage } from '@engine/mpi';
import type { RenderInput, RenderOptions, Rendered, SourceEvent, SourceMessage } from '../types';
import { parseStored } from './hl7';
import { TransformError } from './rules';

/**
 * The JSON event envelope (schema `libs/routing/schemas/event.v1.json`, docs/events.md):
 *
 * ```json
 * { "schema": "https://hl7-mpi-engine.dev/schemas/event.v1.json", "version": 1,
 *   "id": "…", "type": "patient.merged", "occurredAt": "2024-05-01T10:00:00.000Z",
 *   "euid": "…", "source": { "feed": …, "messageId": …, … }, "data": { … } }
 * ```
 *
 * Event deliveries: `id` is the event key, `type` the event type, `occurredAt` the event time,
 * `data` the event payload as libs/mpi wrote it (keys sorted). Message deliveries: `id` is
 * `msg:<message id>`, `type` is `hl7.<MSH-9.1>_<MSH-9.2>` (`hl7.ADT_A01`), `occurredAt` the
 * time received, `data` the canonical model of libs/mpi `normalizeMessage`. Deterministic:
 * the same delivery renders the same bytes on every attempt.
 */

export const EVENT_SCHEMA_URL = 'https://hl7-mpi-engine.dev/schemas/event.v1.json';
export const JSON_CONTENT_TYPE = 'application/json';

/** Where the event or message came from; every field null for decision events. */
export interface EnvelopeSource {
  feed: string | null;
  messageId: string | null;
  /** MSH-10 */
  controlId: string | null;
  /** MSH-9.1 */
  messageType: string | null;
  /** MSH-9.2, else EVN-1 */
  trigger: string | null;
  /** MSH-3.1 */
  sendingApplication: string | null;
  /** MSH-4.1 */
  sendingFacility: string | null;
}

export interface EventEnvelope {
  schema: typeof EVENT_SCHEMA_URL;
  version: 1;
  id: string;
  type: string;
  occurredAt: string;
  euid: string | null;
  source: EnvelopeSource;
  data: unknown;
}

export function renderJson(input: RenderInput, _opts?: RenderOptions): Rendered {
  const envelope = buildEnvelope(input);
  return {
    body: Buffer.from(JSON.stringify(envelope), 'utf8'),
    contentType: JSON_CONTENT_TYPE,
    extension: 'json',
  };
}

/** The envelope of a delivery (what {@link renderJson} serializes). */
export function buildEnvelope(input: RenderInput): EventEnvelope {
  switch (input.kind) {
    case 'message': {
      if (input.message === undefined) {
        throw new TransformError('BAD_INPUT', `delivery ${input.deliveryId} has no message`);
      }
      return messageEnvelope(input.message, input.euid);
    }
    case 'event': {
      if (input.event === undefined) {
        throw new TransformError('BAD_INPUT', `delivery ${input.deliveryId} has no event`);
      }
      return eventEnvelope(input.event, input.message);
    }
  }
}

function normalize(message: SourceMessage): NormalizedMessage {
  return normalizeMessage(parseStored(message));
}

function orNull(v: string | undefined): string | null {
  return v === undefined || v === '' ? null : v;
}

function sourceOf(message: SourceMessage, normalized: NormalizedMessage): EnvelopeSource {
  const ev = normalized.event;
  return {
    feed: message.feed,
    messageId: message.id,
    controlId: orNull(ev.messageControlId),
    messageType: orNull(ev.type),
    trigger: orNull(ev.trigger),
    sendingApplication: orNull(ev.sendingApplication),
    sendingFacility: orNull(ev.sendingFacility),
  };
}

/** `hl7.ADT_A01`, `hl7.ORU_R01`, `hl7.ADT` (no trigger); only letters and digits kept. */
export function messageEventType(type: string, trigger: string): string {
  const clean = (s: string): string => s.toUpperCase().replace(/[^A-Z0-9]/g, '');
  const t = clean(type) || 'UNKNOWN';
  const tr = clean(trigger);
  return tr === '' ? `hl7.${t}` : `hl7.${t}_${tr}`;
}

function messageEnvelope(message: SourceMessage, euid: string | null): EventEnvelope {
  const normalized = normalize(message);
  return {
    schema: EVENT_SCHEMA_URL,
    version: 1,
    id: `msg:${message.id}`,
    type: messageEventType(normalized.event.type, normalized.event.trigger),
    occurredAt: message.receivedAt.toISOString(),
    euid: euid === '' ? null : euid,
    source: sourceOf(message, normalized),
    data: canonical(normalized),
  };
}

const NO_SOURCE: Readonly<EnvelopeSource> = {
  feed: null,
  messageId: null,
  controlId: null,
  messageType: null,
  trigger: null,
  sendingApplication: null,
  sendingFacility: null,
};

function eventEnvelope(event: SourceEvent, message: SourceMessage | undefined): EventEnvelope {
  let source: EnvelopeSource;
  if (message !== undefined && event.messageId !== null && event.messageId === message.id) {
    source = sourceOf(message, normalize(message));
  } else {
    source = { ...NO_SOURCE, messageId: event.messageId };
  }
  return {
    schema: EVENT_SCHEMA_URL,
    version: 1,
    id: event.key,
    type: event.type,
    occurredAt: event.createdAt.toISOString(),
    euid: event.euid === '' ? null : event.euid,
    source,
    data: sortKeys(canonical(event.payload)),
  };
}

/**
 * JSON-safe copy: Dates as ISO strings, undefined properties dropped (as JSON.stringify does),
 * non-finite numbers as null.
 */
function canonical(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value)) as unknown;
}

/**
 * Object keys in code-point order at every level: a payload read back from PostgreSQL `jsonb`
 * (which reorders keys) or from SQLite text renders the same bytes.
 */
function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) {
    return value.map(sortKeys);
  }
  if (typeof value === 'object' && value !== null) {
    const obj = value as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(obj).sort()) {
      out[k] = sortKeys(obj[k]);
    }
    return out;
  }
  return value;
}
