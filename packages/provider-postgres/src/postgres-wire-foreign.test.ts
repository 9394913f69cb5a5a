// COPY text from another system (a MySQL source's own text) is taken only where every value of
// the source column's type lands in the destination column as it is. Each refused pair below
// is one PostgreSQL would otherwise round, cut, pad or shift without an error.
import type { ColumnType } from '@nvisy/provider-core'
import { describe, expect, it } from 'vitest'
import { foreignTextProblem } from './postgres-wire.js'

const int = (bits: 8 | 16 | 24 | 32 | 64, unsigned = false): ColumnType =>
  unsigned ? { type: 'integer', bits, unsigned } : { type: 'integer', bits }
const dec = (precision?: number, scale?: number): ColumnType =>
  precision === undefined ? { type: 'decimal' } : { type: 'decimal', precision, scale }
const text = (maxLength?: number, fixed?: boolean): ColumnType => ({
  type: 'text',
  ...(maxLength === undefined ? {} : { maxLength }),
  ...(fixed ? { fixed } : {}),
})
const ts = (withTimeZone: boolean, precision?: number): ColumnType => ({
  type: 'timestamp',
  withTimeZone,
  ...(precision === undefined ? {} : { precision }),
})

describe('COPY text from another system: which destination columns take it', () => {
  it('takes integers into integers of at least their range, and decimals with room for their digits', () => {
    for (const [source, target] of [
      [int(8), int(16)],
      [int(8, true), int(16)],
      [int(16), int(16)],
      [int(24, true), int(32)],
      [int(32), int(32)],
      [int(32, true), int(64)],
      [int(64), int(64)],
      [int(64, true), dec(20, 0)],
      [int(64, true), dec()],
      [int(32), dec(12, 2)],
    ] as const)
      expect(foreignTextProblem(source, target), JSON.stringify([source, target])).toBeUndefined()
    for (const [source, target, problem] of [
      // 4294967295 and 65535 do not fit: the server would refuse them, so it goes value by value.
      [int(32, true), int(32), /range is narrower/],
      [int(16, true), int(16), /range is narrower/],
      [int(64), int(32), /range is narrower/],
      [int(64, true), int(64), /range is narrower/],
      [int(64, true), dec(19, 0), /fewer digits before the point/],
      [int(32), dec(10, 2), /fewer digits before the point/],
      // 16777217 is not a float: an integer into float4 would be rounded without an error.
      [int(32), { type: 'float', bits: 32 }, /not an integer or decimal column/],
      [int(32), text(), /not an integer or decimal column/],
    ] as const)
      expect(foreignTextProblem(source, target)).toMatch(problem)
  })

  it('takes decimals only where no digit is rounded away', () => {
    expect(foreignTextProblem(dec(65, 30), dec(65, 30))).toBeUndefined()
    expect(foreignTextProblem(dec(12, 2), dec(14, 4))).toBeUndefined()
    expect(foreignTextProblem(dec(12, 2), dec())).toBeUndefined()
    // numeric(65,29) rounds the 30th fraction digit without an error.
    expect(foreignTextProblem(dec(65, 30), dec(65, 29))).toMatch(/fewer digits after the point/)
    expect(foreignTextProblem(dec(12, 2), dec(11, 2))).toMatch(/fewer digits before the point/)
    expect(foreignTextProblem(dec(), dec(1000, 10))).toMatch(/precision is bounded/)
    expect(foreignTextProblem(dec(12, 2), { type: 'float', bits: 64 })).toMatch(/not a decimal/)
  })

  it('takes text into text without a shorter limit and without blank padding', () => {
    expect(foreignTextProblem(text(100), text())).toBeUndefined()
    expect(foreignTextProblem(text(100), text(100))).toBeUndefined()
    expect(foreignTextProblem(text(5, true), text(5))).toBeUndefined()
    expect(foreignTextProblem(text(), text())).toBeUndefined()
    // varchar(n) cuts trailing blanks beyond n without an error; char(n) pads.
    expect(foreignTextProblem(text(100), text(99))).toMatch(/length limit is shorter/)
    expect(foreignTextProblem(text(), text(10_000))).toMatch(/length limit is shorter/)
    expect(foreignTextProblem(text(5), text(5, true))).toMatch(/pads with blanks/)
    expect(foreignTextProblem(text(5), { type: 'json' })).toMatch(/not a text column/)
  })

  it('takes JSON into json or jsonb, dates into dates, timestamps of the same kind with as many fraction digits', () => {
    expect(foreignTextProblem({ type: 'json' }, { type: 'json' })).toBeUndefined()
    expect(foreignTextProblem({ type: 'json', binary: true }, { type: 'json' })).toBeUndefined()
    expect(foreignTextProblem({ type: 'json' }, { type: 'json', binary: true })).toBeUndefined()
    expect(foreignTextProblem({ type: 'json' }, text())).toMatch(/not a json or jsonb column/)
    expect(foreignTextProblem({ type: 'date' }, { type: 'date' })).toBeUndefined()
    expect(foreignTextProblem({ type: 'date' }, ts(false))).toMatch(/not a date column/)
    expect(foreignTextProblem(ts(false, 6), ts(false, 6))).toBeUndefined()
    expect(foreignTextProblem(ts(false, 0), ts(false))).toBeUndefined()
    expect(foreignTextProblem(ts(true, 3), ts(true, 6))).toBeUndefined()
    // A wall-clock time into timestamptz (or the reverse) would be read in the session's zone.
    expect(foreignTextProblem(ts(false, 6), ts(true, 6))).toMatch(/not a timestamp column/)
    expect(foreignTextProblem(ts(true, 6), ts(false, 6))).toMatch(/not a timestamptz column/)
    expect(foreignTextProblem(ts(false, 6), ts(false, 3))).toMatch(/fewer fraction digits/)
  })

  it('takes no other type: floats, bits, binary, times, enums and the rest go value by value', () => {
    for (const source of [
      { type: 'float', bits: 64 },
      { type: 'bits', length: 3 },
      { type: 'binary' },
      { type: 'duration' },
      { type: 'time' },
      { type: 'boolean' },
      { type: 'enum', values: ['a'] },
      { type: 'year' },
      { type: 'other' },
    ] as ColumnType[])
      expect(foreignTextProblem(source, source)).toMatch(
        /are not passed as text from another system/,
      )
  })
})
