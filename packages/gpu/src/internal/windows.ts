/**
 * Helpers shared by the migration kernels: binding windows (compute kernels bind a large buffer in
 * windows no larger than one storage binding), grid sizing and job submission with job-owned
 * buffers.
 */
import type { Invalid } from "@drmkit/core"
import { Effect } from "effect"
import type { GpuBuffer } from "../GpuBuffer.ts"
import type { GpuDeviceShape } from "../GpuDevice.ts"
import type { DeviceLost, GpuError } from "../GpuErrors.ts"
import type { Fence } from "./fence.ts"
import type { JobBuffers } from "./jobs.ts"
import { WG } from "./wgsl/migrate.ts"

/**
 * A submitted migration job: its `dma_fence`, or why nothing was submitted.
 *
 * @since 0.1.0
 * @category models
 */
export type Job = Effect.Effect<Fence, Invalid | DeviceLost | GpuError>

/** The page size the page-list kernels move (bytes). */
export const PAGE_BYTES = 4096

/**
 * Largest bindable window (a multiple of 4 KiB): compute kernels bind buffers larger than the
 * storage-binding limit one window at a time.
 *
 * @since 0.1.0
 * @category windows
 */
export const windowBytes = (gpu: GpuDeviceShape): number =>
  Math.floor(Math.min(gpu.device.limits.maxStorageBufferBindingSize, gpu.device.limits.maxBufferSize) / PAGE_BYTES) *
  PAGE_BYTES

/** Splits a byte range into binding windows `[window, offsetInWindow, length]`. */
export const windows = (
  gpu: GpuDeviceShape,
  offset: number,
  size: number
): Array<readonly [number, number, number]> => {
  const w = windowBytes(gpu)
  const out: Array<readonly [number, number, number]> = []
  for (let o = offset; o < offset + size; ) {
    const win = Math.floor(o / w)
    const end = Math.min(offset + size, (win + 1) * w)
    out.push([win, o - win * w, end - o])
    o = end
  }
  return out
}

/** The binding `[buffer, offset, size]` of window `win` of `b` (the last window may be short). */
export const windowBinding = (gpu: GpuDeviceShape, b: GpuBuffer, win: number): readonly [GPUBuffer, number, number] => {
  const w = windowBytes(gpu)
  return [b.buffer, win * w, Math.min(w, b.size - win * w)]
}

/** Workgroups for a grid-stride kernel over `words` words, `perThread` words per invocation. */
export const groupsFor = (gpu: GpuDeviceShape, words: number, perThread = 16): number =>
  Math.max(1, Math.min(gpu.device.limits.maxComputeWorkgroupsPerDimension, Math.ceil(words / (WG * perThread))))

/** Submits one job whose buffers `res` are freed when its fence signals (or at once on failure). */
export const runJob = (
  gpu: GpuDeviceShape,
  label: string,
  res: JobBuffers,
  build: (enc: GPUCommandEncoder) => void
): Job =>
  gpu.submit(label, build).pipe(
    Effect.tap((f) => Effect.sync(() => res.releaseAfter(f))),
    Effect.tapError(() => Effect.sync(() => res.destroyNow()))
  )
