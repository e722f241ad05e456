/**
 * Memory types, places and placements — `include/drm/ttm/ttm_placement.h`.
 *
 * A placement is an ordered list of places; order is preference. Flags say how a place may be
 * used: `DESIRED` places are only tried in the no-eviction pass, `FALLBACK` places only in the
 * eviction pass, `TEMPORARY` marks a multihop bounce resource (never "compatible").
 *
 * @since 0.1.0
 */
import { checkInt, Invalid } from "@drmkit/core"

/**
 * Well-known memory types (`TTM_PL_SYSTEM`, `TTM_PL_TT`, `TTM_PL_VRAM`, `TTM_PL_PRIV`). Drivers may
 * register managers for any index below {@link NUM_MEM_TYPES}.
 *
 * @since 0.1.0
 * @category memory types
 */
export const MemType = { SYSTEM: 0, TT: 1, VRAM: 2, PRIV: 3 } as const

/**
 * A memory type index, 0..7.
 *
 * @since 0.1.0
 * @category memory types
 */
export type MemType = number

/**
 * `TTM_NUM_MEM_TYPES`.
 *
 * @since 0.1.0
 * @category memory types
 */
export const NUM_MEM_TYPES = 8

/**
 * `TTM_MAX_BO_PRIORITY`: BO priorities are 0..3, lower is evicted first.
 *
 * @since 0.1.0
 * @category memory types
 */
export const MAX_BO_PRIORITY = 4

/**
 * The page size every manager works in (`PAGE_SIZE`).
 *
 * @since 0.1.0
 * @category memory types
 */
export const PAGE_SIZE = 4096

/**
 * Place flags (`TTM_PL_FLAG_*`).
 *
 * @since 0.1.0
 * @category placement
 */
export const PlaceFlags = {
  NONE: 0,
  /** The resource must be one physically contiguous range. */
  CONTIGUOUS: 1 << 0,
  /** Allocate from the top of the range (a hint). */
  TOPDOWN: 1 << 1,
  /** A multihop bounce place; a resource carrying it is never compatible. */
  TEMPORARY: 1 << 2,
  /** Only tried in the first (no-eviction) pass. */
  DESIRED: 1 << 3,
  /** Only tried in the second (eviction) pass. */
  FALLBACK: 1 << 4
} as const

const ALL_FLAGS = 0x1f

/**
 * One place — models `struct ttm_place`. `lpfn === 0` means "up to the end of the manager".
 *
 * @since 0.1.0
 * @category placement
 */
export interface Place {
  readonly memType: MemType
  readonly fpfn: number
  readonly lpfn: number
  readonly flags: number
}

/**
 * An ordered list of places — models `struct ttm_placement`. Empty means "purge".
 *
 * @since 0.1.0
 * @category placement
 */
export type Placement = ReadonlyArray<Place>

/**
 * Builds a place; defaults: whole range, no flags.
 *
 * @since 0.1.0
 * @category placement
 */
export const place = (
  memType: MemType,
  options: { readonly fpfn?: number; readonly lpfn?: number; readonly flags?: number } = {}
): Place => ({ memType, fpfn: options.fpfn ?? 0, lpfn: options.lpfn ?? 0, flags: options.flags ?? 0 })

/**
 * Whether `flags` has every bit of `flag`.
 *
 * @since 0.1.0
 * @category placement
 */
export const hasFlag = (flags: number, flag: number): boolean => (flags & flag) === flag

/**
 * Which pass a place takes part in: pass 1 (no eviction) skips `FALLBACK`, pass 2 (eviction)
 * skips `DESIRED`; an unflagged place is in both. Models the check in `ttm_bo_alloc_resource()`.
 *
 * @since 0.1.0
 * @category placement
 */
export const inPass = (p: Place, force: boolean): boolean =>
  force ? !hasFlag(p.flags, PlaceFlags.DESIRED) : !hasFlag(p.flags, PlaceFlags.FALLBACK)

/**
 * Checks one place's shape (not whether its type is registered): integer memType 0..7,
 * non-negative integer fpfn/lpfn (lpfn exclusive, 0 = end), `fpfn <= lpfn` unless lpfn is 0, known flag bits only.
 *
 * @since 0.1.0
 * @category validation
 */
export const checkPlace = (p: Place, index = 0): Invalid | undefined => {
  const w = `placement[${index}]`
  return (
    checkInt(`${w}.memType`, p.memType, { max: NUM_MEM_TYPES - 1 }) ??
    checkInt(`${w}.fpfn`, p.fpfn) ??
    checkInt(`${w}.lpfn`, p.lpfn) ??
    checkInt(`${w}.flags`, p.flags, { max: ALL_FLAGS }) ??
    (p.lpfn !== 0 && p.fpfn > p.lpfn
      ? new Invalid({ what: `${w}`, reason: "fpfn must not exceed lpfn", value: `${p.fpfn}..${p.lpfn}` })
      : undefined) ??
    (hasFlag(p.flags, PlaceFlags.DESIRED | PlaceFlags.FALLBACK)
      ? new Invalid({ what: `${w}.flags`, reason: "DESIRED and FALLBACK are exclusive", value: p.flags })
      : undefined)
  )
}

/**
 * Checks every place of a placement.
 *
 * @since 0.1.0
 * @category validation
 */
export const checkPlacement = (placement: Placement): Invalid | undefined => {
  for (let i = 0; i < placement.length; i++) {
    const p = placement[i]
    const err = p === undefined ? undefined : checkPlace(p, i)
    if (err) return err
  }
  return undefined
}
