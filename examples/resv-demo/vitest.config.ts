import { drmkitProject } from "../../vitest.shared.ts"

export default drmkitProject("@drmkit/example-resv-demo")
