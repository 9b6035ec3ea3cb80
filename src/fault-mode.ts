/**
 * Which fault service maps the blocks of this process's views when they are first
 * touched: 'uffd' (userfaultfd, the default where the kernel lets it serve faults taken
 * inside system calls too) or 'sigsegv' (a SIGSEGV handler). TXARRAY_FAULT_MODE=
 * uffd|sigsegv forces one; it is read once, when the first store opens.
 */
import { addon } from './binding'

/** The fault service of this process and what the kernel offers. */
export interface FaultModeInfo {
  /** The service that serves views' page faults. */
  mode: 'uffd' | 'sigsegv'
  /** The kernel lets this process use userfaultfd (perhaps for user-mode faults only). */
  userfaultfd: boolean
  /**
   * System calls (fs.writeSync(fd, view), read(2) into a view...) work on pages of a view
   * that were never touched. When false they fail with EFAULT there: touch the view first,
   * or make it with `view(start, stop, { populate: true })` (which also opens, for writes,
   * the read-only scan windows `views()` loaded there).
   */
  systemCalls: boolean
  /** How writes through views are found at commit (no write faults either way). */
  writeScan: 'PAGEMAP_SCAN' | 'pagemap'
  /** The system page size in bytes. */
  pageBytes: number
  /** Set when TXARRAY_FAULT_MODE holds an unknown value: why. */
  error?: string
}

export function faultMode(): FaultModeInfo {
  return addon.faultMode()
}
