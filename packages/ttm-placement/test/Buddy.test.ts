/**
 * Mirrors drivers/gpu/drm/tests/drm_buddy_test.c by scenario (limit, optimistic, pessimistic,
 * pathological, contiguous, clear, range_bias, exceeds_max_order, fragmentation) plus topdown,
 * trim and bad-input cases.
 */

import { Buddy } from "@drmkit/ttm-placement"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import { checkMm, checkWhole, err, GiB, KiB, MiB, mk, ok, PS, total } from "./buddy-helpers.ts"

describe("drm_buddy: init and limits", () => {
  it("non power-of-two size splits into one root per set bit (n_roots = hweight)", () => {
    const mm = mk(13 * PS) // 8 + 4 + 1 pages
    expect(mm.rootCount).toBe(3)
    expect(mm.rootBlocks().map((r) => [r.offset / PS, r.size / PS])).toEqual([
      [0, 8],
      [8, 4],
      [12, 1]
    ])
    expect(mm.maxOrder).toBe(3)
    checkMm(mm, [])
  })

  it("size is rounded down to the chunk size", () => {
    const mm = mk(3 * PS + 100)
    expect(mm.size).toBe(3 * PS)
  })

  it("bad init arguments are Invalid", () => {
    expect(err(Buddy.make(PS - 1))).toBe("Invalid")
    expect(err(Buddy.make(8 * PS, 2048))).toBe("Invalid")
    expect(err(Buddy.make(8 * PS, 3 * PS))).toBe("Invalid")
    expect(err(Buddy.make(-PS))).toBe("Invalid")
    expect(err(Buddy.make(PS + 0.5))).toBe("Invalid")
  })

  it("limit: a huge allocator (2^40 bytes in 4 KiB chunks) hands out its single max-order block", () => {
    const mm = mk(2 ** 40)
    expect(mm.maxOrder).toBe(28)
    const bs = ok(mm.alloc({ size: mm.size, minBlockSize: mm.size }))
    expect(bs).toHaveLength(1)
    expect(bs[0]?.order).toBe(28)
    expect(mm.avail).toBe(0)
    mm.free(bs)
    expect(mm.fini().clean).toBe(true)
  })
})

describe("drm_buddy: limit near 2^53 (JS numbers are exact below it)", () => {
  it("2^53 - 4 KiB bytes: 41 roots, top-down, range and contiguous allocations stay exact", () => {
    const size = 2 ** 53 - PS
    const mm = mk(size)
    expect(mm.rootCount).toBe(41)
    expect(mm.maxOrder).toBe(40)
    const top = ok(mm.alloc({ size: PS, topdown: true }))
    expect(top[0]?.offset).toBe(size - PS)
    const r = ok(mm.alloc({ size: 8 * PS, start: size - 64 * PS, end: size - 32 * PS, minBlockSize: 8 * PS }))
    expect(r[0]?.offset).toBe(2 ** 53 - 64 * PS) // lowest 8-page aligned slot in the window
    const c = ok(mm.alloc({ size: 3 * GiB, contiguous: true }))
    expect(total(c)).toBe(3 * GiB)
    checkMm(mm, [...top, ...r, ...c])
    mm.free([...top, ...r, ...c])
    checkWhole(mm)
    expect(mm.fini().clean).toBe(true)
  })
})

describe("drm_buddy: order scenarios", () => {
  it("optimistic: one root per order, one block of each order fills it exactly", () => {
    const maxOrder = 10
    const mm = mk(PS * (2 ** (maxOrder + 1) - 1))
    const got: Array<Buddy.BuddyBlock> = []
    for (let o = 0; o <= maxOrder; o++) {
      got.push(...ok(mm.alloc({ size: PS * 2 ** o, minBlockSize: PS * 2 ** o })))
    }
    expect(mm.avail).toBe(0)
    expect(err(mm.alloc({ size: PS }))).toBe("NoSpace")
    checkMm(mm, got)
    mm.free(got)
    checkWhole(mm)
  })

  it("pessimistic: one block of each order from a single root leaves one page, freeing merges back", () => {
    const maxOrder = 10
    const mm = mk(PS * 2 ** maxOrder)
    const got: Array<Buddy.BuddyBlock> = []
    for (let o = 0; o < maxOrder; o++) got.push(...ok(mm.alloc({ size: PS * 2 ** o, minBlockSize: PS * 2 ** o })))
    const last = ok(mm.alloc({ size: PS }))
    expect(mm.avail).toBe(0)
    for (let o = 0; o <= maxOrder; o++) {
      expect(err(mm.alloc({ size: PS * 2 ** o, minBlockSize: PS * 2 ** o }))).toBe("NoSpace")
    }
    mm.free(last)
    // order-0 free again: everything of a higher order still fails
    for (let o = 1; o <= maxOrder; o++) {
      expect(err(mm.alloc({ size: PS * 2 ** o, minBlockSize: PS * 2 ** o }))).toBe("NoSpace")
    }
    // free blocks one by one from the smallest: each frees a block that merges with its buddy
    for (const b of got) mm.free([b])
    checkWhole(mm)
    const whole = ok(mm.alloc({ size: mm.size, minBlockSize: mm.size }))
    expect(whole).toHaveLength(1)
    mm.free(whole)
    expect(mm.fini().clean).toBe(true)
  })

  it("pathological: 50% fragmentation defeats every order above 0", () => {
    const maxOrder = 8
    const mm = mk(PS * 2 ** maxOrder)
    const holes: Array<Buddy.BuddyBlock> = []
    const kept: Array<Buddy.BuddyBlock> = []
    // take every page, then free every other one: no two free pages are buddies
    const singles = ok(mm.alloc({ size: mm.size })).flatMap((b) => split(mm, b))
    expect(total(singles)).toBe(mm.size)
    for (const b of singles) (b.offset / PS) % 2 === 0 ? holes.push(b) : kept.push(b)
    for (const b of holes) mm.free([b])
    expect(mm.avail).toBe(mm.size / 2)
    for (let o = 1; o <= maxOrder; o++) {
      expect(err(mm.alloc({ size: PS * 2 ** o, minBlockSize: PS * 2 ** o }))).toBe("NoSpace")
    }
    // order-0 requests still succeed, and a 2-page non-contiguous request too
    const two = ok(mm.alloc({ size: 2 * PS }))
    expect(two.map((b) => b.order)).toEqual([0, 0])
    checkMm(mm, [...kept, ...two])
    mm.free([...kept, ...two])
    checkWhole(mm)
  })
})

describe("drm_buddy: flags", () => {
  it("contiguous: rounds up, trims back, and fails when only fragmented space is left", () => {
    const mm = mk(16 * PS)
    const singles = ok(mm.alloc({ size: 16 * PS, minBlockSize: PS, trimDisable: true }))
    expect(total(singles)).toBe(16 * PS)
    const pages = singles.flatMap((b) => split(mm, b))
    const byPage = [...pages].sort((a, b) => a.offset - b.offset)
    // free pages 1, 4, 7, 10, 13: no two adjacent
    const freed = byPage.filter((_, i) => i % 3 === 1)
    mm.free(freed)
    expect(err(mm.alloc({ size: 2 * PS, contiguous: true }))).toBe("NoSpace")
    expect(err(mm.alloc({ size: 3 * PS, contiguous: true }))).toBe("NoSpace")
    // free pages 2, 5, 8, 11, 14: now runs of two exist, three still not
    mm.free(byPage.filter((_, i) => i % 3 === 2))
    const two = ok(mm.alloc({ size: 2 * PS, contiguous: true }))
    expect(isContiguous(two)).toBe(true)
    expect(err(mm.alloc({ size: 3 * PS, contiguous: true }))).toBe("NoSpace")
    // free the rest: 3 pages contiguous now fits and is trimmed to exactly 3 pages
    mm.free([...byPage.filter((_, i) => i % 3 === 0)])
    const three = ok(mm.alloc({ size: 3 * PS, contiguous: true }))
    expect(total(three)).toBe(3 * PS)
    expect(isContiguous(three)).toBe(true)
    mm.free([...two, ...three])
    checkWhole(mm)
  })

  it("contiguous try-harder: a range spanning two roots", () => {
    const mm = mk(12 * PS) // roots 8 + 4 pages
    const bs = ok(mm.alloc({ size: 10 * PS, contiguous: true }))
    expect(total(bs)).toBe(10 * PS)
    expect(isContiguous(bs)).toBe(true)
    checkMm(mm, bs)
    mm.free(bs)
    checkWhole(mm)
  })

  it("contiguous try-harder rounds its left-hand part up to the min block and does not trim", () => {
    const mm = mk(96 * PS) // roots 64 + 32 pages
    const first = ok(mm.alloc({ size: PS, start: 0, end: PS }))
    // No free 64-page block: 32 pages at 64.. (RHS) + the missing page rounded up to 2 (LHS).
    const bs = ok(mm.alloc({ size: 33 * PS, minBlockSize: 2 * PS, contiguous: true }))
    expect(total(bs)).toBe(34 * PS)
    expect(isContiguous(bs)).toBe(true)
    expect(Math.min(...bs.map((b) => b.offset))).toBe(62 * PS)
    checkMm(mm, [...first, ...bs])
    mm.free(bs)
    mm.free(first)
    checkWhole(mm)
  })

  it("exceeds max order: CONTIGUOUS alone succeeds via try-harder, other combinations are Invalid", () => {
    const mm = mk(8 * GiB + 2 * GiB)
    const size = 8 * GiB + GiB
    const bs = ok(mm.alloc({ size, contiguous: true }))
    expect(total(bs)).toBe(size)
    expect(isContiguous(bs)).toBe(true)
    mm.free(bs)
    expect(err(mm.alloc({ size, minBlockSize: 8 * GiB }))).toBe("Invalid")
    expect(err(mm.alloc({ size, minBlockSize: 8 * GiB, range: true }))).toBe("Invalid")
    expect(err(mm.alloc({ size, contiguous: true, range: true }))).toBe("Invalid")
    checkWhole(mm)
  })

  it("topdown: blocks come from the highest free addresses", () => {
    const mm = mk(64 * PS)
    const a = ok(mm.alloc({ size: PS, topdown: true }))
    expect(a[0]?.offset).toBe(63 * PS)
    const b = ok(mm.alloc({ size: 4 * PS, minBlockSize: 4 * PS, topdown: true }))
    expect(b[0]?.offset).toBe(56 * PS)
    const c = ok(mm.alloc({ size: 2 * PS, minBlockSize: 2 * PS, topdown: true }))
    expect(c[0]?.offset).toBe(60 * PS)
    mm.free([...a, ...b, ...c])
    checkWhole(mm)
  })

  it("range bias: every block lies inside [start, end), for random windows", () => {
    const mm = mk(4 * MiB)
    let seed = 7
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed % n
    }
    const held: Array<Buddy.BuddyBlock> = []
    for (let i = 0; i < 200; i++) {
      const s = rnd(1024) * PS
      const e = Math.min(mm.size, s + (1 + rnd(256)) * PS)
      const size = (1 + rnd(Math.max(1, (e - s) / PS))) * PS
      const r = mm.alloc({ start: s, end: e, size: Math.min(size, e - s), range: true })
      if (Result.isSuccess(r)) {
        for (const b of r.success) {
          expect(b.offset).toBeGreaterThanOrEqual(s)
          expect(b.offset + b.size).toBeLessThanOrEqual(e)
        }
        held.push(...r.success)
      }
      if (i % 3 === 0 && held.length > 0) mm.free(held.splice(0, 1 + rnd(held.length)))
    }
    checkMm(mm, held)
    mm.free(held)
    checkWhole(mm)
  })

  it("range bias fill (drm_test_buddy_alloc_range_bias): a window fills exactly, then NoSpace inside, room outside", () => {
    const mm = mk(16 * MiB)
    let seed = 11
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed % n
    }
    for (let round = 0; round < 20; round++) {
      const start = rnd(2048) * PS
      const end = Math.min(mm.size, start + (1 + rnd(512)) * PS)
      const held: Array<Buddy.BuddyBlock> = []
      // random sizes until the window is full, then single pages for the remainder
      for (;;) {
        const left = end - start - total(held)
        if (left === 0) break
        const want = Math.min(left, (1 + rnd(8)) * PS)
        const r = mm.alloc({ start, end, size: want, range: true })
        if (Result.isSuccess(r)) held.push(...r.success)
        else held.push(...ok(mm.alloc({ start, end, size: PS, range: true })))
      }
      for (const b of held) expect(b.offset >= start && b.offset + b.size <= end).toBe(true)
      expect(err(mm.alloc({ start, end, size: PS, range: true }))).toBe("NoSpace")
      if (mm.avail > 0) held.push(...ok(mm.alloc({ size: PS })))
      checkMm(mm, held)
      mm.free(held, { cleared: round % 2 === 0 })
    }
    expect(mm.fini().clean).toBe(true)
  })

  it("range: the lowest fitting aligned block inside the window is chosen", () => {
    const mm = mk(32 * PS)
    const a = ok(mm.alloc({ start: 5 * PS, end: 20 * PS, size: 4 * PS, minBlockSize: 4 * PS }))
    expect(a.map((b) => b.offset / PS)).toEqual([8])
    const b = ok(mm.alloc({ start: 5 * PS, end: 20 * PS, size: PS }))
    expect(b.map((x) => x.offset / PS)).toEqual([5])
    expect(err(mm.alloc({ start: 5 * PS, end: 20 * PS, size: 8 * PS, minBlockSize: 8 * PS }))).toBe("NoSpace")
    mm.free([...a, ...b])
    checkWhole(mm)
  })

  it("range: a block straddling the window start that cannot fit is skipped for the next one", () => {
    const mm = mk(16 * PS)
    const pages = ok(mm.alloc({ size: 16 * PS, minBlockSize: 16 * PS })).flatMap((b) => split(mm, b))
    const at = (i: number) => pages.find((p) => p.offset === i * PS) as Buddy.BuddyBlock
    mm.free([at(2), at(3), at(6), at(7)])
    expect(mm.freeBlocks().map((b) => [b.offset / PS, b.order])).toEqual([
      [2, 1],
      [6, 1]
    ])
    const got = ok(mm.alloc({ start: 3 * PS, end: 8 * PS, size: 2 * PS, minBlockSize: 2 * PS }))
    expect(got.map((b) => b.offset / PS)).toEqual([6])
  })

  it("exact range (start + size == end) allocates precisely that range or NoSpace", () => {
    const mm = mk(16 * PS)
    const a = ok(mm.alloc({ start: 3 * PS, end: 9 * PS, size: 6 * PS }))
    expect(total(a)).toBe(6 * PS)
    expect(Math.min(...a.map((b) => b.offset))).toBe(3 * PS)
    expect(isContiguous(a)).toBe(true)
    expect(err(mm.alloc({ start: 8 * PS, end: 10 * PS, size: 2 * PS }))).toBe("NoSpace")
    checkMm(mm, a)
    mm.free(a)
    checkWhole(mm)
  })
})

describe("drm_buddy: clear tracking", () => {
  it("freed-cleared blocks serve CLEAR requests; dirty ones serve the rest; no cross merge", () => {
    const mm = mk(16 * PS)
    const all = ok(mm.alloc({ size: 16 * PS, trimDisable: true }))
    const pages = all.flatMap((b) => split(mm, b)).sort((a, b) => a.offset - b.offset)
    mm.free(
      pages.filter((_, i) => i % 2 === 0),
      { cleared: true }
    )
    mm.free(pages.filter((_, i) => i % 2 === 1))
    expect(mm.avail).toBe(16 * PS)
    expect(mm.clearAvail).toBe(8 * PS)
    // clear and dirty buddies did not merge
    expect(mm.freeBlocks()).toHaveLength(16)
    checkMm(mm, [])
    const c = ok(mm.alloc({ size: PS, clear: true }))
    expect(c[0]?.clear).toBe(true)
    const d = ok(mm.alloc({ size: PS }))
    expect(d[0]?.clear).toBe(false)
    expect(mm.clearAvail).toBe(7 * PS)
    mm.free(c, { cleared: true })
    mm.free(d)
    // a 2-page block only exists after force-merging a mixed pair: the merged block is dirty
    const two = ok(mm.alloc({ size: 2 * PS, minBlockSize: 2 * PS }))
    expect(two).toHaveLength(1)
    expect(two[0]?.clear).toBe(false)
    expect(mm.clearAvail).toBe(7 * PS)
    checkMm(mm, two)
    mm.free(two)
    expect(mm.fini()).toEqual({ clean: true, leaked: 0 })
  })

  it("cleared buddies merge into a cleared parent; fully cleared space serves a big CLEAR request", () => {
    const mm = mk(8 * PS)
    const a = ok(mm.alloc({ size: 8 * PS }))
    mm.free(a, { cleared: true })
    expect(mm.clearAvail).toBe(8 * PS)
    checkWhole(mm)
    expect(mm.rootBlocks()[0]?.clear).toBe(true)
    const b = ok(mm.alloc({ size: 8 * PS, clear: true }))
    expect(b.every((x) => x.clear)).toBe(true)
    mm.free(b)
    expect(mm.clearAvail).toBe(0)
  })

  it("contiguous allocation over mixed clear state force-merges (non power-of-two size)", () => {
    const mm = mk(12 * PS)
    const all = ok(mm.alloc({ size: 12 * PS, trimDisable: true }))
    const pages = all.flatMap((b) => split(mm, b)).sort((a, b) => a.offset - b.offset)
    mm.free(
      pages.filter((_, i) => i % 2 === 0),
      { cleared: true }
    )
    mm.free(pages.filter((_, i) => i % 2 === 1))
    // 10 pages would exceed the max order: straight to try-harder, which does not force-merge
    expect(err(mm.alloc({ size: 10 * PS, contiguous: true }))).toBe("NoSpace")
    const c = ok(mm.alloc({ size: 3 * PS, contiguous: true }))
    expect(total(c)).toBe(3 * PS)
    expect(isContiguous(c)).toBe(true)
    checkMm(mm, c)
    mm.free(c)
    expect(mm.fini().clean).toBe(true)
  })

  it("fini reports leaks", () => {
    const mm = mk(8 * PS)
    ok(mm.alloc({ size: PS }))
    expect(mm.fini()).toEqual({ clean: false, leaked: PS })
    expect(() => mm.alloc({ size: PS })).toThrow(/after fini/)
  })
})

describe("drm_buddy: fragmentation (smaller shape of drm_test_buddy_fragmentation_performance)", () => {
  it("8 KiB at 64 KiB alignment, mixed clear free, then 64 KiB alloc of the whole space", () => {
    const size = 64 * MiB
    const mm = mk(size)
    const n = size / (64 * KiB)
    const got: Array<Buddy.BuddyBlock> = []
    for (let i = 0; i < n; i++) got.push(...ok(mm.alloc({ size: 8 * KiB, minBlockSize: 64 * KiB })))
    expect(got.every((b) => b.size === 8 * KiB && b.offset % (64 * KiB) === 0)).toBe(true)
    mm.free(
      got.filter((_, i) => i % 4 === 0 || i % 4 === 3),
      { cleared: true }
    )
    mm.free(got.filter((_, i) => i % 4 === 1 || i % 4 === 2))
    checkMm(mm, [])
    const big: Array<Buddy.BuddyBlock> = []
    for (let i = 0; i < n; i++) big.push(...ok(mm.alloc({ size: 64 * KiB, minBlockSize: 64 * KiB })))
    expect(mm.avail).toBe(0)
    checkMm(mm, big)
    mm.free(big)
    checkWhole(mm)
    expect(mm.fini().clean).toBe(true)
  })
})

describe("drm_buddy: bad input is Invalid and changes nothing", () => {
  const cases: ReadonlyArray<readonly [string, Buddy.AllocOptions]> = [
    ["zero size", { size: 0 }],
    ["negative size", { size: -PS }],
    ["fractional size", { size: PS + 0.5 }],
    ["unaligned size", { size: PS + 512 }],
    ["NaN size", { size: Number.NaN }],
    ["min block not a power of two", { size: 3 * PS, minBlockSize: 3 * PS }],
    ["min block below chunk", { size: PS, minBlockSize: 2048 }],
    ["unaligned start", { size: PS, start: 100, end: 8 * PS }],
    ["end past the allocator", { size: PS, end: 64 * PS }],
    ["start after end", { size: PS, start: 8 * PS, end: 4 * PS }],
    ["start + size overflows", { size: 4 * PS, start: 14 * PS, end: 16 * PS }],
    ["exact range unaligned to min block", { size: 2 * PS, start: PS, end: 3 * PS, minBlockSize: 2 * PS }]
  ]
  for (const [name, opts] of cases) {
    it(name, () => {
      const mm = mk(16 * PS)
      const held = ok(mm.alloc({ size: 3 * PS }))
      const before = snap(mm)
      expect(err(mm.alloc(opts))).toBe("Invalid")
      expect(snap(mm)).toBe(before)
      expect(mm.avail).toBe(13 * PS)
      checkMm(mm, held)
    })
  }

  it("NoSpace leaves state unchanged too", () => {
    const mm = mk(16 * PS)
    const held = ok(mm.alloc({ size: 9 * PS }))
    const before = snap(mm)
    expect(err(mm.alloc({ size: 8 * PS }))).toBe("NoSpace")
    expect(err(mm.alloc({ size: 8 * PS, contiguous: true }))).toBe("NoSpace")
    expect(snap(mm)).toBe(before)
    checkMm(mm, held)
  })

  it("double free and foreign blocks are defects", () => {
    const mm = mk(16 * PS)
    const other = mk(16 * PS)
    const a = ok(mm.alloc({ size: PS }))
    expect(() => other.free(a)).toThrow(/another allocator/)
    mm.free(a)
    expect(() => mm.free(a)).toThrow(/not allocated/)
    expect(() => mm.free([{ offset: 0, size: PS, order: 0, clear: false }])).toThrow(/another allocator/)
  })

  it("trim validates and keeps the requested sub-range", () => {
    const mm = mk(16 * PS)
    const [b] = ok(mm.alloc({ size: 8 * PS, minBlockSize: 8 * PS }))
    if (b === undefined) throw new Error("no block")
    expect(err(mm.trim(b, 9 * PS))).toBe("Invalid")
    expect(err(mm.trim(b, 0))).toBe("Invalid")
    expect(err(mm.trim(b, 2 * PS, b.offset + 7 * PS))).toBe("Invalid")
    const t = ok(mm.trim(b, 3 * PS, b.offset + 2 * PS))
    expect(total(t)).toBe(3 * PS)
    expect(Math.min(...t.map((x) => x.offset))).toBe(b.offset + 2 * PS)
    checkMm(mm, t)
    mm.free(t)
    checkWhole(mm)
  })

  it("results are yieldable in Effect.gen: NoSpace lands in the error channel", () =>
    Effect.gen(function* () {
      const mm = yield* Effect.fromResult(Buddy.make(8 * PS))
      const bs = yield* Effect.fromResult(mm.alloc({ size: 8 * PS }))
      const failed = yield* Effect.flip(Effect.fromResult(mm.alloc({ size: PS })))
      expect(failed._tag).toBe("NoSpace")
      mm.free(bs)
    }).pipe(Effect.runSync))
})

/** Re-allocates one block as single pages (trim to one page, then allocate the rest page by page). */
const split = (mm: Buddy.BuddyAllocator, b: Buddy.BuddyBlock): Array<Buddy.BuddyBlock> => {
  const start = b.offset
  mm.free([b])
  const out: Array<Buddy.BuddyBlock> = []
  for (let p = start; p < start + b.size; p += PS) out.push(...ok(mm.alloc({ start: p, end: p + PS, size: PS })))
  return out
}

const isContiguous = (bs: ReadonlyArray<Buddy.BuddyBlock>) => {
  const s = [...bs].sort((a, b) => a.offset - b.offset)
  return s.every(
    (b, i) => i === 0 || (s[i - 1] as Buddy.BuddyBlock).offset + (s[i - 1] as Buddy.BuddyBlock).size === b.offset
  )
}

const snap = (mm: Buddy.BuddyAllocator) => JSON.stringify(mm.freeBlocks().map((b) => [b.offset, b.order, b.clear]))
