/**
 * Moves — models `ttm_bo_handle_move_mem` + `ttm_bo_move_accel_cleanup` and the multihop bounce of
 * `ttm_bo_bounce_temp_buffer`: the copy is a GPU job that waits for the BO's KERNEL/WRITE fences and
 * is published into the resv as a KERNEL fence; old backing is freed by a ghost when that fence
 * (and every fence the BO had) signals, or — for evictions — at once, with the source manager
 * remembering the fence so later allocations there depend on it (pipelined eviction).
 */
import { Busy, type Interrupted, NoSpace, type RestartSys } from "@drmkit/core"
import { Effect } from "effect"
import type { Bo } from "../BufferObject.ts"
import type { Device, OperationCtx } from "../Device.ts"
import { PlaceFlags, type Placement } from "../Placement.ts"
import type { Resource } from "../Resource.ts"
import { allOf, type FenceLike, leaves } from "./fence.ts"
import { memSpace } from "./placement.ts"
import { addFence, fencesUpTo, type Held } from "./resv.ts"
import { allFences, assign, dropIfOrphan, freeAfter, freeNow, markPopulated, unpopulate } from "./state.ts"
import { populate } from "./swap.ts"

/** Errors a move can produce. */
export type MoveError = Busy | NoSpace | RestartSys | Interrupted

const MAX_HOPS = 4

/** Runs `eff`; if it fails or is interrupted while `res` is still unattached, frees `res`. */
export const guarded = <A, E>(dev: Device, bo: Bo, res: Resource, eff: Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Effect.onExit(eff, (exit) => Effect.sync(() => (exit._tag === "Failure" ? dropIfOrphan(dev, bo, res) : undefined)))

/** Moves `bo` into `to`, bouncing through hop places the driver asks for. */
export const moveTo = (
  dev: Device,
  held: Held,
  bo: Bo,
  to: Resource,
  evict: boolean,
  ctx: OperationCtx
): Effect.Effect<void, MoveError> => {
  const step = (hop: number): Effect.Effect<void, MoveError> => {
    if (hop > MAX_HOPS) return Effect.die(new Error(`driver move hook asked for more than ${MAX_HOPS} hops`))
    const d = bo.resource === undefined ? ({ _tag: "Copy" } as const) : dev.funcs.move(bo, to, evict)
    if (d._tag === "Fail") return Effect.fail(new Busy({ what: bo.name, reason: d.reason }))
    if (d._tag === "Copy") return copyMove({ dev, held, bo, to, evict, ctx })
    const hopPlacement: Placement = [{ ...d.place, flags: d.place.flags | PlaceFlags.TEMPORARY }]
    return Effect.flatMap(memSpace(dev, held, bo, hopPlacement, ctx), (hopRes) =>
      hopRes instanceof NoSpace
        ? Effect.fail(hopRes)
        : Effect.andThen(
            guarded(dev, bo, hopRes, copyMove({ dev, held, bo, to: hopRes, evict, ctx })),
            Effect.suspend(() => step(hop + 1))
          )
    )
  }
  return guarded(
    dev,
    bo,
    to,
    Effect.suspend(() => step(0))
  )
}

/** What one move step works on: the BO (resv held), its destination, and the operation. */
export interface MoveStep {
  readonly dev: Device
  readonly held: Held
  readonly bo: Bo
  readonly to: Resource
  readonly evict: boolean
  readonly ctx: OperationCtx
}

/** One GPU move: populate first (may swap others out), then commit synchronously. */
export const copyMove = (m: MoveStep): Effect.Effect<void, RestartSys | Interrupted> => {
  const { dev, bo, to } = m
  const overLimit =
    dev.manager(to.memType)?.useTt === true && !bo.tt?.populated && dev.ttPages + bo.numPages > dev.pageLimit
  const commit = commitMove(m)
  return overLimit ? Effect.andThen(populate(dev, m.held, bo, m.ctx), commit) : commit
}

const submitCopy = (dev: Device, bo: Bo, old: Resource | undefined, to: Resource): FenceLike => {
  const deps = fencesUpTo(bo.resv, "write")
  const gpu = dev.storage.gpu
  const host = bo.tt?.swapped
  if (host !== undefined) {
    dev.stats.swapins++
    if (bo.tt) bo.tt.swapped = undefined
    return gpu.write(deps, dev.storage.extents(to), host)
  }
  if (old === undefined) return gpu.clear(deps, dev.storage.extents(to))
  return gpu.copy(deps, dev.storage.extents(old), dev.storage.extents(to))
}

/**
 * The commit of a move (`ttm_bo_move_accel_cleanup`), uninterruptible: submit, publish the fence
 * (KERNEL), swap resources, retire the old one. Either all of it happens or none.
 */
export const commitMove = (m: MoveStep): Effect.Effect<void> =>
  Effect.uninterruptible(
    Effect.suspend(() => {
      const { dev, held, bo, to, evict, ctx } = m
      const old = bo.resource
      const fence = submitCopy(dev, bo, old, to)
      const after = allFences(bo)
      after.push(fence)
      return Effect.map(addFence(held, fence, "kernel"), () => {
        assign(dev, bo, to)
        if (dev.manager(to.memType)?.useTt) markPopulated(dev, bo)
        else unpopulate(dev, bo)
        if (old !== undefined) retire(dev, old, after, evict)
        ctx.bytesMoved += bo.size
        dev.stats.bytesMoved += bo.size
        dev.stats.moves++
      })
    })
  )

const retire = (dev: Device, old: Resource, after: ReadonlyArray<FenceLike>, evict: boolean): void => {
  const man = dev.manager(old.memType)
  if (!evict || man === undefined) {
    freeAfter(dev, old, after)
    return
  }
  // `ttm_bo_move_pipeline_evict`: the old range is free at once; what may still touch it (the
  // move, readers the copy did not wait for) becomes the manager's move fence, merged with a
  // still-pending earlier one — our fences span contexts, so a newer one does not imply an older
  // one. Jobs already on our in-order GPU queue complete before the move (the last of `after`:
  // the same-context `dma_fence_is_later` rule), so only the move, foreign fences and jobs not
  // yet queued are kept.
  const prev = man.moveFence
  const move = after[after.length - 1]
  const pending: Array<FenceLike> = []
  const keep = (f: FenceLike) => {
    if (!f.isSignaled && (f === move || !dev.storage.gpu.isQueued(f))) pending.push(f)
  }
  if (prev !== undefined && !prev.isSignaled) for (const f of leaves(prev)) keep(f)
  for (const f of after) keep(f)
  const done = allOf(pending)
  if (!done.isSignaled) man.moveFence = done
  freeNow(dev, old, after)
}

/**
 * `ttm_bo_pipeline_gutting`: drop the backing (idle: now; busy: a ghost frees it when the fences
 * signal); the BO keeps an empty page array. `bytesMoved` is unchanged.
 */
export const purge = (dev: Device, bo: Bo): void => {
  const old = bo.resource
  bo.resource = undefined
  unpopulate(dev, bo)
  bo.tt = { populated: false, swapped: undefined }
  if (old !== undefined) freeAfter(dev, old, allFences(bo))
  dev.stats.purges++
}
