// Query evaluation and sorting for the search emulator: the subset of the query DSL that
// connectors send (match_all, term, terms, ids, range, exists, prefix, match, bool), over
// `_source` documents and their index mapping.

import { SearchApiError } from './errors.js'

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
export type JsonObject = { [key: string]: Json }

export interface FieldMapping {
  type?: string
  properties?: Record<string, FieldMapping>
  fields?: Record<string, FieldMapping>
  dims?: number
  dimension?: number
  [key: string]: unknown
}

export interface StoredDoc {
  id: string
  source: JsonObject
  /** The source exactly as indexed: searches return these bytes, as the servers do. */
  raw: string
  /** Insertion ordinal: the emulator's `_shard_doc`. */
  ordinal: number
  version: number
  seqNo: number
}

/** The mapping of a dotted field path (`a.b`, or a multi-field `name.keyword`). */
export function mappingAt(
  properties: Record<string, FieldMapping>,
  path: string,
): FieldMapping | undefined {
  const parts = path.split('.')
  let current: Record<string, FieldMapping> | undefined = properties
  let found: FieldMapping | undefined
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!
    if (!current) return undefined
    const field: FieldMapping | undefined = current[part]
    if (!field) {
      // A multi-field: `name.keyword` under `name`.
      if (found?.fields?.[parts.slice(i).join('.')]) return found.fields[parts.slice(i).join('.')]
      return undefined
    }
    found = field
    current = field.properties ?? (field.fields as Record<string, FieldMapping> | undefined)
  }
  return found
}

/** The values of a field in a source document (arrays flattened; multi-fields read their parent). */
export function valuesAt(
  source: JsonObject,
  path: string,
  properties: Record<string, FieldMapping>,
): Json[] {
  const direct = collect(source, path.split('.'))
  if (direct.length > 0) return direct
  // A multi-field (name.keyword) has no source of its own: its parent's value.
  const dot = path.lastIndexOf('.')
  if (dot > 0) {
    const parent = path.slice(0, dot)
    const parentMapping = mappingAt(properties, parent)
    if (parentMapping?.fields?.[path.slice(dot + 1)]) return collect(source, parent.split('.'))
  }
  return []
}

function collect(value: Json | undefined, parts: string[]): Json[] {
  if (value === undefined || value === null) return []
  if (Array.isArray(value)) return value.flatMap((v) => collect(v, parts))
  if (parts.length === 0) return [value]
  if (typeof value !== 'object') return []
  const [head, ...rest] = parts
  const direct = (value as JsonObject)[head!]
  const out = collect(direct, rest)
  // Dotted keys in the source ({"a.b": 1}) are the same field as nested objects.
  for (let i = 2; i <= parts.length; i++) {
    const key = parts.slice(0, i).join('.')
    if (key in value) out.push(...collect((value as JsonObject)[key], parts.slice(i)))
  }
  return out
}

const NUMERIC = new Set([
  'long',
  'integer',
  'short',
  'byte',
  'double',
  'float',
  'half_float',
  'scaled_float',
  'unsigned_long',
])

/** A comparable value for a field type: numbers for numerics and dates, strings otherwise. */
export function normalize(value: Json, type: string | undefined): string | number | boolean | null {
  if (value === null) return null
  if (type && NUMERIC.has(type)) {
    const n = typeof value === 'number' ? value : Number(value)
    return Number.isNaN(n) ? null : n
  }
  if (type === 'date' || type === 'date_nanos') {
    if (typeof value === 'number') return value
    const ms = Date.parse(String(value))
    return Number.isNaN(ms) ? null : ms
  }
  if (type === 'boolean') return value === true || value === 'true'
  if (typeof value === 'object') return JSON.stringify(value)
  return value as string | number | boolean
}

function compareScalars(a: unknown, b: unknown): number {
  if (a === b) return 0
  if (a === null || a === undefined) return 1
  if (b === null || b === undefined) return -1
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : 1
  if (typeof a === 'boolean' && typeof b === 'boolean') return a ? 1 : -1
  const x = String(a)
  const y = String(b)
  return x < y ? -1 : x > y ? 1 : 0
}

function tokens(text: string): string[] {
  return text
    .toLowerCase()
    .split(/[^\p{L}\p{N}_]+/u)
    .filter(Boolean)
}

export interface QueryContext {
  properties: Record<string, FieldMapping>
}

function single(clause: unknown, what: string): [string, unknown] {
  if (clause === null || typeof clause !== 'object' || Array.isArray(clause))
    throw SearchApiError.parsing(`[${what}] query malformed, no start_object after query name`)
  const entries = Object.entries(clause as Record<string, unknown>).filter(
    ([k]) => k !== 'boost' && k !== '_name',
  )
  if (entries.length !== 1)
    throw SearchApiError.parsing(`[${what}] query doesn't support multiple fields`)
  return entries[0]!
}

function fieldMatches(
  doc: StoredDoc,
  field: string,
  ctx: QueryContext,
  test: (value: Json, type: string | undefined) => boolean,
): boolean {
  if (field === '_id') return test(doc.id, 'keyword')
  const type = mappingAt(ctx.properties, field)?.type
  return valuesAt(doc.source, field, ctx.properties).some((v) => test(v, type))
}

function equals(value: Json, wanted: unknown, type: string | undefined): boolean {
  if (type === 'text') {
    const want = String(wanted).toLowerCase()
    return tokens(String(value)).includes(want)
  }
  return compareScalars(normalize(value, type), normalize(wanted as Json, type)) === 0
}

/** Compile a query into a predicate; unknown or malformed queries are 400 parsing_exception. */
export function compileQuery(query: unknown, ctx: QueryContext): (doc: StoredDoc) => boolean {
  if (query === undefined || query === null) return () => true
  if (typeof query !== 'object' || Array.isArray(query))
    throw SearchApiError.parsing('query malformed, must start with start_object')
  const entries = Object.entries(query as Record<string, unknown>)
  if (entries.length !== 1)
    throw SearchApiError.parsing(
      `[_na] query malformed, expected one query name, found [${entries.length}]`,
    )
  const [name, body] = entries[0]!
  switch (name) {
    case 'match_all':
      return () => true
    case 'match_none':
      return () => false
    case 'term': {
      const [field, spec] = single(body, name)
      const value = spec !== null && typeof spec === 'object' ? (spec as any).value : spec
      return (doc) => fieldMatches(doc, field, ctx, (v, t) => equals(v, value, t))
    }
    case 'terms': {
      const [field, list] = single(body, name)
      if (!Array.isArray(list))
        throw SearchApiError.parsing(`[terms] query does not support [${field}]`)
      return (doc) =>
        fieldMatches(doc, field, ctx, (v, t) => list.some((wanted) => equals(v, wanted, t)))
    }
    case 'ids': {
      const values = (body as { values?: unknown })?.values
      if (!Array.isArray(values)) throw SearchApiError.parsing('[ids] query malformed')
      const set = new Set(values.map(String))
      return (doc) => set.has(doc.id)
    }
    case 'exists': {
      const field = (body as { field?: unknown })?.field
      if (typeof field !== 'string')
        throw SearchApiError.parsing('[exists] must be provided with a [field]')
      return (doc) => fieldMatches(doc, field, ctx, (v) => v !== null)
    }
    case 'prefix': {
      const [field, spec] = single(body, name)
      const value = String(spec !== null && typeof spec === 'object' ? (spec as any).value : spec)
      return (doc) => fieldMatches(doc, field, ctx, (v) => String(v).startsWith(value))
    }
    case 'match':
    case 'match_phrase': {
      const [field, spec] = single(body, name)
      const value = spec !== null && typeof spec === 'object' ? (spec as any).query : spec
      return (doc) =>
        fieldMatches(doc, field, ctx, (v, t) => {
          if (t === 'text' || t === undefined) {
            const have = tokens(String(v))
            return tokens(String(value)).some((token) => have.includes(token))
          }
          return equals(v, value, t)
        })
    }
    case 'range': {
      const [field, spec] = single(body, name)
      if (spec === null || typeof spec !== 'object')
        throw SearchApiError.parsing(`[range] query malformed, no start_object after query name`)
      const bounds = spec as Record<string, unknown>
      for (const key of Object.keys(bounds)) {
        if (!['gt', 'gte', 'lt', 'lte', 'format', 'time_zone', 'boost', 'relation'].includes(key))
          throw SearchApiError.parsing(`[range] query does not support [${key}]`)
      }
      return (doc) =>
        fieldMatches(doc, field, ctx, (v, t) => {
          const x = normalize(v, t)
          if (x === null) return false
          const cmp = (bound: unknown) => compareScalars(x, normalize(bound as Json, t))
          if (bounds.gt !== undefined && !(cmp(bounds.gt) > 0)) return false
          if (bounds.gte !== undefined && !(cmp(bounds.gte) >= 0)) return false
          if (bounds.lt !== undefined && !(cmp(bounds.lt) < 0)) return false
          if (bounds.lte !== undefined && !(cmp(bounds.lte) <= 0)) return false
          return true
        })
    }
    case 'bool': {
      if (body === null || typeof body !== 'object')
        throw SearchApiError.parsing('[bool] malformed query')
      const spec = body as Record<string, unknown>
      const list = (key: string) => {
        const value = spec[key]
        if (value === undefined) return []
        return (Array.isArray(value) ? value : [value]).map((q) => compileQuery(q, ctx))
      }
      for (const key of Object.keys(spec)) {
        if (
          ![
            'must',
            'filter',
            'should',
            'must_not',
            'minimum_should_match',
            'boost',
            '_name',
          ].includes(key)
        )
          throw SearchApiError.parsing(`[bool] query does not support [${key}]`)
      }
      const must = [...list('must'), ...list('filter')]
      const should = list('should')
      const mustNot = list('must_not')
      const minimum =
        spec.minimum_should_match !== undefined
          ? Number(spec.minimum_should_match)
          : must.length === 0 && should.length > 0
            ? 1
            : 0
      return (doc) =>
        must.every((q) => q(doc)) &&
        !mustNot.some((q) => q(doc)) &&
        should.filter((q) => q(doc)).length >= minimum
    }
    default:
      throw SearchApiError.parsing(`unknown query [${name}]`, 'parsing_exception')
  }
}

export interface SortSpec {
  field: string
  order: 'asc' | 'desc'
}

export function parseSort(sort: unknown): SortSpec[] {
  if (sort === undefined) return []
  const list = Array.isArray(sort) ? sort : [sort]
  return list.map((entry) => {
    if (typeof entry === 'string')
      return { field: entry, order: entry === '_score' ? 'desc' : 'asc' }
    if (entry && typeof entry === 'object') {
      const [field, spec] = Object.entries(entry as Record<string, unknown>)[0] ?? []
      if (!field) throw SearchApiError.parsing('malformed sort')
      const order =
        typeof spec === 'string' ? spec : ((spec as { order?: string } | undefined)?.order ?? 'asc')
      if (order !== 'asc' && order !== 'desc')
        throw SearchApiError.parsing(`[sort] unknown order [${order}]`)
      return { field, order }
    }
    throw SearchApiError.parsing('malformed sort')
  })
}

/** The sort value a hit reports for one sort key. */
export function sortValue(
  doc: StoredDoc,
  spec: SortSpec,
  ctx: QueryContext,
): string | number | boolean | null {
  if (spec.field === '_shard_doc' || spec.field === '_doc') return doc.ordinal
  if (spec.field === '_id') return doc.id
  if (spec.field === '_score') return null
  const type = mappingAt(ctx.properties, spec.field)?.type
  const values = valuesAt(doc.source, spec.field, ctx.properties)
    .map((v) => normalize(v, type))
    .filter((v) => v !== null)
  if (values.length === 0) return null
  values.sort(compareScalars)
  return spec.order === 'asc' ? values[0]! : values[values.length - 1]!
}

export function compareSortValues(
  a: readonly unknown[],
  b: readonly unknown[],
  specs: readonly SortSpec[],
): number {
  for (let i = 0; i < specs.length; i++) {
    const x = a[i]
    const y = b[i]
    // Missing values sort last in both orders (ES's default `missing: _last`).
    if ((x === null || x === undefined) !== (y === null || y === undefined))
      return x === null || x === undefined ? 1 : -1
    let c = compareScalars(x, y)
    if (specs[i]!.order === 'desc') c = -c
    if (c !== 0) return c
  }
  return 0
}

export { compareScalars }
