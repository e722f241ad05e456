/**
 * Reservation-object cursors (internal): the locked walk (`dma_resv_iter_first/next`) and the
 * lockless one (`dma_resv_iter_first_unlocked/next_unlocked`), over the published fence list.
 *
 * @since 0.1.0
 */
import type { DmaFence } from "../DmaFence.ts"
import type { FenceList, UsageRank } from "./fenceList.ts"

/** What a cursor needs from its reservation object. */
export interface ListSource {
  /** The currently published list (the RCU pointer). */
  readonly list: FenceList
}

/**
 * A cursor over a reservation object's fences with usage rank <= `usage`. `locked` cursors yield
 * signalled fences too and never restart; unlocked ones skip signalled fences and restart from the
 * beginning whenever the published list was replaced.
 */
export class Cursor {
  readonly #source: ListSource
  readonly #usage: UsageRank
  readonly #unlocked: boolean
  readonly #check: () => void
  #list: FenceList | undefined = undefined
  #index = 0
  #count = 0
  #restarted = false
  #fence: DmaFence | undefined = undefined
  #fenceUsage: UsageRank = 0

  constructor(source: ListSource, usage: UsageRank, unlocked: boolean, check: () => void) {
    this.#source = source
    this.#usage = usage
    this.#unlocked = unlocked
    this.#check = check
  }

  /** The fence the cursor stands on (the reference an unlocked cursor holds), if any. */
  get fence(): DmaFence | undefined {
    return this.#fence
  }

  /** Usage rank of the current entry. */
  get usageRank(): UsageRank {
    return this.#fenceUsage
  }

  /** Entries in the table at the last (re)start, signalled ones included (`cursor->num_fences`). */
  get tableCount(): number {
    return this.#count
  }

  /** True when the current fence is the first after a (re)start of the walk. */
  get isRestarted(): boolean {
    return this.#restarted
  }

  /** Starts (or restarts) the walk and returns the first matching fence. */
  first(): DmaFence | undefined {
    this.#check()
    this.#restart()
    return this.#walk()
  }

  /** The next matching fence, `undefined` at the end. */
  next(): DmaFence | undefined {
    this.#check()
    if (this.#list === undefined) return this.first()
    this.#restarted = false
    return this.#walk()
  }

  #restart(): void {
    const list = this.#source.list
    this.#list = list
    this.#index = 0
    this.#count = list.count
    this.#restarted = true
  }

  #walk(): DmaFence | undefined {
    for (;;) {
      if (this.#unlocked && this.#list !== this.#source.list) this.#restart()
      const list = this.#list as FenceList
      while (this.#index < this.#count) {
        const i = this.#index++
        const f = list.fences[i] as DmaFence
        const u = list.usages[i] as UsageRank
        if (u > this.#usage || (this.#unlocked && f.isSignaled)) continue
        if (this.#unlocked && this.#list !== this.#source.list) break
        this.#fence = f
        this.#fenceUsage = u
        return f
      }
      if (this.#unlocked && this.#list !== this.#source.list) continue
      this.#fence = undefined
      return undefined
    }
  }

  *[Symbol.iterator](): Iterator<DmaFence> {
    for (let f = this.first(); f !== undefined; f = this.next()) yield f
  }
}
