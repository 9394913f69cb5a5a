// The agreed canonical text of each kind of value, computed by each DATABASE in SQL (never by
// our code), so two systems can be compared by a digest: the same value gives the same text on
// both sides. Floats are the 16 hex digits of their IEEE-754 binary64 bits (a FLOAT/real is
// widened to double first, which is exact): PostgreSQL's float8send, and on MySQL/MariaDB a
// decomposition into sign, exponent and fraction done in double arithmetic (each step exact:
// powers of two only) and printed with HEX over BIGINT UNSIGNED bit operations.

/** What a column holds, independent of the system: decides its canonical text. */
export type Kind =
  | 'int'
  | 'float'
  | 'decimal'
  | { bits: number }
  | 'duration'
  | 'datetime'
  | 'timestamptz'
  | 'json'
  | 'binary'
  | 'text'
  | 'set'
  | 'enum'

export const NULL_MARK = '~'

export const quoteMysql = (name: string) => `\`${name.replaceAll('`', '``')}\``
export const quotePg = (name: string) => `"${name.replaceAll('"', '""')}"`
export const mysqlString = (text: string) =>
  `'${text.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`

/** The exact IEEE-754 binary64 bits of a MySQL DOUBLE expression `v`, as 16 upper-case hex digits. */
export function mysqlDoubleBits(v: string): string {
  const a = `ABS(${v})`
  const e1 = `LEAST(FLOOR(LOG2(${a})), 1023)`
  // LOG2 can be one off next to a power of two: correct it (a/2 avoids POW(2, 1024)).
  const e = `(${e1} - IF(POW(2, ${e1}) > ${a}, 1, 0) + IF(${a} / 2 >= POW(2, ${e1}), 1, 0))`
  return `LPAD(HEX((IF(ATAN2(${v}, -1) < 0, 1, 0) << 63) | IF(${v} = 0, 0, IF(${a} < POW(2, -1022),
    CAST(${a} * POW(2, 1022) * POW(2, 52) AS UNSIGNED),
    (CAST(${e} + 1023 AS UNSIGNED) << 52) | CAST((${a} / POW(2, ${e}) - 1) * POW(2, 52) AS UNSIGNED)))), 16, '0')`
}

const mysqlHexText = (v: string) => `LOWER(HEX(CONVERT(${v} USING utf8mb4)))`

/** MySQL/MariaDB canonical text of column `c` (quoted) of kind `kind`. */
export function mysqlCanonical(c: string, kind: Kind): string {
  let expr: string
  if (typeof kind === 'object') {
    expr = `LPAD(BIN(${c} + 0), ${kind.bits}, '0')`
  } else {
    switch (kind) {
      case 'int':
        expr = `CAST(${c} AS CHAR)`
        break
      case 'float':
        expr = mysqlDoubleBits(`(${c} + 0e0)`)
        break
      case 'decimal': {
        const t = `CAST(${c} AS CHAR)`
        expr = `IF(INSTR(${t}, '.') > 0, TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM ${t})), ${t})`
        break
      }
      case 'duration':
        expr = `CAST(CAST(TIME_TO_SEC(${c}) * 1000000 AS SIGNED) AS CHAR)`
        break
      case 'datetime':
      case 'timestamptz':
        // The digest session runs with time_zone '+00:00': a TIMESTAMP prints in UTC.
        expr = `DATE_FORMAT(${c}, '%Y-%m-%d %H:%i:%s.%f')`
        break
      case 'binary':
        expr = `LOWER(HEX(${c}))`
        break
      case 'json':
      case 'text':
      case 'set':
      case 'enum':
        expr = mysqlHexText(c)
        break
    }
  }
  return `COALESCE(${expr}, '${NULL_MARK}')`
}

/** PostgreSQL canonical text of column `c` (quoted) of kind `kind`, stored as PostgreSQL type `udt` (pg_type name). */
export function pgCanonical(c: string, kind: Kind, udt: string): string {
  let expr: string
  const hexText = (v: string) => `encode(convert_to(${v}, 'UTF8'), 'hex')`
  if (typeof kind === 'object') {
    expr =
      udt === 'bool'
        ? `CASE WHEN ${c} THEN lpad('1', ${kind.bits}, '0') ELSE repeat('0', ${kind.bits}) END`
        : udt === 'bit' || udt === 'varbit'
          ? `lpad(${c}::text, ${kind.bits}, '0')`
          : // an integer or numeric holding the bits' value
            `lpad(${pgNumericToBits(`${c}::numeric`)}, ${kind.bits}, '0')`
  } else {
    switch (kind) {
      case 'int':
        expr = udt === 'numeric' ? `trim_scale(${c})::text` : `${c}::text`
        break
      case 'float':
        expr = `upper(encode(float8send(${c}::float8), 'hex'))`
        break
      case 'decimal':
        expr = `trim_scale(${c}::numeric)::text`
        break
      case 'duration':
        expr =
          udt === 'interval' || udt === 'time'
            ? `(extract(epoch from ${c}) * 1000000)::bigint::text`
            : `(extract(epoch from ${c}::interval) * 1000000)::bigint::text`
        break
      case 'datetime':
        expr = `to_char(${c}, 'YYYY-MM-DD HH24:MI:SS.US')`
        break
      case 'timestamptz':
        expr =
          udt === 'timestamptz'
            ? `to_char(${c} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')`
            : `to_char(${c}, 'YYYY-MM-DD HH24:MI:SS.US')`
        break
      case 'binary':
        expr = `encode(${c}, 'hex')`
        break
      case 'set':
        expr = udt.startsWith('_') ? hexText(`array_to_string(${c}, ',')`) : hexText(`${c}::text`)
        break
      case 'json':
      case 'text':
      case 'enum':
        expr = hexText(`${c}::text`)
        break
    }
  }
  return `COALESCE(${expr}, '${NULL_MARK}')`
}

/** A numeric's binary digits in SQL (no built-in for numerics above bigint). */
function pgNumericToBits(n: string): string {
  return `(SELECT coalesce(string_agg((floor(${n} / power(2::numeric, k)) % 2)::int::text, '' ORDER BY k DESC), '0')
    FROM generate_series(0, 63) AS k)`
}
