// The pipeline model lives in @nvisy/protocol; re-exported for the runtime's own modules.
export {
  type ConnectionSpec,
  ConnectionSpecSchema,
  type Pipeline,
  type PipelineNode,
  PipelineNodeSchema,
  PipelineSchema,
} from '@nvisy/protocol'
