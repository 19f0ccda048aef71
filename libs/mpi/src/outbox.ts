import type { MessageEvent } from './model';
import type { DeliveryLane } from '@engine/store';
import type { EventRow } from './rows';

/**
 * A delivery to write in the same transaction as the MPI changes that produced it (the
 * transactional outbox of routing): one per (message or MPI event, destination). The router
 * (libs/routing) decides them; libs/mpi only writes them.
 */
export interface DeliveryRow {
  destination: string;
  route: string;
  /** Ordering lane: one patient's deliveries to a destination share a lane. */
  lane: number;
  kind: 'message' | 'event';
  messageId: string | null;
  eventType: string | null;
  eventKey: string | null;
  euid: string | null;
  /** Event deliveries: the event payload (copied, so rendering needs no outbox lookup). */
  payload: Record<string, unknown> | null;
  /** Unique per destination: the same message or event never goes out twice. */
  dedupeKey: string;
}

/** A message of the batch as the router sees it, after it was applied. */
export interface RoutedMessage {
  messageId: string;
  feed: string;
  status: 'processed' | 'ignored' | 'error';
  event: MessageEvent;
  /** PV1-2 of the first visit. */
  patientClass?: string;
  /** The person of the message's (first PID-3) patient, after the message was applied. */
  euid: string | null;
}

/** Decides the deliveries of an applied batch (or of a worklist decision: no messages). */
export interface BatchRouter {
  route(messages: RoutedMessage[], events: readonly EventRow[], now: Date): DeliveryRow[];
}

/** A (destination, lane) that got new deliveries: its queue gets a job after the commit. */
export type { DeliveryLane } from '@engine/store';

/** The distinct lanes of some deliveries, in first-seen order. */
export function lanesOf(rows: readonly DeliveryRow[]): DeliveryLane[] {
  const seen = new Map<string, DeliveryLane>();
  for (const r of rows) {
    const key = `${r.destination}\u0000${r.lane}`;
    if (!seen.has(key)) {
      seen.set(key, { destination: r.destination, lane: r.lane });
    }
  }
  return [...seen.values()];
}
