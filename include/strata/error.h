/* Strata error codes: one X-macro list, numbers stable on the wire. */
#ifndef STRATA_ERROR_H
#define STRATA_ERROR_H

#include "strata/export.h"

/*
 * X(NAME, NUMBER, MESSAGE). Numbers travel on the wire (proto/strata/v1/
 * error.proto mirrors this list; a unit test proves they agree): APPEND ONLY,
 * never renumber, never reuse. 0 is success; every error is positive.
 */
#define STRATA_ERRORS(X)                                                    \
	X(STRATA_OK, 0, "success")                                          \
	X(STRATA_ENOMEM, 1, "out of memory")                                \
	X(STRATA_EINVAL, 2, "invalid argument")                             \
	X(STRATA_ENOENT, 3, "no such object")                               \
	X(STRATA_EEXIST, 4, "object already exists")                        \
	X(STRATA_EIO, 5, "input/output error")                              \
	X(STRATA_ENOSPC, 6, "no space left on device")                      \
	X(STRATA_ECORRUPT, 7, "data is corrupt")                            \
	X(STRATA_ETORN, 8, "torn write detected at the tail")               \
	X(STRATA_EBADOFFSET, 9, "offset does not match")                    \
	X(STRATA_ERANGE, 10, "value or offset out of range")                \
	X(STRATA_ENOTSUP, 11, "operation not supported")                    \
	X(STRATA_EPERM, 12, "permission denied")                            \
	X(STRATA_ETIMEDOUT, 13, "operation timed out")                      \
	X(STRATA_ECONNREFUSED, 14, "connection refused")                    \
	X(STRATA_ECLOSED, 15, "object or connection closed")                \
	X(STRATA_EBUSY, 16, "resource busy, retry later")                   \
	X(STRATA_EAGAIN, 17, "back-pressure: retry later")                  \
	X(STRATA_ECONFIG, 18, "invalid configuration")                      \
	X(STRATA_EPLUGIN, 19, "plugin could not be loaded")                 \
	X(STRATA_EABI, 20, "plugin ABI version not supported")              \
	X(STRATA_EPROTO, 21, "malformed message")                           \
	X(STRATA_ETOOBIG, 22, "message or event too large")                 \
	X(STRATA_ENOTLEADER, 23, "not the leader")                          \
	X(STRATA_EWRONGHOST, 24, "segment is hosted elsewhere")             \
	X(STRATA_ESEALED, 25, "segment or stream is sealed")                \
	X(STRATA_ETRUNCATED, 26, "offset is below the truncation point")    \
	X(STRATA_EBADEVENTNUM, 27, "event number out of order")             \
	X(STRATA_ECONFLICT, 28, "conditional update failed: state changed") \
	X(STRATA_EBADNAME, 29, "invalid name")                              \
	X(STRATA_ENOTEMPTY, 30, "object is not empty")                      \
	X(STRATA_ESHUTDOWN, 31, "shutting down")                            \
	X(STRATA_EUNAVAIL, 32, "service unavailable")                       \
	X(STRATA_ENOTSEALED, 33, "stream or segment must be sealed first")  \
	X(STRATA_EINTERNAL, 34, "internal error")                           \
	X(STRATA_ELEADERLOST, 35, "leadership lost; outcome unknown")

/* Error codes as an enum; values are the numbers above. */
enum strata_error {
#define STRATA_ERROR_ENUM(name, num, msg) name = num,
	STRATA_ERRORS(STRATA_ERROR_ENUM)
#undef STRATA_ERROR_ENUM
};

/* Size of every caller-supplied error message buffer. */
#define STRATA_ERRMSG_SIZE 256

/* Static description of a code; "unknown error" for an unknown one. Never
 * NULL, never to be freed. */
STRATA_API const char *strata_strerror(int code);

/* Symbolic name of a code ("STRATA_ENOENT"); "STRATA_EUNKNOWN" for an
 * unknown one. Never NULL. */
STRATA_API const char *strata_error_name(int code);

#endif /* STRATA_ERROR_H */
