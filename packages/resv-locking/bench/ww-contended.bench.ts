/**
 * Contended transactions: 8 fibers, 16 locks, 4 distinct random locks per transaction, one yield
 * while holding, the full backoff protocol (unlock all, slow-lock the contended lock, retry with
 * the same ticket), wait-die and wound-wait. A watchdog fails the run if it hangs. The peer is the
 * same workload with a single global lock (no concurrency between transactions). Throughput is
 * also given per CPU-second of this process, which is what a shared, loaded CI box can measure.
 */
import { report } from "@drmkit/bench-kit"
import { Scheduler, WwMutex } from "@drmkit/resv-locking"
import { Effect, Fiber, Result } from "effect"

const FIBERS = 8
const LOCKS = 16
const PER_TXN = 4
const RUN_MS = 1000

const rng = Scheduler.prng

interface Stats {
  txns: number
  backoffs: number
  maxRetries: number
}

const pick = (locks: ReadonlyArray<WwMutex.WwMutex>, rand: () => number): Array<WwMutex.WwMutex> => {
  const out: Array<WwMutex.WwMutex> = []
  while (out.length < PER_TXN) {
    const m = locks[Math.floor(rand() * locks.length)] as WwMutex.WwMutex
    if (!out.includes(m)) out.push(m)
  }
  return out
}

const txn = (cls: WwMutex.WwClass, set: ReadonlyArray<WwMutex.WwMutex>, s: Stats) =>
  Effect.scoped(
    Effect.gen(function* () {
      const ctx = yield* WwMutex.acquireCtx(cls, { injection: false })
      let contended: WwMutex.WwMutex | undefined
      let retries = 0
      for (;;) {
        let dead: WwMutex.WwMutex | undefined
        for (const m of set) {
          if (m === contended) continue
          const r = yield* Effect.result(WwMutex.lock(m, ctx))
          if (Result.isFailure(r)) {
            if (r.failure._tag !== "Deadlock") return yield* Effect.die(r.failure)
            dead = m
            break
          }
        }
        if (dead === undefined) break
        retries++
        yield* WwMutex.unlockAll(ctx)
        yield* Effect.orDie(WwMutex.lockSlow(dead, ctx))
        contended = dead
      }
      yield* Effect.yieldNow
      yield* WwMutex.unlockAll(ctx)
      yield* WwMutex.acquireDone(ctx)
      s.txns++
      s.backoffs += retries
      if (retries > s.maxRetries) s.maxRetries = retries
    })
  )

const run = (alg: "wait-die" | "wound-wait", global: boolean, runMs = RUN_MS) =>
  Effect.gen(function* () {
    const cls = alg === "wait-die" ? WwMutex.WwClass.waitDie("bench") : WwMutex.WwClass.woundWait("bench")
    const locks = Array.from({ length: LOCKS }, (_, i) => WwMutex.make(cls, `l${i}`))
    const bigLock = [WwMutex.make(cls, "global")]
    const s: Stats = { txns: 0, backoffs: 0, maxRetries: 0 }
    const t0 = performance.now()
    const cpu0 = process.cpuUsage()
    const deadline = t0 + runMs
    const worker = (w: number) =>
      Effect.gen(function* () {
        const rand = rng(w + 1)
        while (performance.now() < deadline) yield* txn(cls, global ? bigLock : pick(locks, rand), s)
      })
    const fibers = yield* Effect.forEach(
      Array.from({ length: FIBERS }, (_, i) => i),
      (w) => Effect.forkChild(worker(w))
    )
    yield* Effect.timeout(Fiber.joinAll(fibers), runMs + 10_000) // watchdog: a hang fails the bench
    const ms = performance.now() - t0
    const cpu = process.cpuUsage(cpu0)
    const cpuS = (cpu.user + cpu.system) / 1e6
    return {
      rate: (s.txns / ms) * 1000,
      cpuRate: s.txns / cpuS,
      perTxn: s.backoffs / Math.max(1, s.txns),
      maxRetries: s.maxRetries
    }
  })

// warm-up: JIT both algorithms and both shapes before measuring anything
for (const alg of ["wait-die", "wound-wait"] as const) {
  await Effect.runPromise(run(alg, true, 200))
  await Effect.runPromise(run(alg, false, 200))
}

const rows = []
for (const alg of ["wait-die", "wound-wait"] as const) {
  const peer = await Effect.runPromise(run(alg, true))
  const r = await Effect.runPromise(run(alg, false))
  rows.push(
    {
      name: `contended ${alg}: 8 fibers, 16 locks, 4/txn`,
      value: r.rate,
      unit: "txn/s",
      peer: "same, one global lock",
      peerValue: peer.rate,
      ratio: r.rate / peer.rate,
      goal: ">= 50k txn/s",
      pass: r.rate >= 50_000
    },
    {
      name: `contended ${alg}: per CPU-second (shared box)`,
      value: r.cpuRate,
      unit: "txn/cpu-s",
      peer: "same, one global lock",
      peerValue: peer.cpuRate,
      ratio: r.cpuRate / peer.cpuRate,
      goal: ">= 50k txn/s",
      pass: r.cpuRate >= 50_000
    },
    {
      name: `contended ${alg}: backoffs per txn`,
      value: r.perTxn,
      unit: "backoffs/txn",
      goal: "0.5 - 2",
      pass: r.perTxn >= 0.5 && r.perTxn <= 2
    },
    {
      name: `contended ${alg}: max retries`,
      value: r.maxRetries,
      unit: "retries",
      goal: "<= 16, no hang",
      pass: r.maxRetries <= 16
    }
  )
}
report("ww-contended", rows)
