/* Tier-2 "local" plugin: chunks as checksummed record files under a dir. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugins/tier2/local/local.h"
#include "strata/plugin.h"
#include "strata/plugin_config.h"

/*
 * Config:
 *   root=<dir>         required; created (with parents) when missing
 *   fsync=true|false   default true; false skips every fsync/fdatasync
 *                      (tests, throwaway data: no crash guarantee at all)
 *   drop_cache=true|false  default true: after a synced write, drop its
 *                      pages from the OS page cache (posix_fadvise
 *                      DONTNEED); tier-2 data is read back rarely and the
 *                      store caches what it reads
 *   open_chunks=<n>    chunks kept open with their index, 1..4096, def. 64
 *
 * Every chunk is a file root/<name> ('/' in names makes subdirectories)
 * holding records (local_format.h). A chunk's in-memory state (open fd,
 * logical length, a sparse offset -> file position index) is built by one
 * scan of its record headers on first use and kept in a bounded LRU.
 *
 * happy path: get (cache hit, or open + scan) -> op -> put.
 * failure modes:
 *  - torn tail (a crash during the last write, or garbage at the end):
 *    stat/read/write return STRATA_ETORN naming the byte position and the
 *    last good length; truncate(name, <= that length) repairs the file.
 *  - damage followed by records of a LATER write: STRATA_ECORRUPT; the
 *    same truncate drops everything from the damage on (data loss: the
 *    operator's call).
 *  - a failed write or concat is cut back with ftruncate; if even that
 *    fails the cached state is dropped and the next scan reports the
 *    leftovers as a torn tail.
 * Bytes of a record are returned only after its CRC32C checks out.
 * concat copies the sources' records, fdatasyncs the target, renames the
 * sources to hidden ".strata-d.<name>" files (undone on failure) and
 * deletes those. docs/tier2.md ("local") has the full crash analysis.
 *
 * Concurrency: the host never runs two ops on one chunk at once, so a
 * chunk's state is used without a lock while it is referenced; one mutex
 * guards the LRU and another serialises directory creation/removal.
 *
 * Files: this one (ops table, open/close, messages), local_dir.c,
 * local_chunk.c, local_io.c; local.h says which holds what.
 */

#define OPEN_CHUNKS_DEFAULT 64u
#define OPEN_CHUNKS_MAX 4096u

/* ---- errors, log and counters ---- */

void local_errf(char *errmsg, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errmsg, STRATA_ERRMSG_SIZE, fmt, ap);
	va_end(ap);
}

static int map_errno(int e)
{
	switch (e) {
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
		return STRATA_ENOSPC;
	case EACCES:
	case EPERM:
	case EROFS:
		return STRATA_EPERM;
	case ENOENT:
	case ENOTDIR:
		return STRATA_ENOENT;
	case EEXIST:
		return STRATA_EEXIST;
	case ENOMEM:
		return STRATA_ENOMEM;
	default:
		return STRATA_EIO;
	}
}

static const char *errno_name(int e)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 32)
	const char *n = strerrorname_np(e);
	return n != NULL ? n : "errno";
#else
	(void)e;
	return "errno";
#endif
}

/* Fill errmsg for a failed system call and return the mapped code:
 * "<op> chunk <name>: <action> <root>/<name>: <strerror> (<ENAME>)". */
int local_sys_fail(const struct local *l, char *errmsg, int e, const char *op,
                   const char *name, const char *action)
{
	char buf[128];
	const char *s = strerror_r(e, buf, sizeof(buf));
	int code = map_errno(e);
	const char *hint = "";
	if (code == STRATA_ENOSPC) {
		hint = "; free space on the tier-2 volume";
	} else if (code == STRATA_EPERM) {
		hint = "; fix the permissions of the tier-2 root";
	}
	local_errf(errmsg, "%s chunk %s: %s %s/%s: %s (%s)%s", op, name, action,
	           l->root, name, s, errno_name(e), hint);
	return code;
}

int local_nomem(char *errmsg, const char *op, const char *name)
{
	local_errf(errmsg, "%s chunk %s: out of memory", op, name);
	return STRATA_ENOMEM;
}

void local_log(const struct local *l, int level, const char *fmt, ...)
{
	if (l->host->log == NULL) {
		return;
	}
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	l->host->log(l->host, level, "%s", line);
}

void local_count(const struct local *l, const char *name, uint64_t delta)
{
	if (l->host->counter_add != NULL && delta > 0) {
		l->host->counter_add(l->host, name, delta);
	}
}

/* The message and code for a chunk found damaged. The last good length
 * comes early so that it survives the host's prefix on long names. */
int local_damaged(const struct chunk *c, char *errmsg, const char *op)
{
	if (c->state == CHUNK_TORN) {
		local_errf(errmsg,
		           "%s chunk %s: torn write at byte position %llu, "
		           "last good "
		           "length %llu (%s); repair with truncate to at most "
		           "%llu",
		           op, c->name, (unsigned long long)c->end_pos,
		           (unsigned long long)c->length, c->why,
		           (unsigned long long)c->length);
		return STRATA_ETORN;
	}
	local_errf(
	        errmsg,
	        "%s chunk %s: corrupt record at byte position %llu, last good "
	        "length %llu (%s), valid data after it; restore the chunk, or "
	        "truncate to %llu to drop all data from there",
	        op, c->name, (unsigned long long)c->end_pos,
	        (unsigned long long)c->length, c->why,
	        (unsigned long long)c->length);
	return STRATA_ECORRUPT;
}

/* ---- ops ---- */

/* What the config says. */
struct local_conf {
	char root[PATH_MAX];
	bool fsync;
	bool drop_cache;
	uint64_t open_max;
};

/* The item's value as a boolean into *v; false (errmsg set) unless
 * "true" or "false". */
static bool config_bool(const struct strata_config_item *it, bool *v,
                        char *errmsg)
{
	char s[8];
	if (strata_config_value_copy(it, s, sizeof(s)) == 0 &&
	    (strcmp(s, "true") == 0 || strcmp(s, "false") == 0)) {
		*v = s[0] == 't';
		return true;
	}
	local_errf(errmsg, "config %.*s: %.*s must be true or false",
	           it->line_len, it->line, (int)it->key_len, it->key);
	return false;
}

/* Parse config into *c (no side effect). 0 or STRATA_ECONFIG. */
static int parse_config(const char *config, struct local_conf *c, char *errmsg)
{
	char *root = c->root;
	bool do_fsync = true, drop_cache = true;
	uint64_t open_max = OPEN_CHUNKS_DEFAULT;
	root[0] = '\0';
	const char *cur = config;
	struct strata_config_item it;
	while (strata_config_next(&cur, &it)) {
		if (strata_config_key_is(&it, "root")) {
			if (strata_config_value_copy(&it, root,
			                             sizeof(c->root)) != 0 ||
			    root[0] == '\0') {
				local_errf(
				        errmsg,
				        "config %.*s: root must be a directory "
				        "path of 1..%d bytes",
				        it.line_len, it.line, PATH_MAX - 1);
				return STRATA_ECONFIG;
			}
		} else if (strata_config_key_is(&it, "fsync")) {
			if (!config_bool(&it, &do_fsync, errmsg)) {
				return STRATA_ECONFIG;
			}
		} else if (strata_config_key_is(&it, "drop_cache")) {
			if (!config_bool(&it, &drop_cache, errmsg)) {
				return STRATA_ECONFIG;
			}
		} else if (strata_config_key_is(&it, "open_chunks")) {
			if (strata_config_value_u64(&it, &open_max) != 0 ||
			    open_max < 1 || open_max > OPEN_CHUNKS_MAX) {
				local_errf(errmsg,
				           "config %.*s: open_chunks must be a "
				           "count in 1..%u",
				           it.line_len, it.line,
				           OPEN_CHUNKS_MAX);
				return STRATA_ECONFIG;
			}
		} else {
			static const char allowed[] =
			        "root, fsync, drop_cache, open_chunks";
			char msg[STRATA_ERRMSG_SIZE];
			local_errf(errmsg, "config: %s",
			           strata_config_unknown_key(&it, allowed, msg,
			                                     sizeof(msg)));
			return STRATA_ECONFIG;
		}
	}
	if (root[0] == '\0') {
		local_errf(errmsg, "config: missing required key root (set "
		                   "root=<directory for chunk files>)");
		return STRATA_ECONFIG;
	}
	c->fsync = do_fsync;
	c->drop_cache = drop_cache;
	c->open_max = open_max;
	return 0;
}

static int local_check(const struct strata_host *host, const char *config,
                       char *errmsg)
{
	(void)host;
	struct local_conf c;
	int rc = parse_config(config, &c, errmsg);
	if (rc != 0) {
		return rc;
	}
	/* Without creating anything: the root, or the nearest part of its
	 * path that exists, must be a directory (open creates the rest). */
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s", c.root);
	for (;;) {
		struct stat sb;
		if (stat(path, &sb) == 0) {
			if (S_ISDIR(sb.st_mode)) {
				return 0;
			}
			local_errf(errmsg,
			           "config root=%s: %s is not a directory; "
			           "give a directory (it is created when "
			           "missing)",
			           c.root, path);
			return STRATA_ECONFIG;
		}
		char *slash = strrchr(path, '/');
		if ((errno != ENOENT && errno != ENOTDIR) || slash == NULL ||
		    slash == path) {
			return 0; /* open reports what it cannot do */
		}
		*slash = '\0';
	}
}

static int local_open(const struct strata_host *host, const char *config,
                      void **state, char *errmsg)
{
	if (host == NULL || host->malloc == NULL || host->realloc == NULL ||
	    host->free == NULL) {
		local_errf(errmsg, "open: the host passed no allocator");
		return STRATA_EINVAL;
	}
	struct local_conf conf;
	int rc = parse_config(config, &conf, errmsg);
	if (rc != 0) {
		return rc;
	}
	char *root = conf.root;
	bool do_fsync = conf.fsync;
	uint64_t open_max = conf.open_max;
	/* mkdir -p root */
	for (char *p = root + 1;; p++) {
		if (*p == '/' || *p == '\0') {
			char save = *p;
			*p = '\0';
			int r = mkdir(root, 0755);
			int e = errno;
			*p = save;
			if (r != 0 && e != EEXIST) {
				char buf[128];
				local_errf(errmsg,
				           "open: cannot create tier-2 root "
				           "%s: %s "
				           "(%s); create it or fix the "
				           "permissions",
				           root,
				           strerror_r(e, buf, sizeof(buf)),
				           errno_name(e));
				return map_errno(e);
			}
			if (save == '\0') {
				break;
			}
		}
	}
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || access(root, R_OK | W_OK | X_OK) != 0) {
		int e = errno;
		char buf[128];
		if (fd >= 0) {
			close(fd);
		}
		local_errf(errmsg,
		           "open: tier-2 root %s is not a usable directory: %s "
		           "(%s); "
		           "fix the path or its permissions",
		           root, strerror_r(e, buf, sizeof(buf)),
		           errno_name(e));
		return e == ENOTDIR ? STRATA_ECONFIG : map_errno(e);
	}
	struct local *l = host->malloc(sizeof(*l));
	if (l == NULL) {
		goto err_close_fd;
	}
	memset(l, 0, sizeof(*l));
	size_t n = strlen(root);
	l->root = host->malloc(n + 1);
	if (l->root == NULL) {
		goto err_free_l;
	}
	memcpy(l->root, root, n + 1);
	l->host = host;
	l->root_fd = fd;
	l->fsync = do_fsync;
	l->drop_cache = conf.drop_cache;
	l->open_max = (unsigned)open_max;
	pthread_mutex_init(&l->lock, NULL);
	pthread_mutex_init(&l->dir_lock, NULL);
	local_log(l, STRATA_LOG_INFO,
	          "root %s, fsync %s, drop_cache %s, open_chunks %u", l->root,
	          l->fsync ? "true" : "false", l->drop_cache ? "true" : "false",
	          l->open_max);
	*state = l;
	return 0;

err_free_l:
	host->free(l);
err_close_fd:
	close(fd);
	local_errf(errmsg, "open: out of memory");
	return STRATA_ENOMEM;
}

static void local_close(void *state)
{
	struct local *l = state;
	struct chunk *c = l->head;
	while (c != NULL) {
		struct chunk *next = c->next;
		local_chunk_free(l, c);
		c = next;
	}
	pthread_mutex_destroy(&l->lock);
	pthread_mutex_destroy(&l->dir_lock);
	close(l->root_fd);
	l->host->free(l->root);
	l->host->free(l);
}

static const struct strata_tier2_ops local_ops = {
        .abi_version = STRATA_TIER2_ABI_VERSION,
        .name = "local",
        .open = local_open,
        .close = local_close,
        .create = local_create,
        .write = local_write,
        .read = local_read,
        .stat = local_stat,
        .list = local_list,
        .truncate = local_truncate,
        .concat = local_concat,
        .remove = local_delete,
        .check = local_check,
};

STRATA_PLUGIN_EXPORT const struct strata_tier2_ops *strata_tier2_plugin(void);

const struct strata_tier2_ops *strata_tier2_plugin(void)
{
	return &local_ops;
}
