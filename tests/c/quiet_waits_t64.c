#define _TIME_BITS 64
#define _FILE_OFFSET_BITS 64
/* quiet_waits built with 64-bit time: on i686 the C library calls __select64, __sigtimedwait64, ... */
#include "quiet_waits.c"
