/**
 * Which fault service serves this process's views: 'uffd' (userfaultfd, the default
 * where the kernel allows it) or 'sigsegv' (SIGSEGV + mprotect). TXARRAY_FAULT_MODE=
 * uffd|sigsegv forces one; it is read once, when the first store opens.
 */
import { addon, type NativeFaultMode } from './binding'

export type FaultModeInfo = NativeFaultMode

export function faultMode(): FaultModeInfo {
  return addon.faultMode()
}
