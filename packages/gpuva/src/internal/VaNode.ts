/**
 * The VA struct (`struct drm_gpuva`) as the tree stores it: mapping fields plus the links of the
 * address-ordered list, the B+tree leaf that holds it, and the per-object list (the kernel's
 * vm_bo gpuva list).
 *
 * @internal
 */
import type { GemObject } from "../GpuVa.ts"
import type { Leaf } from "./VaTree.ts"

/** Head/tail of one object's intrusive VA list in one space (append order = the kernel's link order). */
export interface ObjList {
  head: VaNode | null
  tail: VaNode | null
  count: number
}

/** A VA struct and its tree links. `vm` is the owning space while inserted, else `null`. */
export class VaNode {
  // Field order = memory order: the fields a descent and a split/merge walk read come first, so
  // they share the object's first cache line.
  addr = 0n
  end = 0n
  next: VaNode | null = null
  /** The B+tree leaf holding this VA (lets remove/replace skip the descent). */
  leaf: Leaf | null = null
  obj: GemObject | null = null
  offset = 0n
  range = 0n
  prev: VaNode | null = null
  vm: object | null = null
  /** Links of the owning space's per-object list (the kernel's vm_bo gpuva list). */
  objPrev: VaNode | null = null
  objNext: VaNode | null = null
  /** The owning space's list for `obj` while linked into one (saves the per-object map lookup). */
  objList: ObjList | null = null
  flags = 0
  priv: unknown = undefined

  get inserted(): boolean {
    return this.vm !== null
  }

  /** Sets the mapping fields (`drm_gpuva_init()`); only legal while not inserted. */
  init(addr: bigint, range: bigint, obj: GemObject | null, offset: bigint): this {
    this.addr = addr
    this.range = range
    // typeof guard: GpuVa.make is unvalidated, insert() rejects the non-bigint afterwards
    this.end = typeof addr === "bigint" && typeof range === "bigint" ? addr + range : -1n
    this.obj = obj
    this.offset = offset
    return this
  }

  /** {@link init} with the end already known (`end === addr + range`, the caller's invariant). */
  initEnd(addr: bigint, range: bigint, end: bigint, obj: GemObject | null, offset: bigint): this {
    this.addr = addr
    this.range = range
    this.end = end
    this.obj = obj
    this.offset = offset
    return this
  }
}
