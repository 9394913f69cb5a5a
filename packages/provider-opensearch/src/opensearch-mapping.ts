import type { ColumnInfo, ColumnType } from '@nvisy/provider-core'

/** The leaf fields of a mapping, as dotted paths with their type. */
export function mappingFields(
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
      out.push(...mappingFields(field.properties, `${prefix}${name}.`))
    } else out.push({ name: `${prefix}${name}`, type: field.type ?? 'object' })
  }
  return out
}

/** The portable type of a mapping type. */
export function columnTypeOf(type: string): ColumnType {
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
export function mappingColumns(properties: Record<string, unknown> | undefined): ColumnInfo[] {
  return Object.entries(properties ?? {}).map(([name, raw]) => {
    const field = raw as { type?: string; properties?: unknown }
    const nativeType = field.type ?? 'object'
    return { name, nativeType, type: columnTypeOf(nativeType), nullable: true }
  })
}
