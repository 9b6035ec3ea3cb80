/**
 * Runs open.child.ts: opens a store in a child process (optionally as another user) and
 * returns what it reported, with how the process ended.
 */
import { spawnSync } from 'node:child_process'
import * as path from 'node:path'
import { helpersDir, tsxRegister } from './child'
import type { OpenOutcome } from './open.child'

export interface ChildOpen {
  outcome: OpenOutcome | null
  /** The signal that killed the child (SIGBUS, SIGSEGV...), or null. */
  signal: NodeJS.Signals | null
  status: number | null
  output: string
}

export interface ChildOpenOptions {
  /** Also try a change after reading. */
  write?: boolean
  /**
   * Run as this uid/gid (root only), through setpriv. Such a child uses the SIGSEGV fault
   * mode: an unprivileged user may not have userfaultfd.
   */
  user?: number
}

export function openInChild(dir: string, options: object = {}, how: ChildOpenOptions = {}): ChildOpen {
  const args = ['-r', tsxRegister, path.join(helpersDir, 'open.child.ts'), dir, JSON.stringify(options), ...(how.write ? ['write'] : [])]
  const [command, argv] = how.user === undefined
    ? [process.execPath, args]
    : ['setpriv', [`--reuid=${how.user}`, `--regid=${how.user}`, '--clear-groups', process.execPath, ...args]]
  const r = spawnSync(command, argv, {
    encoding: 'utf8',
    env: { ...process.env, TXA_CHILD: '1', ...(how.user === undefined ? {} : { TXARRAY_FAULT_MODE: 'sigsegv' }) },
    timeout: 60_000,
  })
  const line = r.stdout?.trim().split('\n').at(-1) ?? ''
  let outcome: OpenOutcome | null = null
  try {
    outcome = JSON.parse(line) as OpenOutcome
  } catch {
    outcome = null
  }
  return { outcome, signal: r.signal, status: r.status, output: `${r.stdout ?? ''}${r.stderr ?? ''}` }
}

export interface BatchResult {
  /** One per directory, in order; null for a trial whose child was killed. */
  outcomes: Array<OpenOutcome | null>
  /** Signals that killed a child, with the directory it was opening. */
  killed: Array<{ dir: string; signal: string; output: string }>
}

/**
 * Opens each directory in turn, in as few child processes as possible: a child opens
 * and reads one directory after another, reporting each; if a signal kills it, that
 * directory's trial is recorded as killed and a new child goes on with the next.
 */
export function openEachInChild(dirs: string[], options: object = {}): BatchResult {
  const outcomes: Array<OpenOutcome | null> = []
  const killed: BatchResult['killed'] = []
  while (outcomes.length < dirs.length) {
    const rest = dirs.slice(outcomes.length)
    const r = spawnSync(process.execPath, ['-r', tsxRegister, path.join(helpersDir, 'open.child.ts'), JSON.stringify(rest), JSON.stringify(options)], {
      encoding: 'utf8',
      env: { ...process.env, TXA_CHILD: '1' },
      timeout: 120_000,
      maxBuffer: 1 << 26,
    })
    const lines = (r.stdout ?? '').split('\n').filter((l) => l.startsWith('{'))
    for (const line of lines) outcomes.push(JSON.parse(line) as OpenOutcome)
    if (outcomes.length < dirs.length) {
      killed.push({ dir: dirs[outcomes.length], signal: String(r.signal ?? `exit ${r.status}`), output: (r.stderr ?? '').slice(-2000) })
      outcomes.push(null)
    }
  }
  return { outcomes, killed }
}
