// A TCP proxy in front of a real server that counts the bytes passing through it, both ways,
// and can hold each chunk a while (to slow a run down so a test can stop it midway). What the
// runtime sends and receives through it is everything it moved: object bodies that pass
// through the runtime show up here, server-side copies do not.
import { createServer, type Server, Socket } from 'node:net'

export class CountingProxy {
  readonly #target: { host: string; port: number }
  #server: Server | undefined
  readonly #sockets = new Set<Socket>()
  #delayMs = 0
  /** Bytes from clients to the server. */
  sent = 0
  /** Bytes from the server to clients. */
  received = 0

  constructor(target: string) {
    const url = new URL(target)
    this.#target = { host: url.hostname, port: Number(url.port || 80) }
  }

  /** The proxy's endpoint URL (http). */
  get url(): string {
    const address = this.#server?.address()
    if (!address || typeof address === 'string') throw new Error('proxy not listening')
    return `http://127.0.0.1:${address.port}`
  }

  get total(): number {
    return this.sent + this.received
  }

  reset(): void {
    this.sent = 0
    this.received = 0
  }

  /** Hold every chunk this long before passing it on (0: at once). */
  setDelay(ms: number): void {
    this.#delayMs = ms
  }

  async start(): Promise<this> {
    this.#server = createServer((client) => this.#accept(client))
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve))
    return this
  }

  #accept(client: Socket): void {
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
    this.#pipe(client, upstream, (n) => {
      this.sent += n
    })
    this.#pipe(upstream, client, (n) => {
      this.received += n
    })
  }

  /** Forward in order, counting; a held chunk is never overtaken. */
  #pipe(from: Socket, to: Socket, count: (bytes: number) => void): void {
    let chain = Promise.resolve()
    let held = 0
    from.on('data', (chunk: Buffer) => {
      count(chunk.byteLength)
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

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy()
    await new Promise<void>((resolve) =>
      this.#server ? this.#server.close(() => resolve()) : resolve(),
    )
  }
}
