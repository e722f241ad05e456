/**
 * The sleeping half of `dma_fence_wait_timeout()` (internal): one callback waiter per wait, woken
 * by the fence or by a task signal, removed on timeout and on fiber interruption.
 *
 * @since 0.1.0
 */
import { CurrentTraceSink, Invalid, RestartSys, traceNow } from "@drmkit/core"
import { Clock, Effect } from "effect"
import type { DmaFence, WaitOptions } from "../DmaFence.ts"
import { currentSignalPort } from "./fenceSignals.ts"
import { complete } from "./trace.ts"

const traceArgs = (f: DmaFence): Record<string, unknown> =>
  f.error === undefined
    ? { context: f.context.id, seqno: f.seqno }
    : { context: f.context.id, seqno: f.seqno, error: f.error.message }

const successBudget = (timeoutMs: number, elapsed: number): number => {
  if (timeoutMs === Number.POSITIVE_INFINITY) return timeoutMs
  if (timeoutMs === 0) return 1
  const left = timeoutMs - elapsed
  return left > 0 ? left : Number.MIN_VALUE
}

type Wake = "signaled" | "signal"

/** Sleeps until the fence signals or the task is signalled (then `"signal"`). */
const sleepOn = (
  f: DmaFence,
  port: { readonly onSignal: (wake: () => void) => () => void } | undefined
): Effect.Effect<Wake> =>
  Effect.callback<Wake>((resume) => {
    let unregister = (): void => {}
    const onFence = (): void => {
      unregister()
      resume(Effect.succeed("signaled"))
    }
    if (!f.addCallback(onFence)) return resume(Effect.succeed("signaled"))
    if (port !== undefined) {
      unregister = port.onSignal(() => {
        f.removeCallback(onFence)
        resume(Effect.succeed("signal"))
      })
    }
    // fiber interruption (or the timeout) removes the waiter
    return Effect.sync(() => {
      f.removeCallback(onFence)
      unregister()
    })
  })

/** The implementation of `DmaFence.wait`. */
export const waitImpl = (f: DmaFence, options: WaitOptions): Effect.Effect<number, RestartSys> =>
  Effect.gen(function* () {
    const timeoutMs = options.timeoutMs ?? Number.POSITIVE_INFINITY
    if (!(timeoutMs >= 0)) {
      return yield* Effect.die(
        new Invalid({ what: "dma_fence_wait timeout", reason: "must be >= 0", value: timeoutMs })
      )
    }
    if (f.isSignaled) return successBudget(timeoutMs, 0)
    const port = options.interruptible === true ? yield* currentSignalPort : undefined
    if (port?.pending() === true) return yield* new RestartSys({ what: `dma_fence ${f}` })
    if (timeoutMs === 0) return 0
    const sink = yield* CurrentTraceSink
    const traceStart = sink.enabled ? traceNow(sink) : 0
    const start = yield* Clock.currentTimeMillis
    const sleep = sleepOn(f, port)
    const woke = timeoutMs === Number.POSITIVE_INFINITY ? yield* sleep : yield* Effect.timeoutOption(sleep, timeoutMs)
    const elapsed = (yield* Clock.currentTimeMillis) - start
    const outcome: Wake | "timeout" = typeof woke === "string" ? woke : woke._tag === "Some" ? woke.value : "timeout"
    if (sink.enabled) {
      complete(sink, "dma_fence", "dma_fence_wait", f.context.name, traceStart, { ...traceArgs(f), outcome })
    }
    if (outcome === "signal") return yield* new RestartSys({ what: `dma_fence ${f}` })
    if (outcome === "timeout") return f.isSignaled ? successBudget(timeoutMs, elapsed) : 0
    return successBudget(timeoutMs, elapsed)
  })
