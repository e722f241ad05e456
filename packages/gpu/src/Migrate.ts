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
import type { DeviceLost, GpuError } from "./GpuErrors.ts"
import type { Fence } from "./internal/fence.ts"
import { bindGroup, dispatch, JobBuffers, pipeline } from "./internal/jobs.ts"
import { checksumSource, copyPagesSource, copyWithinSource, fillSource, WG } from "./internal/wgsl/migrate.ts"

/** A submitted job. @since 0.1.0 @category models */
export type Job = Effect.Effect<Fence, Invalid | DeviceLost | GpuError>

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
export const PAGE = 4096

/** Largest bindable window (a multiple of 4 KiB). @since 0.1.0 @category windows */
export const windowBytes = (gpu: GpuDeviceShape): number =>
  Math.floor(Math.min(gpu.device.limits.maxStorageBufferBindingSize, gpu.device.limits.maxBufferSize) / PAGE) * PAGE

const fail = (e: Invalid | undefined): Job | undefined => (e === undefined ? undefined : Effect.fail(e))

const groupsFor = (gpu: GpuDeviceShape, words: number, perThread = 16): number =>
  Math.max(1, Math.min(gpu.device.limits.maxComputeWorkgroupsPerDimension, Math.ceil(words / (WG * perThread))))

const runJob = (gpu: GpuDeviceShape, label: string, res: JobBuffers, build: (enc: GPUCommandEncoder) => void): Job =>
  gpu.submit(label, build).pipe(
    Effect.tap((f) => Effect.sync(() => res.releaseAfter(f))),
    Effect.tapError(() => Effect.sync(() => res.destroyNow()))
  )

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
 * How page lists are moved: a compute kernel (one workgroup per page), or copy commands (one
 * `copyBufferToBuffer` per run of consecutive pages — the copy engine). `auto` picks copies on CPU
 * rasterisers (llvmpipe: memcpy beats emulated compute) and the kernel on real GPUs.
 *
 * @since 0.1.0
 * @category pages
 */
export type PageStrategy = "auto" | "kernel" | "copies"

const copyRuns = (gpu: GpuDeviceShape, src: GpuBuffer.GpuBuffer, dst: GpuBuffer.GpuBuffer, list: Uint32Array): Job =>
  gpu.submit("copy-pages", (enc) => {
    const n = list.length >>> 1
    for (let i = 0; i < n; ) {
      const s = list[2 * i] as number
      const d = list[2 * i + 1] as number
      let k = 1
      while (i + k < n && list[2 * (i + k)] === s + k && list[2 * (i + k) + 1] === d + k) k++
      enc.copyBufferToBuffer(src.buffer, s * PAGE, dst.buffer, d * PAGE, k * PAGE)
      i += k
    }
  })

/**
 * Copies 4 KiB pages: pair `i` moves page `list[2i]` of `src` to page `list[2i+1]` of `dst`
 * (distinct buffers), as one job. The kernel path runs one workgroup per page, grouped by (source
 * window, destination window) so buffers larger than one binding work. Destination pages must be
 * distinct.
 *
 * @since 0.1.0
 * @category pages
 */
export const copyPages = (
  gpu: GpuDeviceShape,
  src: GpuBuffer.GpuBuffer,
  dst: GpuBuffer.GpuBuffer,
  list: Uint32Array,
  strategy: PageStrategy = "auto"
): Job =>
  Effect.suspend(() => {
    if (src.buffer === dst.buffer) {
      return Effect.fail(
        new Invalid({ what: "copyPages", reason: "source and destination must differ (use copyWithin)" })
      )
    }
    const n = list.length >>> 1
    if (n === 0 || list.length % 2 !== 0) {
      return Effect.fail(
        new Invalid({ what: "page list", reason: "must be non-empty (src, dst) pairs", value: list.length })
      )
    }
    const sp = Math.floor(src.size / PAGE)
    const dp = Math.floor(dst.size / PAGE)
    for (let i = 0; i < n; i++) {
      if ((list[2 * i] as number) >= sp)
        return Effect.fail(
          new Invalid({ what: `page list[${i}] source`, reason: `beyond ${sp} pages`, value: list[2 * i] })
        )
      if ((list[2 * i + 1] as number) >= dp)
        return Effect.fail(
          new Invalid({ what: `page list[${i}] destination`, reason: `beyond ${dp} pages`, value: list[2 * i + 1] })
        )
    }
    if (strategy === "copies" || (strategy === "auto" && gpu.adapter.software)) return copyRuns(gpu, src, dst, list)
    const wp = windowBytes(gpu) / PAGE
    const groups = new Map<string, Array<number>>()
    for (let i = 0; i < n; i++) {
      const key = `${Math.floor((list[2 * i] as number) / wp)}:${Math.floor((list[2 * i + 1] as number) / wp)}`
      const g = groups.get(key)
      if (g === undefined) groups.set(key, [i])
      else g.push(i)
    }
    const packed = new Uint32Array(2 * n)
    const plan: Array<{ sw: number; dw: number; first: number; count: number }> = []
    let k = 0
    for (const [key, idx] of groups) {
      const [sw, dw] = key.split(":").map(Number) as [number, number]
      plan.push({ sw, dw, first: k, count: idx.length })
      for (const i of idx) {
        packed[2 * k] = (list[2 * i] as number) - sw * wp
        packed[2 * k + 1] = (list[2 * i + 1] as number) - dw * wp
        k++
      }
    }
    const res = new JobBuffers(gpu)
    const l = gpu.device.limits
    const blocked = gpu.adapter.software
    const wg = !blocked && l.maxComputeInvocationsPerWorkgroup >= 256 && l.maxComputeWorkgroupSizeX >= 256 ? 256 : 64
    const p = pipeline(gpu.device, `copy-pages-${wg}-${blocked}`, copyPagesSource(wg, blocked))
    const listBuf = res.storage(packed, "page-list")
    const win = (b: GpuBuffer.GpuBuffer, w: number) =>
      [b.buffer, w * wp * PAGE, Math.min(wp * PAGE, b.size - w * wp * PAGE)] as const
    return runJob(gpu, "copy-pages", res, (enc) => {
      for (const g of plan) {
        const u = res.uniform([g.first, g.count, 0, 0], "pages-params")
        const bg = bindGroup(gpu.device, p, [win(src, g.sw), win(dst, g.dw), listBuf, u])
        dispatch(enc, p, bg, Math.min(g.count, 65535), Math.ceil(g.count / 65535))
      }
    })
  })

/**
 * Gathers scattered source pages into a contiguous destination range starting at `dstFirstPage`.
 *
 * @since 0.1.0
 * @category pages
 */
export const gather = (
  gpu: GpuDeviceShape,
  src: GpuBuffer.GpuBuffer,
  pages: ArrayLike<number>,
  dst: GpuBuffer.GpuBuffer,
  dstFirstPage = 0,
  strategy: PageStrategy = "auto"
): Job => {
  const list = new Uint32Array(pages.length * 2)
  for (let i = 0; i < pages.length; i++) {
    list[2 * i] = pages[i] as number
    list[2 * i + 1] = dstFirstPage + i
  }
  return copyPages(gpu, src, dst, list, strategy)
}

/**
 * Scatters a contiguous source range (from `srcFirstPage`) to the listed destination pages.
 *
 * @since 0.1.0
 * @category pages
 */
export const scatter = (
  gpu: GpuDeviceShape,
  src: GpuBuffer.GpuBuffer,
  srcFirstPage: number,
  dst: GpuBuffer.GpuBuffer,
  pages: ArrayLike<number>,
  strategy: PageStrategy = "auto"
): Job => {
  const list = new Uint32Array(pages.length * 2)
  for (let i = 0; i < pages.length; i++) {
    list[2 * i] = srcFirstPage + i
    list[2 * i + 1] = pages[i] as number
  }
  return copyPages(gpu, src, dst, list, strategy)
}

/** Splits a byte range into binding windows `[window, offsetInWindow, length]`. */
const windows = (gpu: GpuDeviceShape, offset: number, size: number): Array<readonly [number, number, number]> => {
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

/**
 * Fills `[offset, offset+size)` with a u32 `value` (`clearBuffer` for zero), one job.
 *
 * @since 0.1.0
 * @category fill
 */
export const fill = (gpu: GpuDeviceShape, buf: GpuBuffer.GpuBuffer, offset: number, size: number, value = 0): Job =>
  Effect.suspend(() => {
    const bad = fail(GpuBuffer.checkRange(buf, offset, size, "fill"))
    if (bad !== undefined) return bad
    const res = new JobBuffers(gpu)
    if (value === 0) return runJob(gpu, "clear", res, (enc) => enc.clearBuffer(buf.buffer, offset, size))
    const p = pipeline(gpu.device, "fill", fillSource)
    const w = windowBytes(gpu)
    return runJob(gpu, "fill", res, (enc) => {
      for (const [win, off, len] of windows(gpu, offset, size)) {
        const groups = groupsFor(gpu, len / 4)
        const u = res.uniform([off / 4, len / 4, value >>> 0, groups * WG], "fill-params")
        const bg = bindGroup(gpu.device, p, [[buf.buffer, win * w, Math.min(w, buf.size - win * w)], u])
        dispatch(enc, p, bg, groups)
      }
    })
  })

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
    const w = windowBytes(gpu)
    let index0 = 0
    const handle: GpuBuffer.GpuBuffer = { buffer: acc, size: 16, usage: 0, label: "checksum-acc" }
    return gpu
      .submit("checksum", (enc) => {
        enc.clearBuffer(acc)
        for (const [win, off, len] of windows(gpu, offset, size)) {
          const groups = groupsFor(gpu, len / 4, 64)
          const u = res.uniform([off / 4, len / 4, index0, groups * WG], "checksum-params")
          const bg = bindGroup(gpu.device, p, [[buf.buffer, win * w, Math.min(w, buf.size - win * w)], acc, u])
          dispatch(enc, p, bg, groups)
          index0 += len / 4
        }
      })
      .pipe(
        Effect.andThen(GpuBuffer.downloadU32(gpu, handle, 0, 8)),
        Effect.map((r): Checksum => ({ sum: r[0] ?? 0, xor: r[1] ?? 0 })),
        Effect.ensuring(Effect.sync(() => res.destroyNow()))
      )
  })
