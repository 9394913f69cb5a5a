import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const here = dirname(fileURLToPath(import.meta.url))
const brokenDir = join(here, '..', 'test', 'broken')

interface AssertionResult {
  title: string
  fullName: string
  status: 'passed' | 'failed' | 'skipped' | 'pending' | 'todo'
}
interface JsonReport {
  testResults: { name: string; assertionResults: AssertionResult[] }[]
}

let report: JsonReport
const outDir = mkdtempSync(join(tmpdir(), 'nvisy-testkit-'))

beforeAll(async () => {
  const vitestBin = join(
    dirname(createRequire(import.meta.url).resolve('vitest/package.json')),
    'vitest.mjs',
  )
  const outputFile = join(outDir, 'report.json')
  // Failing tests are the point here, so a non-zero exit is expected.
  await promisify(execFile)(
    process.execPath,
    [
      vitestBin,
      'run',
      '--config',
      join(brokenDir, 'vitest.config.ts'),
      '--reporter=json',
      `--outputFile=${outputFile}`,
    ],
    {
      cwd: brokenDir,
      env: { ...process.env, NVISY_REQUIRE_SERVICES: '' },
      maxBuffer: 64 * 1024 * 1024,
    },
  ).catch(() => undefined)
  report = JSON.parse(readFileSync(outputFile, 'utf8')) as JsonReport
}, 180_000)

afterAll(() => rmSync(outDir, { recursive: true, force: true }))

function resultsFor(bug: string): AssertionResult[] {
  const file = report.testResults.find((r) => r.name.endsWith(`${bug}.conformance.ts`))
  expect(file, `no results for ${bug}`).toBeDefined()
  return file!.assertionResults
}

function failedTitles(bug: string): string[] {
  return resultsFor(bug)
    .filter((r) => r.status === 'failed')
    .map((r) => r.title)
}

describe('the conformance kit catches broken providers', () => {
  it('catches a provider that repeats an item on resume', () => {
    const failed = failedTitles('repeat-on-resume')
    expect(failed.length).toBeGreaterThan(0)
    expect(failed).toContain(
      'resumes after any item with exactly the items that followed it (no gap, no duplicate)',
    )
  })

  it('catches a provider that skips an item on resume', () => {
    const failed = failedTitles('skip-on-resume')
    expect(failed).toContain(
      'resumes after any item with exactly the items that followed it (no gap, no duplicate)',
    )
    expect(failed).toContain('an incremental read from the last context returns only the new items')
  })

  it('catches a sink that is not idempotent on rewrite', () => {
    expect(failedTitles('not-idempotent')).toEqual([
      'writing the same batch twice leaves one copy of each item',
    ])
  })

  it('catches a provider that puts the password into its error message', () => {
    expect(failedTitles('leaks-password')).toEqual([
      'check fails with refused credentials as auth, and no error or log holds the secret',
    ])
  })

  it('catches a source whose partitions overlap', () => {
    expect(failedTitles('overlapping-partitions')).toEqual([
      'partitions are disjoint and together read exactly what the stream reads',
      'items added after the partitions were planned are read once, by exactly one partition',
      'fewer items than partitions, and an empty stream, are still covered exactly',
    ])
  })

  it('catches a source whose last partition is closed (new items fall outside every partition)', () => {
    expect(failedTitles('closed-last-partition')).toEqual([
      'items added after the partitions were planned are read once, by exactly one partition',
    ])
  })

  it('catches a partition that resumes outside its own range', () => {
    expect(failedTitles('partition-resume-escapes')).toEqual([
      'each partition resumes after any of its items with exactly the rest of it',
    ])
  })

  it('catches a provider that ignores abort', () => {
    expect(failedTitles('ignores-abort')).toEqual(['abort stops a read promptly'])
  })
})
