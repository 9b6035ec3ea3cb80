/**
 * A throwaway PostgreSQL cluster for the tests that need a real server: `initdb` into a
 * temporary directory, `pg_ctl start` listening on 127.0.0.1 at a random port (and a Unix
 * socket in the same directory), stopped and removed when the process exits. One cluster
 * per test process, started at the first call; every test gets its own database.
 *
 * TXARRAY_TEST_POSTGRES (a connection string to a server whose user may create databases)
 * is used instead when set. The binaries are found in TXARRAY_TEST_POSTGRES_BIN when set
 * (a directory), else on PATH, else in Debian's /usr/lib/postgresql/<version>/bin (newest
 * version first). PostgreSQL refuses to run as
 * root: as root the cluster runs as the `postgres` user, otherwise as the current user.
 */
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { Client } from 'pg'

export interface TestPostgres {
  /** Connection string of database `name` (default: the maintenance database). */
  url(name?: string): string
  /** Creates an empty database and returns its connection string. */
  freshDatabase(): Promise<string>
  /** Stops the server (`pg_ctl stop -m <mode>`): `immediate` is a crash. Throwaway cluster only. */
  stop(mode?: 'fast' | 'immediate'): void
  /** Starts it again on the same port. Throwaway cluster only. */
  start(): void
  /** False for a server given by TXARRAY_TEST_POSTGRES (it cannot be stopped or started). */
  readonly owned: boolean
}

type Found = { server: TestPostgres } | { skipped: string }
let found: Found | null = null

/** The test server, or why there is none (the caller reports it as skipped). */
export function testPostgres(): Found {
  found ??= find()
  return found
}

function find(): Found {
  const given = process.env.TXARRAY_TEST_POSTGRES
  if (given) return { server: externalServer(given) }
  const bin = findBinaries()
  if (!bin) {
    return { skipped: `no PostgreSQL binaries (initdb, pg_ctl) ${process.env.TXARRAY_TEST_POSTGRES_BIN ? `in ${process.env.TXARRAY_TEST_POSTGRES_BIN}` : 'on PATH or in /usr/lib/postgresql/*/bin'}` }
  }
  try {
    return { server: throwawayCluster(bin) }
  } catch (e) {
    return { skipped: `could not start a throwaway PostgreSQL cluster: ${(e as Error).message}` }
  }
}

function findBinaries(): string | null {
  const has = (dir: string) => fs.existsSync(path.join(dir, 'initdb')) && fs.existsSync(path.join(dir, 'pg_ctl'))
  const given = process.env.TXARRAY_TEST_POSTGRES_BIN
  if (given) return has(given) ? given : null
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) if (dir && has(dir)) return dir
  const debian = '/usr/lib/postgresql'
  let versions: string[] = []
  try { versions = fs.readdirSync(debian) } catch { return null }
  versions.sort((a, b) => Number(b) - Number(a))
  for (const v of versions) if (has(path.join(debian, v, 'bin'))) return path.join(debian, v, 'bin')
  return null
}

/** The uid and gid the cluster runs as: `postgres` when we are root, else ourselves. */
function clusterUser(): { uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null
  const line = fs.readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postgres:'))
  if (!line) throw new Error('running as root and there is no postgres user to run the cluster as')
  const [, , uid, gid] = line.split(':')
  return { uid: Number(uid), gid: Number(gid) }
}

function throwawayCluster(bin: string): TestPostgres {
  const user = clusterUser()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'txarray-pg-'))
  const data = path.join(dir, 'data')
  if (user) fs.chownSync(dir, user.uid, user.gid)
  const run = (tool: string, args: string[]) => {
    const r = spawnSync(path.join(bin, tool), args, {
      encoding: 'utf8', cwd: dir, ...(user ?? {}), env: { ...process.env, LC_ALL: 'C', TZ: 'UTC' },
    })
    if (r.error) throw r.error
    if (r.status !== 0) throw new Error(`${tool} exited with ${r.status}: ${r.stderr || r.stdout}`)
  }
  run('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--no-instructions'])
  let port = 0
  const options = () =>
    `-c listen_addresses=127.0.0.1 -c port=${port} -c unix_socket_directories='${dir}' ` +
    `-c fsync=off -c full_page_writes=off -c max_connections=200 -c shared_buffers=32MB`
  const start = () => run('pg_ctl', ['start', '-w', '-t', '60', '-D', data, '-l', path.join(dir, 'log'), '-o', options()])
  let lastError: Error | null = null
  for (let attempt = 0; attempt < 8 && port === 0; attempt++) {
    port = 20000 + Math.floor(Math.random() * 40000)
    try {
      start()
    } catch (e) {
      lastError = e as Error
      port = 0
    }
  }
  if (port === 0) throw lastError ?? new Error('no free port')
  let running = true
  const stop = (mode: 'fast' | 'immediate' = 'fast') => {
    if (!running) return
    run('pg_ctl', ['stop', '-w', '-D', data, '-m', mode])
    running = false
  }
  process.on('exit', () => {
    try { stop('immediate') } catch { /* already gone */ }
    fs.rmSync(dir, { recursive: true, force: true })
  })
  const url = (name = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${name}`
  return {
    owned: true,
    url,
    freshDatabase: () => createDatabase(url()),
    stop,
    start: () => {
      if (running) return
      start()
      running = true
    },
  }
}

function externalServer(given: string): TestPostgres {
  const url = (name?: string) => {
    if (!name) return given
    const u = new URL(given)
    u.pathname = `/${name}`
    return u.toString()
  }
  const refuse = () => { throw new Error('TXARRAY_TEST_POSTGRES names a server this test cannot stop or start') }
  return { owned: false, url, freshDatabase: () => createDatabase(given), stop: refuse, start: refuse }
}

async function createDatabase(maintenanceUrl: string): Promise<string> {
  const name = `txarray_test_${randomBytes(6).toString('hex')}`
  const client = new Client({ connectionString: maintenanceUrl })
  await client.connect()
  try {
    await client.query(`CREATE DATABASE ${name}`)
  } finally {
    await client.end()
  }
  const u = new URL(maintenanceUrl)
  u.pathname = `/${name}`
  return u.toString()
}
