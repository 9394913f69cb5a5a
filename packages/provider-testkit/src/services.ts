import { connect, createServer } from 'node:net'

/** True when something accepts TCP connections at host:port within `timeoutMs`. */
export function tcpReachable(host: string, port: number, timeoutMs = 1500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}

export function servicesRequired(): boolean {
  return process.env.NVISY_REQUIRE_SERVICES === '1' || process.env.NVISY_REQUIRE_SERVICES === 'true'
}

/**
 * Decide whether a suite that needs a service runs. Returns `false` (run it) when the
 * service answers, a skip reason when it does not; with NVISY_REQUIRE_SERVICES=1 (CI) an
 * unreachable service throws, so nothing is skipped silently there.
 *
 *   const skip = await serviceSkipReason('PostgreSQL', url, () => tcpReachable('127.0.0.1', 5432))
 */
export async function serviceSkipReason(
  service: string,
  where: string,
  probe: () => Promise<boolean>,
): Promise<string | false> {
  let ok = false
  try {
    ok = await probe()
  } catch {
    ok = false
  }
  if (ok) return false
  const reason = `${service} is not reachable at ${where}; start it (see the repository README and recipes) or set its NVISY_TEST_*_URL`
  if (servicesRequired()) throw new Error(`NVISY_REQUIRE_SERVICES is set but ${reason}`)
  console.warn(`[nvisy] skipping: ${reason}`)
  return reason
}

/** host and port of a URL, with a default port. */
export function hostPort(url: string, defaultPort: number): { host: string; port: number } {
  const parsed = new URL(url)
  return {
    host: parsed.hostname.replace(/^\[|\]$/g, ''),
    port: parsed.port ? Number(parsed.port) : defaultPort,
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago, for a server a test starts itself. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}
