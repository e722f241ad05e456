/**
 * Resources — models `struct ttm_resource`: the backing a manager handed out for one BO, as a list
 * of page segments (one segment when contiguous), with the place flags it was allocated for.
 *
 * @since 0.1.0
 */
import { ListNode } from "./internal/list.ts"
import type { MemType, Place } from "./Placement.ts"
import { PlaceFlags } from "./Placement.ts"

/**
 * A run of pages inside a manager's range.
 *
 * @since 0.1.0
 * @category models
 */
export interface Segment {
  readonly start: number
  readonly pages: number
}

/**
 * What a resource knows about its BO (kept minimal to avoid a dependency cycle).
 *
 * @since 0.1.0
 * @category models
 */
export interface ResourceOwner {
  readonly id: number
  readonly priority: number
}

/**
 * A resource. Lives on its manager's LRU (or the device's unevictable list) through its list node.
 * Models `struct ttm_resource`.
 *
 * @since 0.1.0
 * @category models
 */
export class Resource extends ListNode {
  readonly memType: MemType
  readonly numPages: number
  readonly segments: ReadonlyArray<Segment>
  /** The place flags it was allocated for (`res->placement`). */
  readonly placement: number
  /** The manager's private handle (a range node, buddy blocks, ...). */
  readonly priv: unknown
  readonly owner: ResourceOwner
  /** Where the node is linked: manager LRU, the unevictable list, or nowhere. */
  where: "lru" | "unevictable" | "none" = "none"
  /** LRU priority it was linked at. */
  lruPriority = 0
  /** Bulk-move group it belongs to on its LRU. */
  bulk: unknown = undefined
  /** Returned to its manager (guards double frees). */
  freed = false
  constructor(
    memType: MemType,
    numPages: number,
    segments: ReadonlyArray<Segment>,
    place: Place,
    priv: unknown,
    owner: ResourceOwner
  ) {
    super()
    this.memType = memType
    this.numPages = numPages
    this.segments = segments
    this.placement = place.flags
    this.priv = priv
    this.owner = owner
  }
  /** First page (`res->start`). */
  get start(): number {
    return this.segments[0]?.start ?? 0
  }
  /** One physically contiguous run (`ttm_resource_is_contiguous`-like). */
  get contiguous(): boolean {
    return this.segments.length <= 1
  }
  /** Allocated as a multihop bounce. */
  get temporary(): boolean {
    return (this.placement & PlaceFlags.TEMPORARY) !== 0
  }
}

/**
 * Every page of `res` lies in `[fpfn, lpfn)` (`lpfn === 0`: no upper bound).
 *
 * @since 0.1.0
 * @category predicates
 */
export const within = (res: Resource, fpfn: number, lpfn: number): boolean =>
  res.segments.every((s) => s.start >= fpfn && (lpfn === 0 || s.start + s.pages <= lpfn))

/**
 * Some page of `res` lies in `[fpfn, lpfn)`.
 *
 * @since 0.1.0
 * @category predicates
 */
export const overlaps = (res: Resource, fpfn: number, lpfn: number): boolean =>
  res.segments.some((s) => s.start + s.pages > fpfn && (lpfn === 0 || s.start < lpfn))
