/** Bench harness: one non-debug device for the whole bench process, released at the end. */
import { GpuDevice } from "@drmkit/gpu"
import { Effect, type Scope } from "effect"

/** Runs `body` with a device (backend from DRMKIT_GPU_BACKEND or auto) and prints the adapter. */
export const withDevice = <A, E>(body: (gpu: GpuDevice.GpuDeviceShape) => Effect.Effect<A, E, Scope.Scope>) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const gpu = yield* GpuDevice.make({ debug: false, label: "bench" })
        console.log(`adapter: ${gpu.adapter.description} / ${gpu.adapter.device} (backend ${gpu.adapter.backend})`)
        return yield* body(gpu)
      })
    )
  )

/** Median wall time (ms) of an Effect over `samples` runs after one warm-up. */
export const timeEffect = <E>(eff: Effect.Effect<unknown, E>, samples = 5) =>
  Effect.gen(function* () {
    yield* eff
    const ts: Array<number> = []
    for (let i = 0; i < samples; i++) {
      const t0 = performance.now()
      yield* eff
      ts.push(performance.now() - t0)
    }
    ts.sort((a, b) => a - b)
    return ts[Math.floor(ts.length / 2)] ?? Number.NaN
  })
