/* Tier-2 "local" plugin: chunk names, directories; create, list, delete. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugins/tier2/local/local.h"
#include "strata/plugin.h"

/* ---- names and directories ---- */

/* STRATA_EBADNAME unless name is a relative path of [A-Za-z0-9._-]
 * components, none empty, ".", ".." or starting with LOCAL_RESERVED. The host
 * checks too; this keeps the plugin safe on its own. */
int local_check_name(const char *op, const char *name, char *errmsg)
{
	size_t n = strlen(name);
	if (n == 0 || n > STRATA_TIER2_NAME_MAX) {
		local_errf(errmsg, "%s chunk '%.64s': a name has 1..%d bytes",
		           op, name, STRATA_TIER2_NAME_MAX);
		return STRATA_EBADNAME;
	}
	const char *comp = name;
	for (const char *p = name;; p++) {
		char ch = *p;
		if (ch == '/' || ch == '\0') {
			size_t len = (size_t)(p - comp);
			if (len == 0 || (len == 1 && comp[0] == '.') ||
			    (len == 2 && comp[0] == '.' && comp[1] == '.')) {
				local_errf(
				        errmsg,
				        "%s chunk '%s': empty, '.' or '..' "
				        "path "
				        "component (names are relative paths "
				        "inside the tier-2 root)",
				        op, name);
				return STRATA_EBADNAME;
			}
			if (len >= strlen(LOCAL_RESERVED) &&
			    memcmp(comp, LOCAL_RESERVED,
			           strlen(LOCAL_RESERVED)) == 0) {
				local_errf(errmsg,
				           "%s chunk '%s': components starting "
				           "with '" LOCAL_RESERVED
				           "' are reserved",
				           op, name);
				return STRATA_EBADNAME;
			}
			if (ch == '\0') {
				return 0;
			}
			comp = p + 1;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
		      ch == '-')) {
			local_errf(errmsg,
			           "%s chunk '%s': character 0x%02x is not "
			           "allowed "
			           "(use [A-Za-z0-9._/-])",
			           op, name, (unsigned char)ch);
			return STRATA_EBADNAME;
		}
	}
}

/* fsync the directory dir, relative to the root ("." = the root). errno
 * on failure. */
static int fsync_dir(const struct local *l, const char *dir)
{
	int fd = openat(l->root_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		return errno;
	}
	int e = fsync(fd) != 0 ? errno : 0;
	close(fd);
	return e;
}

/* fsync the directory holding name. errno on failure. */
int local_fsync_parent(const struct local *l, const char *name)
{
	const char *slash = strrchr(name, '/');
	if (slash == NULL) {
		return fsync_dir(l, ".");
	}
	char dir[STRATA_TIER2_NAME_MAX + 1];
	size_t n = (size_t)(slash - name);
	memcpy(dir, name, n);
	dir[n] = '\0';
	return fsync_dir(l, dir);
}

/* Create the missing parent directories of name, fsyncing each new one's
 * parent. dir_lock held. errno on failure. */
static int make_parents(const struct local *l, const char *name)
{
	char dir[STRATA_TIER2_NAME_MAX + 1];
	for (const char *p = strchr(name, '/'); p != NULL;
	     p = strchr(p + 1, '/')) {
		size_t n = (size_t)(p - name);
		memcpy(dir, name, n);
		dir[n] = '\0';
		if (mkdirat(l->root_fd, dir, 0755) != 0) {
			if (errno == EEXIST) {
				continue;
			}
			return errno;
		}
		if (l->fsync) {
			int e = local_fsync_parent(l, dir);
			if (e != 0) {
				return e;
			}
		}
	}
	return 0;
}

/* Remove the now empty parent directories of a deleted name, deepest
 * first, stopping at the first that is not empty. Best effort. */
void local_remove_empty_parents(struct local *l, const char *name)
{
	char dir[STRATA_TIER2_NAME_MAX + 1];
	size_t n = strlen(name);
	memcpy(dir, name, n + 1);
	pthread_mutex_lock(&l->dir_lock);
	char *slash;
	bool removed = false;
	bool stopped = false;
	while ((slash = strrchr(dir, '/')) != NULL) {
		*slash = '\0';
		if (unlinkat(l->root_fd, dir, AT_REMOVEDIR) != 0) {
			stopped = true; /* dir still exists: it held the last */
			break;
		}
		removed = true;
	}
	if (removed && l->fsync) {
		(void)fsync_dir(l, stopped ? dir : ".");
	}
	pthread_mutex_unlock(&l->dir_lock);
}

/* ---- ops on names ---- */

int local_create(void *state, const char *name, char *errmsg)
{
	struct local *l = state;
	int rc = local_check_name("create", name, errmsg);
	if (rc != 0) {
		return rc;
	}
	pthread_mutex_lock(&l->dir_lock);
	int e = make_parents(l, name);
	if (e != 0) {
		pthread_mutex_unlock(&l->dir_lock);
		if (e == EEXIST || e == ENOTDIR) {
			goto err_parent_is_chunk;
		}
		return local_sys_fail(l, errmsg, e, "create", name,
		                      "create directories for");
	}
	int fd = openat(l->root_fd, name,
	                O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	                0644);
	e = errno;
	pthread_mutex_unlock(&l->dir_lock);
	if (fd < 0) {
		if (e == EEXIST) {
			local_errf(errmsg, "create chunk %s: it already exists",
			           name);
			return STRATA_EEXIST;
		}
		if (e == ENOTDIR) {
			goto err_parent_is_chunk;
		}
		return local_sys_fail(l, errmsg, e, "create", name, "create");
	}
	if (l->fsync) {
		e = fsync(fd) != 0 ? errno : local_fsync_parent(l, name);
		if (e != 0) {
			close(fd);
			(void)unlinkat(l->root_fd, name, 0);
			return local_sys_fail(l, errmsg, e, "create", name,
			                      "fsync");
		}
	}
	close(fd);
	/* A cached entry of an older file by that name is stale now. */
	local_chunk_forget(l, name);
	return 0;

err_parent_is_chunk:
	local_errf(errmsg,
	           "create chunk %s: a leading part of the name is an existing "
	           "chunk, so it cannot be a directory",
	           name);
	return STRATA_EEXIST;
}

/* State of one list() walk. */
struct walk {
	struct local *l;
	const char *prefix;
	size_t plen;
	strata_tier2_list_cb cb;
	void *arg;
	char *errmsg;
	char path[STRATA_TIER2_NAME_MAX + NAME_MAX + 2]; /* current name */
};

/* Length and mtime of the chunk file at w->path without the cache (the
 * callback may use the chunk meanwhile). 0, -1 = vanished, or an error code. */
static int list_info(struct walk *w, struct strata_tier2_chunk_info *info)
{
	struct local *l = w->l;
	int fd = openat(l->root_fd, w->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT) {
			return -1;
		}
		return local_sys_fail(l, w->errmsg, errno, "list", w->path,
		                      "open");
	}
	struct stat st;
	struct scan s;
	int e = fstat(fd, &st) != 0
	                ? errno
	                : local_scan(l, fd, (uint64_t)st.st_size, NULL, &s);
	close(fd);
	if (e == ENOMEM) {
		return local_nomem(w->errmsg, "list", w->path);
	}
	if (e != 0) {
		return local_sys_fail(l, w->errmsg, e, "list", w->path, "scan");
	}
	if (s.state != CHUNK_OK) {
		local_log(l, STRATA_LOG_WARN,
		          "list: chunk %s is %s at byte position %llu (%s); "
		          "listing its good length %llu",
		          w->path, s.state == CHUNK_TORN ? "torn" : "corrupt",
		          (unsigned long long)s.end_pos, s.why,
		          (unsigned long long)s.length);
	}
	info->length = s.length;
	info->mtime_ns =
	        (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	return 0;
}

/* List the directory w->path (len bytes; 0 = root). */
static int walk_dir(struct walk *w, size_t len)
{
	struct local *l = w->l;
	int dfd = openat(l->root_fd, len == 0 ? "." : w->path,
	                 O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dfd < 0) {
		if (errno == ENOENT) {
			return 0; /* removed meanwhile */
		}
		return local_sys_fail(l, w->errmsg, errno, "list",
		                      len == 0 ? "(root)" : w->path,
		                      "open directory");
	}
	DIR *d = fdopendir(dfd);
	if (d == NULL) {
		int e = errno;
		close(dfd);
		return local_sys_fail(l, w->errmsg, e, "list", w->path, "read");
	}
	int rc = 0;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (de == NULL) {
			if (errno != 0) {
				rc = local_sys_fail(l, w->errmsg, errno, "list",
				                    len == 0 ? "(root)"
				                             : w->path,
				                    "read directory");
			}
			break;
		}
		const char *n = de->d_name;
		size_t nl = strlen(n);
		if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0 ||
		    strncmp(n, LOCAL_RESERVED, strlen(LOCAL_RESERVED)) == 0 ||
		    len + 1 + nl > STRATA_TIER2_NAME_MAX) {
			continue;
		}
		size_t k = len;
		if (k > 0) {
			w->path[k++] = '/';
		}
		memcpy(w->path + k, n, nl + 1);
		k += nl;
		unsigned char type = de->d_type;
		if (type == DT_UNKNOWN) {
			struct stat st;
			if (fstatat(l->root_fd, w->path, &st,
			            AT_SYMLINK_NOFOLLOW) != 0) {
				continue;
			}
			type = S_ISDIR(st.st_mode)   ? DT_DIR
			       : S_ISREG(st.st_mode) ? DT_REG
			                             : DT_UNKNOWN;
		}
		if (type == DT_DIR) {
			/* Descend only where names can match the prefix. */
			size_t m = k < w->plen ? k : w->plen;
			if (strncmp(w->path, w->prefix, m) == 0 &&
			    (k >= w->plen || w->prefix[k] == '/')) {
				rc = walk_dir(w, k);
			}
		} else if (type == DT_REG && k >= w->plen &&
		           strncmp(w->path, w->prefix, w->plen) == 0) {
			struct strata_tier2_chunk_info info;
			rc = list_info(w, &info);
			if (rc == -1) {
				rc = 0;
			} else if (rc == 0) {
				rc = w->cb(w->arg, w->path, &info);
			}
		}
		w->path[len] = '\0';
		if (rc != 0) {
			break;
		}
	}
	closedir(d);
	return rc;
}

int local_list(void *state, const char *prefix, strata_tier2_list_cb cb,
               void *arg, char *errmsg)
{
	struct local *l = state;
	struct walk *w = l->host->malloc(sizeof(*w));
	if (w == NULL) {
		local_errf(errmsg, "list prefix '%s': out of memory", prefix);
		return STRATA_ENOMEM;
	}
	w->l = l;
	w->prefix = prefix;
	w->plen = strlen(prefix);
	w->cb = cb;
	w->arg = arg;
	w->errmsg = errmsg;
	w->path[0] = '\0';
	int rc = walk_dir(w, 0);
	l->host->free(w);
	return rc;
}

int local_delete(void *state, const char *name, char *errmsg)
{
	struct local *l = state;
	int rc = local_check_name("delete", name, errmsg);
	if (rc != 0) {
		return rc;
	}
	local_chunk_forget(l, name);
	if (unlinkat(l->root_fd, name, 0) != 0) {
		if (errno == EISDIR) {
			local_errf(errmsg,
			           "delete chunk %s: %s/%s is a directory",
			           name, l->root, name);
			return STRATA_ENOENT;
		}
		return local_sys_fail(l, errmsg, errno, "delete", name,
		                      "unlink");
	}
	if (l->fsync) {
		int e = local_fsync_parent(l, name);
		if (e != 0) {
			return local_sys_fail(l, errmsg, e, "delete", name,
			                      "sync the directory of");
		}
	}
	local_remove_empty_parents(l, name);
	return 0;
}
