/**
 * Runs TypeScript scripts of test/helpers/ in a child process or a worker thread, with
 * tsx loaded, so that a test can act as a second process or thread on the same store.
 * Child scripts only run when TXA_CHILD is set (uvu may load them when a file pattern
 * matches their name).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import * as path from 'node:path'
import { Worker } from 'node:worker_threads'

export const tsxRegister = require.resolve('tsx/cjs')
export const helpersDir = __dirname

function scriptPath(script: string): string {
  return path.isAbsolute(script) ? script : path.join(helpersDir, script)
}

/** Runs a script to completion; throws (with its output) unless it exits with 0. Returns stdout. */
export function runChild(script: string, args: readonly string[] = []): string {
  const r = spawnSync(process.execPath, ['-r', tsxRegister, scriptPath(script), ...args], {
    encoding: 'utf8',
    env: { ...process.env, TXA_CHILD: '1' },
  })
  if (r.status !== 0) {
    throw new Error(`child ${script} ${args.join(' ')} exited with ${r.signal ?? r.status}:\n${r.stdout}\n${r.stderr}`)
  }
  return r.stdout
}

/** Starts a script in the background (`env` adds to this process's environment). */
export function startChild(script: string, args: readonly string[] = [], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, ['-r', tsxRegister, scriptPath(script), ...args], {
    env: { ...process.env, ...env, TXA_CHILD: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
}

/** Resolves with the child's stdout once it exits with 0; rejects with its output otherwise. */
export function finished(child: ChildProcess): Promise<string> {
  let out = ''
  let err = ''
  child.stdout!.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr!.on('data', (d: Buffer) => { err += d.toString() })
  return new Promise((resolve, reject) => child.on('exit', (code, signal) => {
    if (code === 0) resolve(out)
    else reject(new Error(`child exited with ${signal ?? code}:\n${out}\n${err}`))
  }))
}

/** Starts a script in a worker thread; `workerData` is handed over as is. */
export function startWorker(script: string, workerData: unknown): Worker {
  const code = `process.env.TXA_CHILD = '1'; require(${JSON.stringify(tsxRegister)}); require(${JSON.stringify(scriptPath(script))})`
  return new Worker(code, { eval: true, workerData })
}

/** Resolves with the worker's messages once it exits with code 0; rejects otherwise. */
export function workerDone<T = unknown>(worker: Worker): Promise<T[]> {
  const messages: T[] = []
  return new Promise((resolve, reject) => {
    worker.on('message', (m: T) => messages.push(m))
    worker.on('error', reject)
    worker.on('exit', (code) => (code === 0 ? resolve(messages) : reject(new Error(`worker exited with ${code}`))))
  })
}
