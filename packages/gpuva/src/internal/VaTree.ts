/**
 * The VA tree: an intrusive AVL tree of disjoint address intervals plus an address-ordered doubly
 * linked list threaded through the same nodes (the kernel keeps `rb.tree` and `rb.list` the same
 * way in `struct drm_gpuvm`).
 *
 * Why no max-end augmentation: the kernel uses a generic interval tree, but a VA tree never holds
 * two overlapping nodes (insert refuses them), so the end addresses are ordered exactly like the
 * start addresses. The first VA overlapping `[a, e)` is then either the last VA starting at or
 * before `a` (if it reaches past `a`) or the one after it (if it starts before `e`): two O(log n)
 * steps on a plain ordered tree. Nodes are the VA structs themselves, so inserting allocates
 * nothing (the property the kernel's pre-allocation story relies on).
 *
 * Addresses are exact `bigint`s. Each node also caches `key = Number(addr)`: `Number()` rounds
 * monotonically, so comparing keys decides every comparison except ties, which fall back to the
 * exact `bigint` comparison. Below 2^53 a tie means equality.
 *
 * @internal
 */
import type { GemObject } from "../GpuVa.ts"

/** A VA struct and its tree links. `vm` is the owning space while inserted, else `null`. */
export class VaNode {
  addr = 0n
  range = 0n
  end = 0n
  obj: GemObject | null = null
  offset = 0n
  flags = 0
  priv: unknown = undefined
  vm: object | null = null
  key = 0
  left: VaNode | null = null
  right: VaNode | null = null
  height = 1
  prev: VaNode | null = null
  next: VaNode | null = null

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
    this.key = Number(addr)
    return this
  }
}

const height = (n: VaNode | null): number => (n === null ? 0 : n.height)

const fix = (n: VaNode): void => {
  const l = height(n.left)
  const r = height(n.right)
  n.height = Math.max(l, r) + 1
}

const rotateRight = (n: VaNode): VaNode => {
  const l = n.left as VaNode
  n.left = l.right
  l.right = n
  fix(n)
  fix(l)
  return l
}

const rotateLeft = (n: VaNode): VaNode => {
  const r = n.right as VaNode
  n.right = r.left
  r.left = n
  fix(n)
  fix(r)
  return r
}

const balance = (n: VaNode): VaNode => {
  fix(n)
  const bf = height(n.left) - height(n.right)
  if (bf > 1) {
    const l = n.left as VaNode
    if (height(l.left) < height(l.right)) n.left = rotateLeft(l)
    return rotateRight(n)
  }
  if (bf < -1) {
    const r = n.right as VaNode
    if (height(r.right) < height(r.left)) n.right = rotateRight(r)
    return rotateLeft(n)
  }
  return n
}

/** `true` when node `n` starts before (`addr`, `key`). */
const before = (n: VaNode, addr: bigint, key: number): boolean => n.key < key || (n.key === key && n.addr < addr)

/** The tree plus list. All methods are synchronous and assume valid, disjoint input. */
export class VaTree {
  root: VaNode | null = null
  head: VaNode | null = null
  tail: VaNode | null = null
  size = 0

  /** Last node whose start is `<= addr`, or `null`. */
  floor(addr: bigint): VaNode | null {
    const key = Number(addr)
    let n = this.root
    let best: VaNode | null = null
    while (n !== null) {
      if (n.key < key || (n.key === key && n.addr <= addr)) {
        best = n
        n = n.right
      } else {
        n = n.left
      }
    }
    return best
  }

  /** First node overlapping `[addr, end)` (`end > addr`), or `null`. */
  firstOverlap(addr: bigint, end: bigint): VaNode | null {
    const f = this.floor(addr)
    if (f !== null && f.end > addr) return f
    const c = f === null ? this.head : f.next
    return c !== null && c.addr < end ? c : null
  }

  /** Links `node` (already initialised, not overlapping anything) into tree and list. */
  insert(node: VaNode): void {
    node.left = null
    node.right = null
    node.height = 1
    const pred = this.floor(node.addr)
    const succ = pred === null ? this.head : pred.next
    node.prev = pred
    node.next = succ
    if (pred === null) this.head = node
    else pred.next = node
    if (succ === null) this.tail = node
    else succ.prev = node
    this.root = this.insertAt(this.root, node)
    this.size++
  }

  private insertAt(n: VaNode | null, node: VaNode): VaNode {
    if (n === null) return node
    if (before(node, n.addr, n.key)) n.left = this.insertAt(n.left, node)
    else n.right = this.insertAt(n.right, node)
    return balance(n)
  }

  /** Unlinks `node`, which must be in this tree. */
  remove(node: VaNode): void {
    this.root = this.removeAt(this.root, node)
    if (node.prev === null) this.head = node.next
    else node.prev.next = node.next
    if (node.next === null) this.tail = node.prev
    else node.next.prev = node.prev
    node.prev = null
    node.next = null
    node.left = null
    node.right = null
    node.height = 1
    this.size--
  }

  private removeAt(n: VaNode | null, node: VaNode): VaNode | null {
    if (n === null) throw new Error("VaTree.remove: node not in tree")
    if (n === node) {
      if (n.left === null) return n.right
      if (n.right === null) return n.left
      let s = n.right
      while (s.left !== null) s = s.left
      s.right = this.removeMin(n.right)
      s.left = n.left
      return balance(s)
    }
    if (before(node, n.addr, n.key)) n.left = this.removeAt(n.left, node)
    else n.right = this.removeAt(n.right, node)
    return balance(n)
  }

  private removeMin(n: VaNode): VaNode | null {
    if (n.left === null) return n.right
    n.left = this.removeMin(n.left)
    return balance(n)
  }

  /**
   * Checks every structural invariant; returns the violations (empty when sound). Used by the
   * property tests: AVL balance and heights, in-order = list order, strictly ordered and disjoint,
   * cached keys and ends, size.
   */
  check(): ReadonlyArray<string> {
    const errors: Array<string> = []
    const inorder: Array<VaNode> = []
    const walk = (n: VaNode | null): number => {
      if (n === null) return 0
      const l = walk(n.left)
      inorder.push(n)
      const r = walk(n.right)
      if (Math.abs(l - r) > 1) errors.push(`unbalanced at 0x${n.addr.toString(16)}`)
      if (n.height !== Math.max(l, r) + 1) errors.push(`bad height at 0x${n.addr.toString(16)}`)
      if (n.key !== Number(n.addr)) errors.push(`bad key at 0x${n.addr.toString(16)}`)
      if (n.end !== n.addr + n.range) errors.push(`bad end at 0x${n.addr.toString(16)}`)
      return n.height
    }
    walk(this.root)
    if (inorder.length !== this.size) errors.push(`size ${this.size} but ${inorder.length} nodes`)
    let p: VaNode | null = this.head
    let prev: VaNode | null = null
    for (const n of inorder) {
      if (p !== n) errors.push("list order differs from tree order")
      if (n.prev !== prev) errors.push("broken prev link")
      if (prev !== null && prev.end > n.addr) errors.push(`overlap at 0x${n.addr.toString(16)}`)
      prev = n
      p = p === null ? null : p.next
    }
    if (p !== null || this.tail !== prev) errors.push("list longer than tree or bad tail")
    return errors
  }
}
