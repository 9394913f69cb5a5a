import { describe, expect, it } from 'vitest'
import { JsonSyntaxError, lineColumn, parseJsonText } from './json-text.js'

function errorOf(text: string, name = 'p.json'): JsonSyntaxError {
  try {
    parseJsonText(text, name)
  } catch (error) {
    expect(error).toBeInstanceOf(JsonSyntaxError)
    return error as JsonSyntaxError
  }
  throw new Error('parsed without an error')
}

describe('parseJsonText', () => {
  it('parses valid JSON, and ignores a leading byte order mark', () => {
    expect(parseJsonText('{"a": [1, 2]}', 'p.json')).toEqual({ a: [1, 2] })
    expect(parseJsonText('\ufeff{"a": 1}', 'p.json')).toEqual({ a: 1 })
  })

  it('names the file, line and column of a missing comma, and the rule', () => {
    const text = '{\n  "id": "p",\n  "nodes": []\n  "edges": []\n}'
    expect(() => parseJsonText(text, 'pipeline.json')).toThrow(
      /^pipeline\.json:4:3: expected ',' or '}' after a property value$/,
    )
    const error = errorOf(text, 'pipeline.json')
    expect([error.file, error.line, error.column]).toEqual(['pipeline.json', 4, 3])
  })

  it('tells an array from an object', () => {
    expect(errorOf('{"a": [1\n  2]}').message).toBe(
      "p.json:2:3: expected ',' or ']' after an array element",
    )
  })

  it('points at the end of a truncated file', () => {
    expect(errorOf('{\n  "id": ').message).toBe('p.json:2:9: the JSON ends too early')
    expect(errorOf('[1, 2').message).toBe("p.json:1:6: the JSON ends too early: expected ']'")
    expect(errorOf('  \n').message).toBe('p.json:1:1: the file is empty: expected JSON')
  })

  it('points at a trailing comma, a comment, single quotes, a missing colon', () => {
    expect(errorOf('{\n  "a": 1,\n}').message).toBe(
      "p.json:2:9: a comma before the closing '}' is not allowed in JSON (remove it)",
    )
    expect(errorOf('[1,\n]').message).toMatch(/^p\.json:1:3: a comma before the closing '\]'/)
    expect(errorOf('{\n  // note\n  "a": 1\n}').message).toBe(
      'p.json:2:3: comments are not allowed in JSON',
    )
    expect(errorOf("{'a': 1}").message).toBe(
      'p.json:1:2: expected a property name in double quotes',
    )
    expect(errorOf('{"a" 1}').message).toBe("p.json:1:6: expected ':' after the property name")
    expect(errorOf('{"a": 1} x').message).toBe(
      'p.json:1:10: unexpected text after the end of the JSON value',
    )
  })

  it('points inside strings at the bad escape or control character', () => {
    expect(errorOf('{"a": "x\\qy"}').message).toMatch(/^p\.json:1:9: invalid escape in a string/)
    expect(errorOf('{"a": "x\ty"}').message).toMatch(/^p\.json:1:9: a control character/)
    expect(errorOf('{"a": "\\u12"}').message).toMatch(/^p\.json:1:8: invalid \\u escape/)
    expect(errorOf('{"a": "open\n}').message).toMatch(/^p\.json:1:7: a string is not closed/)
  })

  it('never quotes the text: an unquoted secret is not in the message', () => {
    // V8's own message for this is `Unexpected token 'h', ..."password": hunter2-s3cret}" is not valid JSON`.
    const error = errorOf('{\n  "password": hunter2-s3cret\n}', 'creds.json')
    expect(error.message).toBe(
      'creds.json:2:15: unexpected character: expected a value (a string in double quotes, a number, true, false, null, an object or an array)',
    )
    expect(error.message).not.toContain('hunter2')
    const inString = errorOf('{"password": "s3cret\tpart"}', 'creds.json')
    expect(inString.message).not.toContain('s3cret')
  })

  it('counts columns from 1 on the first line', () => {
    expect(lineColumn('abc', 0)).toEqual({ line: 1, column: 1 })
    expect(lineColumn('a\nbc', 3)).toEqual({ line: 2, column: 2 })
  })
})
