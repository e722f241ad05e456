/**
 * The LRU lists and bulk-move groups against an array model (fast-check): add (with or without a
 * group), remove, bump to tail, join/leave a group, move a group to the tail. After every step the
 * intrusive lists equal the model, every group's members sit together, and group counts match.
 */

import { Lru, Placement, Resource } from "@drmkit/ttm-placement"
import { assert, describe, it } from "@effect/vitest"
import fc from "fast-check"

type Op =
  | { readonly k: "add"; readonly prio: number; readonly group: number }
  | { readonly k: "remove" | "bump" | "leave"; readonly i: number }
  | { readonly k: "join"; readonly i: number; readonly group: number }
  | { readonly k: "tail"; readonly group: number }

const G = 3
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant("add" as const),
      prio: fc.nat(3),
      group: fc.integer({ min: -1, max: G - 1 })
    })
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("bump" as const), i: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constantFrom("remove" as const, "leave" as const), i: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("join" as const), i: fc.nat(), group: fc.nat(G - 1) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("tail" as const), group: fc.nat(G - 1) }) }
)

let id = 0
const mkRes = (prio: number) =>
  new Resource.Resource(Placement.MemType.VRAM, 1, [{ start: 0, pages: 1 }], Placement.place(2), undefined, {
    id: ++id,
    priority: prio
  })

/** Model: per priority an array; a group's members are kept contiguous by the same rules. */
const check = (lru: Lru.ManagerLru, model: Array<Array<Resource.Resource>>, groups: ReadonlyArray<Lru.BulkMove>) => {
  const ids = (rs: ReadonlyArray<Resource.Resource>) => rs.map((r) => r.owner.id)
  for (let p = 0; p < 4; p++) assert.deepStrictEqual(ids(lru.list(p)), ids(model[p] ?? []))
  for (const g of groups) {
    let n = 0
    for (let p = 0; p < 4; p++) {
      const idx = (model[p] ?? []).flatMap((r, i) => (r.bulk === g ? [i] : []))
      n += idx.length
      if (idx.length > 0) assert.strictEqual((idx.at(-1) ?? 0) - (idx[0] ?? 0) + 1, idx.length, "group is contiguous")
    }
    assert.strictEqual(g.count, n)
  }
}

/** A member leaving its group from the middle steps out right after the group's last member. */
const modelLeave = (m: Array<Resource.Resource>, r: Resource.Resource) => {
  const g = r.bulk
  if (!(g instanceof Lru.BulkMove)) return
  const idx = m.flatMap((x, i) => (x.bulk === g ? [i] : []))
  const at = m.indexOf(r)
  if (at === idx[0] || at === idx.at(-1)) return
  const last = m[idx.at(-1) ?? 0] as Resource.Resource
  m.splice(at, 1)
  m.splice(m.indexOf(last) + 1, 0, r)
}

const apply = (
  op: Op,
  lru: Lru.ManagerLru,
  model: Array<Array<Resource.Resource>>,
  groups: ReadonlyArray<Lru.BulkMove>
) => {
  const all = model.flat()
  const pick = (i: number) => all[i % Math.max(1, all.length)]
  const row = (r: Resource.Resource) => model[r.lruPriority] as Array<Resource.Resource>
  const lastOf = (g: Lru.BulkMove, p: number) => (model[p] ?? []).findLastIndex((x) => x.bulk === g)
  switch (op.k) {
    case "add": {
      const r = mkRes(op.prio)
      const g = groups[op.group]
      const at = g === undefined ? -1 : lastOf(g, op.prio)
      Lru.addToLru(lru, r, op.prio, g)
      const m = model[op.prio] as Array<Resource.Resource>
      if (at < 0) m.push(r)
      else m.splice(at + 1, 0, r)
      return
    }
    case "tail": {
      const g = groups[op.group] as Lru.BulkMove
      g.tail([lru, lru, lru])
      for (const m of model) {
        const members = m.filter((x) => x.bulk === g)
        const rest = m.filter((x) => x.bulk !== g)
        m.splice(0, m.length, ...rest, ...members)
      }
      return
    }
  }
  const r = pick(op.i)
  if (r === undefined) return
  const m = row(r)
  switch (op.k) {
    case "remove":
      modelLeave(m, r)
      Lru.unlinkResource(r)
      m.splice(m.indexOf(r), 1)
      return
    case "bump": {
      const g = r.bulk instanceof Lru.BulkMove ? r.bulk : undefined
      m.splice(m.indexOf(r), 1)
      const at = g === undefined ? -1 : lastOf(g, r.lruPriority)
      Lru.bumpTail(lru, r)
      if (at < 0) m.push(r)
      else m.splice(at + 1, 0, r)
      return
    }
    case "leave":
      modelLeave(m, r)
      Lru.leaveBulk(r)
      return
    case "join": {
      const g = groups[op.group] as Lru.BulkMove
      if (r.bulk === g) return
      modelLeave(m, r)
      Lru.leaveBulk(r)
      const at = lastOf(g, r.lruPriority)
      Lru.joinBulk(r, g)
      if (at >= 0) {
        m.splice(m.indexOf(r), 1)
        m.splice(
          m.indexOf(model[r.lruPriority]?.filter((x) => x.bulk === g && x !== r).at(-1) as Resource.Resource) + 1,
          0,
          r
        )
      }
      return
    }
  }
}

describe("LRU + bulk moves", () => {
  it("match an array model under random operations", () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 20, maxLength: 150 }), (ops) => {
        const lru = new Lru.ManagerLru()
        const groups = Array.from({ length: G }, () => new Lru.BulkMove())
        const model: Array<Array<Resource.Resource>> = [[], [], [], []]
        for (const op of ops) {
          apply(op, lru, model, groups)
          check(lru, model, groups)
        }
      }),
      { numRuns: 300, seed: 11 }
    )
  })
})
