/* Tier-2 plugin host: loads plugins, checks their ABI, wraps their ops. */
#ifndef COMMON_PLUGIN_H
#define COMMON_PLUGIN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata/plugin.h"

/*
 * A loaded plugin (one dlopen handle) is reference counted: the caller of
 * tier2_load() holds one reference and every open instance holds one, so
 * the shared object is dlclose()d only after tier2_unload() AND the last
 * tier2_close(). The ops table is copied (only the fields its version
 * declares; later ones read as NULL) and the plugin's own table is never
 * written.
 *
 * Instances are used from host worker threads: every tier2_* op below is
 * synchronous and thread-safe as far as the plugin is (ops on different
 * chunks may run concurrently; the caller never runs two ops on the same
 * chunk at once). Each op checks the chunk names (rules in plugin.h,
 * STRATA_EBADNAME before the plugin is called), turns a NULL optional op
 * into STRATA_ENOTSUP, and on error leaves in errmsg (STRATA_ERRMSG_SIZE
 * bytes, always NUL-terminated) "<plugin name>: <plugin's message>".
 */

struct tier2_plugin; /* a loaded shared object */
struct tier2;        /* an open instance */

/* Default plugin directory (the install dir chosen at build time). */
const char *tier2_default_plugin_dir(void);

/* The directory codec and connector plugins are looked up in:
 * $STRATA_PLUGIN_DIR when set and non-empty (*from_env = true), else
 * plugin_dir_beside_exe(), else plugin_dir_beside_lib() (written into
 * buf), else the install dir. */
const char *plugin_dir_lookup(char *buf, size_t size, bool *from_env);

/* A plugin's host->log line: level clamped to DEBUG..ERROR, written under
 * component when enabled. What every host's log service does. */
void plugin_host_vlog(const char *component, int level, const char *fmt,
                      va_list ap) __attribute__((format(printf, 3, 0)));

/* dlopen(path, RTLD_NOW | RTLD_LOCAL); NULL with *why set to dlerror()'s
 * reason (without the path it repeats) on failure. */
void *plugin_dlopen(const char *path, const char **why);

/* <directory of the running program>/../plugins when that directory
 * exists (the build tree: binaries run uninstalled find their plugins),
 * else <that directory>/../lib/strata/plugins when it exists (an install
 * prefix, also one moved or chosen with `cmake --install --prefix`),
 * written into buf; else NULL. */
const char *plugin_dir_beside_exe(char *buf, size_t size);

/* <directory of the file holding this code>/strata/plugins when that
 * directory exists, written into buf, else NULL: a program linking an
 * installed PREFIX/lib/libstrata.so finds PREFIX/lib/strata/plugins
 * wherever the program itself lives. */
const char *plugin_dir_beside_lib(char *buf, size_t size);

/*
 * Load a tier-2 plugin. plugin (borrowed) is a name such as "local", found
 * as <dir>/tier2-<name>.so, or a path (anything containing '/'). dir is
 * $STRATA_PLUGIN_DIR when set and non-empty, else plugin_dir (borrowed;
 * NULL = plugin_dir_beside_exe(), else tier2_default_plugin_dir()); it is
 * remembered for plugins that wrap others. On success *out holds one reference.
 * Errors, with errmsg naming the file, the reason and the fix: STRATA_EBADNAME
 * (bad name), STRATA_EPLUGIN (cannot dlopen, no entry symbol, no table, missing
 * required op), STRATA_EABI (version outside [STRATA_TIER2_ABI_MIN,
 * STRATA_TIER2_ABI_VERSION]), STRATA_ENOMEM.
 */
int tier2_load(const char *plugin, const char *plugin_dir,
               struct tier2_plugin **out, char *errmsg);

/* Drop the caller's reference; the object is unloaded once no instance
 * uses it either. NULL is a no-op. */
void tier2_unload(struct tier2_plugin *p);

/* The plugin's name from its table ("mem"); valid while p is loaded. */
const char *tier2_plugin_name(const struct tier2_plugin *p);

/* The path the plugin was loaded from; valid while p is loaded. */
const char *tier2_plugin_path(const struct tier2_plugin *p);

/* The ABI version the plugin declares. */
uint32_t tier2_plugin_abi(const struct tier2_plugin *p);

/* The host's copy of the plugin's table (fields beyond its version NULL);
 * valid while p is loaded. */
const struct strata_tier2_ops *tier2_plugin_ops(const struct tier2_plugin *p);

/*
 * Open an instance of a loaded plugin with config ("key=value" lines,
 * borrowed; NULL = empty). The instance takes its own reference on p. On
 * success *out is the instance (release with tier2_close()). Errors: the
 * plugin's open() error (usually STRATA_ECONFIG), STRATA_ENOMEM.
 */
int tier2_open(struct tier2_plugin *p, const char *config, struct tier2 **out,
               char *errmsg);

/*
 * Check config ("key=value" lines, borrowed; NULL = empty) as the plugin's
 * open() would, without side effects (its optional check op, tier-2 ABI
 * 2). 0, the plugin's error (usually STRATA_ECONFIG; errmsg prefixed with
 * its name), STRATA_ENOTSUP when the plugin offers no check (errmsg says
 * so), STRATA_ENOMEM.
 */
int tier2_check(struct tier2_plugin *p, const char *config, char *errmsg);

/* tier2_load() + tier2_open() + tier2_unload(): the instance holds the only
 * reference. Errors as both. */
int tier2_load_open(const char *plugin, const char *plugin_dir,
                    const char *config, struct tier2 **out, char *errmsg);

/* Close an instance (no op may be in flight) and drop its reference on the
 * plugin. NULL is a no-op. */
void tier2_close(struct tier2 *t);

/* The plugin's name; valid until tier2_close(). */
const char *tier2_name(const struct tier2 *t);

/* True when the plugin implements concat. */
bool tier2_supports_concat(const struct tier2 *t);

/* True when name is a valid chunk name (rules in strata/plugin.h). */
bool tier2_chunk_name_valid(const char *name);

/* Ops: see struct strata_tier2_ops in strata/plugin.h for semantics. Names,
 * buffers and sources are borrowed for the call. */
int tier2_create(struct tier2 *t, const char *name, char *errmsg);
int tier2_write(struct tier2 *t, const char *name, uint64_t offset,
                const void *buf, size_t len, char *errmsg);
int tier2_read(struct tier2 *t, const char *name, uint64_t offset, void *buf,
               size_t len, size_t *nread, char *errmsg);
int tier2_stat(struct tier2 *t, const char *name,
               struct strata_tier2_chunk_info *info, char *errmsg);
/* prefix "" lists every chunk; it may end in '/' or in part of a name.
 * A non-zero value returned by cb stops the listing and is returned as is
 * (errmsg untouched). */
int tier2_list(struct tier2 *t, const char *prefix, strata_tier2_list_cb cb,
               void *arg, char *errmsg);
int tier2_truncate(struct tier2 *t, const char *name, uint64_t length,
                   char *errmsg);
/* STRATA_ENOTSUP when the plugin has no concat; STRATA_EINVAL when n is 0
 * or target is among the sources. */
int tier2_concat(struct tier2 *t, const char *target,
                 const char *const *sources, size_t n, char *errmsg);
int tier2_delete(struct tier2 *t, const char *name, char *errmsg);

/* Receives every host->counter_add() of every plugin: plugin is the
 * plugin's name, name the counter ([a-z0-9_]); both borrowed for the call.
 * Called from worker threads; must be thread-safe and never block long. */
typedef void (*tier2_counter_hook_fn)(const char *plugin, const char *name,
                                      uint64_t delta);

/* Install the process-wide counter hook (NULL = drop counters). Call it
 * once at start-up, typically to feed the metrics registry. */
void tier2_set_counter_hook(tier2_counter_hook_fn fn);

#endif /* COMMON_PLUGIN_H */
