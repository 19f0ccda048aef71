import 'reflect-metadata';
import { ConfigFileError, SettingsError } from '@engine/config';
import { startEngine } from './bootstrap';
import { parseRoles } from './roles';

// One failed promise somewhere must not take every connection down with the process. Only the
// error's message is logged (driver and library messages carry no message content).
process.on('unhandledRejection', (reason: unknown) => {
  process.stderr.write(
    `unhandled rejection: ${reason instanceof Error ? reason.message : String(reason)}\n`,
  );
});

async function main(): Promise<void> {
  const roles = parseRoles(process.argv.slice(2), process.env.ENGINE_ROLES);
  await startEngine(roles);
}

main().catch((err: unknown) => {
  if (err instanceof SettingsError || err instanceof ConfigFileError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(78); // EX_CONFIG
  }
  process.stderr.write(
    `engine failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
