import { isLosslessNumber, LosslessNumber, parse, splitNumber, stringify } from 'lossless-json'

// ---------------------------------------------------------------------------------------
// Numbers in JSON text that JSON.parse does not hold exactly.
//
// A source that reads JSON text (a JSONL line, a message payload, a stored value) parses it
// with JSON.parse, whose numbers are doubles: 12345678901234567890123, 1e400 and
// 0.1000000000000000055511151231257827 come out as another number. `exactNumberFields`
// finds the top-level fields holding such a number and gives their text for
// `DocumentData.rawJson`, so sinks write or type them from the text instead.
// ---------------------------------------------------------------------------------------

/**
 * A number token can change through JSON.parse only with 16 or more digits in its mantissa
 * or an exponent of 3 digits: every other token has at most 15 significant digits and a
 * magnitude within 1e±115, and a double holds such a decimal's value to 15 digits, which
 * JSON.stringify writes back. 16 digits around at most one point leave 9 on one side, or 8
 * and 8: either way 8 digits followed by a digit or a point. `QUICK_SUSPECT` finds that or a
 * 3-digit exponent anywhere in the text, strings included; it is spelled out digit by digit
 * because V8 then skips ahead through text that cannot match (`\d{8}` scans 5 times slower),
 * so most text costs about as much as calling a regular expression at all.
 */
const QUICK_SUSPECT = /\d\d\d\d\d\d\d\d[\d.]|[eE][+-]?\d\d\d/

/**
 * The same, for number tokens only: outside a string a number follows ':', ',' or '[' (and
 * whitespace). This rules out most digits in strings (a UUID's "0e8400", a phone number)
 * before an exact parse; digits in a string can still match (a "a,1234567890123456" value),
 * which costs that parse, never a wrong answer.
 */
const SUSPECT_NUMBER = /[:,[][ \t\r\n]*-?(?:\d[\d.]{15}|[\d.]+[eE][+-]?\d{3})/

/**
 * Whether JSON.parse of the number `text` holds its value exactly: the double it gives
 * prints back (JSON.stringify) as the same decimal number. `2.50`, `1E2` and `-0` do;
 * `9007199254740993`, `1e400`, `1e-400` and `0.10000000000000001` do not.
 */
export function jsonNumberParsesExactly(text: string): boolean {
  const number = Number(text)
  if (!Number.isFinite(number)) return false
  const written = splitNumber(text)
  const read = splitNumber(String(number))
  return (
    written.sign === read.sign &&
    written.digits === read.digits &&
    written.exponent === read.exponent
  )
}

function holdsInexact(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false
  if (isLosslessNumber(value)) return true
  if (Array.isArray(value)) return value.some(holdsInexact)
  for (const key of Object.keys(value)) {
    if (holdsInexact((value as Record<string, unknown>)[key])) return true
  }
  return false
}

/**
 * For the JSON text of an object: the text of each top-level field whose value holds a number
 * that JSON.parse does not hold exactly (`jsonNumberParsesExactly`), as `DocumentData.rawJson`
 * wants it; undefined when there is none, or when the text is not an object.
 *
 * Cheap for most text: a quick scan for number tokens that could change (`QUICK_SUSPECT`,
 * then `SUSPECT_NUMBER`) answers undefined without parsing again; only text with such a
 * token is parsed again, exactly (lossless-json).
 *
 * A field's text keeps such numbers as written and is otherwise what JSON.stringify writes
 * for JSON.parse's value (compact, strings escaped the same way, `2.50` as `2.5`). A repeated
 * key reads as JSON.parse reads it, at every depth: the last value wins, at the first key's
 * place. Call it on text JSON.parse accepted (it throws a SyntaxError on invalid text).
 */
export function exactNumberFields(text: string): Record<string, string> | undefined {
  if (!QUICK_SUSPECT.test(text) || !SUSPECT_NUMBER.test(text)) return undefined
  const value = parse(text, null, {
    parseNumber: (token) =>
      jsonNumberParsesExactly(token) ? Number(token) : new LosslessNumber(token),
    // As JSON.parse: the last value of a repeated key wins.
    onDuplicateKey: ({ newValue }) => newValue,
  })
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined
  let fields: Record<string, string> | undefined
  for (const key of Object.keys(value)) {
    const field = (value as Record<string, unknown>)[key]
    if (!holdsInexact(field)) continue
    fields ??= {}
    // A field named __proto__ is a field like any other, never the object's prototype.
    Object.defineProperty(fields, key, {
      value: stringify(field),
      writable: true,
      enumerable: true,
      configurable: true,
    })
  }
  return fields
}
