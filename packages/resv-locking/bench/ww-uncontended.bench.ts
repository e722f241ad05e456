/**
 * Uncontended ww_mutex lock+unlock pairs: the synchronous core against a plain JS lock with ctx
 * bookkeeping, the public Effect API against two `Effect.sync` calls in `Effect.gen`, and the
 * cost of strict mode on both.
 */
import { report, timeMs } from "@drmkit/bench-kit"
import { WwMutex } from "@drmkit/resv-locking"
import { Effect } from "effect"
import { strictly } from "./shared.ts"

const TASK = 1
const N_SYNC = 2_000_000
const N_EFFECT = 200_000

// ---- peer: the smallest honest lock with ctx bookkeeping ----
class PeerCtx {
  acquired = 0
}
class PeerLock {
  owner = 0
  ctx: PeerCtx | undefined = undefined
}
const peerLock = (l: PeerLock, c: PeerCtx, task: number): number => {
  if (l.ctx === c) return 2
  if (l.owner !== 0) return 3
  l.owner = task
  l.ctx = c
  c.acquired++
  return 0
}
const peerUnlock = (l: PeerLock, task: number): number => {
  if (l.owner !== task) return 7
  const c = l.ctx
  if (c !== undefined) c.acquired--
  l.ctx = undefined
  l.owner = 0
  return 0
}

let sink = 0
const peerLoop = () => {
  const l = new PeerLock()
  const c = new PeerCtx()
  for (let i = 0; i < N_SYNC; i++) sink += peerLock(l, c, TASK) + peerUnlock(l, TASK)
}

const syncLoop = (strict: boolean) => () => {
  const cls = WwMutex.WwClass.waitDie("bench")
  const m = WwMutex.make(cls, "m")
  const ctx = WwMutex.acquireInitSync(cls, TASK, { strict, injection: false })
  if (ctx === undefined) throw new Error("init")
  for (let i = 0; i < N_SYNC; i++) sink += WwMutex.lockSync(m, ctx, TASK) + WwMutex.unlockSync(m, TASK)
  WwMutex.acquireFiniSync(ctx, TASK)
}

const effectPeer = Effect.gen(function* () {
  let x = 0
  for (let i = 0; i < N_EFFECT; i++) {
    yield* Effect.sync(() => x++)
    yield* Effect.sync(() => x--)
  }
  sink += x
})

const effectLoop = (strict: boolean) =>
  Effect.scoped(
    Effect.gen(function* () {
      const cls = WwMutex.WwClass.waitDie("bench-effect")
      const m = WwMutex.make(cls, "m")
      const ctx = yield* WwMutex.acquireCtx(cls, { strict, injection: false })
      for (let i = 0; i < N_EFFECT; i++) {
        yield* WwMutex.lock(m, ctx)
        yield* WwMutex.unlock(m)
      }
    })
  )

const runEffect = (e: Effect.Effect<unknown, unknown>) => () => {
  Effect.runSync(e)
}

const rate = (n: number, ms: number) => (n / ms) * 1000

// Strict and non-strict runs alternate (best of two rounds each) so JIT warm-up and GC do not
// favour whichever runs second.
const best = (f: () => number, rounds = 2): number => Math.min(...Array.from({ length: rounds }, f))
const peerMs = best(() => timeMs(peerLoop))
let syncMs = Number.POSITIVE_INFINITY
let syncStrictMs = Number.POSITIVE_INFINITY
let effMs = Number.POSITIVE_INFINITY
let effStrictMs = Number.POSITIVE_INFINITY
for (let round = 0; round < 2; round++) {
  syncMs = Math.min(syncMs, timeMs(syncLoop(false)))
  syncStrictMs = Math.min(
    syncStrictMs,
    strictly(true, () => timeMs(syncLoop(true)))
  )
  effMs = Math.min(effMs, timeMs(runEffect(effectLoop(false))))
  effStrictMs = Math.min(
    effStrictMs,
    strictly(true, () => timeMs(runEffect(effectLoop(true))))
  )
}
const effPeerMs = best(() => timeMs(runEffect(effectPeer)))

const sync = rate(N_SYNC, syncMs)
const peer = rate(N_SYNC, peerMs)
const eff = rate(N_EFFECT, effMs)
const effPeer = rate(N_EFFECT, effPeerMs)
report("ww-uncontended", [
  {
    name: "lock+unlock, sync core",
    value: sync,
    unit: "pairs/s",
    peer: "plain JS lock + ctx bookkeeping",
    peerValue: peer,
    ratio: sync / peer,
    goal: ">= 5M pairs/s and >= 0.1x peer",
    pass: sync >= 5e6 && sync / peer >= 0.1
  },
  {
    name: "lock+unlock, sync core, strict",
    value: rate(N_SYNC, syncStrictMs),
    unit: "pairs/s",
    peer: "sync core, strict off",
    peerValue: sync,
    ratio: syncStrictMs / syncMs,
    goal: "cost <= 3x",
    pass: syncStrictMs / syncMs <= 3
  },
  {
    name: "lock+unlock, public Effect API",
    value: eff,
    unit: "pairs/s",
    peer: "2x Effect.sync in Effect.gen",
    peerValue: effPeer,
    ratio: eff / effPeer,
    goal: ">= 300k pairs/s",
    pass: eff >= 3e5
  },
  {
    name: "lock+unlock, Effect API, strict",
    value: rate(N_EFFECT, effStrictMs),
    unit: "pairs/s",
    peer: "Effect API, strict off",
    peerValue: eff,
    ratio: effStrictMs / effMs,
    goal: "cost <= 3x",
    pass: effStrictMs / effMs <= 3
  }
])
if (sink === 42) console.log("")
