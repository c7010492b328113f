/* Broken connector plugins for test_connect_connector: built twice, as
 * connector-badabi.so (BAD_ABI: an ABI from the future) and
 * connector-halfsink.so (a sink without prepare). */
#include <stddef.h>

#include "strata/connector.h"

static int sink_open(const struct strata_host *host, const char *config,
                     const char *restore, void **state, char *errmsg)
{
	(void)host;
	(void)config;
	(void)restore;
	(void)errmsg;
	*state = NULL;
	return 0;
}

static int sink_write(void *state, const struct strata_connector_record *r,
                      size_t n, char *errmsg)
{
	(void)state;
	(void)r;
	(void)n;
	(void)errmsg;
	return 0;
}

static void sink_close(void *state)
{
	(void)state;
}

static const struct strata_connector_ops ops = {
#ifdef BAD_ABI
        .abi_version = STRATA_CONNECTOR_ABI_VERSION + 98,
        .name = "badabi",
#else
        .abi_version = STRATA_CONNECTOR_ABI_VERSION,
        .name = "halfsink",
#endif
        .sink_open = sink_open,
        .sink_write = sink_write,
        .sink_close = sink_close,
};

STRATA_PLUGIN_EXPORT const struct strata_connector_ops *
strata_connector_plugin(void)
{
	return &ops;
}
