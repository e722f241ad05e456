/**
 * Bulk PTE write (1 M entries, generator and literal) and translate (1 M VAs): GPU kernels vs the
 * CPU reference writing/walking the same table memory, in the same process.
 */
import { median, report, timeMs } from "@drmkit/bench-kit"
import { CpuPageTables, Descriptor, GpuDevice, GpuPageTables, PageTable, Pte } from "@drmkit/gpu"
import { Effect } from "effect"
import { timeEffect, withDevice } from "./harness.ts"

const ENTRIES = 1 << 20
const LEAF_TABLES = ENTRIES / 512
const TABLES = LEAF_TABLES + 8

const generatorBatch = (): Array<Descriptor.Descriptor> =>
  Array.from({ length: LEAF_TABLES }, (_, t) => Descriptor.generator(t + 8, 0, 512, 0x100000 + t * 512, 1, 0x7))

const literalBatch = (): Array<Descriptor.Descriptor> => {
  let x = 12345
  return Array.from({ length: LEAF_TABLES }, (_, t) => {
    const v = new Uint32Array(1024)
    for (let i = 0; i < 512; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0
      const frame = x >>> 4
      v[2 * i] = Pte.lo(frame, 0x7)
      v[2 * i + 1] = Pte.hi(frame)
    }
    return Descriptor.literal(t + 8, 0, v)
  })
}

await withDevice((gpu) =>
  Effect.gen(function* () {
    const rows = []
    const goal = gpu.adapter.software ? 1 : 20
    const goalText = `>= ${goal}x CPU (${gpu.adapter.software ? "llvmpipe" : "GPU"}); 1 dispatch`
    for (const [name, batch] of [
      ["generator", generatorBatch()],
      ["literal", literalBatch()]
    ] as const) {
      const pt = yield* GpuPageTables.make(gpu, TABLES)
      const cpu = new CpuPageTables.CpuPageTables(TABLES)
      const dispatches = GpuPageTables.dispatchCount(pt, batch)
      const gpuMs = yield* timeEffect(
        GpuPageTables.applyDescriptors(pt, batch).pipe(Effect.flatMap(GpuDevice.awaitFence))
      )
      const cpuMs = timeMs(() => cpu.applyDescriptors(batch))
      // breakdown: staging (encode + upload + bind groups) vs submit -> fence (the kernel)
      const prepMs: Array<number> = []
      const runMs: Array<number> = []
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now()
        const job = yield* GpuPageTables.prepare(pt, batch)
        const t1 = performance.now()
        yield* job.submit.pipe(Effect.flatMap(GpuDevice.awaitFence))
        prepMs.push(t1 - t0)
        runMs.push(performance.now() - t1)
      }
      const same = (yield* GpuPageTables.read(pt)).every((w, i) => w === cpu.memory[i])
      rows.push({
        name: `bulk PTE write 1M (${name}), ${dispatches} dispatch${same ? "" : " MISMATCH"}`,
        value: gpuMs,
        unit: "ms",
        peer: "CPU reference",
        peerValue: cpuMs,
        ratio: cpuMs / gpuMs,
        goal: goalText,
        pass: cpuMs / gpuMs >= goal && dispatches === 1 && same
      })
      rows.push({
        name: `  of which staging (encode + upload), ${name}`,
        value: median(prepMs),
        unit: "ms",
        goal: "report"
      })
      rows.push({
        name: `  of which submit -> fence (kernel), ${name}`,
        value: median(runMs),
        unit: "ms",
        goal: "report"
      })
    }
    // translate 1M random VAs over a 4 GiB mapping of 4K pages
    const shadow = new PageTable.PageTableShadow({ levels: 4, tables: TABLES })
    const plan = PageTable.orThrow(
      shadow.map(0n, BigInt(ENTRIES) * 4096n, { _tag: "Contiguous", baseFrame: 1 << 20 }, { huge: false })
    )
    const pt = yield* GpuPageTables.make(gpu, TABLES)
    const cpu = new CpuPageTables.CpuPageTables(TABLES)
    cpu.apply(plan)
    yield* GpuPageTables.applyAndWait(pt, plan)
    const vas = new Uint32Array(ENTRIES * 2)
    let x = 99
    for (let i = 0; i < ENTRIES; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0
      const va = (x % (ENTRIES * 4)) * 1024
      vas[2 * i] = va % 2 ** 32
      vas[2 * i + 1] = Math.floor(va / 2 ** 32)
    }
    let gpuOut = new Uint32Array(0)
    const gpuMs = yield* timeEffect(
      GpuPageTables.translate(pt, 0, 4, vas).pipe(Effect.tap((o) => Effect.sync(() => (gpuOut = o))))
    )
    const cpuMs = timeMs(() => cpu.translate(0, 4, vas))
    const cpuOut = cpu.translate(0, 4, vas)
    const same = gpuOut.every((w, i) => w === cpuOut[i])
    rows.push({
      name: `translate 1M VAs (incl. upload+readback)${same ? "" : " MISMATCH"}`,
      value: gpuMs,
      unit: "ms",
      peer: "CPU walk",
      peerValue: cpuMs,
      ratio: cpuMs / gpuMs,
      goal: `>= ${goal}x CPU`,
      pass: cpuMs / gpuMs >= goal && same
    })
    report("pagetable", rows)
  })
)
