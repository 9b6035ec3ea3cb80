/**
 * Which fault service serves this process's views: 'uffd' (userfaultfd, the default
 * where the kernel allows it) or 'sigsegv' (SIGSEGV + mprotect). TXARRAY_FAULT_MODE=
 * uffd|sigsegv forces one; it is read once, when the first store opens.
 */
import { addon } from './binding'

/** The fault service of this process and what the kernel offers. */
export interface FaultModeInfo {
  /** The service that serves views' page faults. */
  mode: 'uffd' | 'sigsegv'
  /** How writes are detected: uffd write-protection (sync or async), or per block under sigsegv. */
  writeProtect: 'sync' | 'async' | 'per-block'
  /** The kernel lets this process use userfaultfd. */
  userfaultfd: boolean
  /** The kernel offers asynchronous userfaultfd write-protection. */
  asyncWriteProtect: boolean
  /** The system page size in bytes. */
  pageBytes: number
  /** Set when TXARRAY_FAULT_MODE or TXARRAY_WP_MODE holds an unknown value: why. */
  error?: string
}

export function faultMode(): FaultModeInfo {
  return addon.faultMode()
}
