import { validateEngineConfig } from '@engine/config';
import type { EventRow, RoutedMessage } from '@engine/mpi';
import { DELIVERY_LANES, Router } from './router';

const config = validateEngineConfig({
  feeds: [
    { id: 'default', port: 2575, accept: ['ADT^*', 'ORU^R01'] },
    { id: 'lab', port: 2576, accept: ['ORU^R01'] },
  ],
  destinations: [
    { id: 'ehr', type: 'mllp', host: 'ehr', port: 6661, format: 'hl7' },
    { id: 'billing', type: 'http', url: 'http://billing/x', format: 'json' },
    { id: 'lake', type: 'file', directory: '/tmp/x', format: 'json', ordering: 'none' },
  ],
  routes: [
    {
      id: 'adt-ehr',
      source: { feed: 'default' },
      filter: { messageTypes: ['ADT^*'], patientClasses: ['I', 'E'] },
      destinations: ['ehr'],
    },
    { id: 'all-ehr', source: { feed: '*' }, destinations: ['ehr', 'lake'] },
    { id: 'merges', source: { events: ['patient.merged'] }, destinations: ['billing', 'ehr'] },
    {
      id: 'decisions',
      source: { events: ['patient.*'] },
      filter: { origins: ['decision'] },
      destinations: ['billing'],
    },
  ],
});

const msg = (id: string, over: Partial<RoutedMessage> = {}): RoutedMessage => ({
  messageId: id,
  feed: 'default',
  status: 'processed',
  event: { type: 'ADT', trigger: 'A01', messageControlId: 'C1', sendingFacility: 'HOSP' },
  patientClass: 'I',
  euid: 'e-1',
  ...over,
});

const event = (type: EventRow['type'], messageId: string | null, euid = 'e-1'): EventRow => ({
  type,
  euid,
  messageId,
  payload: { euid },
  createdAt: new Date(0),
});

describe('Router', () => {
  const router = new Router(config);
  const now = new Date();

  it('routes a message once per destination, first matching route first', () => {
    const rows = router.route([msg('m1')], [], now);
    expect(rows.map((r) => [r.destination, r.route, r.kind, r.dedupeKey])).toEqual([
      ['ehr', 'adt-ehr', 'message', 'm:m1'],
      ['lake', 'all-ehr', 'message', 'm:m1'],
    ]);
  });

  it('applies the message filters and skips failed messages', () => {
    const oru = msg('m2', { event: { type: 'ORU', trigger: 'R01', messageControlId: 'C' } });
    expect(router.route([oru], [], now).map((r) => r.route)).toEqual(['all-ehr', 'all-ehr']);
    const outpatient = msg('m3', { patientClass: 'O' });
    expect(router.route([outpatient], [], now).map((r) => r.route)).toEqual(['all-ehr', 'all-ehr']);
    expect(router.route([msg('m4', { status: 'error' })], [], now)).toEqual([]);
  });

  it('routes events with stable keys: <messageId>:<n> for message events', () => {
    const rows = router.route(
      [msg('m1', { feed: 'lab' })],
      [event('patient.updated', 'm1'), event('patient.merged', 'm1')],
      now,
    );
    const events = rows.filter((r) => r.kind === 'event');
    expect(events.map((r) => [r.destination, r.eventType, r.eventKey, r.dedupeKey])).toEqual([
      ['billing', 'patient.merged', 'm1:1', 'e:m1:1'],
      ['ehr', 'patient.merged', 'm1:1', 'e:m1:1'],
    ]);
    expect(events[0].payload).toEqual({ euid: 'e-1' });
  });

  it('routes decision events (no message) by origin', () => {
    const rows = router.route(
      [],
      [event('patient.merged', null), event('patient.linked', null)],
      now,
    );
    expect(rows.map((r) => [r.destination, r.route, r.eventType])).toEqual([
      ['billing', 'merges', 'patient.merged'],
      ['ehr', 'merges', 'patient.merged'],
      ['billing', 'decisions', 'patient.linked'],
    ]);
    expect(new Set(rows.map((r) => r.dedupeKey)).size).toBe(2);
    expect(rows[0].dedupeKey).toMatch(/^e:d:/);
  });

  it("keeps one patient's deliveries to a destination in one lane", () => {
    const rows = router.route(
      [msg('m1'), msg('m2'), msg('m3', { euid: 'e-2' })],
      [event('patient.merged', 'm2')],
      now,
    );
    const ehr = rows.filter((r) => r.destination === 'ehr');
    const lanes = new Set(ehr.filter((r) => r.euid === 'e-1').map((r) => r.lane));
    expect(lanes.size).toBe(1);
    for (const r of rows) {
      expect(r.lane).toBeGreaterThanOrEqual(0);
      expect(r.lane).toBeLessThan(DELIVERY_LANES);
    }
    // ordering none: spread by delivery, not by patient.
    const lake = rows.filter((r) => r.destination === 'lake').map((r) => r.lane);
    expect(lake).toHaveLength(3);
  });
});
