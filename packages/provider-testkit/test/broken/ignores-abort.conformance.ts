import { runMemoryConformance } from '../../src/memory-fixture.js'

runMemoryConformance('broken-ignores-abort', 'ignores-abort')
