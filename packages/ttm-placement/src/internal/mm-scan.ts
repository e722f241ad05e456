/**
 * The eviction scan roster of the range manager (`drm_mm_scan_*`, "DOC: lru scan roster").
 *
 * The driver adds eviction candidates (typically walking an LRU) with {@link Scan.add}; each added
 * node is unlinked from the node list *without* touching the hole indexes, so the hole before it
 * grows, and `add` reports `true` once a hole of the wanted shape exists. The driver must then call
 * {@link Scan.remove} on every added node in exactly the reverse order; `remove` relinks the node
 * and reports whether it overlaps the found range (evict it). Finally the driver frees the
 * selected nodes and inserts with mode `evict`, which picks the just-created hole first.
 *
 * @internal
 */
import { type Adjust, type FitSpec, fitIn } from "./mm-fit.ts"
import type { Holes, Node } from "./mm-holes.ts"

/** What the scan needs from its manager. @internal */
export interface ScanOwner {
  readonly holes: Holes
  scanActive: number
  adjust(): Adjust | undefined
}

/**
 * An active eviction scan (`struct drm_mm_scan`), from `DrmMm.scan`.
 *
 * @since 0.1.0
 * @category models
 */
export class Scan {
  private readonly mm: ScanOwner
  private readonly spec: FitSpec
  /** Start of the found range (`scan->hit_start`); `Infinity` until found. */
  hitStart = Number.POSITIVE_INFINITY
  /** End of the found range (`scan->hit_end`). */
  hitEnd = 0
  private readonly added: Array<Node> = []

  /** @internal */
  constructor(mm: ScanOwner, spec: FitSpec) {
    this.mm = mm
    this.spec = spec
  }

  /** Whether a suitable range has been found. */
  get found(): boolean {
    return this.hitEnd > this.hitStart
  }

  private node(x: unknown): Node {
    const n = x as Node
    if (typeof x !== "object" || x === null || n.owner !== this.mm) {
      throw new Error("drm_mm: BUG: scan node of another manager")
    }
    return n
  }

  /** Models `drm_mm_scan_add_block()`: adds a candidate; `true` once a hole is found. */
  add(x: { readonly start: number }): boolean {
    const n = this.node(x)
    if (!n.allocated || n.scanned) throw new Error("drm_mm: BUG: scan_add_block on a free or already scanned node")
    n.scanned = true
    this.mm.scanActive++
    this.added.push(n)
    const hole = n.prev
    hole.next = n.next
    n.next.prev = hole
    const at = fitIn(hole, hole.holeStart, hole.holeEnd, this.spec, this.mm.adjust())
    if (at < 0) return false
    this.hitStart = at
    this.hitEnd = at + this.spec.size
    return true
  }

  /**
   * Models `drm_mm_scan_remove_block()`: must be called in reverse order of {@link add}; `true`
   * when the node overlaps the found range and must be evicted.
   */
  remove(x: { readonly start: number }): boolean {
    const n = this.node(x)
    if (!n.scanned || this.added[this.added.length - 1] !== n) {
      throw new Error("drm_mm: BUG: scan_remove_block out of order")
    }
    this.added.pop()
    n.scanned = false
    this.mm.scanActive--
    const prev = n.prev
    prev.next = n
    n.next.prev = n
    return n.start + n.size > this.hitStart && n.start < this.hitEnd
  }

  /**
   * Models `drm_mm_scan_color_evict()`: after the selected nodes are freed, a neighbour whose
   * colour still makes the found hole too small (only with a `colorAdjust`), else `undefined`.
   */
  colorEvict(): { readonly start: number; readonly size: number } | undefined {
    const adjust = this.mm.adjust()
    if (adjust === undefined) return undefined
    for (const h of this.mm.holes.stackOrder()) {
      const hs = h.holeStart
      const he = hs + h.holeSize
      if (hs > this.hitStart || he < this.hitEnd) continue
      const after = h.next.allocated ? h.next : undefined
      const [lo, hi] = adjust(h.allocated ? h : undefined, after, this.spec.color, hs, he)
      if (lo > this.hitStart) return h
      if (hi < this.hitEnd) return h.next
      return undefined
    }
    return undefined
  }
}
