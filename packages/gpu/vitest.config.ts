import { drmkitProject } from "../../vitest.shared.ts"

export default drmkitProject("@drmkit/gpu")
