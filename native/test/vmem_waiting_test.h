// vmem cases of faults that wait for a fetch (vmem_waiting_test.cc), run by vmem_test.cc.
#pragma once
#include "../vmem/vmem.h"

void testFaultWaitsForFetch(txa::vmem::FaultMode m);
void testMoveWhileWaiting(txa::vmem::FaultMode m);
void testFailedFetchServesZeros(txa::vmem::FaultMode m);
void testUnansweredFetchExpires(txa::vmem::FaultMode m);
void testKernelFaultWaits(txa::vmem::FaultMode m);
void testCloseWhileWaiting(txa::vmem::FaultMode m);
