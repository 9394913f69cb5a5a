// Message generators for fuzzing the NATS boundary: random bytes, truncated JSON, wrong
// types, huge strings, deep nesting, and valid messages with one field mutated. Seeded, so
// a failure can be replayed with NVISY_FUZZ_SEED.

/** mulberry32: small, fast, good enough to pick mutations. */
export function prng(seed: number) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const int = (max: number) => Math.floor(next() * max)
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!
  return { next, int, pick }
}
export type Random = ReturnType<typeof prng>

const encoder = new TextEncoder()
type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

/** Every JSON pointer-like path (as key arrays) in a value, the root included. */
function paths(value: Json, prefix: (string | number)[] = []): (string | number)[][] {
  const found = [prefix]
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) found.push(...paths(v, [...prefix, i]))
  } else if (value !== null && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) found.push(...paths(v, [...prefix, k]))
  return found
}

function setAt(
  root: Json,
  path: (string | number)[],
  replace: (old: Json) => Json | undefined,
): Json {
  if (path.length === 0) return replace(root) ?? null
  const copy = structuredClone(root) as Record<string | number, Json>
  let parent = copy as Record<string | number, Json>
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, Json>
  const last = path.at(-1)!
  const next = replace(parent[last]!)
  if (next === undefined) {
    if (Array.isArray(parent)) parent.splice(last as number, 1)
    else delete parent[last]
  } else parent[last] = next
  return copy
}

const ODD_STRINGS = [
  '',
  ' ',
  '../../etc/passwd',
  '/etc',
  '\u0000',
  '😀'.repeat(40),
  'a.b.c',
  '*',
  '>',
  'nvisy.runtime.v1.runs.start',
  'x'.repeat(129),
  '__proto__',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a log-injection probe, meant literally
  '${jndi:ldap://x}',
  '"; DROP TABLE t; --',
  '\ud800',
  `SX${'A'.repeat(56)}`,
  'XAAAA',
]
const ODD_NUMBERS = [0, -1, 1.5, 2 ** 53 + 1, -(2 ** 31), 1e308, -1e-308, Number.MAX_SAFE_INTEGER]

function oddValue(random: Random, depth = 0): Json {
  switch (random.int(depth > 1 ? 6 : 8)) {
    case 0:
      return null
    case 1:
      return random.next() < 0.5
    case 2:
      return random.pick(ODD_NUMBERS)
    case 3:
      return random.pick(ODD_STRINGS)
    case 4:
      return randomString(random, random.int(40))
    case 5:
      return random.int(1000)
    case 6:
      return Array.from({ length: random.int(4) }, () => oddValue(random, depth + 1))
    default: {
      const object: Record<string, Json> = {}
      for (let i = random.int(4); i > 0; i--)
        object[randomString(random, 6)] = oddValue(random, depth + 1)
      return object
    }
  }
}

function randomString(random: Random, length: number): string {
  let text = ''
  for (let i = 0; i < length; i++) {
    const r = random.next()
    text += String.fromCodePoint(
      r < 0.7 ? 32 + random.int(95) : r < 0.9 ? 0x80 + random.int(0x700) : random.int(0x20),
    )
  }
  return text
}

function nested(depth: number, open: string, close: string, inner = '0'): string {
  return open.repeat(depth) + inner + close.repeat(depth)
}

export type Mutation =
  | 'random-bytes'
  | 'truncated-json'
  | 'wrong-type'
  | 'huge-string'
  | 'deep-nesting'
  | 'one-field-mutated'
  | 'delete-field'
  | 'extra-field'
  | 'json-scalar'
  | 'bad-utf8'
  | 'proto-keys'
  | 'valid'

const MUTATIONS: readonly Mutation[] = [
  'random-bytes',
  'truncated-json',
  'wrong-type',
  'huge-string',
  'deep-nesting',
  'one-field-mutated',
  'one-field-mutated',
  'delete-field',
  'extra-field',
  'json-scalar',
  'bad-utf8',
  'proto-keys',
  'valid',
]

/** One message derived from a valid `base`, and the name of what was done to it. */
export function fuzzMessage(
  random: Random,
  base: Json,
  maxPayload: number,
): { mutation: Mutation; payload: Uint8Array } {
  const mutation = random.pick(MUTATIONS)
  const text = (value: Json) => encoder.encode(JSON.stringify(value))
  const all = paths(base)
  switch (mutation) {
    case 'random-bytes': {
      const bytes = new Uint8Array(random.int(random.next() < 0.1 ? 64_000 : 600))
      for (let i = 0; i < bytes.length; i++) bytes[i] = random.int(256)
      return { mutation, payload: bytes }
    }
    case 'truncated-json': {
      const full = JSON.stringify(base)
      return { mutation, payload: encoder.encode(full.slice(0, 1 + random.int(full.length - 1))) }
    }
    case 'wrong-type':
    case 'one-field-mutated':
      return {
        mutation,
        payload: text(
          setAt(base, random.pick(all.slice(1).length ? all.slice(1) : all), () =>
            oddValue(random),
          ),
        ),
      }
    case 'delete-field': {
      const target = all.slice(1)
      if (target.length === 0) return { mutation, payload: text(base) }
      return { mutation, payload: text(setAt(base, random.pick(target), () => undefined)) }
    }
    case 'extra-field': {
      const objects = all.filter((p) => {
        let v: Json = base
        for (const k of p) v = (v as Record<string | number, Json>)[k]!
        return v !== null && typeof v === 'object' && !Array.isArray(v)
      })
      const at = random.pick(objects)
      return {
        mutation,
        payload: text(
          setAt(base, at, (old) => ({
            ...(old as object),
            [randomString(random, 8)]: oddValue(random),
          })),
        ),
      }
    }
    case 'huge-string': {
      // Up to just under the server's max_payload.
      const size = Math.min(
        maxPayload - 4096,
        1000 + random.int(random.next() < 0.1 ? 900_000 : 100_000),
      )
      const huge = 'h'.repeat(Math.max(0, size))
      return { mutation, payload: text(setAt(base, random.pick(all), () => huge)) }
    }
    case 'deep-nesting': {
      const style = random.int(3)
      // Up to the deepest nesting that fits in the server's max_payload.
      const room = Math.floor((maxPayload - JSON.stringify(base).length - 1024) / 8)
      const depth = Math.min(random.pick([64, 1_000, 10_000, 50_000, 120_000]), room)
      if (style === 0) return { mutation, payload: encoder.encode(nested(depth, '[', ']')) }
      if (style === 1) return { mutation, payload: encoder.encode(nested(depth, '{"a":', '}')) }
      // A valid message with a deeply nested value in one field.
      const full = JSON.stringify(
        setAt(base, random.pick(all.slice(1).length ? all.slice(1) : all), () => '__DEEP__'),
      )
      return {
        mutation,
        payload: encoder.encode(full.replace('"__DEEP__"', nested(depth, '{"a":[', ']}'))),
      }
    }
    case 'json-scalar':
      return {
        mutation,
        payload: encoder.encode(
          random.pick(['null', '42', '"x"', '[]', 'true', '-0', '1e999', '[{}]', '""', '{}']),
        ),
      }
    case 'bad-utf8': {
      const full = encoder.encode(JSON.stringify(base))
      const at = random.int(full.length)
      const bad = new Uint8Array(full.length + 2)
      bad.set(full.subarray(0, at))
      bad.set([0xc3, 0x28], at)
      bad.set(full.subarray(at), at + 2)
      return { mutation, payload: bad }
    }
    case 'proto-keys': {
      const full = JSON.stringify(base)
      const injected = full.replace(
        /^\{/,
        `{"__proto__":{"polluted":true,"kind":"x"},"constructor":{"prototype":{"polluted":true}},`,
      )
      return {
        mutation,
        payload: encoder.encode(injected === full ? '{"__proto__":{}}' : injected),
      }
    }
    default:
      return { mutation: 'valid', payload: text(base) }
  }
}
