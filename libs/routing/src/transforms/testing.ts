/**
 * Fixtures the transform specs (hl7, json, fhir) share; for tests only. The HL7 sample corpus
 * itself comes from `@engine/hl7/testing`.
 */
import type { RenderInput, RenderOptions, SourceMessage } from '../types';

/** Settings as the engine hands them to a transform: EUID added to PID-3, no rules or tables. */
export const RENDER_OPTIONS: Readonly<RenderOptions> = {
  euidAuthority: 'EUID',
  addEuid: true,
  rules: [],
  tables: {},
  application: 'MPI-ENGINE',
  facility: 'HOSP',
};

/** When `sourceMessage` messages were received. */
export const RECEIVED_AT = new Date('2024-05-01T10:00:00.000Z');

/** A stored inbound message of feed `adt-main`, received at RECEIVED_AT. */
export function sourceMessage(raw: Buffer, id = '7'): SourceMessage {
  return { id, feed: 'adt-main', raw, receivedAt: RECEIVED_AT };
}

/** Delivery 42: stored message 7 (`raw`), whose patient has the EUID `euid`. */
export function messageDelivery(raw: Buffer, euid: string | null): RenderInput {
  return { deliveryId: '42', kind: 'message', message: sourceMessage(raw), euid };
}
