export { type Delimiters, DEFAULT_DELIMITERS, encodingCharacters } from './delimiters';
export { Hl7ParseError, type Hl7ParseErrorCode } from './errors';
export { decodeEscapes, encodeEscapes } from './escape';
export { resolveCharset } from './charset';
export { type Hl7Path, type FieldPath, parsePath, formatPath } from './path';
export { Hl7Message, Hl7Segment } from './message';
export {
  type ParseOptions,
  type CreateMessageOptions,
  parseMessage,
  createMessage,
  formatHl7DateTime,
  generateControlId,
  encodeForCharset,
} from './parse';
export {
  buildBatchAck,
  isBatch,
  readBatchHeader,
  splitMessages,
  type BatchAckOptions,
  type BatchHeader,
} from './batch';
export {
  type AckCode,
  type AckError,
  type AckOptions,
  type Hl7ErrorCode,
  HL7_ERROR_CODES,
  buildAck,
  buildAckBuffer,
  chooseAckCode,
  errorText,
} from './ack';
export * from './mllp';
export { patientKeys, type PatientKeys } from './keys';
