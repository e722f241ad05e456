/**
 * The slice of `dma_fence` that TTM needs (structurally satisfied by `DmaFence` of
 * @drmkit/resv-locking): signalled state and a completion callback.
 */
export interface FenceLike {
  readonly isSignaled: boolean
  readonly error?: Error | undefined
  addCallback(cb: () => void): boolean
}

/** Resolves when `f` has signalled (immediately when it already has). */
export const whenSignaled = (f: FenceLike): Promise<void> =>
  new Promise<void>((resolve) => {
    if (!f.addCallback(() => resolve())) resolve()
  })

/** Stand-in fence (until `DmaFence` is exported by @drmkit/resv-locking): signals once. */
export class JobFence implements FenceLike {
  readonly name: string
  #signaled = false
  #error: Error | undefined = undefined
  #cbs: Array<(f: JobFence) => void> = []
  constructor(name: string) {
    this.name = name
  }
  get isSignaled(): boolean {
    return this.#signaled
  }
  get error(): Error | undefined {
    return this.#error
  }
  signal(error?: Error): boolean {
    if (this.#signaled) return false
    this.#signaled = true
    this.#error = error
    const cbs = this.#cbs
    this.#cbs = []
    for (const cb of cbs) cb(this)
    return true
  }
  addCallback(cb: (f: JobFence) => void): boolean {
    if (this.#signaled) return false
    this.#cbs.push(cb)
    return true
  }
}

/** A fence that signals when every fence of `fs` has (`dma_fence_array` signal-on-all). */
export const allOf = (name: string, fs: ReadonlyArray<FenceLike>): JobFence => {
  const out = new JobFence(name)
  const pending = fs.filter((f) => !f.isSignaled)
  let left = pending.length
  if (left === 0) out.signal()
  for (const f of pending) {
    const done = () => {
      left--
      if (left === 0) out.signal()
    }
    if (!f.addCallback(done)) done()
  }
  return out
}
