/**
 * Waits, without blocking the event loop, until `done()` holds; throws after `ms`
 * milliseconds with a message naming `what`. For effects that land asynchronously
 * (blocks read ahead by a link worker, a background flush, a child's output).
 */
export async function until(what: string, done: () => boolean | Promise<boolean>, ms = 10_000, everyMs = 5): Promise<void> {
  for (const end = Date.now() + ms; !(await done());) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting until ${what}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}
