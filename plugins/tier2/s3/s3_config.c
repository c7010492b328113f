/* The s3 plugin's settings: parsed from config lines and AWS variables. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugins/tier2/s3/s3_config.h"
#include "strata/plugin_config.h"

#define ALLOWED_KEYS                                                         \
	"endpoint, bucket, prefix, region, addressing, scheme, signature, "  \
	"access_key_id, secret_access_key, session_token, tls_verify, "      \
	"ca_file, retries, retry_base_ms, retry_max_ms, retry_budget_ms, "   \
	"connect_timeout_ms, io_timeout_ms, multipart_min_part, list_page, " \
	"checksum"

__attribute__((format(printf, 2, 3))) static void errf(char *errmsg,
                                                       const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errmsg, STRATA_ERRMSG_SIZE, fmt, ap);
	va_end(ap);
}

static char *dupn(const struct strata_host *host, const char *s, size_t n)
{
	char *p = host->malloc(n + 1);
	if (p != NULL) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

/* Replace *slot (owned) by a copy of s[0..n). */
static int set_str(const struct strata_host *host, char **slot, const char *s,
                   size_t n)
{
	char *p = dupn(host, s, n);
	if (p == NULL) {
		return STRATA_ENOMEM;
	}
	host->free(*slot);
	*slot = p;
	return 0;
}

/* The raw string values, before interpretation; all owned. */
struct raw {
	char *endpoint, *bucket, *prefix, *region, *addressing, *scheme;
	char *signature, *access_key, *secret_key, *session_token;
	char *tls_verify, *ca_file, *checksum;
};

static void raw_free(const struct strata_host *host, struct raw *r)
{
	char **all[] = {&r->endpoint,      &r->bucket,     &r->prefix,
	                &r->region,        &r->addressing, &r->scheme,
	                &r->signature,     &r->access_key, &r->secret_key,
	                &r->session_token, &r->tls_verify, &r->ca_file,
	                &r->checksum};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		host->free(*all[i]);
		*all[i] = NULL;
	}
}

/* "@path": replace *slot by the first line of that file, trimmed. */
static int read_at_file(const struct strata_host *host, const char *key,
                        char **slot, char *errmsg)
{
	if (*slot == NULL || (*slot)[0] != '@') {
		return 0;
	}
	const char *path = *slot + 1;
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		errf(errmsg,
		     "config %s=@%s: cannot read that file (%m); give the "
		     "value itself or a readable file after '@'",
		     key, path);
		return STRATA_ECONFIG;
	}
	char line[4096];
	size_t n = fread(line, 1, sizeof(line) - 1, f);
	fclose(f);
	line[n] = '\0';
	char *b = line;
	while (*b == ' ' || *b == '\t' || *b == '\n' || *b == '\r') {
		b++;
	}
	size_t len = strcspn(b, "\r\n");
	while (len > 0 && (b[len - 1] == ' ' || b[len - 1] == '\t')) {
		len--;
	}
	if (len == 0) {
		errf(errmsg, "config %s=@%s: the file is empty", key, path);
		return STRATA_ECONFIG;
	}
	return set_str(host, slot, b, len);
}

/* *slot = value of environment variable name when *slot is unset. */
static int from_env(const struct strata_host *host, char **slot,
                    const char *name)
{
	const char *v = getenv(name);
	if (*slot != NULL || v == NULL || v[0] == '\0') {
		return 0;
	}
	return set_str(host, slot, v, strlen(v));
}

static bool name_chars_ok(const char *s, const char *extra)
{
	for (; *s != '\0'; s++) {
		char c = *s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || strchr(extra, c) != NULL)) {
			return false;
		}
	}
	return true;
}

/* Whether path has a "." or ".." component: an HTTP client resolves them
 * in the URL (libcurl does), so the keys would land outside the prefix. */
static bool has_dot_component(const char *path)
{
	for (const char *p = path; *p != '\0';) {
		size_t n = strcspn(p, "/");
		if ((n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.')) {
			return true;
		}
		p += n + (p[n] == '/');
	}
	return false;
}

static int parse_bool(const char *key, const char *v, bool *out, char *errmsg)
{
	if (strcmp(v, "true") == 0) {
		*out = true;
	} else if (strcmp(v, "false") == 0) {
		*out = false;
	} else {
		errf(errmsg, "config %s=%s: must be true or false", key, v);
		return STRATA_ECONFIG;
	}
	return 0;
}

/* The numeric keys: name, where, limits. */
struct num_key {
	const char *key;
	size_t off; /* offsetof in struct s3_config */
	int is_int; /* an int field rather than uint64_t */
	uint64_t min, max;
	const char *what;
};

static const struct num_key num_keys[] = {
        {"retries", offsetof(struct s3_config, retries), 1, 0, 100,
         "a retry count 0..100"},
        {"retry_base_ms", offsetof(struct s3_config, retry_base_ms), 0, 1,
         60000, "milliseconds 1..60000"},
        {"retry_max_ms", offsetof(struct s3_config, retry_max_ms), 0, 1, 600000,
         "milliseconds 1..600000"},
        {"retry_budget_ms", offsetof(struct s3_config, retry_budget_ms), 0, 1,
         3600000, "milliseconds 1..3600000"},
        {"connect_timeout_ms", offsetof(struct s3_config, connect_timeout_ms),
         0, 1, 600000, "milliseconds 1..600000"},
        {"io_timeout_ms", offsetof(struct s3_config, io_timeout_ms), 0, 1000,
         3600000, "milliseconds 1000..3600000 (whole seconds are used)"},
        {"multipart_min_part", offsetof(struct s3_config, multipart_min_part),
         0, 1, (uint64_t)5 << 30, "a byte count 1..5g, e.g. 5m"},
        {"list_page", offsetof(struct s3_config, list_page), 1, 1, 1000,
         "a key count 1..1000"},
};

static int parse_num(const struct strata_config_item *it, struct s3_config *cfg,
                     bool *matched, char *errmsg)
{
	for (size_t i = 0; i < sizeof(num_keys) / sizeof(num_keys[0]); i++) {
		const struct num_key *k = &num_keys[i];
		if (!strata_config_key_is(it, k->key)) {
			continue;
		}
		*matched = true;
		uint64_t v = 0;
		if (strata_config_value_u64(it, &v) != 0 || v < k->min ||
		    v > k->max) {
			errf(errmsg, "config %.*s: %s must be %s", it->line_len,
			     it->line, k->key, k->what);
			return STRATA_ECONFIG;
		}
		char *field = (char *)cfg + k->off;
		if (k->is_int) {
			*(int *)(void *)field = (int)v;
		} else {
			*(uint64_t *)(void *)field = v;
		}
		return 0;
	}
	*matched = false;
	return 0;
}

/* Store one string key into raw; *matched false if it is not one. */
static int parse_str(const struct strata_host *host,
                     const struct strata_config_item *it, struct raw *r,
                     bool *matched)
{
	struct {
		const char *key;
		char **slot;
	} keys[] = {
	        {"endpoint", &r->endpoint},
	        {"bucket", &r->bucket},
	        {"prefix", &r->prefix},
	        {"region", &r->region},
	        {"addressing", &r->addressing},
	        {"scheme", &r->scheme},
	        {"signature", &r->signature},
	        {"access_key_id", &r->access_key},
	        {"secret_access_key", &r->secret_key},
	        {"session_token", &r->session_token},
	        {"tls_verify", &r->tls_verify},
	        {"ca_file", &r->ca_file},
	        {"checksum", &r->checksum},
	};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (strata_config_key_is(it, keys[i].key)) {
			*matched = true;
			return set_str(host, keys[i].slot, it->value,
			               it->value_len);
		}
	}
	*matched = false;
	return 0;
}

/* endpoint = [http://|https://]host[:port][/] into cfg->host and scheme. */
static int parse_endpoint(const struct strata_host *host, const char *ep,
                          int *scheme, struct s3_config *cfg, char *errmsg)
{
	const char *h = ep;
	if (strncmp(h, "http://", 7) == 0) {
		*scheme = 0;
		h += 7;
	} else if (strncmp(h, "https://", 8) == 0) {
		*scheme = 1;
		h += 8;
	} else if (strstr(h, "://") != NULL) {
		errf(errmsg,
		     "config endpoint=%s: only http:// and https:// are "
		     "supported",
		     ep);
		return STRATA_ECONFIG;
	}
	size_t n = strlen(h);
	if (n > 0 && h[n - 1] == '/') {
		n--;
	}
	if (n == 0 || memchr(h, '/', n) != NULL || memchr(h, '@', n) != NULL ||
	    memchr(h, '?', n) != NULL) {
		errf(errmsg,
		     "config endpoint=%s: want host[:port] with an optional "
		     "http:// or https:// (no path, no credentials), e.g. "
		     "http://127.0.0.1:9000",
		     ep);
		return STRATA_ECONFIG;
	}
	cfg->host = dupn(host, h, n);
	return cfg->host == NULL ? STRATA_ENOMEM : 0;
}

static int finish(const struct strata_host *host, struct raw *r,
                  struct s3_config *cfg, char *errmsg)
{
	int rc;
	const char *files[] = {"endpoint", "access_key_id", "secret_access_key",
	                       "session_token"};
	char **fslots[] = {&r->endpoint, &r->access_key, &r->secret_key,
	                   &r->session_token};
	for (size_t i = 0; i < 4; i++) {
		if ((rc = read_at_file(host, files[i], fslots[i], errmsg)) !=
		    0) {
			return rc;
		}
	}
	if ((rc = from_env(host, &r->access_key, "AWS_ACCESS_KEY_ID")) != 0 ||
	    (rc = from_env(host, &r->secret_key, "AWS_SECRET_ACCESS_KEY")) !=
	            0 ||
	    (rc = from_env(host, &r->session_token, "AWS_SESSION_TOKEN")) !=
	            0 ||
	    (rc = from_env(host, &r->region, "AWS_REGION")) != 0 ||
	    (rc = from_env(host, &r->region, "AWS_DEFAULT_REGION")) != 0) {
		goto nomem;
	}

	/* signature */
	cfg->signature = S3_SIG_V4;
	if (r->signature != NULL) {
		if (strcmp(r->signature, "v2") == 0) {
			cfg->signature = S3_SIG_V2;
		} else if (strcmp(r->signature, "v4") != 0) {
			errf(errmsg,
			     "config signature=%s: must be v4 (AWS and "
			     "current stores) or v2 (older stores, libs3)",
			     r->signature);
			return STRATA_ECONFIG;
		}
	}

	/* bucket */
	if (r->bucket == NULL || r->bucket[0] == '\0') {
		errf(errmsg, "config: bucket is required (the S3 bucket that "
		             "holds the chunks; it must exist)");
		return STRATA_ECONFIG;
	}
	if (strlen(r->bucket) > 255 || !name_chars_ok(r->bucket, ".-_")) {
		errf(errmsg,
		     "config bucket=%s: a bucket name is 1..255 of "
		     "[a-z0-9.-] (AWS: 3..63, lowercase)",
		     r->bucket);
		return STRATA_ECONFIG;
	}
	cfg->bucket = r->bucket;
	r->bucket = NULL;

	/* prefix */
	const char *pre = r->prefix != NULL ? r->prefix : "";
	size_t plen = strlen(pre);
	if (plen > 512 || !name_chars_ok(pre, "._/-") || pre[0] == '/' ||
	    strstr(pre, "//") != NULL || has_dot_component(pre)) {
		errf(errmsg,
		     "config prefix=%s: a key prefix is up to 512 of "
		     "[A-Za-z0-9._/-], not starting with '/', without '//' "
		     "and without '.' or '..' components (a URL resolves "
		     "them: keys would land outside the prefix), e.g. "
		     "strata/prod/",
		     pre);
		return STRATA_ECONFIG;
	}
	bool slash = plen > 0 && pre[plen - 1] != '/';
	cfg->prefix = host->malloc(plen + 2);
	if (cfg->prefix == NULL) {
		goto nomem;
	}
	memcpy(cfg->prefix, pre, plen);
	if (slash) {
		cfg->prefix[plen++] = '/';
	}
	cfg->prefix[plen] = '\0';

	/* region */
	const char *region = r->region != NULL ? r->region : "us-east-1";
	if (region[0] == '\0' || strlen(region) > 64 ||
	    !name_chars_ok(region, "-_")) {
		errf(errmsg,
		     "config region=%s: want a region name such as "
		     "eu-west-1",
		     region);
		return STRATA_ECONFIG;
	}
	cfg->region = dupn(host, region, strlen(region));
	if (cfg->region == NULL) {
		goto nomem;
	}

	/* endpoint, scheme, addressing */
	int scheme = -1; /* from the endpoint URL; -1 = not given */
	if (r->endpoint != NULL) {
		if ((rc = parse_endpoint(host, r->endpoint, &scheme, cfg,
		                         errmsg)) != 0) {
			return rc;
		}
	} else {
		char h[128];
		snprintf(h, sizeof(h), "s3.%s.amazonaws.com", cfg->region);
		cfg->host = dupn(host, h, strlen(h));
		if (cfg->host == NULL) {
			goto nomem;
		}
	}
	cfg->https = scheme != 0;
	if (r->scheme != NULL) {
		int s = strcmp(r->scheme, "http") == 0    ? 0
		        : strcmp(r->scheme, "https") == 0 ? 1
		                                          : -2;
		if (s == -2 || (scheme >= 0 && s != scheme)) {
			errf(errmsg,
			     "config scheme=%s: must be http or https%s",
			     r->scheme,
			     s == -2 ? "" : " and agree with the endpoint URL");
			return STRATA_ECONFIG;
		}
		cfg->https = s == 1;
	}
	cfg->path_style = r->endpoint != NULL;
	if (r->addressing != NULL) {
		if (strcmp(r->addressing, "path") == 0) {
			cfg->path_style = true;
		} else if (strcmp(r->addressing, "virtual") == 0) {
			cfg->path_style = false;
		} else {
			errf(errmsg,
			     "config addressing=%s: must be path "
			     "(host/bucket/key) or virtual (bucket.host/key)",
			     r->addressing);
			return STRATA_ECONFIG;
		}
	}
	if (!cfg->path_style && !name_chars_ok(cfg->bucket, ".-")) {
		errf(errmsg,
		     "config bucket=%s: virtual-host addressing needs a "
		     "DNS-compatible bucket name; use addressing=path",
		     cfg->bucket);
		return STRATA_ECONFIG;
	}

	/* TLS */
	cfg->tls_verify = true;
	if (r->tls_verify != NULL &&
	    (rc = parse_bool("tls_verify", r->tls_verify, &cfg->tls_verify,
	                     errmsg)) != 0) {
		return rc;
	}
	cfg->ca_file = r->ca_file;
	r->ca_file = NULL;

	/* object format */
	cfg->checksum = true;
	if (r->checksum != NULL) {
		if (strcmp(r->checksum, "block") == 0) {
			cfg->checksum = true;
		} else if (strcmp(r->checksum, "none") == 0) {
			cfg->checksum = false;
		} else {
			errf(errmsg,
			     "config checksum=%s: must be block (a CRC32C per "
			     "64 KiB block, checked on every read) or none "
			     "(plain objects other tools can read, unchecked)",
			     r->checksum);
			return STRATA_ECONFIG;
		}
	}

	/* credentials */
	if (r->access_key == NULL || r->secret_key == NULL) {
		errf(errmsg, "config: no S3 credentials: set access_key_id and "
		             "secret_access_key (a value, or @file) or the "
		             "environment variables AWS_ACCESS_KEY_ID and "
		             "AWS_SECRET_ACCESS_KEY");
		return STRATA_ECONFIG;
	}
	cfg->access_key = r->access_key;
	cfg->secret_key = r->secret_key;
	cfg->session_token = r->session_token;
	r->access_key = r->secret_key = r->session_token = NULL;
	if (cfg->signature == S3_SIG_V2 && cfg->session_token != NULL) {
		errf(errmsg,
		     "config: session_token (or AWS_SESSION_TOKEN) needs "
		     "signature=v4; libs3 (v2) cannot send it");
		return STRATA_ECONFIG;
	}
	if (cfg->retry_max_ms < cfg->retry_base_ms) {
		cfg->retry_max_ms = cfg->retry_base_ms;
	}

	/* Empty strings for the optional ones, so users need no NULL check. */
	char **opt[] = {&cfg->session_token, &cfg->ca_file};
	for (size_t i = 0; i < 2; i++) {
		if (*opt[i] == NULL && (*opt[i] = dupn(host, "", 0)) == NULL) {
			goto nomem;
		}
	}
	return 0;
nomem:
	errf(errmsg, "open: out of memory reading the config");
	return STRATA_ENOMEM;
}

int s3_config_parse(const struct strata_host *host, const char *config,
                    struct s3_config *cfg, char *errmsg)
{
	struct raw r;
	memset(&r, 0, sizeof(r));
	memset(cfg, 0, sizeof(*cfg));
	cfg->retries = 4;
	cfg->retry_base_ms = 100;
	cfg->retry_max_ms = 5000;
	cfg->retry_budget_ms = 60000;
	cfg->connect_timeout_ms = 5000;
	cfg->io_timeout_ms = 30000;
	cfg->multipart_min_part = (uint64_t)5 << 20;
	cfg->list_page = 1000;

	int rc = 0;
	const char *cur = config;
	struct strata_config_item it;
	while (strata_config_next(&cur, &it)) {
		bool matched = false;
		if (it.value == NULL) {
			errf(errmsg, "config line '%.*s': want key=value",
			     it.line_len, it.line);
			rc = STRATA_ECONFIG;
			goto fail;
		}
		if ((rc = parse_num(&it, cfg, &matched, errmsg)) != 0) {
			goto fail;
		}
		if (!matched) {
			if ((rc = parse_str(host, &it, &r, &matched)) != 0) {
				errf(errmsg, "open: out of memory");
				goto fail;
			}
		}
		if (!matched) {
			char msg[STRATA_ERRMSG_SIZE];
			errf(errmsg, "config: %s",
			     strata_config_unknown_key(&it, ALLOWED_KEYS, msg,
			                               sizeof(msg)));
			rc = STRATA_ECONFIG;
			goto fail;
		}
	}
	if ((rc = finish(host, &r, cfg, errmsg)) != 0) {
		goto fail;
	}
	raw_free(host, &r);
	return 0;
fail:
	raw_free(host, &r);
	s3_config_free(host, cfg);
	return rc;
}

void s3_config_free(const struct strata_host *host, struct s3_config *cfg)
{
	char **all[] = {&cfg->host,          &cfg->bucket,     &cfg->prefix,
	                &cfg->region,        &cfg->access_key, &cfg->secret_key,
	                &cfg->session_token, &cfg->ca_file};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		host->free(*all[i]);
		*all[i] = NULL;
	}
}
