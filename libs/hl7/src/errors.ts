/** Machine-readable reasons a payload could not be turned into an {@link Hl7Message}. */
export type Hl7ParseErrorCode =
  'EMPTY' | 'NO_MSH' | 'BAD_DELIMITERS' | 'UNSUPPORTED_CHARSET' | 'BAD_PATH';

/** Thrown by the parser (and by path access with a malformed path). Never carries message text. */
export class Hl7ParseError extends Error {
  override readonly name = 'Hl7ParseError';

  constructor(
    readonly code: Hl7ParseErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
