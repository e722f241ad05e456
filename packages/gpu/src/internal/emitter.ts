/**
 * Descriptor emitter used by the planner: merges consecutive generator-compatible writes to one
 * table into one descriptor (one open run per table, like xe keeps one active update per parent),
 * and keeps new-table pre-fills apart so they can be emitted first.
 */
import type * as Descriptor from "../Descriptor.ts"
import { ENTRIES_PER_TABLE } from "../Pte.ts"

interface Run {
  table: number
  first: number
  count: number
  base: number
  inc: number
  flags: number
}

/** Fill of a freshly allocated table (zero, scratch, or the expansion of a huge leaf). */
export interface Prefill {
  readonly table: number
  readonly level: number
  readonly base: number
  readonly inc: number
  readonly flags: number
  /** Entries overwritten later in the same plan; a fully overwritten table needs no fill. */
  readonly written: Uint8Array
}

export class Emitter {
  readonly out: Array<Descriptor.Descriptor> = []
  readonly prefills = new Map<number, Prefill>()
  private readonly open = new Map<number, Run>()

  prefill(table: number, level: number, base: number, inc: number, flags: number): void {
    this.prefills.set(table, { table, level, base, inc, flags, written: new Uint8Array(ENTRIES_PER_TABLE) })
  }

  private mark(table: number, first: number, count: number): void {
    const p = this.prefills.get(table)
    if (p !== undefined) p.written.fill(1, first, first + count)
  }

  private flush(table: number): void {
    const r = this.open.get(table)
    if (r === undefined) return
    this.open.delete(table)
    this.out.push({
      table: r.table,
      first: r.first,
      count: r.count,
      source: { _tag: "Generator", baseFrame: r.base, increment: r.inc, flags: r.flags }
    })
  }

  /** Emits `count` generated entries; merges with the table's open run when it continues it. */
  run(table: number, first: number, count: number, base: number, inc: number, flags: number): void {
    this.mark(table, first, count)
    const r = this.open.get(table)
    if (r !== undefined && r.first + r.count === first && r.flags === flags) {
      const expected = r.base + r.count * r.inc
      const step = base - r.base
      // the GPU computes base + i·inc in 32-bit: keep (count - 1)·inc below 2^32
      const fits = (s: number) => (r.count + count - 1) * s < 2 ** 32
      if (r.count === 1 && step >= 0 && (count === 1 || inc === step) && fits(step)) {
        r.inc = step
        r.count += count
        return
      }
      if (base === expected && (count === 1 || inc === r.inc) && fits(r.inc)) {
        r.count += count
        return
      }
    }
    this.flush(table)
    this.open.set(table, { table, first, count, base, inc: count === 1 ? 0 : inc, flags })
  }

  /** Emits literal entries (scattered pages). */
  literal(table: number, first: number, values: Uint32Array): void {
    this.flush(table)
    this.mark(table, first, values.length >>> 1)
    this.out.push({ table, first, count: values.length >>> 1, source: { _tag: "Literal", values } })
  }

  /**
   * Final ordered list: pre-fills of new tables first — only the entries the plan does not write
   * itself, so fills and writes never overlap and a typical plan is one dispatch — then the writes
   * in order.
   */
  finish(): Array<Descriptor.Descriptor> {
    for (const t of [...this.open.keys()]) this.flush(t)
    const fills: Array<Descriptor.Descriptor> = []
    for (const p of this.prefills.values()) {
      const w = p.written
      for (let i = w.indexOf(0); i !== -1 && i < ENTRIES_PER_TABLE; ) {
        let j = i
        while (j < ENTRIES_PER_TABLE && w[j] === 0) j++
        fills.push({
          table: p.table,
          first: i,
          count: j - i,
          source: { _tag: "Generator", baseFrame: p.base + i * p.inc, increment: p.inc, flags: p.flags }
        })
        i = w.indexOf(0, j)
      }
    }
    return fills.concat(this.out)
  }
}
