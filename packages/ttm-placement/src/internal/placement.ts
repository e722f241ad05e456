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

/** Depends on the manager's last pipelined move; `noWaitGpu` makes an unsignalled one a skip. */
const addPipelinedFence = (dev: Device, held: Held, p: Place, ctx: OperationCtx): Effect.Effect<boolean> => {
  const f = dev.manager(p.memType)?.moveFence
  if (f === undefined || f.isSignaled) return Effect.succeed(true)
  if (ctx.noWaitGpu) return Effect.succeed(false)
  return Effect.as(addFence(held, f, "kernel"), true)
}

const tryPlace = (
  dev: Device,
  held: Held,
  bo: Bo,
  p: Place,
  ctx: OperationCtx,
  force: boolean
): Effect.Effect<Resource | NoSpace | "next", AllocError> =>
  Effect.gen(function* () {
    const man = dev.manager(p.memType)
    if (man === undefined || !man.used) return "next"
    let res: Resource | NoSpace | "busy" | undefined = man.tryAlloc(requestOf(bo), p)
    if (res === undefined) {
      if (!force || p.memType === MemType.SYSTEM) return "next"
      res = yield* evictAlloc(dev, man, p, bo, ctx)
      if (res === "busy") return "next"
      if (res instanceof NoSpace) return res
    }
    track(ctx, bo, res)
    if (yield* addPipelinedFence(dev, held, p, ctx)) return res
    freeNow(dev, res)
    return "next"
  })

/** `ttm_bo_alloc_resource`: one pass over the placement. */
export const allocResource = (
  dev: Device,
  held: Held,
  bo: Bo,
  placement: Placement,
  ctx: OperationCtx,
  force: boolean
): Effect.Effect<Resource | NoSpace, AllocError> =>
  Effect.gen(function* () {
    for (const p of placement) {
      if (!inPass(p, force)) continue
      const r = yield* tryPlace(dev, held, bo, p, ctx, force)
      if (r !== "next") return r
    }
    return exhausted
  })

/** `ttm_bo_mem_space`: pass 1 without eviction, then pass 2 with it. */
export const memSpace = (
  dev: Device,
  held: Held,
  bo: Bo,
  placement: Placement,
  ctx: OperationCtx
): Effect.Effect<Resource | NoSpace, AllocError> =>
  Effect.gen(function* () {
    const first = yield* allocResource(dev, held, bo, placement, ctx, false)
    if (!(first instanceof NoSpace)) return first
    return yield* allocResource(dev, held, bo, placement, ctx, true)
  })
