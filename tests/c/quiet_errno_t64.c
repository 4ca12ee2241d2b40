#define _TIME_BITS 64
#define _FILE_OFFSET_BITS 64
/* quiet_errno built with 64-bit time: on i686 the C library calls __nanosleep64. */
#include "quiet_errno.c"
