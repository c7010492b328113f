/* Process-wide setup (see process.h). */
#include "common/process.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

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
	return 0;
}
