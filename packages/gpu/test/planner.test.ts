/**
 * Planner + CPU reference (no GPU): mirrors xe's KUnit-style page-table cases (huge-leaf choice at
 * 2M/1G boundaries, shared-table writes, unbind frees emptied tables, zap keeps structure) plus a
 * model-based property test of random map/unmap/zap sequences.
 */
import { NoSpace } from "@drmkit/core"
import { CpuPageTables, Descriptor, PageTable, Pte } from "@drmkit/gpu"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import fc from "fast-check"
import { genOp, Model, samplePages } from "./gen.ts"
import { rng } from "./helpers.ts"

const G = 262144 // pages per 1 GiB
const M = 512 // pages per 2 MiB
const va = (page: number) => BigInt(page) * 4096n

const setup = (levels: 4 | 5 = 4, tables = 256) => ({
  shadow: new PageTable.PageTableShadow({ levels, tables }),
  cpu: new CpuPageTables.CpuPageTables(tables)
})

const run = (s: ReturnType<typeof setup>, r: ReturnType<PageTable.PageTableShadow["map"]>) => {
  const plan = PageTable.orThrow(r)
  assert.isUndefined(s.cpu.apply(plan))
  s.shadow.retire(plan)
  return plan
}

const pa = (s: ReturnType<typeof setup>, page: number, off = 0) => {
  const [lo, hi] = Pte.splitU64(va(page) + BigInt(off))
  const t = s.cpu.translate(0, s.shadow.levels, new Uint32Array([lo, hi]))
  return t[1] === Pte.FAULT ? "fault" : Pte.joinNumber(t[0] as number, t[1] as number)
}

describe("planner: huge leaves", () => {
  it("a 2M-aligned contiguous range becomes one 2M leaf; 1G-aligned becomes one 1G leaf", () => {
    const s = setup()
    const p2 = run(s, s.shadow.map(va(5 * M), va(M), { _tag: "Contiguous", baseFrame: 7 * M }))
    // root, L2 and L1 tables allocated, no leaf table
    assert.deepStrictEqual(
      p2.allocated.map((a) => a.level),
      [2, 1]
    )
    assert.strictEqual(pa(s, 5 * M + 3, 0x10), (7 * M + 3) * 4096 + 0x10)
    const p1 = run(s, s.shadow.map(va(3 * G), va(G), { _tag: "Contiguous", baseFrame: 5 * G }))
    assert.deepStrictEqual(
      p1.allocated.map((a) => a.level),
      []
    ) // the L2 table covering 0..512G exists
    assert.strictEqual(pa(s, 3 * G + 12345), (5 * G + 12345) * 4096)
  })

  it("misaligned backing or range falls back to 4K leaves; huge: false forces them", () => {
    const s = setup()
    const p = run(s, s.shadow.map(va(M), va(M), { _tag: "Contiguous", baseFrame: M + 1 }))
    assert.deepStrictEqual(
      p.allocated.map((a) => a.level),
      [2, 1, 0]
    )
    const q = run(s, s.shadow.map(va(4 * M + 1), va(M), { _tag: "Contiguous", baseFrame: 0 }))
    assert.strictEqual(q.allocated.filter((a) => a.level === 0).length, 2) // straddles two leaf tables
    const h = run(s, s.shadow.map(va(8 * M), va(M), { _tag: "Contiguous", baseFrame: 0 }, { huge: false }))
    assert.strictEqual(h.allocated.filter((a) => a.level === 0).length, 1)
  })

  it("a page list is huge only when it is contiguous and aligned", () => {
    const s = setup()
    const frames = Array.from({ length: M }, (_, i) => 3 * M + i)
    const p = run(s, s.shadow.map(va(2 * M), va(M), { _tag: "Pages", frames }))
    assert.isFalse(p.allocated.some((a) => a.level === 0))
    frames[100] = 1
    const q = run(s, s.shadow.map(va(6 * M), va(M), { _tag: "Pages", frames }))
    assert.isTrue(q.allocated.some((a) => a.level === 0))
    assert.strictEqual(pa(s, 6 * M + 100), 4096)
  })

  it("unmapping part of a 1G leaf splits it (2M leaves, then 4K) and keeps the rest", () => {
    const s = setup()
    run(s, s.shadow.map(va(G), va(G), { _tag: "Contiguous", baseFrame: 2 * G }))
    const u = run(s, s.shadow.unmap(va(G + 3 * M + 5), va(1)))
    assert.deepStrictEqual(
      u.allocated.map((a) => a.level),
      [1, 0]
    )
    const lim = { maxDescriptorsPerDispatch: 65535, maxLiteralEntriesPerDispatch: 1 << 24 }
    assert.strictEqual(Descriptor.split(u.descriptors, lim).length, 1)
    assert.strictEqual(pa(s, G + 3 * M + 5), "fault")
    assert.strictEqual(pa(s, G + 3 * M + 6), (2 * G + 3 * M + 6) * 4096)
    assert.strictEqual(pa(s, G + 7 * M), (2 * G + 7 * M) * 4096)
    assert.strictEqual(pa(s, 2 * G - 1), (3 * G - 1) * 4096)
  })

  it("mapping a whole 2M entry over a leaf table replaces (frees) the table", () => {
    const s = setup()
    run(s, s.shadow.map(va(M), va(10), { _tag: "Contiguous", baseFrame: 1 }))
    const inUse = s.shadow.tablesInUse
    const p = run(s, s.shadow.map(va(M), va(M), { _tag: "Contiguous", baseFrame: 4 * M }))
    assert.strictEqual(p.freed.length, 1)
    assert.strictEqual(s.shadow.tablesInUse, inUse - 1)
    assert.strictEqual(pa(s, M + 5), (4 * M + 5) * 4096)
  })
})

describe("planner: descriptors", () => {
  it("a range crossing leaf tables yields one descriptor per table, none crossing", () => {
    const s = setup()
    const p = run(s, s.shadow.map(va(500), va(600), { _tag: "Contiguous", baseFrame: 9 }, { huge: false }))
    const leafTables = new Set(p.allocated.filter((a) => a.level === 0).map((a) => a.table))
    const leaves = p.descriptors.filter(
      (d) => leafTables.has(d.table) && d.source._tag === "Generator" && d.source.increment === 1
    )
    assert.deepStrictEqual(
      leaves.map((d) => [d.first, d.count]),
      [
        [500, 12],
        [0, 512],
        [0, 76]
      ]
    )
    for (const d of p.descriptors) assert.isUndefined(Descriptor.check(d, 256))
    assert.strictEqual(pa(s, 511), (9 + 11) * 4096)
    assert.strictEqual(pa(s, 512), (9 + 12) * 4096)
    // pre-fills cover only unwritten entries: the whole plan is one dispatch
    const lim = { maxDescriptorsPerDispatch: 65535, maxLiteralEntriesPerDispatch: 1 << 24 }
    assert.strictEqual(Descriptor.split(p.descriptors, lim).length, 1)
    const u = run(s, s.shadow.unmap(va(600), va(3)))
    assert.strictEqual(Descriptor.split(u.descriptors, lim).length, 1)
  })

  it("scattered pages use literal descriptors; a fully written new table needs no pre-fill", () => {
    const s = setup()
    const frames = Array.from({ length: 512 }, (_, i) => 1000 + 7 * i)
    const p = run(s, s.shadow.map(va(512), va(512), { _tag: "Pages", frames }))
    const lits = p.descriptors.filter((d) => d.source._tag === "Literal")
    assert.strictEqual(lits.length, 1)
    const leaf = p.allocated.find((a) => a.level === 0)?.table
    assert.deepStrictEqual(p.descriptors.filter((d) => d.table === leaf).length, 1)
  })

  it("adjacent huge leaves with far-apart frames stay valid descriptors (32-bit increment bound)", () => {
    const s = setup()
    const p = PageTable.orThrow(
      s.shadow.planBatch([
        { _tag: "Map", va: va(0), size: va(G), backing: { _tag: "Contiguous", baseFrame: 0 } },
        { _tag: "Map", va: va(G), size: va(G), backing: { _tag: "Contiguous", baseFrame: 2 ** 39 } },
        { _tag: "Map", va: va(2 * G), size: va(G), backing: { _tag: "Contiguous", baseFrame: 2 ** 39 + 2 ** 38 } }
      ])
    )
    for (const d of p.descriptors) assert.isUndefined(Descriptor.check(d, 256))
    assert.isUndefined(s.cpu.apply(p))
    assert.strictEqual(pa(s, G + 5), (2 ** 39 + 5) * 4096)
    assert.strictEqual(pa(s, 2 * G + 5), (2 ** 39 + 2 ** 38 + 5) * 4096)
  })

  it("split: overlap or limits start a new dispatch", () => {
    const d = (t: number, f: number, c: number) => Descriptor.fill(t, f, c, 0, 0)
    const lim = { maxDescriptorsPerDispatch: 3, maxLiteralEntriesPerDispatch: 10 }
    assert.deepStrictEqual(Descriptor.split([d(0, 0, 5), d(0, 5, 5), d(1, 0, 1)], lim).length, 1)
    assert.deepStrictEqual(
      Descriptor.split([d(0, 0, 5), d(0, 4, 5)], lim).map((r) => r.start),
      [0, 1]
    )
    assert.deepStrictEqual(Descriptor.split([d(0, 0, 1), d(1, 0, 1), d(2, 0, 1), d(3, 0, 1)], lim).length, 2)
    const lit = (t: number) => Descriptor.literal(t, 0, new Uint32Array(12))
    assert.deepStrictEqual(Descriptor.split([lit(0), lit(1)], lim).length, 2)
  })

  it("split: a dispatch never holds two overlapping descriptors and is cut only when needed (property)", () => {
    const lim = { maxDescriptorsPerDispatch: 5, maxLiteralEntriesPerDispatch: 600 }
    const arb = fc.array(
      fc.record({ table: fc.nat(3), first: fc.nat(511), count: fc.integer({ min: 1, max: 300 }), lit: fc.boolean() }),
      { minLength: 1, maxLength: 30 }
    )
    // sorted lists exercise the in-order fast path, shuffled ones the span map
    const lists = fc.oneof(
      arb,
      arb.map((xs) => [...xs].sort((a, b) => a.table * 512 + a.first - (b.table * 512 + b.first)))
    )
    fc.assert(
      fc.property(lists, (xs) => {
        const descs = xs.map((x) => {
          const count = Math.min(x.count, 512 - x.first)
          return x.lit
            ? Descriptor.literal(x.table, x.first, new Uint32Array(2 * count))
            : Descriptor.fill(x.table, x.first, count, 0, 0)
        })
        const hit = (a: Descriptor.Descriptor, b: Descriptor.Descriptor) =>
          a.table === b.table && a.first < b.first + b.count && b.first < a.first + a.count
        const ranges = Descriptor.split(descs, lim)
        let next = 0
        for (const r of ranges) {
          assert.strictEqual(r.start, next)
          next = r.end
          const part = descs.slice(r.start, r.end)
          assert.isAtMost(part.length, lim.maxDescriptorsPerDispatch)
          for (let i = 0; i < part.length; i++)
            for (let j = 0; j < i; j++)
              assert.isFalse(hit(part[i] as Descriptor.Descriptor, part[j] as Descriptor.Descriptor))
          // cut only when needed: the first descriptor of the next dispatch did not fit here
          const first = descs[r.end]
          if (first !== undefined) {
            const lits = (xs: ReadonlyArray<Descriptor.Descriptor>) =>
              xs.reduce((n, d) => n + (d.source._tag === "Literal" ? d.count : 0), 0)
            const fits =
              part.length < lim.maxDescriptorsPerDispatch &&
              lits([...part, first]) <= lim.maxLiteralEntriesPerDispatch &&
              !part.some((p) => hit(p, first))
            assert.isFalse(fits)
          }
        }
        assert.strictEqual(next, descs.length)
      }),
      { numRuns: 300, seed: 17 }
    )
  })
})

describe("planner: validation and rollback", () => {
  it("bad requests are Invalid and change nothing", () => {
    const s = setup()
    const before = s.shadow.tablesInUse
    const bad: Array<PageTable.Op> = [
      { _tag: "Map", va: 1n, size: 4096n, backing: { _tag: "Null" } },
      { _tag: "Map", va: 0n, size: 0n, backing: { _tag: "Null" } },
      { _tag: "Map", va: 0n, size: 8192n, backing: { _tag: "Pages", frames: [1] } },
      { _tag: "Map", va: 0n, size: 4096n, backing: { _tag: "Contiguous", baseFrame: 2 ** 40 } },
      { _tag: "Map", va: 0n, size: 4096n, backing: { _tag: "Null" }, options: { flags: Pte.PteBits.PRESENT } },
      { _tag: "Unmap", va: 2n ** 48n - 4096n, size: 8192n }
    ]
    for (const op of bad) assert.strictEqual((s.shadow.planBatch([op]) as { _tag: string })._tag, "Invalid")
    assert.strictEqual(s.shadow.tablesInUse, before)
  })

  it.effect("an arena that runs out fails with NoSpace and rolls the shadow back", () =>
    Effect.gen(function* () {
      const s = setup(4, 5)
      run(s, s.shadow.map(va(0), va(1), { _tag: "Contiguous", baseFrame: 1 }))
      const used = s.shadow.tablesInUse
      const exit = yield* Effect.exit(
        PageTable.plan(s.shadow, [
          {
            _tag: "Map",
            va: va(G),
            size: va(3 * M),
            backing: { _tag: "Contiguous", baseFrame: 3 },
            options: { huge: false }
          }
        ])
      )
      assert.isTrue(Exit.isFailure(exit))
      assert.instanceOf(
        s.shadow.planBatch([
          {
            _tag: "Map",
            va: va(G),
            size: va(3 * M),
            backing: { _tag: "Contiguous", baseFrame: 3 },
            options: { huge: false }
          }
        ]),
        NoSpace
      )
      assert.strictEqual(s.shadow.tablesInUse, used)
      assert.strictEqual(pa(s, 0), 4096)
      run(s, s.shadow.map(va(1), va(1), { _tag: "Contiguous", baseFrame: 2 }))
      assert.strictEqual(pa(s, 1), 8192)
    })
  )

  it("unmap frees emptied tables after retire; zap keeps them", () => {
    const s = setup()
    run(s, s.shadow.map(va(G + 7), va(3), { _tag: "Contiguous", baseFrame: 1 }))
    const used = s.shadow.tablesInUse
    const z = run(s, s.shadow.zap(va(G + 7), va(3)))
    assert.strictEqual(z.freed.length, 0)
    assert.strictEqual(s.shadow.tablesInUse, used)
    assert.strictEqual(pa(s, G + 8), "fault")
    const u = PageTable.orThrow(s.shadow.unmap(va(G), va(M)))
    assert.strictEqual(u.freed.length, 3)
    assert.strictEqual(s.shadow.tablesInUse, used)
    s.shadow.retire(u)
    assert.strictEqual(s.shadow.tablesInUse, 1)
  })
})

describe("planner: model-based property", () => {
  for (const levels of [4, 5] as const) {
    it(`random map/unmap/zap sequences translate like the page model (${levels} levels)`, () => {
      fc.assert(
        fc.property(fc.integer({ min: 1, max: 2 ** 31 - 1 }), (seed) => {
          const r = rng(seed)
          const s = setup(levels, 2048)
          const model = new Model()
          for (let k = 0; k < 10; k++) {
            const g = genOp(r, levels)
            run(s, s.shadow.planBatch([g.op]))
            model.apply(g)
            if (g.op._tag === "Zap") model.resyncAround(levels, s.cpu, g.start, g.pages)
            const err = model.check(levels, s.cpu, samplePages(g, r), r)
            if (err !== undefined) throw new Error(`op ${k} ${g.op._tag} [${g.start}, +${g.pages}): ${err}`)
          }
        }),
        { numRuns: 20, seed: 4242 }
      )
    })
  }
})
