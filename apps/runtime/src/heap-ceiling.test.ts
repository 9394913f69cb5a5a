import { describe, expect, it } from 'vitest'
import { DEFAULT_HEAP_CEILING_MB, HeapCeilingError, heapCeilingMb } from './heap-ceiling.js'

describe('heap ceiling', () => {
  it('applies to run and serve by default, not to other commands or help', () => {
    expect(heapCeilingMb(['run', 'p.json'], {}, [])).toBe(DEFAULT_HEAP_CEILING_MB)
    expect(heapCeilingMb(['serve'], {}, [])).toBe(DEFAULT_HEAP_CEILING_MB)
    expect(heapCeilingMb(['validate', 'p.json'], {}, [])).toBeUndefined()
    expect(heapCeilingMb(['check', 'c.json'], {}, [])).toBeUndefined()
    expect(heapCeilingMb(['run', '--help'], {}, [])).toBeUndefined()
    expect(heapCeilingMb([], {}, [])).toBeUndefined()
  })

  it('takes NVISY_MAX_HEAP_MB, 0 for none, and a ceiling the user gave Node wins', () => {
    expect(heapCeilingMb(['run'], { NVISY_MAX_HEAP_MB: '512' }, [])).toBe(512)
    expect(heapCeilingMb(['run'], { NVISY_MAX_HEAP_MB: '0' }, [])).toBeUndefined()
    expect(heapCeilingMb(['run'], {}, ['--max-old-space-size=900'])).toBeUndefined()
    expect(
      heapCeilingMb(
        ['run'],
        { NODE_OPTIONS: '--max_old_space_size=900', NVISY_MAX_HEAP_MB: '200' },
        [],
      ),
    ).toBeUndefined()
  })

  it('refuses a setting that is not a whole number of MB, or too small, naming the variable', () => {
    for (const bad of ['abc', '1.5', '-3', '12MB']) {
      expect(() => heapCeilingMb(['run'], { NVISY_MAX_HEAP_MB: bad }, [])).toThrow(HeapCeilingError)
      expect(() => heapCeilingMb(['run'], { NVISY_MAX_HEAP_MB: bad }, [])).toThrow(
        /NVISY_MAX_HEAP_MB must be a whole number of megabytes/,
      )
    }
    expect(() => heapCeilingMb(['run'], { NVISY_MAX_HEAP_MB: '16' }, [])).toThrow(/at least 64/)
  })
})
