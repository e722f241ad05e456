/**
 * Resource managers — models `struct ttm_resource_manager` and its `ttm_resource_manager_func`
 * table (`alloc`, `free`, `intersects`, `compatible`), plus `usage`/`size` accounting,
 * `ttm_resource_manager_set_used` and the manager's last pipelined-move fence.
 *
 * The allocation policy is a {@link Backend}: the system manager (never full), a range manager over
 * `DrmMm` (drm_mm semantics) and a buddy manager over `Buddy` (drm_buddy semantics). Everything here is
 * synchronous plain code; the Effect shell lives in `Device`/`Validate`.
 *
 * @since 0.1.0
 */
import { Invalid, NoSpace } from "@drmkit/core"
import type { FenceLike } from "./internal/fence.ts"
import { ManagerLru } from "./Lru.ts"
import type { MemType, Place } from "./Placement.ts"
import { hasFlag, PAGE_SIZE, PlaceFlags } from "./Placement.ts"
import type { ResourceOwner, Segment } from "./Resource.ts"
import { overlaps, Resource, within } from "./Resource.ts"

/**
 * An allocation request: BO size and alignment in pages.
 *
 * @since 0.1.0
 * @category models
 */
export interface AllocRequest {
  readonly numPages: number
  readonly alignPages: number
  readonly owner: ResourceOwner
}

/**
 * What a backend hands out: the segments and its private handle for `free`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Allocation {
  readonly segments: ReadonlyArray<Segment>
  readonly priv: unknown
}

/**
 * The allocation policy of a manager (its `ttm_resource_manager_func` table).
 *
 * @since 0.1.0
 * @category models
 */
export interface Backend {
  readonly kind: string
  /** Manager size in pages (`Infinity` for the system manager). */
  readonly sizePages: number
  /** Allocates or returns `undefined` when it does not fit (`-ENOSPC`). */
  alloc(req: AllocRequest, place: Place): Allocation | undefined
  free(a: Allocation): void
}

/**
 * A resource manager for one memory type.
 *
 * @since 0.1.0
 * @category models
 */
export class ResourceManager {
  readonly memType: MemType
  readonly name: string
  readonly backend: Backend
  /** Backed by system pages reachable by the GPU (`man->use_tt`). */
  readonly useTt: boolean
  readonly lru = new ManagerLru()
  /** Bytes allocated (`man->usage`). */
  usage = 0
  /** Resources alive. */
  count = 0
  /** `man->use_type`: a disabled manager is skipped by placement. */
  used = true
  /** Last pipelined move/eviction fence into this manager (`man->eviction_fences`). */
  moveFence: FenceLike | undefined = undefined
  constructor(memType: MemType, name: string, backend: Backend, useTt: boolean) {
    this.memType = memType
    this.name = name
    this.backend = backend
    this.useTt = useTt
  }
  /** Size in bytes (`man->size` × page size). */
  get size(): number {
    return this.backend.sizePages * PAGE_SIZE
  }
  /** `man->func->alloc`: a resource, or `NoSpace`. */
  alloc(req: AllocRequest, place: Place): Resource | NoSpace {
    return (
      this.tryAlloc(req, place) ??
      new NoSpace({ what: this.name, requested: req.numPages * PAGE_SIZE, available: this.size - this.usage })
    )
  }
  /** {@link alloc} for hot paths: `undefined` instead of building a `NoSpace` error. */
  tryAlloc(req: AllocRequest, place: Place): Resource | undefined {
    if (this.size - this.usage < req.numPages * PAGE_SIZE) return undefined
    const a = this.backend.alloc(req, place)
    if (a === undefined) return undefined
    this.usage += req.numPages * PAGE_SIZE
    this.count++
    return new Resource(this.memType, req.numPages, a.segments, place, a.priv, req.owner)
  }
  /** `man->func->free` + `ttm_resource_fini` accounting. */
  free(res: Resource): void {
    if (res.freed) throw new Error(`double free of a ${this.name} resource`)
    res.freed = true
    this.backend.free({ segments: res.segments, priv: res.priv })
    this.usage -= res.numPages * PAGE_SIZE
    this.count--
  }
  /** `ttm_resource_intersects`: could evicting `res` help an allocation for `place`? */
  intersects(res: Resource, place: Place): boolean {
    return overlaps(res, place.fpfn, place.lpfn)
  }
  /** `ttm_resource_compatible` for one place: fits the window and the contiguity demand. */
  compatible(res: Resource, place: Place): boolean {
    if (res.memType !== place.memType || res.temporary) return false
    if (hasFlag(place.flags, PlaceFlags.CONTIGUOUS) && !res.contiguous) return false
    return within(res, place.fpfn, place.lpfn)
  }
  /** `ttm_resource_manager_set_used`; disabling requires an empty manager. */
  setUsed(used: boolean): Invalid | undefined {
    if (!used && this.count > 0) {
      return new Invalid({ what: this.name, reason: "cannot disable a manager that still has resources" })
    }
    this.used = used
    return undefined
  }
}

/**
 * The system manager backend: never runs out of space; each resource is its own run of pages.
 * Models `ttm_sys_manager`.
 *
 * @since 0.1.0
 * @category backends
 */
export const systemBackend = (): Backend => ({
  kind: "system",
  sizePages: Number.POSITIVE_INFINITY,
  alloc: (req) => ({ segments: [{ start: 0, pages: req.numPages }], priv: undefined }),
  free: () => {}
})
