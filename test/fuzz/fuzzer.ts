/**
 * A seeded API fuzzer. It makes random calls on one store handle (create, write with
 * random selections, append, resize, setAttrs, commit, abort, refresh, views and writes
 * through them, views kept across commits and aborts, overlapping copies, take, reopen,
 * delete), commits of a second handle that this one must see only as its snapshot moves,
 * and hostile calls (wrong types, NaN, huge and negative numbers, Proxies, detached
 * buffers, SharedArrayBuffers), keeps a
 * model of what is committed and what the transaction holds (model.ts), and after every
 * call checks that
 *   - every error thrown is a TxarrayError with a TXA_ code (else: uncoded),
 *   - the call succeeded or failed as the model predicts, with the predicted code,
 *   - reads (read(), a view, take()) of the array it touched agree with the model, and a
 *     failed call changed nothing (else: mismatch).
 * Everything is derived from the seed: a failure report names the seed and call number.
 */
import { type BigArray, type DType, type Store, TxarrayError, open, slice } from '../../src/index'
import { Rng } from '../helpers/random'
import { type ArrayModel, type AxisSpec, type StoreModel, type Value, cloneModel, isBig, resolve, zero } from './model'

export interface FuzzOptions {
  dir: string
  seed: number
  /** Stop after this many calls... */
  calls?: number
  /** ...or after this many milliseconds, whichever comes first. */
  ms?: number
}

export interface FuzzStats {
  calls: number
  /** Calls that threw a coded error (expected or not). */
  codedErrors: number
  uncoded: number
  mismatches: number
  /** The first problems, with the seed and call number that reproduce them. */
  problems: string[]
}

const NAMES = ['a', 'b', 'c', 'd']
const DTYPES: DType[] = ['int32', 'float64', 'uint8', 'int64', 'float32']
const MAX_ROWS = 1500

type Expect = string | null | 'any' | 'any-or-success'

export function runFuzz(options: FuzzOptions): FuzzStats {
  const rng = new Rng(options.seed)
  const stats: FuzzStats = { calls: 0, codedErrors: 0, uncoded: 0, mismatches: 0, problems: [] }
  const limitCalls = options.calls ?? Infinity
  const deadline = options.ms === undefined ? Infinity : Date.now() + options.ms
  // A second handle commits to array 'o' now and then; this handle only reads it, and
  // must see it as of its own snapshot (which moves on commit, abort, refresh, reopen).
  const other: Store = open(options.dir, { sync: false })
  other.create('o', { dtype: 'int32', shape: [0, 2], blockBytes: 4096 })
  other.commit()
  let otherCommitted: Value[] = []
  let otherSeen: Value[] = []
  let store: Store = open(options.dir, { sync: false })
  let committed: StoreModel = new Map()
  let txn: StoreModel = new Map()
  let op = ''
  // Views kept across calls (through commit and abort), dropped when their array is
  // resized, deleted, created again, or the store reopened.
  // fresh: the array was created in the current transaction (abort() detaches such views).
  interface KeptView { name: string; view: { [i: number]: Value; length: number }; offset: number; fresh: boolean }
  let kept: KeptView[] = []
  let createdInTxn = new Set<string>()
  const forget = (name: string) => { kept = kept.filter((k) => k.name !== name) }
  const moved = () => { otherSeen = [...otherCommitted] }
  const endTxn = () => {
    createdInTxn = new Set()
    for (const k of kept) k.fresh = false
  }

  const problem = (what: string) => {
    stats.mismatches++
    if (stats.problems.length < 20) stats.problems.push(`seed ${options.seed} call ${stats.calls} (${op}): ${what}`)
  }

  /** Runs one call; checks its outcome against `expect` (a code, null for success, 'any' coded error). */
  function attempt(expect: Expect, fn: () => void): boolean {
    stats.calls++
    try {
      fn()
    } catch (e) {
      if (!(e instanceof TxarrayError) || typeof e.code !== 'string' || !/^TXA_[A-Z_]+$/.test(e.code)) {
        stats.uncoded++
        if (stats.problems.length < 20) {
          stats.problems.push(`seed ${options.seed} call ${stats.calls} (${op}): uncoded ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`)
        }
        return false
      }
      stats.codedErrors++
      if (expect === null) problem(`unexpected ${e.code}: ${e.message}`)
      else if (expect !== 'any' && expect !== 'any-or-success' && e.code !== expect) problem(`expected ${expect}, got ${e.code}: ${e.message}`)
      return false
    }
    if (expect !== null && expect !== 'any-or-success') problem(`expected ${expect === 'any' ? 'a coded error' : expect}, the call succeeded`)
    return true
  }

  const values = (dtype: DType, n: number): Value[] => Array.from({ length: n }, () => value(dtype))
  function value(dtype: DType): Value {
    if (isBig(dtype)) return BigInt(rng.int(-1000, 1000))
    if (dtype === 'uint8') return rng.int(0, 255)
    if (dtype === 'float32' || dtype === 'float64') return rng.int(-2000, 2000) / 2
    return rng.int(-100000, 100000)
  }
  const ctor: Record<string, new (n: number | ArrayBufferLike, o?: number, l?: number) => ArrayLike<Value> & { [i: number]: Value }> = {
    int32: Int32Array, float64: Float64Array, uint8: Uint8Array, int64: BigInt64Array, float32: Float32Array,
  } as never
  function typed(dtype: DType, vals: Value[]): ArrayLike<Value> {
    const C = ctor[dtype]
    let out: ArrayLike<Value> & { [i: number]: Value }
    if (rng.chance(0.2)) {
      const bytes = (C as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT
      const pad = rng.int(0, 2)
      out = new C(new SharedArrayBuffer((vals.length + pad) * bytes), pad * bytes, vals.length)
    } else {
      out = new C(vals.length)
    }
    vals.forEach((v, i) => { out[i] = v })
    return out
  }

  const rowSizeOf = (m: ArrayModel) => m.shape.slice(1).reduce((a, b) => a * b, 1)
  const pickName = () => rng.pick(NAMES)
  const arrayOf = (name: string) => store.array(name) as BigArray<DType>

  function randomSelection(shape: readonly number[]): AxisSpec[] {
    const n = rng.int(0, shape.length)
    const sel: AxisSpec[] = []
    for (let axis = 0; axis < n; axis++) {
      const len = shape[axis]
      const r = rng.next()
      const bound = () => (rng.chance(0.25) ? null : rng.int(-len - 3, len + 3))
      if (r < 0.25) sel.push(null)
      else if (r < 0.45) sel.push(rng.int(-len - 1, len))
      else sel.push({ start: bound(), stop: bound(), step: rng.chance(0.5) ? null : rng.pick([1, 2, 3, -1, -2, -3]) })
    }
    return sel
  }
  const toSelection = (sel: AxisSpec[]) =>
    sel.map((s) => (s === null || typeof s === 'number' ? s : slice(s.start, s.stop, s.step)))

  function same(a: Value, b: Value): boolean {
    return a === b || (typeof a === 'number' && typeof b === 'number' && Number.isNaN(a) && Number.isNaN(b))
  }

  /**
   * Compares everything readable of `name` with the transaction model. After a mismatch
   * the model takes the store's state, so that one problem is reported once.
   */
  function check(name: string, thorough = false): void {
    const before = stats.mismatches
    compare(name, thorough)
    if (stats.mismatches > before) resync(name)
  }

  function resync(name: string): void {
    try {
      if (!store.has(name)) {
        txn.delete(name)
        return
      }
      const a = arrayOf(name)
      txn.set(name, { dtype: a.dtype, shape: a.shape, data: Array.from(a.read().data as ArrayLike<Value>), attrs: a.attrs })
    } catch {
      txn.delete(name)
    }
  }

  function compare(name: string, thorough: boolean): void {
    const m = txn.get(name)
    let has = false
    try {
      has = store.has(name)
    } catch (e) {
      problem(`has() threw ${(e as Error).message}`)
      return
    }
    if (has !== (m !== undefined)) return problem(`has(${name}) is ${has}, the model says ${m !== undefined}`)
    if (!m) return
    const a = arrayOf(name)
    if (a.shape.join() !== m.shape.join()) return problem(`${name} shape [${a.shape}] != model [${m.shape}]`)
    if (a.dtype !== m.dtype) return problem(`${name} dtype ${a.dtype} != ${m.dtype}`)
    const data = a.read().data as ArrayLike<Value>
    for (let i = 0; i < m.data.length; i++) {
      if (!same(data[i], m.data[i])) return problem(`${name} read()[${i}] = ${data[i]}, model ${m.data[i]}`)
    }
    if (!thorough || m.shape[0] === 0 || m.data.length === 0) return
    const v = a.view() as unknown as ArrayLike<Value>
    for (let i = 0; i < m.data.length; i++) {
      if (!same(v[i], m.data[i])) return problem(`${name} view()[${i}] = ${v[i]}, model ${m.data[i]}`)
    }
    if (JSON.stringify(a.attrs) !== JSON.stringify(m.attrs)) problem(`${name} attrs ${JSON.stringify(a.attrs)} != model ${JSON.stringify(m.attrs)}`)
  }
  const checkAll = () => {
    for (const name of NAMES) check(name, true)
    checkOther()
  }

  function checkOther(): void {
    const data = store.array('o').read().data as ArrayLike<Value>
    if (data.length !== otherSeen.length) {
      problem(`o has ${data.length} elements in this snapshot, model ${otherSeen.length}`)
      otherSeen = Array.from(data)
      return
    }
    for (let i = 0; i < data.length; i++) {
      if (data[i] !== otherSeen[i]) {
        problem(`o[${i}] = ${data[i]} in this snapshot, model ${otherSeen[i]}`)
        otherSeen = Array.from(data)
        return
      }
    }
  }

  function opOther(): void {
    const o = other.array('o', 'int32')
    const rows = rng.int(1, 20)
    if (otherCommitted.length / 2 + rows > MAX_ROWS) return
    const vals = values('int32', rows * 2) as number[]
    const overwrite = otherCommitted.length > 0 && rng.chance(0.5)
    const ok = attempt(null, () => {
      o.append(Int32Array.from(vals))
      if (overwrite) o.write([0, 0], (vals[0] as number) + 1)
      other.commit()
    })
    if (ok) {
      otherCommitted.push(...vals)
      if (overwrite) otherCommitted[0] = (vals[0] as number) + 1
    }
    checkOther()
  }

  function opKeepView(): void {
    withArray((name, m) => {
      const rows = m.shape[0]
      const rowSize = rowSizeOf(m)
      if (rows === 0 || rowSize === 0 || kept.length > 8) return
      const s = rng.int(0, rows - 1)
      const e = rng.int(s + 1, rows)
      attempt(null, () => {
        kept.push({ name, view: arrayOf(name).view(s, e) as never, offset: s * rowSize, fresh: createdInTxn.has(name) })
      })
    })
  }

  function opOldView(): void {
    if (kept.length === 0) return
    const k = rng.pick(kept)
    const m = txn.get(k.name)
    op += ` ${k.name}`
    if (!m) return problem('a kept view outlived its array in the model')
    const i = rng.int(0, k.view.length - 1)
    if (rng.chance(0.5)) {
      const x = value(m.dtype)
      stats.calls++
      k.view[i] = x
      m.data[k.offset + i] = x
    } else {
      stats.calls++
      if (!same(k.view[i], m.data[k.offset + i])) {
        problem(`kept view of ${k.name}[${k.offset + i}] = ${k.view[i]}, model ${m.data[k.offset + i]}`)
      }
    }
    check(k.name)
  }

  // --- operations -------------------------------------------------------------------
  function opCreate(): void {
    const name = pickName()
    const dtype = rng.pick(DTYPES)
    const shape = rng.chance(0.5) ? [rng.int(0, 700)] : [rng.int(0, 60), rng.int(0, 6)]
    if (rng.chance(0.1)) shape.push(rng.int(1, 3))
    const attrs = rng.chance(0.3) ? randomAttrs() : undefined
    const exists = txn.has(name)
    op += ` ${name}`
    const ok = attempt(exists ? 'TXA_EXISTS' : null, () => store.create(name, { dtype, shape, blockBytes: 4096, attrs }))
    if (ok) {
      forget(name)
      createdInTxn.add(name)
      const size = shape.reduce((a, b) => a * b, 1)
      txn.set(name, { dtype, shape, data: Array.from({ length: size }, () => zero(dtype)), attrs: attrs ?? {} })
    }
    check(name)
  }

  function opDelete(): void {
    const name = pickName()
    op += ` ${name}`
    if (attempt(txn.has(name) ? null : 'TXA_NOT_FOUND', () => store.delete(name))) {
      txn.delete(name)
      forget(name)
    }
    check(name)
  }

  function withArray(fn: (name: string, m: ArrayModel) => void): void {
    const name = pickName()
    const m = txn.get(name)
    op += ` ${name}`
    if (!m) {
      op += ' (absent)'
      attempt('TXA_NOT_FOUND', () => store.array(name))
      return
    }
    fn(name, m)
    check(name)
  }

  function opWrite(): void {
    withArray((name, m) => {
      const sel = randomSelection(m.shape)
      const r = resolve(m.shape, sel)
      if (r === 'bounds') {
        attempt('TXA_BOUNDS', () => arrayOf(name).write(toSelection(sel), value(m.dtype) as never))
        return
      }
      if (rng.chance(0.3)) {
        const v = value(m.dtype)
        if (attempt(null, () => arrayOf(name).write(toSelection(sel), v as never))) for (const i of r.flat) m.data[i] = v
        return
      }
      const wrong = rng.chance(0.1)
      const n = r.flat.length + (wrong ? rng.pick([-1, 1]) : 0)
      if (n < 0) return
      const vals = values(m.dtype, n)
      if (process.env.FUZZ_TRACE) console.error(stats.calls + 1, 'write', name, m.shape, JSON.stringify(sel), r.flat.length, vals.length)
      const ok = attempt(wrong ? 'TXA_SHAPE' : null, () => arrayOf(name).write(toSelection(sel), typed(m.dtype, vals) as never))
      if (ok) r.flat.forEach((i, k) => { m.data[i] = vals[k] })
    })
  }

  function opOverlapWrite(): void {
    withArray((name, m) => {
      if (m.shape[0] < 2) return
      // A view of rows [s, s + n) of the same array written into n rows picked by a step.
      const rows = m.shape[0]
      const step = rng.pick([1, 2, -1, -2])
      const sel = { start: rng.int(0, rows - 1), stop: rng.chance(0.5) ? null : rng.int(-rows, rows), step }
      const r = resolve(m.shape, [sel])
      if (r === 'bounds' || r.shape[0] === 0) return
      const n = r.shape[0]
      if (n > rows) return
      const s = rng.int(0, rows - n)
      const rowSize = rowSizeOf(m)
      const source = m.data.slice(s * rowSize, (s + n) * rowSize)
      const ok = attempt(null, () => {
        const a = arrayOf(name)
        a.write(toSelection([sel]), a.view(s, s + n) as never)
      })
      if (ok) r.flat.forEach((i, k) => { m.data[i] = source[k] })
    })
  }

  function opAppend(): void {
    withArray((name, m) => {
      const rowSize = rowSizeOf(m)
      const rows = rng.int(0, 40)
      if (m.shape[0] + rows > MAX_ROWS) return
      const wrong = rowSize > 1 && rng.chance(0.1)
      const vals = values(m.dtype, rows * rowSize + (wrong ? 1 : 0))
      const ok = attempt(wrong ? 'TXA_SHAPE' : rowSize === 0 && vals.length > 0 ? 'TXA_SHAPE' : null, () =>
        arrayOf(name).append(typed(m.dtype, vals) as never))
      if (ok && rowSize > 0) {
        m.data.push(...vals)
        m.shape[0] += rows
      }
    })
  }

  function opResize(): void {
    withArray((name, m) => {
      const rows = rng.chance(0.5) ? rng.int(0, m.shape[0]) : rng.int(0, Math.min(MAX_ROWS, m.shape[0] + 50))
      if (attempt(null, () => arrayOf(name).resize([rows, ...m.shape.slice(1)]))) {
        if (rows !== m.shape[0]) forget(name)
        const rowSize = rowSizeOf(m)
        if (rows < m.shape[0]) m.data.length = rows * rowSize
        else for (let i = m.shape[0] * rowSize; i < rows * rowSize; i++) m.data.push(zero(m.dtype))
        m.shape[0] = rows
      }
    })
  }

  function randomAttrs(): Record<string, unknown> {
    const attrs: Record<string, unknown> = {}
    for (let i = rng.int(0, 4); i > 0; i--) {
      attrs[`k${rng.int(0, 9)}`] = rng.pick<() => unknown>([
        () => rng.int(-5, 5), () => 'text', () => [1, 'x', null], () => ({ nested: { n: rng.int(0, 9) } }), () => true, () => null,
      ])()
    }
    return attrs
  }

  function opSetAttrs(): void {
    withArray((name, m) => {
      const attrs = randomAttrs()
      if (attempt(null, () => arrayOf(name).setAttrs(attrs))) m.attrs = attrs
    })
  }

  function opViewWrite(): void {
    withArray((name, m) => {
      const rows = m.shape[0]
      const rowSize = rowSizeOf(m)
      if (rows === 0 || rowSize === 0) return
      const s = rng.int(0, rows - 1)
      const e = rng.int(s + 1, rows)
      const writes: [number, Value][] = []
      for (let k = rng.int(1, 8); k > 0; k--) writes.push([rng.int(0, (e - s) * rowSize - 1), value(m.dtype)])
      const ok = attempt(null, () => {
        const v = arrayOf(name).view(s, e) as unknown as { [i: number]: Value; length: number }
        if (v.length !== (e - s) * rowSize) throw new Error(`view length ${v.length}`)
        for (const [i, x] of writes) v[i] = x
      })
      if (ok) for (const [i, x] of writes) m.data[s * rowSize + i] = x
    })
  }

  function opRead(): void {
    withArray((name, m) => {
      const sel = randomSelection(m.shape)
      const r = resolve(m.shape, sel)
      if (r === 'bounds') {
        attempt('TXA_BOUNDS', () => arrayOf(name).read(toSelection(sel)))
        return
      }
      let got: ArrayLike<Value> | undefined
      const kind = rng.int(0, 2) // 0: new array, 1: out (maybe shared), 2: out = a view of another array
      attempt(null, () => {
        const a = arrayOf(name)
        const out = kind === 0 ? undefined : typed(m.dtype, values(m.dtype, r.flat.length + rng.int(0, 2)))
        const verify = rng.chance(0.3) ? { verifyChecksums: rng.chance(0.5) } : undefined
        got = a.read(toSelection(sel), out as never, verify).data as ArrayLike<Value>
        if (out && got !== out) throw new Error('read(out) did not return out')
      })
      if (got) {
        for (let k = 0; k < r.flat.length; k++) {
          if (!same(got[k], m.data[r.flat[k]])) return problem(`${name} read(sel)[${k}] = ${got[k]}, model ${m.data[r.flat[k]]}`)
        }
      }
    })
  }

  function opTake(): void {
    withArray((name, m) => {
      const rows = m.shape[0]
      const w = rng.int(0, Math.min(rows, 5))
      const starts = Array.from({ length: rng.int(0, 6) }, () => rng.int(0, rows - w + (rng.chance(0.1) ? 2 : 0)))
      const past = starts.some((s) => s + w > rows)
      const rowSize = rowSizeOf(m)
      let got: ArrayLike<Value> | undefined
      const useStarts = rng.pick([() => starts, () => Uint32Array.from(starts), () => Float64Array.from(starts)])()
      attempt(past && w * rowSize > 0 ? 'TXA_BOUNDS' : past ? 'any-or-success' : null, () => {
        got = arrayOf(name).take(useStarts, w, undefined, rng.chance(0.3) ? { verifyChecksums: true } : undefined).data as ArrayLike<Value>
      })
      if (got && !past) {
        let k = 0
        for (const s of starts) for (let i = s * rowSize; i < (s + w) * rowSize; i++, k++) {
          if (!same(got[k], m.data[i])) return problem(`${name} take()[${k}] = ${got[k]}, model ${m.data[i]}`)
        }
      }
    })
  }

  function opCommit(): void {
    if (attempt(null, () => store.commit(rng.chance(0.5) ? undefined : { sync: false }))) {
      committed = cloneModel(txn)
      moved()
      endTxn()
    }
    checkAll()
  }

  function opAbort(): void {
    if (attempt(null, () => store.abort())) {
      txn = cloneModel(committed)
      moved()
      // A view of an array created in the aborted transaction is detached: drop it.
      // So is, in effect, a view reaching past the length abort() gave back (its rows
      // past the end read as zeros and are not stored): drop it too.
      kept = kept.filter((k) => !k.fresh && k.offset + k.view.length <= (txn.get(k.name)?.data.length ?? 0))
      endTxn()
    }
    checkAll()
  }

  function opRefresh(): void {
    const dirty = store.dirty
    if (attempt(dirty ? 'TXA_TRANSACTION' : null, () => store.refresh())) moved()
    check(pickName())
    checkOther()
  }

  function opReopen(): void {
    attempt(null, () => {
      store.close()
      store = open(options.dir, { sync: false })
    })
    txn = cloneModel(committed)
    kept = []
    createdInTxn = new Set()
    moved()
    checkAll()
  }

  // Hostile arguments: the call throws a coded error and changes nothing, or (for the few
  // that turn out valid, e.g. a negative view bound) succeeds without changing the data.
  function opHostile(): void {
    withArray((name, m) => {
      const detached = new Float64Array(8)
      structuredClone(detached.buffer, { transfer: [detached.buffer] })
      const wrongType = m.dtype === 'float64' ? new Int32Array(m.data.length) : new Float64Array(m.data.length)
      const proxy = new Proxy(typed(m.dtype, m.data.slice()) as object, {})
      const bad = rng.pick<unknown>([
        NaN, Infinity, -1, 2 ** 60, -(2 ** 60), 1.5, 'x', Symbol('s'), 5n, proxy, detached, wrongType, new Date(0),
        () => 1, [NaN], [2 ** 60], [[]], [{ kind: 'slice', start: 0, stop: 1, step: 0 }], Object.create(null),
      ])
      const a = arrayOf(name)
      const calls: Array<[string, () => unknown]> = [
        ['write(bad, 1)', () => a.write(bad as never, 1 as never)],
        ['write(null, bad)', () => a.write(null, bad as never)],
        ['append(bad)', () => a.append(bad as never)],
        ['resize(bad)', () => a.resize(bad as never)],
        ['resize([bad])', () => a.resize([bad as never, ...m.shape.slice(1)])],
        ['read(null, bad)', () => a.read(null, bad as never)],
        ['read(bad)', () => a.read(bad as never)],
        ['read(null, undefined, bad)', () => a.read(null, undefined, bad as never)],
        ['take(bad, 1)', () => a.take(bad as never, 1)],
        ['take([0], bad)', () => a.take([0], bad as never)],
        ['setAttrs(bad)', () => a.setAttrs(bad as never)],
        ['commit(bad)', () => store.commit(bad as never)],
        ['view(bad)', () => a.view(bad as never)],
        ['views(bad)', () => [...a.views(bad as never)]],
        ['create(bad)', () => store.create(name + 'x', bad as never)],
        ['array(bad)', () => store.array(bad as never)],
      ]
      const [label, call] = rng.pick(calls)
      op += ` ${label} with ${describe(bad)}`
      // A number or bigint is a valid fill value (converted as a TypedArray converts it).
      if (label === 'write(null, bad)' && (typeof bad === 'number' || typeof bad === 'bigint')) return
      if (label === 'commit(bad)' && bad instanceof Date) return // a Date is an options object: it would commit
      if (attempt('any-or-success', call)) {
        // Succeeded: acceptable only if nothing changed (check() below compares).
        if (label === 'setAttrs(bad)') m.attrs = {} // only an empty plain object is valid here
        if (label === 'commit(bad)') {
          committed = cloneModel(txn)
          moved()
          endTxn()
        }
      }
    })
  }

  const ops: Array<[number, string, () => void]> = [
    [6, 'create', opCreate], [2, 'delete', opDelete], [14, 'write', opWrite], [4, 'overlapWrite', opOverlapWrite],
    [8, 'append', opAppend], [4, 'resize', opResize], [3, 'setAttrs', opSetAttrs], [8, 'viewWrite', opViewWrite],
    [10, 'read', opRead], [5, 'take', opTake], [5, 'commit', opCommit], [2, 'abort', opAbort], [2, 'refresh', opRefresh],
    [1, 'reopen', opReopen], [12, 'hostile', opHostile], [2, 'other', opOther], [3, 'keepView', opKeepView],
    [6, 'oldView', opOldView],
  ]
  const total = ops.reduce((s, [w]) => s + w, 0)
  try {
    while (stats.calls < limitCalls && Date.now() < deadline) {
      let r = rng.next() * total
      const [, name, fn] = ops.find(([w]) => (r -= w) < 0) ?? ops[0]
      op = name
      fn()
      if (process.env.FUZZ_TRACE) console.error(stats.calls, op)
    }
    op = 'final reopen'
    opReopen()
  } finally {
    store.close()
    other.close()
  }
  return stats
}

function describe(v: unknown): string {
  if (typeof v === 'symbol') return 'a symbol'
  if (typeof v === 'bigint') return `${v}n`
  if (typeof v === 'function') return 'a function'
  if (v === null || typeof v !== 'object') return String(v)
  return Array.isArray(v) ? 'an array' : 'an object'
}
