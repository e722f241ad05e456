/**
 * The reservation object's data and checks (internal): the `DmaResv` class, usage ranks, the
 * witness check behind every `Held<DmaResv>` operation, and the cursor implementation.
 *
 * @since 0.1.0
 */
import { Invalid } from "@drmkit/core"
import type { DmaFence } from "../DmaFence.ts"
import type { Held } from "../Held.ts"
import { reservationWwClass } from "../WwMutex.ts"
import { emptyList, type FenceList, type UsageRank } from "./fenceList.ts"
import { heldByCurrent, makeHeld, mutexOf } from "./held.ts"
import { config } from "./lockdep.ts"
import { Cursor } from "./resvIter.ts"
import { WwMutex } from "./state.ts"

/**
 * Usage classes of a fence in a reservation object: `KERNEL < WRITE < READ < BOOKKEEP`
 * (`enum dma_resv_usage`). A query for usage U sees every fence whose usage is <= U.
 *
 * @since 0.1.0
 * @category usage
 */
export const Usage = { KERNEL: "kernel", WRITE: "write", READ: "read", BOOKKEEP: "bookkeep" } as const

/**
 * One of {@link Usage}.
 *
 * @since 0.1.0
 * @category usage
 */
export type Usage = (typeof Usage)[keyof typeof Usage]

/** Key of a resv's cached witness; not exported from the package, so only lock operations mint it. */
export const heldKey: unique symbol = Symbol("@drmkit/resv-locking/DmaResv/held")

const usageNames: ReadonlyArray<Usage> = ["kernel", "write", "read", "bookkeep"]

/** The rank of a usage, or `undefined` for anything else. */
export const usageRank = (u: unknown): UsageRank | undefined => {
  const i = usageNames.indexOf(u as Usage)
  return i < 0 ? undefined : (i as UsageRank)
}

/** The usage name of a rank. */
export const usageName = (r: UsageRank): Usage => usageNames[r] as Usage

/** The error for an unknown usage. */
export const invalidUsage = (u: unknown): Invalid =>
  new Invalid({ what: "dma_resv_usage", reason: "must be kernel, write, read or bookkeep", value: u })

/**
 * A reservation object. Models `struct dma_resv` after `dma_resv_init()`. It is itself a lock item
 * (`resv` points to itself), so a bare resv can join an exec transaction.
 *
 * @since 0.1.0
 * @category models
 */
export class DmaResv {
  readonly name: string
  /** The ww_mutex of `reservation_ww_class` guarding the fences. */
  readonly mutex: WwMutex
  /** @internal the published fence list (the RCU pointer) */
  list: FenceList = emptyList()
  /** @internal the cached witness (minted only by the lock operations) */
  readonly [heldKey]: Held<DmaResv>

  constructor(name: string) {
    this.name = name
    this.mutex = new WwMutex(reservationWwClass, name)
    this[heldKey] = makeHeld<DmaResv>(this, this.mutex)
  }

  /** A resv is its own lock item. */
  get resv(): DmaResv {
    return this
  }

  /** Number of fence entries (signalled ones included). */
  get fenceCount(): number {
    return this.list.count
  }

  /** Entries that can still be appended without reserving again. */
  get freeSlots(): number {
    return this.list.max - this.list.count
  }

  toString(): string {
    return `dma_resv(${this.name})`
  }
}

/** The error thrown (a defect) when a `Held<DmaResv>` operation runs without the lock: `dma_resv_assert_held()` failing. */
export class NotHeld extends Error {
  readonly _tag = "NotHeld"
  constructor(op: string, resv: DmaResv) {
    super(`dma_resv_assert_held: ${op}: ${resv.name} is not locked by this task`)
    this.name = "NotHeld"
  }
}

/**
 * `dma_resv_assert_held()`: the witness is genuine, belongs to its resv and the running task owns
 * the lock. Throws {@link NotHeld} otherwise.
 */
export const checkHeld = (held: Held<DmaResv>, op: string): DmaResv => {
  const resv = held.target
  if (mutexOf(held) !== resv.mutex || !heldByCurrent(held)) throw new NotHeld(op, resv)
  return resv
}

/**
 * `dma_resv_reset_max_fences()`, applied on unlock when strict mode is on: the strict switch of
 * the acquire ctx holding the lock (e.g. a strict exec), else the global one.
 */
export const resetMaxFences = (resv: DmaResv): void => {
  if (resv.mutex.ctx?.strict ?? config.strict) resv.list.max = resv.list.count
}

/** The public cursor: a {@link Cursor} that names its usage. */
export class IterImpl extends Cursor {
  get usage(): Usage {
    return usageName(this.usageRank)
  }
}

/** A lockless snapshot: the collected entries and the table size at the walk's last (re)start. */
export interface Snapshot {
  readonly entries: ReadonlyArray<readonly [DmaFence, UsageRank]>
  readonly tableCount: number
}

/**
 * Unsignalled entries with usage <= `rank`, dropping what was collected whenever the walk restarts,
 * like `dma_resv_get_fences()` and `dma_resv_copy_fences()` do.
 */
export const snapshot = (resv: DmaResv, rank: UsageRank): Snapshot => {
  const it = new IterImpl(resv, rank, true, noCheck)
  let entries: Array<readonly [DmaFence, UsageRank]> = []
  let tableCount = 0
  for (const f of it) {
    if (it.isRestarted) {
      entries = []
      tableCount = it.tableCount
    }
    entries.push([f, it.usageRank])
  }
  return { entries, tableCount }
}

/** The fences of a {@link snapshot}. */
export const snapshotFences = (resv: DmaResv, rank: UsageRank): Array<DmaFence> =>
  snapshot(resv, rank).entries.map(([f]) => f)

/** A no-op cursor check (unlocked cursors). */
export const noCheck = (): void => {}
