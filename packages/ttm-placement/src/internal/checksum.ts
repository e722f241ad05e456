/// <reference types="@webgpu/types" />
/**
 * The content checksum of the verification harness (`Access.checksum`, `Debug`): a WGSL kernel over
 * extent lists whose word index runs on across extents, so a BO's checksum does not depend on how
 * its pages are split into segments (why this is not `Migrate.checksum`, which restarts the index
 * per range). Many BOs are summed in one GPU job with one 4-byte slot each, read back together.
 */
import type { FenceLike } from "./fence.ts"
import type { Extent, GpuEngine } from "./gpu.ts"

const CHECKSUM_WGSL = /* wgsl */ `
@group(0) @binding(0) var<storage, read> data: array<u32>;
@group(0) @binding(1) var<storage, read_write> acc: array<atomic<u32>>;
@group(0) @binding(2) var<uniform> base: vec4<u32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
  let count = arrayLength(&data);
  var s = 0u;
  for (var i = g.x; i < count; i = i + n.x * 64u) {
    let k = base.x + i;
    s = s + ((data[i] ^ (k * 2654435761u)) * 2246822519u + k);
  }
  atomicAdd(&acc[0], s);
}`

/** The CPU reference of the checksum kernel over `words` whose first word has index `base`. */
export const checksumCpu = (words: Uint32Array, base = 0): number => {
  let s = 0
  for (let i = 0; i < words.length; i++) {
    const k = (base + i) >>> 0
    const x = ((words[i] ?? 0) ^ Math.imul(k, 2654435761)) >>> 0
    s = (s + Math.imul(x, 2246822519) + k) >>> 0
  }
  return s
}

const USAGE = 0x4 | 0x8 | 0x80 // COPY_SRC | COPY_DST | STORAGE
const STRIDE = 256 // minStorageBufferOffsetAlignment
const pipelines = new WeakMap<GPUDevice, GPUComputePipeline>()

const pipelineOf = (device: GPUDevice): GPUComputePipeline => {
  let p = pipelines.get(device)
  if (p === undefined) {
    const module = device.createShaderModule({ code: CHECKSUM_WGSL })
    p = device.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } })
    pipelines.set(device, p)
  }
  return p
}

/** Checksums of `items` (extent lists) in one GPU job after `deps`; one readback for all. */
export const checksumJob = (
  gpu: GpuEngine,
  deps: ReadonlyArray<FenceLike>,
  items: ReadonlyArray<ReadonlyArray<Extent>>
): { fence: FenceLike; value: Promise<Array<number>> } => {
  const device = gpu.device
  const pipeline = pipelineOf(device)
  const acc = device.createBuffer({ size: Math.max(4, items.length * STRIDE), usage: USAGE })
  const temps: Array<GPUBuffer> = []
  const fence = gpu.submit("checksum", deps, (enc) => {
    const pass = enc.beginComputePass()
    pass.setPipeline(pipeline)
    items.forEach((src, k) => {
      let base = 0
      for (const s of src) {
        const u = device.createBuffer({ size: 16, usage: 0x40 | 0x8 })
        device.queue.writeBuffer(u, 0, new Uint32Array([base, 0, 0, 0]))
        temps.push(u)
        const entries = [
          { binding: 0, resource: { buffer: s.buffer, offset: s.offset, size: s.size } },
          { binding: 1, resource: { buffer: acc, offset: k * STRIDE, size: 4 } },
          { binding: 2, resource: { buffer: u } }
        ]
        pass.setBindGroup(0, device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }))
        pass.dispatchWorkgroups(Math.max(1, Math.min(256, Math.ceil(s.size / 4 / 64))))
        base += s.size / 4
      }
    })
    pass.end()
  })
  const value = gpu.readback([fence], [{ buffer: acc, offset: 0, size: acc.size }]).then((bytes) => {
    acc.destroy()
    for (const u of temps) u.destroy()
    const words = new Uint32Array(bytes.buffer)
    return items.map((_, k) => words[(k * STRIDE) / 4] ?? 0)
  })
  return { fence, value }
}

/** Checksum of one extent list on the GPU (see {@link checksumCpu}), with the job's fence. */
export const checksum = (
  gpu: GpuEngine,
  deps: ReadonlyArray<FenceLike>,
  src: ReadonlyArray<Extent>
): { fence: FenceLike; value: Promise<number> } => {
  const job = checksumJob(gpu, deps, [src])
  return { fence: job.fence, value: job.value.then((v) => v[0] ?? 0) }
}

/** Checksums of many extent lists in one job (verification harnesses: cheap after every step). */
export const checksumMany = (
  gpu: GpuEngine,
  deps: ReadonlyArray<FenceLike>,
  items: ReadonlyArray<ReadonlyArray<Extent>>
): Promise<Array<number>> => checksumJob(gpu, deps, items).value
