/* errmsg_set(): fill a caller's STRATA_ERRMSG_SIZE error message buffer. */
#ifndef COMMON_ERRMSG_H
#define COMMON_ERRMSG_H

/*
 * Format a message into errmsg, a buffer of STRATA_ERRMSG_SIZE bytes
 * (truncated to fit, always NUL-terminated). A NULL errmsg is a no-op, for
 * callers that do not want the message. Never fails, never allocates.
 */
void errmsg_set(char *errmsg, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

#endif /* COMMON_ERRMSG_H */
