/**
 * Range checksums on the GPU (atomics) with a CPU twin, so a migration can prove nothing was lost
 * (the role of xe's migrate selftests comparing BO contents after `xe_migrate_copy`). Re-exported
 * by `Migrate`.
 */
import type { Invalid } from "@drmkit/core"
import { Effect } from "effect"
import * as GpuBuffer from "../GpuBuffer.ts"
import type { GpuDeviceShape } from "../GpuDevice.ts"
import type { DeviceLost, GpuError } from "../GpuErrors.ts"
import { asHandle, bindGroup, dispatch, JobBuffers, pipeline } from "./jobs.ts"
import { checksumSource, WG } from "./wgsl/migrate.ts"
import { groupsFor, windowBinding, windows } from "./windows.ts"

/**
 * A range checksum: wrapping sum and xor of `mix(word, index)` (index relative to the range start),
 * so equal contents at different places give equal checksums.
 *
 * @since 0.1.0
 * @category checksum
 */
export interface Checksum {
  readonly sum: number
  readonly xor: number
}

const mix = (w: number, i: number): number => {
  let h = (w ^ Math.imul(i, 0x9e3779b9)) >>> 0
  h ^= h >>> 16
  h = Math.imul(h, 0x7feb352d) >>> 0
  h ^= h >>> 15
  h = Math.imul(h, 0x846ca68b) >>> 0
  h ^= h >>> 16
  return h >>> 0
}

/**
 * CPU twin of the checksum kernel (use on downloaded or host data).
 *
 * @since 0.1.0
 * @category checksum
 */
export const checksumCpu = (words: Uint32Array, index0 = 0): Checksum => {
  let sum = 0
  let xor = 0
  for (let i = 0; i < words.length; i++) {
    const h = mix(words[i] as number, index0 + i)
    sum = (sum + h) >>> 0
    xor = (xor ^ h) >>> 0
  }
  return { sum, xor }
}

/**
 * GPU checksum of `[offset, offset+size)` (one job per call, result read back: 8 bytes).
 *
 * @since 0.1.0
 * @category checksum
 */
export const checksum = (
  gpu: GpuDeviceShape,
  buf: GpuBuffer.GpuBuffer,
  offset = 0,
  size = buf.size - offset
): Effect.Effect<Checksum, Invalid | DeviceLost | GpuError> =>
  Effect.suspend(() => {
    const bad = GpuBuffer.checkRange(buf, offset, size, "checksum")
    if (bad !== undefined) return Effect.fail(bad)
    const res = new JobBuffers(gpu)
    const p = pipeline(gpu.device, "checksum", checksumSource)
    const acc = res.empty(16, "checksum-acc")
    let index0 = 0
    return gpu
      .submit("checksum", (enc) => {
        enc.clearBuffer(acc)
        for (const [win, off, len] of windows(gpu, offset, size)) {
          const groups = groupsFor(gpu, len / 4, 64)
          const u = res.uniform([off / 4, len / 4, index0, groups * WG], "checksum-params")
          const bg = bindGroup(gpu.device, p, [windowBinding(gpu, buf, win), acc, u])
          dispatch(enc, p, bg, groups)
          index0 += len / 4
        }
      })
      .pipe(
        Effect.andThen(GpuBuffer.downloadU32(gpu, asHandle(acc, 16, "checksum-acc"), 0, 8)),
        Effect.map((r): Checksum => ({ sum: r[0] ?? 0, xor: r[1] ?? 0 })),
        Effect.ensuring(Effect.sync(() => res.destroyNow()))
      )
  })
