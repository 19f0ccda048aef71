import { type Hl7Segment, parseMessage } from '@engine/hl7';
import { groupSegments, type OrderGrouping } from './segment-groups';

interface Order {
  obr?: string;
  orc?: string;
  patient: number;
  notes: string[];
  observations: Array<{ obx: string; notes: string[] }>;
}

const id = (seg: Hl7Segment | undefined): string | undefined => seg?.get('1');

function grouping(pidClosesOrder: boolean): OrderGrouping<Order, Order['observations'][number]> {
  return {
    reports: true,
    observations: true,
    pidClosesOrder,
    order: (_msg, obr, orc, patient) => ({
      obr: id(obr),
      orc: orc?.get('2'),
      patient,
      notes: [],
      observations: [],
    }),
    observation: (_msg, order, obx) => {
      const item = { obx: id(obx) ?? '', notes: [] };
      order.observations.push(item);
      return item;
    },
    note: (_msg, nte, order, obx) => (obx ?? order).notes.push(nte.get('3') ?? ''),
  };
}

const msg = (...segments: string[]) =>
  parseMessage(['MSH|^~\\&|A|F|B|G|20240101||ORU^R01|1|P|2.5', ...segments].join('\r'));

describe('groupSegments', () => {
  it('gives each PID the first PV1, PV2 and MRG after it; firstMrg is the first MRG anywhere', () => {
    const { patients, orders, firstMrg } = groupSegments(
      msg('MRG|M0', 'PID|1', 'PV1|1', 'PV1|2', 'MRG|M1', 'PID|2', 'PV2|1', 'MRG|M2', 'MRG|M3'),
    );
    expect(patients.map((p) => [id(p.pid), id(p.pv1), id(p.pv2), p.mrg?.get('1')])).toEqual([
      ['1', '1', undefined, 'M1'],
      ['2', undefined, '1', 'M2'],
    ]);
    expect(firstMrg?.get('1')).toBe('M0');
    expect(orders).toEqual([]);
  });

  it('builds orders: OBR opens one (with the ORC before it), OBX join it, NTE attach', () => {
    const m = msg(
      'PID|1',
      'OBX|0',
      'ORC|NW|P1',
      'OBR|1',
      'NTE|1||on OBR',
      'OBX|1',
      'NTE|1||on OBX 1',
      'PID|2',
      'OBX|2',
    );
    const kept = groupSegments(m, grouping(false)).orders;
    expect(kept).toEqual([
      {
        obr: undefined,
        orc: undefined,
        patient: 0,
        notes: [],
        observations: [{ obx: '0', notes: [] }],
      },
      {
        obr: '1',
        orc: 'P1',
        patient: 0,
        notes: ['on OBR'],
        observations: [
          { obx: '1', notes: ['on OBX 1'] },
          { obx: '2', notes: [] }, // no PID boundary: joins the open order
        ],
      },
    ]);
    const closed = groupSegments(m, grouping(true)).orders;
    expect(closed.map((o) => [o.obr, o.patient, o.observations.map((x) => x.obx)])).toEqual([
      [undefined, 0, ['0']],
      ['1', 0, ['1']],
      [undefined, 1, ['2']], // the PID closed the order: a new one for patient 2
    ]);
  });

  it('skips OBR and OBX the grouping does not read', () => {
    const m = msg('PID|1', 'OBR|1', 'OBX|1', 'NTE|1||x');
    expect(groupSegments(m, { ...grouping(false), reports: false }).orders).toEqual([
      {
        obr: undefined,
        orc: undefined,
        patient: 0,
        notes: [],
        observations: [{ obx: '1', notes: ['x'] }],
      },
    ]);
    expect(
      groupSegments(m, { ...grouping(false), reports: false, observations: false }).orders,
    ).toEqual([]);
  });
});
