/**
 * Stable partition of a patient key: FNV-1a 32-bit over the UTF-16 code units, modulo the
 * partition count. Stable across processes, machines and Node versions, so one patient's
 * messages always share a partition (and so a queue, so they are applied in order).
 */
export function partitionOf(key: string, partitions: number): number {
  if (partitions <= 1) {
    return 0;
  }
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % partitions;
}
