/* Example tier-2 plugin: chunks as plain files under a directory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <strata/plugin.h>
#include <strata/plugin_config.h>

/*
 * The smallest useful tier-2 plugin, written only against
 * include/strata/plugin.h and include/strata/plugin_config.h (see
 * docs/writing-a-tier2-plugin.md). Config: root=<existing directory>.
 * Chunk "a/b/c" is the file <root>/a/b/c. concat is left NULL: the host
 * answers STRATA_ENOTSUP for it. The host already checked every chunk
 * name, so names are safe to append to root.
 *
 * Build: cc -shared -fPIC -fvisibility=hidden -I<strata>/include \
 *           -o tier2-example.so example.c
 */

#define PATH_SIZE 4200 /* root (up to 3000) + '/' + a chunk name (1024) */

struct example {
	const struct strata_host *host; /* valid until close() */
	char root[3000];                /* chunk directory */
};

static void errf(char *errmsg, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void errf(char *errmsg, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errmsg, STRATA_ERRMSG_SIZE, fmt, ap);
	va_end(ap);
}

/* Map errno to a Strata code: plugins never return -1 or raw errno. */
static int from_errno(int e)
{
	switch (e) {
	case ENOENT:
	case ENOTDIR:
		return STRATA_ENOENT;
	case EEXIST:
		return STRATA_EEXIST;
	case ENOSPC:
	case EDQUOT:
		return STRATA_ENOSPC;
	case EACCES:
	case EPERM:
	case EROFS:
		return STRATA_EPERM;
	case ENOMEM:
		return STRATA_ENOMEM;
	default:
		return STRATA_EIO;
	}
}

/* Report a failed system call on a chunk: "write chunk a/b: ...". */
static int fail(const char *op, const char *name, char *errmsg)
{
	int e = errno;
	errf(errmsg, "%s chunk %s: %s", op, name, strerror(e));
	return from_errno(e);
}

/* <root>/<name> into path (PATH_SIZE bytes); root and name are bounded
 * so it always fits. */
static void path_of(const struct example *x, const char *name, char *path)
{
	if (snprintf(path, PATH_SIZE, "%s/%s", x->root, name) >= PATH_SIZE) {
		path[0] = '\0'; /* unreachable: sizes checked at open */
	}
}

static int example_open(const struct strata_host *host, const char *config,
                        void **state, char *errmsg)
{
	char root[3000] = "";
	const char *cur = config;
	struct strata_config_item it;
	while (strata_config_next(&cur, &it)) {
		if (strata_config_key_is(&it, "root")) {
			if (it.value_len == 0 ||
			    strata_config_value_copy(&it, root, sizeof(root))) {
				errf(errmsg,
				     "config %.*s: root must be a "
				     "directory path",
				     it.line_len, it.line);
				return STRATA_ECONFIG;
			}
		} else {
			/* Never the line: its value may be a secret. */
			char msg[STRATA_ERRMSG_SIZE];
			errf(errmsg, "config: %s",
			     strata_config_unknown_key(&it, "root", msg,
			                               sizeof(msg)));
			return STRATA_ECONFIG;
		}
	}
	struct stat st;
	if (root[0] == '\0' || stat(root, &st) != 0 || !S_ISDIR(st.st_mode)) {
		errf(errmsg,
		     "config: root '%s' is not an existing directory (set "
		     "tier2.options.root)",
		     root);
		return STRATA_ECONFIG;
	}
	struct example *x = host->malloc(sizeof(*x));
	if (x == NULL) {
		errf(errmsg, "open: out of memory");
		return STRATA_ENOMEM;
	}
	x->host = host;
	memcpy(x->root, root, sizeof(root));
	host->log(host, STRATA_LOG_INFO, "chunks live under %s", x->root);
	*state = x;
	return 0;
}

static void example_close(void *state)
{
	struct example *x = state;
	x->host->free(x);
}

/* mkdir -p of the directories above path (ops on different chunks may
 * race here, so EEXIST is fine). */
static int make_parents(char *path)
{
	for (char *p = strchr(path + 1, '/'); p != NULL;
	     p = strchr(p + 1, '/')) {
		*p = '\0';
		int rc = mkdir(path, 0755);
		*p = '/';
		if (rc != 0 && errno != EEXIST) {
			return -1;
		}
	}
	return 0;
}

static int example_create(void *state, const char *name, char *errmsg)
{
	char path[PATH_SIZE];
	path_of(state, name, path);
	if (make_parents(path) != 0) {
		return fail("create", name, errmsg);
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		return fail("create", name, errmsg);
	}
	close(fd);
	return 0;
}

static int example_write(void *state, const char *name, uint64_t offset,
                         const void *buf, size_t len, char *errmsg)
{
	char path[PATH_SIZE];
	struct stat st;
	int rc = 0;
	path_of(state, name, path);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		return fail("write", name, errmsg);
	}
	if (fstat(fd, &st) != 0) {
		rc = fail("write", name, errmsg);
		goto out;
	}
	if ((uint64_t)st.st_size != offset) {
		errf(errmsg,
		     "write chunk %s at offset %llu: the chunk is %lld "
		     "bytes long",
		     name, (unsigned long long)offset, (long long)st.st_size);
		rc = STRATA_EBADOFFSET;
		goto out;
	}
	for (size_t done = 0; done < len;) {
		ssize_t n = pwrite(fd, (const char *)buf + done, len - done,
		                   (off_t)(offset + done));
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			rc = fail("write", name, errmsg);
			goto undo;
		}
		done += (size_t)n;
	}
	if (fsync(fd) != 0) { /* durable when we return 0 */
		rc = fail("write", name, errmsg);
		goto undo;
	}
	goto out;
undo:
	/* Never let a failed write's partial bytes be read back later. */
	if (ftruncate(fd, (off_t)offset) != 0) {
		errf(errmsg,
		     "write chunk %s: failed and could not cut the "
		     "partial data back off",
		     name);
		rc = STRATA_EIO;
	}
out:
	close(fd);
	return rc;
}

static int example_read(void *state, const char *name, uint64_t offset,
                        void *buf, size_t len, size_t *nread, char *errmsg)
{
	char path[PATH_SIZE];
	struct stat st;
	int rc = 0;
	size_t done = 0;
	path_of(state, name, path);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		return fail("read", name, errmsg);
	}
	if (fstat(fd, &st) != 0) {
		rc = fail("read", name, errmsg);
		goto out;
	}
	if (offset > (uint64_t)st.st_size) {
		errf(errmsg,
		     "read chunk %s at offset %llu: past its end (%lld)", name,
		     (unsigned long long)offset, (long long)st.st_size);
		rc = STRATA_ERANGE;
		goto out;
	}
	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done,
		                  (off_t)(offset + done));
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			rc = fail("read", name, errmsg);
			goto out;
		}
		if (n == 0) {
			break; /* end of chunk: a short read */
		}
		done += (size_t)n;
	}
out:
	*nread = rc == 0 ? done : 0;
	close(fd);
	return rc;
}

static int example_stat(void *state, const char *name,
                        struct strata_tier2_chunk_info *info, char *errmsg)
{
	char path[PATH_SIZE];
	struct stat st;
	path_of(state, name, path);
	if (stat(path, &st) != 0) {
		return fail("stat", name, errmsg);
	}
	if (!S_ISREG(st.st_mode)) {
		errf(errmsg, "stat chunk %s: not a chunk file", name);
		return STRATA_ENOENT;
	}
	info->length = (uint64_t)st.st_size;
	info->mtime_ns =
	        (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	return 0;
}

/* Walk dir (the chunk-name prefix rel, "" at the root) depth first. */
static int walk(struct example *x, const char *rel, const char *prefix,
                strata_tier2_list_cb cb, void *arg, char *errmsg)
{
	char path[PATH_SIZE];
	path_of(x, rel, path);
	DIR *d = opendir(path);
	if (d == NULL) {
		return errno == ENOENT ? 0 : fail("list", rel, errmsg);
	}
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' &&
		    (e->d_name[1] == '\0' || strcmp(e->d_name, "..") == 0)) {
			continue;
		}
		char name[STRATA_TIER2_NAME_MAX + 1];
		if (snprintf(name, sizeof(name), "%s%s%s", rel,
		             rel[0] ? "/" : "",
		             e->d_name) >= (int)sizeof(name)) {
			continue; /* too long to be a chunk name */
		}
		size_t n = strlen(name) < strlen(prefix) ? strlen(name)
		                                         : strlen(prefix);
		if (strncmp(name, prefix, n) != 0) {
			continue; /* neither under nor above the prefix */
		}
		struct stat st;
		path_of(x, name, path);
		if (stat(path, &st) != 0) {
			continue; /* deleted meanwhile */
		}
		if (S_ISDIR(st.st_mode)) {
			rc = walk(x, name, prefix, cb, arg, errmsg);
		} else if (strncmp(name, prefix, strlen(prefix)) == 0) {
			struct strata_tier2_chunk_info info = {
			        .length = (uint64_t)st.st_size,
			        .mtime_ns = (int64_t)st.st_mtim.tv_sec *
			                            1000000000 +
			                    st.st_mtim.tv_nsec,
			};
			rc = cb(arg, name, &info);
		}
	}
	closedir(d);
	return rc;
}

static int example_list(void *state, const char *prefix,
                        strata_tier2_list_cb cb, void *arg, char *errmsg)
{
	return walk(state, "", prefix, cb, arg, errmsg);
}

static int example_truncate(void *state, const char *name, uint64_t length,
                            char *errmsg)
{
	char path[PATH_SIZE];
	struct stat st;
	path_of(state, name, path);
	if (stat(path, &st) != 0) {
		return fail("truncate", name, errmsg);
	}
	if (length > (uint64_t)st.st_size) {
		errf(errmsg, "truncate chunk %s to %llu: it is %lld bytes long",
		     name, (unsigned long long)length, (long long)st.st_size);
		return STRATA_ERANGE;
	}
	if (truncate(path, (off_t)length) != 0) {
		return fail("truncate", name, errmsg);
	}
	return 0;
}

static int example_delete(void *state, const char *name, char *errmsg)
{
	char path[PATH_SIZE];
	path_of(state, name, path);
	if (unlink(path) != 0) {
		return fail("delete", name, errmsg);
	}
	return 0;
}

static const struct strata_tier2_ops example_ops = {
        .abi_version = STRATA_TIER2_ABI_VERSION, /* the header we built with */
        .name = "example",
        .open = example_open,
        .close = example_close,
        .create = example_create,
        .write = example_write,
        .read = example_read,
        .stat = example_stat,
        .list = example_list,
        .truncate = example_truncate,
        .concat = NULL, /* optional: the host reports STRATA_ENOTSUP */
        .remove = example_delete,
};

/* The one exported symbol; everything else is hidden. */
STRATA_PLUGIN_EXPORT const struct strata_tier2_ops *strata_tier2_plugin(void);

const struct strata_tier2_ops *strata_tier2_plugin(void)
{
	return &example_ops;
}
