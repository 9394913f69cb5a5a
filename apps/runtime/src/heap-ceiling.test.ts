import { describe, expect, it } from 'vitest'
import {
  DEFAULT_HEAP_CEILING_MB,
  HeapCeilingError,
  heapCeilingMb,
  OLD_GENERATION_FLOOR_MB,
  oldGenerationFloorFlag,
} from './heap-ceiling.js'

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

  it('gives the worker an old-generation floor on V8 before 13, unless the user set one or the ceiling is not above it', () => {
    const flag = `--initial-old-space-size=${OLD_GENERATION_FLOOR_MB}`
    // Node 20 and 22.
    expect(oldGenerationFloorFlag(192, '11.3.244.8-node.33', {}, [])).toBe(flag)
    expect(oldGenerationFloorFlag(192, '12.4.254.21-node.33', {}, [])).toBe(flag)
    // Node 24: measured to cost more RSS than the ceiling allows.
    expect(oldGenerationFloorFlag(192, '13.6.233.17-node.36', {}, [])).toBeUndefined()
    expect(oldGenerationFloorFlag(192, '14.0.1', {}, [])).toBeUndefined()
    expect(oldGenerationFloorFlag(192, 'not a version', {}, [])).toBeUndefined()
    // A floor the user gave Node wins.
    expect(
      oldGenerationFloorFlag(192, '11.3.244.8', {}, ['--initial-old-space-size=100']),
    ).toBeUndefined()
    expect(
      oldGenerationFloorFlag(192, '11.3.244.8', { NODE_OPTIONS: '--initial_old_space_size=8' }, []),
    ).toBeUndefined()
    // Another flag in the options does not stop it; a ceiling at or under the floor does.
    expect(
      oldGenerationFloorFlag(192, '11.3.244.8', { NODE_OPTIONS: '--max-semi-space-size=8' }, []),
    ).toBe(flag)
    expect(oldGenerationFloorFlag(OLD_GENERATION_FLOOR_MB, '11.3.244.8', {}, [])).toBeUndefined()
    expect(oldGenerationFloorFlag(OLD_GENERATION_FLOOR_MB + 1, '11.3.244.8', {}, [])).toBe(flag)
  })
})
