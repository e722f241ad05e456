/**
 * Property test of the range manager against a brute-force model (a sorted list of occupied
 * intervals): random insert (every mode, alignment, window) / reserve / remove sequences. Each
 * insert must land where the model says the mode puts it (lowest feasible slot for `low`, highest
 * for `high`, lowest slot of the smallest feasible hole for `best`), fail only when the model finds
 * no slot, and the node/hole lists must stay exact complements. Everything removed → one hole.
 */

import { DrmMm } from "@drmkit/ttm-placement"
import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import fc from "fast-check"
import { checkMm } from "./mm-helpers.ts"

type Op =
  | {
      readonly kind: "insert"
      readonly size: number
      readonly alignment: number
      readonly mode: "best" | "low" | "high"
      readonly window: readonly [number, number] | undefined
      readonly color: number
    }
  | { readonly kind: "reserve"; readonly start: number; readonly size: number; readonly color: number }
  | { readonly kind: "remove"; readonly pick: number }

const SPACE = 2000

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant("insert" as const),
    size: fc.integer({ min: 1, max: 300 }),
    alignment: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 64 }), fc.constantFrom(128, 256)),
    mode: fc.constantFrom("best" as const, "low" as const, "high" as const),
    window: fc.option(fc.tuple(fc.nat(SPACE), fc.nat(SPACE)), { nil: undefined }),
    color: fc.integer({ min: 0, max: 2 })
  }),
  fc.record({
    kind: fc.constant("reserve" as const),
    start: fc.nat(SPACE),
    size: fc.integer({ min: 1, max: 200 }),
    color: fc.integer({ min: 0, max: 2 })
  }),
  fc.record({ kind: fc.constant("remove" as const), pick: fc.nat() })
)

/** Guard between differently coloured neighbours when the colour variant runs. */
const GUARD = 16

/**
 * Free intervals of the model, ascending, shrunk by the guard next to a neighbour of another
 * colour than `color` when `guard` is on. A hole stays listed (possibly empty) so hole sizes are
 * those of the real holes.
 */
const freeOf = (
  base: number,
  used: ReadonlyArray<DrmMm.MmNode>,
  color: number,
  guard: boolean
): Array<[number, number, number]> => {
  const out: Array<[number, number, number]> = []
  let at = base
  let before: DrmMm.MmNode | undefined
  const push = (s: number, e: number, after: DrmMm.MmNode | undefined) => {
    const g = (n: DrmMm.MmNode | undefined) => (guard && n !== undefined && n.color !== color ? GUARD : 0)
    out.push([s + g(before), e - g(after), e - s])
  }
  for (const n of [...used].sort((a, b) => a.start - b.start)) {
    if (n.start > at) push(at, n.start, n)
    at = n.start + n.size
    before = n
  }
  if (at < base + SPACE) push(at, base + SPACE, undefined)
  return out
}

/** Where the model would place the node, or undefined. */
const expected = (
  free: ReadonlyArray<[number, number, number]>,
  size: number,
  align: number,
  s: number,
  e: number,
  mode: string
) => {
  const a = Math.max(align, 1)
  const slots = free.flatMap(([hs, he, hole]) => {
    const lo = Math.max(hs, s)
    const hi = Math.min(he, e)
    const low = Math.ceil(lo / a) * a
    const high = Math.floor((hi - size) / a) * a
    return hi > lo && low + size <= hi ? [{ hole, hs, low, high }] : []
  })
  if (slots.length === 0) return undefined
  if (mode === "low") return (slots[0] as (typeof slots)[number]).low
  if (mode === "high") return (slots[slots.length - 1] as (typeof slots)[number]).high
  const best = [...slots].sort((x, y) => x.hole - y.hole || x.hs - y.hs)[0] as (typeof slots)[number]
  return best.low
}

const run = (base: number, ops: ReadonlyArray<Op>, guard: boolean) => {
  const mm = Result.getOrThrow(DrmMm.make(base, SPACE))
  if (guard) {
    mm.colorAdjust = (before, after, color, start, end) => [
      before !== undefined && before.color !== color ? start + GUARD : start,
      after !== undefined && after.color !== color ? end - GUARD : end
    ]
  }
  const held: Array<DrmMm.MmNode> = []
  for (const o of ops) {
    const free = freeOf(base, held, o.kind === "remove" ? 0 : o.color, guard)
    if (o.kind === "remove") {
      if (held.length === 0) continue
      const [n] = held.splice(o.pick % held.length, 1)
      mm.remove(n as DrmMm.MmNode)
    } else if (o.kind === "reserve") {
      const start = base + o.start
      const fits = free.some(([hs, he]) => hs <= start && start + o.size <= he)
      const r = mm.reserve({ start, size: o.size, color: o.color })
      expect(Result.isSuccess(r)).toBe(fits)
      if (Result.isSuccess(r)) held.push(r.success)
    } else {
      let s = base
      let e = base + SPACE
      if (o.window !== undefined) {
        s = base + Math.min(...o.window)
        e = base + Math.max(...o.window)
      }
      const want = expected(free, o.size, o.alignment, s, e, o.mode)
      const r = mm.insert({ size: o.size, alignment: o.alignment, start: s, end: e, mode: o.mode, color: o.color })
      if (want === undefined) expect(Result.isFailure(r) && r.failure._tag).toBe("NoSpace")
      else {
        expect(Result.isSuccess(r) && r.success.start).toBe(want)
        if (Result.isSuccess(r)) held.push(r.success)
      }
    }
    checkMm(mm)
  }
  for (const n of held) mm.remove(n)
  expect([...mm.holesInOrder()]).toEqual([{ start: base, end: base + SPACE }])
  expect(mm.clean()).toBe(true)
}

describe("drm_mm property: model check", () => {
  it("random insert/reserve/remove sequences match the brute-force model", () => {
    fc.assert(
      fc.property(fc.nat(5000), fc.array(op, { maxLength: 80 }), (base, ops) => run(base, ops, false)),
      { numRuns: 300 }
    )
  })

  it("the same with a colour adjustment (guard bytes between different colours)", () => {
    fc.assert(
      fc.property(fc.nat(5000), fc.array(op, { maxLength: 80 }), (base, ops) => run(base, ops, true)),
      { numRuns: 300 }
    )
  })
})
