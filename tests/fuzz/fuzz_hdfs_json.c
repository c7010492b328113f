/* libFuzzer harness: the hdfs tier-2 plugin's JSON reader (answers from a
 * namenode or datanode are untrusted bytes). Whatever parses must be a
 * well-formed tree that the accessors walk safely. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "plugins/tier2/hdfs/hdfs_json.h"
#include "strata/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct hdfs_json_alloc alloc = {strata_malloc, strata_free};

/* Visit every node; abort on anything the parser promised not to make. */
static void walk(const struct hdfs_json *v, int depth)
{
	if (depth > HDFS_JSON_MAX_DEPTH + 1) {
		abort();
	}
	for (; v != NULL; v = v->next) {
		int64_t n;
		if (v->type == HDFS_JSON_STRING && v->str == NULL) {
			abort();
		}
		if (v->type != HDFS_JSON_NUMBER && hdfs_json_int(v, &n)) {
			abort();
		}
		if (v->type == HDFS_JSON_OBJECT) {
			for (const struct hdfs_json *m = v->child; m != NULL;
			     m = m->next) {
				if (m->key == NULL ||
				    hdfs_json_get(v, m->key) == NULL) {
					abort();
				}
			}
		}
		walk(v->child, depth + 1);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hdfs_json *v = NULL;
	char err[STRATA_ERRMSG_SIZE];
	int rc = hdfs_json_parse((const char *)data, size, &alloc, &v, err);
	if (rc != 0) {
		if ((rc != STRATA_EPROTO && rc != STRATA_ENOMEM) || v != NULL ||
		    strnlen(err, STRATA_ERRMSG_SIZE) >= STRATA_ERRMSG_SIZE) {
			abort();
		}
		return 0;
	}
	walk(v, 0);
	hdfs_json_free(v, &alloc);
	return 0;
}
