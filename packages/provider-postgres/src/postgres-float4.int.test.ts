import { describe, expect, it } from 'vitest'
import { adminPool, skipReason } from './__fixtures__/postgres.js'
import { isFloat32 } from './postgres-encode.js'

const skip = await skipReason()

// The real encoder accepts a number only when it names one float32 exactly: the float32 itself
// or the decimal PostgreSQL prints for it. Checked against the server's own float4 output for
// every exponent, so a real read from PostgreSQL is always written back (a PG -> PG copy into a
// created table refused row 271 of the exactness matrix before ties and boundaries were handled).
describe.skipIf(skip)('real (float4) against PostgreSQL float4out', () => {
  it('accepts every text PostgreSQL prints for a float32, and it names that float32', async () => {
    const admin = adminPool()
    try {
      const view = new DataView(new ArrayBuffer(4))
      let seed = 0x2545f491
      const floats: number[] = []
      for (let i = 0; i < 100_000; i++) {
        seed ^= seed << 13
        seed ^= seed >>> 17
        seed ^= seed << 5
        view.setUint32(0, seed >>> 0)
        const f = view.getFloat32(0)
        if (Number.isFinite(f)) floats.push(f)
      }
      const { rows } = await admin.query<{ text: string; bits: number }>(
        'SELECT x::float4::text AS text FROM unnest($1::float8[]) AS x',
        [floats],
      )
      const refused = rows.filter((row) => !isFloat32(Number(row.text))).map((row) => row.text)
      expect(refused.slice(0, 5)).toEqual([])
      const renamed = rows.filter((row, i) => Math.fround(Number(row.text)) !== floats[i])
      expect(renamed).toEqual([])
    } finally {
      await admin.end()
    }
  })

  it('refuses doubles that are not a float32 nor the decimal printed for one', async () => {
    const admin = adminPool()
    try {
      const doubles = [0.1 + 0.2, 3740405.4, 16777217, 393296400, Math.PI]
      const { rows } = await admin.query<{ text: string }>(
        'SELECT x::float4::text AS text FROM unnest($1::float8[]) AS x',
        [doubles],
      )
      for (const [i, value] of doubles.entries()) {
        expect(isFloat32(value), `${value} (PostgreSQL stores ${rows[i]!.text})`).toBe(false)
      }
    } finally {
      await admin.end()
    }
  })
})
