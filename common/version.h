/* The version of this build: the project's release number and the git
 * commit it was built from, for --version and the start-up log line. */
#ifndef COMMON_VERSION_H
#define COMMON_VERSION_H

#include <stdio.h>

/* "0.1.0" (CMake's PROJECT_VERSION). */
const char *strata_version(void);

/* `git describe --always --dirty` of the source tree at build time
 * ("abc123def456", "abc123def456-dirty"), or "unknown" outside a git
 * checkout. */
const char *strata_git_commit(void);

/* Print "PROG VERSION (commit COMMIT)\n" to out: the --version answer of
 * every Strata binary. */
void strata_print_version(FILE *out, const char *prog);

#endif
