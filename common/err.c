/* strata_strerror() and strata_error_name() from the X-macro list. */
#include "strata/error.h"

STRATA_API const char *strata_strerror(int code)
{
	switch (code) {
#define STRATA_ERROR_MSG(name, num, msg) \
	case num:                        \
		return msg;
		STRATA_ERRORS(STRATA_ERROR_MSG)
#undef STRATA_ERROR_MSG
	default:
		return "unknown error";
	}
}

STRATA_API const char *strata_error_name(int code)
{
	switch (code) {
#define STRATA_ERROR_NAME(name, num, msg) \
	case num:                         \
		return #name;
		STRATA_ERRORS(STRATA_ERROR_NAME)
#undef STRATA_ERROR_NAME
	default:
		return "STRATA_EUNKNOWN";
	}
}
