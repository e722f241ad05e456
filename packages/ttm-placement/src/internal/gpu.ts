/// <reference types="@webgpu/types" />
/**
 * Adapter: the GPU engine TTM moves run on — a @drmkit/gpu `GpuDevice` (Dawn, headless) whose
 * jobs complete as `DmaFence`s, plus what TTM adds on top: dependency fences (a job is submitted
 * once every fence it depends on has signalled — pipelining, the kernel's scheduler dependencies)
 * and batching (jobs ready in one synchronous stretch share one submission).
 *
 * What comes from @drmkit/gpu and what stays here:
 * - overlap-safe copies inside one buffer and clears are `Migrate.copyWithin` / `Migrate.fill`
 *   jobs (each its own submission, kept in queue order with the batched jobs);
 * - copies between two buffers stay a batched `copyBufferToBuffer` recorded into the shared
 *   submission: `Migrate.copy`/`copyPages` submit one job each, and on llvmpipe a submission per
 *   2 MiB move costs ~40 % more than one batched submission (measured), which is the eviction
 *   hot path;
 * - writes and readbacks stay here because their job fence must go into the BO's resv (WRITE /
 *   READ), and `GpuBuffer.upload`/`download` expose no fence;
 * - the checksum kernel stays ttm-side (`checksum.ts`) because a BO's checksum must not depend on
 *   how its pages are split into segments: word indices run on across extents, while
 *   `Migrate.checksum` restarts the index at each range.
 *
 * Only this file and `storage.ts` know about WebGPU.
 */
import { type GpuBuffer, GpuDevice, Migrate } from "@drmkit/gpu"
import { DmaFence } from "@drmkit/resv-locking"
import { Effect, type Scope } from "effect"
import type { FenceLike } from "./fence.ts"
import { allOf, leaves, newFence } from "./fence.ts"

type JobFence = FenceLike

/** A @drmkit/gpu job that submits itself; its fence is the last of the jobs it ran. */
type OwnJob = Effect.Effect<FenceLike | undefined, unknown>

/**
 * A job waiting for its batch's submission: commands recorded into the shared encoder, a
 * queue-level write, or a @drmkit/gpu job that submits on its own (both split the batch).
 */
type Job =
  | {
      readonly kind: "encode" | "queue"
      readonly record: (enc: GPUCommandEncoder, q: GPUQueue) => void
      readonly fence: JobFence
    }
  | { readonly kind: "own"; readonly run: OwnJob; readonly fence: JobFence }

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
  readonly gpu: GpuDevice.GpuDeviceShape
  readonly #timeline = DmaFence.contextAlloc("ttm-gpu-jobs")
  /**
   * Fences of jobs already on the queue: the queue executes in submission order, so a later job
   * depending on them needs no CPU round trip (the pipelining the kernel gets from its scheduler).
   */
  readonly #queued = new WeakSet<FenceLike>()
  /**
   * Whether `f` is a job already on this in-order queue: every job scheduled from now on completes
   * after it (the same-context `dma_fence_is_later` shortcut), so it need not be waited for apart.
   */
  isQueued(f: FenceLike): boolean {
    return this.#queued.has(f)
  }
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
  /**
   * Runs TTM's jobs on `gpu` when given (a device the caller owns and shares, e.g. with page-table
   * jobs); otherwise opens one through @drmkit/gpu (`DRMKIT_GPU_BACKEND`, default auto) for the
   * scope.
   */
  static open(gpu?: GpuDevice.GpuDeviceShape): Effect.Effect<GpuEngine, never, Scope.Scope> {
    if (gpu !== undefined) return Effect.succeed(new GpuEngine(gpu))
    process.env.EGL_PLATFORM ??= "surfaceless"
    return Effect.map(GpuDevice.make({ label: "ttm" }).pipe(Effect.orDie), (g) => new GpuEngine(g))
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
    return this.#schedule(deps, (fence) => ({ kind, record, fence }))
  }
  /** Runs a @drmkit/gpu job (it submits itself) in queue order once `deps` are satisfied. */
  own(deps: ReadonlyArray<FenceLike>, run: OwnJob): JobFence {
    return this.#schedule(deps, (fence) => ({ kind: "own", run, fence }))
  }
  #schedule(deps: ReadonlyArray<FenceLike>, make: (fence: JobFence) => Job): JobFence {
    const fence = newFence(this.#timeline)
    this.jobs++
    this.pending++
    fence.addCallback(() => {
      this.pending--
    })
    const job = make(fence)
    let pending: Array<FenceLike> | undefined
    for (const dep of deps) {
      for (const d of leaves(dep)) if (!d.isSignaled && !this.#queued.has(d)) (pending ??= []).push(d)
    }
    if (pending === undefined) this.#enqueue(job)
    else allOf(pending).addCallback(() => this.#enqueue(job))
    return fence
  }
  #open: Array<Job> | undefined = undefined
  /**
   * Jobs behind a self-submitting job that has not finished submitting yet (debug mode: each of
   * its pieces waits for the error-scope check before the next is submitted). Every later job
   * waits here, so queue order — which `#queued` relies on — holds across its pieces.
   */
  #backlog: Array<Job> | undefined = undefined
  #enqueue(job: Job): void {
    this.#queued.add(job.fence)
    if (this.#backlog !== undefined) {
      this.#backlog.push(job)
      return
    }
    if (this.#open === undefined) {
      this.#open = []
      queueMicrotask(() => this.#flush())
    }
    this.#open.push(job)
  }
  #flush(): void {
    const jobs = this.#open ?? []
    this.#open = undefined
    this.#submitInOrder(jobs)
  }
  /**
   * Submits `jobs` in order: consecutive encoder jobs share one submission, queue-level writes and
   * self-submitting jobs split it. A self-submitting job that goes async before submitting all its
   * pieces parks the rest (and every job enqueued meanwhile) until it is done.
   */
  #submitInOrder(jobs: ReadonlyArray<Job>): void {
    let group: Array<Job> = []
    const submitGroup = () => {
      if (group.length === 0) return
      const g = group
      group = []
      this.#submitNow(g)
    }
    for (let i = 0; i < jobs.length; i++) {
      const j = jobs[i] as Job
      if (j.kind === "own") {
        submitGroup()
        if (!this.#runOwn(j.run, j.fence)) {
          this.#backlog = jobs.slice(i + 1)
          return
        }
      } else if (j.kind === "queue") {
        submitGroup()
        group = [j]
        submitGroup()
      } else group.push(j)
    }
    submitGroup()
  }
  /** The self-submitting job in flight has submitted all its pieces: release the parked jobs. */
  #resume(): void {
    const parked = this.#backlog ?? []
    this.#backlog = undefined
    this.#submitInOrder(parked)
  }
  /**
   * Starts a self-submitting job; true when it submitted everything synchronously. Outside debug
   * mode its `gpu.submit` calls run synchronously through `queue.submit`, so it returns true; in
   * debug mode each piece awaits its error scopes before the next piece is submitted, so it
   * returns false and {@link #resume} releases the parked jobs once the last piece is in.
   */
  #runOwn(run: OwnJob, fence: JobFence): boolean {
    if (!this.alive) {
      fence.signal(new Error("device closed"))
      return true
    }
    this.submissions++
    let sync = true
    let done = false
    const finish = () => {
      done = true
      if (!sync) this.#resume()
    }
    const follow = (last: FenceLike | undefined) => {
      if (last === undefined || !last.addCallback(() => fence.signal(last.error))) fence.signal(last?.error)
    }
    Effect.runFork(
      run.pipe(
        Effect.match({
          onFailure: (e) => {
            fence.signal(e instanceof Error ? e : new Error(String(e)))
            finish()
          },
          onSuccess: (last) => {
            follow(last)
            finish()
          }
        })
      )
    )
    sync = false
    return done
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
        for (const j of jobs) if (j.kind !== "own") j.record(enc, this.device.queue)
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
  /**
   * Copies `src` extents to `dst` extents (same total size). Between two buffers: batched
   * `copyBufferToBuffer` commands. Inside one buffer (a move within one arena): one
   * `Migrate.copyWithin` per piece — each overlap-safe; the pieces themselves never overlap one
   * another, since a move's old and new resources are both allocated while it runs.
   */
  copy(deps: ReadonlyArray<FenceLike>, src: ReadonlyArray<Extent>, dst: ReadonlyArray<Extent>): JobFence {
    const pairs = pairUp(src, dst)
    if (pairs.some(([s, d]) => s.buffer === d.buffer)) {
      return this.own(
        deps,
        Effect.reduce(
          pairs,
          (): FenceLike | undefined => undefined,
          (_, [s, d]) => Migrate.copyWithin(this.gpu, handle(s.buffer), s.offset, d.offset, s.size)
        )
      )
    }
    return this.submit("copy", deps, (enc) => {
      for (const [s, d] of pairs) enc.copyBufferToBuffer(s.buffer, s.offset, d.buffer, d.offset, s.size)
    })
  }
  /** Zero-fills extents: one `Migrate.fill` job per extent. */
  clear(deps: ReadonlyArray<FenceLike>, dst: ReadonlyArray<Extent>): JobFence {
    return this.own(
      deps,
      Effect.reduce(
        dst,
        (): FenceLike | undefined => undefined,
        (_, d) => Migrate.fill(this.gpu, handle(d.buffer), d.offset, d.size)
      )
    )
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
}

/** A @drmkit/gpu buffer handle for a raw `GPUBuffer`. */
const handle = (buffer: GPUBuffer): GpuBuffer.GpuBuffer => ({
  buffer,
  size: buffer.size,
  usage: buffer.usage,
  label: buffer.label
})

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
