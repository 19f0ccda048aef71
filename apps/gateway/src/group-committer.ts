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
  /** Batches committed and rows written (for metrics and tests). */
  readonly stats = { batches: 0, rows: 0 };

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
      void this.commit(batch, window);
    }
  }

  private async commit(batch: Pending[], dedupWindowMs: number): Promise<void> {
    const rows = batch.map((p) => p.row);
    try {
      const results = await this.store.insertBatch(rows, { dedupWindowMs });
      this.stats.batches++;
      this.stats.rows += rows.length;
      try {
        this.options.onCommitted?.(rows, results);
      } finally {
        batch.forEach((p, i) => p.resolve(results[i]));
      }
    } catch (err) {
      for (const p of batch) {
        p.reject(err);
      }
    } finally {
      this.inflight--;
      this.pump();
    }
  }
}
