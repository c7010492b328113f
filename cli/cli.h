/* stratactl internals shared by its command files: the invocation context,
 * the command table, output and progress helpers. */
#ifndef CLI_CLI_H
#define CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/args.h"
#include "strata/client.h"

#include <protobuf-c/protobuf-c.h>

#define CLI_MAX_URLS 16 /* controller URLs in --controller */
#define CLI_RATE_MIN_SECS                                  \
	0.1 /* shorter runs print no rate: it means little \
	     */

/* One stratactl invocation. */
struct cli {
	const char *urls[CLI_MAX_URLS]; /* controller URLs, into urls_buf */
	size_t n_urls;
	char *urls_buf;               /* owned copy of --controller */
	bool json;                    /* --json: machine output on stdout */
	bool quiet;                   /* --quiet: no progress, no summary */
	bool tty;                     /* stderr is a terminal: progress */
	uint64_t timeout_ms;          /* --timeout: one whole operation */
	uint64_t connect_timeout_ms;  /* --connect-timeout: reach a server */
	struct strata_client *client; /* made by cli_client(), owned */
	bool reached;                 /* a controller answered the ping */
	const char *cmd_name;         /* "stream create", for messages */
};

/* A command: "stream create", or "write" (group NULL). */
struct cli_cmd {
	const char *group;   /* "scope", "stream", "group", "cluster", NULL */
	const char *name;    /* "create", "write", ... */
	const char *args;    /* synopsis of the positionals: "SCOPE/STREAM" */
	const char *summary; /* one line for the command list */
	const char *details; /* paragraphs for --help, or NULL */
	const struct cli_opt *opts; /* its options (global ones are added) */
	size_t n_opts;
	size_t min_pos, max_pos; /* positional argument counts */
	int (*run)(struct cli *c, const struct cli_args *a);
};

/* Command tables of admin.c, members.c, io.c and group.c (terminated by
 * a NULL name). group.c is built when libstrata has reader groups
 * (STRATA_CLI_GROUPS, see cli/CMakeLists.txt). */
extern const struct cli_cmd cli_admin_cmds[];
extern const struct cli_cmd cli_members_cmds[];
extern const struct cli_cmd cli_io_cmds[];
extern const struct cli_cmd cli_group_cmds[];

/*
 * Print one event on stdout as `read` does: the payload and a newline, a
 * 4-byte little-endian length and the payload (prefixed), or a JSON line
 * with its segment and offset (--json), and its stream first when
 * scope/stream are not NULL (group reads, which may span streams). False
 * when stdout failed (errno says why).
 */
bool cli_print_event(const struct cli *c, bool prefixed, const char *scope,
                     const char *stream, uint64_t segment_id, uint64_t offset,
                     const uint8_t *data, size_t len);

/*
 * `read --group G`: join the reader group (SCOPE/GROUP, or GROUP in
 * default_scope) as reader --reader (default stratactl-<host>-<pid>),
 * print its events until the group's end, 2 s without an event (unless
 * follow) or max events (0 = no limit), then leave the group (its
 * segments go back at the positions reached). Returns the exit code.
 */
int cli_read_group(struct cli *c, const struct cli_args *a,
                   const char *default_scope, bool follow, bool prefixed,
                   uint64_t max);

/*
 * The client for c (created on first use): checks first that one of the
 * controller URLs answers within connect_timeout_ms. Returns 0, or prints
 * the error ("controller unreachable at ...") and returns the exit code.
 */
int cli_client(struct cli *c, struct strata_client **out);

/*
 * One raw controller RPC (common/rpc.h), for what libstrata has no call
 * for: checks first, as cli_client() does, that a controller answers,
 * then sends req (borrowed) to the --controller URLs, following leader
 * redirects. flags RPC_IDEMPOTENT: each attempt takes at most 10 s (and
 * --timeout) and a silent replica is passed over for the next URL; 0 (a
 * change): one attempt of --timeout, never re-sent once it may have
 * arrived. On success *reply is the reply unpacked as reply_desc (free
 * with rpc_pb_free). Otherwise prints the error (what: the operation, for
 * messages without the server's own) and returns the exit code.
 */
int cli_rpc(struct cli *c, uint32_t method, unsigned flags,
            const ProtobufCMessage *req,
            const ProtobufCMessageDescriptor *reply_desc,
            ProtobufCMessage **reply, const char *what);

/*
 * Print "stratactl <command>: <message>" on stderr and return the exit
 * code for code (cli_exit_code).
 */
int cli_fail(const struct cli *c, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Print a libstrata error (errmsg from the call) with what was being done
 * and a hint for common codes; returns the exit code. */
int cli_fail_op(const struct cli *c, int code, const char *what,
                const char *errmsg);

/* Informational line on stderr, unless --quiet. */
void cli_note(const struct cli *c, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/*
 * Progress of a blocking call: after one second, and then every second
 * while it runs, "<what>... Ns" is shown on stderr when it is a terminal
 * (and not --quiet). cli_progress_end clears the line. One at a time.
 */
void cli_progress_begin(struct cli *c, const char *what);
void cli_progress_end(struct cli *c);

/* Monotonic milliseconds. */
uint64_t cli_now_ms(void);

/* Human name of a stream state ("active"). */
const char *cli_stream_state_name(int state);

#endif /* CLI_CLI_H */
