/**
 * Trace helpers shared by the fence/resv/exec modules (internal).
 *
 * @since 0.1.0
 */
import { type TraceEvent, type TraceSink, traceNow } from "@drmkit/core"

/** Emits an instant event; a no-op when the sink is disabled. */
export const instant = (
  sink: TraceSink,
  cat: string,
  name: string,
  tid: number | string,
  args: Readonly<Record<string, unknown>>
): void => {
  if (!sink.enabled) return
  const event: TraceEvent = { name, cat, ph: "i", ts: traceNow(sink), tid, args }
  sink.emit(event)
}

/** Emits a complete (`X`) slice from `startTs` to now; a no-op when the sink is disabled. */
export const complete = (
  sink: TraceSink,
  cat: string,
  name: string,
  tid: number | string,
  startTs: number,
  args: Readonly<Record<string, unknown>>
): void => {
  if (!sink.enabled) return
  const ts = traceNow(sink)
  sink.emit({ name, cat, ph: "X", ts: startTs, dur: Math.max(0, ts - startTs), tid, args })
}
