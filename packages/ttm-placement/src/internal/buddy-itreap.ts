/**
 * An intrusive treap keyed by a unique number: the tree links live in the element itself (like an
 * `rb_node` embedded in `struct drm_buddy_block`), so indexing a free block allocates nothing.
 * An element may be in at most one such tree at a time.
 *
 * @internal
 */

/** Links an element must carry; the key is its `offset`, the heap priority its `tprio`. @internal */
export interface Links<N> {
  readonly offset: number
  /** Heap priority (pseudo-random, derived from the key: no extra state). */
  readonly tprio: number
  tl: N | undefined
  tr: N | undefined
}

/** @internal */
export class ITreap<N extends Links<N>> {
  private root: N | undefined = undefined
  private n = 0

  get size(): number {
    return this.n
  }

  isEmpty(): boolean {
    return this.root === undefined
  }

  insert(x: N): void {
    x.tl = undefined
    x.tr = undefined
    this.root = this.ins(this.root, x)
    this.n++
  }

  private ins(t: N | undefined, x: N): N {
    if (t === undefined) return x
    if (x.offset < t.offset) {
      const l = this.ins(t.tl, x)
      t.tl = l
      if (l.tprio > t.tprio) {
        t.tl = l.tr
        l.tr = t
        return l
      }
    } else {
      const r = this.ins(t.tr, x)
      t.tr = r
      if (r.tprio > t.tprio) {
        t.tr = r.tl
        r.tl = t
        return r
      }
    }
    return t
  }

  /** Removes the element with `key`; returns whether one was present. */
  delete(key: number): boolean {
    let parent: N | undefined
    let t = this.root
    while (t !== undefined && t.offset !== key) {
      parent = t
      t = key < t.offset ? t.tl : t.tr
    }
    if (t === undefined) return false
    const j = this.join(t.tl, t.tr)
    if (parent === undefined) this.root = j
    else if (parent.tl === t) parent.tl = j
    else parent.tr = j
    t.tl = undefined
    t.tr = undefined
    this.n--
    return true
  }

  private join(a: N | undefined, b: N | undefined): N | undefined {
    if (a === undefined) return b
    if (b === undefined) return a
    if (a.tprio > b.tprio) {
      a.tr = this.join(a.tr, b)
      return a
    }
    b.tl = this.join(a, b.tl)
    return b
  }

  last(): N | undefined {
    let t = this.root
    if (t === undefined) return undefined
    while (t.tr !== undefined) t = t.tr
    return t
  }

  /** Element with exactly `key`. */
  find(key: number): N | undefined {
    let t = this.root
    while (t !== undefined && t.offset !== key) t = key < t.offset ? t.tl : t.tr
    return t
  }

  /** Smallest key `>= key`. */
  ceil(key: number): N | undefined {
    let t = this.root
    let best: N | undefined
    while (t !== undefined) {
      if (t.offset >= key) {
        best = t
        t = t.tl
      } else t = t.tr
    }
    return best
  }

  /** Largest key `<= key`. */
  floor(key: number): N | undefined {
    let t = this.root
    let best: N | undefined
    while (t !== undefined) {
      if (t.offset <= key) {
        best = t
        t = t.tr
      } else t = t.tl
    }
    return best
  }

  /** Smallest key `> key`. */
  next(key: number): N | undefined {
    let t = this.root
    let best: N | undefined
    while (t !== undefined) {
      if (t.offset > key) {
        best = t
        t = t.tl
      } else t = t.tr
    }
    return best
  }

  /** Largest key `< key`. */
  prev(key: number): N | undefined {
    let t = this.root
    let best: N | undefined
    while (t !== undefined) {
      if (t.offset < key) {
        best = t
        t = t.tr
      } else t = t.tl
    }
    return best
  }

  /** Elements in key order. */
  *values(): IterableIterator<N> {
    const stack: Array<N> = []
    let t = this.root
    while (t !== undefined || stack.length > 0) {
      while (t !== undefined) {
        stack.push(t)
        t = t.tl
      }
      const x = stack.pop() as N
      yield x
      t = x.tr
    }
  }
}
