import type { ColumnInfo, ColumnType, StreamSchema } from './columns.js'
import type { StreamInfo } from './contract.js'
import { ProviderError } from './errors.js'

// ---------------------------------------------------------------------------------------
// Index mappings (Elasticsearch, OpenSearch: `GET <index>/_mapping`) as fields, columns and
// discovered streams. Both search providers use this; what differs between them (the vector
// field type, the schema's `system`) is a parameter.
// ---------------------------------------------------------------------------------------

/** A `GET <pattern>/_mapping` response: index name -> its mappings. */
export type SearchMappings = Record<string, { mappings?: { properties?: Record<string, unknown> } }>

/** The leaf fields of a mapping, as dotted paths with their type. */
export function searchMappingFields(
  properties: Record<string, unknown> | undefined,
  prefix = '',
): { name: string; type: string }[] {
  const out: { name: string; type: string }[] = []
  for (const [name, raw] of Object.entries(properties ?? {})) {
    const field = raw as { type?: string; properties?: Record<string, unknown> }
    if (
      field.properties &&
      (field.type === undefined || field.type === 'object' || field.type === 'nested')
    ) {
      out.push(...searchMappingFields(field.properties, `${prefix}${name}.`))
    } else out.push({ name: `${prefix}${name}`, type: field.type ?? 'object' })
  }
  return out
}

/** The portable type of a mapping type (Elasticsearch's and OpenSearch's types alike). */
export function searchColumnTypeOf(type: string): ColumnType {
  switch (type) {
    case 'long':
      return { type: 'integer', bits: 64 }
    case 'integer':
      return { type: 'integer', bits: 32 }
    case 'short':
      return { type: 'integer', bits: 16 }
    case 'byte':
      return { type: 'integer', bits: 8 }
    case 'unsigned_long':
      return { type: 'integer', bits: 64, unsigned: true }
    case 'double':
      return { type: 'float', bits: 64 }
    case 'float':
    case 'half_float':
      return { type: 'float', bits: 32 }
    case 'scaled_float':
      return { type: 'float', bits: 64 }
    case 'boolean':
      return { type: 'boolean' }
    case 'date':
      return { type: 'timestamp', withTimeZone: true, precision: 3 }
    case 'date_nanos':
      return { type: 'timestamp', withTimeZone: true, precision: 9 }
    case 'binary':
      return { type: 'binary' }
    case 'text':
    case 'keyword':
    case 'match_only_text':
    case 'wildcard':
    case 'constant_keyword':
    case 'ip':
    case 'version':
      return { type: 'text' }
    case 'dense_vector':
    case 'knn_vector':
      return { type: 'array', of: { type: 'float', bits: 32 } }
    case 'object':
    case 'nested':
    case 'flattened':
      return { type: 'json' }
    default:
      return { type: 'other' }
  }
}

/** Top-level fields of a mapping as columns (objects as json); every field may be missing. */
export function searchMappingColumns(
  properties: Record<string, unknown> | undefined,
): ColumnInfo[] {
  return Object.entries(properties ?? {}).map(([name, raw]) => {
    const field = raw as { type?: string; properties?: unknown }
    const nativeType = field.type ?? 'object'
    return { name, nativeType, type: searchColumnTypeOf(nativeType), nullable: true }
  })
}

/** At most this many streams are discovered. */
export const MAX_DISCOVERED_SEARCH_STREAMS = 1000

/**
 * The data streams and indices of `mappings` (every index matching `*`) as streams, with
 * their mapped fields: each data stream (its fields looked up from a `.ds-<name>-` backing
 * index among the listed names; as those skip names starting with `.`, none is found and its
 * fields are empty, as the providers have always done), each index not starting with `.`, and
 * for an index with a `vectorType` field (`dense_vector`, `knn_vector`) also a stream reading
 * that field as embeddings. At most `MAX_DISCOVERED_SEARCH_STREAMS`.
 */
export function searchStreamsOf(
  mappings: SearchMappings,
  dataStreamNames: Iterable<string>,
  vectorType: string,
): StreamInfo[] {
  const dataStreams = new Set(dataStreamNames)
  const streams: StreamInfo[] = []
  const names = Object.keys(mappings)
    .filter((name) => !name.startsWith('.'))
    .sort()
  // Backing indices of a data stream are read through the data stream.
  for (const stream of [...dataStreams].sort()) {
    const backing = names.find((name) => name.startsWith(`.ds-${stream}-`))
    streams.push({
      name: stream,
      type: 'data_stream',
      data: 'document',
      stream: { index: stream },
      fields: searchMappingFields(mappings[backing ?? '']?.mappings?.properties),
    })
  }
  for (const name of names) {
    if (streams.length >= MAX_DISCOVERED_SEARCH_STREAMS) break
    const fields = searchMappingFields(mappings[name]?.mappings?.properties)
    streams.push({ name, type: 'index', data: 'document', stream: { index: name }, fields })
    const vector = fields.find((f) => f.type === vectorType)
    if (vector && streams.length < MAX_DISCOVERED_SEARCH_STREAMS) {
      streams.push({
        name: `${name} (embeddings: ${vector.name})`,
        type: 'index',
        data: 'embedding',
        stream: { index: name, data: 'embedding', vectorField: vector.name },
        fields,
        description: `The ${vector.name} ${vectorType} as embedding values, the other fields as metadata`,
      })
    }
  }
  return streams
}

/**
 * The schema of `index` (a name, pattern or data stream) from the mappings of the indices it
 * matches: the union of their top-level fields, the first index (by name) giving a field's
 * type. No index is a `not_found` error.
 */
export function searchIndexSchema(
  mappings: SearchMappings,
  index: string,
  system: string,
): StreamSchema {
  const names = Object.keys(mappings).sort()
  if (names.length === 0)
    throw new ProviderError({
      kind: 'not_found',
      operation: 'describe',
      message: `${index} matches no index`,
    })
  // Several indices (a pattern, a data stream's backing indices): the union of their fields.
  const columns = new Map<string, ColumnInfo>()
  for (const name of names)
    for (const column of searchMappingColumns(mappings[name]?.mappings?.properties))
      if (!columns.has(column.name)) columns.set(column.name, column)
  return { system, columns: [...columns.values()], primaryKey: [] }
}
