import { U64_MAX } from "@drmkit/core"
import { GpuVa, Ops, SplitMerge, VaSpace } from "@drmkit/gpuva"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import { a, b, m, show, spaceWith, tree } from "./vaFixtures.ts"

const P = 0x1000n
const invalid = (r: Result.Result<unknown, unknown>, re: RegExp): void => {
  assert(Result.isFailure(r), "expected Invalid")
  const e = r.failure as { _tag: string; message: string }
  assert.strictEqual(e._tag, "Invalid")
  assert.match(e.message, re)
}

describe("VaSpace.make (drm_gpuvm_init)", () => {
  it("validates bounds, page size and the reserved node", () => {
    invalid(VaSpace.make({ start: 0n, range: 0n }), /non-empty/)
    invalid(VaSpace.make({ start: 1n, range: U64_MAX }), /non-empty u64/)
    invalid(VaSpace.make({ start: 0n, range: 0x10000n, pageSize: 3n }), /power-of-two/)
    invalid(VaSpace.make({ start: 0x800n, range: 0x10000n, pageSize: P }), /aligned/)
    invalid(
      VaSpace.make({ start: 0n, range: 0x10000n, reserveOffset: 0xf000n, reserveRange: 0x2000n, pageSize: P }),
      /inside/
    )
    invalid(
      VaSpace.make({ start: 0n, range: 0x10000n, reserveOffset: 0x800n, reserveRange: 0x1000n, pageSize: P }),
      /aligned/
    )
    assert.isTrue(Result.isSuccess(VaSpace.make({ start: 0n, range: U64_MAX })))
  })

  it("the reserved node is in the tree, cannot be removed and blocks requests", () => {
    const space = VaSpace.makeUnsafe({
      start: 0n,
      range: 0x100000n,
      reserveOffset: 0n,
      reserveRange: 0x10000n,
      pageSize: P
    })
    const r = space.reserved
    assert(r !== undefined)
    assert.strictEqual(space.count, 0)
    assert.deepStrictEqual([...space], [r])
    invalid(space.remove(r), /reserved node cannot be removed/)
    assert.deepStrictEqual([...space], [r])
    assert.isFalse(space.rangeValid(0xf000n, 0x2000n))
    assert.isTrue(space.rangeValid(0x10000n, 0x1000n))
    invalid(SplitMerge.smMapOps(space, { addr: 0xf000n, range: 0x2000n, obj: a, offset: 0n }), /reserved/)
    invalid(SplitMerge.smUnmapOps(space, 0n, 0x100000n), /reserved/)
    // prefetch does not validate against the space (kernel quirk, mirrored): it yields the reserved node
    const pf = Result.getOrThrow(Ops.prefetchOps(space, 0xf000n, 0x2000n))
    assert.deepStrictEqual(
      pf.map((op) => op.va),
      [r]
    )
    assert.deepStrictEqual(Result.getOrThrow(Ops.prefetchOps(space, 0x10000n, 0x1000n)), [])
  })
})

describe("validation: bad requests are Invalid and change nothing", () => {
  const space = () => spaceWith([m(0x1000, 0x2000, a, 0)], { range: 0x100000n, pageSize: P })
  const cases: ReadonlyArray<readonly [string, GpuVa.MapArgs, RegExp]> = [
    ["zero length", { addr: 0x4000n, range: 0n, obj: a, offset: 0n }, /non-zero/],
    ["misaligned addr", { addr: 0x4800n, range: 0x1000n, obj: a, offset: 0n }, /aligned/],
    ["misaligned range", { addr: 0x4000n, range: 0x1800n, obj: a, offset: 0n }, /aligned/],
    ["misaligned offset", { addr: 0x4000n, range: 0x1000n, obj: a, offset: 0x10n }, /aligned/],
    ["out of space", { addr: 0xff000n, range: 0x2000n, obj: a, offset: 0n }, /outside/],
    ["u64 overflow", { addr: U64_MAX - 0xfffn, range: 0x2000n, obj: a, offset: 0n }, /overflow/],
    ["negative", { addr: -0x1000n, range: 0x1000n, obj: a, offset: 0n }, /u64/],
    ["not a bigint", { addr: 4096 as unknown as bigint, range: 0x1000n, obj: a, offset: 0n }, /bigint/],
    ["offset above u64", { addr: 0x4000n, range: 0x1000n, obj: a, offset: 1n << 64n }, /u64/]
  ]
  for (const [name, req, re] of cases) {
    it(name, () => {
      const s = space()
      const before = tree(s)
      invalid(SplitMerge.smMapOps(s, req), re)
      invalid(s.insert(GpuVa.make(req)), re)
      const calls: Array<string> = []
      const cb = {
        onMap: () => void calls.push("m"),
        onRemap: () => void calls.push("r"),
        onUnmap: () => void calls.push("u")
      }
      invalid(SplitMerge.smMap(s, req, cb), re)
      if (req.offset === 0n) invalid(SplitMerge.smUnmapOps(s, req.addr, req.range), re)
      assert.deepStrictEqual(calls, [])
      assert.deepStrictEqual(tree(s), before)
    })
  }

  it("overlapping insert is Invalid (EEXIST), touching is fine", () => {
    const s = space()
    invalid(s.insert(GpuVa.make({ addr: 0x2000n, range: 0x2000n, obj: b, offset: 0n })), /overlaps.*EEXIST/)
    invalid(s.insert(GpuVa.make({ addr: 0n, range: 0x2000n, obj: b, offset: 0n })), /overlaps/)
    assert.isTrue(Result.isSuccess(s.insert(GpuVa.make({ addr: 0x3000n, range: 0x1000n, obj: b, offset: 0n }))))
    assert.isTrue(Result.isSuccess(s.insert(GpuVa.make({ addr: 0n, range: 0x1000n, obj: b, offset: 0n }))))
    assert.strictEqual(s.count, 3)
    assert.deepStrictEqual(s.check(), [])
  })

  it("double insert and foreign removal are Invalid", () => {
    const s = space()
    const other = space()
    const [va] = [...s]
    assert(va !== undefined)
    invalid(s.insert(va), /already inserted/)
    invalid(other.remove(va), /not in this VA space/)
    invalid(s.insert({ ...va, inserted: false }), /GpuVa.make/)
  })

  it("errors lift into the Effect error channel", async () => {
    const s = space()
    const exit = await Effect.runPromiseExit(
      Effect.gen(function* () {
        return yield* Effect.fromResult(SplitMerge.smMapOps(s, { addr: 0n, range: 0n, obj: null, offset: 0n }))
      })
    )
    assert.strictEqual(exit._tag, "Failure")
    const cb = { onMap: () => Effect.void, onRemap: () => Effect.void, onUnmap: () => Effect.void }
    const e = await Effect.runPromise(
      Effect.flip(SplitMerge.smMapEffect(s, { addr: 1n, range: 1n, obj: null, offset: 0n }, cb))
    )
    assert.strictEqual(e._tag, "Invalid")
  })
})

describe("queries", () => {
  // VAs: [2,4) [4,6) [7,9) [12,14), hole at 6, bigger hole 9..12
  const s = spaceWith([m(2, 2, a, 0), m(4, 2, b, 0), m(7, 2, a, 5), m(12, 2, b, 8)])
  const at = (va: GpuVa.GpuVa | undefined) => (va === undefined ? "none" : `${va.addr}`)

  it("find is exact, findFirst is the lowest overlap", () => {
    assert.strictEqual(at(s.find(2n, 2n)), "2")
    assert.strictEqual(at(s.find(2n, 1n)), "none")
    assert.strictEqual(at(s.find(2n, 4n)), "none")
    assert.strictEqual(at(s.findFirst(3n, 10n)), "2")
    assert.strictEqual(at(s.findFirst(6n, 1n)), "none")
    assert.strictEqual(at(s.findFirst(6n, 2n)), "7")
    assert.strictEqual(at(s.findFirst(9n, 3n)), "none")
    assert.isTrue(s.intervalEmpty(9n, 3n))
    assert.isFalse(s.intervalEmpty(9n, 4n))
    assert.deepStrictEqual([...s.iterate(3n, 5n)].map(at), ["2", "4", "7"])
    assert.deepStrictEqual([...s.iterate(6n, 1n)].map(at), [])
  })

  it("findPrev / findNext return only truly adjacent VAs (kernel quirks fixed)", () => {
    assert.strictEqual(at(s.findPrev(4n)), "2") // [2,4) ends at 4
    assert.strictEqual(at(s.findNext(4n)), "4") // [4,6) starts at 4
    // kernel: find_prev(7) searches [6,7] and returns [7,9) itself; we return none (6 is a hole)
    assert.strictEqual(at(s.findPrev(7n)), "none")
    // kernel: find_next(6) searches [6,7] and returns [7,9) across the one-unit hole; we return none
    assert.strictEqual(at(s.findNext(6n)), "none")
    assert.strictEqual(at(s.findPrev(0n)), "none")
    assert.strictEqual(at(s.findNext(999n)), "none")
    assert.strictEqual(at(s.findNext(1000n)), "none") // outside the space
  })

  it("findPrev / findNext never return the reserved node", () => {
    const r = VaSpace.makeUnsafe({ start: 0n, range: 100n, reserveOffset: 10n, reserveRange: 10n })
    assert.strictEqual(at(r.findPrev(20n)), "none")
    assert.strictEqual(at(r.findNext(10n)), "none")
  })

  it("boUnmapOps: every VA of an object, in insertion order, from the per-object index", () => {
    const t = spaceWith([m(12, 2, b, 8), m(2, 2, a, 0), m(4, 2, b, 0), m(7, 2, a, 5)])
    assert.deepStrictEqual(Ops.boUnmapOps(t, b).map(show), ["UNMAP((12,2,b,8),F)", "UNMAP((4,2,b,0),F)"])
    Ops.applyAll(t, Ops.boUnmapOps(t, b))
    assert.deepStrictEqual(tree(t), ["(2,2,a,0)", "(7,2,a,5)"])
    assert.deepStrictEqual(Ops.boUnmapOps(t, b), [])
    assert.deepStrictEqual(t.objects(), [a])
    assert.deepStrictEqual(t.check(), [])
  })
})

describe("the top of the u64 space", () => {
  const top = U64_MAX + 1n // 2^64, one past the last address
  it("a VA may end at 2^64 - 1 but not at 2^64 (the kernel's check_add_overflow)", () => {
    const s = VaSpace.makeUnsafe({ start: top - 0x100000n, range: 0x100000n - 1n })
    invalid(SplitMerge.smMapOps(s, { addr: top - 0x1000n, range: 0x1000n, obj: a, offset: 0n }), /overflow/)
    const ops = Result.getOrThrow(SplitMerge.smMapOps(s, { addr: top - 0x1000n, range: 0xfffn, obj: a, offset: 0n }))
    Ops.applyAll(s, ops)
    assert.strictEqual(s.findNext(top - 0x1000n)?.end, U64_MAX)
  })

  it("splits above 2^53 stay exact and offsets wrap modulo 2^64", () => {
    // addresses differ only below bit 11: Number() cannot tell them apart
    const base = top - 0x10000n
    const s = VaSpace.makeUnsafe({ start: base, range: 0x8000n })
    const A = { addr: base, range: 0x100n, obj: a, offset: U64_MAX - 0x7fn }
    Result.getOrThrow(s.insert(GpuVa.make(A)))
    const ops = Result.getOrThrow(SplitMerge.smMapOps(s, { addr: base + 1n, range: 1n, obj: b, offset: 0n }))
    assert(ops[0]?._tag === "Remap")
    assert.strictEqual(ops[0].next?.addr, base + 2n)
    assert.strictEqual(ops[0].next?.offset, U64_MAX - 0x7fn + 2n)
    Ops.applyAll(s, ops)
    // same translation across the wrap: keep
    const wrap = Result.getOrThrow(SplitMerge.smMapOps(s, { addr: base + 0x90n, range: 0x10n, obj: a, offset: 0x10n }))
    assert.deepStrictEqual(
      wrap.map((op) => (op._tag === "Remap" ? [op.unmap.keep, op.next?.offset] : op._tag)),
      [[true, 0x20n], "Map"]
    )
    Ops.applyAll(s, wrap)
    assert.deepStrictEqual(
      [...s].map((v) => [v.addr - base, v.offset]),
      [
        [0n, U64_MAX - 0x7fn],
        [1n, 0n],
        [2n, U64_MAX - 0x7dn],
        [0x90n, 0x10n],
        [0xa0n, 0x20n]
      ]
    )
    assert.deepStrictEqual(s.check(), [])
  })
})

describe("around 2^52 / 2^53 (where the allocation-free double fast paths hand over to bigint)", () => {
  const T53 = 1n << 53n
  it("alignment and bounds stay exact where Number() rounds", () => {
    const s = VaSpace.makeUnsafe({ start: T53 - 0x100n, range: 0x200n, pageSize: 2n })
    // Number(2^53 + 1) === 2^53: a double-only check would call it aligned
    invalid(s.insert(GpuVa.make({ addr: T53 + 1n, range: 2n, obj: a, offset: 0n })), /aligned/)
    invalid(s.insert(GpuVa.make({ addr: T53, range: 2n, obj: a, offset: T53 + 1n })), /aligned/)
    // ends one unit past the space only in exact arithmetic
    invalid(SplitMerge.smMapOps(s, { addr: T53 + 0xfen, range: 4n, obj: a, offset: 0n }), /outside/)
    Result.getOrThrow(s.insert(GpuVa.make({ addr: T53 - 2n, range: 4n, obj: a, offset: 0n })))
    assert.deepStrictEqual(s.check(), [])
  })

  it("keep compares translations exactly above 2^52", () => {
    const s = VaSpace.makeUnsafe({ start: (1n << 52n) - 0x1000n, range: 0x2000n })
    const A = { addr: (1n << 52n) - 4n, range: 8n, obj: a, offset: T53 + 1n }
    Result.getOrThrow(s.insert(GpuVa.make(A)))
    const keepOf = (offset: bigint) => {
      const [op] = Result.getOrThrow(SplitMerge.smMapOps(s, { addr: A.addr + 2n, range: 2n, obj: a, offset }))
      return op?._tag === "Remap" ? op.unmap.keep : undefined
    }
    // 2^53 + 3 and 2^53 + 4 are the same double; only + 3 is the same translation
    assert.strictEqual(keepOf(T53 + 3n), true)
    assert.strictEqual(keepOf(T53 + 4n), false)
    assert.strictEqual(keepOf(T53 + 2n), false)
    // just below 2^52 on both sides the fast path decides
    const B = { addr: (1n << 52n) - 0x100n, range: 4n, obj: b, offset: (1n << 52n) - 0x11n }
    Result.getOrThrow(s.insert(GpuVa.make(B)))
    const [op] = Result.getOrThrow(
      SplitMerge.smMapOps(s, { addr: B.addr + 1n, range: 1n, obj: b, offset: B.offset + 1n })
    )
    assert(op?._tag === "Remap" && op.unmap.keep)
    assert.strictEqual(op.next?.offset, B.offset + 2n)
  })
})

describe("README example", () => {
  it("maps, punches a hole, prints the tree", async () => {
    const bo: GpuVa.GemObject = { name: "bo", size: 1n << 20n }
    const lines = await Effect.runPromise(
      Effect.gen(function* () {
        const vm = yield* Effect.fromResult(
          VaSpace.make({ start: 0n, range: 1n << 32n, reserveOffset: 0n, reserveRange: 0x10000n, pageSize: 0x1000n })
        )
        const req = { addr: 0x100000n, range: 0x10000n, obj: bo, offset: 0n }
        Ops.applyAll(vm, yield* Effect.fromResult(SplitMerge.smMapOps(vm, req)))
        const unmap = yield* Effect.fromResult(SplitMerge.smUnmapOps(vm, 0x104000n, 0x4000n))
        const [remap] = unmap
        assert(remap?._tag === "Remap")
        assert.deepStrictEqual(Ops.remapToUnmapRange(remap), { addr: 0x104000n, range: 0x4000n })
        Ops.applyAll(vm, unmap)
        return [...vm].map(GpuVa.format)
      })
    )
    assert.deepStrictEqual(lines, [
      "[0x0, 0x10000) -+0x0",
      "[0x100000, 0x104000) bo+0x0",
      "[0x108000, 0x110000) bo+0x8000"
    ])
  })
})
