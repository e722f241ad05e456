/**
 * GPU-specific typed errors. Device loss models the kernel's `-ENODEV` after a wedged/unplugged
 * device (`drm_dev_is_unplugged`, xe's wedged mode); a captured WebGPU error (validation,
 * out-of-memory, internal) models a job the driver rejects or that fails (`-EIO` / `-ENOMEM`).
 *
 * @since 0.1.0
 */
import { Data } from "effect"

/**
 * No usable adapter/device for the requested backend (`-ENODEV` at probe time).
 *
 * @since 0.1.0
 * @category errors
 */
export class GpuUnavailable extends Data.TaggedError("GpuUnavailable")<{
  readonly backend: string
  readonly reason: string
}> {
  /** @since 0.1.0 */
  readonly errno = 19
  override get message() {
    return `ENODEV: no GPU for backend ${this.backend}: ${this.reason}`
  }
}

/**
 * The device was lost (destroyed, driver reset, out of memory at the device level). Every later
 * operation fails with this; pending job fences are signalled with it as their error.
 *
 * @since 0.1.0
 * @category errors
 */
export class DeviceLost extends Data.TaggedError("DeviceLost")<{
  readonly reason: string
  readonly detail: string
}> {
  /** @since 0.1.0 */
  readonly errno = 19
  override get message() {
    return `ENODEV: GPU device lost (${this.reason}): ${this.detail}`
  }
}

/**
 * A WebGPU error captured by an error scope (debug mode) or reported as uncaptured: a validation
 * error in our own kernels is a bug and fails the operation (and the test).
 *
 * @since 0.1.0
 * @category errors
 */
export class GpuError extends Data.TaggedError("GpuError")<{
  readonly kind: "validation" | "out-of-memory" | "internal"
  readonly label: string
  readonly detail: string
}> {
  /** @since 0.1.0 */
  get errno() {
    return this.kind === "out-of-memory" ? 12 : 5
  }
  override get message() {
    return `GPU ${this.kind} error in ${this.label}: ${this.detail}`
  }
}

/**
 * Wraps a WebGPU error reported for the operation `label` (validation → the kernel's `-EINVAL` on a
 * malformed submission, out-of-memory → `-ENOMEM`, anything else → `-EIO`).
 *
 * @since 0.1.0
 * @category errors
 */
export const fromWebGpu = (label: string, e: GPUError): GpuError => {
  const name = e.constructor?.name ?? ""
  const kind = /Validation/.test(name) ? "validation" : /OutOfMemory/.test(name) ? "out-of-memory" : "internal"
  return new GpuError({ kind, label, detail: e.message })
}
