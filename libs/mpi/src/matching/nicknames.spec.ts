import * as fs from 'node:fs';
import * as path from 'node:path';
import { NICKNAME_GROUPS } from './data/nicknames.generated';
import { groupNicknameCsv, renderNicknameModule } from './data/generate-nicknames';
import { areNicknames, nicknameNameCount } from './nicknames';

const dataDir = path.join(__dirname, 'data');

describe('shipped nickname list', () => {
  const csv = fs.readFileSync(path.join(dataDir, 'nicknames.csv'), 'utf8');

  it('the generated module is the CSV (regenerate with data/generate-nicknames.ts)', () => {
    const groups = groupNicknameCsv(csv);
    expect(NICKNAME_GROUPS).toEqual([...groups].map(([c, n]) => [c, ...n].join(' ')));
    const generated = fs.readFileSync(path.join(dataDir, 'nicknames.generated.ts'), 'utf8');
    expect(generated).toBe(renderNicknameModule(groups));
  });

  it('holds every name of the CSV (2,691 rows, 2,164 distinct names)', () => {
    const rows = csv
      .split(/\r?\n/)
      .slice(1)
      .filter((l) => l !== '');
    expect(rows).toHaveLength(2691);
    const names = new Set(rows.flatMap((l) => [l.split(',')[0], l.split(',')[2]]));
    expect(names.size).toBe(2164);
    expect(nicknameNameCount()).toBe(2164);
    for (const row of rows.slice(0, 200)) {
      const [a, , b] = row.split(',');
      expect(areNicknames(a, b)).toBe(true);
    }
  });

  it('ships the licence and provenance beside the data', () => {
    expect(fs.readFileSync(path.join(dataDir, 'nicknames.LICENSE.txt'), 'utf8')).toContain(
      'Apache License',
    );
    expect(fs.readFileSync(path.join(dataDir, 'PROVENANCE.md'), 'utf8')).toContain(
      '21d75051c39cb022d145388d60c87dc30505228b',
    );
  });
});
