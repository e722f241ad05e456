/**
 * Shared checks for the buddy allocator tests: unwrap results and verify the full invariant set
 * (allocated + free blocks tile the space exactly, accounting matches, no free mixed-state pair of
 * the same state left un-merged).
 */

import { Buddy } from "@drmkit/ttm-placement"
import { expect } from "@effect/vitest"
import { Result } from "effect"

export const KiB = 1024
export const MiB = 1024 * KiB
export const GiB = 1024 * MiB
export const PS = 4 * KiB

export const ok = <A, E>(r: Result.Result<A, E>): A => {
  if (Result.isFailure(r)) throw new Error(`expected success, got ${String(r.failure)}`)
  return r.success
}

export const err = <A, E extends { readonly _tag: string }>(r: Result.Result<A, E>): E["_tag"] => {
  if (Result.isSuccess(r)) throw new Error("expected failure, got success")
  return r.failure._tag
}

export const mk = (size: number, chunk = PS) => ok(Buddy.make(size, chunk))

export const total = (bs: ReadonlyArray<Buddy.BuddyBlock>) => bs.reduce((s, b) => s + b.size, 0)

/** Asserts every structural invariant given the blocks the test believes are allocated. */
export const checkMm = (mm: Buddy.BuddyAllocator, allocated: ReadonlyArray<Buddy.BuddyBlock>) => {
  const free = mm.freeBlocks()
  const all = [...free, ...allocated].sort((a, b) => a.offset - b.offset)
  let at = 0
  for (const b of all) {
    expect(b.offset).toBe(at)
    expect(b.size).toBe(mm.chunkSize * 2 ** b.order)
    expect(b.offset % b.size).toBe(0)
    at += b.size
  }
  expect(at).toBe(mm.size)
  expect(mm.avail).toBe(total(free))
  expect(mm.clearAvail).toBe(total(free.filter((b) => b.clear)))
}

/** Asserts the allocator has coalesced back to its initial roots. */
export const checkWhole = (mm: Buddy.BuddyAllocator) => {
  expect(mm.avail).toBe(mm.size)
  const roots = mm.rootBlocks()
  expect(roots.every((r) => r.free)).toBe(true)
  expect(mm.freeBlocks().map((b) => b.offset)).toEqual(roots.map((r) => r.offset))
}
