/* Tiny tier-2 plugins for the loader tests; variants chosen by -D flags. */
#include <string.h>

#include "strata/plugin.h"

/*
 * TP_ABI=<n>        abi_version in the table (default current)
 * TP_NO_ENTRY       export no entry symbol (not a plugin)
 * TP_NULL_TABLE     the entry returns NULL
 * TP_NO_NAME        .name is NULL
 * TP_NULL_WRITE     the required write op is NULL
 * Otherwise a valid plugin without concat that stores nothing; special
 * chunk names make its ops misbehave so the host's defences can be tested:
 *   neg      every op returns -1 (an invalid code)
 *   nomsg    every op returns STRATA_EIO without a message
 *   longmsg  every op fills errmsg without a NUL and returns STRATA_EIO
 *   overread read reports one byte more than the buffer holds
 * Every op calls host->counter_add(host, "calls", 1) first; open logs a
 * line, counts "opens" and fails with STRATA_ECONFIG on a "fail" key;
 * check counts "checks" and fails the same way.
 */

#ifndef TP_ABI
#define TP_ABI STRATA_TIER2_ABI_VERSION
#endif

struct tp {
	const struct strata_host *host;
};

static int misbehave(struct tp *t, const char *name, char *errmsg)
{
	t->host->counter_add(t->host, "calls", 1);
	if (strcmp(name, "neg") == 0) {
		return -1;
	}
	if (strcmp(name, "nomsg") == 0) {
		return STRATA_EIO;
	}
	if (strcmp(name, "longmsg") == 0) {
		memset(errmsg, 'x', STRATA_ERRMSG_SIZE);
		return STRATA_EIO;
	}
	return 0;
}

static int tp_open(const struct strata_host *host, const char *config,
                   void **state, char *errmsg)
{
	host->log(host, STRATA_LOG_INFO, "opening with %zu config bytes",
	          strlen(config));
	host->counter_add(host, "opens", 1);
	if (strstr(config, "fail") != NULL) {
		strcpy(errmsg, "config fail=1: asked to fail");
		return STRATA_ECONFIG;
	}
	struct tp *t = host->malloc(sizeof(*t));
	if (t == NULL) {
		strcpy(errmsg, "open: out of memory");
		return STRATA_ENOMEM;
	}
	t->host = host;
	*state = t;
	return 0;
}

/* Checks as open would, without counting an open. */
static int tp_check(const struct strata_host *host, const char *config,
                    char *errmsg)
{
	host->counter_add(host, "checks", 1);
	if (strstr(config, "fail") != NULL) {
		strcpy(errmsg, "config fail=1: asked to fail");
		return STRATA_ECONFIG;
	}
	return 0;
}

static void tp_close(void *state)
{
	struct tp *t = state;
	t->host->free(t);
}

static int tp_create(void *state, const char *name, char *errmsg)
{
	return misbehave(state, name, errmsg);
}

__attribute__((unused)) static int tp_write(void *state, const char *name,
                                            uint64_t offset, const void *buf,
                                            size_t len, char *errmsg)
{
	(void)offset;
	(void)buf;
	(void)len;
	return misbehave(state, name, errmsg);
}

static int tp_read(void *state, const char *name, uint64_t offset, void *buf,
                   size_t len, size_t *nread, char *errmsg)
{
	(void)offset;
	(void)buf;
	int rc = misbehave(state, name, errmsg);
	*nread = strcmp(name, "overread") == 0 ? len + 1 : 0;
	return rc;
}

static int tp_stat(void *state, const char *name,
                   struct strata_tier2_chunk_info *info, char *errmsg)
{
	info->length = 0;
	return misbehave(state, name, errmsg);
}

static int tp_list(void *state, const char *prefix, strata_tier2_list_cb cb,
                   void *arg, char *errmsg)
{
	int rc = misbehave(state, prefix, errmsg);
	if (rc != 0) {
		return rc;
	}
	struct strata_tier2_chunk_info info = {0, 0};
	return cb(arg, "x", &info);
}

static int tp_truncate(void *state, const char *name, uint64_t length,
                       char *errmsg)
{
	(void)length;
	return misbehave(state, name, errmsg);
}

static int tp_delete(void *state, const char *name, char *errmsg)
{
	return misbehave(state, name, errmsg);
}

static const struct strata_tier2_ops tp_ops = {
        .abi_version = TP_ABI,
#ifdef TP_NO_NAME
        .name = NULL,
#else
        .name = "tp",
#endif
        .open = tp_open,
        .close = tp_close,
        .create = tp_create,
#ifdef TP_NULL_WRITE
        .write = NULL,
#else
        .write = tp_write,
#endif
        .read = tp_read,
        .stat = tp_stat,
        .list = tp_list,
        .truncate = tp_truncate,
        .concat = NULL,
        .remove = tp_delete,
        /* Also in the TP_ABI=1 build: the host must not see it there. */
        .check = tp_check,
};

#ifdef TP_NO_ENTRY
STRATA_PLUGIN_EXPORT const struct strata_tier2_ops *not_the_entry(void);

/* Exported under the wrong name. */
const struct strata_tier2_ops *not_the_entry(void)
{
	return &tp_ops;
}
#else
STRATA_PLUGIN_EXPORT const struct strata_tier2_ops *strata_tier2_plugin(void);

/* The entry symbol. */
const struct strata_tier2_ops *strata_tier2_plugin(void)
{
#ifdef TP_NULL_TABLE
	(void)tp_ops;
	return NULL;
#else
	return &tp_ops;
#endif
}
#endif
