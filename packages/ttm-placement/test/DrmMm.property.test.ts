/**
 * Property test of the range manager against a brute-force model (a sorted list of occupied
 * intervals): random insert (every mode, alignment, window) / reserve / remove sequences. Each
 * insert must land where the model says the mode puts it (lowest feasible slot for `low`, highest
 * for `high`, lowest slot of the smallest feasible hole for `best`), fail only when the model finds
 * no slot, and the node/hole lists must stay exact complements. Everything removed → one hole.
 */
import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import fc from "fast-check"
import * as DrmMm from "../src/DrmMm.ts"
import { checkMm } from "./mm-helpers.ts"

type Op =
  | {
      readonly kind: "insert"
      readonly size: number
      readonly alignment: number
      readonly mode: "best" | "low" | "high"
      readonly window: readonly [number, number] | undefined
    }
  | { readonly kind: "reserve"; readonly start: number; readonly size: number }
  | { readonly kind: "remove"; readonly pick: number }

const SPACE = 2000

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant("insert" as const),
    size: fc.integer({ min: 1, max: 300 }),
    alignment: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 64 }), fc.constantFrom(128, 256)),
    mode: fc.constantFrom("best" as const, "low" as const, "high" as const),
    window: fc.option(fc.tuple(fc.nat(SPACE), fc.nat(SPACE)), { nil: undefined })
  }),
  fc.record({ kind: fc.constant("reserve" as const), start: fc.nat(SPACE), size: fc.integer({ min: 1, max: 200 }) }),
  fc.record({ kind: fc.constant("remove" as const), pick: fc.nat() })
)

/** Free intervals of the model, ascending. */
const freeOf = (base: number, used: ReadonlyArray<DrmMm.MmNode>): Array<[number, number]> => {
  const out: Array<[number, number]> = []
  let at = base
  for (const n of [...used].sort((a, b) => a.start - b.start)) {
    if (n.start > at) out.push([at, n.start])
    at = n.start + n.size
  }
  if (at < base + SPACE) out.push([at, base + SPACE])
  return out
}

/** Where the model would place the node, or undefined. */
const expected = (
  free: ReadonlyArray<[number, number]>,
  size: number,
  align: number,
  s: number,
  e: number,
  mode: string
) => {
  const a = Math.max(align, 1)
  const slots = free.flatMap(([hs, he]) => {
    const lo = Math.max(hs, s)
    const hi = Math.min(he, e)
    const low = Math.ceil(lo / a) * a
    const high = Math.floor((hi - size) / a) * a
    return low + size <= hi ? [{ hole: he - hs, hs, low, high }] : []
  })
  if (slots.length === 0) return undefined
  if (mode === "low") return (slots[0] as (typeof slots)[number]).low
  if (mode === "high") return (slots[slots.length - 1] as (typeof slots)[number]).high
  const best = [...slots].sort((x, y) => x.hole - y.hole || x.hs - y.hs)[0] as (typeof slots)[number]
  return best.low
}

const run = (base: number, ops: ReadonlyArray<Op>) => {
  const mm = Result.getOrThrow(DrmMm.make(base, SPACE))
  const held: Array<DrmMm.MmNode> = []
  for (const o of ops) {
    const free = freeOf(base, held)
    if (o.kind === "remove") {
      if (held.length === 0) continue
      const [n] = held.splice(o.pick % held.length, 1)
      mm.remove(n as DrmMm.MmNode)
    } else if (o.kind === "reserve") {
      const start = base + o.start
      const fits = free.some(([hs, he]) => hs <= start && start + o.size <= he)
      const r = mm.reserve({ start, size: o.size })
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
      const r = mm.insert({ size: o.size, alignment: o.alignment, start: s, end: e, mode: o.mode })
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
      fc.property(fc.nat(5000), fc.array(op, { maxLength: 80 }), (base, ops) => run(base, ops)),
      { numRuns: 300 }
    )
  })
})
