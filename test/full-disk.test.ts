// A full file system gives DiskFullError (TXA_DISK_FULL), never a crash, and loses
// nothing committed. The tests mount a small tmpfs, so they run as root only.
import { execFileSync, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { DiskFullError, open } from '../src/index'
import { helpersDir, tsxRegister } from './helpers/child'
import { throwsCode } from './helpers/expect'
import { openInChild } from './helpers/open-in-child'
import { tempDir } from './helpers/tmp'

const isRoot = process.getuid?.() === 0
// Counted as skipped (not passed) when not root, with a message saying why.
const rootTest = isRoot ? test : test.skip
if (!isRoot) console.log('  skipped: the full-disk tests mount a tmpfs, which needs root')

/** Runs fn with a fresh tmpfs of `megabytes` mounted at a temporary directory. */
function withTmpfs(megabytes: number, fn: (mount: string) => void): void {
  const mount = tempDir('txarray-full-')
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${megabytes}m`, 'tmpfs', mount])
  try {
    fn(mount)
  } finally {
    // lazily if a failed test left a store open on it
    execFileSync('umount', ['-l', mount])
  }
}

/** Fills the file system holding `dir` with one file; returns its path. */
function fill(dir: string): string {
  const filler = path.join(dir, 'filler')
  const fd = fs.openSync(filler, 'w')
  const chunk = Buffer.alloc(4096, 1)
  try {
    for (;;) fs.writeSync(fd, chunk)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e
  } finally {
    fs.closeSync(fd)
  }
  return filler
}

function seeded(dir: string, rows: number): void {
  const store = open(dir)
  store.create('x', { dtype: 'float64', shape: [rows], blockBytes: 4096 }).write(null, 1)
  store.commit()
  store.close()
}

rootTest('a new store on a full file system: DiskFullError saying the disk is full, no crash', () => {
  withTmpfs(2, (mount) => {
    fill(mount)
    const r = openInChild(path.join(mount, 'store'), {}, { write: true })
    assert.is(r.signal, null, `killed by ${r.signal}: ${r.output}`)
    assert.is(r.outcome?.code, 'TXA_DISK_FULL', r.output)
    assert.match(r.outcome?.message ?? '', /disk is full/)
    // the failed attempt left nothing that looks damaged: with space, the store is created
    fs.unlinkSync(path.join(mount, 'filler'))
    const again = openInChild(path.join(mount, 'store'), {}, { write: true })
    assert.equal(again.outcome?.write, { ok: true, code: null }, again.output)
  })
})

test('lock.mdb and txarray.signal have every block allocated before they are mapped (any user)', () => {
  const dir = tempDir()
  open(dir).close()
  for (const file of ['lock.mdb', 'txarray.signal']) {
    const st = fs.statSync(path.join(dir, file))
    assert.ok(st.size > 0, file)
    assert.ok(st.blocks * 512 >= st.size, `${file}: ${st.blocks * 512} bytes allocated of ${st.size}`)
  }
})

rootTest('100 handles on an existing store of a full file system: no crash, every handle reads', () => {
  withTmpfs(4, (mount) => {
    const dir = path.join(mount, 'store')
    seeded(dir, 1000)
    fill(mount)
    const r = spawnSync(process.execPath, ['-r', tsxRegister, path.join(helpersDir, 'handles.child.ts'), dir, '100', 'x'], {
      encoding: 'utf8', env: { ...process.env, TXA_CHILD: '1' }, timeout: 120_000,
    })
    assert.is(r.signal, null, `killed by ${r.signal}: ${r.stderr}`)
    const outcome = JSON.parse(r.stdout.trim()) as { ok: boolean; sums?: number[]; message?: string }
    assert.ok(outcome.ok, outcome.message)
    assert.equal(outcome.sums, Array(100).fill(1000))
  })
})

rootTest('a commit that hits ENOSPC: DiskFullError, committed data intact, the same commit succeeds once space is freed', () => {
  withTmpfs(8, (mount) => {
    const dir = path.join(mount, 'store')
    const store = open(dir)
    const a = store.create('rows', { dtype: 'int32', shape: [0, 1024], blockBytes: 4096 })
    store.commit()
    const filler = path.join(mount, 'filler')
    fs.writeFileSync(filler, Buffer.alloc(5 << 20, 1)) // leaves about 3 MiB
    let committed = 0
    let error: unknown = null
    const batch = (k: number) => new Int32Array(64 * 1024).map((_, i) => k * 100_000 + (i >> 10))
    for (let k = 0; k < 100 && !error; k++) {
      a.append(batch(k))
      try {
        store.commit()
        committed = a.rows
      } catch (e) {
        error = e
      }
    }
    const e = throwsCode(() => { throw error }, DiskFullError, 'TXA_DISK_FULL')
    assert.match(e.message, /disk is full/)
    assert.ok(committed > 0, 'some commits fitted before the disk was full')
    assert.is(store.dirty, true, 'the failed transaction keeps its changes')
    // another handle sees every committed row, and nothing of the failed commit
    const reader = open(dir)
    const r = reader.array('rows', 'int32')
    assert.is(r.rows, committed)
    for (let row = 0; row < committed; row += 64) assert.is(r.read([row, 0]).data[0], (row / 64) * 100_000 + 0)
    reader.close()
    fs.unlinkSync(filler)
    store.commit()
    assert.is(a.rows, committed + 64)
    store.close()
    const again = open(dir)
    const rows = again.array('rows', 'int32')
    assert.is(rows.rows, committed + 64)
    assert.is(rows.read([committed + 63, 1023]).data[0], (committed / 64) * 100_000 + 63)
    again.close()
  })
})

test.run()
