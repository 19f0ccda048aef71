import { type Hl7Message, type Hl7Segment } from '@engine/hl7';

/** One patient of a message: a PID and the first PV1, PV2 and MRG after it (before the next PID). */
export interface PatientSegments {
  pid: Hl7Segment;
  pv1?: Hl7Segment;
  pv2?: Hl7Segment;
  mrg?: Hl7Segment;
}

/**
 * How `groupSegments` reads the order part of a message (ORC, OBR, OBX, NTE), and the caller's
 * own objects it builds as it goes: `O` for an order, `X` for an observation. Every callback
 * gets the message being walked (for its delimiters), so that a grouping can be a constant.
 */
export interface OrderGrouping<O, X> {
  /** Each OBR opens an order (else OBR segments are skipped). */
  readonly reports: boolean;
  /** Each OBX joins the current order, opening one without OBR if none is open (else skipped). */
  readonly observations: boolean;
  /** A PID closes the open order: an OBX after it opens a new one for the new patient. */
  readonly pidClosesOrder: boolean;
  /**
   * A new order: `obr` undefined for OBX segments without one; `orc` the last ORC not yet
   * used by an OBR; `patient` the index of the current patient group (-1: before any PID).
   */
  order(
    msg: Hl7Message,
    obr: Hl7Segment | undefined,
    orc: Hl7Segment | undefined,
    patient: number,
  ): O;
  /** An OBX of `order` (the callback adds it to the order if the order keeps its observations). */
  observation(msg: Hl7Message, order: O, obx: Hl7Segment): X;
  /** An NTE while an order is open: after the OBR (`observation` undefined) or an OBX. */
  note(msg: Hl7Message, nte: Hl7Segment, order: O, observation: X | undefined): void;
}

export interface SegmentGroups<O> {
  /** One group per PID, in message order. */
  patients: PatientSegments[];
  /** The orders built by the grouping, in message order (none without one). */
  orders: O[];
  /** The first MRG of the message, wherever it stands (even before any PID). */
  firstMrg: Hl7Segment | undefined;
}

/**
 * Walks a message's segments once and groups them the way the HL7 v2 message structures nest:
 * every PID opens a patient group that takes the first PV1, PV2 and MRG after it; with an
 * `orders` grouping, ORC / OBR / OBX / NTE build the caller's orders and observations (see
 * `OrderGrouping`). Other segments are skipped. Shared by `normalizeMessage` (the pipeline's
 * hot path: it allocates nothing per segment beyond the groups and what the callbacks build)
 * and the FHIR transform of libs/routing.
 */
export function groupSegments<O = never, X = never>(
  msg: Hl7Message,
  orders?: OrderGrouping<O, X>,
): SegmentGroups<O> {
  const patients: PatientSegments[] = [];
  const built: O[] = [];
  let firstMrg: Hl7Segment | undefined;
  let orc: Hl7Segment | undefined;
  let order: O | undefined;
  let lastObservation: X | undefined;

  for (const seg of msg.segments()) {
    const group = patients[patients.length - 1] as PatientSegments | undefined;
    switch (seg.name) {
      case 'PID':
        patients.push({ pid: seg });
        if (orders?.pidClosesOrder === true) {
          order = undefined;
          lastObservation = undefined;
        }
        break;
      case 'PV1':
        if (group && !group.pv1) {
          group.pv1 = seg;
        }
        break;
      case 'PV2':
        if (group && !group.pv2) {
          group.pv2 = seg;
        }
        break;
      case 'MRG':
        firstMrg ??= seg;
        if (group && !group.mrg) {
          group.mrg = seg;
        }
        break;
      case 'ORC':
        orc = seg;
        break;
      case 'OBR':
        if (orders?.reports === true) {
          order = orders.order(msg, seg, orc, patients.length - 1);
          orc = undefined;
          lastObservation = undefined;
          built.push(order);
        }
        break;
      case 'OBX':
        if (orders?.observations === true) {
          if (order === undefined) {
            order = orders.order(msg, undefined, orc, patients.length - 1);
            built.push(order);
          }
          lastObservation = orders.observation(msg, order, seg);
        }
        break;
      case 'NTE':
        if (orders !== undefined && order !== undefined) {
          orders.note(msg, seg, order, lastObservation);
        }
        break;
      default:
        break;
    }
  }
  return { patients, orders: built, firstMrg };
}
