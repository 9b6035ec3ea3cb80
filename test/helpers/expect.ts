import * as assert from 'uvu/assert'
import { TxarrayError } from '../../src/index'

type ErrorClass = abstract new (...args: never[]) => TxarrayError

/**
 * Asserts that fn throws an instance of `cls` (and of TxarrayError) whose code is `code`.
 * Returns the error for further checks.
 */
export function throwsCode<C extends ErrorClass>(fn: () => unknown, cls: C, code: string): InstanceType<C> {
  let thrown: unknown
  try {
    fn()
  } catch (e) {
    thrown = e
  }
  if (thrown === undefined) assert.unreachable(`expected ${cls.name} (${code}), nothing was thrown`)
  if (!(thrown instanceof cls)) {
    assert.unreachable(`expected ${cls.name} (${code}), got ${String((thrown as Error)?.constructor?.name)}: ${String((thrown as Error)?.message ?? thrown)}`)
  }
  assert.instance(thrown, TxarrayError)
  assert.instance(thrown, Error)
  assert.is((thrown as TxarrayError).code, code)
  assert.is((thrown as TxarrayError).name, cls.name)
  assert.type((thrown as TxarrayError).message, 'string')
  assert.ok((thrown as TxarrayError).message.length > 0, 'the error has a message')
  return thrown as InstanceType<C>
}

/** The same for a promise: it must reject with `cls` and `code`. */
export async function rejectsCode<C extends ErrorClass>(p: Promise<unknown>, cls: C, code: string): Promise<InstanceType<C>> {
  let thrown: unknown
  try {
    await p
  } catch (e) {
    thrown = e
  }
  return throwsCode(() => {
    if (thrown !== undefined) throw thrown
  }, cls, code)
}
