// The `txarray` command: every command's output, --json output (parsed), --help, and
// exit codes (0 ok, 1 failure, 2 usage, 3 damage). Every command runs as a child process
// (txarray()) at least once; the many further checks call main() in this process (run()).
import * as fs from 'node:fs'
import * as path from 'node:path'
import { spawnSync } from 'node:child_process'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { open, readNpyHeader } from '../src/index'
import { commands } from '../src/cli/main'
import { exited, lines, startTxarray, txarray, txarrayInProcess as run } from './helpers/cli'
import { dictText, npyFile } from './helpers/npy'
import { tempDir } from './helpers/tmp'

/** The data bytes of a .npy file, in an ArrayBuffer of their own. */
function dataOf(file: string): ArrayBuffer {
  const bytes = fs.readFileSync(file).subarray(readNpyHeader(file).dataOffset)
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer
}

function ok(r: { status: number | null; stdout: string; stderr: string }, what: string): string {
  if (r.status !== 0) assert.unreachable(`${what}: exit ${r.status}\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}

function json<T = Record<string, unknown>>(r: { status: number | null; stdout: string; stderr: string }, what: string): T {
  return JSON.parse(ok(r, what)) as T
}

test('--help lists every command; each command has --help; unknown commands and options exit 2', async () => {
  const help = ok(txarray(['--help']), '--help')
  const names = ['info', 'ls', 'create', 'import', 'export', 'cat', 'append', 'stat', 'check', 'watch', 'bench']
  assert.equal(commands.map((c) => c.name), names)
  for (const name of names) assert.match(help, new RegExp(`^  ${name} `, 'm'))
  assert.match(help, /Exit codes:/)
  for (const name of ['import', 'cat']) {
    const h = ok(await run([name, '--help']), `${name} --help`)
    assert.ok(h.startsWith(`Usage: txarray ${name} `), h)
    assert.match(h, /--json/)
  }
  const unknown = txarray(['frobnicate'])
  assert.is(unknown.status, 2)
  assert.match(unknown.stderr, /TXA_ARGUMENT: unknown command 'frobnicate'/)
  const badOption = txarray(['ls', 'x', '--frob', '--json'])
  assert.is(badOption.status, 2)
  assert.is(badOption.stdout, '')
  assert.is(JSON.parse(badOption.stderr).error.code, 'ERR_PARSE_ARGS_UNKNOWN_OPTION')
  const missing = await run(['create', 'x'])
  assert.is(missing.status, 2)
  assert.match(missing.stderr, /usage: txarray create STORE NAME/)
  assert.is(ok(await run(['--version']), '--version').trim(), (require('../package.json') as { version: string }).version)
})

test('create, ls, info: human and --json; a missing store is exit 1 with TXA_NOT_FOUND and is not created', async () => {
  const dir = path.join(tempDir(), 'store')
  const missing = await run(['ls', dir, '--json'])
  assert.is(missing.status, 1)
  assert.is(JSON.parse(missing.stderr).error.code, 'TXA_NOT_FOUND')
  assert.not.ok(fs.existsSync(dir))
  const created = json(txarray(['create', dir, 'sensor', '--dtype', 'float32', '--shape', '0,16', '--attrs', '{"unit":"mV"}', '--json']), 'create')
  assert.equal(created.shape, [0, 16])
  assert.match(ok(await run(['create', dir, 'ids', '--dtype', 'uint64', '--shape', '5', '--block-bytes', '4k']), 'create ids'), /created ids: uint64 \[5\]/)
  const dup = await run(['create', dir, 'ids', '--dtype', 'uint64', '--shape', '5'])
  assert.is(dup.status, 1)
  assert.match(dup.stderr, /TXA_EXISTS/)
  const badDtype = await run(['create', dir, 'x', '--dtype', 'float16', '--shape', '5'])
  assert.is(badDtype.status, 1)
  assert.match(badDtype.stderr, /TXA_DTYPE/)
  assert.is((await run(['create', dir, 'x', '--dtype', 'int8', '--shape', 'a,b'])).status, 2)
  const listed = json<Array<{ name: string; dtype: string; shape: number[]; bytes: number }>>(txarray(['ls', dir, '--json']), 'ls')
  assert.equal(listed, [{ name: 'ids', dtype: 'uint64', shape: [5], bytes: 40 }, { name: 'sensor', dtype: 'float32', shape: [0, 16], bytes: 0 }])
  const human = ok(await run(['ls', dir]), 'ls')
  assert.match(human, /^ids\s+uint64\s+\[5\]\s+40 B$/m)
  const info = json(txarray(['info', dir, 'ids', '--json']), 'info')
  assert.equal(info, { name: 'ids', dtype: 'uint64', shape: [5], size: 5, itemBytes: 8, bytes: 40, blockBytes: 4096, blocks: 1, attrs: {} })
  assert.match(ok(await run(['info', dir, 'sensor']), 'info'), /sensor: float32 \[0, 16\][\s\S]*attrs\s+\{"unit":"mV"\}/)
  assert.equal(json(await run(['info', dir, '--json']), 'info store'), { path: dir, serial: json(await run(['info', dir, '--json']), 'info').serial, arrays: 2, bytes: 40 })
  const gone = await run(['info', dir, 'nope'])
  assert.is(gone.status, 1)
  assert.match(gone.stderr, /TXA_NOT_FOUND: no array named 'nope'/)
})

test('append CSV and raw from stdin; cat prints numpy style, selections included; --json data', async () => {
  const dir = path.join(tempDir(), 'store')
  ok(await run(['create', dir, 'm', '--dtype', 'float64', '--shape', '0,3']), 'create')
  const r = json(txarray(['append', dir, 'm', '--csv', '--json'], '# x,y,z\n1,2,3\n4, 5, 6\n\nnan inf -inf\n'), 'append csv')
  assert.equal(r.shape, [3, 3])
  assert.is(r.rows, 3)
  const raw = Buffer.from(new Float64Array([7, 8, 9, 10, 11, 12]).buffer)
  assert.match(ok(await run(['append', dir, 'm'], raw), 'append raw'), /appended 2 rows to m: now \[5, 3\]/)
  assert.is(ok(await run(['cat', dir, 'm']), 'cat'), '[[  1.   2.   3.]\n [  4.   5.   6.]\n [ nan  inf -inf]\n [  7.   8.   9.]\n [ 10.  11.  12.]]\n')
  assert.is(ok(txarray(['cat', dir, 'm', '-2:, ::2']), 'cat sel'), '[[ 7.  9.]\n [10. 12.]]\n')
  assert.is(ok(await run(['cat', dir, 'm', '-1, -1']), 'cat scalar'), '12.\n')
  assert.equal(json(txarray(['cat', dir, 'm', '1:3', '--json']), 'cat json'), { dtype: 'float64', shape: [2, 3], data: [[4, 5, 6], ['NaN', 'Infinity', '-Infinity']] })
  // a bad row is refused and nothing of that input is appended (one commit at the end)
  const bad = await run(['append', dir, 'm', '--csv'], '1,2,3\n1,2\n')
  assert.is(bad.status, 2)
  assert.match(bad.stderr, /line 2: 2 values/)
  const partial = await run(['append', dir, 'm'], Buffer.alloc(20))
  assert.is(partial.status, 2)
  assert.match(partial.stderr, /not a whole row/)
  assert.equal(json(await run(['info', dir, 'm', '--json']), 'info').shape, [5, 3])
  assert.is((await run(['cat', dir, 'm', '1:2:0'])).status, 2)
  assert.is((await run(['cat', dir, 'm', '9'])).status, 1)
  // a large array prints its edges only
  ok(await run(['create', dir, 'big', '--dtype', 'int64', '--shape', '0,50']), 'create big')
  const rows = BigInt64Array.from({ length: 5000 }, (_, i) => BigInt(i) * 10n ** 15n)
  ok(await run(['append', dir, 'big'], Buffer.from(rows.buffer)), 'append big')
  // 100 rows of 50: 3 rows at each end, 3 items at each end of a row, lines wrapped at 75
  const edges = ok(await run(['cat', dir, 'big']), 'cat big').trim().split('\n')
  assert.is(edges.length, 13)
  assert.is(edges[0], '[[                  0    1000000000000000    2000000000000000 ...')
  assert.is(edges[1], '    47000000000000000   48000000000000000   49000000000000000]')
  assert.is(edges[6].trim(), '...')
  assert.ok(edges[12].endsWith('4998000000000000000 4999000000000000000]]'), edges[12])
  const ints = json<{ data: string[] }>(await run(['cat', dir, 'big', '-1, -2:', '--json']), 'cat big json')
  assert.equal(ints.data, ['4998000000000000000', '4999000000000000000'])
})

test('import and export .npy; export --select; no progress output when stderr is not a terminal', async () => {
  const tmp = tempDir()
  const dir = path.join(tmp, 'store')
  const file = path.join(tmp, 'in.npy')
  const values = Int16Array.from({ length: 24 }, (_, i) => i - 12)
  fs.writeFileSync(file, npyFile(dictText('<i2', [4, 6]), new Uint8Array(values.buffer)))
  const imported = txarray(['import', dir, 'grid', file, '--chunk-bytes', '8', '--json'])
  assert.is(imported.stderr, '')
  const r = json(imported, 'import')
  assert.equal([r.dtype, r.shape, r.bytes, r.version], ['int16', [4, 6], 48, '1.0'])
  const out = path.join(tmp, 'out.npy')
  const exported = txarray(['export', dir, 'grid', out, '--select', '1:3, ::-2'])
  assert.is(exported.stderr, '')
  assert.match(ok(exported, 'export'), /exported grid\[1:3, ::-2\] to .*: int16 \[2, 3\], 12 B/)
  const h = readNpyHeader(out)
  assert.equal(h.shape, [2, 3])
  assert.equal(Array.from(new Int16Array(dataOf(out))), [-1, -3, -5, 5, 3, 1])
  const hostile = path.join(tmp, 'bad.npy')
  fs.writeFileSync(hostile, npyFile("{'descr': '<i2', 'fortran_order': False, 'shape': (-4,), }"))
  const refused = txarray(['import', dir, 'bad', hostile, '--json'])
  assert.is(refused.status, 1)
  assert.is(JSON.parse(refused.stderr).error.code, 'TXA_NPY')
  assert.not.ok(json<Array<{ name: string }>>(await run(['ls', dir, '--json']), 'ls').some((a) => a.name === 'bad'))
})

test('stat: blocks, bytes, pages, readers, map size', async () => {
  const dir = path.join(tempDir(), 'store')
  ok(await run(['create', dir, 'a', '--dtype', 'uint8', '--shape', '0', '--block-bytes', '4096']), 'create')
  ok(await run(['append', dir, 'a'], Buffer.alloc(3 * 4096, 7)), 'append')
  const s = json(txarray(['stat', dir, '--json']), 'stat')
  assert.is(s.arrays, 1)
  assert.is(s.blocks, 3)
  assert.is(s.dataBytes, 3 * 4096)
  assert.is(s.pageBytes, 4096)
  for (const key of ['fileBytes', 'mapBytes', 'usedPages', 'freePages', 'readers', 'maxReaders', 'blockPages']) assert.type(s[key], 'number', key)
  assert.ok((s.readers as number) >= 1)
  const human = ok(await run(['stat', dir]), 'stat')
  assert.match(human, /^blocks\s+3 stored/m)
  assert.match(human, /^readers\s+\d+ of \d+ slots/m)
  assert.match(human, /^map\s+\d/m)
})

test('check: exit 0 on a sound store, 3 on flipped block bytes (or TXA_UNSUPPORTED, exit 1, without store.check)', async () => {
  const tmp = tempDir()
  const dir = path.join(tmp, 'store')
  ok(await run(['create', dir, 'a', '--dtype', 'uint8', '--shape', '0', '--block-bytes', '4096']), 'create')
  const pattern = Buffer.alloc(4096)
  for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 131 + 17) & 0xff
  ok(await run(['append', dir, 'a'], pattern), 'append')
  const store = open(dir)
  const hasCheck = typeof (store as unknown as { check?: unknown }).check === 'function'
  store.close()
  const r = txarray(['check', dir, '--json'])
  if (!hasCheck) {
    assert.is(r.status, 1)
    assert.is(JSON.parse(r.stderr).error.code, 'TXA_UNSUPPORTED')
    console.log('  (store.check() is not in this build: check reports TXA_UNSUPPORTED)')
    return
  }
  const report = json<{ ok: boolean; problems: unknown[] }>(r, 'check')
  assert.ok(report.ok)
  assert.equal(report.problems, [])
  // flip one byte of the block in the data file
  const file = path.join(dir, 'data.mdb')
  const data = fs.readFileSync(file)
  const at = data.indexOf(pattern.subarray(100, 164))
  assert.ok(at > 0, 'the block is found in the data file')
  data[at + 10] ^= 0xff
  fs.writeFileSync(file, data)
  const damaged = txarray(['check', dir])
  assert.is(damaged.status, 3)
  assert.match(damaged.stdout, /DAMAGED/)
})

test('watch prints the commits of other processes as they happen; --count stops it', async () => {
  const dir = path.join(tempDir(), 'store')
  ok(await run(['create', dir, 'feed', '--dtype', 'int32', '--shape', '0,2']), 'create')
  const before = open(dir)
  const serial = before.serial
  before.close()
  const child = startTxarray(['watch', dir, '--count', '3', '--json'])
  const events: Array<Record<string, unknown>> = []
  lines(child, (l) => events.push(JSON.parse(l)))
  let stderr = ''
  child.stderr!.on('data', (d) => { stderr += d })
  // the watcher's first line says it has its snapshot
  for (let t = 0; t < 600 && events.length === 0; t++) await new Promise((r) => setTimeout(r, 50))
  try {
    assert.equal(events.shift(), { watching: dir, serial })
  } catch (e) {
    child.kill('SIGKILL')
    throw e
  }
  const store = open(dir)
  const a = store.array('feed', 'int32')
  for (let k = 1; k <= 2; k++) {
    a.append(new Int32Array(2 * k))
    store.commit()
    await new Promise((r) => setTimeout(r, 400))
  }
  store.create('other', { dtype: 'int8', shape: [1] })
  store.commit()
  const code = await Promise.race([exited(child), new Promise<string>((r) => setTimeout(() => r('timeout'), 30000))])
  if (child.exitCode === null) child.kill('SIGKILL')
  store.close()
  assert.is(code, 0, stderr)
  assert.is(events.length, 3)
  assert.equal(events[0].changed, [{ name: 'feed', shape: [1, 2], rows: 1, addedRows: 1 }])
  assert.equal(events[1].changed, [{ name: 'feed', shape: [3, 2], rows: 3, addedRows: 2 }])
  assert.equal(events[2].created, ['other'])
  assert.ok((events[2].serial as number) > (events[0].serial as number))
  // --timeout-ms ends a quiet watch
  const quiet = txarray(['watch', dir, '--timeout-ms', '300'])
  assert.is(quiet.status, 0)
  assert.is(quiet.stdout, '')
  assert.match(quiet.stderr, /watching .* from serial \d+/)
})

test('export --follow grows a .npy with appends until interrupted (SIGINT: exit 0)', async () => {
  const tmp = tempDir()
  const dir = path.join(tmp, 'store')
  const file = path.join(tmp, 'follow.npy')
  ok(await run(['create', dir, 'f', '--dtype', 'float32', '--shape', '0,4']), 'create')
  const child = startTxarray(['export', dir, 'f', file, '--follow', '--json'])
  const shapes: number[][] = []
  lines(child, (l) => shapes.push(JSON.parse(l).shape))
  for (let t = 0; t < 100 && !fs.existsSync(file); t++) await new Promise((r) => setTimeout(r, 100))
  assert.ok(fs.existsSync(file), 'the file exists once following starts')
  assert.equal(readNpyHeader(file).shape, [0, 4])
  try {
    const store = open(dir)
    store.array('f', 'float32').append(new Float32Array(8).fill(1.5))
    store.commit()
    store.close()
    // between an append's rows and its header rewrite the file holds rows its header does not
    // show yet (a strict reader reports bytes after the data): poll until the header shows them
    const rowsShown = () => {
      try {
        return readNpyHeader(file).shape[0]
      } catch {
        return -1
      }
    }
    for (let t = 0; t < 400 && rowsShown() !== 2; t++) await new Promise((r) => setTimeout(r, 50))
    assert.equal(readNpyHeader(file).shape, [2, 4])
    child.kill('SIGINT')
    assert.is(await exited(child), 0)
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL')
  }
  assert.equal(shapes.at(-1), [2, 4])
  assert.equal(Array.from(new Float32Array(dataOf(file))), new Array(8).fill(1.5))
})

test('bench: four figures in about the time asked', async () => {
  const t0 = Date.now()
  const r = json<{ figures: Array<{ name: string; value: number; unit: string }> }>(txarray(['bench', '--seconds', '0.4', '--json']), 'bench')
  assert.equal(r.figures.map((f) => f.name), ['append', 'append-durable', 'take', 'read'])
  for (const f of r.figures) assert.ok(f.value > 0, `${f.name} ${f.value}`)
  assert.ok(Date.now() - t0 < 30000)
  assert.is((await run(['bench', '--seconds', '-1'])).status, 2)
})

test('bin/txarray.js runs the built library (npm install builds dist/)', async () => {
  const root = path.join(__dirname, '..')
  if (!fs.existsSync(path.join(root, 'dist', 'cli', 'run.js'))) {
    assert.unreachable('dist/cli/run.js is missing: npm install (prepare) or npm run build builds it')
  }
  const r = spawnSync(path.join(root, 'bin', 'txarray.js'), ['--help'], { encoding: 'utf8' })
  assert.is(r.status, 0, r.stderr)
  assert.match(r.stdout, /^Usage: txarray <command>/m)
})

test.run()
