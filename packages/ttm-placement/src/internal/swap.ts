/**
 * Global TT page limit and swapout — models `ttm_tt_populate`'s loop over `ttm_global_swapout` and
 * `ttm_bo_swapout_cb`: trylock-only LRU walk over the `use_tt` managers; a candidate (unpinned,
 * populated, not `sg`, not swapped, not a zombie) is moved to SYSTEM if needed, waited idle, copied
 * to host memory and its GPU pages dropped; its resource goes to the unevictable list. The next
 * access (populate) swaps it back in and returns it to the LRU tail.
 */
import type { Interrupted, RestartSys } from "@drmkit/core"
import { Effect } from "effect"
import { Bo } from "../BufferObject.ts"
import type { Device, OperationCtx } from "../Device.ts"
import { addUnevictable } from "../Lru.ts"
import { MAX_BO_PRIORITY, MemType } from "../Placement.ts"
import type { Resource } from "../Resource.ts"
import { commitMove } from "./move.ts"
import { track } from "./placement.ts"
import { addFence, fencesUpTo, type Held, trylock, unlock, waitIdle } from "./resv.ts"
import { linkResource, markPopulated, unpopulate } from "./state.ts"

const isCandidate = (bo: Bo, res: Resource): boolean =>
  bo.resource === res && bo.pinCount === 0 && bo.type !== "sg" && !bo.deleted && !bo.swapped && !!bo.tt?.populated

const candidates = (dev: Device): Array<Resource> =>
  dev.managers.flatMap((m) => (m?.useTt ? Array.from({ length: MAX_BO_PRIORITY }, (_, p) => m.lru.list(p)).flat() : []))

/** Swaps one BO (resv held) out to host memory. */
const swapoutLocked = (dev: Device, held: Held, bo: Bo, ctx: OperationCtx): Effect.Effect<void, RestartSys> =>
  Effect.gen(function* () {
    const cur = bo.resource
    const sys = dev.manager(MemType.SYSTEM)
    if (cur !== undefined && cur.memType !== MemType.SYSTEM && sys !== undefined) {
      const to = sys.tryAlloc(
        { numPages: bo.numPages, alignPages: 1, owner: bo },
        { memType: 0, fpfn: 0, lpfn: 0, flags: 0 }
      )
      if (to !== undefined) {
        track(ctx, bo, to)
        yield* commitMove({ dev, held, bo, to, evict: true, ctx })
      }
    }
    yield* waitIdle(bo.resv, "bookkeep", ctx.interruptible)
    const res = bo.resource
    if (res === undefined) return
    const bytes = yield* Effect.promise(() => dev.storage.gpu.readback([], dev.storage.extents(res)))
    dev.storage.release(res, [])
    if (bo.tt) bo.tt.swapped = bytes
    unpopulate(dev, bo)
    addUnevictable(dev.unevictable, res)
    dev.stats.swapouts++
  })

/** `ttm_bo_swapout` for one victim: trylock only. Returns whether a BO was swapped out. */
export const swapoutOne = (dev: Device, ctx: OperationCtx): Effect.Effect<boolean, RestartSys> =>
  Effect.gen(function* () {
    for (const res of candidates(dev)) {
      const bo = res.owner
      if (!(bo instanceof Bo) || !isCandidate(bo, res)) continue
      const h = yield* trylock(bo.resv)
      if (h === undefined) continue
      yield* Effect.ensuring(swapoutLocked(dev, h, bo, ctx), unlock(h))
      return true
    }
    return false
  })

/**
 * The room-making half of `ttm_tt_populate`: swap others out while `bo` would push the populated
 * page count over the global limit. The caller counts the pages when it commits.
 */
export const populate = (
  dev: Device,
  _held: Held,
  bo: Bo,
  ctx: OperationCtx
): Effect.Effect<void, RestartSys | Interrupted> =>
  Effect.gen(function* () {
    if (bo.tt?.populated) return
    while (dev.ttPages + bo.numPages > dev.pageLimit) {
      if (!(yield* swapoutOne(dev, ctx))) break
    }
  })

/** Swaps a swapped-out BO (resv held) back in where it sits and returns it to the LRU tail. */
export const swapin = (
  dev: Device,
  held: Held,
  bo: Bo,
  ctx: OperationCtx
): Effect.Effect<void, RestartSys | Interrupted> =>
  Effect.gen(function* () {
    const host = bo.tt?.swapped
    const res = bo.resource
    if (host === undefined || res === undefined) return
    yield* populate(dev, held, bo, ctx)
    yield* Effect.uninterruptible(
      Effect.gen(function* () {
        markPopulated(dev, bo)
        const fence = dev.storage.gpu.write(fencesUpTo(bo.resv, "write"), dev.storage.extents(res), host)
        yield* addFence(held, fence, "kernel")
        if (bo.tt) bo.tt.swapped = undefined
        linkResource(dev, bo, res)
        dev.stats.swapins++
      })
    )
  })
