/* strata-connect's connector host: loads a connector plugin and checks it. */
#ifndef CONNECT_CONNECTOR_H
#define CONNECT_CONNECTOR_H

#include <stddef.h>

#include "strata/connector.h"

/*
 * A loaded connector plugin (include/strata/connector.h): the host's copy
 * of its table (fields beyond its ABI version read as NULL) and the host
 * services its instances get. Loaded once per process, unloaded at exit.
 */
struct connector {
	void *dl;                        /* dlopen handle */
	struct strata_connector_ops ops; /* host copy of the table */
	struct strata_host host;         /* log, allocator, counters */
	char component[64];              /* log component "connect.<name>" */
	char path[4096];                 /* where it was loaded from */
};

/*
 * Load connector name, found as <dir>/connector-<name>.so, or a path
 * (anything with a '/'). dir: plugin_dir when non-NULL and non-empty,
 * else plugin_dir_lookup() ($STRATA_PLUGIN_DIR, beside the binary, the
 * install dir). Checks the ABI version, the name and that a source or
 * sink it offers has all its ops. Errors, errmsg naming the file and the
 * fix: STRATA_EBADNAME, STRATA_EPLUGIN, STRATA_EABI, STRATA_ENOMEM.
 */
int connector_load(const char *name, const char *plugin_dir,
                   struct connector **out, char *errmsg);

/* dlclose and free (no instance may be open). NULL is a no-op. */
void connector_unload(struct connector *c);

/* Prefix a plugin's message with its name and what the host was doing:
 * "<what> <name>: <pmsg>" into errmsg. Returns rc. */
int connector_fail(const struct connector *c, const char *what, int rc,
                   const char *pmsg, char *errmsg);

#endif /* CONNECT_CONNECTOR_H */
