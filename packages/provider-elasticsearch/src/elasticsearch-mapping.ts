// The mapping -> fields/columns logic is shared with the other search provider: it lives in
// @nvisy/provider-core (search-mapping.ts). These names are kept as they were exported.
export {
  searchColumnTypeOf as columnTypeOf,
  searchMappingColumns as mappingColumns,
  searchMappingFields as mappingFields,
} from '@nvisy/provider-core'
