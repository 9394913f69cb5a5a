import { Destination, Secret, type Static, Type } from '@nvisy/provider-core'

/**
 * Labels, relationship types and property names that go into query text: letters, digits and
 * underscores, starting with a letter or underscore. They are backtick-escaped as well.
 */
export const NAME_PATTERN = '^[\\p{L}_][\\p{L}\\p{N}_]{0,199}$'
export const NAME_REGEX = new RegExp(NAME_PATTERN, 'u')

const Name = (description: string) => Type.String({ pattern: NAME_PATTERN, description })

export const Neo4jCredentialsSchema = Type.Object(
  {
    user: Type.Optional(Type.String({ minLength: 1, description: 'User name (basic auth)' })),
    password: Type.Optional(Secret(Type.String({ description: 'Password of the user' }))),
    token: Type.Optional(
      Secret(
        Type.String({
          minLength: 1,
          description: 'Bearer token (SSO), instead of user and password',
        }),
      ),
    ),
  },
  { additionalProperties: false },
)
export type Neo4jCredentials = Static<typeof Neo4jCredentialsSchema>

export const Neo4jParamsSchema = Type.Object(
  {
    url: Destination(
      Type.String({
        pattern: '^(bolt|neo4j)(\\+s|\\+ssc)?://[^/?#\\s@]+/?$',
        description:
          'Server URL: bolt:// (one server) or neo4j:// (routing), +s for TLS, +ssc for TLS with a self-signed certificate',
      }),
    ),
    database: Destination(
      Type.Optional(
        Type.String({
          pattern: '^[A-Za-z0-9][A-Za-z0-9.\\-_]{0,62}$',
          description: 'Database name; the user’s home database when omitted',
        }),
      ),
    ),
    connectionTimeoutMs: Type.Optional(
      Type.Integer({
        minimum: 100,
        maximum: 600_000,
        description: 'Connection timeout (default 30 000)',
      }),
    ),
    maxConnectionPoolSize: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 1000,
        description: 'Connection pool size (default 100)',
      }),
    ),
  },
  { additionalProperties: false },
)
export type Neo4jParams = Static<typeof Neo4jParamsSchema>

export const Neo4jStreamSchema = Type.Object(
  {
    label: Name('Label of the nodes to read'),
    keyProperty: Type.Optional(
      Name('Key property: unique, string or integer; nodes are read in its order (default id)'),
    ),
    pageSize: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 100_000, description: 'Nodes per query (default 1000)' }),
    ),
    relationships: Type.Optional(
      Type.Array(Name('Relationship type'), {
        maxItems: 100,
        description: 'Outgoing relationship types to read with each node',
      }),
    ),
    relationshipKeyProperty: Type.Optional(
      Name('Relationship property used as edge id (default id; elementId when absent)'),
    ),
  },
  { additionalProperties: false },
)
export type Neo4jStream = Static<typeof Neo4jStreamSchema>

export const Neo4jContextSchema = Type.Object(
  {
    key: Type.String({ description: 'Key property value of the last node read, as text' }),
    type: Type.Union([Type.Literal('string'), Type.Literal('integer'), Type.Literal('float')], {
      description: 'Type of the key value',
    }),
  },
  { additionalProperties: false },
)
export type Neo4jContext = Static<typeof Neo4jContextSchema>

export const Neo4jSinkStreamSchema = Type.Object(
  {
    keyProperty: Type.Optional(
      Name('Node property that holds the node id; MERGE key (default id)'),
    ),
    relationshipKeyProperty: Type.Optional(
      Name('Relationship property that holds the edge id; MERGE key (default id)'),
    ),
    endpointLabel: Type.Optional(
      Name(
        'Label used to find an edge endpoint that is not among the batch nodes (without it such endpoints are matched by key alone)',
      ),
    ),
    createConstraints: Type.Optional(
      Type.Boolean({
        description:
          'Create a uniqueness constraint on (label, keyProperty) for each label set written (needs schema rights)',
      }),
    ),
  },
  { additionalProperties: false },
)
export type Neo4jSinkStream = Static<typeof Neo4jSinkStreamSchema>
