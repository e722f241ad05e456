/**
 * LRU lists — models the per manager × priority `man->lru[prio]` lists and the bulk-move groups of
 * `ttm_resource.c` (`ttm_lru_bulk_move`, `ttm_lru_bulk_move_tail`). The head is the least recently
 * used resource; eviction walks from the head. A bulk group keeps, per (memType, priority), the first
 * and last of its resources, which sit next to each other on the LRU, so the whole group moves to
 * the tail in O(1).
 *
 * @since 0.1.0
 */
import { collect, insertAfter, ListNode, spliceTail, unlink } from "./internal/list.ts"
import { MAX_BO_PRIORITY, NUM_MEM_TYPES } from "./Placement.ts"
import { Resource } from "./Resource.ts"

/**
 * The LRU lists of one manager, one per priority.
 *
 * @since 0.1.0
 * @category models
 */
export class ManagerLru {
  readonly heads: ReadonlyArray<ListNode> = Array.from({ length: MAX_BO_PRIORITY }, () => new ListNode())
  /** The list head of `priority`. */
  head(priority: number): ListNode {
    const h = this.heads[priority]
    if (h === undefined) throw new RangeError(`priority ${priority} out of range`)
    return h
  }
  /** Resources of `priority`, least recently used first. */
  list(priority: number): Array<Resource> {
    return collect(this.head(priority), (n) => (n instanceof Resource ? n : undefined))
  }
  /** Every resource, priority 0 first, LRU order within a priority. */
  all(): Array<Resource> {
    return this.heads.flatMap((_, p) => this.list(p))
  }
}

interface BulkPos {
  first: Resource
  last: Resource
}

/**
 * A bulk-move group (`struct ttm_lru_bulk_move`): per-VM BOs that share a resv move to the LRU tail
 * together. Must be emptied before it is dropped.
 *
 * @since 0.1.0
 * @category models
 */
export class BulkMove {
  readonly pos: Array<Array<BulkPos | undefined>> = Array.from({ length: NUM_MEM_TYPES }, () =>
    Array.from({ length: MAX_BO_PRIORITY }, () => undefined)
  )
  /** Number of resources in the group. */
  count = 0
  /** `ttm_lru_bulk_move_tail`: every position of the group to its LRU's tail, O(1) per position. */
  tail(lrus: ReadonlyArray<ManagerLru | undefined>): void {
    this.pos.forEach((row, memType) => {
      row.forEach((p, prio) => {
        const lru = lrus[memType]
        if (p !== undefined && lru !== undefined) spliceTail(lru.head(prio), p.first, p.last)
      })
    })
  }
  /** Whether the group has no resources left. */
  get isEmpty(): boolean {
    return this.count === 0
  }
}

const posOf = (bulk: BulkMove, res: Resource): BulkPos | undefined => bulk.pos[res.memType]?.[res.lruPriority]

const setPos = (bulk: BulkMove, res: Resource, p: BulkPos | undefined): void => {
  const row = bulk.pos[res.memType]
  if (row) row[res.lruPriority] = p
}

/**
 * Links `res` at the tail of its LRU (or after its group's last member). Models
 * `ttm_resource_add_bulk_move` + `list_add_tail`.
 *
 * @since 0.1.0
 * @category operations
 */
export const addToLru = (lru: ManagerLru, res: Resource, priority: number, bulk: BulkMove | undefined): void => {
  unlinkResource(res)
  res.lruPriority = priority
  res.where = "lru"
  const head = lru.head(priority)
  const p = bulk === undefined ? undefined : posOf(bulk, res)
  if (bulk === undefined) insertAfter(head.prev, res)
  else if (p === undefined) {
    insertAfter(head.prev, res)
    setPos(bulk, res, { first: res, last: res })
  } else {
    insertAfter(p.last, res)
    p.last = res
  }
  if (bulk !== undefined) {
    res.bulk = bulk
    bulk.count++
  }
}

/**
 * Unlinks `res` from whatever list it is on, keeping its bulk group's first/last right. Models
 * `ttm_resource_del_bulk_move` + `list_del_init`.
 *
 * @since 0.1.0
 * @category operations
 */
export const unlinkResource = (res: Resource): void => {
  leaveBulk(res)
  unlink(res)
  res.where = "none"
}

/**
 * Takes `res` out of its bulk group, keeping the group's first/last right and the group's run
 * contiguous: a member leaving from the middle moves to just after the group's last one
 * (`ttm_lru_bulk_move_del`).
 *
 * @since 0.1.0
 * @category operations
 */
export const leaveBulk = (res: Resource): void => {
  const bulk = res.bulk
  if (bulk instanceof BulkMove && res.where === "lru") {
    const p = posOf(bulk, res)
    if (p !== undefined) {
      if (p.first === res && p.last === res) setPos(bulk, res, undefined)
      else if (p.first === res && res.next instanceof Resource) p.first = res.next
      else if (p.last === res && res.prev instanceof Resource) p.last = res.prev
      else {
        // From the middle: step out of the group's run, just after its last member.
        unlink(res)
        insertAfter(p.last, res)
      }
    }
    bulk.count--
  }
  res.bulk = undefined
}

/**
 * Puts a resource that is already on its LRU into `bulk` (`ttm_lru_bulk_move_add`): the first member
 * keeps its LRU position, later members move right after the group's last one.
 *
 * @since 0.1.0
 * @category operations
 */
export const joinBulk = (res: Resource, bulk: BulkMove): void => {
  if (res.where !== "lru" || res.bulk === bulk) return
  const p = posOf(bulk, res)
  if (p === undefined) setPos(bulk, res, { first: res, last: res })
  else {
    unlink(res)
    insertAfter(p.last, res)
    p.last = res
  }
  res.bulk = bulk
  bulk.count++
}

/**
 * Moves `res` to the LRU tail — or, in a bulk group, to the tail of its group's run. Models
 * `ttm_resource_move_to_lru_tail`.
 *
 * @since 0.1.0
 * @category operations
 */
export const bumpTail = (lru: ManagerLru, res: Resource): void => {
  if (res.where !== "lru") return
  const bulk = res.bulk
  if (bulk instanceof BulkMove) {
    const prio = res.lruPriority
    unlinkResource(res)
    addToLru(lru, res, prio, bulk)
  } else spliceTail(lru.head(res.lruPriority), res, res)
}

/**
 * Puts `res` on the device's unevictable list (pinned or swapped BOs).
 *
 * @since 0.1.0
 * @category operations
 */
export const addUnevictable = (unevictable: ListNode, res: Resource): void => {
  unlinkResource(res)
  insertAfter(unevictable.prev, res)
  res.where = "unevictable"
}
