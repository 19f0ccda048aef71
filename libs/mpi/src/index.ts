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
