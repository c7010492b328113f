/* The s3 plugin's settings: parsed from config lines and AWS variables. */
#ifndef PLUGINS_TIER2_S3_S3_CONFIG_H
#define PLUGINS_TIER2_S3_S3_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "strata/plugin.h"

enum s3_signature {
	S3_SIG_V4 = 0, /* SigV4 through libcurl (default) */
	S3_SIG_V2 = 1, /* SigV2 through libs3 (older S3-compatible stores) */
};

/* Every setting; the strings are owned (host allocator). */
struct s3_config {
	char *host;      /* "host" or "host:port", no scheme, no path */
	bool https;      /* scheme */
	bool path_style; /* path (host/bucket/key) or virtual-host style */
	char *bucket;    /* bucket name */
	char *prefix;    /* key prefix of every object, "" or ends in '/' */
	char *region;    /* SigV4 region */
	enum s3_signature signature;
	char *access_key; /* credentials; "" = anonymous (not allowed) */
	char *secret_key;
	char *session_token;      /* "" when none (SigV4 only) */
	bool tls_verify;          /* verify the server's certificate */
	char *ca_file;            /* "" = system CAs */
	int retries;              /* retries after the first attempt, 0..100 */
	uint64_t retry_base_ms;   /* first backoff, doubled each retry */
	uint64_t retry_max_ms;    /* cap on one backoff sleep */
	uint64_t retry_budget_ms; /* cap on all attempts of one request */
	uint64_t connect_timeout_ms; /* TCP+TLS connect limit per attempt */
	uint64_t io_timeout_ms;      /* a request that moves no byte this long
	                                fails with a timeout */
	uint64_t multipart_min_part; /* smallest non-final multipart part */
	int list_page;               /* max keys per listing page, 1..1000 */
	bool checksum; /* write framed objects (CRC32C per 64 KiB block,
	                  s3_frame.h); false: plain objects, unchecked */
};

/*
 * Parse config ("key=value" lines, borrowed) into *cfg, which the caller
 * then releases with s3_config_free(). Missing credentials and region come
 * from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
 * AWS_REGION / AWS_DEFAULT_REGION; a value "@<path>" is read from that file
 * (first line, trimmed). Errors: STRATA_ECONFIG (errmsg names the key and
 * what is allowed), STRATA_ENOMEM. On error *cfg holds nothing to free.
 */
int s3_config_parse(const struct strata_host *host, const char *config,
                    struct s3_config *cfg, char *errmsg);

/* Free the strings of cfg (safe on a zeroed struct). */
void s3_config_free(const struct strata_host *host, struct s3_config *cfg);

#endif /* PLUGINS_TIER2_S3_S3_CONFIG_H */
