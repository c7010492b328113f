/* The few S3 XML answers the SigV4 transport reads, parsed with libxml2. */
#ifndef PLUGINS_TIER2_S3_S3_XML_H
#define PLUGINS_TIER2_S3_S3_XML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "plugins/tier2/s3/s3_transport.h"

/* Initialise libxml2 once per process (call before threads use it). */
void s3_xml_init(void);

/*
 * Text of the first element named name (local name, any depth) of the
 * document body[0..len), copied NUL-terminated into out (truncated to
 * size). Returns 0, STRATA_ENOENT when there is no such element, or
 * STRATA_EPROTO when body is not XML.
 */
int s3_xml_text(const char *body, size_t len, const char *name, char *out,
                size_t size);

/* True when body is an S3 <Error> document; then code and message (may be
 * "") are copied out. */
bool s3_xml_error(const char *body, size_t len, char *code, size_t code_size,
                  char *msg, size_t msg_size);

/*
 * Parse a ListBucketResult (ListObjects v1) and call cb once with all its
 * <Contents> (key, size, mtime), in document order; *truncated is its
 * IsTruncated. Uses host's allocator for the page array. Returns 0, the
 * callback's non-zero value in *cb_rc (then returns 0 too),
 * STRATA_EPROTO when it is not a listing, or STRATA_ENOMEM.
 */
int s3_xml_list(const struct strata_host *host, const char *body, size_t len,
                s3_list_page_cb cb, void *arg, bool *truncated, int *cb_rc);

/* ISO 8601 UTC time "2026-01-02T03:04:05[.123]Z" to ns since the epoch;
 * 0 when it does not parse. */
int64_t s3_xml_time(const char *s);

#endif /* PLUGINS_TIER2_S3_S3_XML_H */
