/**
 * Range fences: the outstanding page-table jobs of a VM by address range (xe's `xe_range_fence`
 * tree, keyed by the job's span rounded to whole entries of the highest level it writes). A new
 * job depends on every unsignalled job of another queue whose range overlaps its own; jobs on the
 * same queue are already ordered. Entries drop out when their fence signals.
 */
import type { DmaFence } from "@drmkit/resv-locking"

interface Entry {
  readonly lo: bigint
  readonly hi: bigint
  readonly queue: number
  readonly fence: DmaFence.DmaFence
}

export class RangeFences {
  private readonly entries = new Set<Entry>()

  get size(): number {
    return this.entries.size
  }

  /** Unsignalled fences of other queues overlapping `[lo, hi)`. */
  conflicts(lo: bigint, hi: bigint, queue: number): Array<DmaFence.DmaFence> {
    const out: Array<DmaFence.DmaFence> = []
    for (const e of this.entries) {
      if (e.fence.isSignaled) {
        this.entries.delete(e)
        continue
      }
      if (e.queue !== queue && e.lo < hi && lo < e.hi) out.push(e.fence)
    }
    return out
  }

  /** Records a job's range; removed once its fence signals. */
  add(lo: bigint, hi: bigint, queue: number, fence: DmaFence.DmaFence): void {
    const e: Entry = { lo, hi, queue, fence }
    this.entries.add(e)
    if (!fence.addCallback(() => this.entries.delete(e))) this.entries.delete(e)
  }
}

/** Rounds `[lo, hi)` (bytes) out to whole entries of `level` (entry span 4 KiB · 512^level). */
export const roundOut = (lo: bigint, hi: bigint, level: number): readonly [bigint, bigint] => {
  const span = 4096n * 512n ** BigInt(level)
  return [(lo / span) * span, ((hi + span - 1n) / span) * span]
}
