/** Device create → first dispatch latency, and small-job dispatch latency (submit → fence). */
import { report } from "@drmkit/bench-kit"
import { Descriptor, GpuBuffer, GpuDevice, GpuPageTables, Migrate } from "@drmkit/gpu"
import { Effect } from "effect"
import { timeEffect, withDevice } from "./harness.ts"

const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN

const createToFirst = Effect.scoped(
  Effect.gen(function* () {
    const t0 = performance.now()
    const gpu = yield* GpuDevice.make({ debug: false })
    const b = yield* GpuBuffer.makeWith(gpu, { size: 4096 })
    yield* Migrate.fill(gpu, b, 0, 4096, 1).pipe(Effect.flatMap(GpuDevice.awaitFence))
    return performance.now() - t0
  })
)

const firstMs: Array<number> = []
for (let i = 0; i < 5; i++) firstMs.push(await Effect.runPromise(createToFirst))

await withDevice((gpu) =>
  Effect.gen(function* () {
    const b = yield* GpuBuffer.makeWith(gpu, { size: 4096 })
    const pt = yield* GpuPageTables.make(gpu, 4)
    const fillMs = yield* timeEffect(Migrate.fill(gpu, b, 0, 4096, 7).pipe(Effect.flatMap(GpuDevice.awaitFence)), 50)
    const one = [Descriptor.generator(1, 0, 512, 1, 1, 3)]
    const ptMs = yield* timeEffect(
      GpuPageTables.applyDescriptors(pt, one).pipe(Effect.flatMap(GpuDevice.awaitFence)),
      50
    )
    const emptyMs = yield* timeEffect(gpu.submit("empty", () => {}).pipe(Effect.flatMap(GpuDevice.awaitFence)), 50)
    report("device", [
      {
        name: "device create -> first dispatch done (first process run)",
        value: firstMs[0] ?? Number.NaN,
        unit: "ms",
        goal: "report"
      },
      {
        name: "device create -> first dispatch done (median of 5)",
        value: median(firstMs),
        unit: "ms",
        goal: "report"
      },
      {
        name: "dispatch latency: fill 4 KiB job, submit -> fence",
        value: fillMs,
        unit: "ms",
        peer: "empty job",
        peerValue: emptyMs,
        goal: "report"
      },
      {
        name: "dispatch latency: 1-descriptor PT update, submit -> fence",
        value: ptMs,
        unit: "ms",
        peer: "empty job",
        peerValue: emptyMs,
        goal: "report"
      }
    ])
  })
)
