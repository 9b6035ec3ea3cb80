// Runs every test suite and ends with the line CI reads: "N passed, N failed".
//   - the uvu TypeScript suites (test/*.test.ts), twice: once with TXARRAY_FAULT_MODE=uffd
//     and once with TXARRAY_FAULT_MODE=sigsegv, so that both fault services pass the same
//     tests (TXARRAY_FAULT_MODE set by the caller runs that mode only)
//   - the native vmem test program (plain C++), when it is present
// Usage: node test/run.mjs [file-pattern]
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const pattern = process.argv[2] ?? '\\.test\\.ts$'
let passed = 0
let failed = 0

function run(label, command, args, env = {}) {
  console.log(`\n=== ${label}`)
  const r = spawnSync(command, args, { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 1 << 28 })
  const out = (r.stdout ?? '') + (r.stderr ?? '')
  process.stdout.write(out)
  return { status: r.status, signal: r.signal, out }
}

// uvu: "Total: N", "Passed: N", "Skipped: N"
function uvu(label, env) {
  const { status, signal, out } = run(label, process.execPath, ['node_modules/uvu/bin.js', '-r', 'tsx/cjs', 'test', pattern], env)
  const total = Number(/Total:\s+(\d+)/.exec(out)?.[1] ?? 0)
  const ok = Number(/Passed:\s+(\d+)/.exec(out)?.[1] ?? 0)
  passed += ok
  failed += total - ok
  if (status !== 0 && total - ok === 0) {
    console.log(`suite ${label} exited with ${signal ?? status} without a failing test: counted as one failure`)
    failed += 1
  }
}

const modes = process.env.TXARRAY_FAULT_MODE ? [process.env.TXARRAY_FAULT_MODE] : ['uffd', 'sigsegv']
const perMode = []
for (const mode of modes) {
  const before = { passed, failed }
  uvu(`TypeScript tests, TXARRAY_FAULT_MODE=${mode}`, { TXARRAY_FAULT_MODE: mode })
  perMode.push(`${mode}: ${passed - before.passed} passed, ${failed - before.failed} failed`)
}

const nativeTest = join(root, 'native', 'test', 'run.sh')
if (existsSync(nativeTest) && !process.argv[2]) {
  const { status, out } = run('native vmem tests', 'bash', [nativeTest])
  const m = [...out.matchAll(/^(\d+) passed, (\d+) failed$/gm)].at(-1)  // the combined line
  if (m) {
    passed += Number(m[1])
    failed += Number(m[2])
  }
  if (status !== 0 && !(m && Number(m[2]) > 0)) failed += 1
}

for (const line of perMode) console.log(`TypeScript tests, ${line}`)
console.log(`\n${passed} passed, ${failed} failed`)
process.exit(failed > 0 ? 1 : 0)
