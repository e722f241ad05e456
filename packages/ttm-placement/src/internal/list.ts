/**
 * Intrusive circular doubly linked list (the kernel's `list_head`), used for the per-manager ×
 * priority LRUs. O(1) insert, remove, move-to-tail and range splice.
 */

/** A list node; a detached node points at itself. */
export class ListNode {
  prev: ListNode = this
  next: ListNode = this
}

/** `list_empty` for a node: detached. */
export const isDetached = (n: ListNode): boolean => n.next === n

/** Unlinks `n` (no-op when detached). */
export const unlink = (n: ListNode): void => {
  n.prev.next = n.next
  n.next.prev = n.prev
  n.prev = n
  n.next = n
}

/** Inserts detached `n` after `at`. */
export const insertAfter = (at: ListNode, n: ListNode): void => {
  n.prev = at
  n.next = at.next
  at.next.prev = n
  at.next = n
}

/** Moves the range `first..last` (inclusive, linked in order) to just before `head` (its tail). */
export const spliceTail = (head: ListNode, first: ListNode, last: ListNode): void => {
  if (last.next === head) return
  first.prev.next = last.next
  last.next.prev = first.prev
  const tail = head.prev
  tail.next = first
  first.prev = tail
  last.next = head
  head.prev = last
}

/** Collects the items of list `head` (head excluded), mapped through `f`, in order. */
export const collect = <T>(head: ListNode, f: (n: ListNode) => T | undefined): Array<T> => {
  const out: Array<T> = []
  for (let n = head.next; n !== head; n = n.next) {
    const v = f(n)
    if (v !== undefined) out.push(v)
  }
  return out
}
