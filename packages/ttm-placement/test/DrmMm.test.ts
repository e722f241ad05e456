/**
 * Mirrors drivers/gpu/drm/tests/drm_mm_test.c (init, debug, align32/64, lowest, highest) and the
 * older drm_mm selftests it was trimmed from (reserve, insert, replace, insert_range, frag,
 * bottom-up, top-down, color, evict, evict_range, color_evict), plus bad input and misuse.
 */

import { DrmMm } from "@drmkit/ttm-placement"
import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import { checkMm, holes } from "./mm-helpers.ts"

const ok = <A, E>(r: Result.Result<A, E>): A => {
  if (Result.isFailure(r)) throw new Error(`expected success, got ${String(r.failure)}`)
  return r.success
}
const err = <A, E extends { readonly _tag: string }>(r: Result.Result<A, E>): E["_tag"] => {
  if (Result.isSuccess(r)) throw new Error("expected failure, got success")
  return r.failure._tag
}
const mk = (start: number, size: number) => ok(DrmMm.make(start, size))
const nodes = (mm: DrmMm.DrmMm) => [...mm.nodes()].map((n) => [n.start, n.size])

describe("drm_mm: init / debug", () => {
  it("a new manager is one hole covering the range and is clean", () => {
    const mm = mk(4096, 1 << 20)
    expect(mm.clean()).toBe(true)
    expect(holes(mm)).toEqual([[4096, 4096 + (1 << 20)]])
    expect(nodes(mm)).toEqual([])
    // fill it completely with one reserved node: no hole left
    const n = ok(mm.reserve({ start: 4096, size: 1 << 20 }))
    expect(holes(mm)).toEqual([])
    expect(mm.clean()).toBe(false)
    expect(err(mm.insert({ size: 1 }))).toBe("NoSpace")
    mm.remove(n)
    expect(holes(mm)).toEqual([[4096, 4096 + (1 << 20)]])
    expect(mm.takedown()).toEqual({ clean: true, leaked: [] })
  })

  it("debug: two reserved nodes split the range into the expected holes", () => {
    const mm = mk(0, 4096)
    ok(mm.reserve({ start: 0, size: 512 }))
    ok(mm.reserve({ start: 1024, size: 512 }))
    expect(holes(mm)).toEqual([
      [512, 1024],
      [1536, 4096]
    ])
    checkMm(mm)
    expect(mm.takedown().leaked).toHaveLength(2)
  })

  it("bad init is Invalid", () => {
    expect(err(DrmMm.make(0, 0))).toBe("Invalid")
    expect(err(DrmMm.make(-1, 10))).toBe("Invalid")
    expect(err(DrmMm.make(0, 1.5))).toBe("Invalid")
    expect(err(DrmMm.make(2 ** 53, 10))).toBe("Invalid")
  })
})

describe("drm_mm: reserve / insert / replace / remove", () => {
  it("reserve: fixed ranges; an occupied or out-of-range one is NoSpace", () => {
    const mm = mk(0, 64 * 4096)
    const ns = []
    for (let i = 0; i < 64; i += 2) ns.push(ok(mm.reserve({ start: i * 4096, size: 4096 })))
    checkMm(mm)
    expect(err(mm.reserve({ start: 0, size: 4096 }))).toBe("NoSpace")
    expect(err(mm.reserve({ start: 4096 - 1, size: 2 }))).toBe("NoSpace")
    expect(err(mm.reserve({ start: 4096, size: 2 * 4096 }))).toBe("NoSpace")
    expect(err(mm.reserve({ start: 64 * 4096, size: 1 }))).toBe("NoSpace")
    const mid = ok(mm.reserve({ start: 4096, size: 4096 }))
    checkMm(mm)
    mm.remove(mid)
    for (const n of ns) mm.remove(n)
    expect(holes(mm)).toEqual([[0, 64 * 4096]])
  })

  it("insert: fills the range exactly for every mode, then NoSpace; removing all leaves one hole", () => {
    for (const mode of ["best", "low", "high", "evict"] as const) {
      const mm = mk(0, 100 * 4096)
      const ns = Array.from({ length: 100 }, () => ok(mm.insert({ size: 4096, mode })))
      checkMm(mm)
      expect(mm.usedBytes).toBe(100 * 4096)
      expect(err(mm.insert({ size: 1, mode }))).toBe("NoSpace")
      for (const n of ns.filter((_, i) => i % 2 === 0)) mm.remove(n)
      checkMm(mm)
      for (const n of ns.filter((_, i) => i % 2 === 1)) mm.remove(n)
      expect(holes(mm)).toEqual([[0, 100 * 4096]])
    }
  })

  it("replace: the new node takes over range, hole and list position", () => {
    const mm = mk(0, 16 * 4096)
    const a = ok(mm.insert({ size: 4096, mode: "low" }))
    const b = ok(mm.insert({ size: 4096, mode: "high", color: 3 }))
    const b2 = mm.replace(b)
    expect([b2.start, b2.size, b2.color, b2.allocated]).toEqual([b.start, b.size, 3, true])
    expect(b.allocated).toBe(false)
    expect(() => mm.remove(b)).toThrow(/not allocated/)
    checkMm(mm)
    const a2 = mm.replace(a)
    checkMm(mm)
    mm.remove(a2)
    mm.remove(b2)
    expect(mm.clean()).toBe(true)
  })

  it("insert_range: nodes stay inside [start, end) and exactly the fitting count is placed", () => {
    const size = 4096
    for (const mode of ["best", "low", "high"] as const) {
      const mm = mk(0, 1024 * size)
      const start = 100 * size + 7
      const end = 300 * size + 5
      const fit = Math.floor((end - start) / size)
      for (let i = 0; i < fit; i++) {
        const n = ok(mm.insert({ size, start, end, mode }))
        expect(n.start).toBeGreaterThanOrEqual(start)
        expect(n.start + n.size).toBeLessThanOrEqual(end)
      }
      expect(err(mm.insert({ size, start, end, mode }))).toBe("NoSpace")
      // outside the window there is plenty of room
      ok(mm.insert({ size, mode }))
      checkMm(mm)
    }
  })

  it("remove merges the hole with both neighbours", () => {
    const mm = mk(0, 3000)
    const a = ok(mm.reserve({ start: 0, size: 1000 }))
    const b = ok(mm.reserve({ start: 1000, size: 1000 }))
    const c = ok(mm.reserve({ start: 2000, size: 1000 }))
    mm.remove(a)
    mm.remove(c)
    expect(holes(mm)).toEqual([
      [0, 1000],
      [2000, 3000]
    ])
    mm.remove(b)
    expect(holes(mm)).toEqual([[0, 3000]])
  })
})

describe("drm_mm: alignment and modes", () => {
  const alignPot = (maxBit: number) => {
    const mm = mk(1, 2 ** 52 - 2)
    for (let bit = maxBit - 1; bit > 0; bit--) {
      const align = 2 ** bit
      const size = 2 ** (bit - 1) + 1
      const n = ok(mm.insert({ size, alignment: align }))
      expect(n.start % align).toBe(0)
    }
    checkMm(mm)
  }
  it("align32: power-of-two alignments up to 2^31", () => alignPot(32))
  it("align64 (up to 2^50 here: JS numbers are exact to 2^53)", () => alignPot(51))

  it("align: non power-of-two alignments (prime sizes and alignments)", () => {
    const mm = mk(0, 1 << 20)
    for (const [size, align] of [
      [7, 13],
      [11, 97],
      [3, 1009],
      [5, 3]
    ] as const) {
      for (const mode of ["best", "low", "high"] as const) {
        const n = ok(mm.insert({ size, alignment: align, mode }))
        expect(n.start % align).toBe(0)
      }
    }
    checkMm(mm)
  })

  it("lowest / highest: LOW+once and HIGH+once take the extreme ends", () => {
    const mm = mk(0, 4096)
    const lo1 = ok(mm.insert({ size: 512, mode: "low", once: true }))
    const lo2 = ok(mm.insert({ size: 512, mode: "low", once: true }))
    const hi1 = ok(mm.insert({ size: 512, mode: "high", once: true }))
    const hi2 = ok(mm.insert({ size: 512, mode: "high", once: true }))
    expect([lo1.start, lo2.start, hi1.start, hi2.start]).toEqual([0, 512, 3584, 3072])
    mm.remove(lo1)
    // from 1 the first hole is [1, 512): too small for an aligned 512; "once" gives up there
    expect(err(mm.insert({ size: 512, alignment: 512, start: 1, mode: "low", once: true }))).toBe("NoSpace")
    expect(ok(mm.insert({ size: 512, alignment: 512, start: 1, mode: "low" })).start).toBe(1024)
    expect(ok(mm.insert({ size: 512, mode: "low", once: true })).start).toBe(0)
  })

  it("bottom-up / top-down: the lowest / highest aligned slot in the window", () => {
    const mm = mk(0, 1 << 16)
    for (let i = 0; i < 16; i++) ok(mm.reserve({ start: i * 4096, size: 1024 }))
    const low = ok(mm.insert({ size: 1000, alignment: 256, start: 5000, end: 60000, mode: "low" }))
    expect(low.start).toBe(5120)
    const high = ok(mm.insert({ size: 1000, alignment: 256, start: 5000, end: 60000, mode: "high" }))
    expect(high.start).toBe(Math.floor((60000 - 1000) / 256) * 256)
    checkMm(mm)
  })

  it("frag / best fit: the smallest hole that fits is used", () => {
    const mm = mk(0, 1 << 20)
    // holes of sizes 3000, 1000, 2000, 1500 separated by 1-byte nodes
    let at = 0
    for (const h of [3000, 1000, 2000, 1500]) {
      at += h
      ok(mm.reserve({ start: at, size: 1 }))
      at += 1
    }
    const n = ok(mm.insert({ size: 1400 }))
    expect(n.start).toBe(3000 + 1 + 1000 + 1 + 2000 + 1)
    const m = ok(mm.insert({ size: 900 }))
    expect(m.start).toBe(3001)
    checkMm(mm)
  })

  it("an oversize request fails without searching (largest hole check)", () => {
    const mm = mk(0, 1 << 20)
    for (let i = 0; i < 1000; i++) ok(mm.reserve({ start: i * 1024, size: 512 }))
    expect(mm.largestHole).toBe((1 << 20) - 999 * 1024 - 512)
    expect(err(mm.insert({ size: (1 << 20) - 999 * 1024 }))).toBe("NoSpace")
  })
})

describe("drm_mm: color", () => {
  const page = 4096
  /** i915-style: keep a guard page between nodes of different colour. */
  const guard: DrmMm.ColorAdjust = (before, after, color, start, end) => [
    before !== undefined && before.color !== color ? start + page : start,
    after !== undefined && after.color !== color ? end - page : end
  ]

  it("differently coloured neighbours are separated by a guard page", () => {
    const mm = mk(0, 64 * page)
    mm.colorAdjust = guard
    const ns = Array.from({ length: 8 }, (_, i) => ok(mm.insert({ size: page, color: i % 2, mode: "low" })))
    for (let i = 1; i < ns.length; i++) {
      const p = ns[i - 1] as DrmMm.MmNode
      const n = ns[i] as DrmMm.MmNode
      expect(n.start - (p.start + p.size)).toBe(p.color !== n.color ? page : 0)
    }
    // same colour packs tight
    const s = ok(mm.insert({ size: page, color: 1, mode: "low" }))
    expect(s.start).toBe((ns[7] as DrmMm.MmNode).start + page)
    // reserve honours the adjustment too
    expect(err(mm.reserve({ start: s.start + page, size: page, color: 0 }))).toBe("NoSpace")
    ok(mm.reserve({ start: s.start + page, size: page, color: 1 }))
    checkMm(mm)
  })
})

describe("drm_mm: eviction scan", () => {
  const fill = (mm: DrmMm.DrmMm, n: number, size: number) =>
    Array.from({ length: n }, () => ok(mm.insert({ size, mode: "low" })))

  it("evict: scanning an LRU finds a hole, selects exactly the overlapping nodes, evict-mode insert uses it", () => {
    const mm = mk(0, 64 * 4096)
    const all = fill(mm, 64, 4096)
    // LRU order: a scattered permutation
    const lru = all
      .map((n, i) => [n, (i * 37) % 64] as const)
      .sort((a, b) => a[1] - b[1])
      .map(([n]) => n)
    const scan = ok(mm.scan({ size: 3 * 4096, alignment: 4096 }))
    const added: Array<DrmMm.MmNode> = []
    for (const n of lru) {
      added.push(n)
      if (scan.add(n)) break
    }
    expect(scan.found).toBe(true)
    expect(() => mm.insert({ size: 1 })).toThrow(/scan is active/)
    const evict = added.reverse().filter((n) => scan.remove(n))
    for (const n of evict) {
      expect(n.start + n.size > scan.hitStart && n.start < scan.hitEnd).toBe(true)
    }
    expect(evict.reduce((s, n) => s + n.size, 0)).toBe(3 * 4096)
    checkMm(mm)
    for (const n of evict) mm.remove(n)
    const placed = ok(mm.insert({ size: 3 * 4096, alignment: 4096, mode: "evict" }))
    expect([placed.start, placed.start + placed.size]).toEqual([scan.hitStart, scan.hitEnd])
    checkMm(mm)
  })

  it("evict_range: the found hole lies inside the scan range", () => {
    const mm = mk(0, 64 * 4096)
    const all = fill(mm, 64, 4096)
    const scan = ok(mm.scan({ size: 2 * 4096, start: 40 * 4096, end: 50 * 4096 }))
    const added: Array<DrmMm.MmNode> = []
    for (const n of all) {
      added.push(n)
      if (scan.add(n)) break
    }
    expect(scan.found).toBe(true)
    expect(scan.hitStart).toBeGreaterThanOrEqual(40 * 4096)
    expect(scan.hitEnd).toBeLessThanOrEqual(50 * 4096)
    const evict = added.reverse().filter((n) => scan.remove(n))
    expect(evict).toHaveLength(2)
    checkMm(mm)
  })

  it("a scan that finds nothing selects nothing; removal out of order is a defect", () => {
    const mm = mk(0, 8 * 4096)
    const all = fill(mm, 8, 4096)
    const scan = ok(mm.scan({ size: 16 * 4096 - 1, start: 0, end: 16 * 4096 }))
    for (const n of all) expect(scan.add(n)).toBe(false)
    expect(() => scan.remove(all[0] as DrmMm.MmNode)).toThrow(/out of order/)
    expect([...all].reverse().filter((n) => scan.remove(n))).toEqual([])
    checkMm(mm)
    expect(mm.usedBytes).toBe(8 * 4096)
  })

  it("color_evict: a scanned-but-kept neighbour whose colour eats the found hole is reported", () => {
    const page = 4096
    const mm = mk(0, 16 * page)
    const ns = Array.from({ length: 16 }, (_, i) =>
      ok(mm.reserve({ start: i * page, size: page, color: i === 7 ? 1 : 0 }))
    )
    mm.colorAdjust = (before, after, color, start, end) => [
      before !== undefined && before.color !== color ? start + page : start,
      after !== undefined && after.color !== color ? end - page : end
    ]
    const [n6, n7, n8] = [ns[6], ns[7], ns[8]] as [DrmMm.MmNode, DrmMm.MmNode, DrmMm.MmNode]
    const scan = ok(mm.scan({ size: page, color: 0 }))
    expect(scan.add(n6)).toBe(false)
    expect(scan.add(n8)).toBe(false)
    expect(scan.add(n7)).toBe(true)
    expect([scan.hitStart, scan.hitEnd]).toEqual([6 * page, 7 * page])
    expect([scan.remove(n7), scan.remove(n8), scan.remove(n6)]).toEqual([false, false, true])
    mm.remove(n6)
    // n7 (colour 1) now sits right after the hole: its guard page makes the hole unusable
    expect(scan.colorEvict()).toBe(n7)
    mm.remove(n7)
    expect(scan.colorEvict()).toBeUndefined()
    expect(ok(mm.insert({ size: page, color: 0, mode: "evict" })).start).toBe(6 * page)
    checkMm(mm)
  })
})

describe("drm_mm: bad input is Invalid and changes nothing; misuse is a defect", () => {
  const bad: ReadonlyArray<readonly [string, DrmMm.InsertOptions]> = [
    ["zero size", { size: 0 }],
    ["negative size", { size: -1 }],
    ["fractional size", { size: 1.5 }],
    ["NaN size", { size: Number.NaN }],
    ["negative alignment", { size: 1, alignment: -2 }],
    ["fractional alignment", { size: 1, alignment: 2.5 }],
    ["start after end", { size: 1, start: 100, end: 50 }],
    ["negative start", { size: 1, start: -5 }],
    ["fractional colour", { size: 1, color: 0.5 }]
  ]
  for (const [name, o] of bad) {
    it(name, () => {
      const mm = mk(0, 1 << 16)
      ok(mm.insert({ size: 100 }))
      const before = JSON.stringify([nodes(mm), holes(mm)])
      expect(err(mm.insert(o))).toBe("Invalid")
      expect(JSON.stringify([nodes(mm), holes(mm)])).toBe(before)
      checkMm(mm)
    })
  }

  it("reserve with a bad size or start is Invalid", () => {
    const mm = mk(0, 100)
    expect(err(mm.reserve({ start: 0, size: 0 }))).toBe("Invalid")
    expect(err(mm.reserve({ start: -1, size: 1 }))).toBe("Invalid")
    expect(mm.clean()).toBe(true)
  })

  it("removing twice, or a node of another manager, throws", () => {
    const a = mk(0, 100)
    const b = mk(0, 100)
    const n = ok(a.insert({ size: 10 }))
    expect(() => b.remove(n)).toThrow(/another manager/)
    a.remove(n)
    expect(() => a.remove(n)).toThrow(/not allocated/)
  })

  it("nodesIn lists exactly the nodes overlapping a range", () => {
    const mm = mk(0, 1000)
    for (let i = 0; i < 10; i++) ok(mm.reserve({ start: i * 100, size: 50 }))
    expect([...mm.nodesIn(120, 330)].map((n) => n.start)).toEqual([100, 200, 300])
    expect([...mm.nodesIn(0, 1)].map((n) => n.start)).toEqual([0])
    expect([...mm.nodesIn(49, 101)].map((n) => n.start)).toEqual([0, 100])
    expect([...mm.nodesIn(50, 100)]).toEqual([])
  })
})
