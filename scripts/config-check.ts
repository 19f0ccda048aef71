/**
 * `npm run config:check [-- FILE]`: validates the engine configuration (HL7_CONFIG or
 * config/engine.yaml, and the files it includes) without starting anything. Prints a summary
 * and exits 0, or prints every problem with its file and path and exits 1.
 */
import { ConfigFileError, loadEngineConfig } from '@engine/config';
import { checkRules } from '@engine/routing';

export function checkConfig(
  file: string,
  out: (text: string) => void,
  err: (text: string) => void,
): number {
  try {
    const cfg = loadEngineConfig(file);
    // Field rules the schema cannot judge (targets like MSH-1/MSH-2, charsets).
    const ruleProblems: string[] = [];
    cfg.routes.forEach((r, i) => {
      try {
        checkRules(r.transform.rules, cfg.tables);
      } catch (e) {
        ruleProblems.push(`routes[${i}].transform.rules: ${(e as Error).message}`);
      }
    });
    if (ruleProblems.length > 0) {
      throw new ConfigFileError(file, ruleProblems);
    }
    const lines = [
      `${file}: valid`,
      `  feeds: ${cfg.feeds.map((f) => `${f.id} (:${f.port})`).join(', ') || 'none'}`,
      `  destinations: ${
        cfg.destinations.map((d) => `${d.id} (${d.type}, ${d.format})`).join(', ') || 'none'
      }`,
      `  routes: ${
        cfg.routes
          .map(
            (r) =>
              `${r.id} (${'feed' in r.source ? `feed ${r.source.feed}` : `events ${r.source.events.join(' ')}`} → ${r.destinations.join(', ')})`,
          )
          .join(', ') || 'none'
      }`,
    ];
    out(`${lines.join('\n')}\n`);
    return 0;
  } catch (e) {
    if (e instanceof ConfigFileError) {
      err(`${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

if (require.main === module) {
  const file = process.argv[2] ?? process.env.HL7_CONFIG ?? 'config/engine.yaml';
  process.exitCode = checkConfig(
    file,
    (t) => process.stdout.write(t),
    (t) => process.stderr.write(t),
  );
}
