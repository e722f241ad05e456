/**
 * The range allocator behind TTM's range manager — models `drivers/gpu/drm/drm_mm.c`.
 *
 * Nodes are `[start, start + size)` ranges inside `[start, start + size)` of the manager; the gaps
 * (holes) are indexed by size (best fit, and an oversize request fails in O(1) by looking at the
 * largest hole), by address with the per-subtree largest hole (bottom-up / top-down search in
 * O(log n)), and on a most-recent-first stack (EVICT mode). Supports alignment (any integer, not
 * only powers of two), a colour per node with a driver `colorAdjust` callback that shrinks holes
 * next to differently coloured neighbours, range restriction, `reserve` of a fixed range, `replace`,
 * and the eviction scan roster (`drm_mm_scan_*`, see {@link DrmMm.scan}).
 *
 * Functional core: a plain synchronous class; fallible calls return an Effect `Result` (lift it
 * with `Effect.fromResult` inside `Effect.gen`). Misuse the kernel `DRM_MM_BUG_ON`s (removing a free node, touching the
 * manager while a scan is active, removing scan blocks out of order) throws — a defect.
 *
 * Deviations: bad input (size 0, negative/fractional numbers, `start > end`) is a typed `Invalid`
 * (the kernel returns `-ENOSPC` for size 0 and BUGs on the rest); best fit breaks ties between
 * equally sized holes by lowest address (the kernel by insertion order).
 *
 * @since 0.1.0
 */
import { Invalid, NoSpace } from "@drmkit/core"
import { Result } from "effect"
import { type Adjust, type FitSpec, fitIn } from "./internal/mm-fit.ts"
import { Holes, Node } from "./internal/mm-holes.ts"
import { Scan, type ScanOwner } from "./internal/mm-scan.ts"

/**
 * A node handed out by {@link DrmMm} (`struct drm_mm_node`). Read-only to callers.
 *
 * @since 0.1.0
 * @category models
 */
export interface MmNode {
  readonly start: number
  readonly size: number
  readonly color: number
  /** `drm_mm_node_allocated`. */
  readonly allocated: boolean
}

/**
 * `enum drm_mm_insert_mode`: `best` (smallest fitting hole), `low` (lowest address), `high`
 * (highest address), `evict` (most recently freed hole first, used right after an eviction scan).
 *
 * @since 0.1.0
 * @category models
 */
export type InsertMode = "best" | "low" | "high" | "evict"

/**
 * Arguments of {@link DrmMm.insert} (`drm_mm_insert_node_in_range`).
 *
 * @since 0.1.0
 * @category models
 */
export interface InsertOptions {
  readonly size: number
  /** 0 or 1 = none; any positive integer. */
  readonly alignment?: number
  readonly color?: number
  /** Allowed range `[start, end)`; defaults to the whole manager. */
  readonly start?: number
  readonly end?: number
  /** Default `best`. */
  readonly mode?: InsertMode
  /** `DRM_MM_INSERT_ONCE`: only try the first candidate hole (`low`+once = LOWEST, `high`+once = HIGHEST). */
  readonly once?: boolean
}

/**
 * The driver's `mm->color_adjust(hole_node, color, &start, &end)`: given the nodes around a hole
 * (`undefined` at the manager edges) and the colour to insert, return the usable `[start, end)`.
 *
 * @since 0.1.0
 * @category models
 */
export type ColorAdjust = (
  before: MmNode | undefined,
  after: MmNode | undefined,
  color: number,
  start: number,
  end: number
) => readonly [number, number]

/**
 * A hole: free `[start, end)`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Hole {
  readonly start: number
  readonly end: number
}

const WHAT = "drm_mm"
const badInt = (x: unknown): boolean => typeof x !== "number" || !Number.isSafeInteger(x) || x < 0
const invalid = (what: string, reason: string, value: unknown) => new Invalid({ what, reason, value })

/**
 * A range manager (`struct drm_mm`). Create with {@link make}.
 *
 * @since 0.1.0
 * @category models
 */
export class DrmMm implements ScanOwner {
  /** First managed address. */
  readonly start: number
  /** Managed bytes. */
  readonly size: number
  /** The driver's colour adjustment (`mm->color_adjust`), if any. */
  colorAdjust: ColorAdjust | undefined = undefined
  /** @internal */
  readonly head: Node
  /** @internal */
  readonly holes: Holes
  /** @internal number of nodes in an active scan (`mm->scan_active`). */
  scanActive = 0
  private used = 0
  private count = 0

  /** @internal use {@link make} */
  constructor(start: number, size: number) {
    this.start = start
    this.size = size
    this.head = new Node(this, start + size, -size, 0)
    this.holes = new Holes(this)
    this.holes.add(this.head)
  }

  /** Bytes in nodes. */
  get usedBytes(): number {
    return this.used
  }

  /** Number of nodes. */
  get nodeCount(): number {
    return this.count
  }

  /** Number of holes. */
  get holeCount(): number {
    return this.holes.bySize.size
  }

  /** Size of the largest hole (0 when full). */
  get largestHole(): number {
    return this.holes.bySize.last()?.value.holeSize ?? 0
  }

  /** @internal */
  adjust(): Adjust | undefined {
    return this.colorAdjust as Adjust | undefined
  }

  private idle(): void {
    if (this.scanActive > 0) throw new Error("drm_mm: BUG: manager used while an eviction scan is active")
  }

  private own(node: MmNode): Node {
    if (!(node instanceof Node) || node.owner !== this) throw new Error("drm_mm: BUG: node of another manager")
    if (!node.allocated) throw new Error("drm_mm: BUG: node is not allocated")
    return node
  }

  /** Checks `o` (manager idle, arguments valid) and turns it into the fit request both insert and scan use. */
  private spec(o: InsertOptions): FitSpec | Invalid {
    this.idle()
    const bad = this.check(o)
    if (bad !== undefined) return bad
    return {
      size: o.size,
      alignment: (o.alignment ?? 0) <= 1 ? 0 : (o.alignment as number),
      color: o.color ?? 0,
      rangeStart: o.start ?? this.start,
      rangeEnd: o.end ?? this.start + this.size,
      high: o.mode === "high"
    }
  }

  /**
   * Models `drm_mm_insert_node_in_range()`: finds a hole per `mode` and places a new node in it.
   * `Invalid` for bad arguments, `NoSpace` (`-ENOSPC`) when no hole fits; state unchanged on failure.
   */
  insert(o: InsertOptions): Result.Result<MmNode, Invalid | NoSpace> {
    const spec = this.spec(o)
    if (spec instanceof Invalid) return Result.fail(spec)
    const mode = o.mode ?? "best"
    if (spec.rangeEnd - spec.rangeStart < spec.size || this.largestHole < spec.size) {
      return Result.fail(this.noSpace(o.size))
    }
    for (let h = this.firstHole(mode, spec); h !== undefined; h = o.once ? undefined : this.nextHole(mode, h, spec)) {
      const hs = h.holeStart
      const he = hs + h.holeSize
      if (mode === "low" && hs >= spec.rangeEnd) break
      if (mode === "high" && he <= spec.rangeStart) break
      const at = fitIn(h, hs, he, spec, this.adjust())
      if (at >= 0) return Result.succeed(this.place(h, at, spec.size, spec.color))
    }
    return Result.fail(this.noSpace(o.size))
  }

  private check(o: InsertOptions): Invalid | undefined {
    if (badInt(o.size) || o.size === 0) return invalid("size", "must be a positive integer", o.size)
    if (o.alignment !== undefined && badInt(o.alignment))
      return invalid("alignment", "must be an integer >= 0", o.alignment)
    if (o.color !== undefined && !Number.isSafeInteger(o.color)) return invalid("color", "must be an integer", o.color)
    const s = o.start ?? this.start
    const e = o.end ?? this.start + this.size
    if (badInt(s)) return invalid("start", "must be an integer >= 0", s)
    if (badInt(e)) return invalid("end", "must be an integer >= 0", e)
    if (s > e) return invalid("start", "must be <= end", { start: s, end: e })
    return undefined
  }

  private noSpace(requested: number): NoSpace {
    return new NoSpace({ what: WHAT, requested, available: this.size - this.used })
  }

  private firstHole(mode: InsertMode, spec: FitSpec): Node | undefined {
    const { bySize, byAddr } = this.holes
    switch (mode) {
      case "best":
        return bySize.ceil(spec.size)?.value
      case "low": {
        const f = byAddr.lastFit(spec.rangeStart, spec.size)?.value
        if (f !== undefined && f.holeKey + f.holeSize > spec.rangeStart) return f
        return byAddr.firstFit(spec.rangeStart, spec.size)?.value
      }
      case "high":
        return byAddr.lastFit(spec.rangeEnd - 1, spec.size)?.value
      case "evict": {
        const s = this.holes.stack.stackNext
        return s === this.holes.stack ? undefined : s
      }
    }
  }

  private nextHole(mode: InsertMode, h: Node, spec: FitSpec): Node | undefined {
    const { bySize, byAddr } = this.holes
    switch (mode) {
      case "best":
        return bySize.ceil(h.holeSize, h.holeKey + 1)?.value
      case "low":
        return byAddr.firstFit(h.holeKey + 1, spec.size)?.value
      case "high":
        return byAddr.lastFit(h.holeKey - 1, spec.size)?.value
      case "evict": {
        const s = h.stackNext
        return s === this.holes.stack ? undefined : s
      }
    }
  }

  /** Links a new node at `at` into `hole` and re-indexes the holes on both sides. */
  private place(hole: Node, at: number, size: number, color: number): Node {
    const holeStart = hole.holeStart
    const holeEnd = hole.holeEnd
    const n = new Node(this, at, size, color)
    n.allocated = true
    this.holes.rm(hole)
    this.holes.link(hole, n)
    if (at > holeStart) this.holes.add(hole)
    if (at + size < holeEnd) this.holes.add(n)
    this.used += size
    this.count++
    return n
  }

  /**
   * Models `drm_mm_reserve_node()`: inserts a node at a fixed `[start, start + size)`.
   * `NoSpace` when that range is not entirely inside one hole (occupied, or outside the manager).
   */
  reserve(o: {
    readonly start: number
    readonly size: number
    readonly color?: number
  }): Result.Result<MmNode, Invalid | NoSpace> {
    this.idle()
    if (badInt(o.start)) return Result.fail(invalid("start", "must be an integer >= 0", o.start))
    if (badInt(o.size) || o.size === 0) return Result.fail(invalid("size", "must be a positive integer", o.size))
    const color = o.color ?? 0
    const hole = this.holes.byAddr.floor(o.start)?.value
    if (hole === undefined) return Result.fail(this.noSpace(o.size))
    let [lo, hi] = [hole.holeStart, hole.holeStart + hole.holeSize]
    const adj = this.adjust()
    if (adj !== undefined) {
      ;[lo, hi] = adj(hole.allocated ? hole : undefined, hole.next.allocated ? hole.next : undefined, color, lo, hi)
    }
    if (lo > o.start || hi < o.start + o.size) return Result.fail(this.noSpace(o.size))
    return Result.succeed(this.place(hole, o.start, o.size, color))
  }

  /** Models `drm_mm_remove_node()`: frees a node; its range merges with the holes around it. */
  remove(node: MmNode): void {
    this.idle()
    const n = this.own(node)
    const prev = n.prev
    this.holes.rm(n)
    this.holes.unlink(n)
    this.holes.rm(prev)
    this.holes.add(prev)
    n.allocated = false
    this.used -= n.size
    this.count--
  }

  /**
   * Models `drm_mm_replace_node()`: a new node object takes over `old`'s range (and its place in
   * every index); `old` becomes unallocated.
   */
  replace(old: MmNode): MmNode {
    this.idle()
    const o = this.own(old)
    const n = new Node(this, o.start, o.size, o.color)
    n.allocated = true
    const hadHole = o.holeSize > 0
    this.holes.rm(o)
    this.holes.unlink(o)
    this.holes.link(o.prev, n)
    if (hadHole) this.holes.add(n)
    o.allocated = false
    return n
  }

  /** Nodes in address order (`drm_mm_for_each_node`). */
  *nodes(): IterableIterator<MmNode> {
    for (let n = this.head.next; n !== this.head; n = n.next) yield n
  }

  /** Holes in address order (`drm_mm_for_each_hole`). */
  *holesInOrder(): IterableIterator<Hole> {
    for (const h of this.holes.byAddr.values()) yield { start: h.holeStart, end: h.holeStart + h.holeSize }
  }

  /** Nodes overlapping `[start, end)`, in address order (`drm_mm_for_each_node_in_range`). */
  *nodesIn(start: number, end: number): IterableIterator<MmNode> {
    let n = this.holes.nodes.floor(start)?.value ?? this.head.next
    if (n !== this.head && n.start + n.size <= start) n = n.next
    for (; n !== this.head && n.start < end; n = n.next) yield n
  }

  /** Models `drm_mm_clean()`: no nodes left. */
  clean(): boolean {
    return this.head.next === this.head
  }

  /** Models `drm_mm_takedown()` (which WARNs when not clean): reports leftover nodes. */
  takedown(): { readonly clean: boolean; readonly leaked: ReadonlyArray<MmNode> } {
    const leaked = [...this.nodes()]
    return { clean: leaked.length === 0, leaked }
  }

  /**
   * Models `drm_mm_scan_init_with_range()`: starts an eviction scan for a node of the given shape.
   * While nodes are in the scan, nothing else may touch the manager.
   */
  scan(o: InsertOptions): Result.Result<Scan, Invalid> {
    const spec = this.spec(o)
    if (spec instanceof Invalid) return Result.fail(spec)
    if (spec.rangeEnd - spec.rangeStart < spec.size || spec.rangeEnd === spec.rangeStart) {
      return Result.fail(invalid("size", "larger than the scan range", o.size))
    }
    return Result.succeed(new Scan(this, spec))
  }
}

/**
 * Models `drm_mm_init()`: manages `[start, start + size)`. `Invalid` for a negative, fractional or
 * zero size.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (start: number, size: number): Result.Result<DrmMm, Invalid> => {
  if (badInt(start)) return Result.fail(invalid("start", "must be an integer >= 0", start))
  if (badInt(size) || size === 0 || !Number.isSafeInteger(start + size)) {
    return Result.fail(invalid("size", "must be a positive integer", size))
  }
  return Result.succeed(new DrmMm(start, size))
}

export type { Scan }
