import { checkValue, type ValidationIssue } from '@nvisy/provider-core'
import { describe, expect, it } from 'vitest'
import { PipelineSchema } from '../pipeline-types.js'
import { checkShape } from './validate.js'

const node = (extra: Record<string, unknown> = {}) => ({
  id: 'dst',
  role: 'sink',
  provider: 'memory',
  connection: { params: {} },
  stream: {},
  ...extra,
})
const pipeline = (nodes: unknown[], extra: Record<string, unknown> = {}) => ({
  id: 'p',
  nodes: [{ ...node(), id: 'src', role: 'source' }, ...nodes],
  edges: [{ from: 'src', to: 'dst' }],
  ...extra,
})

const sorted = (issues: ValidationIssue[]) =>
  [...issues].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))

// checkShape compiles a node's `convert` only when a node has one (a start-up cost): it must
// find exactly what the whole pipeline schema finds, at the same paths.
describe('checkShape', () => {
  it.each([
    ['a valid pipeline without convert', pipeline([node()])],
    ['a valid convert format', pipeline([node({ convert: 'jsonl' })])],
    [
      'valid declared columns',
      pipeline([
        node({
          convert: {
            columns: [
              { name: 'id', type: { type: 'integer', bits: 64 } },
              { name: 'tags', type: { type: 'array', of: { type: 'text' } } },
            ],
          },
        }),
      ]),
    ],
    ['an unknown convert format', pipeline([node({ convert: 'xml' })])],
    ['a convert of the wrong type', pipeline([node({ convert: 42 })])],
    [
      'a column type that does not exist',
      pipeline([node({ convert: { columns: [{ name: 'a', type: { type: 'money' } }] } })]),
    ],
    [
      'an integer column without bits and an unknown option',
      pipeline([
        node({ convert: { columns: [{ name: 'a', type: { type: 'integer' } }], colour: 1 } }),
      ]),
    ],
    [
      'shape errors elsewhere beside a bad convert',
      pipeline([node({ convert: { columns: [] }, concurrency: 0 })], { edges: 'none' }),
    ],
    [
      'a bad convert on the second of two sinks',
      pipeline([node({ convert: 'csv' }), node({ id: 'dst2', convert: { format: 'yaml' } })]),
    ],
    ['nodes that are not objects', { id: 'p', nodes: [null, 3], edges: [] }],
    ['not an object at all', 'pipeline'],
  ])('%s: the same issues as the whole schema', (_, value) => {
    expect(sorted(checkShape(value))).toEqual(sorted(checkValue(PipelineSchema, value)))
  })

  it('names the field and the rule of a bad conversion option', () => {
    const issues = checkShape(
      pipeline([node({ convert: { columns: [{ name: 'a', type: { type: 'money' } }] } })]),
    )
    expect(issues.length).toBeGreaterThan(0)
    for (const issue of issues) expect(issue.path).toMatch(/^\/nodes\/1\/convert/)
  })
})
