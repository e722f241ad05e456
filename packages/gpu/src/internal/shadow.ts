/**
 * Structural shadow of the page-table tree (no entry values except huge leaves): which tables
 * exist, their level, live-entry counts (xe `num_live`), children, and the walks for map / unmap /
 * zap. Every mutation is journaled so a failed plan (arena full) rolls back completely.
 */
import type { Backing } from "../PageTable.ts"
import { dirFlags, ENTRIES_PER_TABLE, encoder, leafFlags, PteBits } from "../Pte.ts"
import type { Emitter } from "./emitter.ts"

/** The shared PTE encoder, as closures V8 inlines in the hot loops below (see `Pte.encoder`). */
const { lo, hi } = encoder()

const EMPTY = -1
const HUGE = -2
const UNUSED = -1
const ZOMBIE = -2

export class Shadow {
  readonly free: Array<number> = []
  readonly level: Int8Array
  readonly live: Uint16Array
  /** Upper tables: child index, EMPTY or HUGE per entry. */
  readonly kids: Array<Int32Array | undefined> = []
  readonly hugeFrame: Array<Float64Array | undefined> = []
  readonly hugeFlags: Array<Uint16Array | undefined> = []
  /** Leaf tables: 1 where a leaf is present. */
  readonly present: Array<Uint8Array | undefined> = []
  wanted = 0
  private em: Emitter | undefined
  private undo: Array<() => void> = []
  private allocated: Array<{ table: number; level: number }> = []
  private freed: Array<number> = []
  private mapStart = 0
  /** Literal PTEs of the current map op: one array, each descriptor a view (coalesced queue writes). */
  private lits: Uint32Array | undefined = undefined
  private mapLength = 0
  private backing: Backing = { _tag: "Null" }
  private flags = 0
  private huge = true
  private readonly emptyFrame: number
  private readonly emptyFlags: number

  readonly levels: number
  readonly capacity: number
  readonly maxHuge: number
  constructor(levels: number, capacity: number, scratchFrame: number | undefined, maxHuge: number) {
    this.levels = levels
    this.capacity = capacity
    this.maxHuge = maxHuge
    this.level = new Int8Array(capacity).fill(UNUSED)
    this.live = new Uint16Array(capacity)
    for (let t = capacity - 1; t >= 1; t--) this.free.push(t)
    this.init(0, levels - 1)
    this.emptyFrame = scratchFrame ?? 0
    this.emptyFlags = scratchFrame === undefined ? 0 : PteBits.PRESENT | PteBits.LEAF
  }

  get inUse(): number {
    return this.capacity - this.free.length
  }

  private init(t: number, level: number): void {
    this.level[t] = level
    this.live[t] = 0
    if (level > 0) {
      this.kids[t] = new Int32Array(ENTRIES_PER_TABLE).fill(EMPTY)
      this.hugeFrame[t] = new Float64Array(ENTRIES_PER_TABLE)
      this.hugeFlags[t] = new Uint16Array(ENTRIES_PER_TABLE)
      this.present[t] = undefined
    } else {
      this.present[t] = new Uint8Array(ENTRIES_PER_TABLE)
      this.kids[t] = undefined
    }
  }

  private get out(): Emitter {
    if (this.em === undefined) throw new Error("shadow: no plan in progress")
    return this.em
  }

  begin(em: Emitter): void {
    this.em = em
    this.undo = []
    this.allocated = []
    this.freed = []
    this.wanted = 0
  }

  commit(): { allocated: Array<{ table: number; level: number }>; freed: Array<number> } {
    const r = { allocated: this.allocated, freed: this.freed }
    this.em = undefined
    this.undo = []
    return r
  }

  rollback(): void {
    for (let i = this.undo.length - 1; i >= 0; i--) this.undo[i]?.()
    this.undo = []
    this.em = undefined
  }

  retire(ids: ReadonlyArray<number>): void {
    for (const t of ids) {
      if (this.level[t] !== ZOMBIE) continue
      this.level[t] = UNUSED
      this.free.push(t)
    }
  }

  private alloc(level: number): number {
    const t = this.free.pop()
    if (t === undefined) {
      this.wanted++
      return -1
    }
    this.init(t, level)
    this.allocated.push({ table: t, level })
    this.undo.push(() => {
      this.level[t] = UNUSED
      this.free.push(t)
    })
    return t
  }

  private freeSubtree(root: number): void {
    const stack = [root]
    while (stack.length > 0) {
      const t = stack.pop() as number
      const lvl = this.level[t] as number
      const kids = this.kids[t]
      if (lvl > 0 && kids !== undefined) for (const k of kids) if (k >= 0) stack.push(k)
      this.level[t] = ZOMBIE
      this.freed.push(t)
      this.undo.push(() => (this.level[t] = lvl))
    }
  }

  /** Journals entry `i` of upper table `t` (child, huge frame/flags, live count). */
  private save(t: number, i: number): void {
    const kids = this.kids[t] as Int32Array
    const hf = this.hugeFrame[t] as Float64Array
    const hg = this.hugeFlags[t] as Uint16Array
    const k = kids[i] as number
    const f = hf[i] as number
    const g = hg[i] as number
    const l = this.live[t] as number
    this.undo.push(() => {
      kids[i] = k
      hf[i] = f
      hg[i] = g
      this.live[t] = l
    })
  }

  private setLeafRun(t: number, first: number, count: number, on: boolean): void {
    const p = this.present[t] as Uint8Array
    const old = p.slice(first, first + count)
    const l = this.live[t] as number
    this.undo.push(() => {
      p.set(old, first)
      this.live[t] = l
    })
    let delta = 0
    for (let i = first; i < first + count; i++) {
      if ((p[i] === 1) !== on) delta += on ? 1 : -1
      p[i] = on ? 1 : 0
    }
    this.live[t] = l + delta
  }

  private clearUpper(t: number, i: number): void {
    this.save(t, i)
    const kids = this.kids[t] as Int32Array
    kids[i] = EMPTY
    this.live[t] = (this.live[t] as number) - 1
    this.out.run(t, i, 1, 0, 0, 0)
  }

  // ---- backing helpers
  private frameAt(off: number): number {
    const b = this.backing
    return b._tag === "Contiguous" ? b.baseFrame + off : b._tag === "Pages" ? (b.frames[off] as number) : 0
  }

  private qualifies(off: number, span: number): boolean {
    const b = this.backing
    if (b._tag === "Null") return true
    const f0 = this.frameAt(off)
    if (f0 % span !== 0) return false
    if (b._tag === "Contiguous") return true
    for (let k = 1; k < span; k++) if (b.frames[off + k] !== f0 + k) return false
    return true
  }

  private leafBits(): number {
    return leafFlags(this.flags) | (this.backing._tag === "Null" ? PteBits.NULL : 0)
  }

  private emitLeaves(t: number, first: number, count: number, off: number): void {
    const b = this.backing
    const lf = this.leafBits()
    if (b._tag === "Contiguous") this.out.run(t, first, count, b.baseFrame + off, 1, lf)
    else if (b._tag === "Null") this.out.run(t, first, count, 0, 0, lf)
    else {
      if (this.lits === undefined) this.lits = new Uint32Array(2 * this.mapLength)
      const v = this.lits.subarray(2 * off, 2 * (off + count))
      for (let k = 0; k < count; k++) {
        const fr = b.frames[off + k] as number
        v[2 * k] = lo(fr, lf)
        v[2 * k + 1] = hi(fr)
      }
      this.out.literal(t, first, v)
    }
  }

  /** Child table of entry `i` of upper table `t`: existing, new (empty), or split from a huge leaf. */
  private ensureChild(t: number, level: number, i: number): number {
    const kids = this.kids[t] as Int32Array
    const k = kids[i] as number
    if (k >= 0) return k
    const c = this.alloc(level - 1)
    if (c < 0) return -1
    this.save(t, i)
    if (k === EMPTY) {
      this.live[t] = (this.live[t] as number) + 1
      if (level - 1 === 0) this.out.prefill(c, 0, this.emptyFrame, 0, this.emptyFlags)
      else this.out.prefill(c, level - 1, 0, 0, 0)
    } else {
      const frame = (this.hugeFrame[t] as Float64Array)[i] as number
      const flags = (this.hugeFlags[t] as Uint16Array)[i] as number
      const step = (flags & PteBits.NULL) !== 0 ? 0 : 512 ** (level - 1)
      this.out.prefill(c, level - 1, frame, step, flags)
      this.live[c] = ENTRIES_PER_TABLE
      if (level - 1 === 0) (this.present[c] as Uint8Array).fill(1)
      else {
        ;(this.kids[c] as Int32Array).fill(HUGE)
        const hf = this.hugeFrame[c] as Float64Array
        for (let j = 0; j < ENTRIES_PER_TABLE; j++) hf[j] = frame + j * step
        ;(this.hugeFlags[c] as Uint16Array).fill(flags)
      }
    }
    kids[i] = c
    this.out.run(t, i, 1, c, 0, dirFlags)
    return c
  }

  private setHuge(t: number, i: number, frame: number, flags: number): void {
    this.save(t, i)
    const kids = this.kids[t] as Int32Array
    const k = kids[i] as number
    if (k >= 0) this.freeSubtree(k)
    if (k === EMPTY) this.live[t] = (this.live[t] as number) + 1
    kids[i] = HUGE
    ;(this.hugeFrame[t] as Float64Array)[i] = frame
    ;(this.hugeFlags[t] as Uint16Array)[i] = flags
    this.out.run(t, i, 1, frame, 0, flags)
  }

  // ---- walks (page numbers; [s, e) inside the table's span starting at `base`)
  map(s: number, e: number, backing: Backing, flags: number, huge: boolean): boolean {
    this.mapStart = s
    this.mapLength = e - s
    this.lits = undefined
    this.backing = backing
    this.flags = flags
    this.huge = huge
    return this.mapLevel(0, this.levels - 1, 0, s, e)
  }

  private mapLevel(t: number, level: number, base: number, s: number, e: number): boolean {
    const span = 512 ** level
    const i0 = Math.floor((s - base) / span)
    const i1 = Math.floor((e - 1 - base) / span)
    if (level === 0) {
      this.emitLeaves(t, i0, i1 - i0 + 1, s - this.mapStart)
      this.setLeafRun(t, i0, i1 - i0 + 1, true)
      return true
    }
    for (let i = i0; i <= i1; i++) {
      const es = base + i * span
      const a = Math.max(s, es)
      const b = Math.min(e, es + span)
      const full = a === es && b === es + span
      if (full && this.huge && level <= this.maxHuge && this.qualifies(a - this.mapStart, span)) {
        this.setHuge(t, i, this.frameAt(a - this.mapStart), this.leafBits())
        continue
      }
      const c = this.ensureChild(t, level, i)
      if (c < 0 || !this.mapLevel(c, level - 1, es, a, b)) return false
    }
    return true
  }

  unmap(s: number, e: number): boolean {
    return this.clearLevel(0, this.levels - 1, 0, s, e, false)
  }

  zap(s: number, e: number): boolean {
    return this.clearLevel(0, this.levels - 1, 0, s, e, true)
  }

  /** Unmap (`zap = false`: split partial huge leaves, free emptied tables) or zap (no structure change). */
  private clearLevel(t: number, level: number, base: number, s: number, e: number, zap: boolean): boolean {
    const span = 512 ** level
    const i0 = Math.floor((s - base) / span)
    const i1 = Math.floor((e - 1 - base) / span)
    if (level === 0) {
      this.out.run(t, i0, i1 - i0 + 1, this.emptyFrame, 0, this.emptyFlags)
      this.setLeafRun(t, i0, i1 - i0 + 1, false)
      return true
    }
    const kids = this.kids[t] as Int32Array
    for (let i = i0; i <= i1; i++) {
      const k = kids[i] as number
      if (k === EMPTY) continue
      const es = base + i * span
      const a = Math.max(s, es)
      const b = Math.min(e, es + span)
      const full = a === es && b === es + span
      if (k === HUGE && (full || zap)) {
        this.clearUpper(t, i)
        continue
      }
      if (k >= 0 && full && !zap) {
        this.freeSubtree(k)
        this.clearUpper(t, i)
        continue
      }
      const c = this.ensureChild(t, level, i)
      if (c < 0 || !this.clearLevel(c, level - 1, es, a, b, zap)) return false
      if (!zap && this.live[c] === 0) {
        this.freeSubtree(c)
        this.clearUpper(t, i)
      }
    }
    return true
  }
}
