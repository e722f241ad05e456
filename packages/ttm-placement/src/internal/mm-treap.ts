/**
 * An ordered map keyed by `(key, tie)` number pairs, balanced as a treap, optionally augmented with
 * the maximum of a per-value weight over each subtree (the `subtree_max_hole` trick of drm_mm's
 * address-ordered hole tree). Used by both allocators: the buddy allocator keys free blocks by
 * offset (one tree per order and clear state), the range manager keys holes by size and by address.
 *
 * Every operation is O(log n) expected. Plain synchronous code, no allocation besides nodes.
 *
 * @internal
 */

/** A tree node; exposed so callers can walk without re-searching. @internal */
export interface TreapNode<V> {
  readonly key: number
  readonly tie: number
  readonly value: V
  /** @internal */ prio: number
  /** @internal */ left: TreapNode<V> | undefined
  /** @internal */ right: TreapNode<V> | undefined
  /** Maximum weight in this subtree (0 when the tree is not augmented). */
  max: number
}

// Deterministic xorshift priorities: runs are reproducible.
let seed = 0x9e3779b9
const nextPrio = (): number => {
  seed ^= seed << 13
  seed ^= seed >>> 17
  seed ^= seed << 5
  return seed >>> 0
}

const cmp = (k1: number, t1: number, k2: number, t2: number): number => (k1 !== k2 ? k1 - k2 : t1 - t2)

/** @internal */
export class Treap<V> {
  private root: TreapNode<V> | undefined = undefined
  private count = 0
  /** Recycled nodes: steady insert/delete churn allocates nothing. */
  private readonly pool: Array<TreapNode<V>> = []
  private readonly weight: ((v: V) => number) | undefined

  constructor(weight?: (v: V) => number) {
    this.weight = weight
  }

  get size(): number {
    return this.count
  }

  isEmpty(): boolean {
    return this.root === undefined
  }

  private pull(n: TreapNode<V>): void {
    const w = this.weight
    if (w === undefined) return
    let m = w(n.value)
    if (n.left !== undefined && n.left.max > m) m = n.left.max
    if (n.right !== undefined && n.right.max > m) m = n.right.max
    n.max = m
  }

  private rotRight(n: TreapNode<V>): TreapNode<V> {
    const l = n.left as TreapNode<V>
    n.left = l.right
    l.right = n
    this.pull(n)
    this.pull(l)
    return l
  }

  private rotLeft(n: TreapNode<V>): TreapNode<V> {
    const r = n.right as TreapNode<V>
    n.right = r.left
    r.left = n
    this.pull(n)
    this.pull(r)
    return r
  }

  /** Inserts `(key, tie) → value`; the pair must not be present. */
  insert(key: number, tie: number, value: V): void {
    const node = this.pool.pop() ?? { key, tie, value, prio: 0, left: undefined, right: undefined, max: 0 }
    const w = node as { key: number; tie: number; value: V }
    w.key = key
    w.tie = tie
    w.value = value
    node.prio = nextPrio()
    node.left = undefined
    node.right = undefined
    this.pull(node)
    this.root = this.ins(this.root, node)
    this.count++
  }

  private ins(t: TreapNode<V> | undefined, node: TreapNode<V>): TreapNode<V> {
    if (t === undefined) return node
    if (cmp(node.key, node.tie, t.key, t.tie) < 0) {
      t.left = this.ins(t.left, node)
      if (t.left.prio > t.prio) return this.rotRight(t)
    } else {
      t.right = this.ins(t.right, node)
      if (t.right.prio > t.prio) return this.rotLeft(t)
    }
    this.pull(t)
    return t
  }

  /** Removes `(key, tie)`; returns whether it was present. */
  delete(key: number, tie: number): boolean {
    const before = this.count
    this.root = this.del(this.root, key, tie)
    return this.count !== before
  }

  private del(t: TreapNode<V> | undefined, key: number, tie: number): TreapNode<V> | undefined {
    if (t === undefined) return undefined
    const c = cmp(key, tie, t.key, t.tie)
    if (c < 0) t.left = this.del(t.left, key, tie)
    else if (c > 0) t.right = this.del(t.right, key, tie)
    else {
      this.count--
      const j = this.join(t.left, t.right)
      t.left = undefined
      t.right = undefined
      if (this.pool.length < 4096) this.pool.push(t)
      return j
    }
    this.pull(t)
    return t
  }

  private join(a: TreapNode<V> | undefined, b: TreapNode<V> | undefined): TreapNode<V> | undefined {
    if (a === undefined) return b
    if (b === undefined) return a
    if (a.prio > b.prio) {
      a.right = this.join(a.right, b)
      this.pull(a)
      return a
    }
    b.left = this.join(a, b.left)
    this.pull(b)
    return b
  }

  /** Re-computes the augmentation along the path to `(key, tie)` after its value's weight changed. */
  touch(key: number, tie: number): void {
    const path: Array<TreapNode<V>> = []
    let t = this.root
    while (t !== undefined) {
      path.push(t)
      const c = cmp(key, tie, t.key, t.tie)
      if (c === 0) break
      t = c < 0 ? t.left : t.right
    }
    for (let i = path.length - 1; i >= 0; i--) this.pull(path[i] as TreapNode<V>)
  }

  first(): TreapNode<V> | undefined {
    let t = this.root
    if (t === undefined) return undefined
    while (t.left !== undefined) t = t.left
    return t
  }

  last(): TreapNode<V> | undefined {
    let t = this.root
    if (t === undefined) return undefined
    while (t.right !== undefined) t = t.right
    return t
  }

  /** Smallest entry `>= (key, tie)`. */
  ceil(key: number, tie = Number.NEGATIVE_INFINITY): TreapNode<V> | undefined {
    let t = this.root
    let best: TreapNode<V> | undefined
    while (t !== undefined) {
      if (cmp(t.key, t.tie, key, tie) >= 0) {
        best = t
        t = t.left
      } else t = t.right
    }
    return best
  }

  /** Largest entry `<= (key, tie)`. */
  floor(key: number, tie = Number.POSITIVE_INFINITY): TreapNode<V> | undefined {
    let t = this.root
    let best: TreapNode<V> | undefined
    while (t !== undefined) {
      if (cmp(t.key, t.tie, key, tie) <= 0) {
        best = t
        t = t.right
      } else t = t.left
    }
    return best
  }

  /** Entry right after `n` in order. */
  next(n: TreapNode<V>): TreapNode<V> | undefined {
    let t = this.root
    let best: TreapNode<V> | undefined
    while (t !== undefined) {
      if (cmp(t.key, t.tie, n.key, n.tie) > 0) {
        best = t
        t = t.left
      } else t = t.right
    }
    return best
  }

  /** Entry right before `n` in order. */
  prev(n: TreapNode<V>): TreapNode<V> | undefined {
    let t = this.root
    let best: TreapNode<V> | undefined
    while (t !== undefined) {
      if (cmp(t.key, t.tie, n.key, n.tie) < 0) {
        best = t
        t = t.right
      } else t = t.left
    }
    return best
  }

  /**
   * Lowest-keyed entry with `key >= minKey` whose weight is at least `need` (augmented trees only):
   * subtrees whose maximum is too small are skipped, so this is O(log n).
   */
  firstFit(minKey: number, need: number): TreapNode<V> | undefined {
    return this.ff(this.root, minKey, need)
  }

  private ff(t: TreapNode<V> | undefined, minKey: number, need: number): TreapNode<V> | undefined {
    if (t === undefined || t.max < need) return undefined
    const w = this.weight
    if (t.key >= minKey) {
      const l = this.ff(t.left, minKey, need)
      if (l !== undefined) return l
      if (w !== undefined && w(t.value) >= need) return t
    }
    return this.ff(t.right, minKey, need)
  }

  /** Highest-keyed entry with `key <= maxKey` whose weight is at least `need` (augmented trees only). */
  lastFit(maxKey: number, need: number): TreapNode<V> | undefined {
    return this.lf(this.root, maxKey, need)
  }

  private lf(t: TreapNode<V> | undefined, maxKey: number, need: number): TreapNode<V> | undefined {
    if (t === undefined || t.max < need) return undefined
    const w = this.weight
    if (t.key <= maxKey) {
      const r = this.lf(t.right, maxKey, need)
      if (r !== undefined) return r
      if (w !== undefined && w(t.value) >= need) return t
    }
    return this.lf(t.left, maxKey, need)
  }

  /** In-order values. */
  *values(): IterableIterator<V> {
    const stack: Array<TreapNode<V>> = []
    let t = this.root
    while (t !== undefined || stack.length > 0) {
      while (t !== undefined) {
        stack.push(t)
        t = t.left
      }
      const n = stack.pop() as TreapNode<V>
      yield n.value
      t = n.right
    }
  }
}
