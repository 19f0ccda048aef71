import { partitionOf } from './partition';

describe('partitionOf', () => {
  it('is stable for known keys (changing this breaks per-patient order across upgrades)', () => {
    // FNV-1a 32-bit reference values: fnv1a('') = 0x811c9dc5, fnv1a('a') = 0xe40c292c.
    expect(partitionOf('', 1 << 30)).toBe(0x811c9dc5 % (1 << 30));
    expect(partitionOf('a', 0x7fffffff)).toBe(0xe40c292c % 0x7fffffff);
  });

  it('spreads keys over every partition within the range', () => {
    const counts = new Array<number>(16).fill(0);
    for (let i = 0; i < 16000; i++) {
      const p = partitionOf(`MRN${i}^HOSP`, 16);
      expect(p).toBeGreaterThanOrEqual(0);
      expect(p).toBeLessThan(16);
      counts[p]++;
    }
    for (const c of counts) {
      expect(c).toBeGreaterThan(700);
      expect(c).toBeLessThan(1300);
    }
  });

  it('gives one partition when there is one', () => {
    expect(partitionOf('anything', 1)).toBe(0);
  });
});
