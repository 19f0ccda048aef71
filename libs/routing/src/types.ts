import type { FieldRule } from '@engine/config';

/**
 * Contracts between the router, the transforms (hl7 | json | fhir) and the senders
 * (mllp | http | file). Framework-free: no Nest, no database.
 */

/** The stored inbound message a delivery comes from. */
export interface SourceMessage {
  id: string;
  feed: string;
  /** The exact bytes received (decoded with MSH-18, or `defaultCharset` when MSH-18 is empty). */
  raw: Buffer;
  receivedAt: Date;
  defaultCharset?: string;
}

/** An MPI event (row of the `mpi_event` outbox, as copied onto the delivery). */
export interface SourceEvent {
  /** Stable key of the event (the same on every attempt of the delivery). */
  key: string;
  /** One of libs/mpi EVENT_TYPES: patient.created, patient.merged, encounter.updated, … */
  type: string;
  /** The person the event is about (the survivor for merges). */
  euid: string;
  /** Null for events from a worklist decision or an unmerge (no message). */
  messageId: string | null;
  /** The event payload as written by libs/mpi (apply.ts / operations.ts). */
  payload: Record<string, unknown>;
  createdAt: Date;
}

/** Everything a transform needs to render one delivery; rendering is deterministic. */
export interface RenderInput {
  /** The delivery row id: stable across attempts (used for generated control ids). */
  deliveryId: string;
  kind: 'message' | 'event';
  /** Message deliveries: the message. Event deliveries: the message it came from, if any. */
  message?: SourceMessage;
  /** Event deliveries only. */
  event?: SourceEvent;
  /** Message deliveries: the EUID of the message's (first PID-3) patient when it has one. */
  euid: string | null;
}

/** Engine-wide settings the transforms use. */
export interface RenderOptions {
  /** Assigning authority of EUIDs (config `mpi.euidAuthority`). */
  euidAuthority: string;
  /** HL7 only: add the EUID to PID-3 (route `transform.addEuid`). */
  addEuid: boolean;
  /** HL7 only: field rules (route `transform.rules`). */
  rules: readonly FieldRule[];
  /** Lookup tables for `map` rules (config `tables`). */
  tables: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** MSH-3 / MSH-4 of messages the engine builds itself (A40 for a worklist merge, …). */
  application: string;
  facility: string;
}

/** A rendered delivery, ready for a sender. */
export interface Rendered {
  body: Buffer;
  /** `application/hl7-v2`, `application/json`, `application/fhir+json`. */
  contentType: string;
  /** File extension for file destinations: `hl7`, `json`. */
  extension: string;
  /** HL7 only: MSH-10 of the rendered message (checked against MSA-2 of the answer). */
  controlId?: string;
}

/**
 * The answer to one send. `retry`: try again later (AR/CR, timeout, connection refused, HTTP
 * 5xx/408/429); `permanent`: dead-letter now (AE/CE, HTTP 4xx, bad answer).
 */
export type SendOutcome =
  | { ok: true; remoteAck: string }
  | {
      ok: false;
      retry: boolean;
      error: string;
      remoteAck?: string;
      /** The receiver's own earliest retry time (HTTP Retry-After), in ms from now. */
      retryAfterMs?: number;
    };

export interface Sender {
  send(item: Rendered, deliveryId: string): Promise<SendOutcome>;
  /** Closes kept-open connections. */
  close(): Promise<void>;
}
