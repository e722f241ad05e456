/**
 * Block storage of the buddy allocator: every `struct drm_buddy_block` is an integer id into
 * typed arrays (offset, order, parent/children, state, clear bit, free-tree links) — a slab, as in
 * the kernel, so a fragmented 4 GiB allocator with half a million blocks costs the garbage
 * collector nothing. Ids of merged blocks are recycled; a generation counter per id lets handles
 * given to callers detect use after free.
 *
 * Also here: {@link IdTreap}, an intrusive treap over block ids keyed by offset (the per-order
 * free trees and the free-pair index).
 *
 * @internal
 */

/** No block. @internal */
export const NIL = -1

/** Block states (`DRM_BUDDY_HEADER_STATE`, plus DEAD for recycled ids). @internal */
export const FREE = 0
/** @internal */
export const SPLIT = 1
/** @internal */
export const ALLOCATED = 2
/** @internal */
export const DEAD = 3

let seed = 0x2545f491
const nextPrio = (): number => {
  seed ^= seed << 13
  seed ^= seed >>> 17
  seed ^= seed << 5
  return seed >>> 0
}

/** @internal */
export class Store {
  off = new Float64Array(1024)
  ord = new Uint8Array(1024)
  par = new Int32Array(1024)
  lft = new Int32Array(1024)
  rgt = new Int32Array(1024)
  st = new Uint8Array(1024)
  clr = new Uint8Array(1024)
  tl = new Int32Array(1024)
  tr = new Int32Array(1024)
  pri = new Uint32Array(1024)
  gen = new Uint32Array(1024)
  private recycled = new Int32Array(1024)
  private nRecycled = 0
  private next = 0
  /** `sizes[order]` = chunk size << order. */
  readonly sizes: Float64Array

  constructor(chunkSize: number, maxOrder: number) {
    this.sizes = Float64Array.from({ length: maxOrder + 1 }, (_, o) => chunkSize * 2 ** o)
  }

  /** A new block (state DEAD until indexed or allocated). */
  make(parent: number, order: number, offset: number, clear: number): number {
    let id: number
    if (this.nRecycled > 0) id = this.recycled[--this.nRecycled] as number
    else {
      if (this.next === this.off.length) this.grow()
      id = this.next++
    }
    this.off[id] = offset
    this.ord[id] = order
    this.par[id] = parent
    this.lft[id] = NIL
    this.rgt[id] = NIL
    this.st[id] = DEAD
    this.clr[id] = clear
    this.tl[id] = NIL
    this.tr[id] = NIL
    this.pri[id] = nextPrio()
    return id
  }

  /** Gives an id back (merged away); outstanding handles to it become stale. */
  release(id: number): void {
    this.st[id] = DEAD
    this.gen[id] = ((this.gen[id] as number) + 1) >>> 0
    if (this.nRecycled === this.recycled.length) {
      const r = new Int32Array(this.recycled.length * 2)
      r.set(this.recycled)
      this.recycled = r
    }
    this.recycled[this.nRecycled++] = id
  }

  private grow(): void {
    const n = this.off.length * 2
    const f64 = (a: Float64Array) => {
      const b = new Float64Array(n)
      b.set(a)
      return b
    }
    const i32 = (a: Int32Array) => {
      const b = new Int32Array(n)
      b.set(a)
      return b
    }
    const u8 = (a: Uint8Array) => {
      const b = new Uint8Array(n)
      b.set(a)
      return b
    }
    const u32 = (a: Uint32Array) => {
      const b = new Uint32Array(n)
      b.set(a)
      return b
    }
    this.off = f64(this.off)
    this.ord = u8(this.ord)
    this.par = i32(this.par)
    this.lft = i32(this.lft)
    this.rgt = i32(this.rgt)
    this.st = u8(this.st)
    this.clr = u8(this.clr)
    this.tl = i32(this.tl)
    this.tr = i32(this.tr)
    this.pri = u32(this.pri)
    this.gen = u32(this.gen)
  }

  size(id: number): number {
    return this.sizes[this.ord[id] as number] as number
  }

  end(id: number): number {
    return (this.off[id] as number) + this.size(id)
  }

  /** The other half of `id`'s parent, or NIL for a root. */
  buddy(id: number): number {
    const p = this.par[id] as number
    if (p === NIL) return NIL
    const l = this.lft[p] as number
    return l === id ? (this.rgt[p] as number) : l
  }
}

/** Intrusive treap over block ids keyed by offset. @internal */
export class IdTreap {
  private root = NIL
  private n = 0
  private readonly s: Store
  /** Scratch path for the iterative insert (a treap's depth stays far below this). */
  private path = new Int32Array(64)

  constructor(store: Store) {
    this.s = store
  }

  get size(): number {
    return this.n
  }

  isEmpty(): boolean {
    return this.root === NIL
  }

  insert(id: number): void {
    const s = this.s
    const tl = s.tl
    const tr = s.tr
    const off = s.off
    const pri = s.pri
    tl[id] = NIL
    tr[id] = NIL
    this.n++
    const key = off[id] as number
    // Descend to the leaf position, remembering the path, then rotate the new node up while its
    // priority beats its parent's (iterative: no recursion, no writes along the whole path).
    let path = this.path
    let depth = 0
    let t = this.root
    while (t !== NIL) {
      if (depth === path.length) path = this.growPath()
      path[depth++] = t
      t = key < (off[t] as number) ? (tl[t] as number) : (tr[t] as number)
    }
    if (depth === 0) {
      this.root = id
      return
    }
    const p = path[depth - 1] as number
    if (key < (off[p] as number)) tl[p] = id
    else tr[p] = id
    const prio = pri[id] as number
    let i = depth - 1
    while (i >= 0 && prio > (pri[path[i] as number] as number)) {
      const q = path[i] as number
      if (tl[q] === id) {
        tl[q] = tr[id] as number
        tr[id] = q
      } else {
        tr[q] = tl[id] as number
        tl[id] = q
      }
      i--
      if (i < 0) this.root = id
      else {
        const g = path[i] as number
        if (tl[g] === q) tl[g] = id
        else tr[g] = id
      }
    }
  }

  private growPath() {
    const p = new Int32Array(this.path.length * 2)
    p.set(this.path)
    this.path = p
    return p
  }

  /** Removes the entry with offset `key`; returns whether one was present. */
  delete(key: number): boolean {
    const s = this.s
    let parent = NIL
    let t = this.root
    while (t !== NIL && s.off[t] !== key) {
      parent = t
      t = key < (s.off[t] as number) ? (s.tl[t] as number) : (s.tr[t] as number)
    }
    if (t === NIL) return false
    const j = this.join(s.tl[t] as number, s.tr[t] as number)
    if (parent === NIL) this.root = j
    else if (s.tl[parent] === t) s.tl[parent] = j
    else s.tr[parent] = j
    this.n--
    return true
  }

  private join(a: number, b: number): number {
    if (a === NIL) return b
    if (b === NIL) return a
    const s = this.s
    if ((s.pri[a] as number) > (s.pri[b] as number)) {
      s.tr[a] = this.join(s.tr[a] as number, b)
      return a
    }
    s.tl[b] = this.join(a, s.tl[b] as number)
    return b
  }

  last(): number {
    const s = this.s
    let t = this.root
    if (t === NIL) return NIL
    while (s.tr[t] !== NIL) t = s.tr[t] as number
    return t
  }

  find(key: number): number {
    const s = this.s
    let t = this.root
    while (t !== NIL && s.off[t] !== key) t = key < (s.off[t] as number) ? (s.tl[t] as number) : (s.tr[t] as number)
    return t
  }

  /** Smallest offset `>= key` (`strict`: `> key`). */
  ceil(key: number, strict = false): number {
    const s = this.s
    let t = this.root
    let best = NIL
    while (t !== NIL) {
      const k = s.off[t] as number
      if (k > key || (!strict && k === key)) {
        best = t
        t = s.tl[t] as number
      } else t = s.tr[t] as number
    }
    return best
  }

  /** Largest offset `<= key` (`strict`: `< key`). */
  floor(key: number, strict = false): number {
    const s = this.s
    let t = this.root
    let best = NIL
    while (t !== NIL) {
      const k = s.off[t] as number
      if (k < key || (!strict && k === key)) {
        best = t
        t = s.tr[t] as number
      } else t = s.tl[t] as number
    }
    return best
  }

  /** Ids in offset order. */
  ids(): Array<number> {
    const s = this.s
    const out: Array<number> = []
    const stack: Array<number> = []
    let t = this.root
    while (t !== NIL || stack.length > 0) {
      while (t !== NIL) {
        stack.push(t)
        t = s.tl[t] as number
      }
      const x = stack.pop() as number
      out.push(x)
      t = s.tr[x] as number
    }
    return out
  }
}
