/** Shared helpers for GPU jobs: per-device pipeline cache, small uniform buffers, job-owned buffers. */
import type { GpuBuffer } from "../GpuBuffer.ts"
import type { GpuDeviceShape } from "../GpuDevice.ts"
import type { Fence } from "./fence.ts"

const cache = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>()

/** Compute pipeline for `code` (entry point `entry`), compiled once per device. */
export const pipeline = (device: GPUDevice, key: string, code: string, entry = "main"): GPUComputePipeline => {
  let m = cache.get(device)
  if (m === undefined) {
    m = new Map()
    cache.set(device, m)
  }
  const hit = m.get(key)
  if (hit !== undefined) return hit
  const module = device.createShaderModule({ label: key, code })
  const p = device.createComputePipeline({ label: key, layout: "auto", compute: { module, entryPoint: entry } })
  m.set(key, p)
  return p
}

/** Buffers owned by one job, destroyed once its fence signals (like a job's BO references). */
export class JobBuffers {
  readonly list: Array<GPUBuffer> = []
  private readonly device: GPUDevice
  constructor(gpu: GpuDeviceShape) {
    this.device = gpu.device
  }
  storage(data: Uint32Array, label: string): GPUBuffer {
    const b = this.device.createBuffer({ size: Math.max(16, data.byteLength), usage: 0x80 | 0x8 | 0x4, label })
    this.device.queue.writeBuffer(b, 0, data)
    this.list.push(b)
    return b
  }
  empty(bytes: number, label: string, usage = 0x80 | 0x8 | 0x4): GPUBuffer {
    const b = this.device.createBuffer({ size: Math.max(16, bytes), usage, label })
    this.list.push(b)
    return b
  }
  uniform(words: ReadonlyArray<number>, label: string): GPUBuffer {
    const b = this.device.createBuffer({ size: 16, usage: 0x40 | 0x8, label })
    this.device.queue.writeBuffer(b, 0, new Uint32Array([...words, 0, 0, 0, 0].slice(0, 4)))
    this.list.push(b)
    return b
  }
  releaseAfter(fence: Fence): void {
    const free = () => {
      for (const b of this.list) b.destroy()
    }
    if (!fence.addCallback(free)) free()
  }
  destroyNow(): void {
    for (const b of this.list) b.destroy()
  }
}

/** Bind group from (buffer | [buffer, offset, size]) entries in binding order. */
export const bindGroup = (
  device: GPUDevice,
  p: GPUComputePipeline,
  entries: ReadonlyArray<GPUBuffer | readonly [GPUBuffer, number, number]>
): GPUBindGroup =>
  device.createBindGroup({
    layout: p.getBindGroupLayout(0),
    entries: entries.map((e, binding) =>
      Array.isArray(e)
        ? { binding, resource: { buffer: e[0], offset: e[1], size: e[2] } }
        : { binding, resource: { buffer: e as GPUBuffer } }
    )
  })

/** One compute pass with a single dispatch. */
export const dispatch = (enc: GPUCommandEncoder, p: GPUComputePipeline, bg: GPUBindGroup, x: number, y = 1): void => {
  const pass = enc.beginComputePass()
  pass.setPipeline(p)
  pass.setBindGroup(0, bg)
  pass.dispatchWorkgroups(x, y)
  pass.end()
}

/** A `GpuBuffer` handle for a job-owned buffer (to download a kernel's result through staging). */
export const asHandle = (buffer: GPUBuffer, size: number, label: string): GpuBuffer => ({
  buffer,
  size,
  usage: buffer.usage,
  label
})
