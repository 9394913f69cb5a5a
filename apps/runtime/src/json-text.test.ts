import { describe, expect, it } from 'vitest'
import { lineColumn, parseJsonText } from './json-text.js'

describe('parseJsonText', () => {
  it('parses valid JSON', () => {
    expect(parseJsonText('{"a": [1, 2]}', 'p.json')).toEqual({ a: [1, 2] })
  })

  it('names the line and column of a syntax error', () => {
    const text = '{\n  "id": "p",\n  "nodes": []\n  "edges": []\n}'
    expect(() => parseJsonText(text, 'pipeline.json')).toThrow(
      /^pipeline\.json:4:3: Expected ',' or '}' after property value$/,
    )
  })

  it('points at the end of a truncated file', () => {
    expect(() => parseJsonText('{\n  "id": ', 'p.json')).toThrow(
      /^p\.json:2:9: the JSON ends too early$/,
    )
  })

  it('counts columns from 1 on the first line', () => {
    expect(lineColumn('abc', 0)).toEqual({ line: 1, column: 1 })
    expect(lineColumn('a\nbc', 3)).toEqual({ line: 2, column: 2 })
  })
})
