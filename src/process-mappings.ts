/**
 * The process's mapping budget: the one every handle opened without the `mappings` option
 * shares (worker threads included), since vm.max_map_count bounds a process, not a handle.
 * Its limit is TXARRAY_MAPPINGS (1 to 2147483647, read once, when the first handle opens
 * or one of these functions is first called), else three quarters of vm.max_map_count;
 * setProcessMappings() changes it later.
 */
import { addon } from './binding'
import { ArgumentError } from './errors'

/** The process's shared mapping budget now (the figures store.stats() reports for it). */
export interface ProcessMappings {
  /** The most mappings (VMAs) the views of the sharing handles hold at once. */
  limit: number
  /** Mappings those views hold now. */
  mappings: number
  /** Blocks those views map now. */
  mappedBlocks: number
  /** Clean blocks unmapped so far to stay within the budget. */
  evictedBlocks: number
  /** Written (uncommitted) blocks unmapped so far to stay within the budget. */
  spilledBlocks: number
}

/** The process's shared mapping budget. Throws ArgumentError where TXARRAY_MAPPINGS is invalid. */
export function processMappings(): ProcessMappings {
  return addon.processMappings()
}

/**
 * Sets the process's shared budget's limit, for every handle that shares it, in every
 * thread. It holds from the next fault on: lowering it unmaps nothing at once (the next
 * faults unmap blocks until the views are within it again). A handle opened with its own
 * `mappings` keeps that one. Throws ArgumentError for anything but an integer from 1 to
 * 2147483647, and where TXARRAY_MAPPINGS is invalid.
 */
export function setProcessMappings(limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 0x7fffffff) {
    throw new ArgumentError('the process\'s mapping limit must be an integer from 1 to 2147483647')
  }
  addon.setProcessMappings(limit)
}
