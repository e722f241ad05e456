/**
 * Buddy allocator under severe fragmentation — the shape of the kernel's
 * drm_test_buddy_fragmentation_performance: a 4 GiB allocator in 4 KiB chunks, 65 536 allocations
 * of 8 KiB at 64 KiB alignment, freed alternately cleared/dirty so nothing coalesces, then 65 536
 * allocations of 64 KiB and a free of everything. Second case: same fragmentation, free half as
 * cleared, then free the rest in reverse order.
 *
 * Anchor: kernel RB-tree 186 ms / 114 ms (free-list: 76.5 s / 85.6 s). Peer: a naive free-list
 * buddy written below (offset-sorted linked list per order, linear scans for a compatible block
 * and for force-merge candidates — the pre-2025 kernel design).
 *
 * The peer is stopped after PEER_CAP_MS of CPU per case (it is quadratic: the kernel's free-list
 * version took 76.5 s); a stopped peer's time is reported as a lower bound.
 *
 * Times are CPU time of this process (`process.cpuUsage`, user + system) after a forced GC: the CI
 * box is small and shared, and wall time there measures the neighbours. Goals are checked on the
 * best of 7 samples; the medians are printed too.
 */
import { median, report } from "@drmkit/bench-kit"
import { Buddy } from "@drmkit/ttm-placement"
import { Result } from "effect"

const KiB = 1024
const GiB = 1024 ** 3
const SIZE = 4 * GiB
const N = SIZE / (64 * KiB)

interface Alloc {
  alloc(size: number, min: number): Array<unknown>
  free(bs: Array<unknown>, cleared: boolean): void
}

const ours = (): Alloc => {
  const mm = Result.getOrThrow(Buddy.make(SIZE, 4 * KiB))
  return {
    alloc: (size, min) => Result.getOrThrow(mm.alloc({ size, minBlockSize: min })),
    free: (bs, cleared) => mm.free(bs as Array<Buddy.BuddyBlock>, { cleared })
  }
}

const gc = (globalThis as { gc?: () => void }).gc
const cpuMs = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

const fragmentationCase = (mk: () => Alloc): number => {
  const mm = mk()
  gc?.()
  const t0 = cpuMs()
  const got: Array<unknown> = []
  for (let i = 0; i < N; i++) got.push(...mm.alloc(8 * KiB, 64 * KiB))
  mm.free(
    got.filter((_, i) => i % 4 === 0 || i % 4 === 3),
    true
  )
  mm.free(
    got.filter((_, i) => i % 4 === 1 || i % 4 === 2),
    false
  )
  const big: Array<unknown> = []
  for (let i = 0; i < N; i++) big.push(...mm.alloc(64 * KiB, 64 * KiB))
  mm.free(big, false)
  return cpuMs() - t0
}

const reverseCase = (mk: () => Alloc): number => {
  const mm = mk()
  gc?.()
  const t0 = cpuMs()
  const got: Array<unknown> = []
  for (let i = 0; i < N; i++) got.push(...mm.alloc(8 * KiB, 64 * KiB))
  mm.free(
    got.filter((_, i) => i % 2 === 0),
    true
  )
  mm.free(got.filter((_, i) => i % 2 === 1).reverse(), true)
  return cpuMs() - t0
}

const PEER_CAP_MS = 30_000
class Stopped extends Error {}
let peerDeadline = Number.POSITIVE_INFINITY
let peerCalls = 0
const peerTick = () => {
  if (++peerCalls % 128 === 0 && cpuMs() > peerDeadline) throw new Stopped()
}

// ---------------------------------------------------------------------------------------------
// Peer: naive free-list buddy (sorted doubly linked list per order, linear searches).

interface PBlock {
  off: number
  order: number
  parent: PBlock | undefined
  left: PBlock | undefined
  right: PBlock | undefined
  state: 0 | 1 | 2
  clear: boolean
  prev: PBlock | undefined
  next: PBlock | undefined
}

class FreeListBuddy implements Alloc {
  private readonly heads: Array<PBlock | undefined>
  private readonly tails: Array<PBlock | undefined>
  private clearAvail = 0
  private readonly maxOrder: number
  private readonly chunk: number
  private readonly root: PBlock

  constructor(size: number, chunk: number) {
    this.chunk = chunk
    this.maxOrder = Math.log2(size / chunk)
    this.heads = new Array(this.maxOrder + 1).fill(undefined)
    this.tails = new Array(this.maxOrder + 1).fill(undefined)
    this.root = this.block(undefined, this.maxOrder, 0)
    this.markFree(this.root)
  }

  private block(parent: PBlock | undefined, order: number, off: number): PBlock {
    return {
      off,
      order,
      parent,
      left: undefined,
      right: undefined,
      state: 0,
      clear: false,
      prev: undefined,
      next: undefined
    }
  }

  private unlink(b: PBlock): void {
    if (b.prev) b.prev.next = b.next
    else this.heads[b.order] = b.next
    if (b.next) b.next.prev = b.prev
    else this.tails[b.order] = b.prev
    b.prev = b.next = undefined
  }

  /** list_insert_sorted: walk from the head to the first larger offset. */
  private markFree(b: PBlock): void {
    b.state = 0
    let n = this.heads[b.order]
    while (n && n.off < b.off) n = n.next
    if (!n) {
      b.prev = this.tails[b.order]
      if (b.prev) b.prev.next = b
      else this.heads[b.order] = b
      this.tails[b.order] = b
      return
    }
    b.next = n
    b.prev = n.prev
    if (n.prev) n.prev.next = b
    else this.heads[b.order] = b
    n.prev = b
  }

  private split(b: PBlock): void {
    const h = this.chunk * 2 ** (b.order - 1)
    b.left = this.block(b, b.order - 1, b.off)
    b.right = this.block(b, b.order - 1, b.off + h)
    b.left.clear = b.right.clear = b.clear
    b.clear = false
    this.unlink(b)
    b.state = 1
    this.markFree(b.left)
    this.markFree(b.right)
  }

  private buddyOf(b: PBlock): PBlock | undefined {
    const p = b.parent
    return p === undefined ? undefined : p.left === b ? p.right : p.left
  }

  private mergeUp(b: PBlock, force: boolean): PBlock {
    for (;;) {
      const p = b.parent
      const bud = this.buddyOf(b)
      if (!p || !bud || bud.state !== 0) break
      if (!force && bud.clear !== b.clear) break
      if (!force && b.clear) p.clear = true
      this.unlink(bud)
      if (force && bud.clear) this.clearAvail -= this.chunk * 2 ** bud.order
      p.left = p.right = undefined
      b = p
    }
    this.markFree(b)
    return b
  }

  private forceMerge(minOrder: number): boolean {
    for (let i = minOrder - 1; i >= 0; i--) {
      for (let b = this.tails[i]; b; ) {
        const prev = b.prev
        const bud = this.buddyOf(b)
        if (b.parent && bud && bud.state === 0) {
          this.unlink(b)
          if (b.clear) this.clearAvail -= this.chunk * 2 ** b.order
          if (this.mergeUp(b, true).order >= minOrder) return true
          b = this.heads[i] === undefined ? undefined : this.tails[i]
          continue
        }
        b = prev
      }
    }
    return false
  }

  private fromList(order: number, clear: boolean): PBlock | undefined {
    let found: PBlock | undefined
    for (let o = order; o <= this.maxOrder && !found; o++) {
      for (let b = this.tails[o]; b; b = b.prev)
        if (b.clear === clear) {
          found = b
          break
        }
    }
    for (let o = order; o <= this.maxOrder && !found; o++) found = this.tails[o]
    if (!found) return undefined
    while (found.order > order) {
      this.split(found)
      found = found.right as PBlock
    }
    return found
  }

  private take(b: PBlock): void {
    this.unlink(b)
    b.state = 2
    if (b.clear) this.clearAvail -= this.chunk * 2 ** b.order
  }

  alloc(size: number, min: number): Array<unknown> {
    peerTick()
    const order = Math.log2(min / this.chunk)
    let b = this.fromList(order, false)
    if (!b && this.clearAvail > 0 && this.forceMerge(order)) b = this.fromList(order, false)
    if (!b) throw new Error("peer: ENOSPC")
    this.take(b)
    if (size === min) return [b]
    // trim: free the block, re-take only the first `size` bytes
    this.markFree(b)
    if (b.clear) this.clearAvail += min
    const out: Array<PBlock> = []
    let cur = b
    while (this.chunk * 2 ** cur.order > size) {
      this.split(cur)
      cur = cur.left as PBlock
    }
    this.take(cur)
    out.push(cur)
    return out
  }

  free(bs: Array<unknown>, cleared: boolean): void {
    for (const x of bs) {
      peerTick()
      const b = x as PBlock
      b.clear = cleared
      if (cleared) this.clearAvail += this.chunk * 2 ** b.order
      this.mergeUp(b, false)
    }
  }
}

const peer = (): Alloc => new FreeListBuddy(SIZE, 4 * KiB)

// ---------------------------------------------------------------------------------------------

/** Best and median of `n` samples after a warm-up (best-of-n: the usual estimator on a shared box). */
const sample = (f: () => number, n: number) => {
  f()
  const xs = Array.from({ length: n }, f)
  return { best: Math.min(...xs), median: median(xs) }
}

const frag = sample(() => fragmentationCase(ours), 7)
const rev = sample(() => reverseCase(ours), 7)
const fragOurs = frag.best
const revOurs = rev.best
const capped = (f: (mk: () => Alloc) => number): { ms: number; stopped: boolean } => {
  gc?.()
  peerDeadline = cpuMs() + PEER_CAP_MS
  try {
    return { ms: f(peer), stopped: false }
  } catch (e) {
    if (e instanceof Stopped) return { ms: PEER_CAP_MS, stopped: true }
    throw e
  } finally {
    peerDeadline = Number.POSITIVE_INFINITY
  }
}
const fragP = capped(fragmentationCase)
const revP = capped(reverseCase)
const fragPeer = fragP.ms
const revPeer = revP.ms
const peerName = (p: { stopped: boolean }) =>
  p.stopped ? `naive free-list buddy (stopped at ${PEER_CAP_MS / 1000} s: lower bound)` : "naive free-list buddy"

report("buddy", [
  {
    name: "fragmented 64 KiB alloc (4 GiB, 65 536 × 8 KiB@64 KiB, then 65 536 × 64 KiB), best of 7",
    value: fragOurs,
    unit: "ms (CPU)",
    peer: peerName(fragP),
    peerValue: fragPeer,
    ratio: fragPeer / fragOurs,
    goal: "≤ 186 ms and ≥ 50× peer",
    pass: fragOurs <= 186 && fragPeer / fragOurs >= 50
  },
  {
    name: "reverse-order free under fragmentation, best of 7",
    value: revOurs,
    unit: "ms (CPU)",
    peer: peerName(revP),
    peerValue: revPeer,
    ratio: revPeer / revOurs,
    goal: "≤ 114 ms (kernel RB-tree)",
    pass: revOurs <= 114
  },
  { name: "fragmented 64 KiB alloc, median of 7", value: frag.median, unit: "ms (CPU)" },
  { name: "reverse-order free, median of 7", value: rev.median, unit: "ms (CPU)" }
])
