import { memoryLogger } from '@nvisy/provider-core'
import { describe, expect, it } from 'vitest'
import { RefusalLog } from './logging.js'

describe('RefusalLog', () => {
  it('20,000 refusals in one interval write maxLines lines and one summary with the count', () => {
    const logger = memoryLogger()
    let now = 0
    const log = new RefusalLog(logger, { maxLines: 10, intervalMs: 60_000, now: () => now })
    for (let i = 0; i < 20_000; i++) {
      now = i // all within the first minute
      log.refused(i % 2 ? 'a.check' : 'a.runs.start', { kind: 'validation' }, 'request refused')
    }
    expect(logger.lines).toHaveLength(10)
    log.flush()
    expect(logger.lines).toHaveLength(11)
    const summary = logger.lines[10]!
    expect(summary.level).toBe('warn')
    expect(summary.message).toBe('suppressed 19990 refused requests')
    expect(summary.fields).toMatchObject({
      suppressed: 19_990,
      bySubject: { 'a.check': 9995, 'a.runs.start': 9995 },
    })
    expect(logger.lines.every((l) => l.level === 'warn')).toBe(true)
    const bytes = logger.lines.map((l) => JSON.stringify(l)).join('\n').length
    expect(bytes).toBeLessThan(5_000)
  })

  it('a new interval logs again and first reports what the last one suppressed', () => {
    const logger = memoryLogger()
    let now = 0
    const log = new RefusalLog(logger, { maxLines: 2, intervalMs: 1000, now: () => now })
    for (let i = 0; i < 5; i++) log.refused('s', {}, `r${i}`)
    expect(logger.lines.map((l) => l.message)).toEqual(['r0', 'r1'])
    now = 1000
    log.refused('s', {}, 'r5')
    expect(logger.lines.map((l) => l.message)).toEqual([
      'r0',
      'r1',
      'suppressed 3 refused requests',
      'r5',
    ])
    log.close()
    expect(logger.lines).toHaveLength(4)
  })

  it('reports the count at the end of the interval even when no request follows', async () => {
    const logger = memoryLogger()
    const log = new RefusalLog(logger, { maxLines: 1, intervalMs: 50 })
    log.refused('s', {}, 'first')
    log.refused('s', {}, 'second')
    await new Promise((r) => setTimeout(r, 120))
    expect(logger.lines.map((l) => l.message)).toEqual(['first', 'suppressed 1 refused requests'])
  })
})
