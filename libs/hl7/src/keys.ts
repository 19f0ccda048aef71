import type { Hl7Message, Hl7Segment } from './message';

/** `<id>^<authority>` of a CX field's first repetition; '' when it has no id. */
function cxKey(seg: Hl7Segment, field: number): string {
  const id = seg.get(`${field}[1].1`) ?? '';
  if (id === '') {
    return '';
  }
  return `${id}^${seg.get(`${field}[1].4.1`) || seg.get(`${field}[1].4.2`) || ''}`;
}

export interface PatientKeys {
  /**
   * The key a message is ordered by (its inbound partition): the MRG-1 prior id when the
   * message has an MRG segment (a merge is ordered with the prior patient's messages, which
   * must not overtake it), else the first PID-3 (PID-2 when PID-3 is empty); '' when none.
   */
  primary: string;
  /** Every patient the message names: each PID's PID-3 (or PID-2), and MRG-1. */
  all: string[];
}

/** Patient keys of a message, for partitioning and cross-partition ordering. */
export function patientKeys(msg: Hl7Message): PatientKeys {
  const all: string[] = [];
  for (const seg of msg.segments()) {
    if (seg.name === 'PID') {
      const key = cxKey(seg, 3) || cxKey(seg, 2);
      if (key !== '') {
        all.push(key);
      }
    }
  }
  const mrg = msg.segment('MRG');
  const prior = mrg ? cxKey(mrg, 1) : '';
  if (prior !== '') {
    all.push(prior);
  }
  return { primary: prior || all[0] || '', all: [...new Set(all)] };
}
