/**
 * Release and delayed delete — models `ttm_bo_release` / `ttm_bo_delayed_delete`: an idle BO whose
 * resv can be trylocked is freed at once; otherwise it becomes a zombie (`deleted`) with a private
 * copy of its fences, stays on the LRU (still counted, still reclaimable by eviction) and is freed
 * when its fences signal.
 */
import type { Bo } from "../BufferObject.ts"
import type { Device } from "../Device.ts"
import { unlinkResource } from "../Lru.ts"
import { allOf } from "./fence.ts"
import { fencesUpTo, isIdle, trylock, unlock } from "./resv.ts"
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

/** Reaps a zombie once it can take its resv; retries when the holder unlocks. */
export const reapWhenUnlocked = (dev: Device, bo: Bo): void => {
  if (bo.destroyed) return
  const h = trylock(bo.resv)
  if (h === undefined) {
    const retry = () => {
      bo.resv.waiters.delete(retry)
      reapWhenUnlocked(dev, bo)
    }
    bo.resv.waiters.add(retry)
    return
  }
  if (isIdle(bo.resv)) reapLocked(dev, bo)
  unlock(h)
  if (!bo.destroyed) scheduleReap(dev, bo)
}

const scheduleReap = (dev: Device, bo: Bo): void => {
  const idle = allOf(`${bo.name}-idle`, fencesUpTo(bo.resv, "bookkeep"))
  if (!idle.addCallback(() => reapWhenUnlocked(dev, bo))) queueMicrotask(() => reapWhenUnlocked(dev, bo))
}

/** Individualises the resv (fences copied to the BO's own one) and turns `bo` into a zombie. */
const makeZombie = (dev: Device, bo: Bo): void => {
  bo.deleted = true
  if (bo.resv !== bo.ownResv) {
    for (const e of bo.resv.fences) if (!e.fence.isSignaled) bo.ownResv.fences.push(e)
    bo.resv = bo.ownResv
  }
  const res = bo.resource
  if (res !== undefined) {
    unlinkResource(res)
    linkResource(dev, bo, res)
  }
  scheduleReap(dev, bo)
}

/** `ttm_bo_put` of the last reference. Pins are dropped (the kernel WARNs). */
export const release = (dev: Device, bo: Bo): void => {
  if (bo.deleted || bo.destroyed) throw new Error(`${bo.name} released twice`)
  bo.pinCount = 0
  bo.bulkMove = undefined
  const h = isIdle(bo.resv) ? trylock(bo.resv) : undefined
  if (h !== undefined) {
    reapLocked(dev, bo)
    unlock(h)
    return
  }
  makeZombie(dev, bo)
}
