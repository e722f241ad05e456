/**
 * The trace event every drmkit package emits, shaped after the Chrome trace-event format that
 * Perfetto opens (`ts`/`dur` in microseconds). Fence signalling, backoffs, evictions, moves and
 * binds are reported through a {@link TraceSink}; the SDK turns the collected events into a
 * trace file.
 *
 * @since 0.1.0
 */
import { Context } from "effect"

/**
 * Trace-event phases drmkit uses: `X` complete slice, `B`/`E` begin/end, `i` instant, `C` counter,
 * `b`/`e`/`n` async begin/end/instant, `s`/`f` flow start/finish, `M` metadata.
 *
 * @since 0.1.0
 * @category trace
 */
export type TracePhase = "X" | "B" | "E" | "i" | "C" | "b" | "e" | "n" | "s" | "f" | "M"

/**
 * One trace event.
 *
 * @since 0.1.0
 * @category trace
 */
export interface TraceEvent {
  readonly name: string
  /** Category: the subsystem (`ww_mutex`, `dma_fence`, `dma_resv`, `drm_exec`, `ttm`, `gpuvm`, `gpu`). */
  readonly cat: string
  readonly ph: TracePhase
  /** Timestamp in microseconds since the sink's origin. */
  readonly ts: number
  /** Duration in microseconds (`X` only). */
  readonly dur?: number
  /** Simulated device. */
  readonly pid?: number
  /** Actor: a fiber/task id or a fence timeline name. */
  readonly tid?: number | string
  /** Async/flow id. */
  readonly id?: string
  readonly args?: Readonly<Record<string, unknown>>
}

/**
 * Where trace events go. `enabled` lets producers skip building events nobody reads.
 *
 * @since 0.1.0
 * @category trace
 */
export interface TraceSink {
  readonly enabled: boolean
  readonly emit: (event: TraceEvent) => void
  /** The sink's clock in microseconds (events are timestamped with it); `performance.now()` based if absent. */
  readonly now?: () => number
}

/**
 * Current time in microseconds on `sink`'s clock.
 *
 * @since 0.1.0
 * @category trace
 */
export const traceNow = (sink: TraceSink): number => (sink.now === undefined ? performance.now() * 1000 : sink.now())

/**
 * A sink that drops everything (the default).
 *
 * @since 0.1.0
 * @category trace
 */
export const noopSink: TraceSink = { enabled: false, emit: () => {} }

/**
 * A sink that collects events in memory, timestamped from its creation.
 *
 * @since 0.1.0
 * @category trace
 */
export const collectingSink = (): TraceSink & { readonly events: Array<TraceEvent>; readonly now: () => number } => {
  const origin = performance.now()
  const events: Array<TraceEvent> = []
  return { enabled: true, events, emit: (e) => void events.push(e), now: () => (performance.now() - origin) * 1000 }
}

/**
 * The trace sink in effect for the current fiber (a `Context.Reference`, default {@link noopSink}).
 * Provide another with `Effect.provideService(CurrentTraceSink, sink)`.
 *
 * @since 0.1.0
 * @category trace
 */
export const CurrentTraceSink = Context.Reference<TraceSink>("@drmkit/core/CurrentTraceSink", {
  defaultValue: () => noopSink
})
