import { defineConfig } from "vitest/config"
import "./vitest.shared.ts"

export default defineConfig({
  test: {
    projects: ["packages/*", "examples/*"],
    passWithNoTests: true
  }
})
