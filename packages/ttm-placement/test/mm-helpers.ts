/** Shared check for the range manager tests. */

import type { DrmMm } from "@drmkit/ttm-placement"
import { expect } from "@effect/vitest"

export const holes = (mm: DrmMm.DrmMm) => [...mm.holesInOrder()].map((h) => [h.start, h.end])

/** Node list and hole list must be exact complements of each other inside the range. */
export const checkMm = (mm: DrmMm.DrmMm) => {
  let at = mm.start
  const hs = holes(mm)
  let hi = 0
  let used = 0
  for (const n of mm.nodes()) {
    if (n.start > at) {
      expect(hs[hi++]).toEqual([at, n.start])
    }
    expect(n.start).toBeGreaterThanOrEqual(at)
    at = n.start + n.size
    used += n.size
  }
  if (at < mm.start + mm.size) expect(hs[hi++]).toEqual([at, mm.start + mm.size])
  expect(hi).toBe(hs.length)
  expect(mm.usedBytes).toBe(used)
  expect(mm.holeCount).toBe(hs.length)
  expect(mm.largestHole).toBe(Math.max(0, ...hs.map(([s, e]) => (e as number) - (s as number))))
}
