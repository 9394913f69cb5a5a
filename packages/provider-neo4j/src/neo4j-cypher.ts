import { NAME_REGEX } from './neo4j-schemas.js'

/**
 * Query text the provider sends. Names are checked against NAME_REGEX and backtick-escaped
 * (a backtick doubled), so a name can never end the quoted identifier; every value is a parameter.
 */

export class NameError extends Error {}

export function isValidName(name: string): boolean {
  return NAME_REGEX.test(name)
}

/** `name` quoted as a Cypher identifier. Refuses names outside the strict pattern. */
export function quoteName(name: string, what = 'name'): string {
  if (!isValidName(name)) {
    throw new NameError(`${what} ${JSON.stringify(name)} must match ${NAME_REGEX.source}`)
  }
  return `\`${name.replace(/`/g, '``')}\``
}

const labelsText = (labels: readonly string[]) =>
  labels.map((l) => `:${quoteName(l, 'label')}`).join('')

/** First page: every node with a key, in key order. */
export function readFirstPageQuery(label: string, key: string): string {
  const k = quoteName(key, 'key property')
  return `MATCH (n${labelsText([label])}) WHERE n.${k} IS NOT NULL RETURN n ORDER BY n.${k} LIMIT $limit`
}

/** The page after `$after`, in key order. */
export function readPageAfterQuery(label: string, key: string): string {
  const k = quoteName(key, 'key property')
  return `MATCH (n${labelsText([label])}) WHERE n.${k} > $after RETURN n ORDER BY n.${k} LIMIT $limit`
}

/** Outgoing relationships of the given types from the page's nodes, to nodes that have a key. */
export function readRelationshipsQuery(
  label: string,
  key: string,
  types: readonly string[],
): string {
  const k = quoteName(key, 'key property')
  const typeList = types.map((t) => quoteName(t, 'relationship type')).join('|')
  return `UNWIND $keys AS nodeKey MATCH (n${labelsText([label])} {${k}: nodeKey})-[r:${typeList}]->(m) WHERE m.${k} IS NOT NULL RETURN nodeKey, r, m.${k} AS target`
}

/** Upsert nodes of one label set by key: `$rows` = [{ key, props }]. */
export function mergeNodesQuery(labels: readonly string[], key: string): string {
  return `UNWIND $rows AS row MERGE (n${labelsText(labels)} {${quoteName(key, 'key property')}: row.key}) SET n += row.props`
}

/**
 * Upsert relationships of one type between existing endpoints: `$rels` = [{ from, to, id, props, seq }].
 * Returns the `seq` of every row whose endpoints were found, so missing endpoints are detected.
 */
export function mergeRelationshipsQuery(
  type: string,
  fromLabels: readonly string[],
  toLabels: readonly string[],
  nodeKey: string,
  relKey: string,
): string {
  const k = quoteName(nodeKey, 'key property')
  return (
    `UNWIND $rels AS r MATCH (a${labelsText(fromLabels)} {${k}: r.from}) MATCH (b${labelsText(toLabels)} {${k}: r.to}) ` +
    `MERGE (a)-[e:${quoteName(type, 'relationship type')} {${quoteName(relKey, 'relationship key property')}: r.id}]->(b) SET e += r.props RETURN r.seq AS seq`
  )
}

export function uniqueConstraintQuery(label: string, key: string): string {
  const name = quoteName(`nvisy_unique_${label}_${key}`.slice(0, 200), 'constraint name')
  return `CREATE CONSTRAINT ${name} IF NOT EXISTS FOR (n${labelsText([label])}) REQUIRE n.${quoteName(key, 'key property')} IS UNIQUE`
}
