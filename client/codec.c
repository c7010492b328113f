/* Codec plugins in the client and the encoded-event frame (see codec.h). */
#include "client/codec.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/errmsg.h"
#include "common/le.h"
#include "common/log.h"
#include "common/plugin.h"

/* The codecs this client knows: encoding id -> plugin name. Ids are
 * global and never reused (strata/codec.h). */
static const struct {
	uint32_t id;
	const char *name;
} known[] = {
        {STRATA_CODEC_ID_ZSTD, "zstd"},
        {STRATA_CODEC_ID_LZ4, "lz4"},
        {STRATA_CODEC_ID_GZIP, "gzip"},
};
#define N_KNOWN (sizeof(known) / sizeof(known[0]))
#define KNOWN_LIST "zstd, lz4, gzip"

/* Loaded codecs: host copies of their tables, for the process's life. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct strata_codec_ops loaded[N_KNOWN];
static bool is_loaded[N_KNOWN];

static size_t ops_size_for_version(uint32_t v)
{
	(void)v; /* version 1 is the whole table so far */
	return sizeof(struct strata_codec_ops);
}

/* Load codec k (mu held); 0 and loaded[k] filled. */
static int load(size_t k, char *errmsg)
{
	char dbuf[PATH_MAX];
	bool from_env;
	const char *dir = plugin_dir_lookup(dbuf, sizeof(dbuf), &from_env);
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%.4000s/codec-%s.so", dir, known[k].name);
	const char *why = NULL;
	void *h = plugin_dlopen(path, &why);
	if (h == NULL) {
		errmsg_set(errmsg,
		           "cannot load codec plugin %s (%s): set "
		           "STRATA_PLUGIN_DIR to the directory holding "
		           "codec-%s.so%s",
		           path, why, known[k].name,
		           from_env ? "" : " or install the plugins there");
		return STRATA_EPLUGIN;
	}
	strata_codec_entry_fn entry =
	        (strata_codec_entry_fn)dlsym(h, STRATA_CODEC_ENTRY);
	const struct strata_codec_ops *t = entry != NULL ? entry() : NULL;
	int rc = 0;
	if (t == NULL) {
		errmsg_set(errmsg,
		           "codec plugin %s: no table from %s(): not a Strata "
		           "codec plugin (export it with STRATA_PLUGIN_EXPORT)",
		           path, STRATA_CODEC_ENTRY);
		rc = STRATA_EPLUGIN;
	} else if (t->abi_version < STRATA_CODEC_ABI_MIN ||
	           t->abi_version > STRATA_CODEC_ABI_VERSION) {
		errmsg_set(errmsg,
		           "codec plugin %s: built for codec ABI %u; this "
		           "client loads %u..%u: rebuild it against this "
		           "release's include/strata/codec.h",
		           path, t->abi_version, STRATA_CODEC_ABI_MIN,
		           STRATA_CODEC_ABI_VERSION);
		rc = STRATA_EABI;
	} else {
		struct strata_codec_ops o;
		memset(&o, 0, sizeof(o));
		memcpy(&o, t, ops_size_for_version(t->abi_version));
		if (o.name == NULL || strcmp(o.name, known[k].name) != 0 ||
		    o.encoding_id != known[k].id || o.bound == NULL ||
		    o.encode == NULL || o.decode == NULL ||
		    o.level_min > o.level_max ||
		    o.level_default < o.level_min ||
		    o.level_default > o.level_max) {
			errmsg_set(
			        errmsg,
			        "codec plugin %s: its table is not codec %s "
			        "(encoding id %u) with bound, encode, decode "
			        "and a level range holding its default: fix "
			        "the plugin",
			        path, known[k].name, known[k].id);
			rc = STRATA_EPLUGIN;
		} else {
			loaded[k] = o;
			is_loaded[k] = true;
			LOG_INFO("codec", "loaded codec %s (id %u) from %s",
			         o.name, o.encoding_id, path);
			return 0;
		}
	}
	dlclose(h);
	return rc;
}

static int get(size_t k, const struct strata_codec_ops **out, char *errmsg)
{
	pthread_mutex_lock(&mu);
	int rc = is_loaded[k] ? 0 : load(k, errmsg);
	pthread_mutex_unlock(&mu);
	if (rc == 0) {
		*out = &loaded[k];
	}
	return rc;
}

int codec_by_name(const char *name, const struct strata_codec_ops **out,
                  char *errmsg)
{
	for (size_t k = 0; name != NULL && k < N_KNOWN; k++) {
		if (strcmp(name, known[k].name) == 0) {
			return get(k, out, errmsg);
		}
	}
	errmsg_set(errmsg, "unknown codec '%.64s' (this client knows %s)",
	           name != NULL ? name : "(null)", KNOWN_LIST);
	return STRATA_ENOENT;
}

int codec_by_id(uint32_t id, const struct strata_codec_ops **out, char *errmsg)
{
	for (size_t k = 0; k < N_KNOWN; k++) {
		if (known[k].id == id) {
			return get(k, out, errmsg);
		}
	}
	errmsg_set(errmsg,
	           "encoding id %u is not a codec this client knows (%s); "
	           "was it written by a newer Strata?",
	           id, KNOWN_LIST);
	return STRATA_ENOENT;
}

int codec_level(const struct strata_codec_ops *ops, int level, int *out,
                char *errmsg)
{
	if (level == 0) {
		*out = ops->level_default;
		return 0;
	}
	if (level < ops->level_min || level > ops->level_max) {
		errmsg_set(errmsg,
		           "codec %s: level %d is outside %d..%d (0 picks its "
		           "default, %d)",
		           ops->name, level, ops->level_min, ops->level_max,
		           ops->level_default);
		return STRATA_EINVAL;
	}
	*out = level;
	return 0;
}

size_t codec_frame_bound(const struct strata_codec_ops *ops, size_t len)
{
	size_t b = ops->bound(len);
	return 4 + STRATA_CODEC_HEADER + (b > len ? b : len);
}

int codec_frame_encode(const struct strata_codec_ops *ops, int level,
                       const void *data, size_t len, uint8_t *out, size_t *flen,
                       char *errmsg)
{
	size_t cap = ops->bound(len);
	size_t n = 0;
	int rc = len > 0 && len <= UINT32_MAX
	                 ? ops->encode(level, data, len,
	                               out + 4 + STRATA_CODEC_HEADER, cap, &n,
	                               errmsg)
	                 : 0;
	if (rc != 0) {
		return rc;
	}
	if (len == 0 || len > UINT32_MAX || n > cap ||
	    n + STRATA_CODEC_HEADER >= len) {
		/* Not smaller: the plain frame. */
		le32_put(out, (uint32_t)len);
		if (len > 0) {
			memmove(out + 4, data, len);
		}
		*flen = 4 + len;
		return 0;
	}
	le32_put(out,
	         (uint32_t)(n + STRATA_CODEC_HEADER) | STRATA_FRAME_ENCODED);
	out[4] = STRATA_CODEC_PROTOCOL;
	le32_put(out + 5, ops->encoding_id);
	le32_put(out + 9, (uint32_t)len);
	*flen = 4 + STRATA_CODEC_HEADER + n;
	return 0;
}

int codec_event_decode(const uint8_t *p, size_t len, size_t max_decoded,
                       struct buf *out, char *errmsg)
{
	if (len < STRATA_CODEC_HEADER || p[0] != STRATA_CODEC_PROTOCOL) {
		errmsg_set(errmsg,
		           "an event marked encoded has no codec header of "
		           "protocol %d (%zu bytes%s)",
		           STRATA_CODEC_PROTOCOL, len,
		           len > 0 ? ", first byte differs" : "");
		return STRATA_ECORRUPT;
	}
	uint32_t id = le32_get(p + 1);
	size_t dlen = le32_get(p + 5);
	if (dlen > max_decoded) {
		errmsg_set(errmsg,
		           "an encoded event says it decodes to %zu bytes, "
		           "more than the %zu-byte event limit",
		           dlen, max_decoded);
		return STRATA_ECORRUPT;
	}
	const struct strata_codec_ops *ops;
	int rc = codec_by_id(id, &ops, errmsg);
	if (rc != 0) {
		return rc;
	}
	buf_reset(out);
	if ((rc = buf_reserve(out, dlen > 0 ? dlen : 1)) != 0) {
		errmsg_set(errmsg,
		           "out of memory decoding an event of %zu bytes",
		           dlen);
		return STRATA_ENOMEM;
	}
	char why[STRATA_ERRMSG_SIZE] = "";
	rc = ops->decode(p + STRATA_CODEC_HEADER, len - STRATA_CODEC_HEADER,
	                 out->data, dlen, why);
	if (rc != 0) {
		errmsg_set(errmsg, "codec %s could not decode an event: %s",
		           ops->name,
		           why[0] != '\0' ? why : strata_strerror(rc));
		return rc == STRATA_ENOMEM ? rc : STRATA_ECORRUPT;
	}
	out->len = dlen;
	return 0;
}
