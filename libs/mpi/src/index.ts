export * from './model';
export {
  isExplicitNull,
  tidyText,
  normalizeName,
  normalizeCode,
  normalizePostalCode,
  normalizePhone,
  normalizeEmail,
  normalizeSsn,
  maskSsn,
  normalizeSex,
  parseYesNo,
  parseNumber,
  parseHl7Date,
} from './normalize';
export { normalizeMessage, patientFromPid, encounterFromPv1, mergeFromMrg } from './from-hl7';
export {
  groupSegments,
  type OrderGrouping,
  type PatientSegments,
  type SegmentGroups,
} from './segment-groups';
export * from './golden';
export * from './patient-reader';
export * from './rows';
export * from './time';
export * from './equal';
export * from './identity';
export * from './working-set';
export * from './survivorship';
export * from './apply';
export * from './mpi-store';
export * from './pipeline';
export * from './outbox';
export * from './operations';
export * from './duplicates';
export * from './matching';
export * from './probabilistic';
export * from './dedupe';
