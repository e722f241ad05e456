/** Shared test helpers: one debug-mode device per test file. */

import { GpuDevice } from "@drmkit/gpu"
import { Effect, Layer } from "effect"

/** The per-file device layer (debug: error scopes around every job, so validation errors fail tests). */
export const DeviceLayer = GpuDevice.layer({ debug: true, label: "test" })

/** Device service accessor. */
export const gpu = Effect.service(GpuDevice.GpuDevice)

/** Builds a fresh, isolated device layer (for acquire/release tests). */
export const freshDevice = () => Layer.fresh(GpuDevice.layer({ debug: true, label: "fresh" }))

/** Deterministic PRNG (mulberry32). */
export const rng = (seed: number) => {
  let a = seed >>> 0
  return (): number => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export const unused = Effect.void
