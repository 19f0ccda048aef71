/**
 * Probabilistic matching (framework-free): `MatchRecord` and its features, comparators,
 * Fellegi–Sunter scoring with EM, blocking keys, the matcher's decisions. See docs/matching.md.
 */
export * from './record';
export * from './features';
export * from './comparators';
export * from './nicknames';
export * from './fellegi-sunter';
export * from './hand-set';
export * from './defaults';
export * from './config';
export * from './blocking';
export * from './matcher';
