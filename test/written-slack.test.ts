// Durable commits write into blocks data.mdb has written before. After each durable
// commit, at least 256 KiB past LMDB's last page hold written zeros (not holes, not blocks
// fallocate left unwritten): a commit that lands there changes no block map, so its
// fdatasync needs no file-system journal commit (one device flush fewer per commit).
// Checked with filefrag (e2fsprogs), which reads the file's extents; skipped, counted,
// where filefrag or the file system's extent map is not available.
import { spawnSync } from 'node:child_process'
import * as path from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { open } from '../src/index'
import { tempDir } from './helpers/tmp'

interface Extent {
  first: number
  last: number
  unwritten: boolean
}

/** The extents of `file` (filefrag -v -s: synced first), or why they cannot be read. */
function extentsOf(file: string): Extent[] | string {
  const r = spawnSync('filefrag', ['-v', '-s', file], { encoding: 'utf8' })
  if (r.error) return `filefrag cannot run: ${r.error.message}`
  if (r.status !== 0) return `filefrag failed: ${r.stderr.trim()}`
  const extents: Extent[] = []
  for (const m of r.stdout.matchAll(/^\s*\d+:\s+(\d+)\.\.\s*(\d+):.*?(unwritten)?[^\n]*$/gm)) {
    extents.push({ first: Number(m[1]), last: Number(m[2]), unwritten: /unwritten/.test(m[0]) })
  }
  return extents.length ? extents : 'filefrag listed no extents'
}

const probe = (() => {
  const dir = tempDir()
  const store = open(dir)
  store.create('p', { dtype: 'uint8', shape: [1] }).write([0], 1)
  store.commit()
  store.close()
  return extentsOf(path.join(dir, 'data.mdb'))
})()
const run = typeof probe === 'string' ? test.skip : test
if (typeof probe === 'string') console.log(`  skipped: the file's extents cannot be read here (${probe})`)

/** Page numbers in [from, to) of data.mdb that are not written blocks (holes or unwritten). */
function unwrittenPages(file: string, from: number, to: number): number[] {
  const extents = extentsOf(file)
  if (typeof extents === 'string') throw new Error(extents)
  const bad: number[] = []
  for (let page = from; page < to; page++) {
    const e = extents.find((x) => x.first <= page && page <= x.last)
    if (!e || e.unwritten) bad.push(page)
  }
  return bad
}

run('after every durable commit of a stream, 256 KiB past the last page are written blocks', () => {
  const dir = tempDir()
  const store = open(dir)
  const a = store.create<'float32'>('s', { dtype: 'float32', shape: [0, 16] })
  store.commit()
  const file = path.join(dir, 'data.mdb')
  for (let k = 0; k < 40; k++) {
    a.append(new Float32Array(16 * 1000).fill(k + 1))
    store.commit()
    if (k % 8 !== 7) continue
    const { usedPages, pageBytes, fileBytes } = store.storageStats()
    const slack = (256 * 1024) / pageBytes
    assert.ok(fileBytes >= (usedPages + slack) * pageBytes, `file ${fileBytes} bytes, ${usedPages} pages used`)
    assert.equal(unwrittenPages(file, usedPages, usedPages + slack), [], `commit ${k}: pages past page ${usedPages}`)
  }
  assert.is(a.read().data[16 * 1000 * 40 - 1], 40)
  store.close()
})

run('sync: false commits write no zeros ahead (they are not waiting on a flush)', () => {
  const dir = tempDir()
  const store = open(dir, { sync: false })
  const a = store.create<'float32'>('s', { dtype: 'float32', shape: [0, 16] })
  for (let k = 0; k < 20; k++) {
    a.append(new Float32Array(16 * 1000).fill(k + 1))
    store.commit()
  }
  store.flush()
  const { usedPages, fileBytes, pageBytes } = store.storageStats()
  const file = path.join(dir, 'data.mdb')
  const past = unwrittenPages(file, usedPages, Math.floor(fileBytes / pageBytes))
  assert.ok(past.length > 0, 'the room past the last page is only allocated')
  store.close()
})

test.run()
