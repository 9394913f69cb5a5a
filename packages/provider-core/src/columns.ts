/**
 * Portable column types: how a source describes a stream's columns so that a sink of another
 * system can create (or check) its destination with a documented type mapping, and encode
 * each value for the destination column's declared type.
 *
 * A source maps its native types to these (`nativeType` keeps the exact native spelling, so a
 * sink of the same system can reuse it verbatim); a sink maps these to its own DDL. Each
 * provider README has the table of both directions.
 */
export type ColumnType =
  | { type: 'boolean' }
  /** Two's-complement integer of `bits` bits (24: MySQL MEDIUMINT); `unsigned` widens the range. */
  | { type: 'integer'; bits: 8 | 16 | 24 | 32 | 64; unsigned?: boolean }
  /** Exact decimal; no precision means unbounded (PostgreSQL `numeric`). */
  | { type: 'decimal'; precision?: number; scale?: number; unsigned?: boolean }
  /** IEEE 754 binary floating point: 32 (FLOAT, real) or 64 (DOUBLE, double precision). */
  | { type: 'float'; bits: 32 | 64; unsigned?: boolean }
  /** A bit string of `length` bits (varying: up to `length`); values are tagged `bits`. */
  | { type: 'bits'; length: number; varying?: boolean }
  /** Character data; `maxLength` in characters; `fixed` for CHAR(n). */
  | { type: 'text'; maxLength?: number; fixed?: boolean }
  | { type: 'binary'; maxLength?: number; fixed?: boolean }
  | { type: 'date' }
  /** Time of day (values tagged `time`), `precision` fractional digits. */
  | { type: 'time'; precision?: number; withTimeZone?: boolean }
  /** A signed length of time (MySQL TIME beyond 24 h, PostgreSQL interval); values tagged `interval`. */
  | { type: 'duration'; precision?: number }
  | { type: 'timestamp'; precision?: number; withTimeZone: boolean }
  /** MySQL YEAR. */
  | { type: 'year' }
  /** JSON text; `binary` for a normalizing store (jsonb) where key order and duplicates are not kept. */
  | { type: 'json'; binary?: boolean }
  | { type: 'uuid' }
  | { type: 'enum'; values: string[]; name?: string }
  | { type: 'set'; values: string[] }
  | { type: 'array'; of: ColumnType }
  /** A type with no portable equivalent: a sink of another system refuses to create it. */
  | { type: 'other' }

export interface ColumnInfo {
  name: string
  /** The type as the source system spells it (`bit(64)`, `double`, `timestamp(6) with time zone`). */
  nativeType: string
  type: ColumnType
  nullable: boolean
}

/** The shape of one stream: what a sink needs to create its destination. */
export interface StreamSchema {
  /** The system the schema comes from (a provider id), so a sink of the same system can reuse `nativeType`. */
  system: string
  columns: ColumnInfo[]
  /** Primary (or declared unique) key columns in key order; empty when there is none. */
  primaryKey: string[]
}

/** What a sink's `prepare` found and did (or, with `dryRun`, would do). */
export interface PrepareResult {
  /** Whether the destination existed before the call. */
  existed: boolean
  /** Statements run or planned (DDL), in order; empty when nothing was or would be changed. */
  actions: string[]
}
