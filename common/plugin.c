/* Tier-2 plugin host (see plugin.h): dlopen, ABI checks, op wrappers. */
#include "common/plugin.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/errmsg.h"
#include "common/log.h"
#include "strata/error.h"

#ifndef STRATA_PLUGIN_INSTALL_DIR
#define STRATA_PLUGIN_INSTALL_DIR "/usr/lib/strata/plugins"
#endif

#define PLUGIN_NAME_MAX 64 /* plugin names: [A-Za-z0-9_-], like "local" */
#define SHOWN_NAME_MAX 80  /* chunk-name bytes quoted in messages */

struct tier2_plugin {
	atomic_int refs;             /* caller's + one per open instance */
	void *handle;                /* dlopen handle */
	char *path;                  /* the file loaded */
	char *plugin_dir;            /* dir used to resolve names; for
	                                plugins that open other plugins */
	uint32_t abi;                /* version the plugin declares */
	struct strata_tier2_ops ops; /* host copy; later fields NULL */
};

struct tier2 {
	struct tier2_plugin *plugin;          /* holds one reference */
	void *state;                          /* the plugin's instance */
	struct strata_host host;              /* services; host_data = this */
	char component[16 + PLUGIN_NAME_MAX]; /* log component "tier2.<name>" */
};

static _Atomic(tier2_counter_hook_fn) counter_hook;

/*
 * Bytes of struct strata_tier2_ops that ABI version v declares. When a
 * field is appended (and STRATA_TIER2_ABI_VERSION bumped), the older
 * versions' cases become offsetof(struct strata_tier2_ops, <new field>).
 */
static size_t ops_size_for_version(uint32_t v)
{
	switch (v) {
	case 1:
		return offsetof(struct strata_tier2_ops, check);
	case 2:
		return sizeof(struct strata_tier2_ops);
	default:
		return 0;
	}
}

const char *tier2_default_plugin_dir(void)
{
	return STRATA_PLUGIN_INSTALL_DIR;
}

/* The first of dir/rel[i] that is a directory, written into buf. */
static const char *first_dir(const char *dir, const char *const *rel, size_t n,
                             char *buf, size_t size)
{
	for (size_t i = 0; i < n; i++) {
		snprintf(buf, size, "%.4000s/%s", dir, rel[i]);
		struct stat st;
		if (stat(buf, &st) == 0 && S_ISDIR(st.st_mode)) {
			return buf;
		}
	}
	return NULL;
}

/* path with its last component cut off, in out; false without a '/'. */
static bool dir_of(const char *path, char *out, size_t size)
{
	const char *slash = strrchr(path, '/');
	if (slash == NULL || (size_t)(slash - path) >= size) {
		return false;
	}
	memcpy(out, path, (size_t)(slash - path));
	out[slash - path] = '\0';
	return true;
}

const char *plugin_dir_beside_exe(char *buf, size_t size)
{
	char exe[PATH_MAX];
	char dir[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0) {
		return NULL;
	}
	exe[n] = '\0';
	if (!dir_of(exe, dir, sizeof(dir))) {
		return NULL;
	}
	/* The build tree (bin/ beside plugins/), then an install tree
	 * wherever it was copied (bin/ beside lib/strata/plugins/). */
	static const char *const rel[] = {"../plugins",
	                                  "../lib/strata/plugins"};
	return first_dir(dir, rel, sizeof(rel) / sizeof(rel[0]), buf, size);
}

const char *plugin_dir_beside_lib(char *buf, size_t size)
{
	Dl_info info;
	char dir[PATH_MAX];
	if (dladdr((void *)plugin_dir_beside_lib, &info) == 0 ||
	    info.dli_fname == NULL ||
	    !dir_of(info.dli_fname, dir, sizeof(dir))) {
		return NULL;
	}
	static const char *const rel[] = {"strata/plugins"};
	return first_dir(dir, rel, 1, buf, size);
}

const char *plugin_dir_lookup(char *buf, size_t size, bool *from_env)
{
	const char *env = getenv("STRATA_PLUGIN_DIR");
	*from_env = env != NULL && env[0] != '\0';
	if (*from_env) {
		return env;
	}
	const char *d = plugin_dir_beside_exe(buf, size);
	if (d == NULL) {
		d = plugin_dir_beside_lib(buf, size);
	}
	return d != NULL ? d : tier2_default_plugin_dir();
}

void *plugin_dlopen(const char *path, const char **why)
{
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		const char *w = dlerror();
		size_t plen = strlen(path);
		if (access(path, F_OK) != 0) {
			w = "no such file"; /* dlerror()'s says it at length */
		} else if (w == NULL) {
			w = "unknown dlopen error";
		} else if (strncmp(w, path, plen) == 0 &&
		           strncmp(w + plen, ": ", 2) == 0) {
			w += plen + 2; /* dlerror() repeats the path */
		}
		*why = w;
	}
	return h;
}

void tier2_set_counter_hook(tier2_counter_hook_fn fn)
{
	atomic_store(&counter_hook, fn);
}

static bool chunk_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

static bool component_ok(const char *comp, size_t len)
{
	if (len == 0) {
		return false;
	}
	if (len == 1 && comp[0] == '.') {
		return false;
	}
	return !(len == 2 && comp[0] == '.' && comp[1] == '.');
}

/* Names: see plugin.h. A prefix follows the same rules except that its
 * last component may be empty or partial (any allowed characters). */
static bool name_check(const char *name, bool is_prefix)
{
	if (name == NULL) {
		return false;
	}
	size_t len = strnlen(name, STRATA_TIER2_NAME_MAX + 1);
	if (len > STRATA_TIER2_NAME_MAX || (len == 0 && !is_prefix)) {
		return false;
	}
	const char *comp = name;
	for (size_t i = 0; i < len; i++) {
		if (name[i] == '/') {
			if (!component_ok(comp, (size_t)(name + i - comp))) {
				return false;
			}
			comp = name + i + 1;
		} else if (!chunk_char_ok(name[i])) {
			return false;
		}
	}
	return is_prefix || component_ok(comp, (size_t)(name + len - comp));
}

bool tier2_chunk_name_valid(const char *name)
{
	return name_check(name, false);
}

/* A printable, bounded rendition of an untrusted name for messages. */
static void show_name(const char *name, char *out, size_t size)
{
	if (name == NULL) {
		snprintf(out, size, "(null)");
		return;
	}
	size_t o = 0;
	for (size_t i = 0; name[i] != '\0' && o + 4 < size; i++) {
		if (i == SHOWN_NAME_MAX) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		char c = name[i];
		out[o++] = (c >= 0x20 && c < 0x7f) ? c : '?';
	}
	out[o] = '\0';
}

/* ---- loading ---- */

static bool plugin_name_ok(const char *name)
{
	size_t len = strnlen(name, PLUGIN_NAME_MAX + 1);
	if (len == 0 || len > PLUGIN_NAME_MAX) {
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-')) {
			return false;
		}
	}
	return true;
}

/* The fix to suggest when a plugin file cannot be used. */
static void fix_hint(const char *plugin, const char *dir, bool from_env,
                     char *out, size_t size)
{
	if (strchr(plugin, '/') != NULL) {
		snprintf(out, size,
		         "check tier2.plugin names a Strata tier-2 "
		         "plugin file");
	} else {
		snprintf(out, size,
		         "check tier2.plugin; plugins are looked up in %s%s",
		         dir, from_env ? " (from STRATA_PLUGIN_DIR)" : "");
	}
}

/* Check the table a plugin's entry returned and copy what its version
 * declares into p->ops. */
static int adopt_table(struct tier2_plugin *p, const struct strata_tier2_ops *t,
                       char *errmsg)
{
	if (t == NULL) {
		snprintf(
		        errmsg, STRATA_ERRMSG_SIZE,
		        "load tier-2 plugin %s: %s() returned NULL: the plugin "
		        "is broken (fix the plugin)",
		        p->path, STRATA_TIER2_ENTRY);
		return STRATA_EPLUGIN;
	}
	uint32_t v = t->abi_version;
	if (v < STRATA_TIER2_ABI_MIN || v > STRATA_TIER2_ABI_VERSION) {
		errmsg_set(
		        errmsg,
		        "load tier-2 plugin %s: was built for tier-2 ABI %u; "
		        "this Strata loads %u..%u: rebuild it against this "
		        "release's include/strata/plugin.h",
		        p->path, v, STRATA_TIER2_ABI_MIN,
		        STRATA_TIER2_ABI_VERSION);
		return STRATA_EABI;
	}
	p->abi = v;
	memset(&p->ops, 0, sizeof(p->ops));
	memcpy(&p->ops, t, ops_size_for_version(v));
	if (p->ops.name == NULL || !plugin_name_ok(p->ops.name)) {
		errmsg_set(
		        errmsg,
		        "load tier-2 plugin %s: its table has no valid name "
		        "(set .name to 1..%d of [A-Za-z0-9_-] in the plugin)",
		        p->path, PLUGIN_NAME_MAX);
		return STRATA_EPLUGIN;
	}
	const char *missing = NULL;
	if (p->ops.open == NULL) {
		missing = "open";
	} else if (p->ops.close == NULL) {
		missing = "close";
	} else if (p->ops.create == NULL) {
		missing = "create";
	} else if (p->ops.write == NULL) {
		missing = "write";
	} else if (p->ops.read == NULL) {
		missing = "read";
	} else if (p->ops.stat == NULL) {
		missing = "stat";
	} else if (p->ops.list == NULL) {
		missing = "list";
	} else if (p->ops.truncate == NULL) {
		missing = "truncate";
	} else if (p->ops.remove == NULL) {
		missing = "delete";
	}
	if (missing != NULL) {
		errmsg_set(errmsg,
		           "load tier-2 plugin %s: required op %s is NULL: the "
		           "plugin is incomplete (only concat may be NULL; fix "
		           "the plugin)",
		           p->path, missing);
		return STRATA_EPLUGIN;
	}
	return 0;
}

int tier2_load(const char *plugin, const char *plugin_dir,
               struct tier2_plugin **out, char *errmsg)
{
	char hint[STRATA_ERRMSG_SIZE];
	char beside[PATH_MAX];
	const char *env = getenv("STRATA_PLUGIN_DIR");
	bool from_env = env != NULL && env[0] != '\0';
	const char *dir =
	        from_env ? env
	        : plugin_dir != NULL
	                ? plugin_dir
	                : plugin_dir_beside_exe(beside, sizeof(beside));
	if (dir == NULL) {
		dir = tier2_default_plugin_dir();
	}
	int rc;

	if (plugin == NULL || plugin[0] == '\0' ||
	    (strchr(plugin, '/') == NULL && !plugin_name_ok(plugin))) {
		char shown[SHOWN_NAME_MAX + 8];
		show_name(plugin, shown, sizeof(shown));
		errmsg_set(
		        errmsg,
		        "load tier-2 plugin '%s': invalid plugin name (set "
		        "tier2.plugin to a name such as local or s3, or to a "
		        "path containing '/')",
		        shown);
		return STRATA_EBADNAME;
	}
	struct tier2_plugin *p = strata_malloc(sizeof(*p));
	if (p == NULL) {
		goto err_nomem;
	}
	memset(p, 0, sizeof(*p));
	atomic_init(&p->refs, 1);
	p->plugin_dir = strata_strdup(dir);
	if (p->plugin_dir == NULL) {
		goto err_free_p;
	}
	if (strchr(plugin, '/') != NULL) {
		p->path = strata_strdup(plugin);
	} else {
		size_t n = strlen(dir) + strlen(plugin) + sizeof("/tier2-.so");
		p->path = strata_malloc(n);
		if (p->path != NULL) {
			snprintf(p->path, n, "%s/tier2-%s.so", dir, plugin);
		}
	}
	if (p->path == NULL) {
		goto err_free_dir;
	}

	const char *why = NULL;
	p->handle = plugin_dlopen(p->path, &why);
	if (p->handle == NULL) {
		fix_hint(plugin, dir, from_env, hint, sizeof(hint));
		errmsg_set(errmsg, "load tier-2 plugin %s: %s (%s)", p->path,
		           why, hint);
		rc = STRATA_EPLUGIN;
		goto err_free_path;
	}
	dlerror();
	void *sym = dlsym(p->handle, STRATA_TIER2_ENTRY);
	if (sym == NULL) {
		errmsg_set(errmsg,
		           "load tier-2 plugin %s: has no symbol %s: not a "
		           "Strata tier-2 plugin (export it with "
		           "STRATA_PLUGIN_EXPORT)",
		           p->path, STRATA_TIER2_ENTRY);
		rc = STRATA_EPLUGIN;
		goto err_dlclose;
	}
	strata_tier2_entry_fn entry = (strata_tier2_entry_fn)sym;
	rc = adopt_table(p, entry(), errmsg);
	if (rc != 0) {
		goto err_dlclose;
	}
	LOG_INFO("tier2", "loaded tier-2 plugin %s from %s (ABI %u)",
	         p->ops.name, p->path, p->abi);
	*out = p;
	return 0;

err_dlclose:
	dlclose(p->handle);
err_free_path:
	strata_free(p->path);
	strata_free(p->plugin_dir);
	strata_free(p);
	return rc;
err_free_dir:
	strata_free(p->plugin_dir);
err_free_p:
	strata_free(p);
err_nomem:
	errmsg_set(errmsg, "load tier-2 plugin %s: out of memory", plugin);
	return STRATA_ENOMEM;
}

static void plugin_put(struct tier2_plugin *p)
{
	if (atomic_fetch_sub(&p->refs, 1) != 1) {
		return;
	}
	LOG_DEBUG("tier2", "unloading tier-2 plugin %s", p->path);
	dlclose(p->handle);
	strata_free(p->path);
	strata_free(p->plugin_dir);
	strata_free(p);
}

void tier2_unload(struct tier2_plugin *p)
{
	if (p != NULL) {
		plugin_put(p);
	}
}

const char *tier2_plugin_name(const struct tier2_plugin *p)
{
	return p->ops.name;
}

const char *tier2_plugin_path(const struct tier2_plugin *p)
{
	return p->path;
}

uint32_t tier2_plugin_abi(const struct tier2_plugin *p)
{
	return p->abi;
}

const struct strata_tier2_ops *tier2_plugin_ops(const struct tier2_plugin *p)
{
	return &p->ops;
}

/* ---- host services ---- */

void plugin_host_vlog(const char *component, int level, const char *fmt,
                      va_list ap)
{
	if (level < STRATA_LOG_DEBUG) {
		level = STRATA_LOG_DEBUG;
	} else if (level > STRATA_LOG_ERROR) {
		level = STRATA_LOG_ERROR;
	}
	if (log_enabled(level)) {
		log_vwrite(level, component, fmt, ap);
	}
}

__attribute__((format(printf, 3, 4))) static void
host_log(const struct strata_host *host, int level, const char *fmt, ...)
{
	const struct tier2 *t = host->host_data;
	va_list ap;
	va_start(ap, fmt);
	plugin_host_vlog(t->component, level, fmt, ap);
	va_end(ap);
}

static void host_counter_add(const struct strata_host *host, const char *name,
                             uint64_t delta)
{
	const struct tier2 *t = host->host_data;
	tier2_counter_hook_fn fn = atomic_load(&counter_hook);
	if (fn != NULL && name != NULL) {
		fn(t->plugin->ops.name, name, delta);
	}
}

static int host_open_tier2(const struct strata_host *host, const char *plugin,
                           const char *config,
                           const struct strata_tier2_ops **ops, void **state,
                           char *errmsg);

/* ---- instances ---- */

/* A new instance record of p with its host services (state not yet
 * set); NULL on out of memory. */
static struct tier2 *instance_new(struct tier2_plugin *p)
{
	struct tier2 *t = strata_malloc(sizeof(*t));
	if (t == NULL) {
		return NULL;
	}
	memset(t, 0, sizeof(*t));
	t->plugin = p;
	snprintf(t->component, sizeof(t->component), "tier2.%s", p->ops.name);
	t->host = (struct strata_host){
	        .abi_version = STRATA_TIER2_ABI_VERSION,
	        .log = host_log,
	        .malloc = strata_malloc,
	        .realloc = strata_realloc,
	        .free = strata_free,
	        .counter_add = host_counter_add,
	        .host_data = t,
	        .open_tier2 = host_open_tier2,
	};
	return t;
}

/* errmsg for the plugin's failed op (open or check) that returned rc with
 * message pmsg; returns the code to report. */
static int plugin_failed(const struct tier2_plugin *p, const char *op, int rc,
                         char *pmsg, char *errmsg)
{
	pmsg[STRATA_ERRMSG_SIZE - 1] = '\0';
	if (rc < 0 || strcmp(strata_error_name(rc), "STRATA_EUNKNOWN") == 0) {
		errmsg_set(errmsg,
		           "%s: %s returned invalid error code %d (a plugin "
		           "bug: report it to its author)",
		           p->ops.name, op, rc);
		return STRATA_EINTERNAL;
	}
	if (pmsg[0] == '\0') {
		errmsg_set(errmsg, "%s: %s: %s (the plugin gave no details)",
		           p->ops.name, op, strata_strerror(rc));
	} else {
		errmsg_set(errmsg, "%s: %s", p->ops.name, pmsg);
	}
	return rc;
}

int tier2_open(struct tier2_plugin *p, const char *config, struct tier2 **out,
               char *errmsg)
{
	char pmsg[STRATA_ERRMSG_SIZE] = "";
	struct tier2 *t = instance_new(p);
	if (t == NULL) {
		errmsg_set(errmsg, "open tier-2 plugin %s: out of memory",
		           p->ops.name);
		return STRATA_ENOMEM;
	}
	int rc = p->ops.open(&t->host, config != NULL ? config : "", &t->state,
	                     pmsg);
	if (rc != 0) {
		rc = plugin_failed(p, "open", rc, pmsg, errmsg);
		strata_free(t);
		return rc;
	}
	atomic_fetch_add(&p->refs, 1);
	*out = t;
	return 0;
}

int tier2_check(struct tier2_plugin *p, const char *config, char *errmsg)
{
	if (p->ops.check == NULL) {
		errmsg_set(errmsg,
		           "%s: the plugin does not offer a check of its "
		           "options (tier-2 ABI %u); they are checked when the "
		           "server opens it",
		           p->ops.name, p->abi);
		return STRATA_ENOTSUP;
	}
	char pmsg[STRATA_ERRMSG_SIZE] = "";
	struct tier2 *t = instance_new(p);
	if (t == NULL) {
		errmsg_set(errmsg, "check tier-2 plugin %s: out of memory",
		           p->ops.name);
		return STRATA_ENOMEM;
	}
	int rc = p->ops.check(&t->host, config != NULL ? config : "", pmsg);
	if (rc != 0) {
		rc = plugin_failed(p, "check", rc, pmsg, errmsg);
	}
	strata_free(t);
	return rc;
}

int tier2_load_open(const char *plugin, const char *plugin_dir,
                    const char *config, struct tier2 **out, char *errmsg)
{
	struct tier2_plugin *p;
	int rc = tier2_load(plugin, plugin_dir, &p, errmsg);
	if (rc != 0) {
		return rc;
	}
	rc = tier2_open(p, config, out, errmsg);
	tier2_unload(p);
	return rc;
}

void tier2_close(struct tier2 *t)
{
	if (t == NULL) {
		return;
	}
	struct tier2_plugin *p = t->plugin;
	p->ops.close(t->state);
	strata_free(t);
	plugin_put(p);
}

const char *tier2_name(const struct tier2 *t)
{
	return t->plugin->ops.name;
}

bool tier2_supports_concat(const struct tier2 *t)
{
	return t->plugin->ops.concat != NULL;
}

/* errmsg for a bad chunk name or prefix passed to op. */
static int bad_name(const struct tier2 *t, const char *op, const char *what,
                    const char *name, char *errmsg)
{
	char shown[SHOWN_NAME_MAX + 8];
	show_name(name, shown, sizeof(shown));
	errmsg_set(errmsg,
	           "%s: %s %s '%s': invalid %s (a relative path of "
	           "[A-Za-z0-9._/-], 1..%d bytes, without empty, '.' or '..' "
	           "components)",
	           tier2_name(t), op, what, shown, what, STRATA_TIER2_NAME_MAX);
	return STRATA_EBADNAME;
}

static int bad_arg(const struct tier2 *t, const char *op, const char *name,
                   const char *why, char *errmsg)
{
	char shown[SHOWN_NAME_MAX + 8];
	show_name(name, shown, sizeof(shown));
	errmsg_set(errmsg, "%s: %s chunk %s: %s", tier2_name(t), op, shown,
	           why);
	return STRATA_EINVAL;
}

/* Turn a plugin op's result into ours: check the code, terminate and
 * prefix the message. */
static int finish(const struct tier2 *t, int rc, const char *op,
                  const char *name, char *pmsg, char *errmsg)
{
	if (rc == 0) {
		return 0;
	}
	char shown[SHOWN_NAME_MAX + 8];
	show_name(name, shown, sizeof(shown));
	pmsg[STRATA_ERRMSG_SIZE - 1] = '\0';
	if (rc < 0 || strcmp(strata_error_name(rc), "STRATA_EUNKNOWN") == 0) {
		errmsg_set(errmsg,
		           "%s: %s %s: invalid error code %d (a plugin bug: "
		           "report it to its author)",
		           tier2_name(t), op, shown, rc);
		return STRATA_EINTERNAL;
	}
	if (pmsg[0] == '\0') {
		errmsg_set(errmsg, "%s: %s %s: %s (the plugin gave no details)",
		           tier2_name(t), op, shown, strata_strerror(rc));
	} else {
		errmsg_set(errmsg, "%s: %s", tier2_name(t), pmsg);
	}
	return rc;
}

int tier2_create(struct tier2 *t, const char *name, char *errmsg)
{
	char pmsg[STRATA_ERRMSG_SIZE] = "";
	if (!tier2_chunk_name_valid(name)) {
		return bad_name(t, "create", "chunk name", name, errmsg);
	}
	int rc = t->plugin->ops.create(t->state, name, pmsg);
	return finish(t, rc, "create", name, pmsg, errmsg);
}

int tier2_write(struct tier2 *t, const char *name, uint64_t offset,
                const void *buf, size_t len, char *errmsg)
{
	char pmsg[STRATA_ERRMSG_SIZE] = "";
	if (!tier2_chunk_name_valid(name)) {
		return bad_name(t, "write", "chunk name", name, errmsg);
	}
	if (buf == NULL && len != 0) {
		return bad_arg(t, "write", name, "NULL buffer", errmsg);
	}
	int rc = t->plugin->ops.write(t->state, name, offset, buf, len, pmsg);
	return finish(t, rc, "write", name, pmsg, errmsg);
}

int tier2_read(struct tier2 *t, const char *name, uint64_t offset, void *buf,
               size_t len, size_t *nread, char *errmsg)
{
	char pmsg[STRATA_ERRMSG_SIZE] = "";
	if (!tier2_chunk_name_valid(name)) {
		return bad_name(t, "read", "chunk name", name, errmsg);
	}
	if ((buf == NULL && len != 0) || nread == NULL) {
		return bad_arg(t, "read", name, "NULL buffer or count", errmsg);
	}
	*nread = 0;
	size_t got = 0;
	int rc = t->plugin->ops.read(t->state, name, offset, buf, len, &got,
	                             pmsg);
	if (rc == 0 && got > len) {
		errmsg_set(errmsg,
		           "%s: read chunk %s: plugin reported %zu bytes read "
		           "into a %zu-byte buffer (a plugin bug: report it to "
		           "its author)",
		           tier2_name(t), name, got, len);
		return STRATA_EINTERNAL;
	}
	if (rc == 0) {
		*nread = got;
	}
	return finish(t, rc, "read", name, pmsg, errmsg);
}

int tier2_stat(struct tier2 *t, const char *name,
               struct strata_tier2_chunk_info *info, char *errmsg)
{
	char pmsg[STRATA_ERRMSG_SIZE] = "";
	if (!tier2_chunk_name_valid(name)) {
		return bad_name(t, "stat", "chunk name", name, errmsg);
	}
	if (info == NULL) {
		return bad_arg(t, "stat", name, "NULL info", errmsg);
	}
	memset(info, 0, sizeof(*info));
	int rc = t->plugin->ops.stat(t->state, name, info, pmsg);
	return finish(t, rc, "stat", name, pmsg, errmsg);
}

/* Sits between a plugin's list() and the caller's callback to remember
 * what the callback returned: that value is passed through unchanged. */
struct list_tramp {
	strata_tier2_list_cb cb; /* the caller's */
	void *arg;               /* the caller's */
	int stop;                /* non-zero the callback returned */
};

static int list_tramp_cb(void *arg, const char *name,
                         const struct strata_tier2_chunk_info *info)
{
	struct list_tramp *lt = arg;
	lt->stop = lt->cb(lt->arg, name, info);
	return lt->stop;
}

int tier2_list(struct tier2 *t, const char *prefix, strata_tier2_list_cb cb,
               void *arg, char *errmsg)
{
	char pmsg[STRATA_ERRMSG_SIZE] = "";
	if (prefix == NULL) {
		prefix = "";
	}
	if (!name_check(prefix, true)) {
		return bad_name(t, "list", "prefix", prefix, errmsg);
	}
	if (cb == NULL) {
		return bad_arg(t, "list", prefix, "NULL callback", errmsg);
	}
	struct list_tramp lt = {.cb = cb, .arg = arg, .stop = 0};
	int rc =
	        t->plugin->ops.list(t->state, prefix, list_tramp_cb, &lt, pmsg);
	if (rc != 0 && rc == lt.stop) {
		return rc; /* the callback's own value; errmsg untouched */
	}
	return finish(t, rc, "list", prefix, pmsg, errmsg);
}

int tier2_truncate(struct tier2 *t, const char *name, uint64_t length,
                   char *errmsg)
{
	char pmsg[STRATA_ERRMSG_SIZE] = "";
	if (!tier2_chunk_name_valid(name)) {
		return bad_name(t, "truncate", "chunk name", name, errmsg);
	}
	int rc = t->plugin->ops.truncate(t->state, name, length, pmsg);
	return finish(t, rc, "truncate", name, pmsg, errmsg);
}

int tier2_concat(struct tier2 *t, const char *target,
                 const char *const *sources, size_t n, char *errmsg)
{
	char pmsg[STRATA_ERRMSG_SIZE] = "";
	if (!tier2_chunk_name_valid(target)) {
		return bad_name(t, "concat", "chunk name", target, errmsg);
	}
	if (sources == NULL || n == 0) {
		return bad_arg(t, "concat", target, "no source chunks", errmsg);
	}
	for (size_t i = 0; i < n; i++) {
		if (!tier2_chunk_name_valid(sources[i])) {
			return bad_name(t, "concat", "chunk name", sources[i],
			                errmsg);
		}
		if (strcmp(sources[i], target) == 0) {
			return bad_arg(t, "concat", target,
			               "the target is also a source", errmsg);
		}
		for (size_t j = 0; j < i; j++) {
			if (strcmp(sources[i], sources[j]) == 0) {
				return bad_arg(t, "concat", sources[i],
				               "named twice as a source",
				               errmsg);
			}
		}
	}
	if (t->plugin->ops.concat == NULL) {
		char shown[SHOWN_NAME_MAX + 8];
		show_name(target, shown, sizeof(shown));
		snprintf(
		        errmsg, STRATA_ERRMSG_SIZE,
		        "%s: concat into chunk %s: not supported by this "
		        "plugin (copy the sources with read and write instead)",
		        tier2_name(t), shown);
		return STRATA_ENOTSUP;
	}
	int rc = t->plugin->ops.concat(t->state, target, sources, n, pmsg);
	return finish(t, rc, "concat", target, pmsg, errmsg);
}

int tier2_delete(struct tier2 *t, const char *name, char *errmsg)
{
	char pmsg[STRATA_ERRMSG_SIZE] = "";
	if (!tier2_chunk_name_valid(name)) {
		return bad_name(t, "delete", "chunk name", name, errmsg);
	}
	int rc = t->plugin->ops.remove(t->state, name, pmsg);
	return finish(t, rc, "delete", name, pmsg, errmsg);
}

/* ---- child instances for wrapper plugins (host->open_tier2) ---- */

static void child_close(void *s)
{
	tier2_close(s);
}

static int child_create(void *s, const char *name, char *errmsg)
{
	return tier2_create(s, name, errmsg);
}

static int child_write(void *s, const char *name, uint64_t offset,
                       const void *buf, size_t len, char *errmsg)
{
	return tier2_write(s, name, offset, buf, len, errmsg);
}

static int child_read(void *s, const char *name, uint64_t offset, void *buf,
                      size_t len, size_t *nread, char *errmsg)
{
	return tier2_read(s, name, offset, buf, len, nread, errmsg);
}

static int child_stat(void *s, const char *name,
                      struct strata_tier2_chunk_info *info, char *errmsg)
{
	return tier2_stat(s, name, info, errmsg);
}

static int child_list(void *s, const char *prefix, strata_tier2_list_cb cb,
                      void *arg, char *errmsg)
{
	return tier2_list(s, prefix, cb, arg, errmsg);
}

static int child_truncate(void *s, const char *name, uint64_t length,
                          char *errmsg)
{
	return tier2_truncate(s, name, length, errmsg);
}

static int child_concat(void *s, const char *target, const char *const *sources,
                        size_t n, char *errmsg)
{
	return tier2_concat(s, target, sources, n, errmsg);
}

static int child_delete(void *s, const char *name, char *errmsg)
{
	return tier2_delete(s, name, errmsg);
}

#define CHILD_OPS(concat_fn)                                                  \
	{                                                                     \
		.abi_version = STRATA_TIER2_ABI_VERSION, .name = "child",     \
		.open = NULL, .close = child_close, .create = child_create,   \
		.write = child_write, .read = child_read, .stat = child_stat, \
		.list = child_list, .truncate = child_truncate,               \
		.concat = concat_fn, .remove = child_delete,                  \
	}

static const struct strata_tier2_ops child_ops = CHILD_OPS(child_concat);
static const struct strata_tier2_ops child_ops_noconcat = CHILD_OPS(NULL);

static int host_open_tier2(const struct strata_host *host, const char *plugin,
                           const char *config,
                           const struct strata_tier2_ops **ops, void **state,
                           char *errmsg)
{
	const struct tier2 *parent = host->host_data;
	struct tier2 *child;
	int rc = tier2_load_open(plugin, parent->plugin->plugin_dir, config,
	                         &child, errmsg);
	if (rc != 0) {
		return rc;
	}
	*ops = tier2_supports_concat(child) ? &child_ops : &child_ops_noconcat;
	*state = child;
	return 0;
}
