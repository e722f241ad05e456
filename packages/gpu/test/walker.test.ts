/**
 * WGSL page-table walker on the device (llvmpipe in CI): random plans give the same arena memory
 * word for word as the CPU reference, GPU translate agrees with the CPU walk, huge-leaf and
 * table-boundary cases, the largest batch that fits one dispatch and the first that splits, and
 * bad requests rejected with nothing submitted.
 */

import { CpuPageTables, Descriptor, GpuDevice, GpuPageTables, PageTable, Pte } from "@drmkit/gpu"
import { assert, layer } from "@effect/vitest"
import { Effect, Schema } from "effect"
import fc from "fast-check"
import { genOp, samplePages, vasFor, WINDOW } from "./gen.ts"
import { DeviceLayer, gpu, rng } from "./helpers.ts"

const G = 262144
const M = 512
const TABLES = 2048

const sameWords = (a: Uint32Array, b: Uint32Array, what: string) => {
  assert.strictEqual(a.length, b.length, `${what}: length`)
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i])
      assert.fail(`${what}: word ${i} (table ${i >> 10}, entry ${(i & 1023) >> 1}) GPU ${a[i]} CPU ${b[i]}`)
  }
}

layer(DeviceLayer)("GPU walker", (it) => {
  for (const levels of [4, 5] as const) {
    it.effect.prop(
      `random plans: GPU == CPU word for word, translations agree (${levels} levels, property)`,
      [Schema.Int],
      ([seed]) =>
        Effect.gen(function* () {
          const g = yield* gpu
          const r = rng(seed * 7919 + levels)
          const shadow = new PageTable.PageTableShadow({
            levels,
            tables: TABLES,
            ...(seed % 2 === 0 ? { scratchFrame: 99 } : {})
          })
          const cpu = new CpuPageTables.CpuPageTables(TABLES)
          const pt = yield* GpuPageTables.make(g, TABLES)
          const sample: Array<number> = []
          for (let k = 0; k < 8; k++) {
            const ops = Array.from({ length: 1 + Math.floor(r() * 3) }, () => genOp(r, levels))
            const planned = shadow.planBatch(ops.map((o) => o.op))
            // a batch the arena cannot hold is NoSpace and rolled back: nothing to run (rare seeds)
            if ("_tag" in planned && planned._tag === "NoSpace") continue
            const plan = PageTable.orThrow(planned)
            const before = g.submitted()
            const fence = yield* GpuPageTables.apply(pt, plan)
            assert.strictEqual(g.submitted(), before + 1, "one submission per plan")
            assert.isUndefined(cpu.apply(plan))
            yield* GpuDevice.awaitFence(fence)
            assert.isTrue(fence.isSignaled)
            shadow.retire(plan)
            for (const o of ops) sample.push(...samplePages(o, r, 40))
          }
          sameWords(yield* GpuPageTables.read(pt), cpu.memory, `seed ${seed}`)
          const vas = vasFor(levels, sample, r)
          sameWords(yield* GpuPageTables.translate(pt, 0, levels, vas), cpu.translate(0, levels, vas), "translate")
        }).pipe(Effect.scoped),
      { arbitrary: { runs: 4, maxShrinks: 6 } }
    )
  }

  it.effect("an arena split over several storage buffers (segments) behaves the same", () =>
    Effect.gen(function* () {
      const g = yield* gpu
      const tables = 40
      const pt = yield* GpuPageTables.make(g, tables, { tablesPerSegment: 11 })
      assert.strictEqual(pt.segments.length, 4)
      const shadow = new PageTable.PageTableShadow({ levels: 4, tables })
      const cpu = new CpuPageTables.CpuPageTables(tables)
      const r = rng(31)
      const sample: Array<number> = []
      for (let k = 0; k < 12; k++) {
        const start = Math.floor(r() * 8000)
        const pages = 1 + Math.floor(r() * 1500)
        const op: PageTable.Op =
          r() < 0.7
            ? {
                _tag: "Map",
                va: BigInt(start) * 4096n,
                size: BigInt(pages) * 4096n,
                backing: { _tag: "Contiguous", baseFrame: 1 + Math.floor(r() * 1e6) }
              }
            : { _tag: "Unmap", va: BigInt(start) * 4096n, size: BigInt(pages) * 4096n }
        const plan = PageTable.orThrow(shadow.planBatch([op]))
        cpu.apply(plan)
        yield* GpuPageTables.applyAndWait(pt, plan)
        shadow.retire(plan)
        for (let i = 0; i < 64; i++) sample.push(start + Math.floor(r() * pages))
      }
      sameWords(yield* GpuPageTables.read(pt), cpu.memory, "segments")
      const vas = new Uint32Array(sample.flatMap((p) => [p * 4096 + 8, 0]))
      sameWords(yield* GpuPageTables.translate(pt, 0, 4, vas), cpu.translate(0, 4, vas), "segments translate")
      assert.isTrue(shadow.tablesInUse > 11, "tables spread over more than one segment")
    })
  )

  it.effect("huge leaves at 2M and 1G boundaries translate exactly on the GPU", () =>
    Effect.gen(function* () {
      const g = yield* gpu
      const shadow = new PageTable.PageTableShadow({ levels: 4, tables: 64 })
      const cpu = new CpuPageTables.CpuPageTables(64)
      const pt = yield* GpuPageTables.make(g, 64)
      const plans = [
        shadow.map(BigInt(G - M) * 4096n, BigInt(M) * 4096n, { _tag: "Contiguous", baseFrame: 3 * M }),
        shadow.map(BigInt(G) * 4096n, BigInt(G) * 4096n, { _tag: "Contiguous", baseFrame: 4 * G }),
        shadow.map(BigInt(2 * G) * 4096n, BigInt(M + 1) * 4096n, { _tag: "Contiguous", baseFrame: 7 * G })
      ].map(PageTable.orThrow)
      for (const p of plans) {
        cpu.apply(p)
        yield* GpuPageTables.applyAndWait(pt, p)
      }
      const bytes = [
        G * 4096 - M * 4096 - 1,
        G * 4096 - M * 4096,
        G * 4096 - 1,
        G * 4096,
        2 * G * 4096 - 1,
        2 * G * 4096,
        2 * G * 4096 + (M + 1) * 4096 - 1,
        2 * G * 4096 + (M + 1) * 4096
      ]
      const vas = new Uint32Array(bytes.flatMap((b) => [...Pte.splitU64(BigInt(b))]))
      const got = yield* GpuPageTables.translate(pt, 0, 4, vas)
      sameWords(got, cpu.translate(0, 4, vas), "boundaries")
      const want = [
        null,
        3 * M * 4096,
        (4 * M - 1) * 4096 + 4095,
        4 * G * 4096,
        5 * G * 4096 - 1,
        7 * G * 4096,
        (7 * G + M + 1) * 4096 - 1,
        null
      ]
      want.forEach((w, i) => {
        if (w === null) assert.strictEqual(got[2 * i + 1], Pte.FAULT)
        else assert.strictEqual(Pte.joinNumber(got[2 * i] as number, got[2 * i + 1] as number), w)
      })
      sameWords(yield* GpuPageTables.read(pt), cpu.memory, "memory")
    })
  )

  it.effect("invalidate crossing table boundaries: one descriptor per table, scratch values", () =>
    Effect.gen(function* () {
      const g = yield* gpu
      const pt = yield* GpuPageTables.make(g, 8)
      const cpu = new CpuPageTables.CpuPageTables(8)
      yield* GpuPageTables.invalidate(pt, 1, 500, 1100, 42, Pte.PteBits.PRESENT | Pte.PteBits.LEAF).pipe(
        Effect.flatMap(GpuDevice.awaitFence)
      )
      cpu.applyDescriptors([
        Descriptor.fill(1, 500, 12, 42, 5),
        Descriptor.fill(2, 0, 512, 42, 5),
        Descriptor.fill(3, 0, 512, 42, 5),
        Descriptor.fill(4, 0, 64, 42, 5)
      ])
      sameWords(yield* GpuPageTables.read(pt), cpu.memory, "invalidate")
    })
  )

  it.effect("largest batch that fits one dispatch, and the first that must split", () =>
    Effect.gen(function* () {
      const g = yield* gpu
      const max = GpuPageTables.limitsOf(g).maxDescriptorsPerDispatch
      const tables = Math.ceil((max + 1) / 512) + 1
      const pt = yield* GpuPageTables.make(g, tables)
      const cpu = new CpuPageTables.CpuPageTables(tables)
      const mk = (n: number, salt: number) =>
        Array.from({ length: n }, (_, i) => Descriptor.generator(i >> 9, i & 511, 1, i * 3 + salt, 0, 0x7))
      const fits = mk(max, 1)
      const splits = mk(max + 1, 2)
      assert.strictEqual(GpuPageTables.dispatchCount(pt, fits), 1)
      assert.strictEqual(GpuPageTables.dispatchCount(pt, splits), 2)
      for (const batch of [fits, splits]) {
        const before = g.submitted()
        yield* GpuPageTables.applyDescriptors(pt, batch).pipe(Effect.flatMap(GpuDevice.awaitFence))
        assert.strictEqual(g.submitted(), before + 1)
        cpu.applyDescriptors(batch)
        sameWords(yield* GpuPageTables.read(pt), cpu.memory, `batch ${batch.length}`)
      }
    })
  )

  it.effect("ordered descriptors: a later overlapping descriptor wins (separate dispatch)", () =>
    Effect.gen(function* () {
      const g = yield* gpu
      const pt = yield* GpuPageTables.make(g, 2)
      const cpu = new CpuPageTables.CpuPageTables(2)
      const descs = [
        Descriptor.generator(0, 0, 512, 100, 1, 3),
        Descriptor.literal(0, 10, new Uint32Array([0xdead0001, 1, 0xbeef0001, 2])),
        Descriptor.fill(0, 11, 5, 0, 0)
      ]
      assert.strictEqual(GpuPageTables.dispatchCount(pt, descs), 3)
      yield* GpuPageTables.applyDescriptors(pt, descs).pipe(Effect.flatMap(GpuDevice.awaitFence))
      cpu.applyDescriptors(descs)
      sameWords(yield* GpuPageTables.read(pt), cpu.memory, "ordered")
      assert.strictEqual(cpu.memory[20], 0xdead0001)
      assert.strictEqual(cpu.memory[22], 0)
    })
  )

  it.effect("literal runs written straight into the arena: coalesced, segment-bounded, ordered like the CPU", () =>
    Effect.gen(function* () {
      const g = yield* gpu
      const tables = 12
      const pt = yield* GpuPageTables.make(g, tables, { tablesPerSegment: 5 })
      const cpu = new CpuPageTables.CpuPageTables(tables)
      const r = rng(5)
      const words = (n: number) => Uint32Array.from({ length: 2 * n }, () => (r() * 2 ** 32) >>> 0)
      const one = words(512 * 4)
      const descs = [
        // tables 1..4 from views of one array: one queue write up to the segment end (table 4), then a second
        ...[1, 2, 3, 4].map((t, k) => Descriptor.literal(t, 0, one.subarray(k * 1024, (k + 1) * 1024))),
        // separate arrays, contiguous in table memory (table 5 entries 100..299): packed into one write
        Descriptor.literal(5, 100, words(100)),
        Descriptor.literal(5, 200, words(100)),
        // a later generator overlapping a direct literal still wins (kernel runs after the queue writes)
        Descriptor.generator(2, 10, 20, 777, 1, 3),
        // overlapped by the generator above: must stay in the kernel, after it
        Descriptor.literal(2, 0, words(64)),
        // too short for a queue write
        Descriptor.literal(7, 3, words(5)),
        Descriptor.literal(8, 0, words(300))
      ]
      const job = yield* GpuPageTables.prepare(pt, descs)
      assert.strictEqual(job.writes, 3, "tables 1..4 (segment 0: 1..4), table 5 run, table 8")
      yield* job.submit.pipe(Effect.flatMap(GpuDevice.awaitFence))
      assert.isUndefined(cpu.applyDescriptors(descs))
      sameWords(yield* GpuPageTables.read(pt), cpu.memory, "direct literals")
      // the generator's entries survive the direct write of table 2, the later literal wins over both
      assert.strictEqual(cpu.memory[2 * 1024 + 2 * 70], one[1024 + 2 * 70])
      assert.strictEqual(cpu.memory[2 * 1024], descs[7]?.source._tag === "Literal" ? descs[7].source.values[0] : -1)
      // a run crossing a segment boundary is cut there
      const cross = [Descriptor.literal(4, 0, words(512)), Descriptor.literal(5, 0, words(512))]
      const j2 = yield* GpuPageTables.prepare(pt, cross)
      assert.strictEqual(j2.writes, 2)
      assert.strictEqual(j2.dispatches, 0)
      yield* j2.submit.pipe(Effect.flatMap(GpuDevice.awaitFence))
      cpu.applyDescriptors(cross)
      sameWords(yield* GpuPageTables.read(pt), cpu.memory, "segment boundary")
    })
  )

  for (const software of [true, false]) {
    const layout = software ? "blocked (CPU rasteriser)" : "strided (GPU)"
    it.effect(`random raw descriptor lists (overlapping, literal + generator), ${layout} kernel: GPU == CPU`, () =>
      Effect.gen(function* () {
        const g0 = yield* gpu
        const g = { ...g0, adapter: { ...g0.adapter, software } }
        const tables = 16
        const pt = yield* GpuPageTables.make(g, tables)
        const cpu = new CpuPageTables.CpuPageTables(tables)
        const arb = fc.array(
          fc.record({
            table: fc.nat(tables - 1),
            first: fc.nat(511),
            count: fc.integer({ min: 1, max: 512 }),
            literal: fc.boolean(),
            base: fc.nat(2 ** 39),
            inc: fc.nat(600),
            flags: fc.nat(0xfff),
            seed: fc.nat()
          }),
          { minLength: 1, maxLength: 40 }
        )
        for (const list of fc.sample(arb, { numRuns: 8, seed: 99 })) {
          const descs = list.map((d) => {
            const count = Math.min(d.count, 512 - d.first)
            if (!d.literal) return Descriptor.generator(d.table, d.first, count, d.base, d.inc, d.flags)
            const r = rng(d.seed)
            return Descriptor.literal(
              d.table,
              d.first,
              Uint32Array.from({ length: 2 * count }, () => (r() * 2 ** 32) >>> 0)
            )
          })
          yield* GpuPageTables.applyDescriptors(pt, descs).pipe(Effect.flatMap(GpuDevice.awaitFence))
          assert.isUndefined(cpu.applyDescriptors(descs))
        }
        sameWords(yield* GpuPageTables.read(pt), cpu.memory, "raw descriptors")
      })
    )
  }

  it.effect("prepare stages a bulk update without submitting; submit is the point of no return", () =>
    Effect.gen(function* () {
      const g = yield* gpu
      const pt = yield* GpuPageTables.make(g, 2)
      const cpu = new CpuPageTables.CpuPageTables(2)
      const descs = [Descriptor.generator(1, 3, 100, 77, 1, 5)]
      const before = g.submitted()
      const abandoned = yield* GpuPageTables.prepare(pt, descs)
      abandoned.release()
      const job = yield* GpuPageTables.prepare(pt, descs)
      assert.strictEqual(job.dispatches, 1)
      assert.strictEqual(g.submitted(), before)
      yield* job.submit.pipe(Effect.flatMap(GpuDevice.awaitFence))
      assert.strictEqual(g.submitted(), before + 1)
      cpu.applyDescriptors(descs)
      sameWords(yield* GpuPageTables.read(pt), cpu.memory, "prepared")
      const again = yield* Effect.exit(job.submit)
      assert.isTrue(again._tag === "Failure")
    })
  )

  it.effect("bad requests are Invalid and nothing is submitted", () =>
    Effect.gen(function* () {
      const g = yield* gpu
      const pt = yield* GpuPageTables.make(g, 4)
      const before = g.submitted()
      const bad: Array<ReadonlyArray<Descriptor.Descriptor>> = [
        [Descriptor.fill(0, 500, 13, 0, 0)],
        [Descriptor.fill(4, 0, 1, 0, 0)],
        [Descriptor.fill(0, 0, 1, 0, 0), Descriptor.fill(0, 0, 0, 0, 0)],
        [Descriptor.generator(0, 0, 2, 2 ** 40 - 1, 1, 0)],
        [Descriptor.fill(0, 0, 1, 0, 0x1000)],
        [Descriptor.literal(0, 0, new Uint32Array(3))]
      ]
      for (const descs of bad) {
        const e = yield* Effect.flip(GpuPageTables.applyDescriptors(pt, descs))
        assert.strictEqual(e._tag, "Invalid")
      }
      assert.strictEqual((yield* Effect.flip(GpuPageTables.translate(pt, 9, 4, new Uint32Array(2))))._tag, "Invalid")
      assert.strictEqual((yield* Effect.flip(GpuPageTables.translate(pt, 0, 4, new Uint32Array(3))))._tag, "Invalid")
      assert.strictEqual((yield* Effect.flip(GpuPageTables.make(g, 0)))._tag, "Invalid")
      for (const tablesPerSegment of [0, -1, 1.5, Number.NaN]) {
        const e = yield* Effect.flip(GpuPageTables.make(g, 4, { tablesPerSegment }))
        assert.strictEqual(e._tag, "Invalid", `tablesPerSegment ${tablesPerSegment}`)
      }
      for (const [table, first, count] of [
        [0, 0, 0],
        [0, 512, 1],
        [4, 0, 1],
        [3, 500, 13],
        [0, 0, 4 * 512 + 1],
        [0, 0, 1e12],
        [0, 0.5, 1],
        [-1, 0, 1]
      ] as const) {
        const e = yield* Effect.flip(GpuPageTables.invalidate(pt, table, first, count))
        assert.strictEqual(e._tag, "Invalid", `invalidate(${table}, ${first}, ${count})`)
      }
      yield* GpuPageTables.invalidate(pt, 0, 0, 4 * 512).pipe(Effect.flatMap(GpuDevice.awaitFence))
      assert.strictEqual(g.submitted(), before + 1)
      assert.strictEqual(WINDOW, 1 << 20)
    })
  )
})

layer(DeviceLayer)("GPU zap", (it) => {
  it.effect("zap clears the leaves on the GPU, keeps the tables, and matches the CPU reference", () =>
    Effect.gen(function* () {
      const g = yield* gpu
      const shadow = new PageTable.PageTableShadow({ levels: 4, tables: 32 })
      const twin = new PageTable.PageTableShadow({ levels: 4, tables: 32 })
      const cpu = new CpuPageTables.CpuPageTables(32)
      const pt = yield* GpuPageTables.make(g, 32)
      const backing = { _tag: "Contiguous", baseFrame: 1024 } as const
      yield* GpuPageTables.applyAndWait(pt, PageTable.orThrow(shadow.map(0x200000n, 0x400000n, backing)))
      cpu.apply(PageTable.orThrow(twin.map(0x200000n, 0x400000n, backing)))
      const used = shadow.tablesInUse
      yield* GpuPageTables.zap(pt, shadow, 0x201000n, 0x1000n).pipe(Effect.flatMap(GpuDevice.awaitFence))
      cpu.apply(PageTable.orThrow(twin.zap(0x201000n, 0x1000n)))
      assert.strictEqual(shadow.tablesInUse, used)
      sameWords(yield* GpuPageTables.read(pt), cpu.memory, "zap")
      const vas = new Uint32Array([0x200000, 0, 0x401000, 0, 0x5ff000, 0])
      const t = yield* GpuPageTables.translate(pt, 0, 4, vas)
      assert.strictEqual(t[1], Pte.FAULT) // the whole 2M leaf touching the range is gone
      assert.strictEqual(t[2], (1024 + 512 + 1) * 4096)
      assert.strictEqual(t[4], (1024 + 1023) * 4096)
    })
  )
})
