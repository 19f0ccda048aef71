/**
 * Queue and job names are persisted identifiers (they live in Redis keys and in jobs that
 * survive restarts): never rename a shipped one; add new names instead.
 */
export const QUEUE = {
  /** Inbound messages of one partition: `inbound-<n>`. */
  inboundPrefix: 'inbound',
} as const;

export const JOB = {
  /**
   * Wake-up of a partition: apply its stored messages up to and including this one, in id
   * order (payload: InboundJobData). One job may cover many messages (ADR 0010).
   */
  inboundMessage: 'inbound-message',
} as const;

export interface InboundJobData {
  /**
   * message.id in the database: the newest message the job covers (the job carries ids only,
   * never PHI).
   */
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
