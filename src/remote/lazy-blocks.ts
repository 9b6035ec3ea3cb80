/**
 * Reads of a lazily filled cache (docs/scale-out.md, "Blocks fetched on demand"): the
 * cache holds stubs for block versions whose bytes are still on the server, and every
 * call that reads committed blocks on the JavaScript thread fetches the stubs it needs
 * first, in one round trip through the link's thread, giving the bytes to the handle's
 * snapshot (native/engine/snapshot.h, addFetched).
 *
 * - Copies (gather: read(), exports; take()) run first as they are: a warm cache
 *   costs nothing more. A copy that meets a stub throws TXA_REMOTE_UNAVAILABLE before it
 *   has written anything it would not write again; then every stub the copy reads is
 *   listed natively (stubsIn), fetched, and the copy runs again.
 * - Writes (scatter: write(), append(), imports) and shrinks fetch the stubs they touch
 *   before they run: a write into part of a block needs the block's bytes.
 * - Views: in userfaultfd mode a fault on a stub waits while the link's thread fetches it
 *   (fault-fetches.ts), so views are made without fetching anything (a populated view
 *   excepted: it is mapped at once). In SIGSEGV mode a fault cannot wait (its handler runs
 *   on the faulting JavaScript thread): views fetch their range before they are made, and
 *   after every move to another snapshot the stubs under live views are fetched
 *   (fetchUnderViews).
 *
 * The overrides are own properties of the native array object, so that the object keeps
 * its identity (commits hand it back to native code).
 */
import type { NativeArray, NativeStub } from '../binding'
import { RemoteUnavailableError } from '../errors'

/** Fetches `stubs` of array `arrayId` into the handle's snapshot (RemoteHandle.fetch). */
export type StubFetcher = (arrayId: number, stubs: NativeStub[]) => void

/** Attempts of a copy: the first, and one after each round of fetches (the stubs it met). */
const COPY_ATTEMPTS = 3

function fetchBefore(native: NativeArray, fetch: StubFetcher, stubs: NativeStub[]): void {
  if (stubs.length > 0) fetch(native.id, stubs)
}

/**
 * Makes `native`'s reads and writes fetch the stubs they meet (see above). `viewsFault`:
 * views' faults fetch what they touch (userfaultfd mode, fault-fetches.ts), so a view is
 * made without fetching its range, unless it is populated (mapped at once, no fault).
 */
export function fetchStubsOf(native: NativeArray, fetch: StubFetcher, { viewsFault = false } = {}): void {
  const { gather, take, scatter, view, resize } = native
  const copy = (run: () => void, stubs: () => NativeStub[]) => {
    for (let attempt = 1; ; attempt++) {
      try {
        run()
        return
      } catch (e) {
        if (!(e instanceof RemoteUnavailableError) || attempt >= COPY_ATTEMPTS) throw e
        const missing = stubs()
        if (missing.length === 0) throw e
        fetch(native.id, missing)
      }
    }
  }
  Object.defineProperties(native, {
    gather: {
      value: (base: number, counts: number[], strides: number[], itemBytes: number, out: ArrayBufferView, verify: boolean) => copy(
        () => gather.call(native, base, counts, strides, itemBytes, out, verify),
        () => native.stubsIn(base, counts, strides, itemBytes),
      ),
    },
    take: {
      value: (starts: ArrayLike<number>, rows: number, rowBytes: number, out: ArrayBufferView, verify: boolean) => copy(
        () => take.call(native, starts, rows, rowBytes, out, verify),
        () => native.stubsInWindows(starts, rows, rowBytes),
      ),
    },
    scatter: {
      value: (base: number, counts: number[], strides: number[], itemBytes: number, data: ArrayBufferView) => {
        fetchBefore(native, fetch, native.stubsIn(base, counts, strides, itemBytes))
        scatter.call(native, base, counts, strides, itemBytes, data)
      },
    },
    view: {
      value: (byteOffset: number, byteLength: number, populate?: boolean, sequential?: boolean) => {
        if (byteLength > 0 && (populate || !viewsFault)) fetchBefore(native, fetch, native.stubsIn(byteOffset, [byteLength], [1], 1))
        return view.call(native, byteOffset, byteLength, populate, sequential)
      },
    },
    resize: {
      value: (byteLength: number) => {
        // A shrink that cuts a block stores it again without its tail: its bytes are needed.
        if (byteLength > 0 && byteLength < native.byteLength) fetchBefore(native, fetch, native.stubsIn(byteLength - 1, [1], [1], 1))
        resize.call(native, byteLength)
      },
    },
  })
}

/**
 * After the handle moved to another snapshot: fetches the stubs under the live views of
 * `natives` (blocks other machines changed since, which the cache did not hold in full),
 * so that the views fault them in. Best effort: a move never fails for want of the server
 * (abort()); a block it could not fetch reads as zeros through a view, and the handle's
 * commit is refused, until the next move (the fault rule, docs/scale-out.md).
 */
export function fetchUnderViews(natives: readonly NativeArray[], fetch: StubFetcher): void {
  for (const native of natives) {
    try {
      fetchBefore(native, fetch, native.stubsInViews())
    } catch {
      // see above
    }
  }
}

/** Splits what is to be fetched into batches of about `maxBytes` each (one round trip per batch). */
export function batchesOf<T extends { readonly length: number }>(stubs: readonly T[], maxBytes: number): T[][] {
  const out: T[][] = []
  let batch: T[] = []
  let bytes = 0
  for (const stub of stubs) {
    if (batch.length > 0 && bytes + stub.length > maxBytes) {
      out.push(batch)
      batch = []
      bytes = 0
    }
    batch.push(stub)
    bytes += stub.length
  }
  if (batch.length > 0) out.push(batch)
  return out
}
