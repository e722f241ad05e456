/**
 * Migration kernels: the copy engine of a DRM driver (`xe_migrate_copy`, `xe_migrate_clear`,
 * amdgpu's `amdgpu_ttm_copy_mem_to_mem` / `amdgpu_ttm_fill_mem`) on real GPU buffers. Every
 * operation is one job returning its `dma_fence`; transfers are chunked (xe copies ≤ 8 MiB per
 * pass) and compute kernels bind buffers in windows no larger than the storage-binding limit.
 *
 * @since 0.1.0
 */
import { Invalid } from "@drmkit/core"
import { Effect } from "effect"
import * as GpuBuffer from "./GpuBuffer.ts"
import type { GpuDeviceShape } from "./GpuDevice.ts"
import { bindGroup, dispatch, JobBuffers, pipeline } from "./internal/jobs.ts"
import { copyWithinSource, fillSource, WG } from "./internal/wgsl/migrate.ts"
import { groupsFor, type Job, PAGE_BYTES, runJob, windowBinding, windows } from "./internal/windows.ts"

export { type Checksum, checksum, checksumCpu } from "./internal/checksum.ts"
export { copyPages, gather, type PageStrategy, scatter } from "./internal/pages.ts"
export { type Job, windowBytes } from "./internal/windows.ts"

/** Default copy chunk (bytes), xe's `MAX_PREEMPTDISABLE_TRANSFER`-like pass size. @since 0.1.0 @category constants */
export const COPY_CHUNK = 8 * 1024 * 1024

/**
 * Default pass size of {@link copy}: 256 MiB. xe cuts a copy into ≤ 8 MiB passes
 * ({@link COPY_CHUNK}) so the copy engine can be preempted between them; a WebGPU queue cannot
 * preempt anyway, and each command costs a fixed overhead (on llvmpipe a flush + memcpy call), so
 * by default a copy is cut only every 256 MiB. Pass `COPY_CHUNK` to model xe's passes exactly.
 *
 * @since 0.1.0
 * @category constants
 */
export const DEFAULT_COPY_CHUNK = 256 * 1024 * 1024

/** Page size the page-list kernels move. @since 0.1.0 @category constants */
export const PAGE = PAGE_BYTES

const fail = (e: Invalid | undefined): Job | undefined => (e === undefined ? undefined : Effect.fail(e))

/**
 * Copies `size` bytes between two buffers with `copyBufferToBuffer`, `chunk` bytes per command
 * (default {@link DEFAULT_COPY_CHUNK}), in one job. Same-buffer copies go through {@link copyWithin}.
 *
 * @since 0.1.0
 * @category copies
 */
export const copy = (
  gpu: GpuDeviceShape,
  src: GpuBuffer.GpuBuffer,
  srcOffset: number,
  dst: GpuBuffer.GpuBuffer,
  dstOffset: number,
  size: number,
  chunk = DEFAULT_COPY_CHUNK
): Job =>
  Effect.suspend(() => {
    const bad =
      fail(GpuBuffer.checkRange(src, srcOffset, size, "copy source")) ??
      fail(GpuBuffer.checkRange(dst, dstOffset, size, "copy destination")) ??
      (Number.isSafeInteger(chunk) && chunk > 0 && chunk % 4 === 0
        ? undefined
        : fail(new Invalid({ what: "copy chunk", reason: "must be a positive multiple of 4", value: chunk })))
    if (bad !== undefined) return bad
    if (src.buffer === dst.buffer) return copyWithin(gpu, src, srcOffset, dstOffset, size)
    return gpu.submit("copy", (enc) => {
      for (let o = 0; o < size; o += chunk) {
        enc.copyBufferToBuffer(src.buffer, srcOffset + o, dst.buffer, dstOffset + o, Math.min(chunk, size - o))
      }
    })
  })

/** Blocks of an overlapping in-buffer copy beyond which we bounce through a scratch buffer. */
const MAX_DIRECTED_BLOCKS = 16

/**
 * Overlap-safe copy inside one buffer (`memmove`). When the ranges do not overlap, or overlap with a
 * distance that needs at most 16 ordered blocks, a compute kernel copies them (blocks ordered
 * forwards when moving down, backwards when moving up). Otherwise the data bounces through a
 * scratch buffer in direction-ordered chunks of `copyBufferToBuffer`.
 *
 * @since 0.1.0
 * @category copies
 */
export const copyWithin = (
  gpu: GpuDeviceShape,
  buf: GpuBuffer.GpuBuffer,
  srcOffset: number,
  dstOffset: number,
  size: number
): Job =>
  Effect.suspend(() => {
    const bad =
      fail(GpuBuffer.checkRange(buf, srcOffset, size, "copyWithin source")) ??
      fail(GpuBuffer.checkRange(buf, dstOffset, size, "copyWithin destination"))
    if (bad !== undefined) return bad
    const res = new JobBuffers(gpu)
    if (srcOffset === dstOffset) return runJob(gpu, "copy-within", res, () => {})
    const d = Math.abs(srcOffset - dstOffset)
    const lo = Math.floor(Math.min(srcOffset, dstOffset) / 256) * 256
    const span = Math.max(srcOffset, dstOffset) + size - lo
    const overlap = d < size
    if (
      span <= gpu.device.limits.maxStorageBufferBindingSize &&
      (!overlap || Math.ceil(size / d) <= MAX_DIRECTED_BLOCKS)
    ) {
      const p = pipeline(gpu.device, "copy-within", copyWithinSource)
      const block = overlap ? d : size
      const blocks: Array<number> = []
      for (let o = 0; o < size; o += block) blocks.push(o)
      if (dstOffset > srcOffset) blocks.reverse()
      return runJob(gpu, "copy-within", res, (enc) => {
        for (const o of blocks) {
          const n = Math.min(block, size - o) / 4
          const groups = groupsFor(gpu, n)
          const u = res.uniform([(srcOffset - lo + o) / 4, (dstOffset - lo + o) / 4, n, groups * WG], "cw-params")
          dispatch(enc, p, bindGroup(gpu.device, p, [[buf.buffer, lo, span], u]), groups)
        }
      })
    }
    const chunk = Math.min(size, 64 * 1024 * 1024)
    const scratch = res.empty(chunk, "bounce", GpuBuffer.Usage.COPY_SRC | GpuBuffer.Usage.COPY_DST)
    const starts: Array<number> = []
    for (let o = 0; o < size; o += chunk) starts.push(o)
    if (dstOffset > srcOffset) starts.reverse()
    return runJob(gpu, "copy-within-bounce", res, (enc) => {
      for (const o of starts) {
        const n = Math.min(chunk, size - o)
        enc.copyBufferToBuffer(buf.buffer, srcOffset + o, scratch, 0, n)
        enc.copyBufferToBuffer(scratch, 0, buf.buffer, dstOffset + o, n)
      }
    })
  })

/**
 * Fills `[offset, offset+size)` with a 32-bit `value` (`clearBuffer` for zero), one job; models
 * `xe_migrate_clear` / `amdgpu_ttm_fill_mem`.
 *
 * @since 0.1.0
 * @category fill
 */
export const fill = (gpu: GpuDeviceShape, buf: GpuBuffer.GpuBuffer, offset: number, size: number, value = 0): Job =>
  Effect.suspend(() => {
    const bad =
      fail(GpuBuffer.checkRange(buf, offset, size, "fill")) ??
      (Number.isInteger(value) && value >= -(2 ** 31) && value <= 0xffffffff
        ? undefined
        : fail(new Invalid({ what: "fill value", reason: "must be a 32-bit integer", value })))
    if (bad !== undefined) return bad
    const res = new JobBuffers(gpu)
    if (value === 0) return runJob(gpu, "clear", res, (enc) => enc.clearBuffer(buf.buffer, offset, size))
    const p = pipeline(gpu.device, "fill", fillSource)
    return runJob(gpu, "fill", res, (enc) => {
      for (const [win, off, len] of windows(gpu, offset, size)) {
        const groups = groupsFor(gpu, len / 4)
        const u = res.uniform([off / 4, len / 4, value >>> 0, groups * WG], "fill-params")
        const bg = bindGroup(gpu.device, p, [windowBinding(gpu, buf, win), u])
        dispatch(enc, p, bg, groups)
      }
    })
  })
