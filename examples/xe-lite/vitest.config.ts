import { drmkitProject } from "../../vitest.shared.ts"

export default drmkitProject("@drmkit/example-xe-lite", { testTimeout: 120_000 })
