/**
 * Bulk PTE write (1 M entries, generator and literal) and translate (1 M VAs): GPU kernels vs the
 * CPU reference writing/walking the same table memory, in the same process.
 */
import { median, report, timeMs } from "@drmkit/bench-kit"
import { CpuPageTables, Descriptor, GpuDevice, GpuPageTables, PageTable, Pte } from "@drmkit/gpu"
import { Effect } from "effect"
import { paired, timeEffect, withDevice } from "./harness.ts"

const ENTRIES = 1 << 20
const LEAF_TABLES = ENTRIES / 512
const TABLES = LEAF_TABLES + 8

const generatorBatch = (): Array<Descriptor.Descriptor> =>
  Array.from({ length: LEAF_TABLES }, (_, t) => Descriptor.generator(t + 8, 0, 512, 0x100000 + t * 512, 1, 0x7))

/** Scattered pages: one literal descriptor per table, views of one PTE array (as the planner emits them). */
const literalBatch = (): Array<Descriptor.Descriptor> => {
  let x = 12345
  const all = new Uint32Array(ENTRIES * 2)
  for (let i = 0; i < ENTRIES; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0
    const frame = x >>> 4
    all[2 * i] = Pte.lo(frame, 0x7)
    all[2 * i + 1] = Pte.hi(frame)
  }
  return Array.from({ length: LEAF_TABLES }, (_, t) =>
    Descriptor.literal(t + 8, 0, all.subarray(t * 1024, (t + 1) * 1024))
  )
}

/** Pure store bandwidth: 64-invocation workgroups, 32 vec2 stores each (grid stride), tables 8.. */
const storeCeilingWgsl = `
@group(0) @binding(0) var<storage, read_write> a: array<vec2u>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3u) {
  for (var i = g.x; i < ${ENTRIES}u; i += ${ENTRIES / 32}u) { a[4096u + i] = vec2u(i << 12u, i >> 20u); }
}
`

await withDevice((gpu) =>
  Effect.gen(function* () {
    const rows = []
    const goal = gpu.adapter.software ? 1 : 20
    const goalText = `>= ${goal}x CPU (${gpu.adapter.software ? "llvmpipe" : "GPU"}); 1 job`
    for (const [name, batch] of [
      ["generator", generatorBatch()],
      ["literal", literalBatch()]
    ] as const) {
      const pt = yield* GpuPageTables.make(gpu, TABLES)
      const cpu = new CpuPageTables.CpuPageTables(TABLES)
      const dispatches = GpuPageTables.dispatchCount(pt, batch)
      const {
        ms: gpuMs,
        peerMs: cpuMs,
        ratio
      } = yield* paired(
        GpuPageTables.applyDescriptors(pt, batch).pipe(Effect.flatMap(GpuDevice.awaitFence)),
        Effect.sync(() => cpu.applyDescriptors(batch))
      )
      // breakdown: staging (encode + upload + bind groups) vs submit -> fence (the kernel)
      const prepMs: Array<number> = []
      const runMs: Array<number> = []
      let writes = 0
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now()
        const job = yield* GpuPageTables.prepare(pt, batch)
        writes = job.writes
        const t1 = performance.now()
        yield* job.submit.pipe(Effect.flatMap(GpuDevice.awaitFence))
        prepMs.push(t1 - t0)
        runMs.push(performance.now() - t1)
      }
      const same = (yield* GpuPageTables.read(pt)).every((w, i) => w === cpu.memory[i])
      rows.push({
        name: `bulk PTE write 1M (${name}), 1 job: ${dispatches} dispatch, ${writes} queue write${same ? "" : " MISMATCH"}`,
        value: gpuMs,
        unit: "ms",
        peer: "CPU reference",
        peerValue: cpuMs,
        ratio,
        goal: goalText,
        pass: ratio >= goal && dispatches <= 1 && same
      })
      rows.push({
        name: `  of which staging (encode + upload), ${name}`,
        value: median(prepMs),
        unit: "ms",
        goal: "report"
      })
      rows.push({
        name: `  of which submit -> fence (${name === "literal" ? "queue write" : "kernel"}), ${name}`,
        value: median(runMs),
        unit: "ms",
        goal: "report"
      })
    }
    // physical floors on this device, same 8 MiB of table memory, same job/fence path:
    // - pure compute stores: a vec2 grid-stride fill kernel (no descriptors, constant value)
    // - upload: ONE queue.writeBuffer of the 8 MiB from one host array
    {
      const pt = yield* GpuPageTables.make(gpu, TABLES)
      const cpu = new CpuPageTables.CpuPageTables(TABLES)
      const seg = pt.segments[0]?.buffer
      if (seg !== undefined && pt.segments.length === 1) {
        const module = gpu.device.createShaderModule({ code: storeCeilingWgsl })
        const p = gpu.device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } })
        const bg = gpu.device.createBindGroup({
          layout: p.getBindGroupLayout(0),
          entries: [{ binding: 0, resource: { buffer: seg } }]
        })
        const fillJob = gpu
          .submit("store-ceiling", (enc) => {
            const pass = enc.beginComputePass()
            pass.setPipeline(p)
            pass.setBindGroup(0, bg)
            pass.dispatchWorkgroups(ENTRIES / (64 * 32))
            pass.end()
          })
          .pipe(Effect.flatMap(GpuDevice.awaitFence))
        const gen = generatorBatch()
        const s1 = yield* paired(
          fillJob,
          Effect.sync(() => cpu.applyDescriptors(gen))
        )
        rows.push({
          name: "  floor: plain vec2 fill kernel, same 8 MiB (compute store ceiling)",
          value: s1.ms,
          unit: "ms",
          peer: "CPU reference",
          peerValue: s1.peerMs,
          ratio: s1.ratio,
          goal: "report"
        })
        const lits = literalBatch()
        const first = lits[0]?.source
        const host = first?._tag === "Literal" ? new Uint32Array(first.values.buffer, 0, ENTRIES * 2) : undefined
        if (host !== undefined) {
          const upJob = gpu
            .submit("upload-floor", () => gpu.device.queue.writeBuffer(seg, 8 * 4096, host))
            .pipe(Effect.flatMap(GpuDevice.awaitFence))
          const s2 = yield* paired(
            upJob,
            Effect.sync(() => cpu.applyDescriptors(lits))
          )
          rows.push({
            name: "  floor: one queue.writeBuffer of the same 8 MiB (upload floor)",
            value: s2.ms,
            unit: "ms",
            peer: "CPU reference",
            peerValue: s2.peerMs,
            ratio: s2.ratio,
            goal: "report"
          })
        }
      }
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
