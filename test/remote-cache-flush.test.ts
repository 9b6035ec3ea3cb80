// The cache's flush rule (docs/scale-out.md): the server holds every commit durably, so a
// cache takes commits without fsync, under a durable mark file `unflushed` holding the
// boot id, and is flushed later (in the background, and at close). A process killed
// before the flush loses nothing; a cache left unflushed by a machine that stopped (a mark
// from another boot) is rebuilt from the server at its next remote open, and refused by
// a read-only open.
import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CorruptionError, open, slice } from '../src/index'
import { startChild } from './helpers/child'
import { throwsCode } from './helpers/expect'
import { testPostgres } from './helpers/postgres'
import { tempDir } from './helpers/tmp'
import { until } from './helpers/until'

const found = testPostgres()
const bootId = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
const mark = (cache: string) => path.join(cache, 'unflushed')

/** Whether this process still has a file of `cache` open or mapped (a handle's LMDB files). */
function holdsFiles(cache: string): boolean {
  const dir = `${fs.realpathSync(cache)}/`
  const inCache = (file: string) => file.startsWith(dir)
  const fds = fs.readdirSync('/proc/self/fd').some((fd) => {
    try {
      return inCache(fs.readlinkSync(`/proc/self/fd/${fd}`))
    } catch {
      return false  // the fd of the listing itself, or one closed meanwhile
    }
  })
  return fds || fs.readFileSync('/proc/self/maps', 'utf8').split('\n').some((l) => inCache(l.slice(l.indexOf('/'))))
}

/**
 * Waits until a closed handle's link has flushed the cache (the mark gone) and let go of
 * its files: close() ends the link in the background, and the mark can go (the flush
 * 1 s after a commit) while the link still holds the LMDB files. Damaging them before
 * then damages a store this process has open (a later open in the process shares it).
 */
async function closedAndReleased(cache: string): Promise<void> {
  await until('close() flushed the cache and released its files', () => !fs.existsSync(mark(cache)) && !holdsFiles(cache))
}

if ('skipped' in found) {
  console.log(`remote-cache-flush: skipped (${found.skipped})`)
  test.skip('the cache of a remote store is flushed after its commits', () => undefined)
} else {
  const server = found.server
  let database: string | null = null
  async function remoteStore() {
    const url = (database ??= await server.freshDatabase())
    return { url, remoteSchema: `f_${randomBytes(5).toString('hex')}` }
  }

  test('a commit leaves the cache unflushed under the mark (this boot); the background flush and close() remove it', async () => {
    const { url, remoteSchema } = await remoteStore()
    const cache = tempDir()
    const a = open(cache, { remote: url, remoteSchema })
    a.create('x', { dtype: 'float64', shape: [512] }).write(null, 7)
    a.commit()
    assert.ok(fs.existsSync(mark(cache)), 'the commit did not flush the cache: the mark says so')
    assert.is(fs.readFileSync(mark(cache), 'utf8').trim(), bootId)
    await until('the background flush removed the mark', () => !fs.existsSync(mark(cache)))
    a.array('x', 'float64').write(null, 8)
    a.commit()
    assert.ok(fs.existsSync(mark(cache)))
    a.close()
    await until('close() flushed the cache', () => !fs.existsSync(mark(cache)))
    const again = open(cache, { readOnly: true })
    assert.ok(again.array('x', 'float64').read().data.every((v) => v === 8))
    again.close()
  })

  test('kill -9 right after a commit, before any flush: the cache opens, holds the commit and catches up; nothing is lost', async () => {
    const { url, remoteSchema } = await remoteStore()
    const cache = tempDir()
    const child = startChild('remote-machine.child.ts', ['hold', url, remoteSchema, cache, '3000'])
    let out = ''
    child.stdout!.on('data', (d: Buffer) => { out += d.toString() })
    let err = ''
    child.stderr!.on('data', (d: Buffer) => { err += d.toString() })
    await until(`the child committed (${err})`, () => /committed \d+/.test(out), 60_000)
    child.kill('SIGKILL')
    await new Promise((r) => child.on('exit', r))
    if (fs.existsSync(mark(cache))) assert.is(fs.readFileSync(mark(cache), 'utf8').trim(), bootId, 'a mark of this boot')
    // Another machine commits meanwhile.
    const b = open(tempDir(), { remote: url, remoteSchema })
    b.array('held', 'float64').write([slice(0, 1)], -1)
    b.commit()
    const reopened = open(cache, { readOnly: true })
    const held = Array.from(reopened.array('held', 'float64').read().data)
    assert.equal(held, Array.from({ length: 3000 }, (_, i) => i), "the killed machine's commit is in its cache")
    reopened.close()
    const back = open(cache, { remote: url, remoteSchema })
    assert.is(back.serial, b.serial, 'caught up')
    assert.equal(Array.from(back.array('held', 'float64').read().data), [-1, ...Array.from({ length: 2999 }, (_, i) => i + 1)])
    back.close()
    b.close()
  })

  test('a cache left unflushed in another boot: a read-only open refuses it (TXA_CORRUPT), a remote open rebuilds it from the server', async () => {
    const { url, remoteSchema } = await remoteStore()
    const cache = tempDir()
    const a = open(cache, { remote: url, remoteSchema })
    a.create('x', { dtype: 'float64', shape: [2048], blockBytes: 4096 }).write(null, Float64Array.from({ length: 2048 }, (_, i) => i / 2))
    a.commit()
    a.close()
    await closedAndReleased(cache)
    // What a machine stop before the flush may leave: pages of any age, and the mark of that boot.
    fs.writeFileSync(path.join(cache, 'data.mdb'), randomBytes(64 * 1024))
    fs.writeFileSync(mark(cache), 'an-earlier-boot\n')
    throwsCode(() => open(cache, { readOnly: true }), CorruptionError, 'TXA_CORRUPT')
    const rebuilt = open(cache, { remote: url, remoteSchema })
    assert.is(rebuilt.serial, 1)
    assert.equal(Array.from(rebuilt.array('x', 'float64').read().data), Array.from({ length: 2048 }, (_, i) => i / 2))
    assert.not.ok(fs.readdirSync(cache).some((f) => f.startsWith('unflushed') && fs.readFileSync(path.join(cache, f), 'utf8').includes('an-earlier-boot')))
    rebuilt.close()
  })

  test('two processes open a cache left unflushed in another boot at once: one rebuilds it, the other waits for it; both read the server', async () => {
    const { url, remoteSchema } = await remoteStore()
    const cache = tempDir()
    const expected = Array.from({ length: 2048 }, (_, i) => i * 3)
    const a = open(cache, { remote: url, remoteSchema })
    a.create('x', { dtype: 'float64', shape: [2048], blockBytes: 4096 }).write(null, Float64Array.from(expected))
    a.commit()
    a.close()
    await closedAndReleased(cache)
    fs.writeFileSync(path.join(cache, 'data.mdb'), randomBytes(64 * 1024))
    fs.writeFileSync(mark(cache), 'an-earlier-boot\n')
    // The first process pauses between taking the rebuild and removing the damaged files.
    const first = startChild('remote-machine.child.ts', ['read', url, remoteSchema, cache, 'x'], { TXARRAY_TEST_REBUILD_PAUSE_MS: '1500' })
    let out = ''
    let err = ''
    first.stdout!.on('data', (d: Buffer) => { out += d.toString() })
    first.stderr!.on('data', (d: Buffer) => { err += d.toString() })
    const exited = new Promise<number | null>((r) => first.on('exit', r))
    await until(`the first process took the rebuild (${err})`, () => fs.readdirSync(cache).some((f) => f.startsWith('unflushed.rebuild.')), 60_000)
    // This one arrives while the damaged files are still there: it waits, then reads the server's data.
    const t0 = Date.now()
    const second = open(cache, { remote: url, remoteSchema })
    assert.ok(Date.now() - t0 > 200, 'the second open waited for the rebuild')
    assert.equal(Array.from(second.array('x', 'float64').read().data), expected)
    second.close()
    assert.is(await exited, 0, err)
    assert.equal(JSON.parse(out), expected)
    assert.not.ok(fs.readdirSync(cache).some((f) => f.startsWith('unflushed.rebuild.')), 'no rebuild left behind')
  })

  test('a rebuild left unfinished by a process that died: a read-only open refuses the cache, a remote open finishes the rebuild', async () => {
    const { url, remoteSchema } = await remoteStore()
    const cache = tempDir()
    const a = open(cache, { remote: url, remoteSchema })
    a.create('x', { dtype: 'float64', shape: [1024], blockBytes: 4096 }).write(null, 5)
    a.commit()
    a.close()
    await closedAndReleased(cache)
    // What a process killed mid-rebuild leaves: its rebuild file (a pid no process has) and damaged pages.
    fs.writeFileSync(path.join(cache, 'data.mdb'), randomBytes(64 * 1024))
    fs.writeFileSync(path.join(cache, 'unflushed.rebuild.2147483646'), 'an-earlier-boot\n')
    throwsCode(() => open(cache, { readOnly: true }), CorruptionError, 'TXA_CORRUPT')
    const rebuilt = open(cache, { remote: url, remoteSchema })
    assert.ok(rebuilt.array('x', 'float64').read().data.every((v) => v === 5))
    assert.not.ok(fs.readdirSync(cache).some((f) => f.startsWith('unflushed.rebuild.')))
    rebuilt.close()
  })
}

test.run()
