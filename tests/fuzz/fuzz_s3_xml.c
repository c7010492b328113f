/* libFuzzer harness: the s3 tier-2 plugin's XML readers (S3 answers are
 * untrusted bytes): s3_xml_error, s3_xml_list, s3_xml_text (UploadId,
 * ETag) and s3_xml_time on the same input; outputs must stay in bounds,
 * NUL-terminated, and every listed object must have a key. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "plugins/tier2/s3/s3_xml.h"
#include "strata/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Walk each listed object; reject pages the parser promised not to make. */
static int on_page(void *arg, const struct s3_object *objs, size_t n)
{
	size_t *seen = arg;
	for (size_t i = 0; i < n; i++) {
		if (objs[i].key == NULL || objs[i].mtime_ns < 0) {
			abort();
		}
		(void)strlen(objs[i].key);
	}
	*seen += n;
	return n > 0 && objs[0].key[0] == '!' ? 7 : 0;
}

/* Abort unless out[0..size) holds a NUL. */
static void check_str(const char *out, size_t size)
{
	if (memchr(out, '\0', size) == NULL) {
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data;
	struct strata_host host;
	memset(&host, 0, sizeof(host));
	host.malloc = strata_malloc;
	host.realloc = strata_realloc;
	host.free = strata_free;

	char code[64];
	char msg[160];
	memset(code, 'x', sizeof(code));
	memset(msg, 'x', sizeof(msg));
	if (s3_xml_error(body, size, code, sizeof(code), msg, sizeof(msg))) {
		check_str(code, sizeof(code));
		check_str(msg, sizeof(msg));
	}

	size_t seen = 0;
	bool truncated = true;
	int cb_rc = -1;
	int rc = s3_xml_list(&host, body, size, on_page, &seen, &truncated,
	                     &cb_rc);
	if (rc != 0 && rc != STRATA_EPROTO && rc != STRATA_ENOMEM) {
		abort();
	}
	if (rc == 0 && cb_rc != 0 && cb_rc != 7) {
		abort();
	}
	if (rc != 0 && cb_rc != 0) {
		abort(); /* the callback never runs on a failed parse */
	}

	static const char *const names[] = {"UploadId", "ETag", "Key"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char out[128];
		memset(out, 'x', sizeof(out));
		rc = s3_xml_text(body, size, names[i], out, sizeof(out));
		if (rc != 0 && rc != STRATA_ENOENT && rc != STRATA_EPROTO) {
			abort();
		}
		if (rc != STRATA_EPROTO) {
			check_str(out, sizeof(out));
		}
	}

	/* LastModified text reaches s3_xml_time as a C string. */
	char *s = strata_malloc(size + 1);
	if (s != NULL) {
		memcpy(s, data, size);
		s[size] = '\0';
		if (s3_xml_time(s) < 0) {
			abort();
		}
		strata_free(s);
	}
	return 0;
}
