/**
 * A headless Dawn device as an Effect service with a scoped Layer. Models the probe/remove pair of
 * a DRM driver (`drm_dev_register` / `drm_dev_unplug`) plus its job submission: `submit` returns a
 * `dma_fence` signalled from `queue.onSubmittedWorkDone()`, in submission order per queue, the way
 * `drm_sched` signals a job's finished fence.
 *
 * Backend selection is explicit: the `backend` option, else `DRMKIT_GPU_BACKEND`, else `auto`
 * (Vulkan with feature level `core` when a GPU device node exists and the adapter is not a CPU
 * rasteriser; otherwise OpenGL ES on Mesa llvmpipe in compatibility mode with
 * `EGL_PLATFORM=surfaceless`).
 *
 * @since 0.1.0
 */
import { existsSync, readdirSync } from "node:fs"
import { CurrentTraceSink, traceNow } from "@drmkit/core"
import { Context, Effect, Layer } from "effect"
import { create } from "webgpu"
import { DeviceLost, fromWebGpu, type GpuError, GpuUnavailable } from "./GpuErrors.ts"
import * as Fence from "./internal/fence.ts"
import { inErrorScopes } from "./internal/scopes.ts"

/** @since 0.1.0 @category options */
export type Backend = "auto" | "vulkan" | "opengles" | "opengl" | "metal" | "d3d12"

/**
 * Options of {@link layer}. Every field falls back to an environment variable, then a default.
 *
 * @since 0.1.0
 * @category options
 */
export interface Options {
  /** `DRMKIT_GPU_BACKEND`; default `auto`. */
  readonly backend?: Backend
  /** Error scopes around every submission (`DRMKIT_GPU_DEBUG=1`); default false. */
  readonly debug?: boolean
  /** Request the adapter's maxima for buffer/binding/workgroup limits (default true). */
  readonly adapterLimits?: boolean
  /** Label used for the device and its fence timeline. */
  readonly label?: string
}

/**
 * The adapter actually chosen (logged by tests and benches).
 *
 * @since 0.1.0
 * @category models
 */
export interface AdapterReport {
  readonly backend: Exclude<Backend, "auto">
  readonly featureLevel: "core" | "compatibility"
  readonly vendor: string
  readonly architecture: string
  readonly device: string
  readonly description: string
  readonly software: boolean
  readonly limits: Readonly<Record<LimitName, number>>
}

/**
 * The service: the raw `GPUDevice` for kernels, the adapter report, and the job queue.
 *
 * @since 0.1.0
 * @category models
 */
export interface GpuDeviceShape {
  readonly device: GPUDevice
  readonly adapter: AdapterReport
  readonly debug: boolean
  /** Fails with the pending uncaptured error or the loss reason, if any. */
  readonly check: Effect.Effect<void, DeviceLost | GpuError>
  /**
   * Encodes commands with `build`, submits them as one job and returns its fence (signalled when
   * the queue finishes it; fences of one device signal in submission order). With a trace sink in
   * `CurrentTraceSink`, each job becomes an `X` slice (cat `gpu`, tid = the queue's timeline) from
   * submit to fence signal. Debug mode wraps the
   * job in validation/out-of-memory error scopes and fails with {@link GpuError}.
   */
  readonly submit: (
    label: string,
    build: (encoder: GPUCommandEncoder) => void
  ) => Effect.Effect<Fence.Fence, DeviceLost | GpuError>
  /** Number of jobs submitted so far. */
  readonly submitted: () => number
}

/**
 * Service key.
 *
 * @since 0.1.0
 * @category services
 */
export class GpuDevice extends Context.Service<GpuDevice, GpuDeviceShape>()("drmkit/gpu/GpuDevice") {}

const SOFTWARE = /llvmpipe|lavapipe|swiftshader|softpipe|software/i

const hasGpuNode = (): boolean => {
  if (process.platform !== "linux") return true
  if (existsSync("/dev/nvidia0")) return true
  try {
    return readdirSync("/dev/dri").some((f) => f.startsWith("renderD"))
  } catch {
    return false
  }
}

/**
 * Resolves the backend to try first (explicit option > env var > auto detection).
 *
 * @since 0.1.0
 * @category options
 */
export const resolveBackend = (option?: Backend): Backend => {
  const env = process.env.DRMKIT_GPU_BACKEND
  return option ?? (env !== undefined && env !== "" ? (env as Backend) : "auto")
}

const BACKENDS: ReadonlyArray<string> = ["auto", "vulkan", "opengles", "opengl", "metal", "d3d12"]

/**
 * Whether `name` is a backend Dawn is asked for (guards `DRMKIT_GPU_BACKEND` typos, which would
 * otherwise reach `create()` as an unknown toggle).
 *
 * @since 0.1.0
 * @category options
 */
export const isBackend = (name: string): name is Backend => BACKENDS.includes(name)

const LIMIT_NAMES = [
  "maxBufferSize",
  "maxStorageBufferBindingSize",
  "maxStorageBuffersPerShaderStage",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupsPerDimension",
  "minStorageBufferOffsetAlignment",
  "minUniformBufferOffsetAlignment",
  "maxUniformBufferBindingSize"
] as const

/** Limits the adapter report lists (and the device requests at the adapter's maximum). @since 0.1.0 @category models */
export type LimitName = (typeof LIMIT_NAMES)[number]

interface Held {
  instance: GPU | undefined
  adapter: GPUAdapter
  backend: Exclude<Backend, "auto">
  featureLevel: "core" | "compatibility"
}

const tryAdapter = async (backend: Exclude<Backend, "auto">): Promise<Held | undefined> => {
  const featureLevel = backend === "opengles" || backend === "opengl" ? "compatibility" : "core"
  const instance = create([`backend=${backend}`])
  const adapter = await instance.requestAdapter({ featureLevel, powerPreference: "high-performance" })
  return adapter === null ? undefined : { instance, adapter, backend, featureLevel }
}

const pickAdapter = async (backend: Backend): Promise<Held> => {
  process.env.EGL_PLATFORM ??= "surfaceless"
  if (backend !== "auto") {
    const h = await tryAdapter(backend)
    if (h === undefined) throw new Error(`no adapter for backend=${backend}`)
    return h
  }
  if (hasGpuNode()) {
    const native = process.platform === "darwin" ? "metal" : process.platform === "win32" ? "d3d12" : "vulkan"
    const h = await tryAdapter(native).catch(() => undefined)
    if (h !== undefined && !SOFTWARE.test(`${h.adapter.info.description} ${h.adapter.info.device}`)) return h
  }
  const gl = await tryAdapter("opengles")
  if (gl === undefined) throw new Error("no adapter (is Mesa EGL installed and EGL_PLATFORM=surfaceless set?)")
  return gl
}

const requiredLimits = (adapter: GPUAdapter): Record<string, number> => {
  const out: Record<string, number> = {}
  for (const k of LIMIT_NAMES) out[k] = adapter.limits[k]
  return out
}

const report = (h: Held, device: GPUDevice): AdapterReport => {
  const limits = {} as Record<LimitName, number>
  for (const k of LIMIT_NAMES) limits[k] = device.limits[k]
  const i = h.adapter.info
  return {
    backend: h.backend,
    featureLevel: h.featureLevel,
    vendor: i.vendor,
    architecture: i.architecture,
    device: i.device,
    description: i.description,
    software: SOFTWARE.test(`${i.description} ${i.device}`),
    limits
  }
}

/**
 * Acquires a device (scoped): on scope close every pending job is awaited, the device destroyed
 * and the Dawn instance released — the instance stays referenced by the release closure for the
 * device's whole lifetime (dropping it early crashes Node).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}) =>
  Effect.gen(function* () {
    const backend = resolveBackend(options.backend)
    if (!isBackend(backend)) {
      return yield* new GpuUnavailable({ backend, reason: `unknown backend (expected ${BACKENDS.join("|")})` })
    }
    const debug = options.debug ?? process.env.DRMKIT_GPU_DEBUG === "1"
    const label = options.label ?? "drmkit-gpu"
    const held = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          const h = await pickAdapter(backend)
          const device = await h.adapter.requestDevice({
            label,
            ...(options.adapterLimits === false ? {} : { requiredLimits: requiredLimits(h.adapter) })
          })
          return { h, device, tail: Promise.resolve() as Promise<unknown> }
        },
        catch: (e) => new GpuUnavailable({ backend, reason: e instanceof Error ? e.message : String(e) })
      }),
      (r) =>
        Effect.promise(async () => {
          await r.tail.catch(() => undefined)
          r.device.destroy()
          r.h.instance = undefined
        })
    )
    return makeShape(held.h, held.device, debug, label, held)
  })

const makeShape = (
  h: Held,
  device: GPUDevice,
  debug: boolean,
  label: string,
  state: { tail: Promise<unknown> }
): GpuDeviceShape => {
  const ctx = Fence.contextAlloc(`${label}:queue`)
  const uncaptured: Array<GpuError> = []
  let lost: DeviceLost | undefined
  let jobs = 0
  /** Unsignalled job fences: signalled with the loss error if the device goes away first. */
  const pending = new Set<Fence.Fence>()
  device.addEventListener("uncapturederror", (ev) => {
    uncaptured.push(fromWebGpu("uncaptured", (ev as GPUUncapturedErrorEvent).error))
  })
  void device.lost.then((info) => {
    lost = new DeviceLost({ reason: info.reason ?? "unknown", detail: info.message })
    for (const f of pending) Fence.signal(f, lost)
    pending.clear()
  })
  const check = Effect.suspend((): Effect.Effect<void, DeviceLost | GpuError> => {
    if (lost !== undefined) return Effect.fail(lost)
    const e = uncaptured.shift()
    return e === undefined ? Effect.void : Effect.fail(e)
  })
  const encode = (jobLabel: string, build: (encoder: GPUCommandEncoder) => void): void => {
    const encoder = device.createCommandEncoder({ label: jobLabel })
    build(encoder)
    device.queue.submit([encoder.finish()])
  }
  const submit = (jobLabel: string, build: (encoder: GPUCommandEncoder) => void) =>
    Effect.gen(function* () {
      yield* check
      const scopes = debug ? inErrorScopes(device, () => encode(jobLabel, build)).error : encode(jobLabel, build)
      jobs++
      const fence = Fence.make(ctx)
      pending.add(fence)
      const done = device.queue.onSubmittedWorkDone()
      const sink = yield* CurrentTraceSink
      const t0 = sink.enabled ? traceNow(sink) : 0
      const finish = (error: Error | undefined) => {
        pending.delete(fence)
        Fence.signal(fence, error)
        if (sink.enabled) {
          const ts = traceNow(sink)
          const args = { seqno: fence.seqno, error: fence.error?.message }
          sink.emit({ name: jobLabel, cat: "gpu", ph: "X", ts: t0, dur: ts - t0, tid: ctx.name, args })
        }
      }
      const settle = () =>
        done.then(
          () => finish(lost),
          (e: unknown) => finish(lost ?? new DeviceLost({ reason: "job", detail: String(e) }))
        )
      state.tail = state.tail.then(settle, settle)
      if (scopes !== undefined) {
        const err = yield* Effect.tryPromise({
          try: () => scopes,
          catch: (e) => lost ?? new DeviceLost({ reason: "error-scope", detail: String(e) })
        })
        if (err !== null) return yield* fromWebGpu(jobLabel, err)
      }
      return fence
    })
  return {
    device,
    adapter: report(h, device),
    debug,
    check,
    submit,
    submitted: () => jobs
  }
}

/**
 * The scoped Layer: one device for the layer's lifetime (share one per test file).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<GpuDevice, GpuUnavailable> =>
  Layer.effect(GpuDevice, make(options))

/**
 * Waits for a job fence (`dma_fence_wait`, uninterruptible, no timeout) and fails with the error
 * it was signalled with (device loss).
 *
 * @since 0.1.0
 * @category jobs
 */
export const awaitFence = (fence: Fence.Fence): Effect.Effect<void, DeviceLost> =>
  Fence.wait(fence).pipe(
    Effect.flatMap(() => {
      const e = fence.error
      return e instanceof DeviceLost
        ? Effect.fail(e)
        : e === undefined
          ? Effect.void
          : Effect.fail(new DeviceLost({ reason: "job", detail: e.message }))
    })
  )
