// Prints one line, `N passed, N failed[, N skipped]`, from Vitest's JSON reports, so a run
// that executed no test is visible. With several reports (one per Node version) each gets
// its own labelled line (`node22: ...`) and the last line is the total. Exits non-zero when
// a report is missing or shows a failure or no test at all.
import { existsSync, readFileSync } from 'node:fs'
import { basename } from 'node:path'

const files = process.argv.length > 2 ? process.argv.slice(2) : ['.vitest-report.json']
const line = (c) =>
  `${c.passed} passed, ${c.failed} failed${c.skipped ? `, ${c.skipped} skipped` : ''}`
const total = { passed: 0, failed: 0, skipped: 0 }
let bad = false
for (const file of files) {
  const counts = { passed: 0, failed: 0, skipped: 0 }
  if (!existsSync(file)) {
    console.error(`no Vitest JSON report at ${file}`)
    counts.failed = 1
  } else {
    const report = JSON.parse(readFileSync(file, 'utf8'))
    for (const suite of report.testResults ?? []) {
      for (const test of suite.assertionResults ?? []) {
        if (test.status === 'passed') counts.passed++
        else if (test.status === 'failed') counts.failed++
        else counts.skipped++
      }
      // A file that failed to load has no assertions but still failed.
      if ((suite.assertionResults ?? []).length === 0 && suite.status === 'failed') counts.failed++
    }
  }
  if (counts.failed > 0 || counts.passed === 0) bad = true
  if (files.length > 1) {
    const label = /node(\d+)/.exec(basename(file))?.[0] ?? 'node20'
    console.log(`${label}: ${line(counts)}`)
  }
  for (const key of Object.keys(total)) total[key] += counts[key]
}
console.log(line(total))
process.exit(bad ? 1 : 0)
