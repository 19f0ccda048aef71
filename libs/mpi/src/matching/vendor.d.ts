// Type declarations for the two untyped CommonJS libraries the matcher uses (see
// docs/decisions/0007-matching.md for why these two).

declare module 'double-metaphone' {
  /** Double Metaphone (Lawrence Philips, 2000): [primary, secondary] codes, untruncated. */
  function doubleMetaphone(value: string): [string, string];
  export = doubleMetaphone;
}

declare module 'wink-distance/src/string-jaro-winkler' {
  /**
   * Jaro–Winkler DISTANCE (1 − similarity); prefix boost applied when the Jaro distance is at most
   * `boostThreshold` (default 0.3, i.e. Jaro similarity ≥ 0.7), scaling factor default 0.1.
   */
  function jaroWinkler(
    a: string,
    b: string,
    boostThreshold?: number,
    scalingFactor?: number,
  ): number;
  export = jaroWinkler;
}
