// A flood of bad requests through the dispatcher (real NATS) writes a bounded log.
import { randomBytes } from 'node:crypto'
import { connect } from '@nats-io/transport-node'
import { createSubjects } from '@nvisy/protocol'
import { memoryLogger } from '@nvisy/provider-core'
import { fsProvider } from '@nvisy/provider-fs'
import { serviceSkipReason, tcpReachable } from '@nvisy/provider-testkit'
import { describe, expect, it } from 'vitest'
import { executePipeline } from '../executor/index.js'
import { MapProviderRegistry } from '../registry.js'
import { startDispatcher } from './index.js'

const NATS_URL = process.env.NVISY_TEST_NATS_URL ?? 'nats://127.0.0.1:4222'
const natsHost = new URL(NATS_URL)
const skip = await serviceSkipReason('NATS (JetStream)', NATS_URL, () =>
  tcpReachable(natsHost.hostname, Number(natsHost.port || 4222)),
)

describe.skipIf(skip)('refused requests are logged with a rate limit', () => {
  it('2,000 bad messages: every one answered, at most 10 refusal lines, counts kept', async () => {
    const suffix = `flood${randomBytes(4).toString('hex')}`
    const naming = {
      prefix: `nvisytest.${suffix}.v1`,
      eventsStream: `NVISY_TEST_EVENTS_${suffix}`,
      checkpointBucket: `nvisy-test-checkpoints-${suffix}`,
      queueGroup: `nvisy-runtime-${suffix}`,
      nonceBucket: `nvisy-test-nonces-${suffix}`,
    }
    const logger = memoryLogger()
    const dispatcher = await startDispatcher({
      servers: NATS_URL,
      registry: new MapProviderRegistry([fsProvider]),
      execute: executePipeline,
      logger,
      naming,
    })
    const nc = await connect({ servers: NATS_URL })
    try {
      const subjects = createSubjects(naming.prefix)
      const before = logger.lines.length
      const N = 2000
      const replies = await Promise.all(
        Array.from({ length: N }, (_, i) =>
          nc
            .request(
              i % 2 ? subjects.check : subjects.runsStart,
              new TextEncoder().encode(i % 4 === 0 ? 'not json' : JSON.stringify({ bad: i })),
              { timeout: 20_000 },
            )
            .then((m) => JSON.parse(new TextDecoder().decode(m.data))),
        ),
      )
      expect(replies.every((r) => r.error !== undefined)).toBe(true)
      const refusalLines = logger.lines
        .slice(before)
        .filter((l) => /request refused|request failed/.test(l.message ?? ''))
      expect(refusalLines.length).toBeLessThanOrEqual(10)
      expect(refusalLines.every((l) => l.level === 'warn')).toBe(true)
      // Closing reports what was suppressed: every refusal is counted.
      await dispatcher.close()
      const summary = logger.lines.find((l) =>
        /^suppressed \d+ refused requests$/.test(l.message ?? ''),
      )
      expect(summary?.level).toBe('warn')
      expect((summary?.fields as { suppressed: number }).suppressed + refusalLines.length).toBe(N)
    } finally {
      await nc.close()
      await dispatcher.close().catch(() => {})
    }
  }, 60_000)
})
