/* strata-connect's connector host (see connector.h). */
#include "connect/connector.h"

#include <dlfcn.h>
#include <limits.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/errmsg.h"
#include "common/log.h"
#include "common/plugin.h"

/* Bytes of the table a plugin of version v declares. */
static size_t ops_size_for_version(uint32_t v)
{
	return v < 2 ? offsetof(struct strata_connector_ops, check)
	             : sizeof(struct strata_connector_ops);
}

__attribute__((format(printf, 3, 4))) static void
host_log(const struct strata_host *host, int level, const char *fmt, ...)
{
	const struct connector *c = host->host_data;
	va_list ap;
	va_start(ap, fmt);
	plugin_host_vlog(c->component, level, fmt, ap);
	va_end(ap);
}

static void host_counter_add(const struct strata_host *host, const char *name,
                             uint64_t delta)
{
	(void)host; /* strata-connect has no metrics endpoint yet */
	(void)name;
	(void)delta;
}

/* True for a plugin name: 1..64 of [a-z0-9_-]. */
static bool name_ok(const char *n)
{
	size_t len = strlen(n);
	if (len == 0 || len > 64) {
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		char ch = n[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		      ch == '_' || ch == '-')) {
			return false;
		}
	}
	return true;
}

/* The table's own checks; 0 or STRATA_EPLUGIN with errmsg. */
static int check_table(const struct connector *c, const char *want,
                       char *errmsg)
{
	const struct strata_connector_ops *o = &c->ops;
	bool src = o->source_open != NULL || o->source_poll != NULL ||
	           o->source_position != NULL || o->source_close != NULL;
	bool src_all = o->source_open != NULL && o->source_poll != NULL &&
	               o->source_position != NULL && o->source_close != NULL;
	bool snk = o->sink_open != NULL || o->sink_write != NULL ||
	           o->sink_prepare != NULL || o->sink_close != NULL;
	bool snk_all = o->sink_open != NULL && o->sink_write != NULL &&
	               o->sink_prepare != NULL && o->sink_close != NULL;
	const char *why = NULL;
	if (o->name == NULL || (want != NULL && strcmp(o->name, want) != 0)) {
		why = "its table's name is not the one in its file name";
	} else if (!src && !snk) {
		why = "it offers neither a source nor a sink";
	} else if (src && !src_all) {
		why = "its source lacks open, poll, position or close";
	} else if (snk && !snk_all) {
		why = "its sink lacks open, write, prepare or close";
	}
	if (why != NULL) {
		errmsg_set(errmsg, "connector plugin %s: %s: fix the plugin",
		           c->path, why);
		return STRATA_EPLUGIN;
	}
	return 0;
}

int connector_load(const char *name, const char *plugin_dir,
                   struct connector **out, char *errmsg)
{
	bool is_path = strchr(name, '/') != NULL;
	if (!is_path && !name_ok(name)) {
		errmsg_set(errmsg,
		           "connector %.64s: not a plugin name (1..64 of "
		           "[a-z0-9_-]) nor a path to a .so",
		           name);
		return STRATA_EBADNAME;
	}
	struct connector *c = strata_malloc(sizeof(*c));
	if (c == NULL) {
		return STRATA_ENOMEM;
	}
	memset(c, 0, sizeof(*c));
	char dbuf[PATH_MAX];
	bool from_env = false;
	const char *dir =
	        plugin_dir != NULL && plugin_dir[0] != '\0'
	                ? plugin_dir
	                : plugin_dir_lookup(dbuf, sizeof(dbuf), &from_env);
	if (is_path) {
		snprintf(c->path, sizeof(c->path), "%.4000s", name);
	} else {
		snprintf(c->path, sizeof(c->path), "%.3900s/connector-%s.so",
		         dir, name);
	}
	const char *why = NULL;
	c->dl = plugin_dlopen(c->path, &why);
	if (c->dl == NULL) {
		errmsg_set(errmsg, "cannot load connector plugin %s (%s): %s",
		           c->path, why,
		           is_path ? "check the path"
		           : from_env
		                   ? "STRATA_PLUGIN_DIR names the wrong "
		                     "directory, or the plugin is not built"
		                   : "set plugin_dir (or STRATA_PLUGIN_DIR) to "
		                     "the directory holding it");
		strata_free(c);
		return STRATA_EPLUGIN;
	}
	strata_connector_entry_fn entry =
	        (strata_connector_entry_fn)dlsym(c->dl, STRATA_CONNECTOR_ENTRY);
	const struct strata_connector_ops *t = entry != NULL ? entry() : NULL;
	int rc = 0;
	if (t == NULL) {
		errmsg_set(errmsg,
		           "connector plugin %s: no table from %s(): not a "
		           "Strata connector plugin (export it with "
		           "STRATA_PLUGIN_EXPORT)",
		           c->path, STRATA_CONNECTOR_ENTRY);
		rc = STRATA_EPLUGIN;
	} else if (t->abi_version < STRATA_CONNECTOR_ABI_MIN ||
	           t->abi_version > STRATA_CONNECTOR_ABI_VERSION) {
		errmsg_set(errmsg,
		           "connector plugin %s: built for connector ABI %u; "
		           "this host loads %u..%u: rebuild it against this "
		           "release's include/strata/connector.h",
		           c->path, t->abi_version, STRATA_CONNECTOR_ABI_MIN,
		           STRATA_CONNECTOR_ABI_VERSION);
		rc = STRATA_EABI;
	} else {
		memcpy(&c->ops, t, ops_size_for_version(t->abi_version));
		rc = check_table(c, is_path ? NULL : name, errmsg);
	}
	if (rc != 0) {
		dlclose(c->dl);
		strata_free(c);
		return rc;
	}
	snprintf(c->component, sizeof(c->component), "connect.%.40s",
	         c->ops.name);
	c->host = (struct strata_host){
	        .abi_version = STRATA_TIER2_ABI_VERSION,
	        .log = host_log,
	        .malloc = strata_malloc,
	        .realloc = strata_realloc,
	        .free = strata_free,
	        .counter_add = host_counter_add,
	        .host_data = c,
	};
	LOG_INFO("connect",
	         "loaded connector %s from %s (source: %s, sink: %s)",
	         c->ops.name, c->path,
	         c->ops.source_open == NULL ? "no"
	         : (c->ops.source_flags & STRATA_CONNECTOR_SOURCE_REPLAYABLE)
	                 ? "replayable"
	                 : "not replayable",
	         c->ops.sink_open == NULL ? "no"
	         : (c->ops.sink_flags & STRATA_CONNECTOR_SINK_EXACTLY_ONCE)
	                 ? "exactly once"
	                 : "at least once");
	*out = c;
	return 0;
}

void connector_unload(struct connector *c)
{
	if (c == NULL) {
		return;
	}
	dlclose(c->dl);
	strata_free(c);
}

int connector_fail(const struct connector *c, const char *what, int rc,
                   const char *pmsg, char *errmsg)
{
	errmsg_set(errmsg, "%s %s: %s", what, c->ops.name,
	           pmsg != NULL && pmsg[0] != '\0' ? pmsg
	                                           : strata_strerror(rc));
	return rc;
}
