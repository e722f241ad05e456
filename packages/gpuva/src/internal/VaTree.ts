/**
 * The VA tree: a B+tree of disjoint address intervals keyed by start address, plus an
 * address-ordered doubly linked list threaded through the VA structs themselves (the kernel keeps
 * `rb.tree` and `rb.list` the same way in `struct drm_gpuvm`).
 *
 * Why no max-end augmentation: the kernel uses a generic interval tree, but a VA tree never holds
 * two overlapping nodes (insert refuses them), so the end addresses are ordered exactly like the
 * start addresses. The first VA overlapping `[a, e)` is then either the last VA starting at or
 * before `a` (if it reaches past `a`) or the one after it (if it starts before `e`): one O(log n)
 * descent plus one list step.
 *
 * Why a B+tree and not a red-black tree: in V8 every node of a pointer tree costs a cache miss or
 * two per level (the node, and the boxed number or `bigint` key), which made an AVL version of this
 * tree ~1 µs per descent at 100 k VAs. Here the keys of a node sit in one array of unboxed doubles, so a
 * descent touches ~2 cache lines per level and there are log_32..64(n) levels. The trade-off: an
 * insert may allocate a tree node when a leaf splits (the kernel's rb-tree never allocates).
 *
 * Keys: addresses are exact `bigint`s. The arrays hold `Number(addr)`; `Number()` rounds
 * monotonically, so a key comparison decides every case except a tie, which falls back to the
 * exact `bigint` (always equal below 2^53; near the top of the u64 space ties are common and exact
 * comparisons take over). Deletion removes empty nodes but does not merge under-full siblings, so
 * the height stays bounded by the peak size (all leaves always at the same depth).
 *
 * @internal
 */
import { type ObjList, VaNode } from "./VaNode.ts"

export { type ObjList, VaNode }

/** Opens slot `pos` in a leaf of `n` entries (hand-written: `splice` allocates its result array). */
const openSlot = (leaf: Leaf, pos: number, n: number): void => {
  const keys = leaf.keys
  const vals = leaf.vals
  for (let i = n; i > pos; i--) {
    keys[i] = keys[i - 1] as number
    vals[i] = vals[i - 1] as VaNode
  }
}

/** Closes slot `pos` of a leaf of `n` entries. */
const closeSlot = (leaf: Leaf, pos: number, n: number): void => {
  const keys = leaf.keys
  const vals = leaf.vals
  for (let i = pos + 1; i < n; i++) {
    keys[i - 1] = keys[i] as number
    vals[i - 1] = vals[i] as VaNode
  }
  vals[n - 1] = null
}

/** Fan-out: entries per leaf and children per inner node. */
const M = 64

/**
 * A node's key array: a plain array of `M` unboxed doubles (`PACKED_DOUBLE_ELEMENTS`), which V8
 * stores inside the heap right behind one pointer. A `Float64Array` of this size lives off-heap
 * behind the typed-array object, one more dependent cache miss per tree level.
 */
const doubles = (): Array<number> => {
  const a: Array<number> = []
  for (let i = 0; i < M; i++) a.push(0.5)
  return a
}

/** `M` nulls as a packed (not holey) array, so element loads need no hole check. */
const nulls = (): Array<VaNode | null> => {
  const a: Array<VaNode | null> = []
  for (let i = 0; i < M; i++) a.push(null)
  return a
}

/** Copies `src[from, to)` to `dst[at...]` (overlap-safe), for key arrays. */
const move = (dst: Array<number>, at: number, src: Array<number>, from: number, to: number): void => {
  if (dst === src && at > from) {
    for (let i = to - 1; i >= from; i--) dst[at + i - from] = src[i] as number
  } else {
    for (let i = from; i < to; i++) dst[at + i - from] = src[i] as number
  }
}

/** A B+tree leaf: sorted keys and the VA structs they belong to. */
export class Leaf {
  n = 0
  readonly keys = doubles()
  /** Fixed length `M`, `null` past `n`: never resized, so inserts and removes allocate nothing. */
  readonly vals: Array<VaNode | null> = nulls()
}

/** Child `i` holds entries in `[sep[i], sep[i + 1])`; `sep[0]` is unused (child 0 is unbounded below). */
class Inner {
  n = 0
  readonly keys = doubles()
  readonly addrs: Array<bigint> = []
  readonly kids: Array<Leaf | Inner> = []
}

type Node = Leaf | Inner

/** Index of the child of `node` whose range holds `addr`. */
const route = (node: Inner, key: number, addr: bigint): number => {
  const keys = node.keys
  let lo = 1
  let hi = node.n
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    const k = keys[mid] as number
    if (k < key || (k === key && (node.addrs[mid] as bigint) <= addr)) lo = mid + 1
    else hi = mid
  }
  return lo - 1
}

/** First position in `leaf` whose entry starts after `addr`. */
const upper = (leaf: Leaf, key: number, addr: bigint): number => {
  const keys = leaf.keys
  let lo = 0
  let hi = leaf.n
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    const k = keys[mid] as number
    if (k < key || (k === key && (leaf.vals[mid] as VaNode).addr <= addr)) lo = mid + 1
    else hi = mid
  }
  return lo
}

/** The tree plus list. All methods are synchronous and assume valid, disjoint input. */
export class VaTree {
  private root: Node = new Leaf()
  private depth = 0
  head: VaNode | null = null
  tail: VaNode | null = null
  size = 0
  // descent scratch (no allocation per call)
  private readonly pathNodes: Array<Inner> = []
  private readonly pathIdx: Array<number> = []

  private leafFor(key: number, addr: bigint): Leaf {
    let node = this.root
    for (let d = 0; d < this.depth; d++) {
      const inner = node as Inner
      const i = route(inner, key, addr)
      this.pathNodes[d] = inner
      this.pathIdx[d] = i
      node = inner.kids[i] as Node
    }
    return node as Leaf
  }

  /** The leaf whose range holds `addr`, without recording the path (lookups only). */
  private leafOf(key: number, addr: bigint): Leaf {
    let node = this.root
    for (let d = this.depth; d > 0; d--) {
      const inner = node as Inner
      node = inner.kids[route(inner, key, addr)] as Node
    }
    return node as Leaf
  }

  /** Last node whose start is `<= addr`, or `null`. */
  floor(addr: bigint): VaNode | null {
    const key = Number(addr)
    const leaf = this.leafOf(key, addr)
    if (leaf.n === 0) return null
    const pos = upper(leaf, key, addr)
    return pos > 0 ? (leaf.vals[pos - 1] as VaNode) : (leaf.vals[0] as VaNode).prev
  }

  /** First node overlapping `[addr, end)` (`end > addr`), or `null`. */
  firstOverlap(addr: bigint, end: bigint): VaNode | null {
    const f = this.floor(addr)
    if (f !== null && f.end > addr) return f
    const c = f === null ? this.head : f.next
    return c !== null && c.addr < end ? c : null
  }

  /** Links `node` (initialised, not overlapping anything) into tree and list. */
  insert(node: VaNode): void {
    if (!this.tryInsert(node)) throw new Error("VaTree.insert: overlap")
  }

  /**
   * Inserts `node` unless it overlaps its neighbours (then returns `false`, tree unchanged):
   * one descent finds both the position and the neighbours.
   */
  tryInsert(node: VaNode): boolean {
    const addr = node.addr
    const key = Number(addr)
    const leaf = this.leafFor(key, addr)
    const n = leaf.n
    const pos = n === 0 ? 0 : upper(leaf, key, addr)
    const pred = pos > 0 ? (leaf.vals[pos - 1] as VaNode) : n > 0 ? (leaf.vals[0] as VaNode).prev : null
    const succ = pred === null ? this.head : pred.next
    if ((pred !== null && pred.end > addr) || (succ !== null && succ.addr < node.end)) return false
    node.prev = pred
    node.next = succ
    if (pred === null) this.head = node
    else pred.next = node
    if (succ === null) this.tail = node
    else succ.prev = node
    openSlot(leaf, pos, n)
    leaf.keys[pos] = key
    leaf.vals[pos] = node
    leaf.n = n + 1
    node.leaf = leaf
    this.size++
    if (leaf.n === M) this.split(leaf)
    return true
  }

  /** Position of `node` in its leaf. */
  private slot(node: VaNode): number {
    const leaf = node.leaf as Leaf
    // identity scan of at most M slots of a leaf that is in cache anyway: no key conversion
    const vals = leaf.vals
    for (let i = 0, n = leaf.n; i < n; i++) if (vals[i] === node) return i
    throw new Error("VaTree: node not in tree")
  }

  /**
   * Replaces `old` by `node`, which must lie inside `old`'s extent (a remap piece). In place when
   * the ordering of the leaf allows it (same start, or not the last entry of its leaf), else via
   * remove + insert. No descent on the fast path.
   */
  replace(old: VaNode, node: VaNode): void {
    const leaf = old.leaf as Leaf
    const pos = this.slot(old)
    if (node.addr !== old.addr && pos === leaf.n - 1 && old.next !== null) {
      this.remove(old)
      this.insert(node)
      return
    }
    leaf.vals[pos] = node
    if (node.addr !== old.addr) leaf.keys[pos] = Number(node.addr)
    node.leaf = leaf
    node.prev = old.prev
    node.next = old.next
    if (old.prev === null) this.head = node
    else old.prev.next = node
    if (old.next === null) this.tail = node
    else old.next.prev = node
    old.prev = null
    old.next = null
    old.leaf = null
  }

  /**
   * Inserts `node` right after `anchor` (it must fit between `anchor` and `anchor.next`). Leaf-local
   * when both neighbours share a leaf (or `anchor` is last overall), else a normal insert.
   */
  insertAfter(anchor: VaNode, node: VaNode): void {
    const leaf = anchor.leaf as Leaf
    const following = anchor.next
    if (following !== null && following.leaf !== leaf) {
      this.insert(node)
      return
    }
    const pos = this.slot(anchor) + 1
    const n = leaf.n
    openSlot(leaf, pos, n)
    leaf.keys[pos] = Number(node.addr)
    leaf.vals[pos] = node
    leaf.n = n + 1
    node.leaf = leaf
    node.prev = anchor
    node.next = following
    anchor.next = node
    if (following === null) this.tail = node
    else following.prev = node
    this.size++
    if (leaf.n === M) {
      this.leafFor(Number(node.addr), node.addr) // fills the path for the split
      this.split(leaf)
    }
  }

  private split(leaf: Leaf): void {
    const half = M >> 1
    const right = new Leaf()
    move(right.keys, 0, leaf.keys, half, M)
    for (let i = half; i < M; i++) {
      const v = leaf.vals[i] as VaNode
      v.leaf = right
      right.vals[i - half] = v
      leaf.vals[i] = null
    }
    leaf.n = half
    right.n = M - half
    const first = right.vals[0] as VaNode
    this.addChild(this.depth - 1, right, right.keys[0] as number, first.addr)
  }

  /** Inserts `child` after `pathNodes[d].kids[pathIdx[d]]` (or grows a new root when d < 0). */
  private addChild(d: number, child: Node, key: number, addr: bigint): void {
    if (d < 0) {
      const root = new Inner()
      root.kids.push(this.root, child)
      root.keys[1] = key
      root.addrs.push(0n, addr)
      root.n = 2
      this.root = root
      this.depth++
      return
    }
    const parent = this.pathNodes[d] as Inner
    const at = (this.pathIdx[d] as number) + 1
    move(parent.keys, at + 1, parent.keys, at, parent.n)
    parent.keys[at] = key
    parent.addrs.splice(at, 0, addr)
    parent.kids.splice(at, 0, child)
    parent.n++
    if (parent.n < M) return
    const half = M >> 1
    const right = new Inner()
    move(right.keys, 0, parent.keys, half, M)
    for (let i = half; i < M; i++) {
      right.kids.push(parent.kids[i] as Node)
      right.addrs.push(parent.addrs[i] as bigint)
    }
    parent.kids.length = half
    parent.addrs.length = half
    parent.n = half
    right.n = M - half
    this.addChild(d - 1, right, right.keys[0] as number, right.addrs[0] as bigint)
  }

  /** Unlinks `node`, which must be in this tree. */
  remove(node: VaNode): void {
    const leaf = node.leaf as Leaf
    const pos = this.slot(node)
    closeSlot(leaf, pos, leaf.n)
    leaf.n--
    if (node.prev === null) this.head = node.next
    else node.prev.next = node.next
    if (node.next === null) this.tail = node.prev
    else node.next.prev = node.prev
    node.prev = null
    node.next = null
    node.leaf = null
    this.size--
    if (leaf.n === 0) {
      this.leafFor(Number(node.addr), node.addr) // fills the path down to the now empty leaf
      this.dropEmpty(this.depth - 1)
    }
  }

  /** The child at `pathIdx[d]` of `pathNodes[d]` became empty: unlink it, cascading upwards. */
  private dropEmpty(d: number): void {
    if (d < 0) return // the root leaf may be empty
    const parent = this.pathNodes[d] as Inner
    const at = this.pathIdx[d] as number
    move(parent.keys, at, parent.keys, at + 1, parent.n)
    parent.addrs.splice(at, 1)
    parent.kids.splice(at, 1)
    parent.n--
    if (parent.n === 0) {
      this.dropEmpty(d - 1)
      return
    }
    if (d === 0 && parent.n === 1) {
      this.root = parent.kids[0] as Node
      this.depth--
    }
  }

  /**
   * Checks every structural invariant; returns the violations (empty when sound). Used by the
   * property tests: all leaves at one depth, no empty nodes below the root, separators bound
   * their subtrees, keys cached exactly, in-order = list order, strictly ordered and disjoint.
   */
  check(): ReadonlyArray<string> {
    const errors: Array<string> = []
    const inorder: Array<VaNode> = []
    const walk = (node: Node, d: number, lo: bigint | undefined, hi: bigint | undefined): void => {
      if (node.n === 0 && node !== this.root) errors.push("empty node below the root")
      if (node instanceof Leaf) {
        if (d !== this.depth) errors.push(`leaf at depth ${d}, tree depth ${this.depth}`)
        if (node.vals.length !== M || node.vals.indexOf(null) !== (node.n < M ? node.n : -1)) {
          errors.push("leaf count mismatch")
        }
        for (let i = 0; i < node.n; i++) {
          const v = node.vals[i] as VaNode
          if (node.keys[i] !== Number(v.addr)) errors.push(`bad key at 0x${v.addr.toString(16)}`)
          if (v.leaf !== node) errors.push(`bad leaf pointer at 0x${v.addr.toString(16)}`)
          if ((lo !== undefined && v.addr < lo) || (hi !== undefined && v.addr >= hi)) errors.push("separator violated")
          if (v.end !== v.addr + v.range) errors.push(`bad end at 0x${v.addr.toString(16)}`)
          inorder.push(v)
        }
        return
      }
      if (node.kids.length !== node.n || node.addrs.length !== node.n) errors.push("inner count mismatch")
      for (let i = 0; i < node.n; i++) {
        const a = i === 0 ? lo : node.addrs[i]
        if (i > 0 && node.keys[i] !== Number(node.addrs[i])) errors.push("bad separator key")
        walk(node.kids[i] as Node, d + 1, a, i + 1 < node.n ? node.addrs[i + 1] : hi)
      }
    }
    walk(this.root, 0, undefined, undefined)
    if (this.depth > 0 && this.root.n < 2) errors.push("root inner with one child")
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
