/* Connector plugins for test_connect_connector, one source built three
 * times: connector-badabi.so (BAD_ABI: an ABI from the future),
 * connector-halfsink.so (a sink without prepare) and connector-v1.so
 * (V1: a whole sink built for ABI 1, whose table has a check the host
 * must not see: ABI 1 tables end before it). */
#include <stddef.h>
#include <stdio.h>

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

#ifdef V1
static int sink_prepare(void *state, char *token, size_t size, char *errmsg)
{
	(void)state;
	(void)errmsg;
	snprintf(token, size, "0");
	return 0;
}

static int check(const struct strata_host *host, const char *config,
                 bool source, char *errmsg)
{
	(void)host;
	(void)config;
	(void)source;
	(void)errmsg;
	return STRATA_EINTERNAL; /* never called */
}
#endif

static const struct strata_connector_ops ops = {
#if defined(V1)
        .abi_version = 1,
        .name = "v1",
        .sink_prepare = sink_prepare,
        .check = check,
#elif defined(BAD_ABI)
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
