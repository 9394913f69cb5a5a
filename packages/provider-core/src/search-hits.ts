import { isLosslessNumber, LosslessNumber, parse, stringify } from 'lossless-json'
import { ProviderError } from './errors.js'
import { exactNumberFields, jsonNumberParsesExactly } from './json-numbers.js'

// ---------------------------------------------------------------------------------------
// Numbers in search responses (Elasticsearch, OpenSearch: `hits.hits[]` with `_source` and
// `sort`) that JSON.parse does not hold exactly. Both search providers use this.
//
// The client parses a response with JSON.parse, so a long past 2^53 (9007199254740993), a
// 1e400 or a 20-digit decimal in a document's _source, or a long sort value (a date_nanos
// field, a big sequence), comes out as another number. `keepExactHitNumbers` keeps them: a
// hit's `HIT_RAW_JSON` holds the exact text of its _source fields that hold such numbers
// (`DocumentData.rawJson`), and such a sort value becomes `{ number: "<its text>" }`, which
// a resume context stores as JSON and a request sends back as that number token.
// ---------------------------------------------------------------------------------------

/** On a hit whose _source holds numbers JSON.parse changes: those fields' exact JSON text. */
export const HIT_RAW_JSON: unique symbol = Symbol('nvisy.hitRawJson')

/** A sort value JSON.parse does not hold exactly, as its JSON number text. */
export interface ExactNumber {
  number: string
}

export function isExactNumber(value: unknown): value is ExactNumber {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.keys(value).length === 1 &&
    typeof (value as { number?: unknown }).number === 'string'
  )
}

function holdsInexact(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false
  if (isLosslessNumber(value)) return true
  if (Array.isArray(value)) return value.some(holdsInexact)
  return Object.values(value).some(holdsInexact)
}

interface Hit {
  _source?: unknown
  sort?: unknown[]
  [HIT_RAW_JSON]?: Record<string, string>
}

/**
 * After JSON.parse gave `body` for the response `text`: when it is a search response whose
 * hits hold numbers JSON.parse changes, set each such hit's `HIT_RAW_JSON` and turn its
 * inexact sort values into `ExactNumber`s. Most responses have none: a quick scan of the
 * text (`exactNumberFields`) answers without parsing again.
 */
export function keepExactHitNumbers(text: string, body: unknown): unknown {
  const hits = (body as { hits?: { hits?: unknown } } | null)?.hits?.hits
  if (!Array.isArray(hits) || hits.length === 0) return body
  // The exact text of the response's `hits` field, only when it holds such numbers.
  const exactText = exactNumberFields(text)?.hits
  if (exactText === undefined) return body
  const exact = parse(exactText, null, {
    parseNumber: (token) =>
      jsonNumberParsesExactly(token) ? Number(token) : new LosslessNumber(token),
    onDuplicateKey: ({ newValue }) => newValue,
  }) as { hits?: { _source?: unknown; sort?: unknown[] }[] }
  const exactHits = exact.hits ?? []
  for (let i = 0; i < hits.length; i++) {
    const hit = hits[i] as Hit
    const exactHit = exactHits[i]
    if (exactHit === undefined || hit === null || typeof hit !== 'object') continue
    if (holdsInexact(exactHit._source)) {
      const fields = exactNumberFields(stringify(exactHit._source) ?? '')
      if (fields !== undefined)
        Object.defineProperty(hit, HIT_RAW_JSON, { value: fields, enumerable: false })
    }
    if (Array.isArray(exactHit.sort) && Array.isArray(hit.sort)) {
      exactHit.sort.forEach((value, j) => {
        if (isLosslessNumber(value)) hit.sort![j] = { number: value.value }
      })
    }
  }
  return body
}

/**
 * A value from a resume context or a hit's sort values for a request body: an
 * `ExactNumber` becomes a number that `stringifyExact` writes as its text; `field` names it
 * in the error for text that is not a JSON number.
 */
export function exactNumberValue(value: unknown, field: string): unknown {
  if (!isExactNumber(value)) return value
  try {
    return new LosslessNumber(value.number)
  } catch {
    throw new ProviderError({
      kind: 'config',
      operation: 'read',
      message: `${field}: {"number": ...} must hold the text of a JSON number, got ${JSON.stringify(value.number)}`,
    })
  }
}

/** JSON text of a request body: as JSON.stringify, with `exactNumberValue`'s numbers as written. */
export function stringifyExact(object: unknown): string | undefined {
  let exact = false
  const text = JSON.stringify(object, (_key, value) => {
    if (isLosslessNumber(value)) exact = true
    return value
  })
  return exact ? stringify(object) : text
}
