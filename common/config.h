/* Configuration: a static schema per binary, values from defaults, one YAML
 * file, STRATA_* environment variables and --flags; typed getters. */
#ifndef COMMON_CONFIG_H
#define COMMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * A binary declares its keys once, as a static const array of struct
 * config_key, and calls config_load() at the top of main():
 *
 *	static const char *const levels[] = {"debug", "info", "warn",
 *	                                     "error", NULL};
 *	static const struct config_key schema[] = {
 *		{.name = "log.level", .type = CONFIG_ENUM, .def = "info",
 *		 .allowed = levels, .help = "Lowest log level written."},
 *		{.name = "raft.election_timeout", .type = CONFIG_DURATION,
 *		 .def = "1s", .min = "100ms", .max = "1m",
 *		 .help = "Raft election timeout."},
 *		{.name = "tier2.options", .type = CONFIG_SECTION,
 *		 .help = "Options for the tier-2 plugin (see its docs)."},
 *	};
 *	struct config cfg;
 *	int rc = config_init(&cfg, schema, sizeof(schema) / sizeof(*schema));
 *	if (rc == 0) rc = config_load(&cfg, argc, argv, NULL, NULL);
 *	if (rc != 0) { fprintf(stderr, "%s\n", config_errmsg(&cfg)); ... }
 *	if (config_help_requested(&cfg)) config_print_help(schema, n, stdout);
 *
 * Precedence, lowest first: default < file < environment < flag. Every
 * error is reported once, fully, before anything starts: unknown keys (with
 * a "did you mean"), bad values (with the allowed ones), YAML syntax
 * errors (file:line:col), duplicate keys, missing required keys. The user
 * rules are in docs/configuration.md.
 *
 * Key names are components of [a-z0-9_] joined by '.', at most
 * CONFIG_NAME_MAX bytes; a nested YAML map "a: {b: 1}" is the key "a.b".
 * The environment variable of a key is STRATA_ + the name upper-cased with
 * '.' replaced by '_'; its flag is --name, where '-' and '_' are the same.
 * "config", "help" and "version" are reserved (--config FILE, --help,
 * --version).
 */

/* Type of a key; how its value is written and read back. */
enum config_type {
	CONFIG_INT,      /* int64_t; decimal with optional sign */
	CONFIG_UINT,     /* uint64_t; decimal */
	CONFIG_BOOL,     /* true/false, yes/no, on/off, 1/0 (any case) */
	CONFIG_STRING,   /* any text; may have no default (NULL) */
	CONFIG_DURATION, /* integer + ms, s, m, h or d; stored as ms */
	CONFIG_SIZE,     /* bytes, optional KiB/MiB/GiB/TiB, K/M/G/T (x1024)
	                    or KB/MB/GB/TB (x1000); stored as bytes */
	CONFIG_ENUM,     /* one of .allowed, matched ignoring case */
	CONFIG_SECTION,  /* free-form map of scalar leaves, for a plugin */
};

/* Flags of a key (bit set in config_key.flags). */
#define CONFIG_REQUIRED 0x1u /* no default: file, env or flag must set it */
#define CONFIG_SECRET 0x2u   /* config_dump() prints it as "<redacted>" */

/* Longest key name, section leaves included (bytes, NUL excluded). */
#define CONFIG_NAME_MAX 128

/* Size of the message buffer a struct config carries. */
#define CONFIG_ERRMSG_SIZE 1024

/* One key of a schema. Strings are borrowed for the config's lifetime
 * (normally static). */
struct config_key {
	const char *name;      /* dotted, e.g. "raft.election_timeout" */
	enum config_type type; /* how the value is parsed */
	const char *def; /* default as a user writes it ("2s"); NULL: none */
	const char *min; /* inclusive lower bound, same syntax; NULL: none */
	const char *max; /* inclusive upper bound, same syntax; NULL: none */
	const char *const *allowed; /* CONFIG_ENUM: NULL-terminated list */
	const char *help;           /* one line, for --help */
	unsigned flags;             /* CONFIG_REQUIRED, CONFIG_SECRET */
};

struct config_value;
struct config_leaf;

/* A loaded configuration; caller-owned memory (config_init/config_close).
 * Fields are private: use the functions below. */
struct config {
	const struct config_key *schema; /* borrowed until config_close */
	size_t n;                        /* keys in schema */
	struct config_value *values;     /* one per key */
	struct config_leaf *leaves;      /* leaves of all sections */
	size_t n_leaves;                 /* used entries of leaves */
	size_t cap_leaves;               /* allocated entries of leaves */
	char *path;                      /* config file read, or NULL */
	bool loaded;                     /* config_load() returned 0 */
	bool help;                       /* --help or -h was given */
	bool version;                    /* --version was given (not --help) */
	char err[CONFIG_ERRMSG_SIZE];    /* last error message */
};

/*
 * Check schema (n keys, borrowed until config_close) and set every key to
 * its default. Errors: STRATA_EINVAL for a bad schema (a programming
 * error: bad name, duplicate, default that does not parse or is out of
 * range, ...), STRATA_ENOMEM; config_errmsg() says which. config_close()
 * is safe after a failed init.
 */
int config_init(struct config *cfg, const struct config_key *schema, size_t n);

/* Free everything cfg owns; strings from getters become invalid. */
void config_close(struct config *cfg);

/* Message of the last failed call on cfg ("" if none). Valid until the
 * next call on cfg. */
const char *config_errmsg(const struct config *cfg);

/*
 * Apply, in order: the YAML file named by --config FILE (or --config=FILE;
 * else the STRATA_CONFIG environment variable; else no file), the
 * environment (envp: "NAME=value" strings, NULL-terminated; NULL means the
 * process environment), then the flags in argv[1..argc-1]; then check
 * that required keys are set. argv and envp are borrowed for the call.
 *
 * Flags end at "--" or at the first argument not starting with '-' (or
 * "-" alone). If first_arg is non-NULL it receives the index of the first
 * positional argument (argc if none); if NULL, positional arguments are an
 * error. "--help" or "-h" anywhere before "--" wins over everything,
 * even a bad flag: no file is read, 0 is returned and
 * config_help_requested() is true. "--version" likewise (unless --help
 * is given too) makes config_version_requested() true.
 *
 * Errors: STRATA_ECONFIG (config_errmsg() names the file:line, variable or
 * flag, the key, the value and what is allowed), STRATA_ENOMEM. After an
 * error, only config_errmsg() and config_close() may be called. Call at
 * most once per config_init().
 */
int config_load(struct config *cfg, int argc, char *const argv[],
                char *const envp[], int *first_arg);

/* True when config_load() saw --help or -h. */
bool config_help_requested(const struct config *cfg);

/* True when config_load() saw --version (and no --help). */
bool config_version_requested(const struct config *cfg);

/* Path of the config file that was read (borrowed), or NULL. */
const char *config_file(const struct config *cfg);

/*
 * Typed getters. key must be in the schema with the matching type
 * (anything else is a programming error and aborts). Strings are borrowed
 * until config_close(). config_get_string() also works for CONFIG_ENUM
 * (the allowed spelling) and returns NULL for an unset string without a
 * default; config_get_enum() returns the index into .allowed.
 */
int64_t config_get_int(const struct config *cfg, const char *key);
uint64_t config_get_uint(const struct config *cfg, const char *key);
bool config_get_bool(const struct config *cfg, const char *key);
const char *config_get_string(const struct config *cfg, const char *key);
size_t config_get_enum(const struct config *cfg, const char *key);
uint64_t config_get_duration_ms(const struct config *cfg, const char *key);
uint64_t config_get_size(const struct config *cfg, const char *key);

/*
 * Cross-key rule: the duration key lo must be strictly below the duration
 * key hi (e.g. a Raft heartbeat below the election timeout). 0, or
 * STRATA_ECONFIG with errmsg (STRATA_ERRMSG_SIZE bytes) naming both keys,
 * their values and the fix. Both keys must be CONFIG_DURATION (aborts).
 */
int config_check_duration_below(const struct config *cfg, const char *lo,
                                const char *hi, char *errmsg);

/* What an address key holds (config_check_addresses). */
enum config_addr_form {
	CONFIG_ADDR_RPC,      /* tcp://HOST:PORT (or NNG's ipc://, inproc://) */
	CONFIG_ADDR_HTTP,     /* http://HOST:PORT */
	CONFIG_ADDR_HOSTPORT, /* HOST:PORT ([v6]:PORT) */
	CONFIG_ADDR_RPC_LIST, /* comma-separated CONFIG_ADDR_RPC URLs */
	CONFIG_ADDR_IPV4PORT, /* IPv4:PORT, a bind address of the Raft port */
};
struct config_addr {
	const char *key;            /* a CONFIG_STRING key; "" is accepted */
	enum config_addr_form form; /* what it must look like */
	bool listen;                /* bound by this process */
};

/*
 * Cross-key rule for addresses: each key of keys[0..n) has its form, with
 * a port of 0..65535, and no two listen keys bind the same non-zero port
 * on the same (or a wildcard) host, so that --check-config finds what
 * would otherwise fail only at start. 0, or STRATA_ECONFIG with errmsg
 * naming the key(s), where the value came from and the fix.
 */
int config_check_addresses(const struct config *cfg,
                           const struct config_addr *keys, size_t n,
                           char *errmsg);

/* True when a file, variable or flag set key (a schema key; aborts
 * otherwise). For a section: when it has at least one leaf. */
bool config_is_set(const struct config *cfg, const char *key);

/*
 * Where the value of key comes from: "default", "strata.yaml:12",
 * "env STRATA_RAFT_ELECTION_TIMEOUT" or "flag --raft.election-timeout".
 * key is a schema key (not a section; aborts) or a section leaf's full
 * name ("tier2.options.root"); NULL for a leaf that is not set. Borrowed
 * until config_close().
 */
const char *config_source(const struct config *cfg, const char *key);

/*
 * The leaves of a CONFIG_SECTION key (aborts otherwise) as "key=value\n"
 * lines, keys relative to the section ("root=/data\n", nested ones dotted
 * "s3.region=x\n"), in the order they were first set; "" when empty. The
 * format of include/strata/plugin_config.h. *out is strata_malloc'd, the
 * caller frees it with strata_free(). Errors: STRATA_ENOMEM.
 */
int config_section_flatten(const struct config *cfg, const char *section,
                           char **out);

/* Print every key of schema as a flag with its type, default, bounds,
 * environment variable and help: the body of a binary's --help. */
void config_print_help(const struct config_key *schema, size_t n, FILE *out);

/*
 * Print the effective configuration as YAML (nested maps, sorted), each
 * value followed by a comment naming its source; CONFIG_SECRET keys and
 * section leaves whose name contains "secret", "password", "token" or
 * "credential" print as "<redacted>". Errors: STRATA_ENOMEM (nothing
 * printed).
 */
int config_dump(const struct config *cfg, FILE *out);

/*
 * Parsers for the value syntaxes above, for code that reads such values
 * elsewhere (e.g. stratactl arguments). Each returns 0, or STRATA_EINVAL
 * when s is malformed, or STRATA_ERANGE when it overflows 64 bits.
 */
int config_parse_bool(const char *s, bool *out);
int config_parse_int(const char *s, int64_t *out);
int config_parse_uint(const char *s, uint64_t *out);
int config_parse_duration_ms(const char *s, uint64_t *out);
int config_parse_size(const char *s, uint64_t *out);

#endif /* COMMON_CONFIG_H */
