/* Process-wide setup (see process.h). */
#include "common/process.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "strata/error.h"

int strata_process_init(char *errmsg)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGPIPE, &sa, NULL) != 0) {
		if (errmsg != NULL) {
			snprintf(errmsg, STRATA_ERRMSG_SIZE,
			         "ignore SIGPIPE: sigaction: %s",
			         strerror(errno));
		}
		return STRATA_EIO;
	}
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rlim_t want = rl.rlim_max == RLIM_INFINITY ? (rlim_t)1 << 20
		                                           : rl.rlim_max;
		if (rl.rlim_cur < want) {
			rl.rlim_cur = want;
			(void)setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	return 0;
}

static char fatal_message[STRATA_ERRMSG_SIZE];
static atomic_bool fatal_claimed;
static atomic_bool fatal_set;

void strata_process_fatal(void *arg, const char *message)
{
	(void)arg;
	if (!atomic_exchange(&fatal_claimed, true)) {
		snprintf(fatal_message, sizeof(fatal_message), "%s",
		         message != NULL ? message : "fatal error");
		atomic_store(&fatal_set, true);
	}
	kill(getpid(), SIGTERM);
}

const char *strata_process_fatal_message(void)
{
	return atomic_load(&fatal_set) ? fatal_message : NULL;
}
