/// <reference types="@webgpu/types" />
/**
 * Adapter: the GPU engine TTM moves run on — a @drmkit/gpu `GpuDevice` (Dawn, headless) whose
 * jobs complete as `DmaFence`s, plus what TTM adds on top: dependency fences (a job is submitted
 * once every fence it depends on has signalled — pipelining), copies between extent lists
 * (overlap-safe within one buffer via a bounce), clears, writes and a checksum kernel over extent
 * lists. Only this file and `storage.ts` know about WebGPU.
 */
import { GpuDevice } from "@drmkit/gpu"
import { DmaFence } from "@drmkit/resv-locking"
import { Effect, type Scope } from "effect"
import type { FenceLike } from "./fence.ts"
import { allOf, leaves, newFence } from "./fence.ts"

type JobFence = FenceLike

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

/** A recorded job waiting for its batch's submission. */
interface Job {
  readonly kind: "encode" | "queue"
  readonly record: (enc: GPUCommandEncoder, q: GPUQueue) => void
  readonly fence: JobFence
}

/** A byte range of a GPU buffer. */
export interface Extent {
  readonly buffer: GPUBuffer
  readonly offset: number
  readonly size: number
}

const USAGE = 0x4 | 0x8 | 0x80 // COPY_SRC | COPY_DST | STORAGE

/** A headless GPU device with an in-order job queue whose jobs complete as fences. */
export class GpuEngine {
  readonly device: GPUDevice
  #alive: boolean
  #pipeline: GPUComputePipeline | undefined = undefined
  readonly gpu: GpuDevice.GpuDeviceShape
  readonly #timeline = DmaFence.contextAlloc("ttm-gpu-jobs")
  /**
   * Fences of jobs already on the queue: the queue executes in submission order, so a later job
   * depending on them needs no CPU round trip (the pipelining the kernel gets from its scheduler).
   */
  readonly #queued = new WeakSet<FenceLike>()
  /** Jobs submitted so far. */
  jobs = 0
  /** Jobs not yet completed. */
  pending = 0
  /** GPU submissions so far (jobs are batched). */
  submissions = 0
  constructor(gpu: GpuDevice.GpuDeviceShape) {
    this.gpu = gpu
    this.device = gpu.device
    this.#alive = true
  }
  /** Opens the GPU through @drmkit/gpu (`DRMKIT_GPU_BACKEND`, default auto); scoped. */
  static open(): Effect.Effect<GpuEngine, never, Scope.Scope> {
    process.env.EGL_PLATFORM ??= "surfaceless"
    return Effect.map(GpuDevice.make({ label: "ttm" }).pipe(Effect.orDie), (gpu) => new GpuEngine(gpu))
  }
  /** The adapter in words (for logs and bench tables). */
  get adapterName(): string {
    const a = this.gpu.adapter
    return `${a.backend} ${a.description}`.trim()
  }
  /** Resolves once every submitted job (including ones still waiting for deps) has completed. */
  async drain(): Promise<void> {
    while (this.pending > 0) {
      await this.device.queue.onSubmittedWorkDone()
      await new Promise<void>((r) => setImmediate(r))
    }
  }
  /** Stops submitting (the device itself is released by the `GpuDevice` scope). */
  close(): void {
    this.#alive = false
  }
  get alive(): boolean {
    return this.#alive
  }
  createBuffer(size: number, label: string): GPUBuffer {
    return this.device.createBuffer({ size: Math.max(4, size), usage: USAGE, label })
  }
  /**
   * Submits a job once `deps` are satisfied — signalled, or jobs already on this (in-order) queue —
   * and returns its fence, signalled when the GPU finished it. Foreign fences (another engine's
   * jobs, CPU-signalled fences) gate the submission until they signal. Jobs ready in the same
   * synchronous stretch are batched into one GPU submission at the next microtask (queue-level
   * writes split the batch so they stay in order).
   */
  submit(
    _name: string,
    deps: ReadonlyArray<FenceLike>,
    record: (enc: GPUCommandEncoder, q: GPUQueue) => void,
    kind: "encode" | "queue" = "encode"
  ): JobFence {
    const fence = newFence(this.#timeline)
    this.jobs++
    this.pending++
    fence.addCallback(() => {
      this.pending--
    })
    const job: Job = { kind, record, fence }
    const pending = deps.flatMap(leaves).filter((d) => !d.isSignaled && !this.#queued.has(d))
    if (pending.length === 0) this.#enqueue(job)
    else allOf(pending).addCallback(() => this.#enqueue(job))
    return fence
  }
  #open: Array<Job> | undefined = undefined
  #enqueue(job: Job): void {
    if (this.#open === undefined) {
      this.#open = []
      queueMicrotask(() => this.#flush())
    }
    this.#open.push(job)
    this.#queued.add(job.fence)
  }
  #flush(): void {
    const jobs = this.#open ?? []
    this.#open = undefined
    let group: Array<Job> = []
    const submitGroup = () => {
      if (group.length === 0) return
      const g = group
      group = []
      this.#submitNow(g)
    }
    for (const j of jobs) {
      if (j.kind === "queue") {
        submitGroup()
        group = [j]
        submitGroup()
      } else group.push(j)
    }
    submitGroup()
  }
  /** One GPU submission for `jobs` (in order); every job's fence follows the submission's. */
  #submitNow(jobs: ReadonlyArray<Job>): void {
    const signal = (error?: Error) => {
      for (const j of jobs) j.fence.signal(error)
    }
    if (!this.alive) {
      signal(new Error("device closed"))
      return
    }
    this.submissions++
    const sub = this.gpu
      .submit("ttm", (enc) => {
        for (const j of jobs) j.record(enc, this.device.queue)
      })
      .pipe(
        Effect.match({
          onFailure: (e) => signal(e instanceof Error ? e : new Error(String(e))),
          onSuccess: (done) => {
            if (!done.addCallback(() => signal(done.error))) signal(done.error)
          }
        })
      )
    Effect.runFork(sub)
  }
  /** Copies `src` extents to `dst` extents (same total size), overlap-safe within a buffer. */
  copy(deps: ReadonlyArray<FenceLike>, src: ReadonlyArray<Extent>, dst: ReadonlyArray<Extent>): JobFence {
    const pairs = pairUp(src, dst)
    const same = pairs.some(([s, d]) => s.buffer === d.buffer)
    const total = pairs.reduce((n, [s]) => n + s.size, 0)
    const scratch = same ? this.createBuffer(total, "move-bounce") : undefined
    const fence = this.submit("copy", deps, (enc) => {
      let at = 0
      for (const [s, d] of pairs) {
        if (scratch === undefined) enc.copyBufferToBuffer(s.buffer, s.offset, d.buffer, d.offset, s.size)
        else enc.copyBufferToBuffer(s.buffer, s.offset, scratch, at, s.size)
        at += s.size
      }
      at = 0
      for (const [s, d] of scratch === undefined ? [] : pairs) {
        enc.copyBufferToBuffer(scratch as GPUBuffer, at, d.buffer, d.offset, s.size)
        at += s.size
      }
    })
    if (scratch !== undefined) fence.addCallback(() => scratch.destroy())
    return fence
  }
  /** Zero-fills extents (`clearBuffer`). */
  clear(deps: ReadonlyArray<FenceLike>, dst: ReadonlyArray<Extent>): JobFence {
    return this.submit("clear", deps, (enc) => {
      for (const d of dst) enc.clearBuffer(d.buffer, d.offset, d.size)
    })
  }
  /** Writes `data` across extents (`queue.writeBuffer`, ordered after deps). */
  write(deps: ReadonlyArray<FenceLike>, dst: ReadonlyArray<Extent>, data: Uint8Array): JobFence {
    const copy = data.slice()
    return this.submit(
      "write",
      deps,
      (_enc, q) => {
        let at = 0
        for (const d of dst) {
          q.writeBuffer(d.buffer, d.offset, copy, at, d.size)
          at += d.size
        }
      },
      "queue"
    )
  }
  /** Reads extents back to the host (staging buffer + `mapAsync`). */
  readback(deps: ReadonlyArray<FenceLike>, src: ReadonlyArray<Extent>): Promise<Uint8Array> {
    return this.readbackJob(deps, src).value
  }
  /** {@link readback} that also exposes the copy job's fence. */
  readbackJob(
    deps: ReadonlyArray<FenceLike>,
    src: ReadonlyArray<Extent>
  ): { fence: JobFence; value: Promise<Uint8Array> } {
    const total = src.reduce((n, e) => n + e.size, 0)
    const staging = this.device.createBuffer({ size: Math.max(4, total), usage: 0x1 | 0x8 })
    const done = this.submit("readback", deps, (enc) => {
      let at = 0
      for (const s of src) {
        enc.copyBufferToBuffer(s.buffer, s.offset, staging, at, s.size)
        at += s.size
      }
    })
    const value = new Promise<void>((r) => (done.addCallback(() => r()) ? undefined : r()))
      .then(() => staging.mapAsync(1))
      .then(() => {
        const out = new Uint8Array(staging.getMappedRange().slice(0, total))
        staging.unmap()
        staging.destroy()
        return out
      })
    return { fence: done, value }
  }
  /** Checksum of extents computed on the GPU (see {@link checksumCpu}); reads back 4 bytes. */
  checksum(deps: ReadonlyArray<FenceLike>, src: ReadonlyArray<Extent>): { fence: JobFence; value: Promise<number> } {
    const pipeline = this.#checksumPipeline()
    const acc = this.device.createBuffer({ size: 4, usage: USAGE })
    const uniforms: Array<GPUBuffer> = []
    const fence = this.submit("checksum", deps, (enc) => {
      const pass = enc.beginComputePass()
      pass.setPipeline(pipeline)
      let base = 0
      for (const s of src) {
        const u = this.device.createBuffer({ size: 16, usage: 0x40 | 0x8 })
        this.device.queue.writeBuffer(u, 0, new Uint32Array([base, 0, 0, 0]))
        uniforms.push(u)
        const entries = [
          { binding: 0, resource: { buffer: s.buffer, offset: s.offset, size: s.size } },
          { binding: 1, resource: { buffer: acc } },
          { binding: 2, resource: { buffer: u } }
        ]
        pass.setBindGroup(0, this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }))
        pass.dispatchWorkgroups(Math.max(1, Math.min(256, Math.ceil(s.size / 4 / 64))))
        base += s.size / 4
      }
      pass.end()
    })
    const value = this.readback([fence], [{ buffer: acc, offset: 0, size: 4 }]).then((bytes) => {
      acc.destroy()
      for (const u of uniforms) u.destroy()
      return new Uint32Array(bytes.buffer, 0, 1)[0] ?? 0
    })
    return { fence, value }
  }
  /**
   * Checksums of many extent lists in one job and one 4-byte-per-item readback (verification
   * harnesses: cheap enough to run after every step).
   */
  checksumMany(deps: ReadonlyArray<FenceLike>, items: ReadonlyArray<ReadonlyArray<Extent>>): Promise<Array<number>> {
    const pipeline = this.#checksumPipeline()
    const stride = 256 // minStorageBufferOffsetAlignment
    const acc = this.device.createBuffer({ size: Math.max(4, items.length * stride), usage: USAGE })
    const temps: Array<GPUBuffer> = []
    const fence = this.submit("checksum-many", deps, (enc) => {
      const pass = enc.beginComputePass()
      pass.setPipeline(pipeline)
      items.forEach((src, k) => {
        let base = 0
        for (const s of src) {
          const u = this.device.createBuffer({ size: 16, usage: 0x40 | 0x8 })
          this.device.queue.writeBuffer(u, 0, new Uint32Array([base, 0, 0, 0]))
          temps.push(u)
          const entries = [
            { binding: 0, resource: { buffer: s.buffer, offset: s.offset, size: s.size } },
            { binding: 1, resource: { buffer: acc, offset: k * stride, size: 4 } },
            { binding: 2, resource: { buffer: u } }
          ]
          pass.setBindGroup(0, this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }))
          pass.dispatchWorkgroups(Math.max(1, Math.min(256, Math.ceil(s.size / 4 / 64))))
          base += s.size / 4
        }
      })
      pass.end()
    })
    return this.readback([fence], [{ buffer: acc, offset: 0, size: Math.max(4, items.length * stride) }]).then(
      (bytes) => {
        acc.destroy()
        for (const u of temps) u.destroy()
        const words = new Uint32Array(bytes.buffer)
        return items.map((_, k) => words[(k * stride) / 4] ?? 0)
      }
    )
  }
  #checksumPipeline(): GPUComputePipeline {
    this.#pipeline ??= this.device.createComputePipeline({
      layout: "auto",
      compute: { module: this.device.createShaderModule({ code: CHECKSUM_WGSL }), entryPoint: "main" }
    })
    return this.#pipeline
  }
}

/** Splits two extent lists of equal total size into pairs of equal-size pieces. */
export const pairUp = (src: ReadonlyArray<Extent>, dst: ReadonlyArray<Extent>): Array<[Extent, Extent]> => {
  const out: Array<[Extent, Extent]> = []
  let i = 0
  let j = 0
  let si = 0
  let dj = 0
  while (i < src.length && j < dst.length) {
    const s = src[i] as Extent
    const d = dst[j] as Extent
    const n = Math.min(s.size - si, d.size - dj)
    out.push([
      { buffer: s.buffer, offset: s.offset + si, size: n },
      { buffer: d.buffer, offset: d.offset + dj, size: n }
    ])
    si += n
    dj += n
    if (si === s.size) [i, si] = [i + 1, 0]
    if (dj === d.size) [j, dj] = [j + 1, 0]
  }
  return out
}
