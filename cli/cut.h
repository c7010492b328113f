/* stratactl stream cut arguments: "head", "tail" or cut text, and the text
 * form of a cut. */
#ifndef CLI_CUT_H
#define CLI_CUT_H

#include <stdbool.h>

#include "cli/cli.h"

/* Text form of cut (strata_stream_cut_format), strata_malloc'd; NULL on
 * out of memory. */
char *cli_cut_text(const struct strata_stream_cut *cut);

/*
 * Resolve the value of option --opt for scope/stream into *out (empty on
 * entry): "head" (only when allow_head: an empty cut, meaning the head),
 * "tail" (the stream's tail now, asked through cl), or cut text with or
 * without its "SCOPE/STREAM:" prefix. Returns 0 or, after printing why,
 * the exit code: CLI_EXIT_USAGE for malformed text or a cut of another
 * stream, the mapped code of a failed tail lookup.
 */
int cli_cut_resolve(struct cli *c, struct strata_client *cl, const char *scope,
                    const char *stream, const char *opt, const char *text,
                    bool allow_head, struct strata_stream_cut *out);

#endif /* CLI_CUT_H */
