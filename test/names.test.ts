// Array names: 1 to 255 UTF-8 bytes of well-formed Unicode. A name that UTF-8 cannot hold
// exactly (a lone UTF-16 surrogate) is refused, so two names never alias one array.
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ArgumentError, open } from '../src/index'
import { throwsCode } from './helpers/expect'
import { tempDir } from './helpers/tmp'

test('names with a lone surrogate are refused by every call that takes a name', () => {
  const store = open(tempDir())
  for (const name of ['\ud800', '\udc00', 'a\ud83dz', 'x\ude00', '\udfff\ud800']) {
    throwsCode(() => store.create(name, { dtype: 'int8', shape: [1] }), ArgumentError, 'TXA_ARGUMENT')
    throwsCode(() => store.array(name), ArgumentError, 'TXA_ARGUMENT')
    throwsCode(() => store.has(name), ArgumentError, 'TXA_ARGUMENT')
    throwsCode(() => store.delete(name), ArgumentError, 'TXA_ARGUMENT')
  }
  assert.equal(store.list(), [])
  store.close()
})

test('names that differ only in lone surrogates no longer alias one array', () => {
  const store = open(tempDir())
  throwsCode(() => store.create('\ud800', { dtype: 'int8', shape: [1] }), ArgumentError, 'TXA_ARGUMENT')
  store.create('\ufffd', { dtype: 'int8', shape: [1] })
  store.commit()
  throwsCode(() => store.has('\udc00'), ArgumentError, 'TXA_ARGUMENT')
  assert.equal(store.list(), ['\ufffd'])
  store.close()
})

test('well-formed names round-trip exactly: pairs of surrogates, NUL, 255 UTF-8 bytes', () => {
  const dir = tempDir()
  const names = ['😀', 'a\u0000b', 'a', 'é'.repeat(127), 'x'.repeat(255), '名前', ' ']
  const store = open(dir)
  for (const [i, name] of names.entries()) store.create(name, { dtype: 'int32', shape: [1] }).write([0], i)
  store.commit()
  store.close()
  const again = open(dir)
  assert.equal(again.list(), [...names].sort())
  for (const [i, name] of names.entries()) assert.is(again.array(name, 'int32').read([0]).data[0], i, JSON.stringify(name))
  throwsCode(() => again.create('x'.repeat(256), { dtype: 'int8', shape: [1] }), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => again.create('é'.repeat(128), { dtype: 'int8', shape: [1] }), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => again.create('', { dtype: 'int8', shape: [1] }), ArgumentError, 'TXA_ARGUMENT')
  throwsCode(() => again.create(5 as never, { dtype: 'int8', shape: [1] }), ArgumentError, 'TXA_ARGUMENT')
  again.close()
})

test.run()
