/**
 * xe-lite's GEM object: the gpuva view of a TTM BO, and the physical frame map the page tables
 * point into (TTM only knows manager pages; the driver decides which frame a VRAM or TT page is).
 */
import type { VmBind } from "@drmkit/gpuva"
import type { DmaResv } from "@drmkit/resv-locking"
import { type BufferObject, Placement, type Resource } from "@drmkit/ttm-placement"

const { MemType } = Placement

/**
 * The physical address map the page tables point into (frame = 4 KiB page number): VRAM pages
 * at 4 GiB (like a tile's DPA base), TT pages (GPU-mapped system pages) at 16 GiB.
 */
export const FrameBase = { VRAM: 0x10_0000, TT: 0x40_0000 } as const

/** The frame of page `page` of a VRAM or TT manager; `undefined` for other memory types. */
export const frameOfPage = (memType: number, page: number): number | undefined =>
  memType === MemType.VRAM ? FrameBase.VRAM + page : memType === MemType.TT ? FrameBase.TT + page : undefined

/** The manager page behind a frame (the inverse of {@link frameOfPage}). */
export const locate = (frame: number): { readonly memType: number; readonly page: number } => {
  if (frame >= FrameBase.TT) return { memType: MemType.TT, page: frame - FrameBase.TT }
  if (frame >= FrameBase.VRAM) return { memType: MemType.VRAM, page: frame - FrameBase.VRAM }
  return { memType: -1, page: frame }
}

/** The manager page holding page `i` of a resource (its segments in BO page order). */
export const pageOfResource = (res: Resource.Resource, i: number): number | undefined => {
  let at = 0
  for (const s of res.segments) {
    if (i < at + s.pages) return s.start + (i - at)
    at += s.pages
  }
  return undefined
}

/** Frames of a BO's current resource: contiguous when it is one segment, else a page list. */
export const framesOf = (bo: BufferObject.Bo): VmBind.Frames => {
  const res = bo.resource
  const base = res === undefined ? undefined : frameOfPage(res.memType, 0)
  if (res === undefined || base === undefined || bo.swapped) {
    throw new Error(`${bo.name} is not GPU-mappable (${res === undefined ? "no backing" : `memType ${res.memType}`})`)
  }
  if (res.segments.length === 1) return { _tag: "Contiguous", baseFrame: base + res.start }
  const frames = new Uint32Array(res.numPages)
  let i = 0
  for (const s of res.segments) for (let p = 0; p < s.pages; p++) frames[i++] = base + s.start + p
  return { _tag: "Pages", frames }
}

/**
 * gpuva's view of a TTM BO (`drm_gem_object` embedded in `xe_bo`): every field is read through
 * to the BO, so a bind (or a rebind after a move) maps the backing the BO has *now*.
 */
export class XeBo implements VmBind.BindObject {
  readonly bo: BufferObject.Bo
  /** Has its own resv (an external object) rather than the VM's. */
  readonly external: boolean
  constructor(bo: BufferObject.Bo, external: boolean) {
    this.bo = bo
    this.external = external
  }
  get name(): string {
    return this.bo.name
  }
  get size(): bigint {
    return BigInt(this.bo.size)
  }
  get resv(): DmaResv.DmaResv {
    return this.bo.resv
  }
  get frames(): VmBind.Frames {
    return framesOf(this.bo)
  }
}
