// Runs every test and ends with the line CI reads: "N passed, N failed", counting test
// cases (a TypeScript test() or a native test function in one mode), never single
// assertions.
//   - the type check (tsc -p tsconfig.check.json over src, test, bench and demo): one case
//   - the uvu TypeScript suites (test/*.test.ts), twice: once with TXARRAY_FAULT_MODE=uffd
//     and once with TXARRAY_FAULT_MODE=sigsegv, so that both fault services pass the same
//     tests (TXARRAY_FAULT_MODE set by the caller runs that mode only); as root, a third
//     time as an unprivileged user, in the mode the library picks for such a user
//   - the native test programs (vmem, engine; plain C++), when present; their assertion count
//     is reported on a line of its own
// Skipped cases (a test that cannot run on this kernel) are counted apart, not as passed.
// Usage: node test/run.mjs [file-pattern]   (a pattern runs only the matching suites)
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const pattern = process.argv[2] ?? '\\.test\\.ts$'
let passed = 0
let failed = 0
let skipped = 0
const summary = []

function run(label, command, args, env = {}) {
  console.log(`\n=== ${label}`)
  const r = spawnSync(command, args, { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 1 << 28 })
  const out = (r.stdout ?? '') + (r.stderr ?? '')
  process.stdout.write(out)
  if (r.error) console.log(`could not start ${command}: ${r.error.message}`)
  return { status: r.status, signal: r.signal, out }
}

function typeCheck() {
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  const { status } = run('type check: tsc -p tsconfig.check.json', process.execPath, [tsc, '-p', 'tsconfig.check.json'])
  if (status === 0) passed += 1
  else failed += 1
  summary.push(`type check: ${status === 0 ? 'passed' : 'FAILED'}`)
}

// uvu: "Total: N" (tests run), "Passed: N", "Skipped: N"
function uvu(label, env) {
  const { status, signal, out } = run(label, process.execPath, ['node_modules/uvu/bin.js', '-r', 'tsx/cjs', 'test', pattern], env)
  return countUvu(label, status, signal, out)
}

function countUvu(label, status, signal, colored) {
  // uvu colours its counts: "Skipped:   \x1b[33m1\x1b[39m"
  const out = colored.replace(/\x1b\[[0-9;]*m/g, '')
  const total = Number(/Total:\s+(\d+)/.exec(out)?.[1] ?? 0)
  const ok = Number(/Passed:\s+(\d+)/.exec(out)?.[1] ?? 0)
  const skip = Number(/Skipped:\s+(\d+)/.exec(out)?.[1] ?? 0)
  let bad = total - ok
  if (status !== 0 && bad === 0) {
    console.log(`suite ${label} exited with ${signal ?? status} without a failing test: counted as one failure`)
    bad = 1
  }
  passed += ok
  failed += bad
  skipped += skip
  return `${ok} passed, ${bad} failed, ${skip} skipped`
}

// As root, the TypeScript suites run once more as an unprivileged user (uid 65534, in a
// copy of the checkout it owns), with the fault mode the library picks by itself: what a
// user without userfaultfd rights gets (vm.unprivileged_userfaultfd=0: SIGSEGV mode).
function unprivileged() {
  const label = 'TypeScript tests, unprivileged user (uid 65534), fault mode chosen by the library'
  if (process.getuid?.() !== 0) return null
  if (spawnSync('setpriv', ['--version']).status !== 0) {
    console.log(`\n=== ${label}\nskipped: setpriv is not available`)
    return 'skipped: setpriv is not available'
  }
  const copy = mkdtempSync(join(tmpdir(), 'txarray-unprivileged-'))
  cpSync(root, copy, { recursive: true, filter: (src) => !src.includes(`${sep}.git${sep}`) && !src.endsWith(`${sep}.git`) })
  spawnSync('chown', ['-R', '65534:65534', copy])
  const env = { ...process.env, HOME: copy, TXARRAY_FAULT_MODE: '' }
  // The package test packs and installs the package: nothing about privileges, and it
  // runs (as root) in the passes above.
  const args = ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, 'node_modules/uvu/bin.js', '-r', 'tsx/cjs', 'test', `^(?!package\\.test).*(?:${pattern})`]
  console.log(`\n=== ${label}`)
  const r = spawnSync('setpriv', args, { cwd: copy, env, encoding: 'utf8', maxBuffer: 1 << 28 })
  const out = (r.stdout ?? '') + (r.stderr ?? '')
  process.stdout.write(out)
  rmSync(copy, { recursive: true, force: true })
  return countUvu(label, r.status, r.signal, out)
}

function nativeTests() {
  const { status, out } = run('native tests (vmem, engine)', 'bash', [join(root, 'native', 'test', 'run.sh')])
  const cases = [...out.matchAll(/^native cases: (\d+) passed, (\d+) failed, (\d+) skipped$/gm)].at(-1)
  const checks = [...out.matchAll(/^native checks: (\d+) passed, (\d+) failed$/gm)].at(-1)
  let [ok, bad, skip] = cases ? cases.slice(1).map(Number) : [0, 0, 0]
  if (status !== 0 && bad === 0) {
    console.log(`native tests exited with ${status} without a failing case: counted as one failure`)
    bad = 1
  }
  passed += ok
  failed += bad
  skipped += skip
  summary.push(`native cases: ${ok} passed, ${bad} failed, ${skip} skipped`)
  if (checks) summary.push(`native checks (assertions, not counted below): ${checks[1]} passed, ${checks[2]} failed`)
}

const whole = !process.argv[2]
if (whole) typeCheck()
const modes = process.env.TXARRAY_FAULT_MODE ? [process.env.TXARRAY_FAULT_MODE] : ['uffd', 'sigsegv']
for (const mode of modes) {
  summary.push(`TypeScript tests, ${mode}: ${uvu(`TypeScript tests, TXARRAY_FAULT_MODE=${mode}`, { TXARRAY_FAULT_MODE: mode })}`)
}
if (!process.env.TXARRAY_FAULT_MODE) {
  const line = unprivileged()
  if (line) summary.push(`TypeScript tests, unprivileged: ${line}`)
}
if (whole && existsSync(join(root, 'native', 'test', 'run.sh'))) nativeTests()

console.log('')
for (const line of summary) console.log(line)
console.log(`skipped: ${skipped} (not counted as passed)`)
console.log(`\n${passed} passed, ${failed} failed`)
process.exit(failed > 0 ? 1 : 0)
