import { runMemoryConformance } from '../../src/memory-fixture.js'

runMemoryConformance('broken-skip-on-resume', 'skip-on-resume')
