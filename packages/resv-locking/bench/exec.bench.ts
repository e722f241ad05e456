/**
 * drm_exec transactions. Uncontended: one Scope, `untilAllLocked` + `prepareArray` (1 slot each),
 * one fence added to every object, then the single bulk release — for 16 and 2046 objects, with
 * strict mode off and on. The peer, measured in the same run, is the same sequence written with
 * the raw synchronous calls (`WwMutex.lockSync`, `DmaResv.reserveFencesSync/addFenceSync`,
 * `unlockSync` in reverse) inside one `Effect.sync`: what the transaction costs without the Effect
 * shell. Contended (informative): 8 fibers, 16 objects, 4 random objects per transaction, a yield
 * while holding, against the same transactions run by one fiber; a watchdog fails a hang.
 */
import { report, timeMs } from "@drmkit/bench-kit"
import { DmaFence, DmaResv, Exec, Scheduler, Task, WwMutex } from "@drmkit/resv-locking"
import { Effect, Fiber } from "effect"
import { strictly } from "./shared.ts"

const ring = DmaFence.contextAlloc("bench ring")
const makeBos = (n: number) => Array.from({ length: n }, (_, i) => DmaResv.make(`bo${i}`))

/** One transaction through the public Effect API. */
const txn = (bos: ReadonlyArray<DmaResv.DmaResv>) =>
  Effect.scoped(
    Effect.gen(function* () {
      const exec = yield* Exec.make<DmaResv.DmaResv>()
      yield* Exec.untilAllLocked(exec, Exec.prepareArray(exec, bos, 1))
      const job = DmaFence.make(ring)
      for (const bo of Exec.lockedObjects(exec)) yield* DmaResv.addFence(Exec.held(exec, bo), job, "write")
    })
  )

const effectLoop = (bos: ReadonlyArray<DmaResv.DmaResv>, n: number) => () =>
  Effect.runSync(
    Effect.gen(function* () {
      for (let i = 0; i < n; i++) yield* txn(bos)
    })
  )

/** The same sequence with the raw synchronous calls (no contention expected: no backoff path). */
const rawTxn = (bos: ReadonlyArray<DmaResv.DmaResv>, task: number) => {
  const ctx = WwMutex.acquireInitSync(WwMutex.reservationWwClass, task, { injection: false })
  if (ctx === undefined) throw new Error("ww_acquire_init")
  for (const bo of bos) {
    if (WwMutex.lockSync(bo.mutex, ctx, task) !== WwMutex.SyncCode.OK) throw new Error("contended")
    const held = DmaResv.heldByMe(bo)
    if (held === undefined || DmaResv.reserveFencesSync(held, 1) !== undefined) throw new Error("reserve")
  }
  const job = DmaFence.make(ring)
  for (const bo of bos) {
    const held = DmaResv.heldByMe(bo)
    if (held === undefined || DmaResv.addFenceSync(held, job, "write") !== undefined) throw new Error("add")
  }
  for (let i = bos.length - 1; i >= 0; i--) WwMutex.unlockSync((bos[i] as DmaResv.DmaResv).mutex, task)
  WwMutex.acquireFiniSync(ctx, task)
}

const rawLoop = (bos: ReadonlyArray<DmaResv.DmaResv>, n: number) => () =>
  Effect.runSync(
    Effect.flatMap(Task.current, (task) =>
      Effect.sync(() => {
        for (let i = 0; i < n; i++) rawTxn(bos, task)
      })
    )
  )

const best = (f: () => number, rounds = 2): number => Math.min(...Array.from({ length: rounds }, f))

const N16 = 4000
const N2046 = 40
const small = makeBos(16)
const large = makeBos(2046)

let eff16 = Number.POSITIVE_INFINITY
let eff16Strict = Number.POSITIVE_INFINITY
let raw16 = Number.POSITIVE_INFINITY
let eff2046 = Number.POSITIVE_INFINITY
let raw2046 = Number.POSITIVE_INFINITY
for (let round = 0; round < 2; round++) {
  eff16 = Math.min(eff16, timeMs(effectLoop(small, N16)))
  raw16 = Math.min(raw16, timeMs(rawLoop(small, N16)))
  eff16Strict = Math.min(
    eff16Strict,
    strictly(true, () => timeMs(effectLoop(small, N16)))
  )
  eff2046 = Math.min(
    eff2046,
    best(() => timeMs(effectLoop(large, N2046)))
  )
  raw2046 = Math.min(
    raw2046,
    best(() => timeMs(rawLoop(large, N2046)))
  )
}

const perSec = (n: number, ms: number) => (n / ms) * 1000
const txn16 = perSec(N16, eff16)
const txn16Raw = perSec(N16, raw16)
const ms2046 = eff2046 / N2046
const ms2046Raw = raw2046 / N2046

// ---- contended: 8 fibers over 16 objects, 4 per transaction, a yield while holding ----
const rng = Scheduler.prng
const pick4 = (bos: ReadonlyArray<DmaResv.DmaResv>, rand: () => number) => {
  const out: Array<DmaResv.DmaResv> = []
  while (out.length < 4) {
    const b = bos[Math.floor(rand() * bos.length)] as DmaResv.DmaResv
    if (!out.includes(b)) out.push(b)
  }
  return out
}
const contended = (fibers: number, runMs: number) =>
  Effect.gen(function* () {
    const bos = makeBos(16)
    const s = { txns: 0, backoffs: 0, maxRetries: 0 }
    const deadline = performance.now() + runMs
    const t0 = performance.now()
    const worker = (w: number) =>
      Effect.gen(function* () {
        const rand = rng(w + 1)
        while (performance.now() < deadline) {
          const set = pick4(bos, rand)
          yield* Effect.scoped(
            Effect.gen(function* () {
              const exec = yield* Exec.make<DmaResv.DmaResv>()
              yield* Exec.untilAllLocked(exec, Exec.prepareArray(exec, set, 1))
              yield* Effect.yieldNow
              const job = DmaFence.make(ring)
              for (const bo of Exec.lockedObjects(exec)) DmaResv.addFenceSync(Exec.held(exec, bo), job, "write")
              job.signal()
              const r = Exec.retries(exec)
              s.txns++
              s.backoffs += r
              if (r > s.maxRetries) s.maxRetries = r
            })
          )
        }
      })
    const fs = yield* Effect.forEach(
      Array.from({ length: fibers }, (_, i) => i),
      (w) => Effect.forkChild(worker(w))
    )
    yield* Effect.timeout(Fiber.joinAll(fs), runMs + 10_000) // watchdog
    return {
      rate: (s.txns / (performance.now() - t0)) * 1000,
      perTxn: s.backoffs / Math.max(1, s.txns),
      max: s.maxRetries
    }
  })
const solo = await Effect.runPromise(contended(1, 1000))
const many = await Effect.runPromise(contended(8, 1000))

report("exec", [
  {
    name: "exec txn, 16 objects (prepare 1, add fence, fini)",
    value: txn16,
    unit: "txn/s",
    peer: "same sequence, raw sync calls",
    peerValue: txn16Raw,
    ratio: txn16 / txn16Raw,
    goal: ">= 20k txn/s",
    pass: txn16 >= 20_000
  },
  {
    name: "exec txn, 16 objects, strict mode",
    value: perSec(N16, eff16Strict),
    unit: "txn/s",
    peer: "exec txn, strict off",
    peerValue: txn16,
    ratio: eff16Strict / eff16,
    goal: "cost <= 3x",
    pass: eff16Strict / eff16 <= 3
  },
  {
    name: "exec txn, 2046 objects",
    value: ms2046,
    unit: "ms/txn",
    peer: "same sequence, raw sync calls",
    peerValue: ms2046Raw,
    ratio: ms2046Raw / ms2046,
    goal: "<= 5 ms/txn",
    pass: ms2046 <= 5
  },
  {
    name: "exec txn contended: 8 fibers, 16 objects, 4/txn",
    value: many.rate,
    unit: "txn/s",
    peer: "same transactions, 1 fiber",
    peerValue: solo.rate,
    ratio: many.rate / solo.rate
  },
  {
    name: "exec txn contended: backoffs per txn / max retries",
    value: many.perTxn,
    unit: "backoffs/txn",
    peer: "max retries",
    peerValue: many.max
  }
])
