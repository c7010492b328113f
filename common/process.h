/* Process-wide setup every Strata binary runs first thing in main(). */
#ifndef COMMON_PROCESS_H
#define COMMON_PROCESS_H

/*
 * Make the process safe for long-lived sockets: ignore SIGPIPE, so that a
 * write to a peer that died returns EPIPE instead of killing the process
 * silently (libuv, libraft and NNG do not ignore it; a follower died that
 * way when its leader was killed). And raise the soft open-file limit to
 * the hard one (1048576 when the hard one is unlimited): a server holds
 * a descriptor per client connection, and Debian's default soft limit of
 * 1024 is below the store's limits.connections; nothing here uses
 * select(), the reason that default exists. A failure to raise it is not
 * an error (the limit stays). Idempotent and thread-safe; call it at the
 * start of main() before any thread starts. Returns 0, or STRATA_EIO
 * with errmsg (STRATA_ERRMSG_SIZE bytes, may be NULL) when sigaction
 * fails.
 */
int strata_process_init(char *errmsg);

/*
 * For a component that finds it cannot go on (its configuration
 * contradicts the cluster's: containers.count, the cluster id): keep the
 * first message and send SIGTERM to the process, whose main thread waits
 * for it with SIGTERM blocked, then prints the message and exits 2. The
 * signature fits the on_fatal hooks (arg unused). Any thread.
 */
void strata_process_fatal(void *arg, const char *message);

/* The message of the first strata_process_fatal(), or NULL. */
const char *strata_process_fatal_message(void);

#endif /* COMMON_PROCESS_H */
