import {
  type AckCode,
  type AckError,
  buildAckBuffer,
  chooseAckCode,
  type Hl7Message,
  Hl7ParseError,
  parseMessage,
  patientKeys,
} from '@engine/hl7';
import { type FeedConfig, matchesTypePattern } from '@engine/config';

/** Machine-readable reasons a message is rejected (stored in message.error_code). */
export type RejectCode =
  | 'UNPARSEABLE'
  | 'UNSUPPORTED_CHARSET'
  | 'MISSING_CONTROL_ID'
  | 'UNSUPPORTED_TYPE'
  | 'UNSUPPORTED_EVENT'
  | 'UNSUPPORTED_VERSION'
  | 'MISSING_SEGMENT'
  | 'OVERSIZE';

export interface Rejection {
  code: RejectCode;
  /** reject → AR/CR; error → AE/CE. */
  outcome: 'reject' | 'error';
  error: AckError;
}

/** What the gateway reads from one framed payload before storing it. */
export interface Examined {
  message?: Hl7Message;
  rejection?: Rejection;
  /** First PID-3 identifier with its assigning authority ('' when the message has none). */
  partitionKey: string;
}

const MESSAGE_TYPES_REQUIRING: Record<string, { segments: string[]; except?: string[] }> = {
  // ADT^A20 (bed status update) is the one ADT event without a patient.
  ADT: { segments: ['PID'], except: ['A20'] },
  ORU: { segments: ['OBR', 'OBX'] },
};

function reject(code: RejectCode, outcome: Rejection['outcome'], error: AckError): Rejection {
  return { code, outcome, error: { severity: 'E', ...error } };
}

/**
 * Patient key used for partitioning (see `patientKeys`): MRG-1 for merges, else the first PID-3
 * id ^ its authority, falling back to PID-2.
 */
export function patientKey(msg: Hl7Message): string {
  return patientKeys(msg).primary;
}

/** Parse the header and check what the feed accepts. Never throws. */
export function examine(payload: Buffer, feed: FeedConfig): Examined {
  let message: Hl7Message;
  try {
    message = parseMessage(payload, { defaultCharset: feed.defaultCharset });
  } catch (err) {
    if (err instanceof Hl7ParseError) {
      const rejection =
        err.code === 'UNSUPPORTED_CHARSET'
          ? reject('UNSUPPORTED_CHARSET', 'reject', {
              code: 103,
              text: `Unsupported character set in MSH-18`,
              location: 'MSH-18',
            })
          : reject('UNPARSEABLE', 'reject', {
              code: err.code === 'BAD_DELIMITERS' ? 102 : 100,
              text: `Unparseable message header: ${err.message}`,
              location: 'MSH',
            });
      return { rejection, partitionKey: '' };
    }
    return {
      rejection: reject('UNPARSEABLE', 'reject', {
        code: 207,
        text: 'Unparseable message',
        location: 'MSH',
      }),
      partitionKey: '',
    };
  }
  return { message, rejection: validate(message, feed), partitionKey: patientKey(message) };
}

function validate(msg: Hl7Message, feed: FeedConfig): Rejection | undefined {
  const type = msg.messageType;
  const trigger = msg.triggerEvent;
  if (msg.controlId === '') {
    return reject('MISSING_CONTROL_ID', 'reject', {
      code: 101,
      text: 'Required field missing: MSH-10 (message control id)',
      location: 'MSH-10',
    });
  }
  if (!feed.accept.some((p) => matchesTypePattern(p, type, trigger))) {
    const typeKnown = feed.accept.some((p) => p === '*' || p.split('^')[0] === type);
    return typeKnown
      ? reject('UNSUPPORTED_EVENT', 'reject', {
          code: 201,
          text: `Unsupported event code ${trigger || '(empty)'} for ${type} on feed ${feed.id}`,
          location: 'MSH-9.2',
        })
      : reject('UNSUPPORTED_TYPE', 'reject', {
          code: 200,
          text: `Unsupported message type ${type || '(empty)'} on feed ${feed.id}`,
          location: 'MSH-9',
        });
  }
  if (!feed.versions.includes(msg.version)) {
    return reject('UNSUPPORTED_VERSION', 'reject', {
      code: 203,
      text: `Unsupported version id ${msg.version || '(empty)'}`,
      location: 'MSH-12',
    });
  }
  const rule = MESSAGE_TYPES_REQUIRING[type];
  if (rule && !(rule.except ?? []).includes(trigger)) {
    for (const seg of rule.segments) {
      if (!msg.hasSegment(seg)) {
        return reject('MISSING_SEGMENT', 'error', {
          code: 100,
          text: `Segment sequence error: required segment ${seg} missing in ${type}^${trigger}`,
          location: seg,
        });
      }
    }
  }
  return undefined;
}

export interface Ack {
  code: AckCode;
  bytes: Buffer;
}

/** The ACK for an outcome, or null when the sender asked for none (enhanced mode, MSH-15). */
export function ackFor(
  message: Hl7Message | undefined,
  outcome: 'accept' | 'error' | 'reject',
  feed: FeedConfig,
  error?: AckError,
): Ack | null {
  const code: AckCode | null = chooseAckCode(message, outcome, feed.ackMode, {
    honorAcceptAckType: feed.honorAcceptAckType,
  });
  if (code === null) {
    return null;
  }
  try {
    return { code, bytes: buildAckBuffer(message, { code, error, text: error?.text }) };
  } catch {
    // The header parsed but cannot be mirrored (e.g. not encodable): answer generically.
    return { code, bytes: buildAckBuffer(undefined, { code, error, text: error?.text }) };
  }
}
