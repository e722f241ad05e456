/** Helpers shared by this package's benches. */
import { Lockdep } from "@drmkit/resv-locking"

/** Runs `f` with strict mode switched `on`, then switches it off again. */
export const strictly = <A>(on: boolean, f: () => A): A => {
  Lockdep.configure({ strict: on })
  try {
    return f()
  } finally {
    Lockdep.configure({ strict: false })
  }
}
