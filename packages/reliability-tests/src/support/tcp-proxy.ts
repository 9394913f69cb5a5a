// A TCP proxy between the runtime and a service, so a test can cut the service off (every
// connection reset, new ones refused) or slow it down without touching the real server.
import { createServer, type Server, Socket } from 'node:net'

export class TcpProxy {
  readonly #target: { host: string; port: number }
  #server: Server | undefined
  readonly #sockets = new Set<Socket>()
  #down = false
  #delayMs = 0
  /** Connections accepted (and passed through) so far. */
  accepted = 0
  /** Connections reset or refused while the proxy was down. */
  dropped = 0

  constructor(target: { host: string; port: number }) {
    this.#target = target
  }

  get port(): number {
    const address = this.#server?.address()
    if (!address || typeof address === 'string') throw new Error('proxy not listening')
    return address.port
  }

  async start(): Promise<this> {
    this.#server = createServer((client) => this.#accept(client))
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve))
    return this
  }

  #accept(client: Socket) {
    if (this.#down) {
      this.dropped++
      reset(client)
      return
    }
    this.accepted++
    const upstream = new Socket()
    upstream.connect(this.#target.port, this.#target.host)
    this.#sockets.add(client)
    this.#sockets.add(upstream)
    const close = () => {
      client.destroy()
      upstream.destroy()
      this.#sockets.delete(client)
      this.#sockets.delete(upstream)
    }
    client.on('error', close).on('close', close)
    upstream.on('error', close).on('close', close)
    this.#pipe(client, upstream)
    this.#pipe(upstream, client)
  }

  /**
   * Forward `from` to `to`, holding each chunk `delayMs` when a delay is set. Order is kept
   * even when the delay changes: a chunk never overtakes one still held (TCP never reorders;
   * a reordered PostgreSQL stream makes the client's parser throw).
   */
  #pipe(from: Socket, to: Socket) {
    let chain = Promise.resolve()
    let held = 0
    from.on('data', (chunk) => {
      if (this.#delayMs === 0 && held === 0) {
        if (!to.destroyed && !to.write(chunk)) from.pause()
        return
      }
      const delay = this.#delayMs
      held++
      chain = chain.then(
        () =>
          new Promise<void>((resolve) =>
            setTimeout(() => {
              held--
              if (!to.destroyed) to.write(chunk)
              resolve()
            }, delay),
          ),
      )
    })
    to.on('drain', () => from.resume())
  }

  /** Reset every open connection and refuse new ones for `ms`. */
  async cut(ms: number): Promise<void> {
    this.#down = true
    for (const socket of this.#sockets) {
      this.dropped++
      reset(socket)
    }
    this.#sockets.clear()
    await new Promise((resolve) => setTimeout(resolve, ms))
    this.#down = false
  }

  /** Hold every chunk in both directions for `ms` (0: pass at once). */
  setDelay(ms: number) {
    this.#delayMs = ms
  }

  async close() {
    this.#down = true
    for (const socket of this.#sockets) socket.destroy()
    await new Promise<void>((resolve) =>
      this.#server ? this.#server.close(() => resolve()) : resolve(),
    )
  }
}

/** Close with a TCP RST, like a server that died or a firewall that dropped the flow. */
function reset(socket: Socket) {
  try {
    socket.resetAndDestroy()
  } catch {
    socket.destroy()
  }
}
