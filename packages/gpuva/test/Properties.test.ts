import { U64_MAX } from "@drmkit/core"
import { GpuVa, Ops, SplitMerge, VaSpace } from "@drmkit/gpuva"
import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import * as fc from "fast-check"
import { show } from "./vaFixtures.ts"

type Ma = GpuVa.MapArgs
const objs: ReadonlyArray<GpuVa.GemObject | null> = [
  { name: "a", size: 1n << 40n },
  { name: "b", size: 1n << 40n },
  { name: "c", size: 1n << 40n },
  null
]
const u64 = (x: bigint) => BigInt.asUintN(64, x)
const PAGES = 64

/** Brute-force interval model: a sorted array of mappings, cut and pasted piece by piece. */
const cut = (list: ReadonlyArray<Ma>, addr: bigint, end: bigint): Array<Ma> => {
  const out: Array<Ma> = []
  for (const v of list) {
    const vEnd = v.addr + v.range
    if (vEnd <= addr || v.addr >= end) {
      out.push(v)
      continue
    }
    if (v.addr < addr) out.push({ ...v, range: addr - v.addr })
    if (vEnd > end) out.push({ addr: end, range: vEnd - end, obj: v.obj, offset: u64(v.offset + (end - v.addr)) })
  }
  return out
}
const sorted = (list: Array<Ma>) => list.sort((x, y) => (x.addr < y.addr ? -1 : x.addr > y.addr ? 1 : 0))
const fmt = (list: Iterable<Ma>) => [...list].map(GpuVa.format)

/** `keep`, decided unit by unit: the first overlapping unit is backed by the same page of the same object. */
const bruteKeep = (v: Ma, req: Ma): boolean => {
  if (v.obj === null || v.obj !== req.obj) return false
  let u = req.addr
  if (v.addr > u) u = v.addr
  return u64(v.offset + (u - v.addr)) === u64(req.offset + (u - req.addr))
}

const Cmd = fc.record({
  kind: fc.constantFrom("map", "map", "unmap", "madvise"),
  page: fc.integer({ min: -2, max: PAGES + 1 }),
  len: fc.integer({ min: 1, max: 24 }),
  obj: fc.integer({ min: 0, max: objs.length - 1 }),
  off: fc.integer({ min: 0, max: 16 })
})
const World = fc.record({
  top: fc.boolean(),
  /** Unless `top`: the space straddles 0, 2^52 (where the allocation-free double fast paths end) or 2^53. */
  mid: fc.constantFrom(0n, 1n << 52n, 1n << 53n),
  pageSize: fc.constantFrom(1n, 0x1000n),
  reserve: fc.option(fc.record({ page: fc.integer({ min: 0, max: PAGES - 4 }), len: fc.integer({ min: 1, max: 4 }) })),
  offBase: fc.constantFrom(0n, (1n << 52n) - 0x8000n, U64_MAX + 1n - 0x8000n),
  initial: fc.array(
    fc.record({
      page: fc.integer({ min: 0, max: PAGES }),
      len: fc.integer({ min: 1, max: 8 }),
      obj: fc.nat(3),
      off: fc.nat(32)
    }),
    { maxLength: 20 }
  ),
  cmds: fc.array(Cmd, { minLength: 1, maxLength: 25 })
})
type W = typeof World extends fc.Arbitrary<infer T> ? T : never

const setup = (w: W) => {
  const P = w.pageSize
  const base = w.top ? U64_MAX + 1n - 0x400000n : w.mid === 0n ? 0n : w.mid - BigInt(PAGES / 2) * P
  const space = VaSpace.makeUnsafe({
    start: base,
    range: BigInt(PAGES) * P,
    pageSize: P,
    ...(w.reserve ? { reserveOffset: base + BigInt(w.reserve.page) * P, reserveRange: BigInt(w.reserve.len) * P } : {})
  })
  const args = (page: number, len: number, obj: number, off: number): Ma => ({
    addr: base + BigInt(page) * P,
    range: BigInt(len) * P,
    obj: objs[obj] ?? null,
    offset: u64(w.offBase + BigInt(off) * P)
  })
  let model: Array<Ma> = []
  for (const i of w.initial) {
    const r = space.insert(GpuVa.make(args(i.page, i.len, i.obj, i.off)))
    if (Result.isSuccess(r)) model.push(GpuVa.toArgs(r.success))
  }
  model = sorted(model)
  return { space, args, model }
}

const userVas = (space: VaSpace.VaSpace) => [...space].filter((v) => v !== space.reserved).map(GpuVa.toArgs)

describe("split/merge against a brute-force interval model", () => {
  it("map/unmap sequences: ops applied == model; list mode == callback mode; invariants hold", () => {
    fc.assert(
      fc.property(World, (w) => {
        const { space, args } = setup(w)
        let model = setup(w).model
        assert.deepStrictEqual(fmt(userVas(space)), fmt(model))
        for (const c of w.cmds) {
          if (c.kind === "madvise") continue
          const req = args(c.page, c.len, c.obj, c.off)
          const before = fmt(userVas(space))
          const res =
            c.kind === "map" ? SplitMerge.smMapOps(space, req) : SplitMerge.smUnmapOps(space, req.addr, req.range)
          if (!space.rangeValid(req.addr, req.range)) {
            assert(Result.isFailure(res))
            assert.strictEqual(res.failure._tag, "Invalid")
            assert.deepStrictEqual(fmt(userVas(space)), before)
            continue
          }
          const ops = Result.getOrThrow(res)
          // shape: address order, Map last and exactly once (map), remaps only at the ends, keep exact
          const maps = ops.filter((o) => o._tag === "Map")
          if (c.kind === "map") {
            assert.strictEqual(maps.length, 1)
            assert.strictEqual(ops[ops.length - 1]?._tag, "Map")
          } else assert.strictEqual(maps.length, 0)
          const olds = ops.flatMap((o) => (o._tag === "Remap" ? [o.unmap] : o._tag === "Unmap" ? [o] : []))
          for (let i = 1; i < olds.length; i++) assert((olds[i - 1]?.va.addr ?? 0n) < (olds[i]?.va.addr ?? 0n))
          ops.forEach((o, i) => {
            if (o._tag === "Remap") assert(i === 0 || i === olds.length - 1, "remap only at the ends")
          })
          for (const o of olds) assert.strictEqual(o.keep, c.kind === "map" && bruteKeep(o.va, req), "keep")
          // callback mode, applying each step at once, must see the same steps and reach the same tree
          const twin = setup(w).space
          for (const v of userVas(twin)) twin.remove(twin.find(v.addr, v.range) as GpuVa.GpuVa)
          for (const v of userVas(space)) twin.insert(GpuVa.make(v))
          const seen: Array<string> = []
          const cbs = {
            onMap: (op: Ops.MapOp) => {
              seen.push(show(op))
              Ops.map(twin, op)
              return undefined
            },
            onRemap: (op: Ops.RemapOp) => {
              seen.push(show(op))
              Ops.remap(twin, op)
              return undefined
            },
            onUnmap: (op: Ops.UnmapOp) => {
              seen.push(show(op))
              Ops.unmap(twin, op)
              return undefined
            }
          }
          const r =
            c.kind === "map" ? SplitMerge.smMap(twin, req, cbs) : SplitMerge.smUnmap(twin, req.addr, req.range, cbs)
          assert(Result.isSuccess(r))
          assert.deepStrictEqual(seen, ops.map(show))
          Ops.applyAll(space, ops)
          model = sorted(
            c.kind === "map"
              ? [...cut(model, req.addr, req.addr + req.range), req]
              : cut(model, req.addr, req.addr + req.range)
          )
          assert.deepStrictEqual(fmt(userVas(space)), fmt(model))
          assert.deepStrictEqual(fmt(userVas(twin)), fmt(model))
          assert.deepStrictEqual(space.check(), [])
          assert.deepStrictEqual(twin.check(), [])
        }
      }),
      { numRuns: 300 }
    )
  })

  it("madvise splits only NULL VAs at the request boundaries and never unmaps", () => {
    fc.assert(
      fc.property(World, (w) => {
        const { space, args } = setup(w)
        for (const c of w.cmds) {
          const req = { ...args(c.page, c.len, 3, 0), obj: null }
          if (!space.rangeValid(req.addr, req.range)) continue
          const before = userVas(space)
          const ops = Result.getOrThrow(SplitMerge.madviseOps(space, req))
          assert.isFalse(ops.some((o) => o._tag === "Unmap" || (o._tag === "Remap" && o.unmap.keep)))
          assert.isAtMost(ops.filter((o) => o._tag === "Map").length, 2)
          Ops.applyAll(space, ops)
          const after = userVas(space)
          const units = (l: ReadonlyArray<Ma>) => l.reduce((s, v) => s + v.range, 0n)
          assert.strictEqual(units(after), units(before), "coverage unchanged")
          const gem = (l: ReadonlyArray<Ma>) => fmt(l.filter((v) => v.obj !== null))
          assert.deepStrictEqual(gem(after), gem(before), "object-backed VAs untouched")
          const reqEnd = req.addr + req.range
          for (const v of after) {
            if (v.obj !== null) continue
            const vEnd = v.addr + v.range
            assert.isFalse(v.addr < req.addr && vEnd > req.addr, "NULL VA straddles the start")
            assert.isFalse(v.addr < reqEnd && vEnd > reqEnd, "NULL VA straddles the end")
          }
          assert.deepStrictEqual(space.check(), [])
        }
      }),
      { numRuns: 200 }
    )
  })

  it("tree stays balanced and ordered under random insert/remove churn", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.nat(2000), fc.integer({ min: 1, max: 30 })), { maxLength: 400 }),
        (steps) => {
          const space = VaSpace.makeUnsafe({ start: 0n, range: 2048n })
          const live: Array<GpuVa.GpuVa> = []
          for (const [ins, at, len] of steps) {
            if (ins || live.length === 0) {
              const r = space.insert(GpuVa.make({ addr: BigInt(at), range: BigInt(len), obj: null, offset: 0n }))
              if (Result.isSuccess(r)) live.push(r.success)
            } else {
              const [v] = live.splice(at % live.length, 1)
              if (v) assert(Result.isSuccess(space.remove(v)))
            }
          }
          assert.deepStrictEqual(space.check(), [])
          assert.strictEqual(space.count, live.length)
        }
      ),
      { numRuns: 100 }
    )
  })

  it("multi-level trees (thousands of VAs, also near 2^64): model == tree, invariants hold", () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.array(fc.tuple(fc.nat(3), fc.nat(1 << 16), fc.integer({ min: 1, max: 12 }), fc.nat(3)), {
          minLength: 3000,
          maxLength: 5000
        }),
        (top, steps) => {
          const base = top ? U64_MAX + 1n - (1n << 20n) : 0n
          const space = VaSpace.makeUnsafe({ start: base, range: 1n << 17n })
          let model: Array<Ma> = []
          steps.forEach(([kind, at, len, o], i) => {
            const req: Ma = { addr: base + BigInt(at), range: BigInt(len), obj: objs[o] ?? null, offset: BigInt(at) }
            const end = req.addr + req.range
            if (kind === 0) {
              Ops.applyAll(space, Result.getOrThrow(SplitMerge.smUnmapOps(space, req.addr, req.range)))
              model = cut(model, req.addr, end)
            } else {
              Ops.applyAll(space, Result.getOrThrow(SplitMerge.smMapOps(space, req)))
              model = cut(model, req.addr, end)
              model.push(req)
              model = sorted(model)
            }
            if (i % 1000 === 999) assert.deepStrictEqual(space.check(), [])
          })
          assert.deepStrictEqual(fmt(userVas(space)), fmt(model))
          assert.deepStrictEqual(space.check(), [])
          for (const v of model) assert.strictEqual(space.find(v.addr, v.range)?.offset, v.offset)
          // tear everything down through the per-object lists, then the rest
          for (const o of objs) if (o !== null) Ops.applyAll(space, Ops.boUnmapOps(space, o))
          Ops.applyAll(space, Result.getOrThrow(SplitMerge.smUnmapOps(space, base, 1n << 17n)))
          assert.strictEqual(space.count, 0)
          assert.deepStrictEqual(space.check(), [])
        }
      ),
      { numRuns: 6 }
    )
  })
})
