/**
 * The per-hole fit test shared by `drm_mm_insert_node_in_range` and `drm_mm_scan_add_block`:
 * colour adjustment, range clamp, top-down placement and alignment, in the kernel's order.
 *
 * @internal
 */
import type { Node } from "./mm-holes.ts"

/** Colour adjustment callback, see `DrmMm.ColorAdjust`. @internal */
export type Adjust = (
  before: Node | undefined,
  after: Node | undefined,
  color: number,
  start: number,
  end: number
) => readonly [number, number]

/** What to fit. @internal */
export interface FitSpec {
  readonly size: number
  /** 0 = no alignment. */
  readonly alignment: number
  readonly color: number
  readonly rangeStart: number
  readonly rangeEnd: number
  readonly high: boolean
}

/**
 * Where a node of `spec` would start inside the hole `[holeStart, holeEnd)` owned by `hole`, or -1
 * when it does not fit.
 */
export const fitIn = (
  hole: Node,
  holeStart: number,
  holeEnd: number,
  spec: FitSpec,
  adjust: Adjust | undefined
): number => {
  let colStart = holeStart
  let colEnd = holeEnd
  if (adjust !== undefined) {
    const after = hole.next.allocated ? hole.next : undefined
    ;[colStart, colEnd] = adjust(hole.allocated ? hole : undefined, after, spec.color, colStart, colEnd)
  }
  const lo = Math.max(colStart, spec.rangeStart)
  const hi = Math.min(colEnd, spec.rangeEnd)
  if (hi <= lo || hi - lo < spec.size) return -1
  let at = spec.high ? hi - spec.size : lo
  if (spec.alignment > 0) {
    const rem = at % spec.alignment
    if (rem !== 0) {
      at -= rem
      if (!spec.high) at += spec.alignment
      if (at < lo || hi - at < spec.size) return -1
    }
  }
  return at
}
