// Prints vitest's JSON report as the plain closing line CI reads: "N passed, N failed[, N skipped]".
import { readFileSync } from 'node:fs'

const file = process.argv[2]
let report
try {
  report = JSON.parse(readFileSync(file, 'utf8'))
} catch (err) {
  console.error(`no test report at ${file}: ${err.message}`)
  console.log('Tests: 0 passed, 1 failed')
  process.exit(1)
}
const passed = report.numPassedTests ?? 0
const failed = report.numFailedTests ?? 0
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0)
// A file that failed to load or whose hooks threw has no failed assertion but must still fail the run.
const suiteFailures = (report.testResults ?? []).filter(r => r.status === 'failed' && (r.assertionResults ?? []).every(a => a.status !== 'failed')).length
const total = failed + suiteFailures
console.log(`Tests: ${passed} passed, ${total} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`)
process.exit(total > 0 || passed === 0 ? 1 : 0)
