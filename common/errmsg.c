/* errmsg_set(): the one formatter of error message buffers in common/. */
#include "common/errmsg.h"

#include <stdarg.h>
#include <stdio.h>

#include "strata/error.h"

void errmsg_set(char *errmsg, const char *fmt, ...)
{
	if (errmsg == NULL) {
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errmsg, STRATA_ERRMSG_SIZE, fmt, ap);
	va_end(ap);
}
