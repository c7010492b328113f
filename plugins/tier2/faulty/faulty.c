/* Tier-2 "faulty" plugin: wraps a parent plugin and injects failures. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "strata/plugin.h"
#include "strata/plugin_config.h"

/*
 * Config:
 *   parent=<name or path>   plugin to wrap (required), opened through the
 *                           host's loader (host->open_tier2), so it gets
 *                           the same ABI checks and name validation;
 *                           parent_plugin= is the same key, for YAML files
 *                           where "parent" is also the map of parent.<key>
 *   parent.<key>=<value>    passed to the parent as "<key>=<value>"
 *   fail_op=<op>            create|write|read|stat|list|truncate|concat|
 *                           delete|any (default any)
 *   fail_nth=N              the Nth call of fail_op fails, counting from 1
 *                           per instance (0 = off, the default)
 *   fail_count=M            consecutive calls failing from the Nth on
 *                           (default 1; -1 = every one from the Nth)
 *   fail_code=<name>        error returned, e.g. EIO, ENOSPC, ETIMEDOUT or
 *                           STRATA_EIO (default EIO)
 *   fail_when=before|after  before (default): the parent is not called;
 *                           after: the parent op runs, then its success is
 *                           reported as fail_code (a lost reply)
 *   delay_ms=<ms>           latency added to every op
 *   fail_file=<path>        while this file exists every op fails with
 *                           fail_code (flip faults on and off from outside)
 * Counter: faults_injected.
 */

enum op {
	OP_CREATE,
	OP_WRITE,
	OP_READ,
	OP_STAT,
	OP_LIST,
	OP_TRUNCATE,
	OP_CONCAT,
	OP_DELETE,
	OP_ANY, /* fail_op=any; also the index of the shared counter */
	OP_COUNT,
};

static const char *const op_names[OP_COUNT] = {
        "create",   "write",  "read",   "stat", "list",
        "truncate", "concat", "delete", "any",
};

struct faulty {
	const struct strata_host *host;        /* borrowed until close */
	const struct strata_tier2_ops *parent; /* host-owned child table */
	void *parent_state;                    /* child instance */
	enum op fail_op;                       /* op whose calls count */
	int64_t fail_nth;                      /* 0 = count-based faults off */
	int64_t fail_count;                    /* -1 = unbounded */
	int fail_code;                         /* STRATA_E* injected */
	const char *fail_code_name;            /* "STRATA_EIO" (static) */
	bool after;                            /* fail_when=after */
	int64_t delay_ms;                      /* added latency */
	char *fail_file;                       /* owned; NULL = none */
	atomic_llong calls[OP_COUNT];          /* calls so far, per op */
};

static const struct {
	const char *name;
	int code;
} codes[] = {
#define FAULTY_CODE(sym, num, msg) {#sym, num},
        STRATA_ERRORS(FAULTY_CODE)
#undef FAULTY_CODE
};

__attribute__((format(printf, 2, 3))) static void errf(char *errmsg,
                                                       const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errmsg, STRATA_ERRMSG_SIZE, fmt, ap);
	va_end(ap);
}

/* "EIO" or "STRATA_EIO" -> code; 0 when unknown or STRATA_OK. */
static int parse_code(const struct strata_config_item *it, const char **name)
{
	const char *v = it->value;
	size_t n = it->value_len;
	if (n > 7 && memcmp(v, "STRATA_", 7) == 0) {
		v += 7;
		n -= 7;
	}
	for (size_t i = 1; i < sizeof(codes) / sizeof(codes[0]); i++) {
		const char *s = codes[i].name + 7;
		if (strlen(s) == n && memcmp(s, v, n) == 0) {
			*name = codes[i].name;
			return codes[i].code;
		}
	}
	return 0;
}

static int parse_op(const struct strata_config_item *it)
{
	for (int i = 0; i < OP_COUNT; i++) {
		if (strlen(op_names[i]) == it->value_len &&
		    memcmp(op_names[i], it->value, it->value_len) == 0) {
			return i;
		}
	}
	return -1;
}

/* Parse config into f (parent name into *parent, parent config appended
 * to pconf, which has room for all of config). */
static int parse_config(struct faulty *f, const char *config, char *parent,
                        size_t parent_size, char *pconf, char *errmsg)
{
	const struct strata_host *h = f->host;
	const char *cur = config;
	struct strata_config_item it;
	size_t plen = 0;
	while (strata_config_next(&cur, &it)) {
		const char *bad = NULL;
		int64_t v;
		if (it.value == NULL) {
			errf(errmsg, "config line '%.*s': expected key=value",
			     it.line_len, it.line);
			return STRATA_ECONFIG;
		}
		if (strata_config_key_is(&it, "parent") ||
		    strata_config_key_is(&it, "parent_plugin")) {
			if (it.value_len == 0 ||
			    strata_config_value_copy(&it, parent,
			                             parent_size) != 0) {
				bad = "a plugin name or path";
			}
		} else if (strata_config_key_has_prefix(&it, "parent.")) {
			size_t klen = it.key_len - 7;
			if (klen == 0) {
				bad = "parent.<key>=<value>";
			} else {
				memcpy(pconf + plen, it.key + 7, klen);
				plen += klen;
				pconf[plen++] = '=';
				memcpy(pconf + plen, it.value, it.value_len);
				plen += it.value_len;
				pconf[plen++] = '\n';
				pconf[plen] = '\0';
			}
		} else if (strata_config_key_is(&it, "fail_op")) {
			int op = parse_op(&it);
			if (op < 0) {
				bad = "create, write, read, stat, list, "
				      "truncate, "
				      "concat, delete or any";
			} else {
				f->fail_op = (enum op)op;
			}
		} else if (strata_config_key_is(&it, "fail_nth")) {
			if (strata_config_value_i64(&it, &v) != 0 || v < 0) {
				bad = "a call number >= 1, or 0 for off";
			} else {
				f->fail_nth = v;
			}
		} else if (strata_config_key_is(&it, "fail_count")) {
			if (strata_config_value_i64(&it, &v) != 0 || v < -1) {
				bad = "a count >= 0, or -1 for all";
			} else {
				f->fail_count = v;
			}
		} else if (strata_config_key_is(&it, "fail_code")) {
			f->fail_code = parse_code(&it, &f->fail_code_name);
			if (f->fail_code == 0) {
				bad = "an error name such as EIO, ENOSPC or "
				      "ETIMEDOUT";
			}
		} else if (strata_config_key_is(&it, "fail_when")) {
			if (it.value_len == 6 &&
			    !memcmp(it.value, "before", 6)) {
				f->after = false;
			} else if (it.value_len == 5 &&
			           !memcmp(it.value, "after", 5)) {
				f->after = true;
			} else {
				bad = "before or after";
			}
		} else if (strata_config_key_is(&it, "delay_ms")) {
			if (strata_config_value_i64(&it, &v) != 0 || v < 0 ||
			    v > 3600000) {
				bad = "milliseconds, 0..3600000";
			} else {
				f->delay_ms = v;
			}
		} else if (strata_config_key_is(&it, "fail_file")) {
			if (it.value_len == 0) {
				bad = "a file path";
			} else {
				f->fail_file = h->malloc(it.value_len + 1);
				if (f->fail_file == NULL) {
					errf(errmsg, "open: out of memory");
					return STRATA_ENOMEM;
				}
				memcpy(f->fail_file, it.value, it.value_len);
				f->fail_file[it.value_len] = '\0';
			}
		} else {
			static const char allowed[] =
			        "parent, parent_plugin, parent.<key>, fail_op, "
			        "fail_nth, fail_count, fail_code, fail_when, "
			        "delay_ms, fail_file";
			char msg[STRATA_ERRMSG_SIZE];
			errf(errmsg, "config: %s",
			     strata_config_unknown_key(&it, allowed, msg,
			                               sizeof(msg)));
			return STRATA_ECONFIG;
		}
		if (bad != NULL) {
			errf(errmsg, "config %.*s: bad value (expected %s)",
			     it.line_len, it.line, bad);
			return STRATA_ECONFIG;
		}
	}
	if (parent[0] == '\0') {
		errf(errmsg, "config: parent is required (the plugin to wrap, "
		             "e.g. parent=mem)");
		return STRATA_ECONFIG;
	}
	return 0;
}

static int faulty_open(const struct strata_host *host, const char *config,
                       void **state, char *errmsg)
{
	if (host->abi_version < 1 || host->open_tier2 == NULL) {
		errf(errmsg, "open: this host cannot open a parent plugin "
		             "(no open_tier2 service)");
		return STRATA_ENOTSUP;
	}
	size_t clen = strlen(config);
	int rc = STRATA_ENOMEM;
	char *parent = NULL;
	char *pconf = NULL;
	struct faulty *f = host->malloc(sizeof(*f));
	if (f == NULL) {
		errf(errmsg, "open: out of memory");
		return STRATA_ENOMEM;
	}
	memset(f, 0, sizeof(*f));
	parent = host->malloc(clen + 1);
	pconf = host->malloc(clen + 2);
	if (parent == NULL || pconf == NULL) {
		errf(errmsg, "open: out of memory");
		goto err_free;
	}
	f->host = host;
	f->fail_op = OP_ANY;
	f->fail_count = 1;
	f->fail_code = STRATA_EIO;
	f->fail_code_name = "STRATA_EIO";
	for (int i = 0; i < OP_COUNT; i++) {
		atomic_init(&f->calls[i], 0);
	}
	parent[0] = '\0';
	pconf[0] = '\0';
	rc = parse_config(f, config, parent, clen + 1, pconf, errmsg);
	if (rc != 0) {
		goto err_free;
	}
	rc = host->open_tier2(host, parent, pconf, &f->parent, &f->parent_state,
	                      errmsg);
	if (rc != 0) {
		goto err_free;
	}
	host->free(parent);
	host->free(pconf);
	*state = f;
	return 0;

err_free:
	host->free(f->fail_file);
	host->free(pconf);
	host->free(parent);
	host->free(f);
	return rc;
}

static void faulty_close(void *state)
{
	struct faulty *f = state;
	f->parent->close(f->parent_state);
	f->host->free(f->fail_file);
	f->host->free(f);
}

/* Delay, then decide whether this call of op fails; if so fill errmsg and
 * return the code. Counts the call. */
static int inject(struct faulty *f, enum op op, const char *name, char *errmsg)
{
	if (f->delay_ms > 0) {
		struct timespec ts = {
		        .tv_sec = f->delay_ms / 1000,
		        .tv_nsec = (f->delay_ms % 1000) * 1000000,
		};
		while (nanosleep(&ts, &ts) != 0) {
		}
	}
	long long k = atomic_fetch_add(&f->calls[op], 1) + 1;
	long long any = atomic_fetch_add(&f->calls[OP_ANY], 1) + 1;
	if (f->fail_file != NULL && access(f->fail_file, F_OK) == 0) {
		errf(errmsg, "%s chunk %s: injected %s (fail_file %s exists)",
		     op_names[op], name, f->fail_code_name, f->fail_file);
		goto fail;
	}
	if (f->fail_op == OP_ANY) {
		k = any;
	} else if (f->fail_op != op) {
		return 0;
	}
	if (f->fail_nth == 0 || k < f->fail_nth ||
	    (f->fail_count >= 0 && k - f->fail_nth >= f->fail_count)) {
		return 0;
	}
	errf(errmsg,
	     "%s chunk %s: injected %s on call %lld (fail_op=%s fail_nth=%lld "
	     "fail_count=%lld)",
	     op_names[op], name, f->fail_code_name, k, op_names[f->fail_op],
	     (long long)f->fail_nth, (long long)f->fail_count);
fail:
	f->host->counter_add(f->host, "faults_injected", 1);
	f->host->log(f->host, STRATA_LOG_DEBUG, "%s", errmsg);
	return f->fail_code;
}

/* Before the parent op: the fault, unless fail_when=after. */
static int before(struct faulty *f, enum op op, const char *name, char *errmsg)
{
	return f->after ? 0 : inject(f, op, name, errmsg);
}

/* After the parent op returned rc: with fail_when=after the call counts
 * here and a parent success may become the fault; a parent error (and its
 * message) is kept. */
static int after(struct faulty *f, enum op op, const char *name, int rc,
                 char *errmsg)
{
	if (!f->after) {
		return rc;
	}
	char msg[STRATA_ERRMSG_SIZE];
	int frc = inject(f, op, name, msg);
	if (rc != 0 || frc == 0) {
		return rc;
	}
	memcpy(errmsg, msg, sizeof(msg));
	return frc;
}

static int faulty_create(void *state, const char *name, char *errmsg)
{
	struct faulty *f = state;
	int rc = before(f, OP_CREATE, name, errmsg);
	if (rc == 0) {
		rc = f->parent->create(f->parent_state, name, errmsg);
		rc = after(f, OP_CREATE, name, rc, errmsg);
	}
	return rc;
}

static int faulty_write(void *state, const char *name, uint64_t offset,
                        const void *buf, size_t len, char *errmsg)
{
	struct faulty *f = state;
	int rc = before(f, OP_WRITE, name, errmsg);
	if (rc == 0) {
		rc = f->parent->write(f->parent_state, name, offset, buf, len,
		                      errmsg);
		rc = after(f, OP_WRITE, name, rc, errmsg);
	}
	return rc;
}

static int faulty_read(void *state, const char *name, uint64_t offset,
                       void *buf, size_t len, size_t *nread, char *errmsg)
{
	struct faulty *f = state;
	*nread = 0;
	int rc = before(f, OP_READ, name, errmsg);
	if (rc == 0) {
		rc = f->parent->read(f->parent_state, name, offset, buf, len,
		                     nread, errmsg);
		rc = after(f, OP_READ, name, rc, errmsg);
	}
	return rc;
}

static int faulty_stat(void *state, const char *name,
                       struct strata_tier2_chunk_info *info, char *errmsg)
{
	struct faulty *f = state;
	int rc = before(f, OP_STAT, name, errmsg);
	if (rc == 0) {
		rc = f->parent->stat(f->parent_state, name, info, errmsg);
		rc = after(f, OP_STAT, name, rc, errmsg);
	}
	return rc;
}

static int faulty_list(void *state, const char *prefix, strata_tier2_list_cb cb,
                       void *arg, char *errmsg)
{
	struct faulty *f = state;
	int rc = before(f, OP_LIST, prefix, errmsg);
	if (rc == 0) {
		rc = f->parent->list(f->parent_state, prefix, cb, arg, errmsg);
		rc = after(f, OP_LIST, prefix, rc, errmsg);
	}
	return rc;
}

static int faulty_truncate(void *state, const char *name, uint64_t length,
                           char *errmsg)
{
	struct faulty *f = state;
	int rc = before(f, OP_TRUNCATE, name, errmsg);
	if (rc == 0) {
		rc = f->parent->truncate(f->parent_state, name, length, errmsg);
		rc = after(f, OP_TRUNCATE, name, rc, errmsg);
	}
	return rc;
}

static int parent_concat(struct faulty *f, const char *target,
                         const char *const *sources, size_t n, char *errmsg)
{
	if (f->parent->concat == NULL) {
		errf(errmsg,
		     "concat into chunk %s: the parent plugin does not "
		     "support concat",
		     target);
		return STRATA_ENOTSUP;
	}
	return f->parent->concat(f->parent_state, target, sources, n, errmsg);
}

static int faulty_concat(void *state, const char *target,
                         const char *const *sources, size_t n, char *errmsg)
{
	struct faulty *f = state;
	int rc = before(f, OP_CONCAT, target, errmsg);
	if (rc == 0) {
		rc = parent_concat(f, target, sources, n, errmsg);
		rc = after(f, OP_CONCAT, target, rc, errmsg);
	}
	return rc;
}

static int faulty_delete(void *state, const char *name, char *errmsg)
{
	struct faulty *f = state;
	int rc = before(f, OP_DELETE, name, errmsg);
	if (rc == 0) {
		rc = f->parent->remove(f->parent_state, name, errmsg);
		rc = after(f, OP_DELETE, name, rc, errmsg);
	}
	return rc;
}

static const struct strata_tier2_ops faulty_ops = {
        .abi_version = STRATA_TIER2_ABI_VERSION,
        .name = "faulty",
        .open = faulty_open,
        .close = faulty_close,
        .create = faulty_create,
        .write = faulty_write,
        .read = faulty_read,
        .stat = faulty_stat,
        .list = faulty_list,
        .truncate = faulty_truncate,
        .concat = faulty_concat,
        .remove = faulty_delete,
};

STRATA_PLUGIN_EXPORT const struct strata_tier2_ops *strata_tier2_plugin(void);

/* The plugin's one exported symbol. */
const struct strata_tier2_ops *strata_tier2_plugin(void)
{
	return &faulty_ops;
}
