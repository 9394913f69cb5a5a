import jsonc from 'jsonc-parser'

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

/** A JSON syntax error: where (1-based line and column) and which rule the text breaks. */
export class JsonSyntaxError extends SyntaxError {
  readonly file: string
  readonly line: number
  readonly column: number
  readonly rule: string

  constructor(file: string, line: number, column: number, rule: string) {
    super(`${file}:${line}:${column}: ${rule}`)
    this.name = 'JsonSyntaxError'
    this.file = file
    this.line = line
    this.column = column
    this.rule = rule
  }
}

const VALUE =
  'a value (a string in double quotes, a number, true, false, null, an object or an array)'

interface Found {
  code: string
  offset: number
  length: number
  /** The innermost open container when the error was found. */
  inside: 'object' | 'array' | undefined
}

/** Every syntax error jsonc-parser finds in strict JSON mode (no comments, no trailing commas). */
function syntaxErrors(text: string): Found[] {
  const found: Found[] = []
  const open: ('object' | 'array')[] = []
  jsonc.visit(
    text,
    {
      onObjectBegin: () => {
        open.push('object')
      },
      onObjectEnd: () => {
        open.pop()
      },
      onArrayBegin: () => {
        open.push('array')
      },
      onArrayEnd: () => {
        open.pop()
      },
      onError: (error, offset, length) => {
        found.push({ code: jsonc.printParseErrorCode(error), offset, length, inside: open.at(-1) })
      },
    },
    { disallowComments: true, allowTrailingComma: false, allowEmptyContent: false },
  )
  return found
}

/** The first offset in [from, to) whose character code passes `test`, else `from`. */
function firstMatch(text: string, from: number, to: number, test: (code: number) => boolean) {
  for (let i = from; i < Math.min(to, text.length); i++) if (test(text.charCodeAt(i))) return i
  return from
}

const isBackslash = (code: number) => code === 0x5c
const isControl = (code: number) => code < 0x20

/** The offset of the last non-space character before `offset`, or -1. */
function previousToken(text: string, offset: number): number {
  let i = offset - 1
  while (i >= 0 && /\s/.test(text[i]!)) i--
  return i
}

/**
 * Where the first syntax error is and what rule it breaks, in words that never quote the
 * text (a pipeline or credentials file may hold a secret next to the mistake).
 */
function describe(text: string, errors: Found[]): { offset: number; rule: string } | undefined {
  const first = errors[0]
  if (!first) return undefined
  const { code, offset, length, inside } = first
  const atEnd = offset >= text.length
  const before = previousToken(text, offset)
  const trailingComma =
    before >= 0 && text[before] === ',' && (text[offset] === '}' || text[offset] === ']')
  if (trailingComma) {
    return {
      offset: before,
      rule: `a comma before the closing '${text[offset]}' is not allowed in JSON (remove it)`,
    }
  }
  switch (code) {
    case 'InvalidSymbol':
      return errors[1]?.code === 'PropertyNameExpected'
        ? { offset, rule: 'expected a property name in double quotes' }
        : inside === undefined && errors.length === 1 && offset > 0
          ? { offset, rule: 'unexpected text after the end of the JSON value' }
          : { offset, rule: `unexpected character: expected ${VALUE}` }
    case 'InvalidNumberFormat':
    case 'UnexpectedEndOfNumber':
      return { offset, rule: 'invalid number (JSON numbers are like -12, 3.5 or 1e-9)' }
    case 'PropertyNameExpected':
      return atEnd
        ? { offset, rule: 'the JSON ends too early' }
        : { offset, rule: 'expected a property name in double quotes' }
    case 'ValueExpected':
      if (text.trim() === '') return { offset: 0, rule: 'the file is empty: expected JSON' }
      return atEnd
        ? { offset, rule: 'the JSON ends too early' }
        : { offset, rule: `expected ${VALUE}` }
    case 'ColonExpected':
      return { offset, rule: "expected ':' after the property name" }
    case 'CommaExpected':
      return {
        offset,
        rule:
          inside === 'array'
            ? "expected ',' or ']' after an array element"
            : "expected ',' or '}' after a property value",
      }
    case 'CloseBraceExpected':
      return { offset, rule: atEnd ? "the JSON ends too early: expected '}'" : "expected '}'" }
    case 'CloseBracketExpected':
      return { offset, rule: atEnd ? "the JSON ends too early: expected ']'" : "expected ']'" }
    case 'EndOfFileExpected':
      return { offset, rule: 'unexpected text after the end of the JSON value' }
    case 'InvalidCommentToken':
    case 'UnexpectedEndOfComment':
      return { offset, rule: 'comments are not allowed in JSON' }
    case 'UnexpectedEndOfString':
      return { offset, rule: 'a string is not closed: expected a closing double quote' }
    case 'InvalidUnicode':
      return {
        offset: firstMatch(text, offset, offset + length, isBackslash),
        rule: 'invalid \\u escape: expected four hexadecimal digits',
      }
    case 'InvalidEscapeCharacter':
      return {
        offset: firstMatch(text, offset, offset + length, isBackslash),
        rule: 'invalid escape in a string (JSON allows \\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)',
      }
    case 'InvalidCharacter':
      return {
        offset: firstMatch(text, offset + 1, offset + length, isControl),
        rule: 'a control character (tab, line break...) inside a string: write it escaped, as \\t or \\n',
      }
    default:
      return { offset, rule: 'invalid JSON' }
  }
}

/**
 * Parse JSON text (a leading byte order mark is ignored). A syntax error is a
 * `JsonSyntaxError` naming the file, line and column (1-based) and the rule, the same on
 * every Node version, e.g. `pipeline.json:3:5: expected ',' or '}' after a property value`.
 * The message never quotes the text: V8's own messages can, and these files hold credentials.
 */
export function parseJsonText(text: string, name: string): unknown {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
  try {
    return JSON.parse(body)
  } catch (error) {
    const found = describe(body, syntaxErrors(body))
    let offset = found?.offset
    if (offset === undefined) {
      // jsonc-parser found nothing: fall back to V8's position when it gives one.
      const at = /at position (\d+)/.exec((error as Error).message)
      offset = at ? Number(at[1]) : body.length
    }
    const { line, column } = lineColumn(body, offset)
    throw new JsonSyntaxError(name, line, column, found?.rule ?? 'invalid JSON')
  }
}
