/**
 * Page-list moves (`copyPages`, `gather`, `scatter`): the copy engine moving N scattered 4 KiB pages
 * into a contiguous range and back, the way TTM/xe move a BO's pages between placements
 * (`xe_migrate_copy` over an sg list, `amdgpu_ttm_copy_mem_to_mem`). Re-exported by `Migrate`.
 */
import { Invalid } from "@drmkit/core"
import { Effect } from "effect"
import type { GpuBuffer } from "../GpuBuffer.ts"
import type { GpuDeviceShape } from "../GpuDevice.ts"
import { bindGroup, dispatch, JobBuffers, pipeline } from "./jobs.ts"
import { copyPagesSource } from "./wgsl/migrate.ts"
import { type Job, PAGE_BYTES as PAGE, runJob, windowBinding, windowBytes } from "./windows.ts"

/**
 * How page lists are moved: a compute kernel (one workgroup per page), or copy commands (one
 * `copyBufferToBuffer` per run of consecutive pages — the copy engine). `auto` picks copies on CPU
 * rasterisers (llvmpipe: memcpy beats emulated compute) and the kernel on real GPUs.
 *
 * @since 0.1.0
 * @category pages
 */
export type PageStrategy = "auto" | "kernel" | "copies"

const copyRuns = (gpu: GpuDeviceShape, src: GpuBuffer, dst: GpuBuffer, list: Uint32Array): Job =>
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

const bad = (what: string, reason: string, value?: unknown) => Effect.fail(new Invalid({ what, reason, value }))

/**
 * Validates a page list before anything is encoded: distinct buffers, non-empty pairs, pages in
 * range, destination pages distinct (the kernel writes them concurrently; copies would let the last
 * one win silently).
 */
const checkList = (src: GpuBuffer, dst: GpuBuffer, list: Uint32Array): Job | undefined => {
  if (src.buffer === dst.buffer) return bad("copyPages", "source and destination must differ (use copyWithin)")
  const n = list.length >>> 1
  if (n === 0 || list.length % 2 !== 0) return bad("page list", "must be non-empty (src, dst) pairs", list.length)
  const sp = Math.floor(src.size / PAGE)
  const dp = Math.floor(dst.size / PAGE)
  const seen = new Uint8Array(Math.ceil(dp / 8))
  for (let i = 0; i < n; i++) {
    const s = list[2 * i] as number
    const d = list[2 * i + 1] as number
    if (s >= sp) return bad(`page list[${i}] source`, `beyond ${sp} pages`, s)
    if (d >= dp) return bad(`page list[${i}] destination`, `beyond ${dp} pages`, d)
    const bit = 1 << (d & 7)
    if (((seen[d >>> 3] as number) & bit) !== 0) return bad(`page list[${i}] destination`, "listed twice", d)
    seen[d >>> 3] = (seen[d >>> 3] as number) | bit
  }
  return undefined
}

interface WindowGroup {
  readonly sw: number
  readonly dw: number
  readonly first: number
  readonly count: number
}

/**
 * Groups the pairs by (source window, destination window) and packs them window-relative, so each
 * group is one dispatch binding one window of each buffer.
 */
const groupByWindow = (
  list: Uint32Array,
  wp: number,
  dstPages: number
): { packed: Uint32Array; groups: Array<WindowGroup> } => {
  const n = list.length >>> 1
  const byKey = new Map<number, Array<number>>()
  const stride = Math.ceil(dstPages / wp) // key = source window · (destination windows) + destination window
  for (let i = 0; i < n; i++) {
    const key = Math.floor((list[2 * i] as number) / wp) * stride + Math.floor((list[2 * i + 1] as number) / wp)
    const g = byKey.get(key)
    if (g === undefined) byKey.set(key, [i])
    else g.push(i)
  }
  const packed = new Uint32Array(2 * n)
  const groups: Array<WindowGroup> = []
  let k = 0
  for (const [key, idx] of byKey) {
    const sw = Math.floor(key / stride)
    const dw = key % stride
    groups.push({ sw, dw, first: k, count: idx.length })
    for (const i of idx) {
      packed[2 * k] = (list[2 * i] as number) - sw * wp
      packed[2 * k + 1] = (list[2 * i + 1] as number) - dw * wp
      k++
    }
  }
  return { packed, groups }
}

/** The page-copy kernel: one workgroup per page, one dispatch per window group. */
const kernelJob = (gpu: GpuDeviceShape, src: GpuBuffer, dst: GpuBuffer, list: Uint32Array): Job => {
  const { packed, groups } = groupByWindow(list, windowBytes(gpu) / PAGE, Math.floor(dst.size / PAGE))
  const res = new JobBuffers(gpu)
  const l = gpu.device.limits
  const blocked = gpu.adapter.software
  const wg = !blocked && l.maxComputeInvocationsPerWorkgroup >= 256 && l.maxComputeWorkgroupSizeX >= 256 ? 256 : 64
  const p = pipeline(gpu.device, `copy-pages-${wg}-${blocked}`, copyPagesSource(wg, blocked))
  const listBuf = res.storage(packed, "page-list")
  return runJob(gpu, "copy-pages", res, (enc) => {
    for (const g of groups) {
      const u = res.uniform([g.first, g.count, 0, 0], "pages-params")
      const bg = bindGroup(gpu.device, p, [windowBinding(gpu, src, g.sw), windowBinding(gpu, dst, g.dw), listBuf, u])
      dispatch(enc, p, bg, Math.min(g.count, 65535), Math.ceil(g.count / 65535))
    }
  })
}

/**
 * Copies 4 KiB pages: pair `i` moves page `list[2i]` of `src` to page `list[2i+1]` of `dst`
 * (distinct buffers), as one job. The kernel path runs one workgroup per page, grouped by (source
 * window, destination window) so buffers larger than one binding work. Destination pages must be
 * distinct (`Invalid` otherwise, nothing submitted).
 *
 * @since 0.1.0
 * @category pages
 */
export const copyPages = (
  gpu: GpuDeviceShape,
  src: GpuBuffer,
  dst: GpuBuffer,
  list: Uint32Array,
  strategy: PageStrategy = "auto"
): Job =>
  Effect.suspend(
    () =>
      checkList(src, dst, list) ??
      (strategy === "copies" || (strategy === "auto" && gpu.adapter.software)
        ? copyRuns(gpu, src, dst, list)
        : kernelJob(gpu, src, dst, list))
  )

/**
 * Builds a page-list from `pages` and a contiguous run starting at `first`: `(pages[i], first+i)`
 * for a gather, `(first+i, pages[i])` for a scatter. Page numbers must be u32 integers (checked
 * before the `Uint32Array` would silently wrap or truncate them).
 */
const pairList = (pages: ArrayLike<number>, first: number, gather: boolean): Uint32Array | Invalid => {
  const isU32 = (x: number) => Number.isInteger(x) && x >= 0 && x <= 0xffffffff
  if (!isU32(first) || !isU32(first + Math.max(0, pages.length - 1))) {
    return new Invalid({ what: "first page", reason: "must be a u32 page number", value: first })
  }
  const list = new Uint32Array(pages.length * 2)
  for (let i = 0; i < pages.length; i++) {
    const page = pages[i] as number
    if (!isU32(page)) return new Invalid({ what: `pages[${i}]`, reason: "must be a u32 page number", value: page })
    list[2 * i + (gather ? 0 : 1)] = page
    list[2 * i + (gather ? 1 : 0)] = first + i
  }
  return list
}

/**
 * Gathers scattered source pages into a contiguous destination range starting at `dstFirstPage`
 * (TTM moving a scattered BO into one contiguous placement).
 *
 * @since 0.1.0
 * @category pages
 */
export const gather = (
  gpu: GpuDeviceShape,
  src: GpuBuffer,
  pages: ArrayLike<number>,
  dst: GpuBuffer,
  dstFirstPage = 0,
  strategy: PageStrategy = "auto"
): Job =>
  Effect.suspend(() => {
    const list = pairList(pages, dstFirstPage, true)
    return list instanceof Invalid ? Effect.fail(list) : copyPages(gpu, src, dst, list, strategy)
  })

/**
 * Scatters a contiguous source range (from `srcFirstPage`) to the listed destination pages (the
 * reverse move).
 *
 * @since 0.1.0
 * @category pages
 */
export const scatter = (
  gpu: GpuDeviceShape,
  src: GpuBuffer,
  srcFirstPage: number,
  dst: GpuBuffer,
  pages: ArrayLike<number>,
  strategy: PageStrategy = "auto"
): Job =>
  Effect.suspend(() => {
    const list = pairList(pages, srcFirstPage, false)
    return list instanceof Invalid ? Effect.fail(list) : copyPages(gpu, src, dst, list, strategy)
  })
