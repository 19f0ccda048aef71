import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkConfig } from './config-check';

describe('config:check', () => {
  it('summarizes a valid config and exits 0', () => {
    const out: string[] = [];
    const code = checkConfig(
      'config/engine.yaml',
      (t) => out.push(t),
      (t) => out.push(t),
    );
    expect(code).toBe(0);
    expect(out.join('')).toContain('destinations: ehr (mllp, hl7), billing (http, json)');
  });

  it('refuses field rules that cannot apply (MSH-1 as a target)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'config-check-'));
    try {
      const file = join(dir, 'engine.yaml');
      writeFileSync(
        file,
        `feeds: [{ id: a, port: 2575, accept: ['ADT^*'] }]
destinations: [{ id: x, type: mllp, host: h, port: 1, format: hl7 }]
routes: [{ id: r, source: { feed: a }, destinations: [x], transform: { rules: [{ set: MSH-1, value: '#' }] } }]
`,
      );
      const errors: string[] = [];
      expect(
        checkConfig(
          file,
          () => undefined,
          (t) => errors.push(t),
        ),
      ).toBe(1);
      expect(errors.join('')).toMatch(/routes\[0\]\.transform\.rules: .*MSH-1/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('prints every problem with file and path and exits 1', () => {
    const dir = mkdtempSync(join(tmpdir(), 'config-check-'));
    try {
      const file = join(dir, 'engine.yaml');
      writeFileSync(
        file,
        `feeds: [{ id: a, port: 2575, accept: ['ADT^*'] }]
destinations: [{ id: x, type: mllp, host: h, port: 1, format: hl7 }]
routes: [{ id: r, source: { feed: b }, destinations: [y] }]
`,
      );
      const errors: string[] = [];
      expect(
        checkConfig(
          file,
          () => undefined,
          (t) => errors.push(t),
        ),
      ).toBe(1);
      expect(errors.join('')).toBe(
        `${file}: invalid configuration:\n  routes[0].source.feed: no feed "b"\n  routes[0].destinations[0]: no destination "y"\n`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
