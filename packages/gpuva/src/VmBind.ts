/**
 * VM_BIND operations: what userspace asks a bind queue to do, and their boundary validation.
 *
 * Models `struct drm_xe_vm_bind_op` (`DRM_XE_VM_BIND_OP_MAP`, `_UNMAP`, `_PREFETCH`, `_UNMAP_ALL`,
 * flag `DRM_XE_VM_BIND_FLAG_NULL` for sparse mappings) and Nouveau's `drm_nouveau_vm_bind_op`.
 * A bind array is validated as a whole before anything changes (`vm_bind_ioctl_check_args()`):
 * any bad op makes the whole array `Invalid` with the op's index in `what`.
 *
 * @since 0.1.0
 */
import { Invalid } from "@drmkit/core"
import { DmaResv } from "@drmkit/resv-locking"
import type { GemObject } from "./GpuVa.ts"
import type { VaSpace } from "./VaSpace.ts"

/**
 * Physical backing of an object, one frame per 4 KiB page: either contiguous from `baseFrame`
 * (VRAM-like; lets the page-table planner use generator descriptors and huge leaves) or a list of
 * scattered frames (system pages).
 *
 * @since 0.1.0
 * @category models
 */
export type Frames =
  | { readonly _tag: "Contiguous"; readonly baseFrame: number }
  | { readonly _tag: "Pages"; readonly frames: ArrayLike<number> }

/**
 * The minimal GEM object (`struct drm_gem_object`) VM_BIND needs until TTM buffer objects exist: size, reservation object
 * (the VM's own for a private object, a separate one for an external object) and its frames.
 *
 * @since 0.1.0
 * @category models
 */
export interface BindObject extends GemObject {
  readonly resv: DmaResv.DmaResv
  readonly frames: Frames
}

/**
 * Mapping flags: `readOnly` clears the PTE's writable bit; `pteFlags` adds device bits (within the
 * planner's user flag mask, e.g. `Pte.PteBits.DEVICE`).
 *
 * @since 0.1.0
 * @category models
 */
export interface MapFlags {
  readonly readOnly?: boolean
  readonly pteFlags?: number
}

/**
 * One bind operation. `Map` with `obj: null` is a sparse (NULL) mapping: PTEs that read as zero
 * (xe's `DRM_XE_VM_BIND_FLAG_NULL`).
 *
 * @since 0.1.0
 * @category models
 */
export type BindOp =
  | {
      readonly _tag: "Map"
      readonly addr: bigint
      readonly range: bigint
      readonly obj: BindObject | null
      readonly offset: bigint
      readonly flags?: MapFlags
    }
  | { readonly _tag: "Unmap"; readonly addr: bigint; readonly range: bigint }
  | { readonly _tag: "Prefetch"; readonly addr: bigint; readonly range: bigint }
  | { readonly _tag: "UnmapAll"; readonly obj: BindObject }

/**
 * `DRM_XE_VM_BIND_OP_MAP` (Nouveau `OP_MAP`): map `[offset, offset + range)` of `obj` at `addr`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const map = (addr: bigint, range: bigint, obj: BindObject | null, offset = 0n, flags?: MapFlags): BindOp =>
  flags === undefined ? { _tag: "Map", addr, range, obj, offset } : { _tag: "Map", addr, range, obj, offset, flags }

/**
 * `DRM_XE_VM_BIND_OP_MAP` with `DRM_XE_VM_BIND_FLAG_NULL`: a sparse mapping reading zero.
 *
 * @since 0.1.0
 * @category constructors
 */
export const mapNull = (addr: bigint, range: bigint): BindOp => ({ _tag: "Map", addr, range, obj: null, offset: 0n })

/**
 * `DRM_XE_VM_BIND_OP_UNMAP` (Nouveau `OP_UNMAP`): munmap-style, may split mappings.
 *
 * @since 0.1.0
 * @category constructors
 */
export const unmap = (addr: bigint, range: bigint): BindOp => ({ _tag: "Unmap", addr, range })

/**
 * `DRM_XE_VM_BIND_OP_PREFETCH`: make the range resident and bound (rebinds invalidated VAs).
 *
 * @since 0.1.0
 * @category constructors
 */
export const prefetch = (addr: bigint, range: bigint): BindOp => ({ _tag: "Prefetch", addr, range })

/**
 * `DRM_XE_VM_BIND_OP_UNMAP_ALL`: every mapping of `obj` in the VM (`drm_gpuvm_bo_unmap_ops_create()`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const unmapAll = (obj: BindObject): BindOp => ({ _tag: "UnmapAll", obj })

const PAGE = 4096n

const checkObject = (what: string, obj: BindObject): Invalid | undefined => {
  if (typeof obj !== "object" || obj === null) return new Invalid({ what, reason: "needs an object" })
  if (!(obj.resv instanceof DmaResv.DmaResv)) return new Invalid({ what, reason: `${obj.name} has no DmaResv` })
  return undefined
}

const checkFrames = (what: string, obj: BindObject): Invalid | undefined => {
  const f = obj.frames
  if (typeof f !== "object" || f === null || (f._tag !== "Contiguous" && f._tag !== "Pages")) {
    return new Invalid({ what, reason: `${obj.name} has no frames` })
  }
  const pages = obj.size / PAGE
  if (f._tag === "Pages" && BigInt(f.frames.length) < pages) {
    return new Invalid({ what, reason: `object ${obj.name} lists fewer frames than its ${pages} pages` })
  }
  if (f._tag === "Contiguous" && (!Number.isSafeInteger(f.baseFrame) || f.baseFrame < 0)) {
    return new Invalid({ what, reason: "baseFrame must be a non-negative integer", value: f.baseFrame })
  }
  return undefined
}

const checkOne = (space: VaSpace, op: BindOp, what: string): Invalid | undefined => {
  switch (op._tag) {
    case "Map": {
      const bad = space.checkRange(op.addr, op.range, what) ?? space.checkOffset(op.offset, `${what}.offset`)
      if (bad !== undefined) return bad
      if (op.obj === null) return undefined
      const badObj = checkObject(what, op.obj)
      if (badObj !== undefined) return badObj
      if (typeof op.obj.size !== "bigint" || op.obj.size % PAGE !== 0n)
        return new Invalid({ what, reason: "object size must be 4 KiB aligned" })
      if (op.range > op.obj.size || op.offset > op.obj.size - op.range) {
        return new Invalid({ what, reason: `[offset, offset + range) exceeds ${op.obj.name}'s size`, value: op.offset })
      }
      const f = op.flags?.pteFlags ?? 0
      if (!Number.isInteger(f) || (f & ~0xffa) !== 0)
        return new Invalid({ what, reason: "pteFlags outside 0xffa", value: f })
      return checkFrames(what, op.obj)
    }
    case "Unmap":
    case "Prefetch":
      return space.checkRange(op.addr, op.range, what)
    case "UnmapAll":
      return checkObject(what, op.obj)
  }
}

/**
 * Validates a bind array against a VA space whose page size must be 4 KiB (the page-table
 * granule): addresses, ranges and offsets aligned and in range, objects large enough, flags
 * within the mask. Returns the first {@link Invalid} (its `what` names the op index).
 *
 * @since 0.1.0
 * @category validation
 */
export const check = (space: VaSpace, ops: ReadonlyArray<BindOp>): Invalid | undefined => {
  if (space.pageSize !== PAGE) return new Invalid({ what: "vm", reason: "VM_BIND needs a VA space with 4 KiB pages" })
  if (!Array.isArray(ops) || ops.length === 0) return new Invalid({ what: "ops", reason: "must be a non-empty array" })
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]
    if (op === undefined || typeof op !== "object") return new Invalid({ what: `ops[${i}]`, reason: "not an op" })
    const bad = checkOne(space, op, `ops[${i}]`)
    if (bad !== undefined) return bad
  }
  return undefined
}
