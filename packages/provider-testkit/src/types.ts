import type { ConnectInput, Data, ErrorKind, Provider } from '@nvisy/provider-core'

/**
 * What a provider's test gives the kit: a way to put numbered items into the system and
 * to see what a sink stored. Item numbers are the test's identity for an item: item `i`
 * always has the same key, and a higher number always sorts later in the source's
 * ordering (so items added later are "new data" for an incremental read).
 */
export interface ConformanceFixture<TStream = unknown, TSinkStream = unknown> {
  /** Once before the suite: create the schema, bucket, stream... */
  setup?(): Promise<void>
  /** Once after the suite. */
  teardown?(): Promise<void>
  /** Remove every item from the source stream and the sink stream. Called before each test. */
  clear(): Promise<void>
  /** Put items number `from` .. `from + count - 1` into the source stream. */
  seed(from: number, count: number): Promise<void>
  /** Source stream settings that read the seeded items. */
  stream: TStream
  /** The item number of an item the source yielded. */
  itemNumber(data: Data): number | Promise<number>
  /** Present when the provider writes. */
  sink?: {
    /** Sink stream settings. */
    stream: TSinkStream
    /** Item `i` as data to write; the same `i` always has the same key. */
    makeItem(i: number): Data
    /** An item this sink refuses on its own (constraint violation, invalid key...). */
    makeBadItem(): Data
    /** The item numbers stored in the sink stream, one entry per stored copy. */
    storedItems(): Promise<number[]>
  }
}

export interface ConformanceOptions<TStream = unknown, TSinkStream = unknown> {
  /** Suite name, usually the provider id. */
  name: string
  provider: Provider<any, any, any, any, any>
  /** Valid credentials and params. */
  input: () => ConnectInput | Promise<ConnectInput>
  /**
   * Credentials the service refuses. The secret field(s) must hold `canary`; the kit then
   * asserts the canary appears in no error message, stack, cause, property or log line.
   * Omit only for a provider with no credentials at all (a local directory).
   */
  badCredentials?: {
    input: (canary: string) => ConnectInput | Promise<ConnectInput>
    /** The error kind a refused credential gives. Default `auth`. */
    kind?: ErrorKind
  }
  /** Input the schemas refuse, and a JSON pointer the error must name (e.g. `/params/port`). */
  badParams: { input: ConnectInput; path: string }
  fixture: ConformanceFixture<TStream, TSinkStream>
  /** Items seeded for read tests. Default 25. */
  seedCount?: number
  /** A reason to skip the whole suite (a service is not reachable), or false. */
  skip?: string | false | undefined
  /** Test timeout in ms. Default 60 000. */
  timeoutMs?: number
}
