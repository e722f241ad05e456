/**
 * Release and delayed delete — models `ttm_bo_release` / `ttm_bo_delayed_delete`: an idle BO whose
 * resv can be trylocked is freed at once; otherwise it becomes a zombie (`deleted`) with a private
 * copy of its fences, stays on the LRU (still counted, still reclaimable by eviction) and is freed
 * by a delayed-delete fiber when its fences signal.
 */
import { Effect } from "effect"
import type { Bo } from "../BufferObject.ts"
import type { Device } from "../Device.ts"
import { unlinkResource } from "../Lru.ts"
import { allOf } from "./fence.ts"
import { copyFences, fencesUpTo, isIdle, lock, trylock, unlock } from "./resv.ts"
import { freeNow, linkResource, unpopulate } from "./state.ts"

/** Frees everything of `bo` (its resv is held and it is idle) and forgets it. */
export const reapLocked = (dev: Device, bo: Bo): void => {
  const res = bo.resource
  bo.resource = undefined
  unpopulate(dev, bo)
  bo.tt = undefined
  if (res !== undefined) freeNow(dev, res)
  bo.destroyed = true
  bo.deleted = true
  dev.bos.delete(bo)
}

/** The delayed-delete work item: lock, free when idle, unlock; re-arm if still busy. */
const reap = (dev: Device, bo: Bo): Effect.Effect<void> =>
  Effect.gen(function* () {
    if (bo.destroyed) return
    const h = yield* lock(bo.resv).pipe(Effect.orDie)
    if (!bo.destroyed && isIdle(bo.resv)) reapLocked(dev, bo)
    yield* unlock(h)
    if (!bo.destroyed) scheduleReap(dev, bo)
  })

const scheduleReap = (dev: Device, bo: Bo): void => {
  const idle = allOf(fencesUpTo(bo.resv, "bookkeep"))
  const run = () => void Effect.runFork(reap(dev, bo))
  if (!idle.addCallback(run)) queueMicrotask(run)
}

/** Individualises the resv (fences copied to the BO's own one) and turns `bo` into a zombie. */
const makeZombie = (dev: Device, bo: Bo): Effect.Effect<void> =>
  Effect.gen(function* () {
    bo.deleted = true
    if (bo.resv !== bo.ownResv) {
      const own = yield* trylock(bo.ownResv)
      if (own !== undefined) {
        yield* copyFences(own, bo.resv)
        yield* unlock(own)
      }
      bo.resv = bo.ownResv
    }
    const res = bo.resource
    if (res !== undefined) {
      unlinkResource(res)
      linkResource(dev, bo, res)
    }
    scheduleReap(dev, bo)
  })

/** `ttm_bo_put` of the last reference. Pins are dropped (the kernel WARNs). */
export const release = (dev: Device, bo: Bo): Effect.Effect<void> =>
  Effect.gen(function* () {
    if (bo.deleted || bo.destroyed) return yield* Effect.die(new Error(`${bo.name} released twice`))
    bo.pinCount = 0
    bo.bulkMove = undefined
    const h = isIdle(bo.resv) ? yield* trylock(bo.resv) : undefined
    if (h === undefined) return yield* makeZombie(dev, bo)
    reapLocked(dev, bo)
    yield* unlock(h)
  })
