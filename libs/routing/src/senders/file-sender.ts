/**
 * File destination sender: one file per delivery, `<directory>/<deliveryId>.<extension>`.
 *
 * Atomic and idempotent: the body goes to `<directory>/.<deliveryId>.<extension>.tmp`, is
 * fsynced, renamed over the final name, and the directory is fsynced, so a reader never sees a
 * partial file and a crash leaves either the old file or the new one. A second attempt of the
 * same delivery rewrites the same file. The directory is created when missing. I/O errors
 * (ENOSPC, EACCES, EROFS, ...) ask for a retry: they are fixed outside the engine.
 */
import { promises as fs } from 'node:fs';
import { join, resolve } from 'node:path';
import { type FileDestinationConfig } from '@engine/config';
import { type Rendered, type SendOutcome, type Sender } from '../types';
import { errorMessage } from './common';

/** The settings a file sender uses (a destination config has them all). */
export type FileSenderConfig = Pick<FileDestinationConfig, 'directory'>;

/** File name parts we accept: no separators, no leading dot, nothing a shell would mind. */
const SAFE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/;
const SAFE_EXTENSION = /^[A-Za-z0-9]{1,16}$/;

/** Open, fsync and close a directory (makes a rename durable). Not possible on Windows. */
async function syncDirectory(dir: string): Promise<void> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(dir, 'r');
    await handle.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL') {
      throw err;
    }
  } finally {
    await handle?.close();
  }
}

export class FileSender implements Sender {
  private readonly directory: string;

  constructor(config: FileSenderConfig) {
    this.directory = resolve(config.directory);
  }

  async send(item: Rendered, deliveryId: string): Promise<SendOutcome> {
    if (!SAFE_NAME.test(deliveryId)) {
      return { ok: false, retry: false, error: `delivery id unusable as a file name` };
    }
    if (!SAFE_EXTENSION.test(item.extension)) {
      return {
        ok: false,
        retry: false,
        error: `extension '${item.extension.slice(0, 20)}' unusable in a file name`,
      };
    }
    const name = `${deliveryId}.${item.extension}`;
    const target = join(this.directory, name);
    const temp = join(this.directory, `.${name}.tmp`);
    let handle: fs.FileHandle | undefined;
    try {
      await fs.mkdir(this.directory, { recursive: true });
      handle = await fs.open(temp, 'w', 0o644);
      await handle.writeFile(item.body);
      await handle.sync();
      await handle.close();
      handle = undefined;
      await fs.rename(temp, target);
      await syncDirectory(this.directory);
      return { ok: true, remoteAck: `file ${name}` };
    } catch (err) {
      await handle?.close().catch(() => undefined);
      await fs.rm(temp, { force: true }).catch(() => undefined);
      return { ok: false, retry: true, error: `writing ${target}: ${errorMessage(err)}` };
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
