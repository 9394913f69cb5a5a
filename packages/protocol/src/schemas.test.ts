import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { jsonSchemaFiles } from './json-schemas.js'

const schemasDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'schemas')
const update = process.env.NVISY_UPDATE_SCHEMAS === '1'

function render(value: object): string {
  return `${JSON.stringify(value, null, 2)}\n`
}

describe('schemas/ (the JSON Schema files for the Rust server)', () => {
  const expected = jsonSchemaFiles()

  if (update) {
    it('writes schemas/', () => {
      mkdirSync(schemasDir, { recursive: true })
      for (const file of readdirSync(schemasDir)) {
        if (file.endsWith('.json') && !(file in expected)) rmSync(join(schemasDir, file))
      }
      for (const [file, schema] of Object.entries(expected))
        writeFileSync(join(schemasDir, file), render(schema))
    })
    return
  }

  it('are up to date with the TypeBox schemas', () => {
    const stale: string[] = []
    for (const [file, schema] of Object.entries(expected)) {
      const path = join(schemasDir, file)
      if (!existsSync(path) || readFileSync(path, 'utf8') !== render(schema)) stale.push(file)
    }
    const extra = existsSync(schemasDir)
      ? readdirSync(schemasDir).filter((file) => file.endsWith('.json') && !(file in expected))
      : []
    const problems = [
      ...stale.map((f) => `${f} is missing or out of date`),
      ...extra.map((f) => `${f} is no longer generated`),
    ]
    expect(
      problems,
      `schemas/ is out of date; run \`pnpm --filter @nvisy/protocol generate\`:\n${problems.join('\n')}`,
    ).toEqual([])
  })

  it('index.json lists every message file with its subject', () => {
    const index = expected['index.json'] as {
      messages: { file: string; subject?: string; direction: string }[]
    }
    for (const entry of index.messages) {
      expect(expected[entry.file], entry.file).toBeDefined()
      if (entry.direction === 'request') expect(entry.subject).toMatch(/^nvisy\.runtime\.v1\./)
    }
    expect(Object.keys(expected)).toHaveLength(index.messages.length + 1)
  })

  it('are plain JSON Schema (draft-07), with no TypeBox symbols', () => {
    const start = expected['runs.start.request.json'] as Record<string, any>
    expect(start.$schema).toBe('http://json-schema.org/draft-07/schema#')
    expect(start.additionalProperties).toBe(false)
    expect(start.properties.pipeline.properties.nodes.maxItems).toBe(64)
    expect(Object.getOwnPropertySymbols(start)).toEqual([])
  })
})
