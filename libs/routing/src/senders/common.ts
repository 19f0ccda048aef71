import { readFileSync } from 'node:fs';
import { type ClientTlsConfig } from '@engine/config';

/** PEM material of a {@link ClientTlsConfig}, read once when the sender is built. */
export interface LoadedClientTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  servername?: string;
  rejectUnauthorized: boolean;
}

function readPem(what: string, path: string | undefined): Buffer | undefined {
  if (path === undefined) {
    return undefined;
  }
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new Error(`cannot read TLS ${what} file ${path}: ${code}`, { cause: err });
  }
}

/**
 * Read the CA, certificate and key files of a destination's `tls` block. Throws (at start,
 * when the sender is built) when a file cannot be read: a configuration error, not a delivery
 * failure.
 */
export function loadClientTls(tls: ClientTlsConfig): LoadedClientTls {
  return {
    ca: readPem('CA', tls.ca),
    cert: readPem('certificate', tls.cert),
    key: readPem('key', tls.key),
    servername: tls.servername,
    rejectUnauthorized: tls.rejectUnauthorized,
  };
}

/** Remote text (ACK error text, HTTP body) on one line, at most `max` characters. */
export function oneLine(value: string | undefined, max = 200): string {
  // eslint-disable-next-line no-control-regex
  const text = (value ?? '').replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  return text.length > max ? `${text.slice(0, max)}...` : text;
}

/** The message of an unknown thrown value. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
