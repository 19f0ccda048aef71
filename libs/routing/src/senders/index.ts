import { type DestinationConfig } from '@engine/config';
import { type Sender } from '../types';
import { FileSender } from './file-sender';
import { HttpSender } from './http-sender';
import { MllpSender } from './mllp-sender';

export { FileSender, type FileSenderConfig } from './file-sender';
export { HttpSender, type HttpSenderConfig } from './http-sender';
export { MllpSender, type MllpSenderConfig } from './mllp-sender';
export { loadClientTls, type LoadedClientTls } from './common';

/**
 * The sender of a destination. Throws when the destination cannot work at all (a TLS file that
 * cannot be read, a bad URL): call it at start so the process fails fast.
 */
export function createSender(dest: DestinationConfig): Sender {
  switch (dest.type) {
    case 'mllp':
      return new MllpSender(dest);
    case 'http':
      return new HttpSender(dest);
    case 'file':
      return new FileSender(dest);
  }
}
