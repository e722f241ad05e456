/**
 * Bench helpers: time a function robustly on a noisy box (warm-up, several samples, median) and
 * report one table with the peer measured in the same run, plus a JSON file in `bench/results/`.
 *
 * @since 0.1.0
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"

/** One row of a bench report (the JSON schema every drmkit bench writes). */
export interface BenchRow {
  readonly name: string
  readonly value: number
  readonly unit: string
  readonly peer?: string
  readonly peerValue?: number
  /** value / peerValue for throughputs (higher is better), peerValue / value for times. */
  readonly ratio?: number
  readonly goal?: string
  /** Whether the goal was met, when it can be decided numerically. */
  readonly pass?: boolean
}

/** Median of a sample. */
export const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] ?? Number.NaN
}

/** Runs `f` once to warm up, then `samples` times; returns the median wall time in ms. */
export const timeMs = (f: () => void, samples = 5): number => {
  f()
  const ts: Array<number> = []
  for (let i = 0; i < samples; i++) {
    const t0 = performance.now()
    f()
    ts.push(performance.now() - t0)
  }
  return median(ts)
}

/** Async variant of {@link timeMs}. */
export const timeMsAsync = async (f: () => Promise<unknown>, samples = 5): Promise<number> => {
  await f()
  const ts: Array<number> = []
  for (let i = 0; i < samples; i++) {
    const t0 = performance.now()
    await f()
    ts.push(performance.now() - t0)
  }
  return median(ts)
}

const fmt = (x: number | undefined): string =>
  x === undefined ? "" : Math.abs(x) >= 1000 ? Math.round(x).toLocaleString("en-US") : x.toPrecision(4)

/** Prints the rows as one table and writes `bench/results/<file>.json` in the current package. */
export const report = (file: string, rows: ReadonlyArray<BenchRow>): void => {
  const header = ["bench", "value", "unit", "peer", "peer value", "ratio", "goal", "pass"]
  const body = rows.map((r) => [
    r.name,
    fmt(r.value),
    r.unit,
    r.peer ?? "",
    fmt(r.peerValue),
    r.ratio === undefined ? "" : `${r.ratio.toFixed(2)}x`,
    r.goal ?? "",
    r.pass === undefined ? "" : r.pass ? "yes" : "NO"
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(" | ")} |`
  console.log(line(header))
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`)
  for (const row of body) console.log(line(row))
  const dir = join(process.cwd(), "bench", "results")
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, `${file}.json`), `${JSON.stringify(rows, null, 2)}\n`)
}
