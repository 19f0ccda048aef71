/**
 * Queue and job names are persisted identifiers (they live in Redis keys and in jobs that
 * survive restarts): never rename a shipped one; add new names instead.
 */
export const QUEUE = {
  /** Inbound messages of one partition: `inbound-<n>`. */
  inboundPrefix: 'inbound',
} as const;

export const JOB = {
  /** Process one stored inbound message (payload: InboundJobData). */
  inboundMessage: 'inbound-message',
} as const;

export interface InboundJobData {
  /** message.id in the database (the job carries ids only, never PHI). */
  messageId: string;
  feed: string;
  partition: number;
}

export function inboundQueueName(partition: number): string {
  return `${QUEUE.inboundPrefix}-${partition}`;
}

/** BullMQ custom job ids may not contain ':'; message ids are UUIDs and feed ids are [a-z0-9_-]. */
export function inboundJobId(feed: string, messageId: string): string {
  return `${feed}-${messageId}`;
}

/** Deliveries to one destination: `deliver-<destination id>` (ids are [a-z0-9_-]). */
export function deliveryQueueName(destination: string): string {
  return `deliver-${destination}`;
}

/** Job of a delivery queue: "this destination has new work" (no payload, no PHI). */
export type DeliveryJobData = Record<string, never>;

export const DELIVERY_JOB = 'deliver-wake';
