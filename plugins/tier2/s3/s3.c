/* Tier-2 "s3" plugin: chunks as S3 objects, signed with SigV4 or SigV2. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "plugins/tier2/s3/s3_config.h"
#include "plugins/tier2/s3/s3_store.h"
#include "plugins/tier2/s3/s3_transport.h"
#include "strata/plugin.h"

/*
 * One instance = one bucket + prefix. open() parses the settings
 * (s3_config.c), picks the transport (signature=v4: libcurl SigV4, the
 * default; v2: libs3) and hands every op to the chunk model (s3_store.c).
 * Ops are synchronous and blocking: the host runs them on its worker
 * threads, never on an event loop. Config keys: docs/tier2.md, "s3".
 * Counters: bytes_written, bytes_read, retries.
 */

struct s3 {
	const struct strata_host *host;     /* borrowed until close */
	struct s3_config cfg;               /* owned */
	const struct s3_transport_ops *ops; /* static table */
	void *t;                            /* owned transport */
	struct s3_store store;              /* borrows the above */
};

static pthread_once_t pin_once = PTHREAD_ONCE_INIT;

/*
 * Keep this object, and so libcurl, gnutls, libxml2 and libs3, loaded for
 * the life of the process: those libraries keep process-global state
 * (initialised once, freed never or only at exit) that does not survive
 * being unloaded and loaded again by the host's dlclose/dlopen.
 */
static void pin_self(void)
{
	Dl_info info;
	if (dladdr((void *)pin_self, &info) != 0 && info.dli_fname != NULL) {
		/* The handle is leaked on purpose: that is the pin. */
		(void)dlopen(info.dli_fname,
		             RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
	}
}

static int s3_open(const struct strata_host *host, const char *config,
                   void **state, char *errmsg)
{
	pthread_once(&pin_once, pin_self);
	struct s3 *p = host->malloc(sizeof(*p));
	if (p == NULL) {
		snprintf(errmsg, STRATA_ERRMSG_SIZE, "open: out of memory");
		return STRATA_ENOMEM;
	}
	memset(p, 0, sizeof(*p));
	p->host = host;
	int rc = s3_config_parse(host, config, &p->cfg, errmsg);
	if (rc != 0) {
		goto err_free;
	}
	rc = p->cfg.signature == S3_SIG_V4
	             ? s3_curl_new(host, &p->cfg, &p->t, &p->ops, errmsg)
	             : s3_libs3_new(host, &p->cfg, &p->t, &p->ops, errmsg);
	if (rc != 0) {
		goto err_cfg;
	}
	if (p->cfg.signature == S3_SIG_V2 && p->cfg.https) {
		host->log(host, STRATA_LOG_WARN,
		          "signature=v2 over https: libs3 does not verify the "
		          "server's TLS certificate");
	}
	s3_store_init(&p->store, host, &p->cfg, p->ops, p->t);
	host->log(host, STRATA_LOG_INFO,
	          "bucket %s prefix '%s' at %s://%s (%s addressing, %s "
	          "signing, region %s)",
	          p->cfg.bucket, p->cfg.prefix, p->cfg.https ? "https" : "http",
	          p->cfg.host, p->cfg.path_style ? "path" : "virtual-host",
	          p->ops->name, p->cfg.region);
	*state = p;
	return 0;

err_cfg:
	s3_config_free(host, &p->cfg);
err_free:
	host->free(p);
	return rc;
}

static int s3_check(const struct strata_host *host, const char *config,
                    char *errmsg)
{
	struct s3_config cfg;
	memset(&cfg, 0, sizeof(cfg));
	int rc = s3_config_parse(host, config, &cfg, errmsg);
	if (rc == 0) {
		s3_config_free(host, &cfg);
	}
	return rc;
}

static void s3_close(void *state)
{
	struct s3 *p = state;
	p->ops->destroy(p->t);
	s3_config_free(p->host, &p->cfg);
	p->host->free(p);
}

static int s3_create(void *state, const char *name, char *errmsg)
{
	return s3_store_create(&((struct s3 *)state)->store, name, errmsg);
}

static int s3_write(void *state, const char *name, uint64_t offset,
                    const void *buf, size_t len, char *errmsg)
{
	return s3_store_write(&((struct s3 *)state)->store, name, offset, buf,
	                      len, errmsg);
}

static int s3_read(void *state, const char *name, uint64_t offset, void *buf,
                   size_t len, size_t *nread, char *errmsg)
{
	return s3_store_read(&((struct s3 *)state)->store, name, offset, buf,
	                     len, nread, errmsg);
}

static int s3_stat(void *state, const char *name,
                   struct strata_tier2_chunk_info *info, char *errmsg)
{
	return s3_store_stat(&((struct s3 *)state)->store, name, info, errmsg);
}

static int s3_list(void *state, const char *prefix, strata_tier2_list_cb cb,
                   void *arg, char *errmsg)
{
	return s3_store_list(&((struct s3 *)state)->store, prefix, cb, arg,
	                     errmsg);
}

static int s3_truncate(void *state, const char *name, uint64_t length,
                       char *errmsg)
{
	return s3_store_truncate(&((struct s3 *)state)->store, name, length,
	                         errmsg);
}

static int s3_concat(void *state, const char *target,
                     const char *const *sources, size_t n, char *errmsg)
{
	return s3_store_concat(&((struct s3 *)state)->store, target, sources, n,
	                       errmsg);
}

static int s3_remove(void *state, const char *name, char *errmsg)
{
	return s3_store_remove(&((struct s3 *)state)->store, name, errmsg);
}

static const struct strata_tier2_ops s3_ops = {
        .abi_version = STRATA_TIER2_ABI_VERSION,
        .name = "s3",
        .open = s3_open,
        .close = s3_close,
        .create = s3_create,
        .write = s3_write,
        .read = s3_read,
        .stat = s3_stat,
        .list = s3_list,
        .truncate = s3_truncate,
        .concat = s3_concat,
        .remove = s3_remove,
        .check = s3_check,
};

STRATA_PLUGIN_EXPORT const struct strata_tier2_ops *strata_tier2_plugin(void);

/* The plugin's one exported symbol. */
const struct strata_tier2_ops *strata_tier2_plugin(void)
{
	return &s3_ops;
}
