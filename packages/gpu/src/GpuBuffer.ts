/**
 * GPU buffer handles: a `GPUBuffer` with its size, usage and label, created in a Scope (destroyed on
 * close, like a GEM object's last reference), with upload/download through staging in chunks so
 * transfers larger than the binding/buffer limits work.
 *
 * @since 0.1.0
 */
import { Invalid } from "@drmkit/core"
import { Effect } from "effect"
import { GpuDevice, type GpuDeviceShape } from "./GpuDevice.ts"
import { DeviceLost, fromWebGpu, type GpuError } from "./GpuErrors.ts"
import { inErrorScopes } from "./internal/scopes.ts"

/**
 * `GPUBufferUsage` bits (fixed by the WebGPU spec; Node has no globals for them).
 *
 * @since 0.1.0
 * @category constants
 */
export const Usage = {
  MAP_READ: 0x1,
  MAP_WRITE: 0x2,
  COPY_SRC: 0x4,
  COPY_DST: 0x8,
  UNIFORM: 0x40,
  STORAGE: 0x80,
  INDIRECT: 0x100
} as const

/** Usage of a BO that shaders and the copy engine both access (a VRAM placement). @since 0.1.0 @category constants */
export const STORAGE_RW = Usage.STORAGE | Usage.COPY_SRC | Usage.COPY_DST

/** Staging (bounce) chunk for uploads/downloads in bytes, like xe_migrate's bounce passes. @since 0.1.0 @category constants */
export const STAGING_CHUNK = 32 * 1024 * 1024

/**
 * A buffer handle.
 *
 * @since 0.1.0
 * @category models
 */
export interface GpuBuffer {
  readonly buffer: GPUBuffer
  readonly size: number
  readonly usage: number
  readonly label: string
}

/**
 * Options of {@link make}.
 *
 * @since 0.1.0
 * @category models
 */
export interface BufferOptions {
  readonly size: number
  readonly usage?: number
  readonly label?: string
}

/**
 * Validates a buffer request against the device limits.
 *
 * @since 0.1.0
 * @category validation
 */
export const checkRequest = (gpu: GpuDeviceShape, o: BufferOptions): Invalid | undefined => {
  const max = gpu.device.limits.maxBufferSize
  if (!Number.isSafeInteger(o.size) || o.size <= 0 || o.size % 4 !== 0) {
    return new Invalid({ what: "buffer size", reason: "must be a positive multiple of 4", value: o.size })
  }
  if (o.size > max) return new Invalid({ what: "buffer size", reason: `exceeds maxBufferSize ${max}`, value: o.size })
  return undefined
}

/**
 * Creates a buffer in the current Scope (destroyed when it closes).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (o: BufferOptions) =>
  Effect.gen(function* () {
    const gpu = yield* GpuDevice
    return yield* makeWith(gpu, o)
  })

/**
 * {@link make} with an explicit device.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeWith = (gpu: GpuDeviceShape, o: BufferOptions) => {
  const err = checkRequest(gpu, o)
  if (err !== undefined) return Effect.fail(err)
  const usage = o.usage ?? STORAGE_RW
  const label = o.label ?? "buffer"
  return Effect.acquireRelease(
    createChecked(gpu, { size: o.size, usage, label }).pipe(
      Effect.map((buffer): GpuBuffer => ({ buffer, size: o.size, usage, label }))
    ),
    (b) => Effect.sync(() => b.buffer.destroy())
  )
}

/**
 * `createBuffer`; in debug mode inside validation + out-of-memory error scopes, so a buffer the
 * device cannot back fails here with `GpuError` (`-ENOMEM` / `-EINVAL`) instead of surfacing later
 * as an uncaptured error.
 */
const createChecked = (
  gpu: GpuDeviceShape,
  desc: GPUBufferDescriptor
): Effect.Effect<GPUBuffer, DeviceLost | GpuError> => {
  if (!gpu.debug) return Effect.sync(() => gpu.device.createBuffer(desc))
  return Effect.suspend(() => {
    const { value: buffer, error } = inErrorScopes(gpu.device, () => gpu.device.createBuffer(desc))
    return Effect.tryPromise({
      try: () => error,
      catch: (e) => new DeviceLost({ reason: "error-scope", detail: String(e) })
    }).pipe(
      Effect.flatMap((e) => {
        if (e === null) return Effect.succeed(buffer)
        buffer.destroy()
        return Effect.fail(fromWebGpu(`createBuffer ${desc.label ?? ""}`, e))
      })
    )
  })
}

/**
 * Checks `[offset, offset+size)` is a 4-byte aligned, in-bounds, non-empty range of `b`.
 *
 * @since 0.1.0
 * @category validation
 */
export const checkRange = (b: GpuBuffer, offset: number, size: number, what = b.label): Invalid | undefined => {
  if (!Number.isSafeInteger(offset) || offset < 0 || offset % 4 !== 0) {
    return new Invalid({ what: `${what} offset`, reason: "must be a non-negative multiple of 4", value: offset })
  }
  if (!Number.isSafeInteger(size) || size <= 0 || size % 4 !== 0) {
    return new Invalid({ what: `${what} size`, reason: "must be a positive multiple of 4", value: size })
  }
  if (offset + size > b.size) {
    return new Invalid({ what, reason: `range [${offset}, ${offset + size}) exceeds size ${b.size}`, value: size })
  }
  return undefined
}

const checkChunk = (chunk: number): Invalid | undefined =>
  Number.isSafeInteger(chunk) && chunk > 0 && chunk % 4 === 0
    ? undefined
    : new Invalid({ what: "staging chunk", reason: "must be a positive multiple of 4", value: chunk })

/**
 * Uploads `data` at `offset` (queue writes of at most {@link STAGING_CHUNK} bytes each).
 *
 * @since 0.1.0
 * @category transfers
 */
export const upload = (
  gpu: GpuDeviceShape,
  b: GpuBuffer,
  offset: number,
  data: ArrayBufferView,
  chunk = STAGING_CHUNK
) =>
  Effect.suspend((): Effect.Effect<void, Invalid | DeviceLost | GpuError> => {
    const err = checkRange(b, offset, data.byteLength) ?? checkChunk(chunk)
    if (err !== undefined) return Effect.fail(err)
    return gpu.check.pipe(
      Effect.andThen(
        Effect.sync(() => {
          const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
          for (let o = 0; o < bytes.length; o += chunk) {
            const part = bytes.subarray(o, Math.min(bytes.length, o + chunk))
            gpu.device.queue.writeBuffer(b.buffer, offset + o, part)
          }
        })
      )
    )
  })

/**
 * Downloads `[offset, offset+size)` through a MAP_READ staging buffer, chunk by chunk.
 *
 * @since 0.1.0
 * @category transfers
 */
export const download = (
  gpu: GpuDeviceShape,
  b: GpuBuffer,
  offset = 0,
  size = b.size - offset,
  stagingChunk = STAGING_CHUNK
): Effect.Effect<Uint8Array, Invalid | DeviceLost | GpuError> =>
  Effect.suspend(() => {
    const err = checkRange(b, offset, size) ?? checkChunk(stagingChunk)
    if (err !== undefined) return Effect.fail(err)
    return Effect.scoped(
      Effect.gen(function* () {
        const chunk = Math.min(size, stagingChunk)
        const staging = yield* makeWith(gpu, { size: chunk, usage: Usage.MAP_READ | Usage.COPY_DST, label: "staging" })
        const out = new Uint8Array(size)
        for (let o = 0; o < size; o += chunk) {
          const n = Math.min(chunk, size - o)
          yield* gpu.submit("download", (enc) => enc.copyBufferToBuffer(b.buffer, offset + o, staging.buffer, 0, n))
          yield* Effect.tryPromise({
            try: () => staging.buffer.mapAsync(1, 0, n),
            catch: (e) => new DeviceLost({ reason: "map", detail: e instanceof Error ? e.message : String(e) })
          })
          out.set(new Uint8Array(staging.buffer.getMappedRange(0, n)), o)
          staging.buffer.unmap()
        }
        return out
      })
    )
  })

/** {@link download} as u32 words. @since 0.1.0 @category transfers */
export const downloadU32 = (
  gpu: GpuDeviceShape,
  b: GpuBuffer,
  offset = 0,
  size = b.size - offset,
  stagingChunk = STAGING_CHUNK
) =>
  download(gpu, b, offset, size, stagingChunk).pipe(
    Effect.map((u8) => new Uint32Array(u8.buffer, u8.byteOffset, u8.byteLength >>> 2))
  )
