import { isMap, Struct, type Value } from './packstream.js'

/** A Neo4j status error: the code the driver puts on `error.code`. */
export class CypherError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

export type Properties = Record<string, Value>

export interface NodeRecord {
  readonly id: bigint
  readonly labels: Set<string>
  readonly props: Properties
  readonly outgoing: Set<RelRecord>
  readonly incoming: Set<RelRecord>
  deleted: boolean
}

export interface RelRecord {
  readonly id: bigint
  readonly type: string
  readonly start: NodeRecord
  readonly end: NodeRecord
  readonly props: Properties
  deleted: boolean
}

/** Undo steps of the running transaction, applied in reverse on rollback. */
export type UndoLog = (() => void)[]

export interface Stats {
  nodesCreated: number
  nodesDeleted: number
  relationshipsCreated: number
  relationshipsDeleted: number
  propertiesSet: number
  labelsAdded: number
  constraintsAdded: number
}

export function emptyStats(): Stats {
  return {
    nodesCreated: 0,
    nodesDeleted: 0,
    relationshipsCreated: 0,
    relationshipsDeleted: 0,
    propertiesSet: 0,
    labelsAdded: 0,
    constraintsAdded: 0,
  }
}

// Temporal and spatial structure signatures a property may hold (Bolt 5.x).
const STORABLE_STRUCTS = new Set([
  0x44, // Date
  0x54, // Time
  0x74, // LocalTime
  0x49, // DateTime (UTC)
  0x69, // DateTimeZoneId (UTC)
  0x64, // LocalDateTime
  0x45, // Duration
  0x58, // Point2D
  0x59, // Point3D
])

/** A hash key under which Cypher-equal values meet (1 = 1.0), or undefined when not indexable. */
export function valueKey(value: Value | undefined): string | undefined {
  switch (typeof value) {
    case 'bigint':
      return `n${value}`
    case 'number':
      if (Number.isNaN(value)) return undefined
      return Number.isInteger(value) ? `n${BigInt(value)}` : `n${value}`
    case 'string':
      return `s${value}`
    case 'boolean':
      return `b${value}`
    default:
      return undefined
  }
}

const isNumber = (v: Value): v is number | bigint => typeof v === 'number' || typeof v === 'bigint'

function compareNumbers(a: number | bigint, b: number | bigint): number {
  if (typeof a === 'bigint' && typeof b === 'bigint') return a < b ? -1 : a > b ? 1 : 0
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : 0
  const [x, y] = [Number(a), Number(b)]
  if (x !== y) return x < y ? -1 : 1
  // Equal as doubles: compare exactly when the float is integral.
  const float = typeof a === 'number' ? a : (b as number)
  if (!Number.isInteger(float)) return 0
  const [bx, by] = [typeof a === 'bigint' ? a : BigInt(a), typeof b === 'bigint' ? b : BigInt(b)]
  return bx < by ? -1 : bx > by ? 1 : 0
}

/** Cypher `=`: null when either side is null. */
export function cypherEquals(a: Value, b: Value): boolean | null {
  if (a === null || b === null) return null
  if (isNumber(a) && isNumber(b)) return compareNumbers(a, b) === 0
  if (typeof a !== typeof b) return false
  if (typeof a !== 'object') return a === b
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return a instanceof Uint8Array && b instanceof Uint8Array && Buffer.compare(a, b) === 0
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false
    return a.every((item, i) => cypherEquals(item, b[i]!) === true)
  }
  if (a instanceof Struct || b instanceof Struct) {
    return (
      a instanceof Struct &&
      b instanceof Struct &&
      a.signature === b.signature &&
      a.fields.length === b.fields.length &&
      a.fields.every((f, i) => cypherEquals(f, b.fields[i]!) === true)
    )
  }
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  if (ka.length !== kb.length) return false
  const bm = b as Properties
  return ka.every(
    (k) => Object.hasOwn(bm, k) && cypherEquals((a as Properties)[k]!, bm[k]!) === true,
  )
}

/** Cypher `<`/`>` comparison: null when the values are not comparable. */
export function cypherCompare(a: Value, b: Value): number | null {
  if (a === null || b === null) return null
  if (isNumber(a) && isNumber(b)) return compareNumbers(a, b)
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b)
  return null
}

function orderRank(v: Value): number {
  if (v === null) return 9
  if (isNumber(v)) return 4
  if (typeof v === 'boolean') return 3
  if (typeof v === 'string') return 2
  return 1
}

/** ORDER BY: a total order (strings before booleans before numbers, null last). */
export function cypherOrder(a: Value, b: Value): number {
  const c = cypherCompare(a, b)
  if (c !== null) return c
  return orderRank(a) - orderRank(b)
}

function describeValue(v: Value): string {
  if (v === null) return 'NO_VALUE'
  if (typeof v === 'string') return `String("${v}")`
  if (typeof v === 'bigint') return `Long(${v})`
  if (typeof v === 'number') return `Double(${v})`
  if (typeof v === 'boolean') return `Boolean(${v})`
  if (Array.isArray(v)) return `List{${v.map(describeValue).join(', ')}}`
  if (isMap(v)) {
    return `Map{${Object.entries(v)
      .map(([k, x]) => `${k} -> ${describeValue(x)}`)
      .join(', ')}}`
  }
  return 'Value'
}

function scalarCategory(v: Value): string | undefined {
  if (typeof v === 'bigint' || typeof v === 'number') return 'number'
  if (typeof v === 'string' || typeof v === 'boolean') return typeof v
  if (v instanceof Uint8Array) return 'bytes'
  if (v instanceof Struct && STORABLE_STRUCTS.has(v.signature)) return `struct${v.signature}`
  return undefined
}

/** Neo4j stores primitives, temporal/spatial values and homogeneous lists of them; nothing else. */
export function checkStorable(value: Value): void {
  if (value === null || scalarCategory(value) !== undefined) return
  if (Array.isArray(value)) {
    let category: string | undefined
    for (const item of value) {
      const c = item === null ? undefined : scalarCategory(item)
      if (c === undefined || c === 'bytes') {
        throw new CypherError(
          'Neo.ClientError.Statement.TypeError',
          `Property values can only be of primitive types or arrays thereof. Encountered: ${describeValue(value)}.`,
        )
      }
      category ??= c
      if (c !== category) {
        throw new CypherError(
          'Neo.ClientError.Statement.TypeError',
          'Collections containing mixed types can not be stored in properties.',
        )
      }
    }
    return
  }
  throw new CypherError(
    'Neo.ClientError.Statement.TypeError',
    `Property values can only be of primitive types or arrays thereof. Encountered: ${describeValue(value)}.`,
  )
}

interface Constraint {
  name: string
  label: string
  property: string
}

/** One database: nodes, relationships, label and property indexes, uniqueness constraints. */
export class Graph {
  private nextNodeId = 0n
  private nextRelId = 0n
  readonly nodes = new Map<bigint, NodeRecord>()
  readonly rels = new Map<bigint, RelRecord>()
  private readonly byLabel = new Map<string, Set<NodeRecord>>()
  /** label \0 property -> value key -> nodes. Built on first use, kept up to date after. */
  private readonly indexes = new Map<string, Map<string, Set<NodeRecord>>>()
  private readonly indexesByLabel = new Map<string, string[]>()
  readonly constraints = new Map<string, Constraint>()

  constructor(readonly name: string) {}

  nodesWithLabel(label: string): Iterable<NodeRecord> {
    return this.byLabel.get(label) ?? []
  }

  /** Nodes with `label` whose `property` equals `value`, through the (lazily built) index. */
  lookup(label: string, property: string, value: Value): Iterable<NodeRecord> | undefined {
    const key = valueKey(value)
    if (key === undefined) return undefined
    return this.index(label, property).get(key) ?? []
  }

  private index(label: string, property: string): Map<string, Set<NodeRecord>> {
    const name = `${label}\u0000${property}`
    let index = this.indexes.get(name)
    if (index) return index
    index = new Map()
    for (const node of this.nodesWithLabel(label)) {
      const key = valueKey(node.props[property])
      if (key !== undefined) addTo(index, key, node)
    }
    this.indexes.set(name, index)
    const list = this.indexesByLabel.get(label) ?? []
    list.push(property)
    this.indexesByLabel.set(label, list)
    return index
  }

  private indexNode(node: NodeRecord, label: string, property: string, add: boolean): void {
    const index = this.indexes.get(`${label}\u0000${property}`)
    if (!index) return
    const key = valueKey(node.props[property])
    if (key === undefined) return
    if (add) addTo(index, key, node)
    else index.get(key)?.delete(node)
  }

  private checkUnique(node: NodeRecord, label: string, property: string): void {
    for (const c of this.constraints.values()) {
      if (c.label !== label || c.property !== property) continue
      const value = node.props[property]
      if (value === undefined || value === null) continue
      for (const other of this.lookup(label, property, value) ?? []) {
        if (other !== node) {
          throw new CypherError(
            'Neo.ClientError.Schema.ConstraintValidationFailed',
            `Node(${other.id}) already exists with label \`${label}\` and property \`${property}\` = ${describeValue(value)}`,
          )
        }
      }
    }
  }

  createNode(labels: Iterable<string>, undo: UndoLog | undefined): NodeRecord {
    const node: NodeRecord = {
      id: this.nextNodeId++,
      labels: new Set(),
      props: Object.create(null) as Properties,
      outgoing: new Set(),
      incoming: new Set(),
      deleted: false,
    }
    this.nodes.set(node.id, node)
    undo?.push(() => {
      for (const label of node.labels) this.byLabel.get(label)?.delete(node)
      this.nodes.delete(node.id)
      node.deleted = true
    })
    for (const label of labels) this.addLabel(node, label, undo)
    return node
  }

  addLabel(node: NodeRecord, label: string, undo: UndoLog | undefined): boolean {
    if (node.labels.has(label)) return false
    node.labels.add(label)
    addTo(this.byLabel, label, node)
    for (const property of this.indexesByLabel.get(label) ?? [])
      this.indexNode(node, label, property, true)
    undo?.push(() => {
      for (const property of this.indexesByLabel.get(label) ?? [])
        this.indexNode(node, label, property, false)
      node.labels.delete(label)
      this.byLabel.get(label)?.delete(node)
    })
    for (const property of Object.keys(node.props)) this.checkUnique(node, label, property)
    return true
  }

  setNodeProperty(
    node: NodeRecord,
    property: string,
    value: Value,
    undo: UndoLog | undefined,
  ): void {
    checkStorable(value)
    const previous = node.props[property]
    for (const label of node.labels) this.indexNode(node, label, property, false)
    if (value === null) delete node.props[property]
    else node.props[property] = value
    for (const label of node.labels) this.indexNode(node, label, property, true)
    undo?.push(() => {
      for (const label of node.labels) this.indexNode(node, label, property, false)
      if (previous === undefined) delete node.props[property]
      else node.props[property] = previous
      for (const label of node.labels) this.indexNode(node, label, property, true)
    })
    for (const label of node.labels) this.checkUnique(node, label, property)
  }

  createRel(
    type: string,
    start: NodeRecord,
    end: NodeRecord,
    undo: UndoLog | undefined,
  ): RelRecord {
    const rel: RelRecord = {
      id: this.nextRelId++,
      type,
      start,
      end,
      props: Object.create(null) as Properties,
      deleted: false,
    }
    this.rels.set(rel.id, rel)
    start.outgoing.add(rel)
    end.incoming.add(rel)
    undo?.push(() => this.unlinkRel(rel))
    return rel
  }

  setRelProperty(rel: RelRecord, property: string, value: Value, undo: UndoLog | undefined): void {
    checkStorable(value)
    const previous = rel.props[property]
    if (value === null) delete rel.props[property]
    else rel.props[property] = value
    undo?.push(() => {
      if (previous === undefined) delete rel.props[property]
      else rel.props[property] = previous
    })
  }

  private unlinkRel(rel: RelRecord): void {
    rel.start.outgoing.delete(rel)
    rel.end.incoming.delete(rel)
    this.rels.delete(rel.id)
    rel.deleted = true
  }

  deleteRel(rel: RelRecord, undo: UndoLog | undefined): boolean {
    if (rel.deleted) return false
    this.unlinkRel(rel)
    undo?.push(() => {
      rel.deleted = false
      this.rels.set(rel.id, rel)
      rel.start.outgoing.add(rel)
      rel.end.incoming.add(rel)
    })
    return true
  }

  deleteNode(node: NodeRecord, undo: UndoLog | undefined): boolean {
    if (node.deleted) return false
    if (node.outgoing.size > 0 || node.incoming.size > 0) {
      throw new CypherError(
        'Neo.ClientError.Schema.ConstraintValidationFailed',
        `Cannot delete node<${node.id}>, because it still has relationships. To delete this node, you must first delete its relationships.`,
      )
    }
    for (const label of node.labels) {
      this.byLabel.get(label)?.delete(node)
      for (const property of this.indexesByLabel.get(label) ?? [])
        this.indexNode(node, label, property, false)
    }
    this.nodes.delete(node.id)
    node.deleted = true
    undo?.push(() => {
      node.deleted = false
      this.nodes.set(node.id, node)
      for (const label of node.labels) {
        addTo(this.byLabel, label, node)
        for (const property of this.indexesByLabel.get(label) ?? [])
          this.indexNode(node, label, property, true)
      }
    })
    return true
  }

  /** CREATE CONSTRAINT ... REQUIRE n.p IS UNIQUE: fails when existing data already violates it. */
  createUniqueConstraint(
    name: string,
    label: string,
    property: string,
    ifNotExists: boolean,
  ): boolean {
    for (const c of this.constraints.values()) {
      if (c.name === name || (c.label === label && c.property === property)) {
        if (ifNotExists) return false
        throw new CypherError(
          'Neo.ClientError.Schema.EquivalentSchemaRuleAlreadyExists',
          `An equivalent constraint already exists, '${c.name}'.`,
        )
      }
    }
    const seen = new Set<string>()
    for (const node of this.nodesWithLabel(label)) {
      const key = valueKey(node.props[property])
      if (key === undefined) continue
      if (seen.has(key)) {
        throw new CypherError(
          'Neo.ClientError.Schema.ConstraintCreationFailed',
          `Unable to create constraint ${name}: nodes with label \`${label}\` share a value of \`${property}\``,
        )
      }
      seen.add(key)
    }
    this.index(label, property)
    this.constraints.set(name, { name, label, property })
    return true
  }

  clear(): void {
    this.nodes.clear()
    this.rels.clear()
    this.byLabel.clear()
    this.indexes.clear()
    this.indexesByLabel.clear()
    this.constraints.clear()
  }
}

function addTo<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  let set = map.get(key)
  if (!set) {
    set = new Set()
    map.set(key, set)
  }
  set.add(value)
}
