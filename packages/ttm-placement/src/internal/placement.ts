/**
 * Resource allocation over a placement — models `ttm_resource_compatible`,
 * `ttm_bo_alloc_resource` (the per-pass place walk with eviction in the second pass and the
 * pipelined-eviction fence dependency) and `ttm_bo_mem_space` (both passes, no move).
 */
import { NoSpace } from "@drmkit/core"
import { Effect } from "effect"
import type { Bo } from "../BufferObject.ts"
import type { Device, OperationCtx } from "../Device.ts"
import { inPass, MemType, type Place, type Placement } from "../Placement.ts"
import type { Resource } from "../Resource.ts"
import type { AllocRequest } from "../ResourceManager.ts"
import { evictAlloc } from "./evict.ts"
import type { MoveError } from "./move.ts"
import { addFence, type Held } from "./resv.ts"
import { dropIfOrphan, freeNow } from "./state.ts"

/** Errors allocation can end with (a `NoSpace` *value* means "try the next pass"). */
export type AllocError = MoveError

/** The allocation request of `bo`. */
export const requestOf = (bo: Bo): AllocRequest => ({ numPages: bo.numPages, alignPages: bo.pageAlignment, owner: bo })

/**
 * The "no place fits" marker of a pass: a shared value (building a tagged error captures a stack,
 * which is too slow for every first pass that has to evict). Never surfaced: `validate` reports
 * `NoMemory` with the BO's size.
 */
export const exhausted: NoSpace = new NoSpace({ what: "placement", requested: 0 })

const inflight = new WeakMap<OperationCtx, Array<readonly [Bo, Resource]>>()

/** Remembers a fresh allocation so {@link withOrphanCleanup} can free it if it never gets attached. */
export const track = (ctx: OperationCtx, bo: Bo, res: Resource): void => {
  const list = inflight.get(ctx)
  if (list === undefined) inflight.set(ctx, [[bo, res]])
  else list.push([bo, res])
}

/**
 * Runs an operation; whatever way it ends (success, failure, interruption at any await point),
 * resources it allocated that never got attached to their BO are returned to their managers.
 */
export const withOrphanCleanup = <A, E>(
  dev: Device,
  ctx: OperationCtx,
  eff: Effect.Effect<A, E>
): Effect.Effect<A, E> =>
  Effect.ensuring(
    eff,
    Effect.sync(() => {
      for (const [bo, res] of inflight.get(ctx) ?? []) dropIfOrphan(dev, bo, res)
      inflight.delete(ctx)
    })
  )

/** `ttm_resource_compatible`: `res` satisfies some place of this pass. */
export const compatible = (dev: Device, res: Resource, placement: Placement, force: boolean): boolean => {
  if (res.temporary) return false
  return placement.some((p) => inPass(p, force) && (dev.manager(p.memType)?.compatible(res, p) ?? false))
}

const NEXT: Effect.Effect<"next"> = Effect.succeed("next")

/**
 * A fresh allocation depends on the manager's last pipelined move (KERNEL fence); with `noWaitGpu`
 * an unsignalled one frees it again and skips the place (`-EBUSY` → next place).
 */
const withPipelinedFence = (
  dev: Device,
  held: Held,
  bo: Bo,
  p: Place,
  ctx: OperationCtx,
  res: Resource
): Effect.Effect<Resource | "next"> => {
  track(ctx, bo, res)
  const f = dev.manager(p.memType)?.moveFence
  if (f === undefined || f.isSignaled) return Effect.succeed(res)
  if (ctx.noWaitGpu) {
    freeNow(dev, res)
    return NEXT
  }
  return Effect.as(addFence(held, f, "kernel"), res)
}

/** One place: allocate; in the eviction pass evict for it (never for SYSTEM). Synchronous when it fits. */
const tryPlace = (
  dev: Device,
  held: Held,
  bo: Bo,
  p: Place,
  ctx: OperationCtx,
  force: boolean
): Effect.Effect<Resource | NoSpace | "next", AllocError> => {
  const man = dev.manager(p.memType)
  if (man === undefined || !man.used) return NEXT
  const res = man.tryAlloc(requestOf(bo), p)
  if (res !== undefined) return withPipelinedFence(dev, held, bo, p, ctx, res)
  if (!force || p.memType === MemType.SYSTEM) return NEXT
  return Effect.flatMap(evictAlloc(dev, man, p, bo, ctx), (r): Effect.Effect<Resource | NoSpace | "next"> => {
    if (r === "busy") return NEXT
    if (r instanceof NoSpace) return Effect.succeed(r)
    return withPipelinedFence(dev, held, bo, p, ctx, r)
  })
}

/** `ttm_bo_alloc_resource`: one pass over the placement. */
export const allocResource = (
  dev: Device,
  held: Held,
  bo: Bo,
  placement: Placement,
  ctx: OperationCtx,
  force: boolean
): Effect.Effect<Resource | NoSpace, AllocError> => {
  const from = (i: number): Effect.Effect<Resource | NoSpace, AllocError> => {
    for (let k = i; k < placement.length; k++) {
      const p = placement[k]
      if (p === undefined || !inPass(p, force)) continue
      return Effect.flatMap(tryPlace(dev, held, bo, p, ctx, force), (r) =>
        r === "next" ? from(k + 1) : Effect.succeed(r)
      )
    }
    return Effect.succeed(exhausted)
  }
  return Effect.suspend(() => from(0))
}

/** `ttm_bo_mem_space`: pass 1 without eviction, then pass 2 with it. */
export const memSpace = (
  dev: Device,
  held: Held,
  bo: Bo,
  placement: Placement,
  ctx: OperationCtx
): Effect.Effect<Resource | NoSpace, AllocError> =>
  Effect.flatMap(allocResource(dev, held, bo, placement, ctx, false), (first) =>
    first instanceof NoSpace ? allocResource(dev, held, bo, placement, ctx, true) : Effect.succeed(first)
  )
