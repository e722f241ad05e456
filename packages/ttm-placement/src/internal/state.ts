/**
 * Synchronous BO/resource state transitions shared by validate, eviction, pin and swap: linking a
 * resource to its LRU (or the unevictable list), freeing it now or as a ghost once fences signal,
 * and the populated-TT-page accounting.
 */
import type { Bo } from "../BufferObject.ts"
import type { Device } from "../Device.ts"
import { addToLru, addUnevictable, unlinkResource } from "../Lru.ts"
import type { Resource } from "../Resource.ts"
import type { FenceLike } from "./fence.ts"
import { allOf } from "./fence.ts"
import { fencesUpTo } from "./resv.ts"

/** Links `res` where it belongs for `bo`: unevictable when pinned or swapped, else the LRU tail. */
export const linkResource = (dev: Device, bo: Bo, res: Resource): void => {
  const man = dev.manager(res.memType)
  if (bo.pinCount > 0 || bo.swapped || man === undefined) addUnevictable(dev.unevictable, res)
  else addToLru(man.lru, res, bo.priority, bo.bulkMove)
}

/** Makes `res` the BO's resource (`ttm_bo_assign_mem`). */
export const assign = (dev: Device, bo: Bo, res: Resource): void => {
  const old = bo.resource
  if (old !== undefined) unlinkResource(old)
  bo.resource = res
  linkResource(dev, bo, res)
}

/** Returns `res` to its manager now and drops its storage once `after` signal. */
export const freeNow = (dev: Device, res: Resource, after: ReadonlyArray<FenceLike> = []): void => {
  unlinkResource(res)
  dev.manager(res.memType)?.free(res)
  dev.storage.release(res, after)
}

/** Hands `res` to a ghost that frees it when `after` have all signalled. */
export const freeAfter = (dev: Device, res: Resource, after: ReadonlyArray<FenceLike>): void => {
  unlinkResource(res)
  const gone = allOf(after)
  if (gone.isSignaled) {
    freeNow(dev, res)
    return
  }
  dev.ghosts.add(res)
  gone.addCallback(() => {
    dev.ghosts.delete(res)
    freeNow(dev, res)
  })
}

/** Every fence of the BO's resv (what old backing must outlive). */
export const allFences = (bo: Bo): Array<FenceLike> => fencesUpTo(bo.resv, "bookkeep")

/** Frees `res` if it was allocated for `bo` but never attached (failure/interruption cleanup). */
export const dropIfOrphan = (dev: Device, bo: Bo, res: Resource): void => {
  if (!res.freed && bo.resource !== res && !dev.ghosts.has(res) && res.where === "none") freeNow(dev, res)
}

/** Marks the BO's page array populated and counts its pages. */
export const markPopulated = (dev: Device, bo: Bo): void => {
  bo.tt ??= { populated: false, swapped: undefined }
  if (!bo.tt.populated) {
    bo.tt.populated = true
    dev.ttPages += bo.numPages
  }
}

/** Unpopulates (moving to a fixed manager, purge, swapout, destroy). */
export const unpopulate = (dev: Device, bo: Bo): void => {
  if (bo.tt?.populated) {
    bo.tt.populated = false
    dev.ttPages -= bo.numPages
  }
}
