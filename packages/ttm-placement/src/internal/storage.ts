/// <reference types="@webgpu/types" />
/**
 * Where resource contents live on the GPU: fixed managers (VRAM, TT, private types) are one arena
 * buffer each, addressed by page; every SYSTEM resource gets its own GPU-visible buffer (created on
 * first use, zero-filled, destroyed once the fences that may still use it have signalled).
 */
import { PAGE_SIZE } from "../Placement.ts"
import type { Resource } from "../Resource.ts"
import type { FenceLike } from "./fence.ts"
import { allOf } from "./fence.ts"
import type { Extent, GpuEngine } from "./gpu.ts"

export class Storage {
  readonly gpu: GpuEngine
  readonly arenas = new Map<number, GPUBuffer>()
  readonly perResource = new Map<Resource, GPUBuffer>()
  constructor(gpu: GpuEngine) {
    this.gpu = gpu
  }
  /** Creates the arena of a fixed manager. */
  addArena(memType: number, bytes: number, label: string): void {
    this.arenas.set(memType, this.gpu.createBuffer(bytes, label))
  }
  /** Byte extents of `res`, in segment order. */
  extents(res: Resource): Array<Extent> {
    const arena = this.arenas.get(res.memType)
    if (arena !== undefined) {
      return res.segments.map((s) => ({ buffer: arena, offset: s.start * PAGE_SIZE, size: s.pages * PAGE_SIZE }))
    }
    let buf = this.perResource.get(res)
    if (buf === undefined) {
      buf = this.gpu.createBuffer(res.numPages * PAGE_SIZE, `system-${res.owner.id}`)
      this.perResource.set(res, buf)
    }
    return [{ buffer: buf, offset: 0, size: res.numPages * PAGE_SIZE }]
  }
  /** Drops per-resource backing once `after` fences have signalled. */
  release(res: Resource, after: ReadonlyArray<FenceLike>): void {
    const buf = this.perResource.get(res)
    if (buf === undefined) return
    this.perResource.delete(res)
    const gone = allOf(after)
    if (!gone.addCallback(() => buf.destroy())) buf.destroy()
  }
  /** Number of live per-resource buffers (leak checks). */
  get liveSystemBuffers(): number {
    return this.perResource.size
  }
  close(): void {
    for (const b of this.arenas.values()) b.destroy()
    for (const b of this.perResource.values()) b.destroy()
    this.arenas.clear()
    this.perResource.clear()
  }
}
