/**
 * Node list and hole bookkeeping of the range manager (the state behind `struct drm_mm`).
 *
 * As in the kernel, a hole is owned by the node *before* it: node `n`'s hole is
 * `[n.start + n.size, n.next.start)`. A sentinel head node with `start = end of range` and
 * `size = -range size` makes the first hole start at the range start and the last hole end at the
 * range end with no special cases. Holes are indexed three ways: by size (best fit), by address
 * with the subtree-maximum hole size (low/high fit in O(log n), `subtree_max_hole`), and on a
 * most-recent-first stack (`hole_stack`, the EVICT mode and the eviction scan).
 *
 * @internal
 */
import { Treap } from "./mm-treap.ts"

/** One node (`struct drm_mm_node`); the head sentinel is a Node too. @internal */
export class Node {
  start: number
  size: number
  color: number
  readonly owner: object
  allocated = false
  scanned = false
  /** Node list (address order, circular through the head). */
  prev: Node = this
  next: Node = this
  /** Size of the hole after this node; 0 when none. */
  holeSize = 0
  /** Start of the hole as indexed (kept so the trees can be searched even while a scan unlinks). */
  holeKey = 0
  /** Hole stack links (most recent hole first). */
  stackPrev: Node | undefined = undefined
  stackNext: Node | undefined = undefined

  constructor(owner: object, start: number, size: number, color: number) {
    this.owner = owner
    this.start = start
    this.size = size
    this.color = color
  }

  get holeStart(): number {
    return this.start + this.size
  }

  get holeEnd(): number {
    return this.next.start
  }
}

/** The three hole indexes and the node-by-start index. @internal */
export class Holes {
  readonly bySize = new Treap<Node>()
  readonly byAddr = new Treap<Node>((n) => n.holeSize)
  readonly nodes = new Treap<Node>()
  /** Hole stack head (a dummy node used only for its stack links). */
  readonly stack: Node

  constructor(owner: object) {
    this.stack = new Node(owner, 0, 0, 0)
    this.stack.stackNext = this.stack
    this.stack.stackPrev = this.stack
  }

  /** `add_hole`: indexes the gap after `n` (which must exist). */
  add(n: Node): void {
    n.holeSize = n.holeEnd - n.holeStart
    n.holeKey = n.holeStart
    this.bySize.insert(n.holeSize, n.holeKey, n)
    this.byAddr.insert(n.holeKey, 0, n)
    const first = this.stack.stackNext as Node
    n.stackNext = first
    n.stackPrev = this.stack
    first.stackPrev = n
    this.stack.stackNext = n
  }

  /** `rm_hole`: drops the hole after `n` from every index. */
  rm(n: Node): void {
    if (n.holeSize === 0) return
    this.bySize.delete(n.holeSize, n.holeKey)
    this.byAddr.delete(n.holeKey, 0)
    const p = n.stackPrev as Node
    const x = n.stackNext as Node
    p.stackNext = x
    x.stackPrev = p
    n.stackPrev = undefined
    n.stackNext = undefined
    n.holeSize = 0
  }

  /** Holes, most recently created first (`mm->hole_stack`). */
  *stackOrder(): IterableIterator<Node> {
    for (let h = this.stack.stackNext as Node; h !== this.stack; h = h.stackNext as Node) yield h
  }

  /** Links `n` into the node list right after `after`. */
  link(after: Node, n: Node): void {
    n.prev = after
    n.next = after.next
    after.next.prev = n
    after.next = n
    this.nodes.insert(n.start, 0, n)
  }

  /** Unlinks `n` from the node list. */
  unlink(n: Node): void {
    n.prev.next = n.next
    n.next.prev = n.prev
    this.nodes.delete(n.start, 0)
  }
}
