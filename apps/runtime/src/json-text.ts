/** Line and column (1-based) of a character offset in `text`. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1
  let start = 0
  const end = Math.min(Math.max(offset, 0), text.length)
  for (let i = 0; i < end; i++) {
    if (text.charCodeAt(i) === 10) {
      line++
      start = i + 1
    }
  }
  return { line, column: end - start + 1 }
}

/**
 * Parse JSON text; a syntax error names the line and column (on every Node version: V8's own
 * message gives only an offset on Node 20) and what was expected, e.g.
 * `pipeline.json:3:5: Expected ',' or '}' after property value`.
 */
export function parseJsonText(text: string, name: string): unknown {
  try {
    return JSON.parse(text)
  } catch (error) {
    const message = (error as Error).message
    const at = /at position (\d+)/.exec(message)
    const offset = at ? Number(at[1]) : text.length
    const { line, column } = lineColumn(text, offset)
    const reason =
      message
        .replace(/\s*\(line \d+ column \d+\)/, '')
        .replace(/\s*in JSON at position \d+/, '')
        .replace(/^Unexpected end of JSON input$/, 'the JSON ends too early')
        .trim() || 'invalid JSON'
    throw new SyntaxError(`${name}:${line}:${column}: ${reason}`)
  }
}
