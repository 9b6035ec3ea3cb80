// The packed package installs and works on a machine without a compiler: `npm pack`
// ships the prebuilt addon for this platform, the install step keeps it instead of
// compiling, and a program loads txarray both as an ES module (import) and as CommonJS
// (require), with types that check without @types/node.
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { faultMode } from '../src/index'
import { tempDir } from './helpers/tmp'

const root = path.join(__dirname, '..')
const platform = `${process.platform}-${process.arch}`

/** Compilers, linkers and make, by their usual names (gcc, x86_64-linux-gnu-g++-12...). */
const TOOLCHAIN = /(^|-)(cc|c\+\+|cpp|gcc|g\+\+|clang|clang\+\+|make|gmake|ld|as|node-gyp)(-[0-9.]+)?$/

/** One folder (the PATH) with every program of this PATH but the toolchain's. */
function pathWithoutCompiler(dir: string): string {
  const bin = path.join(dir, 'bin')
  fs.mkdirSync(bin)
  for (const from of (process.env.PATH ?? '').split(':')) {
    let names: string[]
    try {
      names = fs.readdirSync(from)
    } catch {
      continue
    }
    for (const name of names) {
      if (TOOLCHAIN.test(name) || fs.existsSync(path.join(bin, name))) continue
      fs.symlinkSync(path.join(from, name), path.join(bin, name))
    }
  }
  return bin
}

/** Runs a command to success; returns its stdout and its whole output. */
function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): { stdout: string; output: string } {
  const r = spawnSync(command, args, { cwd, env, encoding: 'utf8', timeout: 300_000 })
  if (r.status !== 0) {
    assert.unreachable(`${command} ${args.join(' ')} exited with ${r.status ?? r.signal}:\n${r.stdout}\n${r.stderr}`)
  }
  return { stdout: r.stdout, output: r.stdout + r.stderr }
}

interface Packed {
  filename: string
  files: { path: string }[]
}

/** `npm pack --json`'s report; its stdout may begin with the lifecycle scripts' output. */
function packReport(stdout: string): Packed {
  return (JSON.parse(stdout.slice(stdout.search(/^\[/m))) as Packed[])[0]
}

/** The declaration files reachable from `entry` through its relative imports and exports. */
function declarationGraph(entry: string): Map<string, string> {
  const seen = new Map<string, string>()
  const visit = (file: string) => {
    if (seen.has(file)) return
    const text = fs.readFileSync(file, 'utf8')
    seen.set(file, text)
    for (const m of text.matchAll(/from '(\.[^']+)'/g)) {
      const base = path.join(path.dirname(file), m[1]).replace(/\.js$/, '')
      visit(fs.existsSync(`${base}.d.ts`) ? `${base}.d.ts` : `${base}.d.mts`)
    }
  }
  visit(entry)
  return seen
}

const program = (load: string) => `${load}
const os = require('node:os'), fs = require('node:fs'), path = require('node:path')
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'txarray-package-'))
try {
  let store = txarray.open(dir)
  const a = store.create('a', { dtype: 'float64', shape: [0, 2] })
  a.append(Float64Array.of(1, 2, 3, 4))
  store.commit()
  store.close()
  store = txarray.open(dir)
  const view = store.array('a', 'float64').view()
  let conflict
  try { store.array('a', 'int8') } catch (e) { conflict = e instanceof txarray.DTypeError && e.code }
  console.log(JSON.stringify({ data: [...view], rows: store.array('a').rows, dtypeError: conflict, mode: txarray.faultMode().mode }))
  store.close()
} finally {
  fs.rmSync(dir, { recursive: true, force: true })
}
`

const consumer = `import { open, ConflictError, type BigArray } from 'txarray'
const store = open('/nonexistent-never-opened')
const a: BigArray<'int32'> = store.array('a', 'int32')
const data: Int32Array = a.read().data
const err = new ConflictError('x')
const rows: [number, number][] = err.rows
export { data, rows }
`

test('npm pack\'s tarball installs without a compiler and works through import and require', () => {
  const dir = tempDir()
  // the tarball, as `npm pack` makes it (prepack builds the prebuilt addon, postpack removes it)
  let packed: Packed
  try {
    packed = packReport(run('npm', ['pack', '--json', '--pack-destination', dir], root, process.env).stdout)
  } finally {
    if (fs.existsSync(path.join(root, 'prebuilds'))) {
      fs.rmSync(path.join(root, 'prebuilds'), { recursive: true, force: true })
      assert.unreachable('postpack left the prebuilt addon in the work tree (removed now)')
    }
  }
  const files = packed.files.map((f) => f.path)
  for (const f of [`prebuilds/${platform}/txarray.node`, 'dist/index.js', 'dist/index.mjs', 'dist/index.d.ts', 'dist/index.d.mts', 'scripts/install.js', 'binding.gyp', 'native/binding/addon.cc']) {
    assert.ok(files.includes(f), `the package holds ${f}`)
  }
  assert.not.ok(files.some((f) => /^(src|test|bench|demo|native\/test)\//.test(f)), 'and no sources of tests, bench or demo')

  // a PATH without a compiler
  const bin = pathWithoutCompiler(dir)
  const env = { ...process.env, PATH: bin }
  const found = spawnSync('/bin/sh', ['-c', 'command -v cc; command -v c++; command -v g++; command -v gcc; command -v make'], { env, encoding: 'utf8' })
  assert.is(found.stdout, '', 'no compiler on the PATH')

  // an empty project installs the tarball
  const app = path.join(dir, 'app')
  fs.mkdirSync(app)
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }))
  const log = run('npm', ['install', path.join(dir, packed.filename), '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts'], app, env).output
  assert.match(log, `txarray: using the prebuilt addon prebuilds/${platform}/txarray.node`)
  const installed = path.join(app, 'node_modules', 'txarray')
  assert.not.ok(fs.existsSync(path.join(installed, 'build')), 'nothing was compiled')

  // and uses it as an ES module and as CommonJS
  fs.writeFileSync(path.join(app, 'esm.mjs'), program(`import * as txarray from 'txarray'\nimport { createRequire } from 'node:module'\nconst require = createRequire(import.meta.url)`))
  fs.writeFileSync(path.join(app, 'cjs.cjs'), program(`const txarray = require('txarray')`))
  for (const script of ['esm.mjs', 'cjs.cjs']) {
    const out = JSON.parse(run('node', [script], app, env).stdout) as { data: number[]; rows: number; dtypeError: string; mode: string }
    // the child inherits TXARRAY_FAULT_MODE, so it serves views as this process does
    assert.equal(out, { data: [1, 2, 3, 4], rows: 2, dtypeError: 'TXA_DTYPE', mode: faultMode().mode }, script)
  }
  const same = run('node', ['--input-type=module', '-e', `import * as m from 'txarray'; import { createRequire } from 'node:module'; const c = createRequire(process.cwd() + '/')('txarray'); console.log(String(m.ConflictError === c.ConflictError && m.open === c.open))`], app, env)
  assert.is(same.stdout.trim(), 'true', 'import and require give the same classes')

  // its public types name nothing internal, and check both ways without @types/node
  for (const entry of ['index.d.ts', 'index.d.mts']) {
    for (const [file, text] of declarationGraph(path.join(installed, 'dist', entry))) {
      assert.not.match(text, /\bNative\w*|NodeJS\.|'node:/, `${path.relative(installed, file)} names no internal or Node type`)
    }
  }
  assert.not.ok(fs.existsSync(path.join(app, 'node_modules', '@types', 'node')), '@types/node is not installed')
  fs.writeFileSync(path.join(app, 'check.mts'), consumer)
  fs.writeFileSync(path.join(app, 'check.cts'), consumer)
  fs.writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { module: 'nodenext', target: 'es2022', lib: ['es2022', 'esnext.disposable'], types: [], strict: true, noEmit: true, skipLibCheck: false },
    files: ['check.mts', 'check.cts'],
  }))
  run('node', [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app], app, env)
})

test.run()
