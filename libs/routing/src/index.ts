export * from './types';
export * from './router';
export * from './render';
export * from './backoff';
export * from './senders';
export { renderHl7 } from './transforms/hl7';
export { TransformError, checkRules } from './transforms/rules';
export { renderJson, EVENT_SCHEMA_URL } from './transforms/json';
export { renderFhir } from './transforms/fhir';
