/** Overlap tracking for ordered descriptor lists (dispatch splitting, direct literal writes). */
import type { Descriptor } from "../Descriptor.ts"
import { ENTRIES_PER_TABLE } from "../Pte.ts"

/**
 * The entries written by descriptors `[from, i)` of a list, for overlap tests. While the list runs
 * in increasing arena order (the common case: the planner's output, table by table) an overlap is
 * impossible and a single end offset is enough; the per-table span map is built only when that
 * order breaks.
 */
export class SpanSet {
  private readonly descs: ReadonlyArray<Descriptor>
  private from = 0
  private end = -1
  private map: Map<number, Array<number>> | undefined = undefined
  constructor(descs: ReadonlyArray<Descriptor>) {
    this.descs = descs
  }
  /** Forget everything; descriptors from `from` on will be added. */
  reset(from: number): void {
    this.from = from
    this.end = -1
    this.map = undefined
  }
  /** Whether `d` (at list index `i`) overlaps an entry added since the last reset. */
  overlaps(d: Descriptor, i: number): boolean {
    if (this.map === undefined) {
      if (d.table * ENTRIES_PER_TABLE + d.first >= this.end) return false
      this.map = new Map()
      for (let k = this.from; k < i; k++) this.record(this.descs[k] as Descriptor)
    }
    const spans = this.map.get(d.table)
    if (spans === undefined) return false
    for (let k = 0; k < spans.length; k += 2) {
      if (d.first < (spans[k + 1] ?? 0) && (spans[k] ?? 0) < d.first + d.count) return true
    }
    return false
  }
  /** Records `d` (at list index `i`, after the previous one added). */
  add(d: Descriptor, i: number): void {
    if (this.map === undefined) {
      const s = d.table * ENTRIES_PER_TABLE + d.first
      if (s >= this.end) {
        this.end = s + d.count
        return
      }
      this.map = new Map()
      for (let k = this.from; k < i; k++) this.record(this.descs[k] as Descriptor)
    }
    this.record(d)
  }
  private record(d: Descriptor): void {
    const m = this.map as Map<number, Array<number>>
    const spans = m.get(d.table)
    if (spans === undefined) m.set(d.table, [d.first, d.first + d.count])
    else spans.push(d.first, d.first + d.count)
  }
}
