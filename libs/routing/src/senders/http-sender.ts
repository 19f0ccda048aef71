/**
 * HTTP destination sender: one request per delivery over a keep-alive agent.
 *
 * - `POST`/`PUT` to the configured URL; `Content-Type` is the rendered content type unless the
 *   destination's `headers` set one; `Idempotency-Key` and `X-Delivery-Id` carry the delivery
 *   id (the same on every attempt, so a receiver can drop a repeat); `auth` adds an
 *   `Authorization` header (it wins over one in `headers`).
 * - 2xx → delivered (`HTTP 201`). 408, 429 and 5xx → retry, not before the response's
 *   Retry-After (seconds or an HTTP date, at most an hour) when it has one. Other 4xx → permanent. 3xx →
 *   permanent (redirects are not followed: the URL in the config is wrong). Timeout (request
 *   start to the end of the response body) and network errors → retry.
 * - A kept-alive socket the server closed just as it was reused (ECONNRESET before any
 *   answer) is not a delivery failure: the request is sent once more on a fresh socket.
 * - Error texts carry the status and at most 200 characters of the response body; the request
 *   body is never logged or echoed.
 */
import http from 'node:http';
import https from 'node:https';
import { type ClientTlsConfig, type HttpDestinationConfig } from '@engine/config';
import { type Rendered, type SendOutcome, type Sender } from '../types';
import { errorMessage, loadClientTls, oneLine } from './common';

/** The settings an HTTP sender uses (a destination config has them all). */
export type HttpSenderConfig = Pick<HttpDestinationConfig, 'url' | 'timeoutMs'> &
  Partial<Pick<HttpDestinationConfig, 'method' | 'headers' | 'auth' | 'concurrency'>> & {
    tls?: ClientTlsConfig;
  };

/** Response body bytes kept for the error text (the rest is read and dropped). */
const MAX_BODY_BYTES = 4096;
const BODY_IN_ERROR = 200;

function isStaleSocketError(err: NodeJS.ErrnoException): boolean {
  return err.code === 'ECONNRESET' || err.code === 'EPIPE';
}

export class HttpSender implements Sender {
  private readonly url: URL;
  /** Scheme, host and path of the URL (no query string, no credentials) for error texts. */
  private readonly where: string;
  private readonly agent: http.Agent;
  private readonly baseHeaders: Record<string, string>;
  private readonly method: string;
  private closed = false;

  /** Throws when the URL is not http(s) or a TLS file cannot be read. */
  constructor(private readonly config: HttpSenderConfig) {
    this.url = new URL(config.url);
    if (this.url.protocol !== 'http:' && this.url.protocol !== 'https:') {
      throw new Error(`unsupported URL scheme ${this.url.protocol} (http: or https: only)`);
    }
    this.where = `${this.url.origin}${this.url.pathname}`;
    this.method = config.method ?? 'POST';
    const maxSockets = Math.max(1, config.concurrency ?? 4);
    if (this.url.protocol === 'https:') {
      const t = config.tls === undefined ? undefined : loadClientTls(config.tls);
      this.agent = new https.Agent({
        keepAlive: true,
        maxSockets,
        ca: t?.ca,
        cert: t?.cert,
        key: t?.key,
        servername: t?.servername,
        rejectUnauthorized: t?.rejectUnauthorized ?? true,
      });
    } else {
      this.agent = new http.Agent({ keepAlive: true, maxSockets });
    }

    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(config.headers ?? {})) {
      headers[name.toLowerCase()] = value;
    }
    const auth = config.auth;
    if (auth !== undefined) {
      switch (auth.type) {
        case 'bearer':
          headers.authorization = `Bearer ${auth.token}`;
          break;
        case 'basic':
          headers.authorization = `Basic ${Buffer.from(
            `${auth.username}:${auth.password}`,
            'utf8',
          ).toString('base64')}`;
          break;
      }
    }
    this.baseHeaders = headers;
  }

  send(item: Rendered, deliveryId: string): Promise<SendOutcome> {
    if (this.closed) {
      return Promise.resolve({ ok: false, retry: true, error: 'sender closed' });
    }
    const headers: Record<string, string | number> = {
      'content-type': item.contentType,
      ...this.baseHeaders,
      'content-length': item.body.length,
      'idempotency-key': deliveryId,
      'x-delivery-id': deliveryId,
    };
    return new Promise<SendOutcome>((resolve) => {
      let settled = false;
      let req: http.ClientRequest | undefined;
      const timeoutMs = this.config.timeoutMs;
      const finish = (outcome: SendOutcome): void => {
        if (!settled) {
          settled = true;
          clearTimeout(timer);
          resolve(outcome);
        }
      };
      const timer = setTimeout(() => {
        finish({
          ok: false,
          retry: true,
          error: `timeout: no complete answer from ${this.method} ${this.where} within ${timeoutMs} ms`,
        });
        req?.destroy();
      }, timeoutMs);
      const attempt = (first: boolean): void => {
        req = this.request(item.body, headers, finish, (err) => {
          // A kept-alive socket the server closed as we reused it: the request never reached
          // the application. Once more on a fresh socket, within the same deadline.
          if (first && isStaleSocketError(err) && !settled) {
            attempt(false);
            return true;
          }
          return false;
        });
      };
      attempt(true);
    });
  }

  /** One request; `onStale` may take over a network error on a reused socket. */
  private request(
    body: Buffer,
    headers: Record<string, string | number>,
    finish: (outcome: SendOutcome) => void,
    onStale: (err: NodeJS.ErrnoException) => boolean,
  ): http.ClientRequest {
    const transport = this.url.protocol === 'https:' ? https : http;
    const req = transport.request(this.url, { method: this.method, headers, agent: this.agent });
    let answered = false;
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (!answered && req.reusedSocket && onStale(err)) {
        return;
      }
      finish({
        ok: false,
        retry: true,
        error: `${this.method} ${this.where}: ${errorMessage(err)}`,
      });
    });
    req.on('response', (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      let kept = 0;
      res.on('data', (chunk: Buffer) => {
        if (kept < MAX_BODY_BYTES) {
          const part = chunk.subarray(0, MAX_BODY_BYTES - kept);
          chunks.push(part);
          kept += part.length;
        }
      });
      res.on('error', (err) => {
        finish({
          ok: false,
          retry: true,
          error: `${this.method} ${this.where}: response failed: ${errorMessage(err)}`,
        });
      });
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        finish(this.judge(status, res.statusMessage, Buffer.concat(chunks), res.headers));
      });
    });
    req.end(body);
    return req;
  }

  close(): Promise<void> {
    this.closed = true;
    this.agent.destroy();
    return Promise.resolve();
  }

  private judge(
    status: number,
    statusMessage: string | undefined,
    body: Buffer,
    headers: http.IncomingHttpHeaders,
  ): SendOutcome {
    const remoteAck = `HTTP ${status}`;
    if (status >= 200 && status < 300) {
      return { ok: true, remoteAck };
    }
    const text = oneLine(body.toString('utf8'), BODY_IN_ERROR);
    const reason = oneLine(statusMessage, 60);
    let error = `${remoteAck}${reason === '' ? '' : ` ${reason}`} from ${this.method} ${this.where}`;
    if (status >= 300 && status < 400) {
      const location = headers.location;
      error += ` (redirects are not followed${location === undefined ? '' : `; Location: ${oneLine(location, BODY_IN_ERROR)}`})`;
    }
    if (text !== '') {
      error += `: ${text}`;
    }
    const retry = status === 408 || status === 429 || status >= 500;
    const retryAfterMs = retry ? parseRetryAfter(headers['retry-after']) : undefined;
    return retryAfterMs === undefined
      ? { ok: false, retry, error, remoteAck }
      : { ok: false, retry, error, remoteAck, retryAfterMs };
  }
}

/** The longest wait a Retry-After header may ask for (a larger value is taken as this). */
export const MAX_RETRY_AFTER_MS = 60 * 60 * 1000;

/**
 * HTTP Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date, as milliseconds from
 * `now` (0 for a date in the past), capped at an hour; undefined when absent or malformed.
 */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  const v = value?.trim();
  if (v === undefined || v === '') {
    return undefined;
  }
  let ms: number;
  if (/^\d+$/.test(v)) {
    ms = Number(v) * 1000;
  } else {
    // An HTTP-date names its day and month ("Sun, 06 Nov 1994 08:49:37 GMT"); Date.parse
    // alone would also take "-5" or "2024" for dates.
    const at = /[A-Za-z]{3}/.test(v) ? Date.parse(v) : NaN;
    if (Number.isNaN(at)) {
      return undefined;
    }
    ms = Math.max(0, at - now);
  }
  return Math.min(ms, MAX_RETRY_AFTER_MS);
}
