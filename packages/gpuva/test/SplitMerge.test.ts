import { GpuVa, Ops, SplitMerge } from "@drmkit/gpuva"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import { a, b, c, m, show, spaceWith, tree } from "./vaFixtures.ts"

const n = 10
const mm = 50
type Ma = GpuVa.MapArgs

interface Case {
  readonly id: string
  readonly existing: ReadonlyArray<Ma>
  readonly req: Ma
  readonly ops: ReadonlyArray<string>
  readonly result: ReadonlyArray<string>
}

// drm_gpuvm.c "DOC: Split and Merge" cases 1-15 as the code behaves (reference §2.1, errata applied).
const mapCases: ReadonlyArray<Case> = [
  {
    id: "1 identical",
    existing: [m(0, 1, a, n)],
    req: m(0, 1, a, n),
    ops: ["UNMAP((0,1,a,10),T)", "MAP(0,1,a,10)"],
    result: ["(0,1,a,10)"]
  },
  {
    id: "2 other offset",
    existing: [m(0, 1, a, n)],
    req: m(0, 1, a, mm),
    ops: ["UNMAP((0,1,a,10),F)", "MAP(0,1,a,50)"],
    result: ["(0,1,a,50)"]
  },
  {
    id: "3 other object",
    existing: [m(0, 1, a, n)],
    req: m(0, 1, b, n),
    ops: ["UNMAP((0,1,a,10),F)", "MAP(0,1,b,10)"],
    result: ["(0,1,b,10)"]
  },
  {
    id: "4 left-aligned subset of req",
    existing: [m(0, 1, a, n)],
    req: m(0, 2, a, n),
    ops: ["UNMAP((0,1,a,10),T)", "MAP(0,2,a,10)"],
    result: ["(0,2,a,10)"]
  },
  {
    id: "4' other object",
    existing: [m(0, 1, a, n)],
    req: m(0, 2, b, n),
    ops: ["UNMAP((0,1,a,10),F)", "MAP(0,2,b,10)"],
    result: ["(0,2,b,10)"]
  },
  {
    id: "4' other offset",
    existing: [m(0, 1, a, n)],
    req: m(0, 2, a, mm),
    ops: ["UNMAP((0,1,a,10),F)", "MAP(0,2,a,50)"],
    result: ["(0,2,a,50)"]
  },
  {
    id: "5 req left-aligned, other object",
    existing: [m(0, 2, a, n)],
    req: m(0, 1, b, n),
    ops: ["REMAP(-,(1,1,a,11),(0,2,a,10),F)", "MAP(0,1,b,10)"],
    result: ["(0,1,b,10)", "(1,1,a,11)"]
  },
  {
    id: "6 req left-aligned, same translation",
    existing: [m(0, 2, a, n)],
    req: m(0, 1, a, n),
    ops: ["REMAP(-,(1,1,a,11),(0,2,a,10),T)", "MAP(0,1,a,10)"],
    result: ["(0,1,a,10)", "(1,1,a,11)"]
  },
  {
    id: "7 req right-aligned, other object",
    existing: [m(0, 2, a, n)],
    req: m(1, 1, b, mm),
    ops: ["REMAP((0,1,a,10),-,(0,2,a,10),F)", "MAP(1,1,b,50)"],
    result: ["(0,1,a,10)", "(1,1,b,50)"]
  },
  {
    id: "8 req right-aligned, same translation",
    existing: [m(0, 2, a, n)],
    req: m(1, 1, a, n + 1),
    ops: ["REMAP((0,1,a,10),-,(0,2,a,10),T)", "MAP(1,1,a,11)"],
    result: ["(0,1,a,10)", "(1,1,a,11)"]
  },
  {
    id: "9 overlapped at the end, other object",
    existing: [m(0, 2, a, n)],
    req: m(1, 2, b, mm),
    ops: ["REMAP((0,1,a,10),-,(0,2,a,10),F)", "MAP(1,2,b,50)"],
    result: ["(0,1,a,10)", "(1,2,b,50)"]
  },
  {
    id: "10 overlapped at the end, contiguous",
    existing: [m(0, 2, a, n)],
    req: m(1, 2, a, n + 1),
    ops: ["REMAP((0,1,a,10),-,(0,2,a,10),T)", "MAP(1,2,a,11)"],
    result: ["(0,1,a,10)", "(1,2,a,11)"]
  },
  {
    id: "11 centred, other object",
    existing: [m(0, 3, a, n)],
    req: m(1, 1, b, mm),
    ops: ["REMAP((0,1,a,10),(2,1,a,12),(0,3,a,10),F)", "MAP(1,1,b,50)"],
    result: ["(0,1,a,10)", "(1,1,b,50)", "(2,1,a,12)"]
  },
  {
    id: "12 centred, contiguous",
    existing: [m(0, 3, a, n)],
    req: m(1, 1, a, n + 1),
    ops: ["REMAP((0,1,a,10),(2,1,a,12),(0,3,a,10),T)", "MAP(1,1,a,11)"],
    result: ["(0,1,a,10)", "(1,1,a,11)", "(2,1,a,12)"]
  },
  {
    id: "13 right-aligned subset of req",
    existing: [m(1, 1, a, n + 1)],
    req: m(0, 2, a, n),
    ops: ["UNMAP((1,1,a,11),T)", "MAP(0,2,a,10)"],
    result: ["(0,2,a,10)"]
  },
  {
    id: "13' other object",
    existing: [m(1, 1, a, n + 1)],
    req: m(0, 2, b, n),
    ops: ["UNMAP((1,1,a,11),F)", "MAP(0,2,b,10)"],
    result: ["(0,2,b,10)"]
  },
  {
    id: "13' other offset",
    existing: [m(1, 1, a, n + 1)],
    req: m(0, 2, a, mm),
    ops: ["UNMAP((1,1,a,11),F)", "MAP(0,2,a,50)"],
    result: ["(0,2,a,50)"]
  },
  {
    id: "14 centred subset of req",
    existing: [m(1, 1, a, n + 1)],
    req: m(0, 3, a, n),
    ops: ["UNMAP((1,1,a,11),T)", "MAP(0,3,a,10)"],
    result: ["(0,3,a,10)"]
  },
  {
    id: "14' other object",
    existing: [m(1, 1, a, n + 1)],
    req: m(0, 3, b, n),
    ops: ["UNMAP((1,1,a,11),F)", "MAP(0,3,b,10)"],
    result: ["(0,3,b,10)"]
  },
  {
    id: "15 overlapped at the start, other object",
    existing: [m(1, 2, a, n)],
    req: m(0, 2, b, mm),
    ops: ["REMAP(-,(2,1,a,11),(1,2,a,10),F)", "MAP(0,2,b,50)"],
    result: ["(0,2,b,50)", "(2,1,a,11)"]
  },
  {
    id: "15' overlapped at the start, contiguous",
    existing: [m(1, 2, a, n)],
    req: m(0, 2, a, n - 1),
    ops: ["REMAP(-,(2,1,a,11),(1,2,a,10),T)", "MAP(0,2,a,9)"],
    result: ["(0,2,a,9)", "(2,1,a,11)"]
  },
  // edge cases
  {
    id: "touching neighbours are not visited",
    existing: [m(0, 2, a, n), m(4, 2, b, mm)],
    req: m(2, 2, c, 0),
    ops: ["MAP(2,2,c,0)"],
    result: ["(0,2,a,10)", "(2,2,c,0)", "(4,2,b,50)"]
  },
  { id: "hole: plain map", existing: [], req: m(5, 3, a, 0), ops: ["MAP(5,3,a,0)"], result: ["(5,3,a,0)"] },
  {
    id: "covering many VAs",
    existing: [m(0, 2, a, n), m(3, 1, b, mm), m(4, 1, c, 7), m(5, 3, c, 0)],
    req: m(1, 6, b, 0),
    ops: [
      "REMAP((0,1,a,10),-,(0,2,a,10),F)",
      "UNMAP((3,1,b,50),F)",
      "UNMAP((4,1,c,7),F)",
      "REMAP(-,(7,1,c,2),(5,3,c,0),F)",
      "MAP(1,6,b,0)"
    ],
    result: ["(0,1,a,10)", "(1,6,b,0)", "(7,1,c,2)"]
  },
  {
    id: "covering many, keep only where translation matches",
    existing: [m(0, 2, a, 0), m(2, 2, a, 2), m(4, 2, a, 99)],
    req: m(1, 4, a, 1),
    ops: ["REMAP((0,1,a,0),-,(0,2,a,0),T)", "UNMAP((2,2,a,2),T)", "REMAP(-,(5,1,a,100),(4,2,a,99),F)", "MAP(1,4,a,1)"],
    result: ["(0,1,a,0)", "(1,4,a,1)", "(5,1,a,100)"]
  },
  {
    id: "NULL: identical re-map never keeps",
    existing: [m(0, 2, null, 0)],
    req: m(0, 2, null, 0),
    ops: ["UNMAP((0,2,-,0),F)", "MAP(0,2,-,0)"],
    result: ["(0,2,-,0)"]
  },
  {
    id: "NULL: split carries offsets",
    existing: [m(0, 4, null, 100)],
    req: m(1, 2, null, 101),
    ops: ["REMAP((0,1,-,100),(3,1,-,103),(0,4,-,100),F)", "MAP(1,2,-,101)"],
    result: ["(0,1,-,100)", "(1,2,-,101)", "(3,1,-,103)"]
  },
  {
    id: "NULL over object-backed",
    existing: [m(0, 4, a, 0)],
    req: m(0, 4, null, 0),
    ops: ["UNMAP((0,4,a,0),F)", "MAP(0,4,-,0)"],
    result: ["(0,4,-,0)"]
  }
]

const unmapCases: ReadonlyArray<Omit<Case, "req"> & { readonly range: readonly [number, number] }> = [
  { id: "U1 whole", existing: [m(0, 2, a, n)], range: [0, 2], ops: ["UNMAP((0,2,a,10),F)"], result: [] },
  {
    id: "U2 front",
    existing: [m(0, 2, a, n)],
    range: [0, 1],
    ops: ["REMAP(-,(1,1,a,11),(0,2,a,10),F)"],
    result: ["(1,1,a,11)"]
  },
  {
    id: "U3 back",
    existing: [m(0, 2, a, n)],
    range: [1, 1],
    ops: ["REMAP((0,1,a,10),-,(0,2,a,10),F)"],
    result: ["(0,1,a,10)"]
  },
  {
    id: "U4 middle",
    existing: [m(0, 3, a, n)],
    range: [1, 1],
    ops: ["REMAP((0,1,a,10),(2,1,a,12),(0,3,a,10),F)"],
    result: ["(0,1,a,10)", "(2,1,a,12)"]
  },
  {
    id: "U5 across two",
    existing: [m(0, 2, a, n), m(2, 2, b, mm)],
    range: [1, 2],
    ops: ["REMAP((0,1,a,10),-,(0,2,a,10),F)", "REMAP(-,(3,1,b,51),(2,2,b,50),F)"],
    result: ["(0,1,a,10)", "(3,1,b,51)"]
  },
  {
    id: "U6 many whole",
    existing: [m(2, 2, a, 0), m(5, 1, b, 0)],
    range: [0, 10],
    ops: ["UNMAP((2,2,a,0),F)", "UNMAP((5,1,b,0),F)"],
    result: []
  },
  { id: "U7 nothing there", existing: [m(0, 2, a, 0)], range: [4, 2], ops: [], result: ["(0,2,a,0)"] },
  {
    id: "touching is not visited",
    existing: [m(0, 2, a, 0), m(4, 2, b, 0)],
    range: [2, 2],
    ops: [],
    result: ["(0,2,a,0)", "(4,2,b,0)"]
  }
]

describe("sm_map: kernel-doc cases and edge cases", () => {
  for (const k of mapCases) {
    it(k.id, () => {
      const space = spaceWith(k.existing)
      const ops = Result.getOrThrow(SplitMerge.smMapOps(space, k.req))
      assert.deepStrictEqual(ops.map(show), [...k.ops])
      assert.deepStrictEqual(
        tree(space),
        k.existing.map((e) => `(${e.addr},${e.range},${e.obj?.name ?? "-"},${e.offset})`),
        "generator must not modify the tree"
      )
      Ops.applyAll(space, ops)
      assert.deepStrictEqual(tree(space), [...k.result])
      assert.deepStrictEqual(space.check(), [])
    })
  }
})

describe("sm_unmap: cases U1-U7", () => {
  for (const k of unmapCases) {
    it(k.id, () => {
      const space = spaceWith(k.existing)
      const ops = Result.getOrThrow(SplitMerge.smUnmapOps(space, BigInt(k.range[0]), BigInt(k.range[1])))
      assert.deepStrictEqual(ops.map(show), [...k.ops])
      Ops.applyAll(space, ops)
      assert.deepStrictEqual(tree(space), [...k.result])
      assert.deepStrictEqual(space.check(), [])
    })
  }
})

describe("callback mode", () => {
  it("sees the same steps as list mode and may apply each step at once", () => {
    for (const k of mapCases) {
      const listed = spaceWith(k.existing)
      const expected = Result.getOrThrow(SplitMerge.smMapOps(listed, k.req)).map(show)
      const space = spaceWith(k.existing)
      const seen: Array<string> = []
      const r = SplitMerge.smMap(space, k.req, {
        onMap: (op) => {
          seen.push(show(op))
          Ops.map(space, op)
          return undefined
        },
        onRemap: (op) => {
          seen.push(show(op))
          Ops.remap(space, op)
          return undefined
        },
        onUnmap: (op) => {
          seen.push(show(op))
          Ops.unmap(space, op)
          return undefined
        }
      })
      assert.isTrue(Result.isSuccess(r))
      assert.deepStrictEqual(seen, expected, k.id)
      assert.deepStrictEqual(tree(space), [...k.result], k.id)
    }
  })

  it("a callback error stops the walk and is returned", () => {
    const space = spaceWith([m(0, 2, a, 0), m(2, 2, b, 0), m(4, 2, c, 0)])
    const seen: Array<string> = []
    const r = SplitMerge.smUnmap(space, 0n, 6n, {
      onRemap: () => "unexpected",
      onUnmap: (op) => {
        seen.push(show(op))
        return op.va.obj === b ? "ENOMEM" : undefined
      }
    })
    assert.deepStrictEqual(r, Result.fail("ENOMEM"))
    assert.deepStrictEqual(seen, ["UNMAP((0,2,a,0),F)", "UNMAP((2,2,b,0),F)"])
  })
})

describe("op helpers", () => {
  it("remapToUnmapRange is the hole a remap leaves", () => {
    const space = spaceWith([m(0, 10, a, 0)])
    const [r] = Result.getOrThrow(SplitMerge.smMapOps(space, m(3, 4, b, 0)))
    assert(r?._tag === "Remap")
    assert.deepStrictEqual(Ops.remapToUnmapRange(r), { addr: 3n, range: 4n })
    const [front] = Result.getOrThrow(SplitMerge.smUnmapOps(space, 0n, 4n))
    assert(front?._tag === "Remap")
    assert.deepStrictEqual(Ops.remapToUnmapRange(front), { addr: 0n, range: 4n })
  })

  it("pre-allocated VA structs are used by map and remap", () => {
    const space = spaceWith([m(0, 10, a, 0)])
    const [r, mapOp] = Result.getOrThrow(SplitMerge.smMapOps(space, m(3, 4, b, 0)))
    assert(r?._tag === "Remap" && mapOp?._tag === "Map")
    const pre = [GpuVa.alloc(), GpuVa.alloc(), GpuVa.alloc()] as const
    const got = Ops.remap(space, r, pre[0], pre[1])
    assert.strictEqual(got.prev, pre[0])
    assert.strictEqual(got.next, pre[1])
    assert.strictEqual(Ops.map(space, mapOp, pre[2]), pre[2])
    assert.deepStrictEqual(tree(space), ["(0,3,a,0)", "(3,4,b,0)", "(7,3,a,7)"])
  })

  it("applying a stale op list dies", () => {
    const space = spaceWith([m(0, 4, a, 0)])
    const ops = Result.getOrThrow(SplitMerge.smUnmapOps(space, 0n, 4n))
    Ops.applyAll(space, ops)
    assert.throws(() => Ops.applyAll(space, ops), /stale/)
    const maps = Result.getOrThrow(SplitMerge.smMapOps(space, m(0, 2, b, 0)))
    Ops.applyAll(space, maps)
    assert.throws(
      () =>
        Ops.applyAll(
          space,
          maps.filter((o) => o._tag === "Map")
        ),
      /stale/
    )
  })

  it("objectsTouched collects what sm_map_exec_lock would lock", () => {
    const space = spaceWith([m(0, 2, a, 0), m(2, 2, null, 0), m(4, 2, b, 0), m(6, 2, a, 6)])
    const req = m(1, 6, c, 0)
    const objs = SplitMerge.objectsTouched(SplitMerge.mapSteps(space, req), req)
    assert.deepStrictEqual(
      objs.map((o) => o.name),
      ["c", "a", "b"]
    )
  })
})

describe("madvise mode (drm_gpuvm_madvise_ops_create)", () => {
  const cases: ReadonlyArray<Case> = [
    {
      id: "request inside one NULL VA",
      existing: [m(0, 10, null, 0)],
      req: m(2, 3, null, 0),
      ops: ["REMAP((0,2,-,0),(5,5,-,5),(0,10,-,0),F)", "MAP(2,3,-,0)"],
      result: ["(0,2,-,0)", "(2,3,-,0)", "(5,5,-,5)"]
    },
    {
      id: "spanning VA1..VA3, both ends inside",
      existing: [m(0, 4, null, 0), m(4, 2, null, 0), m(6, 4, null, 0)],
      req: m(2, 6, null, 0),
      ops: ["REMAP((0,2,-,0),-,(0,4,-,0),F)", "MAP(2,2,-,0)", "REMAP(-,(8,2,-,2),(6,4,-,0),F)", "MAP(6,2,-,0)"],
      result: ["(0,2,-,0)", "(2,2,-,0)", "(4,2,-,0)", "(6,2,-,0)", "(8,2,-,2)"]
    },
    {
      id: "only the start inside",
      existing: [m(0, 4, null, 0), m(4, 4, null, 0)],
      req: m(2, 6, null, 0),
      ops: ["REMAP((0,2,-,0),-,(0,4,-,0),F)", "MAP(2,2,-,0)"],
      result: ["(0,2,-,0)", "(2,2,-,0)", "(4,4,-,0)"]
    },
    {
      id: "only the end inside",
      existing: [m(0, 4, null, 0), m(4, 4, null, 0)],
      req: m(0, 6, null, 0),
      ops: ["REMAP(-,(6,2,-,2),(4,4,-,0),F)", "MAP(4,2,-,0)"],
      result: ["(0,4,-,0)", "(4,2,-,0)", "(6,2,-,2)"]
    },
    {
      id: "left-aligned inside one VA: the request",
      existing: [m(0, 8, null, 0)],
      req: m(0, 2, null, 0),
      ops: ["REMAP(-,(2,6,-,2),(0,8,-,0),F)", "MAP(0,2,-,0)"],
      result: ["(0,2,-,0)", "(2,6,-,2)"]
    },
    {
      id: "both ends on boundaries: nothing",
      existing: [m(0, 4, null, 0), m(4, 4, null, 0)],
      req: m(0, 8, null, 0),
      ops: [],
      result: ["(0,4,-,0)", "(4,4,-,0)"]
    },
    {
      id: "object-backed VAs are skipped",
      existing: [m(0, 4, a, 0), m(4, 4, null, 0)],
      req: m(2, 4, null, 0),
      ops: ["REMAP(-,(6,2,-,2),(4,4,-,0),F)", "MAP(4,2,-,0)"],
      result: ["(0,4,a,0)", "(4,2,-,0)", "(6,2,-,2)"]
    },
    { id: "no VAs: nothing", existing: [], req: m(2, 4, null, 0), ops: [], result: [] }
  ]
  for (const k of cases) {
    it(k.id, () => {
      const space = spaceWith(k.existing)
      const ops = Result.getOrThrow(SplitMerge.madviseOps(space, k.req))
      assert.deepStrictEqual(ops.map(show), [...k.ops])
      Ops.applyAll(space, ops)
      assert.deepStrictEqual(tree(space), [...k.result])
    })
  }
})

describe("more helpers", () => {
  it("effectful callbacks see the same steps; a failure stops the walk", async () => {
    const space = spaceWith([m(0, 4, a, 0), m(4, 4, b, 0), m(8, 4, c, 0)])
    const req = m(2, 8, null, 0)
    const expected = Result.getOrThrow(SplitMerge.smMapOps(space, req)).map(show)
    const seen: Array<string> = []
    const log = (op: Ops.Op) => Effect.sync(() => void seen.push(show(op)))
    await Effect.runPromise(SplitMerge.smMapEffect(space, req, { onMap: log, onRemap: log, onUnmap: log }))
    assert.deepStrictEqual(seen, expected)
    seen.length = 0
    const failing = (op: Ops.Op) => (op._tag === "Unmap" ? Effect.fail("EBUSY" as const) : log(op))
    const err = await Effect.runPromise(
      Effect.flip(SplitMerge.smUnmapEffect(space, 2n, 8n, { onRemap: failing, onUnmap: failing }))
    )
    assert.strictEqual(err, "EBUSY")
    assert.deepStrictEqual(seen, ["REMAP((0,2,a,0),-,(0,4,a,0),F)"])
    assert.deepStrictEqual(tree(space), ["(0,4,a,0)", "(4,4,b,0)", "(8,4,c,0)"])
  })

  it("prefetch: whole VAs in address order, no splitting, holes skipped", () => {
    const space = spaceWith([m(0, 4, a, 0), m(6, 2, null, 0), m(10, 4, b, 0)])
    const ops = Result.getOrThrow(Ops.prefetchOps(space, 2n, 10n))
    assert.deepStrictEqual(ops.map(show), ["PREFETCH(0,4,a,0)", "PREFETCH(6,2,-,0)", "PREFETCH(10,4,b,0)"])
    Ops.applyAll(space, ops)
    assert.deepStrictEqual(tree(space), ["(0,4,a,0)", "(6,2,-,0)", "(10,4,b,0)"])
    assert(Result.isFailure(Ops.prefetchOps(space, 0n, 0n)))
  })

  it("apply helpers copy only the mapping fields (flags and priv are the driver's)", () => {
    const space = spaceWith([m(0, 4, a, 0)])
    const [old] = [...space]
    assert(old !== undefined)
    old.flags = GpuVa.Flags.Sparse | GpuVa.Flags.UserBits
    old.priv = "driver data"
    const [r] = Result.getOrThrow(SplitMerge.smUnmapOps(space, 1n, 2n))
    assert(r?._tag === "Remap")
    const { prev, next } = Ops.remap(space, r)
    assert.strictEqual(prev?.flags, 0)
    assert.strictEqual(next?.priv, undefined)
    assert.isFalse(old.inserted)
    assert.deepStrictEqual(tree(space), ["(0,1,a,0)", "(3,1,a,3)"])
    assert.deepStrictEqual(
      space.vasOf(a).map((v) => v.addr),
      [0n, 3n]
    )
  })
})
