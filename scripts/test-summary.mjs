// Prints one line, `N passed, N failed[, N skipped]`, from Vitest's JSON report, so a run
// that executed no test is visible. Exits non-zero when the report is missing or shows
// a failure or no test at all.
import { existsSync, readFileSync } from 'node:fs'

const file = process.argv[2] ?? '.vitest-report.json'
if (!existsSync(file)) {
  console.log('0 passed, 0 failed')
  console.error(`no Vitest JSON report at ${file}`)
  process.exit(1)
}
const report = JSON.parse(readFileSync(file, 'utf8'))
let passed = 0
let failed = 0
let skipped = 0
for (const suite of report.testResults ?? []) {
  for (const test of suite.assertionResults ?? []) {
    if (test.status === 'passed') passed++
    else if (test.status === 'failed') failed++
    else skipped++
  }
  // A file that failed to load has no assertions but still failed.
  if ((suite.assertionResults ?? []).length === 0 && suite.status === 'failed') failed++
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`)
process.exit(failed > 0 || passed === 0 ? 1 : 0)
