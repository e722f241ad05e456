/**
 * Manager backends — the range manager over {@link DrmMm} (models `ttm_range_manager.c`: best fit,
 * `TOPDOWN` → highest hole, `lpfn == 0` → to the end, BO page alignment) and the buddy manager over
 * {@link BuddyAllocator} (models the amdgpu/xe VRAM managers and TTM's KUnit mock manager: page
 * chunks, `TOPDOWN`, `CONTIGUOUS` round-up-then-trim, fpfn/lpfn range restriction). Units are pages.
 *
 * @since 0.1.0
 */
import { Result } from "effect"
import { type BuddyAllocator, type BuddyBlock, make as makeBuddy } from "./Buddy.ts"
import { type DrmMm, type MmNode, make as makeMm } from "./DrmMm.ts"
import { hasFlag, PAGE_SIZE, type Place, PlaceFlags } from "./Placement.ts"
import type { Segment } from "./Resource.ts"
import type { Allocation, AllocRequest, Backend } from "./ResourceManager.ts"

/**
 * The backend interface (re-exported for custom managers, e.g. KUnit's "bad" and "busy" managers).
 *
 * @since 0.1.0
 * @category backends
 */
export type BackendLike = Backend

const orDie = <A, E>(r: Result.Result<A, E>): A => {
  if (Result.isSuccess(r)) return r.success
  throw new Error(String(r.failure))
}

/**
 * Range manager backend with `sizePages` pages.
 *
 * @since 0.1.0
 * @category backends
 */
export const rangeBackend = (sizePages: number): Backend & { readonly mm: DrmMm } => {
  const mm = orDie(makeMm(0, sizePages))
  return {
    kind: "range",
    sizePages,
    mm,
    alloc: (req: AllocRequest, place: Place): Allocation | undefined => {
      const end = place.lpfn === 0 ? sizePages : Math.min(place.lpfn, sizePages)
      if (place.fpfn + req.numPages > end || mm.largestHole < req.numPages) return undefined
      const r = mm.insert({
        size: req.numPages,
        alignment: req.alignPages > 1 ? req.alignPages : 0,
        start: place.fpfn,
        end,
        mode: hasFlag(place.flags, PlaceFlags.TOPDOWN) ? "high" : "best"
      })
      if (!Result.isSuccess(r)) return undefined
      return { segments: [{ start: r.success.start, pages: r.success.size }], priv: r.success }
    },
    free: (a: Allocation): void => mm.remove(a.priv as MmNode)
  }
}

/** Buddy blocks (bytes) as page segments, adjacent blocks merged, in address order. */
const toSegments = (blocks: ReadonlyArray<BuddyBlock>): Array<Segment> => {
  const sorted = [...blocks].sort((a, b) => a.offset - b.offset)
  const out: Array<{ start: number; pages: number }> = []
  for (const b of sorted) {
    const start = b.offset / PAGE_SIZE
    const pages = b.size / PAGE_SIZE
    const last = out[out.length - 1]
    if (last !== undefined && last.start + last.pages === start) last.pages += pages
    else out.push({ start, pages })
  }
  return out
}

/**
 * Buddy manager backend with `sizePages` pages (chunk = one page).
 *
 * @since 0.1.0
 * @category backends
 */
export const buddyBackend = (sizePages: number): Backend & { readonly buddy: BuddyAllocator } => {
  const buddy = orDie(makeBuddy(sizePages * PAGE_SIZE, PAGE_SIZE))
  return {
    kind: "buddy",
    sizePages,
    buddy,
    alloc: (req: AllocRequest, place: Place): Allocation | undefined => {
      const end = place.lpfn === 0 ? sizePages : Math.min(place.lpfn, sizePages)
      if (place.fpfn + req.numPages > end || buddy.avail < req.numPages * PAGE_SIZE) return undefined
      const r = buddy.alloc({
        size: req.numPages * PAGE_SIZE,
        minBlockSize: req.alignPages * PAGE_SIZE,
        start: place.fpfn * PAGE_SIZE,
        end: end * PAGE_SIZE,
        topdown: hasFlag(place.flags, PlaceFlags.TOPDOWN),
        contiguous: hasFlag(place.flags, PlaceFlags.CONTIGUOUS)
      })
      if (!Result.isSuccess(r)) return undefined
      return { segments: toSegments(r.success), priv: r.success }
    },
    free: (a: Allocation): void => buddy.free(a.priv as ReadonlyArray<BuddyBlock>)
  }
}
