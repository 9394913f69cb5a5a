/**
 * The Cypher subset the Neo4j provider (and its tests) emit, parsed by hand and run over
 * the in-memory graph. Anything outside it is refused with Neo.ClientError.Statement.SyntaxError.
 *
 *   clause  := UNWIND expr AS v
 *            | [OPTIONAL] MATCH pattern [WHERE cond]
 *            | MERGE pattern
 *            | SET item, ...            item := v += expr | v.p = expr | v:L[:L...]
 *            | [DETACH] DELETE v, ...
 *            | RETURN proj, ... [ORDER BY expr [ASC|DESC], ...] [SKIP expr] [LIMIT expr]
 *            | CREATE CONSTRAINT [name] [IF NOT EXISTS] FOR (v:L) REQUIRE v.p IS UNIQUE
 *   pattern := (v:L:... {p: expr, ...}) [ -[v:T|T... {p: expr}]-> (v:L {p: expr}) ]
 *   cond    := cond AND cond | expr (> | >= | < | <= | = | <>) expr | expr IS [NOT] NULL
 *   expr    := $param | v | expr.p | literal | count(v | *) | elementId(v) | labels(v) | type(v)
 */
import {
  CypherError,
  cypherCompare,
  cypherEquals,
  cypherOrder,
  type Graph,
  type NodeRecord,
  type RelRecord,
  type Stats,
  type UndoLog,
} from './graph.js'
import { isMap, type Struct, type Value } from './packstream.js'

// ------------------------------------------------------------------------- tokens

type Token =
  | { t: 'id'; v: string; quoted: boolean }
  | { t: 'param'; v: string }
  | { t: 'str'; v: string }
  | { t: 'int'; v: bigint }
  | { t: 'float'; v: number }
  | { t: 'sym'; v: string }
  | { t: 'eof' }

const SYMBOLS = [
  '+=',
  '->',
  '<>',
  '>=',
  '<=',
  '(',
  ')',
  '[',
  ']',
  '{',
  '}',
  ':',
  ',',
  '.',
  '=',
  '>',
  '<',
  '-',
  '|',
  '*',
]

function syntaxError(message: string): CypherError {
  return new CypherError('Neo.ClientError.Statement.SyntaxError', message)
}

function tokenize(query: string): Token[] {
  const tokens: Token[] = []
  let i = 0
  while (i < query.length) {
    const c = query[i]!
    if (/\s/.test(c)) {
      i++
      continue
    }
    if (c === '`') {
      let v = ''
      i++
      for (;;) {
        if (i >= query.length) throw syntaxError('unterminated `quoted` name')
        if (query[i] === '`') {
          if (query[i + 1] === '`') {
            v += '`'
            i += 2
            continue
          }
          i++
          break
        }
        v += query[i++]
      }
      if (v === '') throw syntaxError("'``' is not a valid name")
      tokens.push({ t: 'id', v, quoted: true })
      continue
    }
    if (c === "'" || c === '"') {
      let v = ''
      i++
      for (;;) {
        if (i >= query.length) throw syntaxError('unterminated string literal')
        const d = query[i]!
        if (d === '\\') {
          const e = query[i + 1]
          v += e === 'n' ? '\n' : e === 't' ? '\t' : (e ?? '')
          i += 2
          continue
        }
        if (d === c) {
          i++
          break
        }
        v += d
        i++
      }
      tokens.push({ t: 'str', v })
      continue
    }
    if (c === '$') {
      const m = /^\$([A-Za-z_][A-Za-z0-9_]*)/.exec(query.slice(i))
      if (!m) throw syntaxError(`invalid parameter at offset ${i}`)
      tokens.push({ t: 'param', v: m[1]! })
      i += m[0].length
      continue
    }
    const num = /^\d+(\.\d+)?/.exec(query.slice(i, i + 40))
    if (num) {
      tokens.push(num[1] ? { t: 'float', v: Number(num[0]) } : { t: 'int', v: BigInt(num[0]) })
      i += num[0].length
      continue
    }
    const ident = /^[A-Za-z_][A-Za-z0-9_]*/.exec(query.slice(i, i + 200))
    if (ident) {
      tokens.push({ t: 'id', v: ident[0], quoted: false })
      i += ident[0].length
      continue
    }
    const sym = SYMBOLS.find((s) => query.startsWith(s, i))
    if (!sym) throw syntaxError(`Invalid input '${c}' (offset: ${i})`)
    tokens.push({ t: 'sym', v: sym })
    i += sym.length
  }
  tokens.push({ t: 'eof' })
  return tokens
}

// ------------------------------------------------------------------------- AST

export type Expr =
  | { k: 'param'; name: string }
  | { k: 'var'; name: string }
  | { k: 'prop'; target: Expr; name: string }
  | { k: 'lit'; value: Value }
  | { k: 'count'; arg: Expr | '*' }
  | { k: 'fn'; name: 'elementId' | 'labels' | 'type'; arg: Expr }

type Cond =
  | { k: 'cmp'; op: '>' | '>=' | '<' | '<=' | '=' | '<>'; left: Expr; right: Expr }
  | { k: 'null'; expr: Expr; negated: boolean }
  | { k: 'and'; left: Cond; right: Cond }

interface NodePattern {
  name: string | undefined
  labels: string[]
  props: [string, Expr][]
}

interface RelPattern {
  name: string | undefined
  types: string[]
  props: [string, Expr][]
}

interface Pattern {
  start: NodePattern
  rel?: { rel: RelPattern; end: NodePattern }
}

type SetItem =
  | { k: 'merge'; name: string; expr: Expr }
  | { k: 'prop'; name: string; prop: string; expr: Expr }
  | { k: 'labels'; name: string; labels: string[] }

type Clause =
  | { k: 'unwind'; expr: Expr; as: string }
  | { k: 'match'; optional: boolean; pattern: Pattern; where: Cond | undefined }
  | { k: 'merge'; pattern: Pattern }
  | { k: 'set'; items: SetItem[] }
  | { k: 'delete'; detach: boolean; names: string[] }
  | {
      k: 'return'
      items: { expr: Expr; alias: string }[]
      orderBy: { expr: Expr; desc: boolean }[]
      skip: Expr | undefined
      limit: Expr | undefined
    }
  | { k: 'constraint'; name: string | undefined; ifNotExists: boolean; label: string; prop: string }

export interface Statement {
  clauses: Clause[]
  fields: string[]
  writes: boolean
}

// ------------------------------------------------------------------------- parser

class Parser {
  private at = 0
  constructor(
    private readonly tokens: Token[],
    private readonly text: string,
  ) {}

  private peek(offset = 0): Token {
    return this.tokens[Math.min(this.at + offset, this.tokens.length - 1)]!
  }

  private next(): Token {
    return this.tokens[this.at++]!
  }

  private isKeyword(word: string, offset = 0): boolean {
    const t = this.peek(offset)
    return t.t === 'id' && !t.quoted && t.v.toUpperCase() === word
  }

  private keyword(word: string): void {
    if (!this.isKeyword(word)) throw this.unexpected(word)
    this.at++
  }

  private isSym(sym: string): boolean {
    const t = this.peek()
    return t.t === 'sym' && t.v === sym
  }

  private sym(sym: string): void {
    if (!this.isSym(sym)) throw this.unexpected(`'${sym}'`)
    this.at++
  }

  private unexpected(expected: string): CypherError {
    const t = this.peek()
    const got = t.t === 'eof' ? 'end of input' : `'${String(t.v)}'`
    return syntaxError(
      `Invalid input ${got}: expected ${expected} (query: ${this.text.slice(0, 200)})`,
    )
  }

  private name(): string {
    const t = this.next()
    if (t.t !== 'id') {
      this.at--
      throw this.unexpected('a name')
    }
    return t.v
  }

  parse(): Clause[] {
    const clauses: Clause[] = []
    while (this.peek().t !== 'eof') clauses.push(this.clause())
    if (clauses.length === 0) throw syntaxError('empty query')
    return clauses
  }

  private clause(): Clause {
    if (this.isKeyword('UNWIND')) {
      this.at++
      const expr = this.expr()
      this.keyword('AS')
      return { k: 'unwind', expr, as: this.name() }
    }
    if (this.isKeyword('OPTIONAL') || this.isKeyword('MATCH')) {
      const optional = this.isKeyword('OPTIONAL')
      if (optional) this.at++
      this.keyword('MATCH')
      const pattern = this.pattern()
      let where: Cond | undefined
      if (this.isKeyword('WHERE')) {
        this.at++
        where = this.cond()
      }
      return { k: 'match', optional, pattern, where }
    }
    if (this.isKeyword('MERGE')) {
      this.at++
      return { k: 'merge', pattern: this.pattern() }
    }
    if (this.isKeyword('SET')) {
      this.at++
      const items: SetItem[] = [this.setItem()]
      while (this.isSym(',')) {
        this.at++
        items.push(this.setItem())
      }
      return { k: 'set', items }
    }
    if (this.isKeyword('DETACH') || this.isKeyword('DELETE')) {
      const detach = this.isKeyword('DETACH')
      if (detach) this.at++
      this.keyword('DELETE')
      const names = [this.name()]
      while (this.isSym(',')) {
        this.at++
        names.push(this.name())
      }
      return { k: 'delete', detach, names }
    }
    if (this.isKeyword('RETURN')) return this.returnClause()
    if (this.isKeyword('CREATE') && this.isKeyword('CONSTRAINT', 1)) return this.constraint()
    throw this.unexpected('UNWIND, MATCH, MERGE, SET, DELETE, RETURN or CREATE CONSTRAINT')
  }

  private constraint(): Clause {
    this.at += 2
    let name: string | undefined
    if (!this.isKeyword('IF') && !this.isKeyword('FOR')) name = this.name()
    let ifNotExists = false
    if (this.isKeyword('IF')) {
      this.at++
      this.keyword('NOT')
      this.keyword('EXISTS')
      ifNotExists = true
    }
    this.keyword('FOR')
    this.sym('(')
    const v = this.name()
    this.sym(':')
    const label = this.name()
    this.sym(')')
    this.keyword('REQUIRE')
    if (this.name() !== v)
      throw syntaxError('constraint property must belong to the pattern variable')
    this.sym('.')
    const prop = this.name()
    this.keyword('IS')
    this.keyword('UNIQUE')
    return { k: 'constraint', name, ifNotExists, label, prop }
  }

  private returnClause(): Clause {
    this.at++
    const items: { expr: Expr; alias: string }[] = []
    do {
      if (items.length > 0) this.at++
      const start = this.at
      const expr = this.expr()
      let alias: string
      if (this.isKeyword('AS')) {
        this.at++
        alias = this.name()
      } else {
        alias = this.tokens
          .slice(start, this.at)
          .map((t) => ('v' in t ? String(t.v) : ''))
          .join('')
      }
      items.push({ expr, alias })
    } while (this.isSym(','))
    const orderBy: { expr: Expr; desc: boolean }[] = []
    if (this.isKeyword('ORDER')) {
      this.at++
      this.keyword('BY')
      do {
        if (orderBy.length > 0) this.at++
        const expr = this.expr()
        let desc = false
        if (this.isKeyword('DESC') || this.isKeyword('DESCENDING')) {
          desc = true
          this.at++
        } else if (this.isKeyword('ASC') || this.isKeyword('ASCENDING')) this.at++
        orderBy.push({ expr, desc })
      } while (this.isSym(','))
    }
    let skip: Expr | undefined
    let limit: Expr | undefined
    if (this.isKeyword('SKIP')) {
      this.at++
      skip = this.expr()
    }
    if (this.isKeyword('LIMIT')) {
      this.at++
      limit = this.expr()
    }
    if (this.peek().t !== 'eof') throw this.unexpected('end of query after RETURN')
    return { k: 'return', items, orderBy, skip, limit }
  }

  private setItem(): SetItem {
    const name = this.name()
    if (this.isSym('+=')) {
      this.at++
      return { k: 'merge', name, expr: this.expr() }
    }
    if (this.isSym('.')) {
      this.at++
      const prop = this.name()
      this.sym('=')
      return { k: 'prop', name, prop, expr: this.expr() }
    }
    if (this.isSym(':')) return { k: 'labels', name, labels: this.labels() }
    throw this.unexpected("'+=', '.' or ':'")
  }

  private labels(): string[] {
    const labels: string[] = []
    while (this.isSym(':')) {
      this.at++
      labels.push(this.name())
    }
    return labels
  }

  private propMap(): [string, Expr][] {
    const props: [string, Expr][] = []
    if (!this.isSym('{')) return props
    this.at++
    if (!this.isSym('}')) {
      do {
        if (props.length > 0) this.at++
        const key = this.name()
        this.sym(':')
        props.push([key, this.expr()])
      } while (this.isSym(','))
    }
    this.sym('}')
    return props
  }

  private nodePattern(): NodePattern {
    this.sym('(')
    const name = this.peek().t === 'id' ? this.name() : undefined
    const labels = this.labels()
    const props = this.propMap()
    this.sym(')')
    return { name, labels, props }
  }

  private pattern(): Pattern {
    const start = this.nodePattern()
    if (!this.isSym('-')) return { start }
    this.at++
    this.sym('[')
    const name = this.peek().t === 'id' ? this.name() : undefined
    const types: string[] = []
    if (this.isSym(':')) {
      this.at++
      types.push(this.name())
      while (this.isSym('|')) {
        this.at++
        if (this.isSym(':')) this.at++
        types.push(this.name())
      }
    }
    const props = this.propMap()
    this.sym(']')
    this.sym('->')
    const end = this.nodePattern()
    return { start, rel: { rel: { name, types, props }, end } }
  }

  private cond(): Cond {
    let left = this.comparison()
    while (this.isKeyword('AND')) {
      this.at++
      left = { k: 'and', left, right: this.comparison() }
    }
    return left
  }

  private comparison(): Cond {
    const left = this.expr()
    if (this.isKeyword('IS')) {
      this.at++
      const negated = this.isKeyword('NOT')
      if (negated) this.at++
      this.keyword('NULL')
      return { k: 'null', expr: left, negated }
    }
    const t = this.peek()
    if (t.t === 'sym' && ['>', '>=', '<', '<=', '=', '<>'].includes(t.v)) {
      this.at++
      return { k: 'cmp', op: t.v as '>', left, right: this.expr() }
    }
    throw this.unexpected('a comparison')
  }

  private expr(): Expr {
    let expr = this.atom()
    while (this.isSym('.')) {
      this.at++
      expr = { k: 'prop', target: expr, name: this.name() }
    }
    return expr
  }

  private atom(): Expr {
    const t = this.next()
    switch (t.t) {
      case 'param':
        return { k: 'param', name: t.v }
      case 'str':
        return { k: 'lit', value: t.v }
      case 'int':
        return { k: 'lit', value: t.v }
      case 'float':
        return { k: 'lit', value: t.v }
      case 'sym':
        if (t.v === '-') {
          const n = this.next()
          if (n.t === 'int') return { k: 'lit', value: -n.v }
          if (n.t === 'float') return { k: 'lit', value: -n.v }
        }
        break
      case 'id': {
        if (!t.quoted) {
          const upper = t.v.toUpperCase()
          if (upper === 'NULL') return { k: 'lit', value: null }
          if (upper === 'TRUE') return { k: 'lit', value: true }
          if (upper === 'FALSE') return { k: 'lit', value: false }
          if (this.isSym('(')) {
            this.at++
            const lower = t.v.toLowerCase()
            let result: Expr
            if (lower === 'count') {
              if (this.isSym('*')) {
                this.at++
                result = { k: 'count', arg: '*' }
              } else result = { k: 'count', arg: this.expr() }
            } else if (lower === 'elementid' || lower === 'labels' || lower === 'type') {
              const name = lower === 'elementid' ? 'elementId' : (lower as 'labels' | 'type')
              result = { k: 'fn', name, arg: this.expr() }
            } else throw syntaxError(`Unknown function '${t.v}'`)
            this.sym(')')
            return result
          }
        }
        return { k: 'var', name: t.v }
      }
    }
    this.at--
    throw this.unexpected('an expression')
  }
}

const WRITE_CLAUSES = new Set(['merge', 'set', 'delete', 'constraint'])

export function parseCypher(query: string): Statement {
  const clauses = new Parser(tokenize(query), query).parse()
  const last = clauses[clauses.length - 1]!
  clauses.forEach((clause, i) => {
    if (clause.k === 'return' && i !== clauses.length - 1)
      throw syntaxError('RETURN can only be used at the end of the query')
    if (clause.k === 'constraint' && clauses.length !== 1)
      throw syntaxError('CREATE CONSTRAINT must be alone')
  })
  if (last.k !== 'return' && !clauses.some((c) => WRITE_CLAUSES.has(c.k))) {
    throw syntaxError(
      'Query cannot conclude with MATCH or UNWIND (must be a RETURN clause or an update clause)',
    )
  }
  return {
    clauses,
    fields: last.k === 'return' ? last.items.map((item) => item.alias) : [],
    writes: clauses.some((c) => WRITE_CLAUSES.has(c.k)),
  }
}

// ------------------------------------------------------------------------- execution

type Binding = Value | NodeRecord | RelRecord
type Row = Map<string, Binding>

// Graph records hold Sets; values decoded from PackStream never do.
function isNode(v: Binding | undefined): v is NodeRecord {
  return typeof v === 'object' && v !== null && (v as NodeRecord).outgoing instanceof Set
}

function isRel(v: Binding | undefined): v is RelRecord {
  return typeof v === 'object' && v !== null && (v as RelRecord).start?.outgoing instanceof Set
}

export interface ExecutionContext {
  graph: Graph
  params: Record<string, Value>
  undo: UndoLog | undefined
  stats: Stats
  /** Turn a node or relationship into its Bolt structure. */
  nodeStruct(node: NodeRecord): Struct
  relStruct(rel: RelRecord): Struct
}

function evaluate(expr: Expr, row: Row, ctx: ExecutionContext): Binding {
  switch (expr.k) {
    case 'lit':
      return expr.value
    case 'param': {
      if (!(expr.name in ctx.params)) {
        throw new CypherError(
          'Neo.ClientError.Statement.ParameterMissing',
          `Expected parameter(s): ${expr.name}`,
        )
      }
      return ctx.params[expr.name]!
    }
    case 'var': {
      if (!row.has(expr.name)) throw syntaxError(`Variable \`${expr.name}\` not defined`)
      return row.get(expr.name)!
    }
    case 'prop': {
      const target = evaluate(expr.target, row, ctx)
      if (target === null) return null
      if (isNode(target) || isRel(target)) return target.props[expr.name] ?? null
      if (isMap(target as Value)) return (target as Record<string, Value>)[expr.name] ?? null
      throw new CypherError(
        'Neo.ClientError.Statement.TypeError',
        `Type mismatch: expected a map but was ${typeof target}`,
      )
    }
    case 'fn': {
      const target = evaluate(expr.arg, row, ctx)
      if (target === null) return null
      if (expr.name === 'elementId' && isNode(target)) return nodeElementId(target)
      if (expr.name === 'elementId' && isRel(target)) return relElementId(target)
      if (expr.name === 'labels' && isNode(target)) return [...target.labels]
      if (expr.name === 'type' && isRel(target)) return target.type
      throw new CypherError(
        'Neo.ClientError.Statement.TypeError',
        `Type mismatch in ${expr.name}()`,
      )
    }
    case 'count':
      throw syntaxError('count() is only allowed in RETURN')
  }
}

export function nodeElementId(node: NodeRecord): string {
  return `4:emulator:${node.id}`
}

export function relElementId(rel: RelRecord): string {
  return `5:emulator:${rel.id}`
}

function asValue(binding: Binding, ctx: ExecutionContext): Value {
  if (isNode(binding)) return ctx.nodeStruct(binding)
  if (isRel(binding)) return ctx.relStruct(binding)
  return binding as Value
}

function test(cond: Cond, row: Row, ctx: ExecutionContext): boolean | null {
  switch (cond.k) {
    case 'and': {
      const l = test(cond.left, row, ctx)
      if (l === false) return false
      const r = test(cond.right, row, ctx)
      if (r === false) return false
      return l === null || r === null ? null : true
    }
    case 'null': {
      const v = evaluate(cond.expr, row, ctx)
      return (v === null) !== cond.negated
    }
    case 'cmp': {
      const l = evaluate(cond.left, row, ctx) as Value
      const r = evaluate(cond.right, row, ctx) as Value
      if (cond.op === '=' || cond.op === '<>') {
        const eq = cypherEquals(l, r)
        return eq === null ? null : cond.op === '=' ? eq : !eq
      }
      const c = cypherCompare(l, r)
      if (c === null) return null
      return cond.op === '>' ? c > 0 : cond.op === '>=' ? c >= 0 : cond.op === '<' ? c < 0 : c <= 0
    }
  }
}

function propsMatch(props: Record<string, Value>, wanted: [string, Value][]): boolean {
  for (const [key, value] of wanted) {
    const actual = props[key]
    if (actual === undefined || cypherEquals(actual, value) !== true) return false
  }
  return true
}

function nodeMatches(node: NodeRecord, labels: string[], wanted: [string, Value][]): boolean {
  for (const label of labels) if (!node.labels.has(label)) return false
  return propsMatch(node.props, wanted)
}

function evalProps(props: [string, Expr][], row: Row, ctx: ExecutionContext): [string, Value][] {
  return props.map(([key, expr]) => [key, evaluate(expr, row, ctx) as Value])
}

function candidates(
  pattern: NodePattern,
  wanted: [string, Value][],
  ctx: ExecutionContext,
): Iterable<NodeRecord> {
  const label = pattern.labels[0]
  if (label !== undefined) {
    for (const [key, value] of wanted) {
      const hit = ctx.graph.lookup(label, key, value)
      if (hit) return hit
    }
    return ctx.graph.nodesWithLabel(label)
  }
  return ctx.graph.nodes.values()
}

function boundNode(row: Row, name: string | undefined): NodeRecord | undefined {
  if (name === undefined || !row.has(name)) return undefined
  const v = row.get(name)
  if (!isNode(v))
    throw new CypherError(
      'Neo.ClientError.Statement.TypeError',
      `Variable \`${name}\` is not a node`,
    )
  return v
}

/** Every extension of `row` that matches the pattern. */
function matchPattern(pattern: Pattern, row: Row, ctx: ExecutionContext): Row[] {
  const out: Row[] = []
  const startWanted = evalProps(pattern.start.props, row, ctx)
  if (startWanted.some(([, v]) => v === null)) return out
  const bound = boundNode(row, pattern.start.name)
  const starts = bound ? [bound] : candidates(pattern.start, startWanted, ctx)
  const rel = pattern.rel
  const relWanted = rel ? evalProps(rel.rel.props, row, ctx) : []
  const endWanted = rel ? evalProps(rel.end.props, row, ctx) : []
  const boundEnd = rel ? boundNode(row, rel.end.name) : undefined
  for (const start of [...starts]) {
    if (!nodeMatches(start, pattern.start.labels, startWanted)) continue
    if (!rel) {
      const next = new Map(row)
      if (pattern.start.name) next.set(pattern.start.name, start)
      out.push(next)
      continue
    }
    for (const r of start.outgoing) {
      if (rel.rel.types.length > 0 && !rel.rel.types.includes(r.type)) continue
      if (!propsMatch(r.props, relWanted)) continue
      if (boundEnd && r.end !== boundEnd) continue
      if (!nodeMatches(r.end, rel.end.labels, endWanted)) continue
      if (rel.end.name === pattern.start.name && rel.end.name !== undefined && r.end !== start)
        continue
      const next = new Map(row)
      if (pattern.start.name) next.set(pattern.start.name, start)
      if (rel.rel.name) next.set(rel.rel.name, r)
      if (rel.end.name) next.set(rel.end.name, r.end)
      out.push(next)
    }
  }
  return out
}

function mergePattern(pattern: Pattern, row: Row, ctx: ExecutionContext): Row[] {
  const { graph, undo, stats } = ctx
  if (!pattern.rel) {
    if (boundNode(row, pattern.start.name)) {
      throw syntaxError(`Variable \`${pattern.start.name}\` already declared`)
    }
    const matches = matchPattern(pattern, row, ctx)
    if (matches.length > 0) return matches
    const wanted = evalProps(pattern.start.props, row, ctx)
    for (const [key, value] of wanted) {
      if (value === null) {
        throw new CypherError(
          'Neo.ClientError.Statement.SemanticError',
          `Cannot merge the following node because of null property value for '${key}': (${pattern.start.name ?? ''}:${pattern.start.labels.join(':')} {${key}: null})`,
        )
      }
    }
    const node = graph.createNode(pattern.start.labels, undo)
    stats.nodesCreated++
    stats.labelsAdded += pattern.start.labels.length
    for (const [key, value] of wanted) {
      graph.setNodeProperty(node, key, value, undo)
      stats.propertiesSet++
    }
    const next = new Map(row)
    if (pattern.start.name) next.set(pattern.start.name, node)
    return [next]
  }
  const start = boundNode(row, pattern.start.name)
  const end = boundNode(row, pattern.rel.end.name)
  if (!start || !end || pattern.start.labels.length > 0 || pattern.rel.end.labels.length > 0) {
    throw syntaxError(
      'this emulator supports relationship MERGE between already bound endpoints only',
    )
  }
  if (pattern.rel.rel.types.length !== 1) {
    throw syntaxError('Exactly one relationship type must be specified for MERGE.')
  }
  const matches = matchPattern(pattern, row, ctx)
  if (matches.length > 0) return matches
  const wanted = evalProps(pattern.rel.rel.props, row, ctx)
  for (const [key, value] of wanted) {
    if (value === null) {
      throw new CypherError(
        'Neo.ClientError.Statement.SemanticError',
        `Cannot merge the following relationship because of null property value for '${key}'`,
      )
    }
  }
  const rel = graph.createRel(pattern.rel.rel.types[0]!, start, end, undo)
  stats.relationshipsCreated++
  for (const [key, value] of wanted) {
    graph.setRelProperty(rel, key, value, undo)
    stats.propertiesSet++
  }
  const next = new Map(row)
  if (pattern.rel.rel.name) next.set(pattern.rel.rel.name, rel)
  return [next]
}

function applySet(item: SetItem, row: Row, ctx: ExecutionContext): void {
  const target = row.get(item.name)
  if (target === undefined) throw syntaxError(`Variable \`${item.name}\` not defined`)
  if (target === null) return
  if (!isNode(target) && !isRel(target)) {
    throw new CypherError(
      'Neo.ClientError.Statement.TypeError',
      `Expected \`${item.name}\` to be a node or relationship`,
    )
  }
  const setProp = (key: string, value: Value) => {
    if (isNode(target)) ctx.graph.setNodeProperty(target, key, value, ctx.undo)
    else ctx.graph.setRelProperty(target, key, value, ctx.undo)
    ctx.stats.propertiesSet++
  }
  if (item.k === 'labels') {
    if (!isNode(target)) throw syntaxError('labels can only be set on nodes')
    for (const label of item.labels)
      if (ctx.graph.addLabel(target, label, ctx.undo)) ctx.stats.labelsAdded++
    return
  }
  const value = evaluate(item.expr, row, ctx)
  if (item.k === 'prop') {
    setProp(item.prop, asPropertyValue(value))
    return
  }
  if (value === null) return
  if (!isMap(value as Value) || isNode(value) || isRel(value)) {
    throw new CypherError(
      'Neo.ClientError.Statement.TypeError',
      `Expected ${describeBinding(value)} to be a map, but it was a ${typeName(value)}`,
    )
  }
  for (const [key, v] of Object.entries(value as Record<string, Value>)) setProp(key, v)
}

function asPropertyValue(value: Binding): Value {
  if (isNode(value) || isRel(value)) {
    throw new CypherError(
      'Neo.ClientError.Statement.TypeError',
      'Property values can only be of primitive types or arrays thereof.',
    )
  }
  return value as Value
}

function typeName(value: Binding): string {
  if (value === null) return 'NULL'
  if (typeof value === 'string') return 'String'
  if (typeof value === 'bigint') return 'Long'
  if (typeof value === 'number') return 'Double'
  if (typeof value === 'boolean') return 'Boolean'
  if (Array.isArray(value)) return 'List'
  return 'Value'
}

function describeBinding(value: Binding): string {
  return typeof value === 'string' ? `String("${value}")` : String(value)
}

function nonNegativeInteger(clause: string, value: Binding): number {
  if (typeof value === 'bigint' && value >= 0n) return Number(value)
  const shown =
    typeof value === 'number'
      ? Number.isInteger(value)
        ? value.toFixed(1)
        : String(value)
      : String(value)
  throw new CypherError(
    'Neo.ClientError.Statement.ArgumentError',
    `Invalid input. '${shown}' is not a valid value. Must be a non-negative integer. (${clause})`,
  )
}

export interface QueryResult {
  fields: string[]
  records: Value[][]
}

/** Run a parsed statement; writes go through `ctx.undo` so the caller can roll them back. */
export function execute(statement: Statement, ctx: ExecutionContext): QueryResult {
  let rows: Row[] = [new Map()]
  for (const clause of statement.clauses) {
    switch (clause.k) {
      case 'unwind': {
        const next: Row[] = []
        for (const row of rows) {
          const list = evaluate(clause.expr, row, ctx)
          if (list === null) continue
          const items = Array.isArray(list) ? list : [list]
          for (const item of items) {
            const extended = new Map(row)
            extended.set(clause.as, item)
            next.push(extended)
          }
        }
        rows = next
        break
      }
      case 'match': {
        const next: Row[] = []
        for (const row of rows) {
          const matched = matchPattern(clause.pattern, row, ctx).filter(
            (r) => clause.where === undefined || test(clause.where, r, ctx) === true,
          )
          if (matched.length > 0) for (const m of matched) next.push(m)
          else if (clause.optional) {
            const empty = new Map(row)
            for (const name of [
              clause.pattern.start.name,
              clause.pattern.rel?.rel.name,
              clause.pattern.rel?.end.name,
            ]) {
              if (name !== undefined && !empty.has(name)) empty.set(name, null)
            }
            next.push(empty)
          }
        }
        rows = next
        break
      }
      case 'merge': {
        const next: Row[] = []
        for (const row of rows) for (const m of mergePattern(clause.pattern, row, ctx)) next.push(m)
        rows = next
        break
      }
      case 'set':
        for (const row of rows) for (const item of clause.items) applySet(item, row, ctx)
        break
      case 'delete': {
        // Relationships first, so DETACH DELETE of two connected nodes works.
        for (const row of rows) {
          for (const name of clause.names) {
            const target = row.get(name)
            if (target === undefined) throw syntaxError(`Variable \`${name}\` not defined`)
            if (isRel(target) && ctx.graph.deleteRel(target, ctx.undo))
              ctx.stats.relationshipsDeleted++
            if (isNode(target) && clause.detach) {
              for (const r of [...target.outgoing, ...target.incoming]) {
                if (ctx.graph.deleteRel(r, ctx.undo)) ctx.stats.relationshipsDeleted++
              }
            }
          }
        }
        for (const row of rows) {
          for (const name of clause.names) {
            const target = row.get(name)
            if (isNode(target) && ctx.graph.deleteNode(target, ctx.undo)) ctx.stats.nodesDeleted++
          }
        }
        break
      }
      case 'constraint': {
        const name = clause.name ?? `constraint_${clause.label}_${clause.prop}`
        if (ctx.graph.createUniqueConstraint(name, clause.label, clause.prop, clause.ifNotExists)) {
          ctx.stats.constraintsAdded++
        }
        break
      }
      case 'return':
        return project(clause, rows, ctx)
    }
  }
  return { fields: [], records: [] }
}

function project(
  clause: Extract<Clause, { k: 'return' }>,
  rows: Row[],
  ctx: ExecutionContext,
): QueryResult {
  const aggregate = clause.items.some((item) => item.expr.k === 'count')
  let out: { row: Row; values: Binding[] }[]
  if (aggregate) {
    const groups = new Map<string, { row: Row; values: Binding[]; counts: number[] }>()
    const keyed = clause.items
      .map((item, i) => ({ item, i }))
      .filter(({ item }) => item.expr.k !== 'count')
    for (const row of rows) {
      const keyValues = keyed.map(({ item }) => evaluate(item.expr, row, ctx))
      const key = keyValues
        .map((v) => (isNode(v) ? `n${v.id}` : isRel(v) ? `r${v.id}` : String(v)))
        .join('\u0000')
      let group = groups.get(key)
      if (!group) {
        group = {
          row,
          values: new Array(clause.items.length).fill(null),
          counts: new Array(clause.items.length).fill(0),
        }
        keyed.forEach(({ i }, j) => {
          group!.values[i] = keyValues[j]!
        })
        groups.set(key, group)
      }
      clause.items.forEach((item, i) => {
        if (item.expr.k !== 'count') return
        if (item.expr.arg === '*' || evaluate(item.expr.arg, row, ctx) !== null) group!.counts[i]!++
      })
    }
    if (groups.size === 0 && keyed.length === 0) {
      groups.set('', {
        row: new Map(),
        values: clause.items.map(() => null),
        counts: clause.items.map(() => 0),
      })
    }
    out = [...groups.values()].map((g) => ({
      row: g.row,
      values: g.values.map((v, i) =>
        clause.items[i]!.expr.k === 'count' ? BigInt(g.counts[i]!) : v,
      ),
    }))
  } else {
    out = rows.map((row) => ({
      row,
      values: clause.items.map((item) => evaluate(item.expr, row, ctx)),
    }))
  }
  if (clause.orderBy.length > 0) {
    const keys = out.map(({ row, values }) => {
      const scope = new Map(row)
      clause.items.forEach((item, i) => {
        scope.set(item.alias, values[i]!)
      })
      return clause.orderBy.map((o) => evaluate(o.expr, scope, ctx) as Value)
    })
    const order = out.map((_, i) => i)
    order.sort((a, b) => {
      for (let k = 0; k < clause.orderBy.length; k++) {
        const c = cypherOrder(keys[a]![k]!, keys[b]![k]!)
        if (c !== 0) return clause.orderBy[k]!.desc ? -c : c
      }
      return a - b
    })
    out = order.map((i) => out[i]!)
  }
  const empty: Row = new Map()
  const skip = clause.skip ? nonNegativeInteger('SKIP', evaluate(clause.skip, empty, ctx)) : 0
  const limit = clause.limit
    ? nonNegativeInteger('LIMIT', evaluate(clause.limit, empty, ctx))
    : Number.POSITIVE_INFINITY
  out = out.slice(skip, skip + limit)
  return {
    fields: clause.items.map((item) => item.alias),
    records: out.map(({ values }) => values.map((v) => asValue(v, ctx))),
  }
}
