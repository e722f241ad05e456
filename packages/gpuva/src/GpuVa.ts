/**
 * One GPU VA mapping and the object behind it.
 *
 * Models `struct drm_gpuva` (`include/drm/drm_gpuvm.h`): an address range `[addr, addr + range)` of
 * one VM, backed by `range` units of a GEM object starting at `offset`, or by nothing (`obj ===
 * null`: a sparse/NULL mapping or a userptr-style mapping whose `offset` is carried but has no
 * object). All addresses, ranges and offsets are exact unsigned 64-bit `bigint`s; units are the
 * VM's choice (bytes or pages), as in the kernel.
 *
 * @since 0.1.0
 */
import { VaNode } from "./internal/VaTree.ts"

/**
 * The minimal GEM object the VA manager needs: an identity (object identity is what `keep` and
 * the per-object VA lists compare), a size and, optionally, its reservation object (the VM_BIND
 * layer uses it to tell private from external objects). Models the parts of `struct
 * drm_gem_object` that `drm_gpuvm` reads; richer object types (TTM BOs) extend it.
 *
 * @since 0.1.0
 * @category models
 */
export interface GemObject {
  /** For diagnostics and printed VA trees. */
  readonly name: string
  /** Size in the VM's address units. Not checked against `offset + range` (neither does drm_gpuvm). */
  readonly size: bigint
  /** The object's reservation object; compared by identity with the VM's common resv. */
  readonly resv?: unknown
}

/**
 * Per-VA flag bits. Models `enum drm_gpuva_flags`: `Invalidated` (the backing object was
 * invalidated, e.g. evicted or a userptr range changed), `Sparse` (a driver hint for NULL mappings;
 * drm_gpuvm never looks at it) and `UserBits`, the first bit drivers may use for their own flags.
 *
 * @since 0.1.0
 * @category models
 */
export const Flags = {
  Invalidated: 1,
  Sparse: 2,
  UserBits: 4
} as const

/**
 * A GPU VA mapping. The address fields are read-only: a mapping is changed by removing it and
 * inserting new ones (that is what remap does). `flags` and `priv` belong to the driver (`priv`
 * stands in for the kernel's embedding of `struct drm_gpuva` in a driver struct such as
 * `xe_vma`).
 *
 * @since 0.1.0
 * @category models
 */
export interface GpuVa {
  readonly addr: bigint
  readonly range: bigint
  /** `addr + range` (exclusive). */
  readonly end: bigint
  /** Backing object, or `null` for a NULL (sparse) mapping. */
  readonly obj: GemObject | null
  /** Offset into `obj` (carried arithmetically even when `obj` is `null`). */
  readonly offset: bigint
  /** {@link Flags} bits plus driver bits from `Flags.UserBits` up. */
  flags: number
  /** Driver data attached to this VA. */
  priv: unknown
  /** Whether the VA is currently in a VA space. */
  readonly inserted: boolean
}

/**
 * The arguments of a mapping: models `struct drm_gpuva_op_map` (also the map request of
 * `struct drm_gpuvm_map_req`).
 *
 * @since 0.1.0
 * @category models
 */
export interface MapArgs {
  readonly addr: bigint
  readonly range: bigint
  readonly obj: GemObject | null
  readonly offset: bigint
}

/**
 * A new, not yet inserted VA initialised from `args` (`drm_gpuva_init_from_op()`). Nothing is
 * validated here; {@link VaSpace.VaSpace.insert} validates.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (args: MapArgs): GpuVa => new VaNode().init(args.addr, args.range, args.obj, args.offset)

/**
 * An uninitialised VA struct, for pre-allocation: a VM_BIND job allocates its VA structs at submit
 * time and hands them to the apply helpers in the fence-signalling path, which then allocate
 * nothing (the reason drm_gpuvm embeds its tree node in `struct drm_gpuva`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const alloc = (): GpuVa => new VaNode()

/**
 * The mapping fields of a VA as plain data (for printing and comparisons).
 *
 * @since 0.1.0
 * @category getters
 */
export const toArgs = (va: GpuVa): MapArgs => ({ addr: va.addr, range: va.range, obj: va.obj, offset: va.offset })

/**
 * `(offset - addr) mod 2^64`: two mappings of the same object describe the same linear
 * translation exactly when these agree. The kernel's `keep` tests are this comparison written
 * out per case, in wrapping u64 arithmetic.
 *
 * @since 0.1.0
 * @category getters
 */
export const translation = (m: MapArgs): bigint => BigInt.asUintN(64, m.offset - m.addr)

/**
 * Formats a VA as `[0x1000, 0x3000) name+0x0` (`null` objects print as `-`).
 *
 * @since 0.1.0
 * @category formatting
 */
export const format = (m: MapArgs): string =>
  `[0x${m.addr.toString(16)}, 0x${(m.addr + m.range).toString(16)}) ${m.obj === null ? "-" : m.obj.name}+0x${m.offset.toString(16)}`
