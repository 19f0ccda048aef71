import type { InsertResult, NewMessage } from '@engine/store';

export interface CommitStore {
  insertBatch(rows: NewMessage[], opts: { dedupWindowMs: number }): Promise<InsertResult[]>;
}

interface Pending {
  row: NewMessage;
  dedupWindowMs: number;
  resolve: (r: InsertResult) => void;
  reject: (e: unknown) => void;
}

/** One batch, from its submission until its outcome is reported (in submission order). */
interface Slot {
  done: boolean;
  /** The rows committed (failed rows removed once the outcome is known). */
  rows: NewMessage[];
  results?: InsertResult[];
}

export interface GroupCommitterOptions {
  /** Most rows in one transaction. */
  maxBatch: number;
  /** Transactions in flight at once; rows arriving meanwhile wait and go together in the next. */
  maxInflight: number;
  /** Called with every committed batch (after the commit, before callers are resolved). */
  onCommitted?: (rows: NewMessage[], results: InsertResult[]) => void;
}

/**
 * Group commit: rows submitted while a transaction is in flight are written together in the
 * next one, so messages arriving at the same time on different connections share one commit
 * (one WAL flush). A submit resolves only after its row is committed: the caller may then ACK.
 */
export class GroupCommitter {
  private pending: Pending[] = [];
  private inflight = 0;
  /** Batches in submission order whose commit outcome is not yet reported to onCommitted. */
  private readonly unreported: Slot[] = [];
  /** Batches committed and rows written (for metrics and tests). */
  readonly stats = { batches: 0, rows: 0, splitRetries: 0 };

  constructor(
    private readonly store: CommitStore,
    private readonly options: GroupCommitterOptions,
  ) {}

  submit(row: NewMessage, dedupWindowMs: number): Promise<InsertResult> {
    return new Promise<InsertResult>((resolve, reject) => {
      this.pending.push({ row, dedupWindowMs, resolve, reject });
      this.pump();
    });
  }

  get queued(): number {
    return this.pending.length;
  }

  /** True when nothing is waiting or being written. */
  get idle(): boolean {
    return this.pending.length === 0 && this.inflight === 0;
  }

  private pump(): void {
    while (this.inflight < this.options.maxInflight && this.pending.length > 0) {
      const window = this.pending[0].dedupWindowMs;
      // One batch shares one dedup window (feeds may differ); take the run of equal windows.
      let n = 1;
      const max = Math.min(this.pending.length, this.options.maxBatch);
      while (n < max && this.pending[n].dedupWindowMs === window) {
        n++;
      }
      const batch = this.pending.splice(0, n);
      this.inflight++;
      const slot: Slot = { done: false, rows: batch.map((p) => p.row) };
      this.unreported.push(slot);
      void this.commit(batch, window, slot);
    }
  }

  private async commit(batch: Pending[], dedupWindowMs: number, slot: Slot): Promise<void> {
    const rows = slot.rows;
    try {
      let results: (InsertResult | Error)[];
      try {
        results = await this.store.insertBatch(rows, { dedupWindowMs });
        this.stats.batches++;
        this.stats.rows += rows.length;
      } catch (err) {
        if (rows.length === 1) {
          throw err;
        }
        // One bad row must not fail the messages of other connections that shared its commit:
        // write the rows one by one, so that only the bad one fails.
        this.stats.splitRetries++;
        results = await Promise.all(
          rows.map((r) =>
            this.store.insertBatch([r], { dedupWindowMs }).then(
              ([one]) => one,
              (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
            ),
          ),
        );
      }
      slot.results = results.filter((r): r is InsertResult => !(r instanceof Error));
      slot.rows = rows.filter((_, i) => !(results[i] instanceof Error));
      this.report(slot);
      batch.forEach((p, i) => {
        const r = results[i];
        if (r instanceof Error) {
          p.reject(r);
        } else {
          p.resolve(r);
        }
      });
    } catch (err) {
      slot.rows = [];
      slot.results = [];
      this.report(slot);
      for (const p of batch) {
        p.reject(err);
      }
    } finally {
      this.inflight--;
      this.pump();
    }
  }

  /**
   * Report committed batches to onCommitted in submission order (two transactions in flight may
   * finish out of order; the enqueue that follows must keep each partition's arrival order).
   */
  private report(slot: Slot): void {
    slot.done = true;
    while (this.unreported.length > 0 && this.unreported[0].done) {
      const next = this.unreported.shift()!;
      if (next.rows.length > 0 && next.results) {
        this.options.onCommitted?.(next.rows, next.results);
      }
    }
  }
}
