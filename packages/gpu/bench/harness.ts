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

/**
 * Our job and its peer sampled in pairs (after `warmups` runs of each — the first jobs on a fresh
 * buffer pay page faults and tier-up), the order inside a pair alternating: both see the same box
 * load. `ms`/`peerMs` are medians; `ratio` is the median of the per-pair ratios peer/ours (for
 * times: > 1 means ours is faster), which is far steadier than a ratio of medians on a busy box.
 */
export const paired = <E1, E2>(
  ours: Effect.Effect<unknown, E1>,
  peer: Effect.Effect<unknown, E2>,
  samples = 15,
  warmups = 3
) =>
  Effect.gen(function* () {
    for (let i = 0; i < warmups; i++) {
      yield* ours
      yield* peer
    }
    const a: Array<number> = []
    const b: Array<number> = []
    const r: Array<number> = []
    const time = <E>(eff: Effect.Effect<unknown, E>) =>
      Effect.gen(function* () {
        const t0 = performance.now()
        yield* eff
        return performance.now() - t0
      })
    for (let i = 0; i < samples; i++) {
      const x = i % 2 === 0 ? yield* time(ours) : 0
      const y = yield* time(peer)
      const z = i % 2 === 0 ? x : yield* time(ours)
      a.push(z)
      b.push(y)
      r.push(y / z)
    }
    const med = (xs: Array<number>) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)] ?? Number.NaN
    return { ms: med(a), peerMs: med(b), ratio: med(r) }
  })
