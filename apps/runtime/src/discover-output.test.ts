import type { StreamInfo } from '@nvisy/provider-core'
import { describe, expect, it } from 'vitest'
import { discoverFormat, streamsTable } from './discover-output.js'

describe('discoverFormat', () => {
  it('is a table on a terminal and JSON otherwise, unless told', () => {
    expect(discoverFormat({}, true)).toBe('table')
    expect(discoverFormat({}, false)).toBe('json')
    expect(discoverFormat({ json: true }, true)).toBe('json')
    expect(discoverFormat({ format: 'json' }, true)).toBe('json')
    expect(discoverFormat({ format: 'table' }, false)).toBe('table')
  })

  it('refuses an unknown format, and --json with --format table', () => {
    expect(() => discoverFormat({ format: 'yaml' }, true)).toThrow(
      '--format must be table or json (got "yaml")',
    )
    expect(() => discoverFormat({ format: 'table', json: true }, true)).toThrow(/disagree/)
  })
})

describe('streamsTable', () => {
  const people: StreamInfo = {
    name: 'public.people',
    type: 'table',
    data: 'record',
    stream: { schema: 'public', table: 'people' },
    fields: [
      { name: 'id', type: 'int8', nullable: false, primaryKey: true },
      { name: 'name', type: 'text', nullable: true, primaryKey: false },
    ],
  }
  const bucket: StreamInfo = { name: 'photos/', type: 'prefix', data: 'blob', stream: {} }

  it('one row per field, the stream on its first row, aligned columns, a count', () => {
    expect(streamsTable([people, bucket])).toBe(
      [
        'stream         type    data    field  field type  nullable  key',
        'public.people  table   record  id     int8        no        primary',
        '                               name   text        yes',
        'photos/        prefix  blob',
        '2 streams',
        '',
      ].join('\n'),
    )
  })

  it('says when there is nothing', () => {
    expect(streamsTable([])).toBe('no streams found\n')
  })

  it('shows control characters in names escaped, so a name cannot drive the terminal', () => {
    const table = streamsTable([{ ...bucket, name: 'evil\u001b[2J\rname' }])
    expect(table).not.toContain('\u001b')
    expect(table).not.toContain('\r')
    expect(table).toContain('evil\\u001b[2J\\u000dname')
  })
})
