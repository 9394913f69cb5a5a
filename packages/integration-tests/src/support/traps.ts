// The table of precision traps: the same logical rows seeded into MySQL/MariaDB and into
// PostgreSQL, with hostile table and column names. Values are given as text that each server
// parses itself (never a JS number on the way), so what is stored is the server's own value.
import type { Kind } from './canonical.js'

export interface TrapColumn {
  name: string
  kind: Kind
  mysql: string
  pg: string
}

/** Hostile names: quotes, backticks, spaces, dots, unicode, mixed case, SQL punctuation. */
export const TRAP_TABLE = `Trap "Tbl" \`x\` Ünï.Dot`
export const KEY = 'Row "Id"'

export const TRAP_COLUMNS: TrapColumn[] = [
  {
    name: KEY,
    kind: 'int',
    mysql: 'BIGINT NOT NULL PRIMARY KEY',
    pg: 'bigint NOT NULL PRIMARY KEY',
  },
  { name: 'f.Float', kind: 'float', mysql: 'FLOAT', pg: 'real' },
  { name: 'Dbl`tick', kind: 'float', mysql: 'DOUBLE', pg: 'double precision' },
  { name: 'U 64', kind: 'int', mysql: 'BIGINT UNSIGNED', pg: 'numeric(20,0)' },
  { name: 'Ünïcode i64', kind: 'int', mysql: 'BIGINT', pg: 'bigint' },
  { name: 'MixedCase Dec', kind: 'decimal', mysql: 'DECIMAL(65,30)', pg: 'numeric(65,30)' },
  { name: 'b1', kind: { bits: 1 }, mysql: 'BIT(1)', pg: 'bit(1)' },
  { name: "B64'q", kind: { bits: 64 }, mysql: 'BIT(64)', pg: 'bit(64)' },
  { name: 't;--', kind: 'duration', mysql: 'TIME(6)', pg: 'interval' },
  { name: 'Dt', kind: 'datetime', mysql: 'DATETIME(6)', pg: 'timestamp(6)' },
  { name: 'Ts', kind: 'timestamptz', mysql: 'TIMESTAMP(6) NULL', pg: 'timestamptz(6)' },
  { name: 'J son', kind: 'json', mysql: 'JSON', pg: 'json' },
  { name: 'Bin', kind: 'binary', mysql: 'VARBINARY(64)', pg: 'bytea' },
  { name: 'Txt', kind: 'text', mysql: 'VARCHAR(200) CHARACTER SET utf8mb4', pg: 'text' },
  { name: 'St', kind: 'set', mysql: "SET('a','b','c d')", pg: 'text' },
  { name: 'En', kind: 'enum', mysql: "ENUM('x','y z')", pg: 'text' },
]

/** One row: the key and, per other column, the value's text or null. Bits as '0'/'1' strings, binary as hex. */
export type TrapRow = (string | null)[]

const FLT_MIN = '1.1754943508222875e-38'
const FLT_MAX = '3.4028234663852886e38'
const ones64 = '1'.repeat(64)
const high64 = `1${'0'.repeat(63)}`

/** The hand-written traps (keys 1..8). */
export const TRAP_ROWS: TrapRow[] = [
  // key, float, double, u64, i64, decimal(65,30), bit1, bit64, time, datetime, timestamp, json, bin, text, set, enum
  [
    '1',
    FLT_MIN,
    '90.33333333333333', // 271/3e0
    '18446744073709551615',
    '-9223372036854775808',
    `${'9'.repeat(35)}.${'9'.repeat(30)}`,
    '1',
    ones64,
    '838:59:59.000000',
    '2024-02-29 13:45:00.123456',
    '2038-01-19 03:14:07.999999',
    '{"b":1,"a":2,"b":3}',
    '00ff00ff',
    `emoji 🦄 "q" 's' \\ back`,
    'a,c d',
    'y z',
  ],
  [
    '2',
    FLT_MAX,
    '5e-324',
    '0',
    '9223372036854775807',
    `-${'9'.repeat(35)}.${'9'.repeat(29)}8`,
    '0',
    high64,
    '-838:59:59.000000',
    '1000-01-01 00:00:00.000000',
    '1970-01-01 00:00:01.000000',
    '[1, 2.50, {"z":null,"a":[]}, 1e400]',
    'ff',
    '',
    '',
    'x',
  ],
  [
    '3',
    '16777217', // 2^24 + 1: not a float, stored as 16777216
    '1.7976931348623157e308',
    '9223372036854775808',
    '-1',
    '0.000000000000000000000000000001',
    null,
    `${'0'.repeat(63)}1`,
    '-00:00:00.000001',
    '9999-12-31 23:59:59.999999',
    null,
    '{"a":"\\u00e9 🦄","n":12345678901234567890123}',
    '',
    'tab\tnewline\nCR\r',
    'a,b,c d',
    null,
  ],
  [
    '4',
    '1.401298464324817e-45', // the smallest float denormal
    '2.2250738585072014e-308',
    '1',
    '0',
    '0',
    '1',
    '0000000100100011010001010110011110001001101010111100110111101111',
    '25:00:00.000001',
    '2024-01-01 00:00:00.000001',
    '2024-06-01 12:00:00.500000',
    '"just a string"',
    '000000',
    '∑ ü ß Ω 𝄞',
    null,
    'x',
  ],
  [
    '5',
    '16777215', // 2^24 - 1
    '-0.1',
    '4294967296',
    '-9223372036854775807',
    '-0.000000000000000000000000000001',
    '0',
    '0'.repeat(64),
    '00:00:00.000000',
    '2000-01-01 00:00:00.000000',
    '2000-01-01 00:00:00.000000',
    '{}',
    '80',
    ' leading and trailing ',
    'b',
    'y z',
  ],
  [
    '6',
    '1.1754942106924411e-38', // the largest float denormal
    '4.9406564584124654e-324',
    '12345678901234567890',
    '1234567890123456789',
    '12345678901234567890123456789012345.123456789012345678901234567890',
    '1',
    '0101010101010101010101010101010101010101010101010101010101010101',
    '-25:00:00.000001',
    '2024-12-31 23:59:59.999999',
    '2024-12-31 23:59:59.999999',
    '{"a":1, "a":{"x":[true,false,null]}}',
    'deadbeef',
    'Ünï "quotes" `ticks` ; -- DROP',
    'a',
    'x',
  ],
  [
    '7',
    '-16777216.5', // not a float: rounds to -16777216
    '-1.7976931348623157e308',
    '18446744073709551614',
    '-2',
    '0.5',
    '0',
    `${'1'.repeat(63)}0`,
    '12:34:56.789012',
    '1970-01-01 00:00:00.000000',
    '2024-02-29 23:59:59.000001',
    '[]',
    '00',
    'x',
    'c d',
    'x',
  ],
  ['8', null, null, null, null, null, null, null, null, null, null, null, null, null, null, null],
]

/** A deterministic generator (xorshift64*), so a failure repeats. */
export function generator(seed: bigint) {
  let state = seed || 1n
  const MASK = (1n << 64n) - 1n
  return () => {
    state ^= state >> 12n
    state ^= (state << 25n) & MASK
    state ^= state >> 27n
    return (state * 2685821657736338717n) & MASK
  }
}

const buffer = new DataView(new ArrayBuffer(8))

/** Rows 1001.. with random bit patterns: every exponent of float and double, 64-bit values, bits, times. */
export function bulkRows(count: number): TrapRow[] {
  const next = generator(0x9e3779b97f4a7c15n)
  const rows: TrapRow[] = []
  for (let i = 0; i < count; i++) {
    const r = () => next()
    buffer.setUint32(0, Number(r() & 0xffffffffn))
    let f = buffer.getFloat32(0)
    if (!Number.isFinite(f)) f = 1.5
    buffer.setBigUint64(0, r())
    let d = buffer.getFloat64(0)
    if (!Number.isFinite(d) || Object.is(d, -0)) d = 2.5
    const u = r()
    const s = BigInt.asIntN(64, r())
    const intDigits = (r() % 10n ** 35n).toString()
    const frac = (r() % 10n ** 30n).toString().padStart(30, '0')
    const micros = Number(r() % 3_020_399_000_000n) * (i % 2 ? -1 : 1)
    const absMicros = Math.abs(micros)
    const time = `${micros < 0 ? '-' : ''}${Math.floor(absMicros / 3_600_000_000)}:${String(
      Math.floor(absMicros / 60_000_000) % 60,
    ).padStart(2, '0')}:${String(Math.floor(absMicros / 1_000_000) % 60).padStart(2, '0')}.${String(
      absMicros % 1_000_000,
    ).padStart(6, '0')}`
    const epoch = Number(r() % 2_000_000_000n) + 1
    const at = new Date(epoch * 1000).toISOString().slice(0, 19).replace('T', ' ')
    const usec = String(Number(r() % 1_000_000n)).padStart(6, '0')
    const bytes = Array.from({ length: Number(r() % 17n) }, () =>
      Number(r() & 0xffn)
        .toString(16)
        .padStart(2, '0'),
    ).join('')
    rows.push([
      String(1001 + i),
      String(f),
      String(d),
      u.toString(),
      s.toString(),
      `${i % 3 ? '-' : ''}${intDigits}.${frac}`,
      String(r() & 1n),
      r().toString(2).padStart(64, '0'),
      time,
      `${at}.${usec}`,
      `${at}.${usec}`,
      JSON.stringify({ i, k: `v${i}`, big: (u >> 1n).toString(), nested: { z: i % 7, a: [i] } }),
      bytes,
      `row ${i} 🦄 "${i % 5}" 'q'`,
      ['', 'a', 'b', 'a,b', 'c d', 'a,b,c d'][i % 6]!,
      i % 3 === 0 ? null : i % 3 === 1 ? 'x' : 'y z',
    ])
  }
  return rows
}
