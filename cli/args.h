/* stratactl helpers without I/O to a server: option parsing, names,
 * separators, segment ids, exit codes, bounded line/record input and JSON
 * strings. */
#ifndef CLI_ARGS_H
#define CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "strata/client.h"

/* Exit codes of stratactl (docs/stratactl.md, "Exit codes"). */
#define CLI_EXIT_OK 0          /* done */
#define CLI_EXIT_FAILED 1      /* the cluster refused or the work failed */
#define CLI_EXIT_USAGE 2       /* bad command line or input */
#define CLI_EXIT_UNREACHABLE 3 /* controller or store unreachable, timeout */

/* Exit code for a STRATA_E* code (0 -> CLI_EXIT_OK). */
int cli_exit_code(int strata_code);

/* ------------------------------------------------------------ options */

/* One option a command accepts: "--name VALUE" / "--name=VALUE" when
 * has_arg, "--name" otherwise. */
struct cli_opt {
	const char *name; /* without the dashes: "segments" */
	bool has_arg;     /* takes a value */
	const char *arg;  /* value placeholder for help ("N"), or NULL */
	const char *help; /* one line */
};

#define CLI_MAX_ITEMS 64 /* options given, repeats included */
#define CLI_MAX_POS 8    /* positional arguments */

/* A parsed command line: options in the order given, positionals. */
struct cli_args {
	size_t n;
	struct {
		const struct cli_opt *opt; /* from the table */
		const char *value;         /* borrowed from argv; "" for
		                              a flag, NULL for a flag
		                              given =false */
	} items[CLI_MAX_ITEMS];
	size_t n_pos;
	const char *pos[CLI_MAX_POS]; /* borrowed from argv */
	bool help;                    /* --help or -h was given */
};

/*
 * Parse argv[0..argc) (argv[0] is the first argument, not the program)
 * against opts[0..n). Options and positionals may be mixed; "--" ends the
 * options; "-" alone is a positional. Errors (STRATA_EINVAL, err of
 * STRATA_ERRMSG_SIZE bytes says which, with a "did you mean" when a known
 * option is close): an unknown option, a missing value, a value other
 * than a boolean given to a flag ("--json=false" turns a flag off: the
 * last occurrence wins), too many options or positionals. argv is
 * borrowed for the life of out.
 */
int cli_args_parse(const struct cli_opt *opts, size_t n, int argc,
                   char *const argv[], struct cli_args *out, char *err);

/* Last value of option name (NULL if not given or, for a flag, if its
 * last occurrence was =false; "" for a flag that is on). */
const char *cli_args_get(const struct cli_args *a, const char *name);

/* True when option name was given (for a flag: and is on). */
bool cli_args_has(const struct cli_args *a, const char *name);

/* True when option name was given at all, =false included. */
bool cli_args_given(const struct cli_args *a, const char *name);

/* Every value of a repeatable option, in order: values[0..*n), at most
 * max; returns the count found (may exceed max). */
size_t cli_args_all(const struct cli_args *a, const char *name,
                    const char **values, size_t max);

/* Print opts as an indented option list for --help. */
void cli_opts_print(const struct cli_opt *opts, size_t n, FILE *out);

/* -------------------------------------------------------------- names */

/*
 * Split "scope/stream" into scope and stream (each STRATA_NAME_MAX + 1
 * bytes). STRATA_EINVAL with err when there is not exactly one '/' or a
 * part is empty or too long (what names may contain is checked by the
 * client library).
 */
int cli_split_stream(const char *text, char *scope, char *stream, char *err);

/*
 * A separator as typed: C escapes \t \n \r \\ \0xHH... are decoded
 * ("\\t" from a shell's '\t' becomes a tab). Writes up to size - 1 bytes
 * into out (NUL-terminated) and *len. STRATA_EINVAL with err when empty,
 * too long or a bad escape.
 */
int cli_unescape(const char *text, char *out, size_t size, size_t *len,
                 char *err);

/*
 * Segment id from "NUMBER.EPOCH" (the cut text form, "3.1") or a decimal
 * segment id; STRATA_EINVAL with err otherwise.
 */
int cli_parse_segment_id(const char *text, uint64_t *id, char *err);

/* Write "NUMBER.EPOCH" of id into buf (at least 24 bytes). */
void cli_format_segment_id(uint64_t id, char *buf, size_t size);

/*
 * Comma-separated list of doubles in [0,1], strictly increasing, at least
 * two: out[0..*n), at most max. STRATA_EINVAL with err otherwise.
 */
int cli_parse_bounds(const char *text, double *out, size_t max, size_t *n,
                     char *err);

/* ------------------------------------------------------------- input */

/*
 * Bounded reader of stdin records: lines ('\n' removed) or length-prefixed
 * records (4-byte little-endian length, then the bytes: the segment frame
 * format). A record longer than max is an error, found without reading
 * it whole: memory stays bounded by max.
 */
struct cli_reader {
	FILE *in;        /* borrowed */
	bool prefixed;   /* length-prefixed records, else lines */
	size_t max;      /* longest record accepted */
	uint8_t *buf;    /* current record, owned */
	size_t cap;      /* bytes allocated in buf */
	uint64_t record; /* 1-based number of the last record returned */
};

/* Set up r over in (borrowed). Allocates nothing. */
void cli_reader_init(struct cli_reader *r, FILE *in, bool prefixed, size_t max);

/*
 * Next record into *data / *len (valid until the next call). Returns 0
 * with *data set, 0 with *data NULL at the end of input, or an error with
 * err naming the record number: STRATA_ETOOBIG (longer than max),
 * STRATA_EINVAL (input ends inside a length-prefixed record: exit 2),
 * STRATA_EIO (read error), STRATA_ENOMEM. A last line without '\n' is a
 * record.
 */
int cli_reader_next(struct cli_reader *r, const uint8_t **data, size_t *len,
                    char *err);

/* Free what r holds. */
void cli_reader_close(struct cli_reader *r);

/* ------------------------------------------------------------- JSON */

/* Write s[0..len) as a JSON string literal (quotes included); control
 * characters, '"', '\\' and bytes that are not valid UTF-8 are escaped
 * (an invalid byte b as \u00bb). */
void cli_json_string(FILE *out, const void *s, size_t len);

#endif /* CLI_ARGS_H */
