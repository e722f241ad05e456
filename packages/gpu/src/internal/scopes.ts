/** WebGPU error scopes around one synchronous device operation (debug mode). */

/**
 * Runs `f` inside validation + out-of-memory error scopes and pops BOTH synchronously before
 * returning — also when `f` throws — so the device's scope stack stays balanced and a concurrent
 * caller (another fiber) never pushes or pops inside ours. `error` resolves to the first captured
 * error (validation before out-of-memory) or null.
 */
export const inErrorScopes = <A>(device: GPUDevice, f: () => A): { value: A; error: Promise<GPUError | null> } => {
  device.pushErrorScope("validation")
  device.pushErrorScope("out-of-memory")
  const popBoth = (): Promise<GPUError | null> => {
    const oom = device.popErrorScope()
    const val = device.popErrorScope()
    return Promise.all([val, oom]).then(([v, o]) => v ?? o)
  }
  let value: A
  try {
    value = f()
  } catch (thrown) {
    popBoth().catch(() => undefined)
    throw thrown
  }
  return { value, error: popBoth() }
}
