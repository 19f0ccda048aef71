import {
  matchesEventPattern,
  matchesTypePattern,
  type DestinationConfig,
  type RouteConfig,
} from '@engine/config';
import type { BatchRouter, DeliveryRow, EventRow, RoutedMessage } from '@engine/mpi';
import { v7 as uuidv7 } from 'uuid';

/**
 * Ordering lanes per destination. One patient's deliveries share a lane and go out one at a
 * time in order; different lanes go out in parallel (up to the destination's concurrency).
 * A persisted identifier (it is stored on every delivery row): never change it.
 */
export const DELIVERY_LANES = 64;

export interface RoutingConfig {
  destinations: readonly DestinationConfig[];
  routes: readonly RouteConfig[];
}

/**
 * Decides the deliveries of an applied batch: each route whose source and filters match a
 * message (feed routes) or an MPI event (event routes) yields one delivery per destination.
 * Pure: no I/O; the deliveries are written in the batch's transaction.
 *
 * A message or an event goes to a destination once, whatever the number of routes naming it
 * (the first matching route's transform wins): `m:<messageId>` and `e:<event key>` are unique
 * per destination. Message events are keyed `<messageId>:<n>` (the n-th event of the message),
 * so applying a message again never sends its events twice.
 */
export class Router implements BatchRouter {
  private readonly ordering: Map<string, DestinationConfig['ordering']>;

  constructor(private readonly config: RoutingConfig) {
    this.ordering = new Map(config.destinations.map((d) => [d.id, d.ordering]));
  }

  /** True when some route would deliver anything (else routing is skipped). */
  get active(): boolean {
    return this.config.routes.length > 0;
  }

  route(messages: RoutedMessage[], events: readonly EventRow[], _now: Date): DeliveryRow[] {
    const out: DeliveryRow[] = [];
    const seen = new Set<string>();
    const add = (route: RouteConfig, row: Omit<DeliveryRow, 'destination' | 'route' | 'lane'>) => {
      for (const destination of route.destinations) {
        const key = `${destination}\u0000${row.dedupeKey}`;
        if (seen.has(key)) {
          continue;
        }
        seen.add(key);
        const laneKey =
          this.ordering.get(destination) === 'none'
            ? row.dedupeKey
            : (row.euid ?? `m:${row.messageId ?? row.dedupeKey}`);
        out.push({
          ...row,
          destination,
          route: route.id,
          lane: laneOf(laneKey),
        });
      }
    };
    const byId = new Map(messages.map((m) => [m.messageId, m]));
    // Per message: the message itself, then the events it caused, in order.
    const eventsOf = new Map<string, EventRow[]>();
    const decisionEvents: EventRow[] = [];
    for (const e of events) {
      if (e.messageId === null) {
        decisionEvents.push(e);
      } else {
        const list = eventsOf.get(e.messageId) ?? [];
        list.push(e);
        eventsOf.set(e.messageId, list);
      }
    }
    for (const m of messages) {
      if (m.status !== 'error') {
        for (const r of this.config.routes) {
          if ('feed' in r.source && (r.source.feed === '*' || r.source.feed === m.feed)) {
            if (messageFilterMatches(r, m)) {
              add(r, {
                kind: 'message',
                messageId: m.messageId,
                eventType: null,
                eventKey: null,
                euid: m.euid,
                payload: null,
                dedupeKey: `m:${m.messageId}`,
              });
            }
          }
        }
      }
      (eventsOf.get(m.messageId) ?? []).forEach((e, n) =>
        this.routeEvent(e, `${m.messageId}:${n}`, m, add),
      );
      eventsOf.delete(m.messageId);
    }
    // Events of messages the router was not told about (bulk import): keyed by message.
    for (const [messageId, list] of eventsOf) {
      list.forEach((e, n) => this.routeEvent(e, `${messageId}:${n}`, byId.get(messageId), add));
    }
    for (const e of decisionEvents) {
      this.routeEvent(e, `d:${uuidv7()}`, undefined, add);
    }
    return out;
  }

  private routeEvent(
    e: EventRow,
    key: string,
    message: RoutedMessage | undefined,
    add: (route: RouteConfig, row: Omit<DeliveryRow, 'destination' | 'route' | 'lane'>) => void,
  ): void {
    for (const r of this.config.routes) {
      if (!('events' in r.source) || !r.source.events.some((p) => matchesEventPattern(p, e.type))) {
        continue;
      }
      const f = r.filter;
      if (f.eventTypes && !f.eventTypes.some((p) => matchesEventPattern(p, e.type))) {
        continue;
      }
      if (f.origins && !f.origins.includes(e.messageId === null ? 'decision' : 'message')) {
        continue;
      }
      if (hasMessageFilter(r) && (!message || !messageFilterMatches(r, message))) {
        continue;
      }
      add(r, {
        kind: 'event',
        messageId: e.messageId,
        eventType: e.type,
        eventKey: key,
        euid: e.euid,
        payload: e.payload,
        dedupeKey: `e:${key}`,
      });
    }
  }
}

function hasMessageFilter(r: RouteConfig): boolean {
  const f = r.filter;
  return !!(f.messageTypes || f.triggers || f.sendingFacilities || f.patientClasses);
}

function messageFilterMatches(r: RouteConfig, m: RoutedMessage): boolean {
  const f = r.filter;
  const { type, trigger, sendingFacility } = m.event;
  if (f.messageTypes && !f.messageTypes.some((p) => matchesTypePattern(p, type, trigger))) {
    return false;
  }
  if (f.triggers && !f.triggers.includes(trigger)) {
    return false;
  }
  if (f.sendingFacilities && !f.sendingFacilities.includes(facilityId(sendingFacility))) {
    return false;
  }
  if (f.patientClasses && !f.patientClasses.includes(m.patientClass ?? '')) {
    return false;
  }
  return true;
}

/** MSH-4.1 (the namespace id) of a sending facility as the normalizer kept it. */
function facilityId(f: string | undefined): string {
  return (f ?? '').split('^')[0];
}

/** Lane of a key: FNV-1a (32 bit) modulo {@link DELIVERY_LANES}. Stable across releases. */
export function laneOf(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % DELIVERY_LANES;
}
