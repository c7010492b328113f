/* The version of this build (common/version.h). */
#include "common/version.h"

#include <stdio.h>

#include "strata_git_version.h"

#ifndef STRATA_VERSION
#error "STRATA_VERSION is set by common/CMakeLists.txt"
#endif

const char *strata_version(void)
{
	return STRATA_VERSION;
}

const char *strata_git_commit(void)
{
	return STRATA_GIT_COMMIT;
}

void strata_print_version(FILE *out, const char *prog)
{
	fprintf(out, "%s %s (commit %s)\n", prog, strata_version(),
	        strata_git_commit());
}
